/**
 * Fails a test file that leaves a timer, socket, server or child process
 * behind. Loaded with `--import` into every test process by
 * scripts/run-tests.mjs; it does nothing outside a test runner's child
 * process (NODE_TEST_CONTEXT=child…), so the runner itself is not checked.
 *
 * How: an async hook records every Timeout, TCP socket, TCP server and child
 * process created after this module loaded, with the stack that created it,
 * and forgets it when it is destroyed (closed, cleared, fired). The runner
 * passes `--test-force-exit`, so the process exits as soon as its tests and
 * root `after` hooks are done, leak or no leak (without it, a leaked ref'd
 * handle hangs the file forever); at that exit, whatever is still open is a
 * leak: it is printed to stderr and the exit code set to 1, which the runner
 * reports as the file failing ('test failed').
 *
 * What counts:
 * - a socket, server or child process still open, ref'd or not: it holds a
 *   port, a connection to a shared store or a process past the test;
 * - a timer still scheduled and ref'd: it would have kept the file alive;
 * - an unref'd setInterval: it keeps doing work (polling a closed store,
 *   probing a stopped server) for as long as the process lives, which in a
 *   long-lived host means forever;
 * - not an unref'd one-shot timeout: it fires at most once, holds nothing
 *   open, and libraries arm them for keep-alive and idle bookkeeping.
 * Allowed: resources the test harness or tsx created for itself (their stack
 * runs through node:internal/test_runner or tsx, with no frame of ours).
 *
 * HAZARD: the harness exits the moment the last hook ends, so closes still in
 * flight must not count: the exit waits up to SETTLE_MS while anything looks
 * leaked, and a handle whose owner let go of it (`destroyed`, not
 * `listening`, exited, or detached), or a keep-alive client socket to one of
 * this file's own servers that has closed, is skipped. A test that does not
 * await its `close()` is therefore not reported, the lesser evil next to
 * failing on a close in flight.
 */
import { createHook } from 'node:async_hooks';
import { writeSync } from 'node:fs';
import { relative } from 'node:path';

const TRACKED = new Set(['Timeout', 'TCPWRAP', 'TCPSERVERWRAP', 'PROCESSWRAP']);
/** Library stacks are deep (undici opens a socket ~20 frames below the test's call). */
const STACK_FRAMES = 60;

interface Tracked {
  type: string;
  resource: object;
  /** Formatted only when a leak is reported: capturing is cheap, formatting is not. */
  origin: Error;
}

const live = new Map<number, Tracked>();

function captureOrigin(): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = STACK_FRAMES;
  const origin = new Error('created here');
  Error.stackTraceLimit = limit;
  return origin;
}

/**
 * Node keeps the JS object (Socket, Server, ChildProcess) on the native handle under an internal
 * symbol, and sets it to null once that object let go of the handle (closed; the destroy hook follows).
 */
function ownerOf(resource: object): Record<string, unknown> | null | undefined {
  const symbol = Object.getOwnPropertySymbols(resource).find((s) => s.description === 'owner_symbol');
  if (!symbol) return undefined;
  const owner = (resource as Record<symbol, unknown>)[symbol];
  return typeof owner === 'object' && owner !== null ? (owner as Record<string, unknown>) : null;
}

/**
 * Every TCP server (the net.Server) this file opened, closed or not: a client socket to one that
 * closed is closing too. Kept from when it listened: a closed server's handle no longer names it.
 */
const servers: { server: Record<string, unknown>; port: number | undefined }[] = [];

function closedServerPorts(): Set<number> {
  const ports = new Set<number>();
  for (const { server, port } of servers) if (server.listening === false && port !== undefined) ports.add(port);
  return ports;
}

function hasRef(resource: object): boolean {
  const fn = (resource as { hasRef?: () => boolean }).hasRef;
  return typeof fn === 'function' ? fn.call(resource) : true;
}

function framesOf(origin: Error): string[] {
  return (origin.stack ?? '')
    .split('\n')
    .slice(1)
    .map((line) => line.trim())
    .filter((line) => line.startsWith('at ') && !line.includes('node:internal/async_hooks') && !line.includes('leak-check.ts'));
}

const isOurs = (frame: string) => !frame.includes('node:') && !frame.includes('/node_modules/');

/**
 * The runtime's own: created by the test harness or tsx with none of our frames on the stack.
 * A stack with neither (a server whose listen() went through a DNS lookup, a socket undici opened
 * after an await) is not the runtime's: it is reported, with the frames it has.
 */
function isRuntimeOwned(frames: readonly string[]): boolean {
  return !frames.some(isOurs) && frames.some((frame) => frame.includes('node:internal/test_runner') || frame.includes('/node_modules/tsx/'));
}

/** One line describing a leaked resource, or undefined if it is not a leak. */
const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
let closedPorts = new Set<number>();

function describeLeak(tracked: Tracked): string | undefined {
  const { type, resource } = tracked;
  if (type === 'Timeout') {
    const timer = resource as { _destroyed?: boolean; _idleTimeout?: number; _repeat?: number | null };
    if (timer._destroyed || timer._idleTimeout === -1) return undefined;
    const repeating = typeof timer._repeat === 'number';
    if (!hasRef(resource) && !repeating) return undefined;
    const ref = hasRef(resource) ? '' : 'unref()ed ';
    return repeating ? `a ${ref}setInterval timer (every ${timer._repeat} ms)` : `a ${ref}setTimeout timer (${timer._idleTimeout} ms)`;
  }
  const owner = ownerOf(resource);
  if (owner === null) return undefined;
  // A handle no JS object owns and with no file descriptor is not open (seen for a spare TCP handle
  // of an http.request socket): nothing to close from a test.
  const fd = (resource as { fd?: unknown }).fd;
  if (owner === undefined && type !== 'PROCESSWRAP' && !(typeof fd === 'number' && fd >= 0)) return undefined;
  if (type === 'TCPWRAP') {
    if (owner?.destroyed === true) return undefined;
    const socket = owner as { remoteAddress?: string; remotePort?: number; localPort?: number } | undefined;
    // A keep-alive client socket (fetch's pool) to a server of ours that closed: the FIN is on its way.
    if (socket?.remotePort !== undefined && LOOPBACK.has(socket.remoteAddress ?? '') && closedPorts.has(socket.remotePort)) return undefined;
    return `an open TCP socket (${socket?.remoteAddress ?? '?'}:${socket?.remotePort ?? '?'}, local port ${socket?.localPort ?? '?'})`;
  }
  if (type === 'TCPSERVERWRAP') {
    if (owner?.listening === false) return undefined;
    const server = owner as { address?: () => unknown } | undefined;
    const address = server?.address?.() as { address?: string; port?: number } | null | undefined;
    return `a listening TCP server (${address?.address ?? '?'}:${address?.port ?? '?'})`;
  }
  if (type === 'PROCESSWRAP') {
    const child = owner as { exitCode?: number | null; signalCode?: string | null; pid?: number; spawnargs?: string[] } | undefined;
    if (child && (child.exitCode !== null || child.signalCode !== null)) return undefined;
    return `a running child process (pid ${child?.pid ?? '?'}: ${(child?.spawnargs ?? []).slice(0, 4).join(' ')})`;
  }
  return undefined;
}

function findLeaks(): string[] {
  closedPorts = closedServerPorts();
  const leaks: string[] = [];
  for (const tracked of live.values()) {
    const frames = framesOf(tracked.origin);
    if (isRuntimeOwned(frames)) continue;
    // An http.Server's own idle-connection sweep: it ends with the server, which is reported itself.
    if (frames.some((frame) => frame.includes('setupConnectionsTracking'))) continue;
    const what = describeLeak(tracked);
    if (what === undefined) continue;
    const ours = frames.filter(isOurs);
    const shown = (ours.length > 0 ? ours : frames).slice(0, 4).map((frame) => `#       ${frame.replace(process.cwd() + '/', '')}`);
    const how = ours.length > 0 ? 'created' : 'created asynchronously (no test frame on the stack)';
    leaks.push(`#   - ${what}, ${how}\n${shown.join('\n')}`);
  }
  return leaks;
}

/**
 * Closes in flight when the last hook ends (a peer's FIN not read yet, a killed child not reaped)
 * get this long to finish before they count. It is spent only while something still looks leaked.
 */
const SETTLE_MS = 1_000;
const SETTLE_STEP_MS = 25;

async function settle(): Promise<void> {
  for (let waited = 0; waited < SETTLE_MS && findLeaks().length > 0; waited += SETTLE_STEP_MS) {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_STEP_MS));
  }
}

function report(): void {
  const leaks = findLeaks();
  if (leaks.length === 0) return;
  const file = relative(process.cwd(), process.argv[1] ?? 'this file');
  const head = `# leak check: ${file} left ${leaks.length} resource(s) open after its tests:`;
  writeSync(2, `${head}\n${leaks.join('\n')}\n# close them in the test (or its after hook), or await their close()\n`);
  process.exitCode = 1;
}

if (process.env.NODE_TEST_CONTEXT?.startsWith('child')) {
  createHook({
    init(asyncId, type, _trigger, resource) {
      if (!TRACKED.has(type)) return;
      live.set(asyncId, { type, resource, origin: captureOrigin() });
      // The owner is attached just after the handle is created, in the same synchronous step.
      if (type === 'TCPSERVERWRAP') {
        queueMicrotask(() => {
          const server = ownerOf(resource) as { address?: () => unknown } | null | undefined;
          // Read now: once closed, a server's address() is null.
          const address = server?.address?.() as { port?: number } | null | undefined;
          if (server) servers.push({ server: server, port: address?.port });
        });
      }
    },
    destroy(asyncId) {
      live.delete(asyncId);
    },
  }).enable();
  // --test-force-exit ends the file with process.exit() right after the last hook: give closes in
  // flight their moment first. A natural exit (the loop drained) needs none, and reports on 'exit'.
  const exit = process.exit.bind(process);
  let settling = false;
  process.exit = ((code?: number) => {
    if (settling) return exit(code);
    settling = true;
    void settle().finally(() => exit(code));
  }) as typeof process.exit;
  process.on('exit', report);
}
