/**
 * `courier/worker`: the instance side of Courier (or hosted QStash) deliveries.
 * Verify signed deliveries, route them by path to handlers, de-duplicate by
 * message id, write to the message's task stream (`task.stream`), register
 * and heartbeat with an instance group, and drain on shutdown. Depends on `jose` and Web platform APIs only; `worker.node` also
 * serves Node's `http` module.
 *
 * Shutdown, in this order: `heartbeat.stop()` (Courier stops choosing this
 * instance), `worker.drain()` (running handlers finish; new deliveries get 503
 * and are retried elsewhere), then close the server.
 */
export { courierDedupe, CourierDedupeError, type CourierDedupeOptions } from './courier-dedupe.js';
export { type Dedupe, memoryDedupe, type MemoryDedupeOptions } from './dedupe.js';
export { type Heartbeat, HeartbeatError, type HeartbeatOptions, type InstanceDescription, startHeartbeat } from './heartbeat.js';
export {
  type DeliveryClaims,
  DeliveryVerificationError,
  publicRequestUrl,
  type SigningKeys,
  type VerificationFailure,
  VERIFICATION_FAILURES,
  verifyDelivery,
  type VerifyDeliveryInput,
} from './verify.js';
export { type StreamEventView, type TaskStream, TaskStreamError } from './task-stream.js';
export { createWorker, type Task, type TaskHandler, type Worker, type WorkerErrorContext, type WorkerOptions } from './worker.js';
