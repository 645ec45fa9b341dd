/**
 * A gateway as its own process, the way `npm start` runs it, for the start and memory benches:
 * spawned from a checkout (`root`, this one by default, or another such as an earlier commit
 * extracted beside it, so before and after are measured in one session), timed from the spawn
 * to the first frame's PUBACK, and read from /proc.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { topics } from '../../protocols/index.js';
import { freePort, tempDir } from '../../test/helpers/env.js';
import { benchDevice } from './devices.js';

export interface GatewaySpawn {
  /** The checkout whose bin/gateway.js runs. */
  readonly root: string;
  /** Node options before the script (`npm start`'s, see startFlags). */
  readonly nodeArgs?: readonly string[];
  /** Added to this process's environment (`npm start`'s, see startEnv, and any other). */
  readonly env?: NodeJS.ProcessEnv;
}

/** The node options `npm start` passes in `root` (its package.json `start` script: `node FLAGS bin/gateway.js start`). */
export function startFlags(root: string): string[] {
  return startScript(root, 'start').nodeArgs;
}

/** The environment `npm start` sets in `root` (`VAR=value` before `node`, such as glibc's MALLOC_ARENA_MAX). */
export function startEnv(root: string): Record<string, string> {
  return startScript(root, 'start').env;
}

/**
 * A package.json start script of `root` (`start`, `start:small`: `[VAR=value ...] node FLAGS
 * bin/gateway.js start [ARGS]`): the environment it sets, its node options and the arguments
 * after `start`.
 */
export function startScript(
  root: string,
  name: string,
): { env: Record<string, string>; nodeArgs: string[]; args: string[] } {
  const script = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
    .scripts[name];
  const m =
    script === undefined
      ? null
      : /^((?:[A-Za-z_]\w*=\S*\s+)*)node\s+(.*?)\s*bin\/gateway\.js start(?:\s+(.*))?$/.exec(script.trim());
  if (!m)
    throw new Error(
      `${root}/package.json: script ${name} "${script}" is not "[VAR=value ...] node [flags] bin/gateway.js start [args]"`,
    );
  const env = Object.fromEntries(
    m[1]!
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]),
  );
  return { env, nodeArgs: m[2] ? m[2].split(/\s+/) : [], args: m[3] ? m[3].split(/\s+/) : [] };
}

export function spawnGateway(g: GatewaySpawn, args: readonly string[]): ChildProcess {
  return spawn(process.execPath, [...(g.nodeArgs ?? []), 'bin/gateway.js', 'start', ...args], {
    cwd: g.root,
    stdio: 'ignore',
    env: { ...process.env, ...g.env },
  });
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** CPU time (user + system, every thread) a process has used so far, in ms (/proc/PID/stat, 100 ticks a second). */
export function cpuMs(pid: number): number {
  // The fields after the command name, which may hold spaces, start after its closing parenthesis.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10; // utime, stime: fields 14 and 15 of proc(5)
}

/**
 * Spawn → PUBACK of the first frame on an empty store (a device dials every 10 ms from the
 * spawn on), in ms of wall time and of the gateway process's CPU time (the figure a loaded
 * machine does not inflate by waiting).
 */
export async function firstAck(g: GatewaySpawn): Promise<{ ms: number; cpuMs: number }> {
  const tmp = tempDir('outpost-bench-start-');
  const dev = benchDevice('start-dev');
  const port = await freePort();
  const cfg = join(tmp.dir, 'outpost.yaml');
  writeFileSync(
    cfg,
    `gateway: { id: gw-bench, dataDir: ${JSON.stringify(join(tmp.dir, 'data'))} }\nmqtt: { port: ${port} }\n` +
      `api: { enabled: false }\ningest: { minFreeBytes: 0 }\ndevices:\n  - { id: start-dev, publicKey: "${dev.publicKeyHex}" }\n`,
  );
  const t0 = performance.now();
  const child = spawnGateway(g, ['--config', cfg, '--no-simulate']);
  try {
    for (;;) {
      const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 2000 });
      const ok = await new Promise<boolean>((r) => {
        client.once('connect', () => r(true));
        client.once('error', () => r(false));
        client.once('close', () => r(false));
      });
      if (ok) {
        await client.publishAsync(topics.up('start-dev'), Buffer.from(dev.frame(1, 1)), { qos: 1 });
        const ms = performance.now() - t0;
        const cpu = cpuMs(child.pid!);
        await client.endAsync();
        return { ms, cpuMs: cpu };
      }
      client.end(true);
      if (child.exitCode !== null) throw new Error(`gateway in ${g.root} exited ${child.exitCode}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    await stopProcess(child);
    tmp.cleanup();
  }
}

/** A process's memory as the kernel counts it (/proc/PID/status), in MB. */
export interface ProcMemory {
  rss: number;
  anon: number;
  file: number;
  threads: number;
}

export function procMemory(pid: number): ProcMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
  return { rss: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024, file: kb('RssFile') / 1024, threads: kb('Threads') };
}

/** The direct children of a process (every thread's list; none once it has gone). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // the process (or a thread) ended while being read
  }
  return out;
}
