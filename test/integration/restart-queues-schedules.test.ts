/**
 * Queues, flow control and schedules across `kill -9` and restart (issue 3:
 * "Queue order and flow-control limits hold under load and across restarts
 * (state is in the store, not only in memory); a kill -9 loses nothing", and
 * "a missed tick while the server was down is not replayed as a burst").
 *
 * Each scenario spawns `node --import tsx src/main.ts` on a fresh data dir
 * and a fixed port, SIGKILLs it while deliveries are in flight (triggered by
 * the destination when a chosen request arrives, so the kill lands with requests open),
 * restarts it on the same dir and port, and checks what the destination saw.
 *
 * The destination counts a request as open from its arrival until it is
 * answered OR its connection closes. A SIGKILLed process's sockets are closed
 * by the kernel as it dies, so its abandoned requests end at the destination
 * before the restarted server exists. What Courier guarantees is therefore:
 * at most N requests open at the destination at any moment, old process and
 * new together. (A destination that keeps working on a request after its
 * caller hung up can still be busy with it while the redelivery arrives;
 * Courier cannot see that work and no limit covers it.)
 *
 * The schedule scenario needs real minute boundaries (cron has minute
 * resolution), so it takes 1.5-2.3 minutes; it runs beside the others.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { Agent, request } from 'undici';
import { eventually, sleep } from '../helpers/destination.js';
import { freePort, killChildren, spawnServingCourier, stopMain, type ServingCourier } from '../helpers/processes.js';

const TOKEN = 'restart-queues-token-0123456789';
const MINUTE = 60_000;

after(killChildren);

// ---------------------------------------------------------------------------
// A destination that counts open requests.

interface Hit {
  /** The body parsed as a number (the message's sequence number); NaN for other bodies. */
  seq: number;
  path: string;
  messageId: string;
  scheduleId: string | undefined;
  at: number;
  /** Which server process sent it: the era of its connection (0 before the restart, 1 after). */
  era: number;
  /** Unset while open; `abandoned` when the connection closed before the answer. */
  end?: 'answered' | 'abandoned';
}

interface CountingDestination {
  url(path: string): string;
  hits: Hit[];
  /** Requests open now (arrived, neither answered nor closed). */
  open: number;
  /** The most requests open at one moment. */
  maxOpen: number;
  /** Connections accepted from now on are tagged with this era. */
  era: number;
  /** Called synchronously after each recorded hit, with the number of hits so far. */
  onHit: (count: number) => void;
  close(): Promise<void>;
}

/** Answers 200 `holdMs` after each request's body has arrived. */
async function startCountingDestination(holdMs: number): Promise<CountingDestination> {
  const sockets = new Map<Socket, number>();
  const destination: CountingDestination = {
    url: (path) => `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`,
    hits: [],
    open: 0,
    maxOpen: 0,
    era: 0,
    onHit: () => undefined,
    async close() {
      for (const socket of sockets.keys()) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req, res) => {
    destination.open += 1;
    destination.maxOpen = Math.max(destination.maxOpen, destination.open);
    let hit: Hit | undefined;
    let ended = false;
    const end = (how: 'answered' | 'abandoned') => {
      if (ended) return;
      ended = true;
      destination.open -= 1;
      if (hit) hit.end = how;
    };
    // 'finish' comes before 'close' on an answered response; 'close' alone means the caller went away.
    res.once('finish', () => end('answered'));
    res.once('close', () => end('abandoned'));
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const scheduleId = req.headers['upstash-schedule-id'];
      hit = {
        seq: body === '' ? Number.NaN : Number(body),
        path: req.url ?? '',
        messageId: String(req.headers['upstash-message-id']),
        scheduleId: typeof scheduleId === 'string' ? scheduleId : undefined,
        at: Date.now(),
        era: sockets.get(req.socket) ?? -1,
      };
      if (ended) hit.end = 'abandoned';
      destination.hits.push(hit);
      destination.onHit(destination.hits.length);
      setTimeout(() => {
        if (ended) return;
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
      }, holdMs);
    });
  });
  server.on('connection', (socket) => {
    sockets.set(socket, destination.era);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return destination;
}

// ---------------------------------------------------------------------------
// Courier as a child process, killed and restarted on the same dir and port.

interface ChildCourier extends ServingCourier {
  /** Own connection pool per process, so no request rides a socket of the dead one. */
  agent: Agent;
}

async function spawnCourier(dataDir: string, port: number): Promise<ChildCourier> {
  return { ...(await spawnServingCourier(dataDir, port, TOKEN)), agent: new Agent({ connections: 8 }) };
}

interface Run {
  courier(): ChildCourier;
  /** Starts the first process, or restarts on the same data dir and port after a kill. */
  start(): Promise<ChildCourier>;
  /**
   * SIGKILL, sent synchronously so a destination handler can kill with its
   * own request still open. Resolves once the process is gone.
   */
  kill(): Promise<void>;
  killed: Promise<void> | undefined;
}

/** A data dir, a port and the process(es) on them; cleans up, and shows the server's output tail on failure. */
async function withRun(t: TestContext, body: (run: Run) => Promise<void>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'courier-restart-'));
  const port = await freePort();
  let current: ChildCourier | undefined;
  const run: Run = {
    courier: () => {
      assert.ok(current, 'courier started');
      return current;
    },
    async start() {
      current = await spawnCourier(dataDir, port);
      return current;
    },
    kill() {
      const courier = run.courier();
      courier.child.kill('SIGKILL');
      run.killed = (async () => {
        await courier.exited;
        assert.equal(courier.child.signalCode, 'SIGKILL');
        await courier.agent.destroy();
      })();
      return run.killed;
    },
    killed: undefined,
  };
  try {
    await body(run);
  } catch (error) {
    if (current) t.diagnostic(`courier output tail:\n${current.output()}`);
    throw error;
  } finally {
    if (current) {
      await stopMain(current);
      await current.agent.destroy();
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * SIGKILLs the server at the `killAt`-th hit (or the next one, if that many
 * arrived already): from inside its handler, or `afterMs` later, which lets
 * requests started together with it arrive and be open at the kill too.
 */
function killAtHit(run: Run, destination: CountingDestination, killAt: number, afterMs = 0): void {
  let armed = true;
  destination.onHit = (count) => {
    if (count < killAt || !armed) return;
    armed = false;
    if (afterMs === 0) void run.kill();
    else setTimeout(() => void run.kill(), afterMs);
  };
}

/**
 * Waits for the kill armed by killAtHit, checks the dead process's requests
 * have all ended at the destination, and starts the new process.
 */
async function restartAfterKill(run: Run, destination: CountingDestination): Promise<ChildCourier> {
  // Wrapped: eventually() would await the promise itself, which resolves to undefined.
  const { killed } = await eventually(() => (run.killed ? { killed: run.killed } : undefined), 30_000, 'the kill');
  await killed;
  // The premise of the concurrency checks (see the header): the kernel closed the dead process's connections.
  await eventually(() => (destination.open === 0 ? true : undefined), 5_000, 'the dead process’s requests to end at the destination');
  destination.era = 1;
  return run.start();
}

// ---------------------------------------------------------------------------
// HTTP to Courier.

interface Reply {
  status: number;
  body: unknown;
}

async function call(
  courier: ChildCourier,
  method: 'GET' | 'POST',
  path: string,
  options: { json?: unknown; body?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}`, ...options.headers };
  let body = options.body;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  }
  const res = await request(`${courier.url}${path}`, { method, headers, body, dispatcher: courier.agent });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // Not JSON: the text itself goes into the assertion message.
  }
  return { status: res.statusCode, body: parsed };
}

async function callOk<T>(...args: Parameters<typeof call>): Promise<T> {
  const reply = await call(...args);
  assert.equal(reply.status, 200, `${args[1]} ${args[2]} answered ${reply.status}: ${JSON.stringify(reply.body)}`);
  return reply.body as T;
}

/** Enqueues bodies "0".."count-1" one after another, so acceptance order is sequence order; returns their message ids. */
async function enqueueNumbered(courier: ChildCourier, queue: string, destinationUrl: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let seq = 0; seq < count; seq++) {
    const { messageId } = await callOk<{ messageId: string }>(courier, 'POST', `/v2/enqueue/${queue}/${destinationUrl}`, {
      body: String(seq),
      headers: { 'content-type': 'text/plain' },
    });
    ids.push(messageId);
  }
  return ids;
}

async function waitForQueueToDrain(courier: ChildCourier, queue: string): Promise<void> {
  await eventually(
    async () => ((await callOk<{ lag: number }>(courier, 'GET', `/v2/queues/${queue}`)).lag === 0 ? true : undefined),
    10_000,
    `queue ${queue} to have lag 0`,
  );
}

// ---------------------------------------------------------------------------
// Verdicts shared by the scenarios.

async function waitForEveryAnswer(destination: CountingDestination, count: number): Promise<void> {
  await eventually(
    () => {
      const answered = new Set(destination.hits.filter((hit) => hit.end === 'answered').map((hit) => hit.seq));
      return answered.size >= count ? true : undefined;
    },
    30_000,
    `all ${count} messages to be answered after the restart`,
  );
}

/**
 * Nothing lost, nothing invented, redeliveries only of what the dead process
 * had in flight: every seq was answered; every arrival carries the message id
 * its publish returned; a seq arrives at most once per process, and twice
 * only if the killed process had started it; at most `inFlightLimit` seqs were
 * redelivered (all the dead process could have held).
 */
function assertNothingLostOnlyInFlightRedelivered(hits: Hit[], ids: string[], inFlightLimit: number): number[] {
  const bySeq = new Map<number, Hit[]>();
  for (const hit of hits) {
    assert.ok(Number.isInteger(hit.seq) && hit.seq >= 0 && hit.seq < ids.length, `unexpected body ${hit.seq}`);
    assert.equal(hit.messageId, ids[hit.seq], `seq ${hit.seq} arrived with a message id its publish did not return`);
    assert.ok(hit.era === 0 || hit.era === 1, `hit of seq ${hit.seq} on a connection of unknown era`);
    bySeq.set(hit.seq, [...(bySeq.get(hit.seq) ?? []), hit]);
  }
  const unanswered = ids.map((_, seq) => seq).filter((seq) => !(bySeq.get(seq) ?? []).some((hit) => hit.end === 'answered'));
  assert.deepEqual(unanswered, [], 'acknowledged messages never answered by the destination');

  const redelivered: number[] = [];
  for (const [seq, list] of bySeq) {
    if (list.length === 1) continue;
    assert.deepEqual(
      list.map((hit) => hit.era),
      [0, 1],
      `seq ${seq} arrived ${list.length} times; only once before and once after the kill may it arrive`,
    );
    redelivered.push(seq);
  }
  assert.ok(
    redelivered.length <= inFlightLimit,
    `${redelivered.length} messages redelivered (${redelivered.join(', ')}); the dead process held at most ${inFlightLimit}`,
  );
  for (const hit of hits) {
    if (hit.end === 'abandoned') {
      assert.equal(hit.era, 0, `seq ${hit.seq}: only the killed process's requests are abandoned`);
      assert.ok(redelivered.includes(hit.seq), `seq ${hit.seq} was cut off by the kill but never delivered again`);
    }
  }
  return redelivered.sort((a, b) => a - b);
}

/**
 * FIFO admission with `parallelism` slots: when seq k first arrives, it was
 * admitted after every earlier seq, and at most parallelism-1 of those still
 * held a slot; the rest had finished, so they had arrived.
 */
function assertFifoAdmission(hits: Hit[], parallelism: number): void {
  const arrived = new Set<number>();
  for (const hit of hits) {
    if (arrived.has(hit.seq)) continue;
    let earlierNotArrived = 0;
    for (let seq = 0; seq < hit.seq; seq++) if (!arrived.has(seq)) earlierNotArrived += 1;
    assert.ok(
      earlierNotArrived <= parallelism - 1,
      `seq ${hit.seq} arrived while ${earlierNotArrived} earlier messages had not (parallelism ${parallelism})`,
    );
    arrived.add(hit.seq);
  }
}

const summary = (destination: CountingDestination, redelivered: number[]) =>
  `${destination.hits.length} arrivals (${destination.hits.filter((hit) => hit.era === 0).length} before the kill, ` +
  `${destination.hits.filter((hit) => hit.end === 'abandoned').length} cut off by it); redelivered: [${redelivered.join(', ')}]; ` +
  `most open at once: ${destination.maxOpen}`;

// ---------------------------------------------------------------------------

describe('queues, flow control and schedules survive kill -9 and restart', { concurrency: 2 }, () => {
  describe('queue order and flow-control limits', { concurrency: 1 }, () => {
    it('a parallelism-1 queue keeps FIFO order and one request at a time across a kill -9, losing nothing', { timeout: 60_000 }, async (t) => {
      const COUNT = 200;
      const destination = await startCountingDestination(5);
      try {
        await withRun(t, async (run) => {
          let courier = await run.start();
          const queue = 'fifo-restart';
          // Paused while filling: all 200 are acknowledged before the first starts, so the kill cannot cut off an enqueue.
          await callOk(courier, 'POST', '/v2/queues', { json: { queueName: queue, parallelism: 1, paused: true } });
          const ids = await enqueueNumbered(courier, queue, destination.url('/fifo'), COUNT);
          killAtHit(run, destination, 50);
          await callOk(courier, 'POST', `/v2/queues/${queue}/resume`);

          courier = await restartAfterKill(run, destination);
          const beforeKill = destination.hits.filter((hit) => hit.era === 0);
          assert.ok(beforeKill.length < COUNT, `messages were still waiting at the kill (${beforeKill.length} arrived)`);
          const settings = await callOk<{ parallelism: number; paused: boolean }>(courier, 'GET', `/v2/queues/${queue}`);
          assert.equal(settings.parallelism, 1);
          assert.equal(settings.paused, false);

          await waitForEveryAnswer(destination, COUNT);
          await waitForQueueToDrain(courier, queue);
          const redelivered = assertNothingLostOnlyInFlightRedelivered(destination.hits, ids, 1);
          t.diagnostic(summary(destination, redelivered));

          assert.equal(destination.maxOpen, 1, 'two requests of a parallelism-1 queue were open at once');
          // Strict FIFO: the arrivals are 0, 1, 2, … with at most one repeat, of the message in flight at the kill.
          const seqs = destination.hits.map((hit) => hit.seq);
          const withoutRepeats = seqs.filter((seq, index) => index === 0 || seq !== seqs[index - 1]);
          assert.deepEqual(withoutRepeats, Array.from({ length: COUNT }, (_, seq) => seq), 'arrivals out of FIFO order');
          if (redelivered.length > 0) {
            assert.deepEqual(redelivered, [beforeKill.at(-1)!.seq], 'only the message in flight at the kill may arrive twice');
          }
        });
      } finally {
        await destination.close();
      }
    });

    it('a parallelism-3 queue never has more than 3 requests open, before, across and after a kill -9', { timeout: 60_000 }, async (t) => {
      const COUNT = 60;
      const PARALLELISM = 3;
      const destination = await startCountingDestination(50);
      try {
        await withRun(t, async (run) => {
          let courier = await run.start();
          const queue = 'parallel-restart';
          await callOk(courier, 'POST', '/v2/queues', { json: { queueName: queue, parallelism: PARALLELISM, paused: true } });
          const ids = await enqueueNumbered(courier, queue, destination.url('/parallel'), COUNT);
          killAtHit(run, destination, 25, 25);
          await callOk(courier, 'POST', `/v2/queues/${queue}/resume`);

          courier = await restartAfterKill(run, destination);
          const beforeKill = destination.hits.filter((hit) => hit.era === 0).length;
          assert.ok(beforeKill < COUNT, `messages were still waiting at the kill (${beforeKill} arrived)`);
          assert.equal((await callOk<{ parallelism: number }>(courier, 'GET', `/v2/queues/${queue}`)).parallelism, PARALLELISM);

          await waitForEveryAnswer(destination, COUNT);
          await waitForQueueToDrain(courier, queue);
          const redelivered = assertNothingLostOnlyInFlightRedelivered(destination.hits, ids, PARALLELISM);
          t.diagnostic(summary(destination, redelivered));

          assert.ok(destination.maxOpen <= PARALLELISM, `${destination.maxOpen} requests open at once; the queue allows ${PARALLELISM}`);
          // Shows the counter sees parallel requests at all, so the bound above is not met by a queue running one at a time.
          assert.ok(destination.maxOpen >= 2, `the queue never ran two at once (most open: ${destination.maxOpen})`);
          assertFifoAdmission(destination.hits, PARALLELISM);
        });
      } finally {
        await destination.close();
      }
    });

    it('a flow-control key keeps its parallelism and rate across a kill -9, and its limits survive the restart', { timeout: 60_000 }, async (t) => {
      const COUNT = 40;
      const PARALLELISM = 2;
      const RATE = 10;
      const PERIOD_MS = 1_000;
      const key = 'restart-key:fc@test';
      const destination = await startCountingDestination(50);
      try {
        await withRun(t, async (run) => {
          let courier = await run.start();
          const ids: string[] = [];
          for (let seq = 0; seq < COUNT; seq++) {
            // Two destinations under one key: the limits are the key's, not a destination's.
            const path = seq % 2 === 0 ? '/fc-a' : '/fc-b';
            const { messageId } = await callOk<{ messageId: string }>(courier, 'POST', `/v2/publish/${destination.url(path)}`, {
              body: String(seq),
              headers: {
                'content-type': 'text/plain',
                'upstash-flow-control-key': key,
                'upstash-flow-control-value': `parallelism=${PARALLELISM}, rate=${RATE}, period=1s`,
              },
            });
            ids.push(messageId);
          }
          killAtHit(run, destination, 10, 25);

          courier = await restartAfterKill(run, destination);
          const beforeKill = destination.hits.filter((hit) => hit.era === 0).length;
          assert.ok(beforeKill < COUNT, `messages were still waiting at the kill (${beforeKill} arrived)`);
          const state = await callOk<Record<string, unknown>>(courier, 'GET', `/v2/flowControl/${key}`);
          assert.equal(state.flowControlKey, key);
          assert.equal(state.parallelismMax, PARALLELISM);
          assert.equal(state.rateMax, RATE);
          assert.equal(state.ratePeriod, PERIOD_MS / 1000);

          await waitForEveryAnswer(destination, COUNT);
          const redelivered = assertNothingLostOnlyInFlightRedelivered(destination.hits, ids, PARALLELISM);
          t.diagnostic(summary(destination, redelivered));
          assert.deepEqual(
            [...new Set(destination.hits.map((hit) => hit.path))].sort(),
            ['/fc-a', '/fc-b'],
          );

          assert.ok(destination.maxOpen <= PARALLELISM, `${destination.maxOpen} requests open at once; the key allows ${PARALLELISM}`);
          assert.ok(destination.maxOpen >= 2, `the key never ran two at once (most open: ${destination.maxOpen})`);
          // The restart takes about as long as a 1 s window, so whether the window's count itself
          // survives is not observable here; what is: the limit holds on both sides of the kill,
          // and the key's limits come back from the store (checked above).
          // A window opens at the first attempt after the last one ended and holds at most RATE
          // attempts, so 2·RATE+1 consecutive attempts touch three windows and span more than a
          // period. The slack covers the spread between Courier starting an attempt and it arriving here.
          const starts = destination.hits.map((hit) => hit.at).sort((a, b) => a - b);
          const SLACK_MS = 100;
          for (let i = 0; i + 2 * RATE < starts.length; i++) {
            const span = starts[i + 2 * RATE]! - starts[i]!;
            assert.ok(span >= PERIOD_MS - SLACK_MS, `${2 * RATE + 1} attempts started within ${span} ms; the key allows ${RATE} per ${PERIOD_MS} ms`);
          }

          // No slot or waiting message is left behind by the kill.
          const drained = await eventually(async () => {
            const now = await callOk<{ parallelismCount: number; waitListSize: number }>(courier, 'GET', `/v2/flowControl/${key}`);
            return now.parallelismCount === 0 && now.waitListSize === 0 ? now : undefined;
          }, 5_000, `flow-control key ${key} to be idle`);
          assert.equal(drained.parallelismCount, 0);
        });
      } finally {
        await destination.close();
      }
    });
  });

  it(
    'SLOW (~1.5-2.3 min, real minute boundaries): a schedule whose ticks were missed while the server was down fires once on restart, not once per missed tick',
    { timeout: 200_000 },
    async (t) => {
      const destination = await startCountingDestination(0);
      try {
        await withRun(t, async (run) => {
          let courier = await run.start();
          // Created, and the server killed, well before the next minute boundary, so no tick fires before the kill.
          if (Date.now() % MINUTE > 50_000) await sleep(MINUTE - (Date.now() % MINUTE) + 500);
          const { scheduleId } = await callOk<{ scheduleId: string }>(
            courier,
            'POST',
            `/v2/schedules/${destination.url('/tick')}`,
            { body: 'tick', headers: { 'content-type': 'text/plain', 'upstash-cron': '* * * * *' } },
          );
          const created = await callOk<{ nextScheduleTime: number }>(courier, 'GET', `/v2/schedules/${scheduleId}`);
          assert.equal(created.nextScheduleTime % MINUTE, 0);
          await run.kill();
          // The missed ticks are the boundaries after the kill, read from when it happened rather than
          // asserted to come before it: on a slow machine a tick may still fire before the kill, and
          // then it is an era-0 hit that the counts below leave out.
          const killedAt = Date.now();
          const firstMissed = Math.floor(killedAt / MINUTE) * MINUTE + MINUTE;

          // Down across two ticks: a replaying scheduler would fire twice.
          const secondMissed = firstMissed + MINUTE;
          t.diagnostic(`killed; restarting after ${new Date(secondMissed).toISOString()} (in ${Math.round((secondMissed - Date.now()) / 1000)} s)`);
          await sleep(secondMissed - Date.now() + 1_000);
          destination.era = 1;
          const restartedAt = Date.now();
          courier = await run.start();

          const recovered = () => destination.hits.filter((h) => h.era === 1);
          const [hit] = await eventually(() => (recovered().length > 0 ? recovered() : undefined), 10_000, 'the recovery tick');
          assert.equal(hit!.scheduleId, scheduleId);
          assert.equal(hit!.path, '/tick');
          // Quiet long enough for a burst to show up. Hits from the next real tick on are left out by
          // their arrival time, not by asserting how long the check took.
          await sleep(3_000);
          const nextRealTick = secondMissed + MINUTE;
          const onRecovery = recovered().filter((h) => h.at < nextRealTick);
          assert.equal(onRecovery.length, 1, `the missed ticks fired ${onRecovery.length} times on recovery`);

          const schedule = await callOk<{ nextScheduleTime?: number; lastScheduleTime?: number }>(
            courier,
            'GET',
            `/v2/schedules/${scheduleId}`,
          );
          const now = Date.now();
          assert.ok(schedule.nextScheduleTime !== undefined && schedule.nextScheduleTime > now, `nextScheduleTime ${schedule.nextScheduleTime} is not in the future`);
          assert.equal(schedule.nextScheduleTime % MINUTE, 0);
          assert.ok(schedule.nextScheduleTime <= now + MINUTE, 'nextScheduleTime is the coming minute, not one further on');
          assert.ok(schedule.lastScheduleTime !== undefined && schedule.lastScheduleTime >= restartedAt, 'lastScheduleTime is the recovery firing');

          const { runs } = await callOk<{ runs: { trigger: string; messageId: string }[] }>(courier, 'GET', `/v2/schedules/${scheduleId}/runs`);
          // One cron run per delivery: the recovery firing, plus any tick that beat the kill.
          assert.ok(runs.some((r) => r.messageId === hit!.messageId), 'the recovery firing is a run');
          assert.deepEqual(
            runs.map((r) => [r.trigger, r.messageId]).sort(),
            destination.hits.map((h) => ['cron', h.messageId]).sort(),
          );
        });
      } finally {
        await destination.close();
      }
    },
  );
});
