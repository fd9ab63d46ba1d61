/**
 * examples/seed-000 end to end, as `node examples/seed-000/run.mjs` runs it:
 * a Courier process, a `courier gateway` process and three drive-collector
 * processes built with the worker kit, published to with the official SDK.
 * Spawns processes and always runs on SQLite (each process its own file), so
 * scripts/run-tests.mjs lists it among the spawning files.
 *
 * The scenario runs once; each case asserts one of its promises on what the
 * instances reported handling and on the gateway's answer during the outage.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { countByInstance, handledIn } from '../../examples/seed-000/expectations.js';
import { TASK_PATHS } from '../../examples/seed-000/publisher.js';
import { INSTANCE_IDS, runScenario, type Observations } from '../../examples/seed-000/scenario.js';

describe('example seed-000: Courier as QStash and as the LB worker, three worker-kit instances', () => {
  let observations: Observations;

  before(async () => {
    observations = await runScenario();
  }, { timeout: 60_000 });

  it('spreads the first 30 tasks round robin over the three instances', () => {
    const counts = countByInstance(handledIn(observations, 'round-robin'));
    assert.deepEqual(Object.keys(counts).sort(), [...INSTANCE_IDS]);
    for (const [id, count] of Object.entries(counts)) assert.ok(count >= 8 && count <= 12, `${id} handled ${count} of 30`);
  });

  it("moves a killed instance's share to the other two, Courier retrying the deliveries that failed", () => {
    const afterKill = handledIn(observations, 'one-killed');
    assert.equal(afterKill.length, 30);
    const counts = countByInstance(afterKill);
    assert.equal(counts[observations.killed], 0);
    for (const id of INSTANCE_IDS.filter((id) => id !== observations.killed)) assert.ok(counts[id]! >= 10, `${id} handled ${counts[id]} of 30`);
    assert.ok(afterKill.some((task) => task.retried > 0), 'no delivery needed a retry, so nothing was sent to the killed instance');
  });

  it('answers a signed request 503 "No active instances available" with Retry-After while every instance is down', () => {
    const { status, retryAfter, body } = observations.outage;
    assert.equal(status, 503);
    assert.match(retryAfter ?? '', /^[1-9]\d*$/);
    // Short, because the instances are ejected rather than gone: the soonest ejection end, not the seed's blind 60.
    assert.ok(Number(retryAfter) <= 4, `Retry-After ${retryAfter}`);
    const answer = body as Record<string, unknown>;
    assert.equal(answer.error, 'No active instances available');
    assert.equal(answer.qstashMsgId, 'msg_outage_probe');
    assert.ok(!Number.isNaN(Date.parse(String(answer.timestamp))));
  });

  it('delivers the tasks published during the outage once the instances are back, each after retries', () => {
    const recovered = handledIn(observations, 'outage');
    assert.equal(recovered.length, 6);
    for (const task of recovered) assert.ok(task.retried > 0, `${task.ref} was handled on its first attempt, during the outage`);
  });

  it('routes the legacy long paths to the short handlers', () => {
    const legacy = observations.published.filter((task) => task.path === TASK_PATHS[task.kind].legacy);
    assert.equal(new Set(legacy.map((task) => task.path)).size, 3);
    for (const task of legacy) {
      const done = observations.handled.find((candidate) => candidate.ref === task.ref);
      assert.ok(done, `${task.ref} (${task.path}) was not handled`);
      assert.equal(done.calledAs, task.path);
      assert.equal(done.path, TASK_PATHS[task.kind].current);
    }
  });

  it('deregisters the instances stopped with SIGTERM, after which the gateway answers 503 with the seed\'s Retry-After 60', () => {
    const { registered, probe } = observations.afterShutdown;
    assert.equal(registered, 0);
    assert.equal(probe.status, 503);
    assert.equal(probe.retryAfter, '60');
  });

  it('handles every published task exactly once, with the message id Courier gave it', () => {
    assert.equal(observations.published.length, 66);
    for (const task of observations.published) {
      const runs = observations.handled.filter((done) => done.ref === task.ref);
      assert.equal(runs.length, 1, `${task.ref} handled ${runs.length} times`);
      assert.equal(runs[0]!.messageId, task.messageId);
    }
  });
});
