/**
 * Starts and stops a Courier server for one measurement. Each start gets a
 * fresh data directory and a fresh store (bench/stores.ts), so no backlog,
 * retry or database growth from one measurement can slow down the next.
 * CourierCluster starts several nodes on one shared store.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { OutputTail, exited, freePort, registerTempDir, removeTempDir, sleep, spawnManaged, stopChild } from './processes.js';
import { createFreshStore, type FreshStore, type StoreKind } from './stores.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
/**
 * What `node --import tsx` runs. COURIER_BENCH_ENTRY swaps in another entry
 * point (say, a stand-in server while src/ is unfinished); relative to the repo root.
 */
const ENTRY = resolve(REPO_ROOT, process.env.COURIER_BENCH_ENTRY ?? 'src/main.ts');
/**
 * Extra Node flags for each Courier process only, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`
 * to profile Courier under load (NODE_OPTIONS refuses --cpu-prof, and would profile every process).
 */
const COURIER_NODE_ARGS = (process.env.COURIER_BENCH_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== '');
const READY_TIMEOUT_MS = 30_000;

export function courierEntry(): string {
  return ENTRY;
}

export function courierEntryExists(): boolean {
  return existsSync(ENTRY);
}

/** What every node of one cluster must share: the token clients use and the keys deliveries are signed with. */
/**
 * Starts Courier's entry (`args` after it, e.g. `gateway`) with `env`, with
 * COURIER_BENCH_NODE_ARGS applied; its output is kept, not printed, and shown
 * only if the process fails a measurement.
 */
export function spawnCourier(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; output: OutputTail } {
  const output = new OutputTail();
  const child = spawnManaged(process.execPath, [...COURIER_NODE_ARGS, '--import', 'tsx', ENTRY, ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk: Buffer) => output.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => output.push(chunk));
  return { child, output };
}

/** Polls `GET /health` until `healthy` accepts the answer; fails at once if the process exits, or after READY_TIMEOUT_MS. */
export async function waitForHealth(
  started: { name: string; child: ChildProcess; origin: string; describe(): string },
  healthy: (status: number, text: string) => boolean,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let died = false;
  void exited(started.child).then(() => (died = true));
  let lastError = '';
  while (Date.now() < deadline) {
    if (died) throw new Error(`${started.name} exited during startup\n${started.describe()}`);
    try {
      const res = await request(`${started.origin}/health`, { headersTimeout: 1_000, bodyTimeout: 1_000 });
      const text = await res.body.text();
      if (healthy(res.statusCode, text)) return;
      lastError = `GET /health answered ${res.statusCode}: ${text.slice(0, 200)}`;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    await sleep(100);
  }
  throw new Error(`${started.name} not healthy within ${READY_TIMEOUT_MS / 1000} s (last: ${lastError})\n${started.describe()}`);
}

/** Resolves with the process once it answers its health probe; stops it and rethrows if it never does. */
export async function healthyOrStopped<T extends { waitUntilHealthy(): Promise<void>; stop(): Promise<void> }>(started: T): Promise<T> {
  try {
    await started.waitUntilHealthy();
  } catch (error) {
    await started.stop();
    throw error;
  }
  return started;
}

export interface Identity {
  token: string;
  currentSigningKey: string;
  nextSigningKey: string;
}

export function newIdentity(): Identity {
  return {
    token: `bench_${randomBytes(12).toString('hex')}`,
    currentSigningKey: `sig_current_${randomBytes(8).toString('hex')}`,
    nextSigningKey: `sig_next_${randomBytes(8).toString('hex')}`,
  };
}

/**
 * The environment of a Courier process (either mode) on `port` with its own
 * data dir and credentials: the runner's own, minus `dropped` inherited
 * variables, so that nothing set in the runner's shell changes what is measured.
 */
export function courierEnv(port: number, dataDir: string, identity: Identity, store: FreshStore, dropped: (name: string) => boolean): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (name !== 'COURIER_STORE' && !dropped(name)) env[name] = value;
  Object.assign(env, {
    PORT: String(port),
    COURIER_DATA_DIR: dataDir,
    QSTASH_TOKEN: identity.token,
    QSTASH_CURRENT_SIGNING_KEY: identity.currentSigningKey,
    QSTASH_NEXT_SIGNING_KEY: identity.nextSigningKey,
    COURIER_LOG_LEVEL: 'warn',
  });
  // An inherited COURIER_STORE must not redirect a SQLite measurement.
  if (store.courierStore !== undefined) env.COURIER_STORE = store.courierStore;
  return env;
}

export class CourierProcess {
  private constructor(
    private readonly child: ChildProcess,
    private readonly output: OutputTail,
    private readonly dataDir: string,
    readonly port: number,
    readonly token: string,
    /** dropped on stop() when this process owns it; a cluster drops its own */
    private readonly ownedStore: FreshStore | undefined,
  ) {}

  /** One node on a fresh store of `kind`, dropped when it stops. */
  static async start(kind: StoreKind = 'sqlite'): Promise<CourierProcess> {
    const store = await createFreshStore(kind);
    try {
      return await CourierProcess.launch(store, newIdentity(), true);
    } catch (error) {
      await store.drop();
      throw error;
    }
  }

  static async launch(store: FreshStore, identity: Identity, ownsStore: boolean): Promise<CourierProcess> {
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'courier-bench-'));
    registerTempDir(dataDir);
    const { child, output } = spawnCourier([], courierEnv(port, dataDir, identity, store, () => false));
    return healthyOrStopped(new CourierProcess(child, output, dataDir, port, identity.token, ownsStore ? store : undefined));
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** One authenticated API call; throws on anything but 2xx, with Courier's answer and recent output. */
  async api(method: 'GET' | 'POST' | 'DELETE', path: string, init: { body?: string; headers?: Record<string, string> } = {}): Promise<string> {
    const res = await request(`${this.origin}${path}`, {
      method,
      body: init.body,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...init.headers,
      },
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode > 299) {
      throw new Error(`${method} ${path} answered ${res.statusCode}: ${text.slice(0, 300)}\n${this.describe()}`);
    }
    return text;
  }

  /** The last lines Courier logged, for error messages. */
  describe(): string {
    const status = this.running ? 'running' : `exited (code ${this.child.exitCode}, signal ${this.child.signalCode})`;
    const tail = this.output.toString();
    return `Courier on port ${this.port} is ${status}; its last output:\n${tail === '' ? '(none)' : tail}`;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
    removeTempDir(this.dataDir);
    await this.ownedStore?.drop();
  }

  waitUntilHealthy(): Promise<void> {
    return waitForHealth({ name: 'Courier', child: this.child, origin: this.origin, describe: () => this.describe() }, (status, text) => status === 200 && text.trim() === 'OK');
  }
}

/**
 * `nodes` Courier processes on one fresh store, sharing token and signing
 * keys, as a user would run them behind a load balancer. Started one after
 * the other, so the first applies the migrations alone.
 */
export class CourierCluster {
  private constructor(
    readonly store: FreshStore,
    readonly nodes: CourierProcess[],
  ) {}

  static async start(kind: StoreKind, nodes: number): Promise<CourierCluster> {
    if (nodes > 1 && kind === 'sqlite') throw new Error('several Courier nodes need a shared store: use --store postgres or --store redis');
    const store = await createFreshStore(kind);
    const cluster = new CourierCluster(store, []);
    const identity = newIdentity();
    try {
      for (let i = 0; i < nodes; i++) cluster.nodes.push(await CourierProcess.launch(store, identity, false));
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  get token(): string {
    return this.nodes[0]!.token;
  }

  describe(): string {
    const where = this.store.name === undefined ? this.store.kind : `${this.store.kind} ${this.store.name}`;
    return [`store: ${where}`, ...this.nodes.map((node, i) => `node ${i + 1}: ${node.describe()}`)].join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
    await this.store.drop();
  }
}
