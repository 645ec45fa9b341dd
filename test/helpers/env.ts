/** Temp dirs, quiet loggers, in-process gateways and polling for tests. */
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { onTestFinished } from 'vitest';
import { validateConfig } from '../../gateway/config.js';
import { Gateway } from '../../gateway/gateway.js';
import { createLogger, type Logger } from '../../gateway/logger.js';

export function tempDir(prefix = 'outpost-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A logger that keeps its JSON lines in memory, for asserting what was logged. */
export function memoryLogger(level: 'debug' | 'info' | 'warn' = 'info'): {
  log: Logger;
  lines: Record<string, unknown>[];
} {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger(level, sink), lines };
}

export async function startTestGateway(
  dataDir: string,
  devices: { id: string; publicKey: string }[] = [],
  extra: Record<string, unknown> = {},
) {
  const { log, lines } = memoryLogger();
  const config = validateConfig({
    gateway: { id: 'gw-test', dataDir },
    mqtt: { port: 0 },
    devices,
    simulate: { devices: 0 },
    api: { enabled: false },
    ...extra,
  });
  const gw = await Gateway.start(config, { logger: log, simulate: false });
  return { gw, lines, url: `mqtt://127.0.0.1:${running(gw, 'broker').port}` };
}

/**
 * A temp dir removed when the current test finishes (vitest `onTestFinished`, also when it fails).
 * Call it inside a test.
 */
export function testTempDir(prefix = 'outpost-'): string {
  const tmp = tempDir(prefix);
  onTestFinished(tmp.cleanup);
  return tmp.dir;
}

/**
 * `startTestGateway` on `dataDir` (default a new temp dir), stopped when the current test finishes;
 * then, when the dir is its own, removed. Call it inside a test.
 */
export async function startScopedGateway(
  devices: { id: string; publicKey: string }[] = [],
  extra: Record<string, unknown> = {},
  dataDir?: string,
): ReturnType<typeof startTestGateway> {
  const started = await startTestGateway(dataDir ?? testTempDir('outpost-gw-'), devices, extra);
  onTestFinished(() => started.gw.stop());
  return started;
}

/** The parts a gateway runs only when its config turns them on. */
type OptionalPart = 'broker' | 'serial' | 'ble' | 'api' | 'rules' | 'siblings' | 'homeAssistant' | 'simulation';

/** A part the test's config turned on; a clear failure (not a TypeError later) when it is not running. */
export function running<K extends OptionalPart>(gw: Gateway, part: K): NonNullable<Gateway[K]> {
  const p = gw[part];
  if (p === undefined) throw new Error(`${gw.config.gateway.id} runs no ${part}: the test's config did not enable it`);
  return p as NonNullable<Gateway[K]>;
}

export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what: string | (() => string) = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The kernel hands out ports for `listen(0)` and outgoing connections from its ephemeral range;
 * a port picked there and closed can be taken by any of them before the server that was told
 * it listens (EADDRINUSE under a busy suite). Ports are picked below that range instead, at
 * random (parallel test workers rarely meet), each at most once per process.
 */
function portsBelowEphemeral(): [number, number] | undefined {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return low > 12_000 ? [10_000, low - 1] : undefined;
  } catch {
    return undefined;
  }
}
const pickable = portsBelowEphemeral();
const handedOut = new Set<number>();

function tryListen(port: number): Promise<number | undefined> {
  const s = createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(undefined));
    s.listen(port, '127.0.0.1', () => {
      const got = (s.address() as { port: number }).port;
      s.close(() => resolve(got));
    });
  });
}

/** A TCP port that was free a moment ago on 127.0.0.1 (for servers that must be told a port). */
export async function freePort(): Promise<number> {
  if (pickable)
    for (let i = 0; i < 50; i++) {
      const p = pickable[0] + Math.floor(Math.random() * (pickable[1] - pickable[0] + 1));
      if (handedOut.has(p) || (await tryListen(p)) === undefined) continue;
      handedOut.add(p);
      return p;
    }
  const p = await tryListen(0);
  if (p === undefined) throw new Error('freePort: no port to listen on');
  return p;
}
