/** What a publish asks for, once its headers are validated (api/publish-headers.ts builds it). */
import type { CallbackConfig, FlowControlConfig, HeaderMap, HttpMethod, RedactSpec, RoutingHints } from './message.js';

export interface PublishOptions {
  method: HttpMethod;
  /** Forwarded headers and Content-Type, canonical names. */
  headers: HeaderMap;
  /** Absolute due time from Upstash-Not-Before (ms); wins over delayMs. */
  notBefore?: number;
  delayMs?: number;
  retries?: number;
  retryDelayExpression?: string;
  timeoutMs?: number;
  callback?: CallbackConfig;
  failureCallback?: CallbackConfig;
  deduplicationId?: string;
  contentBasedDeduplication: boolean;
  labels: string[];
  redact?: RedactSpec;
  flowControl?: FlowControlConfig;
  /** For an instance-group destination: which instance may take it (Courier-Region, Courier-Capability). */
  routing?: RoutingHints;
  /** The task stream the message reports on (Upstash-Courier-Stream). */
  streamId?: string;
}
