/** What the HTTP layer may call: domain services only, never the store. */
import type { Clock } from '../core/clock.js';
import type { Limits } from '../core/config.js';
import type { DeadLetterService } from '../messages/dead-letter-service.js';
import type { MessageService } from '../messages/message-service.js';
import type { KeyRing } from '../messages/signing-keys.js';

export interface HealthReport {
  status: 'ok' | 'degraded';
  version: string;
  uptimeSeconds: number;
  store: { kind: string; reachable: boolean; error?: string };
  backlog?: { pending: number; active: number; deadLetters: number };
  inFlight: number;
}

export interface ApiServices {
  clock: Clock;
  limits: Limits;
  messages: MessageService;
  deadLetters: DeadLetterService;
  keys: KeyRing;
  health: { ready(): Promise<boolean>; report(): Promise<HealthReport> };
}
