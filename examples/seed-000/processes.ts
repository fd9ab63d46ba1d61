/**
 * The demo's child processes: Courier, the gateway and the drive-collector
 * instances, each a real `node --import tsx …` process started from this
 * repository, so a SIGKILL is a real crash and a port is a real port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Child {
  name: string;
  process: ChildProcess;
  /** Resolves once the process has exited, however. */
  exited: Promise<void>;
  /** The tail of its stderr and non-JSON stdout, for explaining a failure. */
  output(): string;
}

/** A port nobody listens on right now (Courier and the gateway must know their URL before they start). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The parent's environment minus anything that would configure Courier, the SDK or Node's test runner in a child. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^(QSTASH_|COURIER_|GATEWAY_|UPSTASH_|NODE_TEST)/.test(key) || key === 'PORT' || key === 'HOST') continue;
    env[key] = value;
  }
  return env;
}

/**
 * Starts `node --import tsx <script> …args` in the repository root. Every
 * stdout line that is a JSON object goes to `onRecord`; everything else is
 * kept as output.
 */
export function spawnScript(
  name: string,
  script: string,
  args: string[],
  env: Record<string, string>,
  onRecord: (record: Record<string, unknown>) => void = () => undefined,
): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: REPO_ROOT,
    env: { ...cleanEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (text: string) => {
    output = (output + text).slice(-16 * 1024);
  };
  let pending = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      const record = parseRecord(line);
      if (record) onRecord(record);
      else keep(`${line}\n`);
    }
  });
  child.stderr.setEncoding('utf8').on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { name, process: child, exited, output: () => output };
}

function parseRecord(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function isRunning(child: Child): boolean {
  return child.process.exitCode === null && child.process.signalCode === null;
}

/** Sends `signal` and waits for the exit; a process that ignores SIGTERM for 10 s is killed. */
export async function stopChild(child: Child, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  if (!isRunning(child)) return;
  child.process.kill(signal);
  const force = setTimeout(() => child.process.kill('SIGKILL'), 10_000);
  await child.exited;
  clearTimeout(force);
}

/** Polls `check` every 50 ms until it returns true; on timeout throws with `explain()` appended. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, explain: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${explain() ? `\n${explain()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits until `url` answers 200, failing early (with its output) if the child dies first. */
export async function untilServing(child: Child, url: string, timeoutMs = 30_000): Promise<void> {
  await until(
    `${child.name} to serve ${url}`,
    async () => {
      if (!isRunning(child)) throw new Error(`${child.name} exited with ${child.process.exitCode ?? child.process.signalCode}:\n${child.output()}`);
      try {
        const response = await fetch(url);
        await response.arrayBuffer();
        return response.status === 200;
      } catch {
        return false;
      }
    },
    timeoutMs,
    () => child.output(),
  );
}
