/**
 * What health probes cost publishes (issue 11): publish latency at a fixed
 * offered rate, with and without two clients polling /health/detailed, on a
 * store holding a large backlog.
 *
 *   npm run bench:health                                   sqlite, 200,000 stored, 200 publishes/s for 10 s
 *   npm run bench:health -- --store postgres --backlog 50000 --seconds 5
 *
 * The backlog is delayed a day, so nothing is delivered while measuring: the
 * publishes are the only work, and the pollers (8 requests/s each, 16 in
 * all, with the token) the only interference. The publisher is open-loop: a
 * publish starts every 1000/rate ms whether or not the last has answered, so
 * a stall shows in the latencies rather than slowing the offered load.
 * Prints one markdown row: p50/p99 without and with polling, and the p99 ratio.
 */
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { CourierProcess } from './courier-process.js';
import { formatFixed, percentile } from './stats.js';
import { STORE_KINDS, type StoreKind } from './stores.js';

const POLLERS = 2;
const POLL_EVERY_MS = 125;
const BATCH = 1000;
/** Nobody listens here, and nothing is due for a day. */
const DESTINATION = 'http://127.0.0.1:9/bench-health';

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'sqlite' },
    backlog: { type: 'string', default: '200000' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
  },
});
const store = values.store as StoreKind;
if (!STORE_KINDS.includes(store)) throw new Error(`--store must be one of ${STORE_KINDS.join(', ')}`);
const backlog = Number(values.backlog);
const rate = Number(values.rate);
const seconds = Number(values.seconds);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function seed(pool: Pool, token: string): Promise<void> {
  const item = JSON.stringify({ destination: DESTINATION, headers: { 'Upstash-Delay': '1d' }, body: 'backlog' });
  for (let done = 0; done < backlog; done += BATCH) {
    const count = Math.min(BATCH, backlog - done);
    const res = await pool.request({
      method: 'POST',
      path: '/v2/batch',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: `[${Array.from({ length: count }, () => item).join(',')}]`,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`seeding answered ${res.statusCode}: ${text.slice(0, 200)}`);
  }
}

/** Latencies (ms) of `rate × seconds` publishes started on a fixed schedule. */
async function publishAtRate(pool: Pool, token: string): Promise<number[]> {
  const total = rate * seconds;
  const gap = 1000 / rate;
  const start = performance.now();
  const latencies: Promise<number>[] = [];
  for (let i = 0; i < total; i++) {
    const wait = start + i * gap - performance.now();
    if (wait > 0) await sleep(wait);
    const sent = performance.now();
    latencies.push(
      pool
        .request({
          method: 'POST',
          path: `/v2/publish/${DESTINATION}`,
          headers: { authorization: `Bearer ${token}`, 'upstash-delay': '1d' },
          body: 'measured',
        })
        .then(async (res) => {
          await res.body.text();
          if (res.statusCode !== 200) throw new Error(`publish answered ${res.statusCode}`);
          return performance.now() - sent;
        }),
    );
  }
  return Promise.all(latencies);
}

async function poll(pool: Pool, token: string, signal: AbortSignal): Promise<number> {
  let polls = 0;
  while (!signal.aborted) {
    const res = await pool.request({ method: 'GET', path: '/health/detailed', headers: { authorization: `Bearer ${token}` } });
    await res.body.text();
    if (res.statusCode !== 200) throw new Error(`/health/detailed answered ${res.statusCode}`);
    polls++;
    await sleep(POLL_EVERY_MS);
  }
  return polls;
}

const courier = await CourierProcess.start(store);
const pool = new Pool(courier.origin, { connections: 64 });
try {
  const seeded = performance.now();
  await seed(pool, courier.token);
  console.error(`# seeded ${backlog} messages in ${formatFixed((performance.now() - seeded) / 1000, 1)} s`);
  // Warm-up: connections, statement caches, JIT.
  await publishAtRate(pool, courier.token);

  const quiet = await publishAtRate(pool, courier.token);
  const stop = new AbortController();
  const pollers = Array.from({ length: POLLERS }, () => poll(pool, courier.token, stop.signal));
  const polled = await publishAtRate(pool, courier.token);
  stop.abort();
  const polls = (await Promise.all(pollers)).reduce((a, b) => a + b, 0);

  const p = (values: number[], q: number) => percentile(values, q) ?? Number.NaN;
  console.log('| store | backlog | publishes/s | p50 / p99 quiet (ms) | p50 / p99 polled (ms) | /health/detailed polls | p99 ratio |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  console.log(
    `| ${store} | ${backlog} | ${rate} | ${formatFixed(p(quiet, 50), 1)} / ${formatFixed(p(quiet, 99), 1)} | ` +
      `${formatFixed(p(polled, 50), 1)} / ${formatFixed(p(polled, 99), 1)} | ${polls} | ${formatFixed(p(polled, 99) / p(quiet, 99), 2)} |`,
  );
} finally {
  await pool.close();
  await courier.stop();
}
