/**
 * The real PostgreSQL and Redis the store contract runs against. On a
 * developer machine without them those cases skip with one line saying why;
 * in CI (`CI` set) a missing service is a failure, never a skip.
 */
import { createConnection } from 'node:net';

export const POSTGRES_URL = process.env.COURIER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.COURIER_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port) });
    socket.setTimeout(1_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** The reason to skip, or undefined when the service is there. Throws in CI. */
export async function unavailable(name: 'PostgreSQL' | 'Redis', url: string): Promise<string | undefined> {
  if (await reachable(url)) return undefined;
  const reason = `${name} is not reachable at ${url}; its store cases are skipped (start it, or set the COURIER_TEST_* URL)`;
  if (process.env.CI) throw new Error(`${reason} — but CI must run them`);
  console.log(`# ${reason}`);
  return reason;
}
