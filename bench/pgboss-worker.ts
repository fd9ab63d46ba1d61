/**
 * The pg-boss side of the baseline (bench/pgboss.ts), in its own process as
 * Courier is: `workers` pg-boss work loops on one queue, each fetching up to
 * `batchSize` jobs and POSTing every job's payload to the sink at once with
 * undici; a batch completes when all its POSTs are answered 200 (otherwise
 * pg-boss fails the batch and retries it, which the sink counts as duplicates).
 *
 * Config: JSON in env PGBOSS_BENCH (PgBossWorkerConfig). Prints `{"event":"ready"}`
 * on stdout once every work loop is registered.
 */
import PgBoss from 'pg-boss';
import { Pool } from 'undici';
import type { JobData, PgBossReadyLine, PgBossWorkerConfig } from './pgboss.js';

const config = JSON.parse(process.env.PGBOSS_BENCH ?? '') as PgBossWorkerConfig;
const sink = new URL(config.sinkUrl);
const pool = new Pool(sink.origin, { connections: config.sinkConnections, keepAliveTimeout: 30_000, headersTimeout: 30_000, bodyTimeout: 30_000 });

async function post(body: string): Promise<void> {
  const res = await pool.request({ method: 'POST', path: sink.pathname, headers: { 'content-type': 'application/json' }, body });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`sink answered ${res.statusCode}: ${text.slice(0, 200)}`);
}

const boss = new PgBoss({
  connectionString: config.connectionString,
  schema: config.schema,
  // One connection per loop's fetch, one per its (unawaited) complete, and spare.
  max: config.workers * 2 + 2,
  supervise: false,
  schedule: false,
  migrate: false,
  application_name: 'courier-bench-pgboss-worker',
});
boss.on('error', (error) => process.stderr.write(`pg-boss error: ${error instanceof Error ? error.message : String(error)}\n`));
await boss.start();

for (let i = 0; i < config.workers; i++) {
  let id: string | undefined;
  id = await boss.work<JobData>(
    config.queue,
    { batchSize: config.batchSize, pollingIntervalSeconds: config.pollingIntervalSeconds, priority: false },
    async (jobs) => {
      // Found work: fetch again as soon as this batch is done instead of sleeping out the polling interval.
      if (id !== undefined) boss.notifyWorker(id);
      await Promise.all(jobs.map((job) => post(job.data.b)));
    },
  );
}

const ready: PgBossReadyLine = { event: 'ready' };
process.stdout.write(`${JSON.stringify(ready)}\n`);

// If the runner dies without signalling, stdin (a pipe from it) closes: follow it.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
