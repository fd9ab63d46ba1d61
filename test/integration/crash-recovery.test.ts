/**
 * The durability promise (spec §2.4, §11.10): a message acknowledged with a
 * 2xx survives `kill -9` of the server and is delivered at least once, and a
 * redelivery carries the same `Upstash-Message-Id`, so receivers can dedup.
 *
 * Each scenario spawns `node --import tsx src/main.ts` on a fresh data dir,
 * publishes 3,000 numbered messages (single publishes and batches of 100,
 * concurrently) to a local destination that answers 200 after 0-20 ms,
 * SIGKILLs the server at a chosen moment, restarts it on the same data dir and
 * port, and checks every acknowledged sequence number arrives. Publishes that
 * failed with a connection error were never acknowledged and need not arrive.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { Agent, request } from 'undici';
import { eventually, startDestination, type Destination } from '../helpers/destination.js';
import { freePort, killChildren, spawnServingCourier, stopMain, type ServingCourier } from '../helpers/processes.js';

const TOKEN = 'crash-test-token-0123456789';
const TOTAL = 3000;
const BATCH_SIZE = 100;
/** Concurrent publish requests; enough to keep the server busy, few enough to stay polite. */
const PUBLISH_CONCURRENCY = 16;
/** The whole scenario, restart and redelivery included, must finish well within this. */
const SCENARIO_TIMEOUT_MS = 90_000;
/** Seconds from the start of publishing until every message of the first scenario is due; publishing 3,000 takes 0.5-1.5 s here. */
const DUE_AFTER_S = 3;

// ---------------------------------------------------------------------------
// The server as a child process.

type ChildCourier = ServingCourier;

const spawnCourier = (dataDir: string, port: number): Promise<ChildCourier> => spawnServingCourier(dataDir, port, TOKEN);

/** SIGKILL; resolves, once the process is gone, with the time the signal was sent. */
async function kill9(courier: ChildCourier): Promise<number> {
  const at = Date.now();
  courier.child.kill('SIGKILL');
  await courier.exited;
  assert.equal(courier.child.signalCode, 'SIGKILL');
  return at;
}

// ---------------------------------------------------------------------------
// Publishing.

type Task = { kind: 'single'; seq: number } | { kind: 'batch'; seqs: number[] };

/** Blocks of 100 sequence numbers: every third block as 100 single publishes, the others as one batch. */
function publishPlan(): Task[] {
  const tasks: Task[] = [];
  for (let block = 0; block < TOTAL / BATCH_SIZE; block++) {
    const seqs = Array.from({ length: BATCH_SIZE }, (_, i) => block * BATCH_SIZE + i);
    if (block % 3 === 0) tasks.push(...seqs.map((seq) => ({ kind: 'single' as const, seq })));
    else tasks.push({ kind: 'batch', seqs });
  }
  return tasks;
}

interface PublishOutcome {
  acked: Set<number>;
  /** Requests that failed without an HTTP answer (the server was killed under them). */
  connectionErrors: number;
  /** HTTP answers other than 2xx: there should be none. */
  badStatuses: string[];
  /** Tasks never sent because the server had been killed. */
  skipped: number;
}

/**
 * Publishes the plan with PUBLISH_CONCURRENCY requests in flight, each message
 * with `config` (Upstash-* headers). `onAck` runs after each acknowledged
 * task; once `stopped()` says so, no new task starts.
 */
async function publishAll(options: {
  courierUrl: string;
  destinationUrl: string;
  config?: Record<string, string>;
  onAck?: (acked: number) => void;
  stopped?: () => boolean;
}): Promise<PublishOutcome> {
  const { courierUrl, destinationUrl, config = {}, onAck = () => undefined, stopped = () => false } = options;
  const outcome: PublishOutcome = { acked: new Set(), connectionErrors: 0, badStatuses: [], skipped: 0 };
  const agent = new Agent({ connections: PUBLISH_CONCURRENCY });
  const tasks = publishPlan();
  let next = 0;
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...config };

  async function send(task: Task): Promise<void> {
    const seqs = task.kind === 'single' ? [task.seq] : task.seqs;
    const res =
      task.kind === 'single'
        ? await request(`${courierUrl}/v2/publish/${destinationUrl}`, {
            method: 'POST',
            headers,
            body: JSON.stringify({ seq: task.seq }),
            dispatcher: agent,
          })
        : await request(`${courierUrl}/v2/batch`, {
            method: 'POST',
            headers,
            body: JSON.stringify(
              task.seqs.map((seq) => ({
                destination: destinationUrl,
                headers: { 'content-type': 'application/json', ...config },
                body: JSON.stringify({ seq }),
              })),
            ),
            dispatcher: agent,
          });
    const text = await res.body.text();
    if (res.statusCode >= 200 && res.statusCode < 300) {
      for (const seq of seqs) outcome.acked.add(seq);
      onAck(outcome.acked.size);
    } else {
      outcome.badStatuses.push(`${res.statusCode} ${text.slice(0, 200)}`);
    }
  }

  async function worker(): Promise<void> {
    while (next < tasks.length) {
      if (stopped()) {
        outcome.skipped += tasks.length - next;
        next = tasks.length;
        return;
      }
      const task = tasks[next++]!;
      try {
        await send(task);
      } catch {
        outcome.connectionErrors += 1;
      }
    }
  }

  await Promise.all(Array.from({ length: PUBLISH_CONCURRENCY }, worker));
  await agent.destroy();
  return outcome;
}

// ---------------------------------------------------------------------------
// The destination and the verdict.

interface Recorded {
  seq: number;
  messageId: string;
  retried: string;
}

/** A destination answering 200 after 0-20 ms; `delays[i]` is how long arrival i was held. */
async function slowishDestination(): Promise<{ destination: Destination; delays: number[] }> {
  const delays: number[] = [];
  const destination = await startDestination((_arrival, index) => {
    const delayMs = Math.floor(Math.random() * 21);
    delays[index] = delayMs;
    return { status: 200, body: 'ok', delayMs };
  });
  return { destination, delays };
}

function recorded(destination: Destination): Recorded[] {
  return destination.arrivals.map((arrival) => ({
    seq: (JSON.parse(arrival.body.toString()) as { seq: number }).seq,
    messageId: String(arrival.headers['upstash-message-id']),
    retried: String(arrival.headers['upstash-retried']),
  }));
}

async function waitForBacklogToDrain(url: string): Promise<void> {
  await eventually(async () => {
    const res = await fetch(`${url}/health/detailed`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const report = (await res.json()) as { backlog?: { pending: number; active: number } };
    return report.backlog && report.backlog.pending === 0 && report.backlog.active === 0 ? true : undefined;
  }, 30_000, 'the backlog to drain after the restart');
}

/**
 * Every acknowledged seq arrived; every arrival of one seq carries the same
 * message id (a redelivery, never a second message); no seq arrived that was
 * never published. Duplicates are allowed and counted.
 */
function verdict(t: TestContext, acked: Set<number>, arrivals: Recorded[]): void {
  const bySeq = new Map<number, Recorded[]>();
  for (const arrival of arrivals) {
    assert.ok(Number.isInteger(arrival.seq) && arrival.seq >= 0 && arrival.seq < TOTAL, `unexpected body seq ${arrival.seq}`);
    assert.match(arrival.messageId, /^msg_/);
    bySeq.set(arrival.seq, [...(bySeq.get(arrival.seq) ?? []), arrival]);
  }
  const missing = [...acked].filter((seq) => !bySeq.has(seq)).sort((a, b) => a - b);
  assert.deepEqual(missing, [], `${missing.length} acknowledged messages never arrived`);

  let duplicates = 0;
  let duplicatedSeqs = 0;
  const messageIds = new Set<string>();
  for (const [seq, list] of bySeq) {
    const first = list[0]!;
    for (const again of list.slice(1)) {
      assert.equal(again.messageId, first.messageId, `seq ${seq} redelivered under another message id`);
    }
    assert.ok(!messageIds.has(first.messageId), `message id ${first.messageId} carried two different seqs`);
    messageIds.add(first.messageId);
    if (list.length > 1) {
      duplicatedSeqs += 1;
      duplicates += list.length - 1;
    }
  }
  t.diagnostic(
    `acknowledged ${acked.size}, arrived ${bySeq.size} distinct (${arrivals.length} arrivals), ` +
      `duplicates: ${duplicates} extra arrivals of ${duplicatedSeqs} messages`,
  );
}

/** Once the restarted `courier` has delivered every acknowledged seq and has nothing left to do, the verdict. */
async function checkAfterRestart(t: TestContext, courier: ChildCourier, destination: Destination, acked: Set<number>): Promise<void> {
  await eventually(() => {
    const seen = new Set(recorded(destination).map((arrival) => arrival.seq));
    return [...acked].every((seq) => seen.has(seq)) ? true : undefined;
  }, 30_000, 'every acknowledged message to arrive after the restart');
  await waitForBacklogToDrain(courier.url);
  verdict(t, acked, recorded(destination));
}

describe('crash recovery: kill -9 loses no acknowledged message', () => {
  it('delivers every acknowledged message after a kill -9 while deliveries are in flight', { timeout: SCENARIO_TIMEOUT_MS }, async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'courier-crash-'));
    const { destination, delays } = await slowishDestination();
    let courier: ChildCourier | undefined;
    try {
      const port = await freePort();
      courier = await spawnCourier(dataDir, port);
      // Delivery keeps pace with publishing on a fast machine, so every message
      // is due at one moment after publishing has (normally) finished: the kill
      // then lands with all 3,000 acknowledged and hundreds of attempts in flight.
      const started = Date.now();
      const dueAtS = Math.ceil(started / 1000) + DUE_AFTER_S;
      const outcome = await publishAll({
        courierUrl: courier.url,
        destinationUrl: destination.url('/in-flight'),
        config: { 'upstash-not-before': String(dueAtS) },
      });
      assert.deepEqual(outcome.badStatuses, []);
      assert.equal(outcome.connectionErrors, 0);
      assert.equal(outcome.acked.size, TOTAL);
      const publishedAfterMs = Date.now() - started;

      await destination.waitFor(Math.floor(TOTAL * 0.3), 30_000);
      const killedAt = await kill9(courier);
      const arrivedAtKill = destination.arrivals.filter((arrival) => arrival.at <= killedAt).length;
      const unansweredAtKill = destination.arrivals.filter(
        (arrival, index) => arrival.at <= killedAt && arrival.at + (delays[index] ?? 0) > killedAt,
      ).length;
      t.diagnostic(
        `published ${TOTAL} in ${publishedAfterMs} ms (due ${dueAtS * 1000 - started} ms after the start); ` +
          `killed after ${arrivedAtKill} arrivals, ${unansweredAtKill} of them still unanswered`,
      );
      assert.ok(arrivedAtKill < TOTAL, `deliveries were still to come at the kill (${arrivedAtKill} arrived)`);
      assert.ok(unansweredAtKill > 0, 'some attempts were in flight at the kill');

      courier = await spawnCourier(dataDir, port);
      await checkAfterRestart(t, courier, destination, outcome.acked);
    } catch (error) {
      if (courier) t.diagnostic(`courier output tail:\n${courier.output()}`);
      throw error;
    } finally {
      if (courier) await stopMain(courier);
      await destination.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('delivers every acknowledged message after a kill -9 in the middle of publishing', { timeout: SCENARIO_TIMEOUT_MS }, async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'courier-crash-'));
    const { destination } = await slowishDestination();
    let courier: ChildCourier | undefined;
    try {
      const port = await freePort();
      const first = await spawnCourier(dataDir, port);
      courier = first;
      let killing: Promise<number> | undefined;
      const outcome = await publishAll({
        courierUrl: first.url,
        destinationUrl: destination.url('/mid-publish'),
        onAck: (acked) => {
          if (acked >= TOTAL / 3 && !killing) killing = kill9(first);
        },
        stopped: () => killing !== undefined,
      });
      await killing;
      t.diagnostic(
        `acknowledged ${outcome.acked.size} before the kill; ${outcome.connectionErrors} requests failed, ` +
          `${outcome.skipped} tasks not sent; ${destination.arrivals.length} arrivals so far`,
      );
      assert.ok(killing, 'the kill happened');
      assert.deepEqual(outcome.badStatuses, []);
      assert.ok(outcome.connectionErrors > 0, 'some publishes were cut off by the kill');
      assert.ok(outcome.acked.size < TOTAL);

      courier = await spawnCourier(dataDir, port);
      // Publishes stored just before the kill but never acknowledged may arrive too; they are not checked.
      await checkAfterRestart(t, courier, destination, outcome.acked);
    } catch (error) {
      if (courier) t.diagnostic(`courier output tail:\n${courier.output()}`);
      throw error;
    } finally {
      if (courier) await stopMain(courier);
      await destination.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
