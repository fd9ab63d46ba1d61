/**
 * A real `node --import tsx src/main.ts` as a child process, for the tests
 * that must see exactly what an operator sees (stdout, stderr, files, kill -9).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { eventually } from './destination.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The parent's environment without anything that would configure Courier or the test runner in the child. */
export function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^(QSTASH_|COURIER_|UPSTASH_|NODE_TEST)/.test(key) || key === 'PORT' || key === 'HOST') continue;
    env[key] = value;
  }
  return env;
}

export interface MainProcess {
  child: ChildProcess;
  /** Resolves once the process has exited, whatever the reason. */
  exited: Promise<void>;
}

const children = new Set<ChildProcess>();

/**
 * Spawns `node --import tsx src/main.ts` in the repository root with the
 * cleaned environment plus `env`, and hands every stdout and stderr chunk to
 * `onOutput`. Register `after(killChildren)` in a file that uses it.
 */
export function spawnMain(env: Record<string, string>, onOutput: (chunk: Buffer) => void): MainProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPO_ROOT,
    env: { ...cleanEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdout.on('data', onOutput);
  child.stderr.on('data', onOutput);
  return { child, exited };
}

/** SIGKILLs every spawned child still running: the safety net for a test that failed before stopping its own. */
export function killChildren(): void {
  for (const child of children) child.kill('SIGKILL');
}

/** Waits until `url` + `healthPath` answers 200; fails early, with the output so far, if the child exits. */
export async function waitUntilServing(main: MainProcess, url: string, healthPath: string, output: () => string): Promise<void> {
  await eventually(async () => {
    if (main.child.exitCode !== null) throw new Error(`courier exited with ${main.child.exitCode}:\n${output()}`);
    try {
      const res = await fetch(`${url}${healthPath}`);
      await res.arrayBuffer();
      return res.status === 200 ? true : undefined;
    } catch {
      return undefined;
    }
  }, 20_000, `the courier child on port ${new URL(url).port} to serve`);
}

/** SIGTERM, then wait for the exit (SIGKILL after 10 s). Does nothing if the process is already gone. */
export async function stopMain(main: MainProcess): Promise<void> {
  if (main.child.exitCode !== null || main.child.signalCode !== null) return;
  main.child.kill('SIGTERM');
  const force = setTimeout(() => main.child.kill('SIGKILL'), 10_000);
  await main.exited;
  clearTimeout(force);
}

export interface ServingCourier extends MainProcess {
  url: string;
  /** The tail of the child's output, for explaining a failure. */
  output(): string;
}

/**
 * Spawns `src/main.ts` on `dataDir` and `port` with `token` and waits until it serves; logs at warn level.
 * `extraEnv` adds to (or overrides) that environment, e.g. `COURIER_STORE` and `COURIER_LEASE` for a node of a cluster.
 */
export async function spawnServingCourier(
  dataDir: string,
  port: number,
  token: string,
  extraEnv: Record<string, string> = {},
): Promise<ServingCourier> {
  // Only the tail is kept: warn-level lines can be many.
  let output = '';
  const main = spawnMain(
    { PORT: String(port), HOST: '127.0.0.1', COURIER_DATA_DIR: dataDir, QSTASH_TOKEN: token, COURIER_LOG_LEVEL: 'warn', ...extraEnv },
    (chunk) => {
      output = (output + chunk.toString()).slice(-64 * 1024);
    },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitUntilServing(main, url, '/health/ready', () => output);
  return { ...main, url, output: () => output };
}
