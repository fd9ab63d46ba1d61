/** What the HTTP layer may call: domain services only, never the store. */
import type { Clock } from '../core/clock.js';
import type { Limits } from '../core/config.js';
import type { DeadLetterService } from '../messages/dead-letter-service.js';
import type { MessageService } from '../messages/message-service.js';
import type { KeyRing } from '../messages/signing-keys.js';
import type { FlowControlService } from '../flow-control/flow-control-service.js';
import type { QueueService } from '../queues/queue-service.js';
import type { ScheduleService } from '../schedules/schedule-service.js';
import type { UrlGroupService } from '../url-groups/url-group-service.js';
import type { InstanceGroupSettings } from '../core/instance.js';
import type { InstanceService } from '../gateway/instance-service.js';
import type { WorkKeyClaims } from '../gateway/work-keys.js';
import type { HealthReport } from '../health/health-service.js';
import type { StreamService } from '../streams/stream-service.js';

export type { HealthReport } from '../health/health-service.js';

export interface ApiServices {
  clock: Clock;
  limits: Limits;
  messages: MessageService;
  deadLetters: DeadLetterService;
  queues: QueueService;
  flowControl: FlowControlService;
  urlGroups: UrlGroupService;
  schedules: ScheduleService;
  instances: InstanceService;
  /** The settings a new instance group starts from (config's heartbeat interval and staleness). */
  instanceGroupDefaults: (name: string) => InstanceGroupSettings;
  /** Claims an instance group's workers de-duplicate with. */
  workKeys: WorkKeyClaims;
  keys: KeyRing;
  /** Task streams: writes, reads, SSE follows (on this node's hub) and stream tokens. */
  streams: StreamService;
  health: { ready(): Promise<boolean>; report(): Promise<HealthReport>; readonly detailedPublic: boolean };
}
