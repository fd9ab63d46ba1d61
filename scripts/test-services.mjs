// The shared stores the tests run on, and a check that they take the test
// credentials: scripts/run-tests.mjs calls it once per store before any test,
// so a wrong URL fails the run with one line instead of cancelling every case.
//
// The defaults must match test/helpers/services.ts, which the tests read.
export const TEST_SERVICES = {
  postgres: { env: 'COURIER_TEST_POSTGRES_URL', fallback: 'postgres://postgres@127.0.0.1:5432/test' },
  redis: { env: 'COURIER_TEST_REDIS_URL', fallback: 'redis://127.0.0.1:6379' },
};

/** Short: a developer's machine either has the service or it does not. */
const CONNECT_TIMEOUT_S = 3;

/** Errors that mean nothing answered at that address, as opposed to a server that said no. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'CONNECT_TIMEOUT']);

export function serviceUrl(store) {
  const service = TEST_SERVICES[store];
  return process.env[service.env] || service.fallback;
}

/** `host:port` of a URL, with the scheme's default port. */
export function addressOf(url) {
  const { hostname, port, protocol } = new URL(url);
  return `${hostname}:${port || (protocol.startsWith('redis') ? 6379 : 5432)}`;
}

/**
 * Connects and authenticates with the real driver, runs one trivial command.
 * Resolves { ok: true } | { ok: false, unreachable: boolean, reason: string }; never rejects.
 */
export async function probe(store, url) {
  try {
    if (store === 'postgres') await probePostgres(url);
    else await probeRedis(url);
    return { ok: true };
  } catch (error) {
    const code = error?.code ?? error?.cause?.code;
    const reason = String(error?.message ?? error).split('\n')[0];
    return { ok: false, unreachable: UNREACHABLE.has(code) || /ECONNREFUSED|ETIMEDOUT|ENOTFOUND/.test(reason), reason };
  }
}

async function probePostgres(url) {
  const { default: postgres } = await import('postgres');
  const sql = postgres(url, { max: 1, connect_timeout: CONNECT_TIMEOUT_S, idle_timeout: 1, onnotice: () => undefined });
  try {
    await sql`select 1`;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

async function probeRedis(url) {
  const { Redis } = await import('ioredis');
  // No retries and no offline queue: one attempt, and its error is the answer.
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_S * 1000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let lastError;
  redis.on('error', (error) => (lastError = error));
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    // ioredis may reject with a generic "Connection is closed." after the real cause was emitted.
    throw lastError && /closed/i.test(String(error?.message)) ? lastError : error;
  } finally {
    redis.disconnect();
  }
}
