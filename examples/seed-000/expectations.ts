/**
 * What the demo promises, checked on its observations: run.mjs prints the
 * failures and exits 1. (The automated test asserts the same points itself,
 * test/integration/example-seed-000.test.ts.)
 */
import { TASK_PATHS } from './publisher.js';
import { INSTANCE_IDS, type HandledTask, type Observations, type Phase } from './scenario.js';

/** Each instance's share of the round-robin step may be off by this many from an even split. */
const ROUND_ROBIN_SLACK = 2;

export function handledIn(observations: Observations, phase: Phase): HandledTask[] {
  const refs = new Set(observations.published.filter((task) => task.phase === phase).map((task) => task.ref));
  return observations.handled.filter((task) => refs.has(task.ref));
}

export function countByInstance(tasks: HandledTask[]): Record<string, number> {
  const counts: Record<string, number> = Object.fromEntries(INSTANCE_IDS.map((id) => [id, 0]));
  for (const task of tasks) counts[task.instance] = (counts[task.instance] ?? 0) + 1;
  return counts;
}

export function checkObservations(observations: Observations): string[] {
  const failures: string[] = [];
  const { published, handled, killed, outage } = observations;

  for (const task of published) {
    const times = handled.filter((done) => done.ref === task.ref).length;
    if (times !== 1) failures.push(`${task.ref} was handled ${times} times`);
  }

  const roundRobin = countByInstance(handledIn(observations, 'round-robin'));
  const even = published.filter((task) => task.phase === 'round-robin').length / INSTANCE_IDS.length;
  for (const [id, count] of Object.entries(roundRobin)) {
    if (Math.abs(count - even) > ROUND_ROBIN_SLACK) failures.push(`round robin: ${id} handled ${count}, expected about ${even}`);
  }

  const afterKill = handledIn(observations, 'one-killed');
  if (afterKill.some((task) => task.instance === killed)) failures.push(`${killed} handled tasks after it was killed`);
  if (!afterKill.some((task) => task.retried > 0)) failures.push(`no task was retried after ${killed} was killed`);

  const body = outage.body as { error?: unknown; qstashMsgId?: unknown; timestamp?: unknown } | undefined;
  if (outage.status !== 503) failures.push(`outage: the gateway answered ${outage.status}, not 503`);
  if (body?.error !== 'No active instances available') failures.push(`outage: unexpected body ${JSON.stringify(outage.body)}`);
  if (!(Number(outage.retryAfter) >= 1)) failures.push(`outage: Retry-After is ${outage.retryAfter}`);
  if (!handledIn(observations, 'outage').every((task) => task.retried > 0)) failures.push('outage: a task was handled without a retry');

  const legacy = published.filter((task) => task.path === TASK_PATHS[task.kind].legacy);
  if (legacy.length === 0) failures.push('no task was published to a legacy path');
  for (const task of legacy) {
    const done = handled.find((candidate) => candidate.ref === task.ref);
    if (done && (done.path !== TASK_PATHS[task.kind].current || done.calledAs !== task.path)) {
      failures.push(`legacy path ${task.path} (${task.ref}) was served at ${done.path}, called as ${done.calledAs}`);
    }
  }
  const { registered, probe } = observations.afterShutdown;
  if (registered !== 0) failures.push(`after SIGTERM the gateway still lists ${registered} instances`);
  if (probe.status !== 503 || probe.retryAfter !== '60') failures.push(`after SIGTERM: ${probe.status}, Retry-After ${probe.retryAfter}`);
  return failures;
}
