/**
 * Deliveries to instance groups: each attempt of a `group:<name>/<path>`
 * message goes to one instance the balancer picks now, so a retry may go to
 * another instance. With none available the attempt fails at once, as the
 * seed's gateway answers: a 503 whose Retry-After is the group's earliest
 * expected recovery, which the retry policy honours.
 */
import type { AttemptResponse, MessageSpec } from '../core/message.js';
import { instanceTarget, parseGroupDestination } from '../core/instance.js';
import type { DeliveryRouter } from '../delivery/dispatcher.js';
import type { Balancer } from './balancer.js';

/** Failed attempts whose instance the retry should avoid; bounded, oldest forgotten first. */
const MAX_REMEMBERED_FAILURES = 10_000;

export function createGroupRouter(balancer: Balancer): DeliveryRouter {
  // messageId → the instance its last attempt failed on (this node's attempts only).
  const failedOn = new Map<string, string>();
  return {
    route(spec: MessageSpec) {
      const destination = parseGroupDestination(spec.url);
      if (!destination) return { url: spec.url };
      const avoid = failedOn.get(spec.messageId);
      failedOn.delete(spec.messageId);
      const choice = balancer.choose(destination.group, { ...spec.routing, ...(avoid === undefined ? {} : { avoid }) });
      if ('chosen' in choice) {
        const { instance, finish } = choice.chosen;
        return {
          url: instanceTarget(instance.url, destination.path),
          headers: { 'Courier-Instance-Id': instance.id },
          done: (response: AttemptResponse) => {
            // A server error or no response counts against the instance; a 4xx is the message's problem, not its.
            const ok = response.status !== undefined && response.status < 500;
            finish(ok);
            if (ok) return;
            if (failedOn.size >= MAX_REMEMBERED_FAILURES) failedOn.delete(failedOn.keys().next().value!);
            failedOn.set(spec.messageId, instance.id);
          },
        };
      }
      const unavailable = 'unknownGroup' in choice
        ? { reason: `instance group "${destination.group}" not found`, retryAfterSeconds: 60 }
        : choice.unavailable;
      return { failed: noInstanceResponse(unavailable.reason, unavailable.retryAfterSeconds) };
    },
  };
}

function noInstanceResponse(reason: string, retryAfterSeconds: number): AttemptResponse {
  return {
    status: 503,
    headers: { 'retry-after': [String(retryAfterSeconds)], 'content-type': ['application/json'] },
    body: Buffer.from(JSON.stringify({ error: 'No active instances available', reason })),
    error: `no instance available: ${reason}`,
    durationMs: 0,
  };
}
