/** Gateways as child processes (`gateway start`), as they run in the field. */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { expect } from 'vitest';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { toHex, topics } from '../../protocols/index.js';
import type { TestDevice } from './devices.js';
import { freePort, tempDir } from './env.js';
import { readFrames } from './frames.js';

const gatewayBin = new URL('../../bin/gateway.js', import.meta.url).pathname;

/** Runs `gateway ARGS…` to its end: exit code and output (a failure is a result, not a throw). */
export async function gatewayCli(
  args: readonly string[],
  cwd?: string,
  env?: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [gatewayBin, ...args], { cwd, env });
    return { code: 0, stdout, stderr };
  } catch (e) {
    return e as { code: number; stdout: string; stderr: string };
  }
}

export interface SiblingConfig {
  readonly file: string;
  readonly dataDir: string;
  /** The gateway's public key, hex (its identity is written into dataDir before it starts). */
  readonly key: string;
  /** With `api`: the API's loopback port and its admin token. */
  readonly api?: { readonly port: number; readonly token: string };
  readonly cleanup: () => void;
}

export interface SiblingOptions {
  /** The devices gateway i enrolls (default: all of `devices` on every gateway). */
  readonly devicesOf?: (i: number) => readonly TestDevice[];
  /** Turn the API on, on a free loopback port with a fixed admin token. */
  readonly api?: boolean;
}

/**
 * Configs of `n` gateways gw-0…gw-(n-1), each enrolling `devices` and syncing with all the others
 * over loopback TCP (`sync.peers` by key, so each identity is created before the first start).
 */
export async function writeSiblingConfigs(
  devices: readonly TestDevice[],
  n = 3,
  opts: SiblingOptions = {},
): Promise<SiblingConfig[]> {
  const ids = [...Array(n).keys()];
  const seeds = ids.map(() => randomBytes(32));
  const keys = seeds.map((s) => toHex(publicKeyFromSeed(s)));
  const ports = await Promise.all(ids.map(() => freePort()));
  const apiPorts = opts.api ? await Promise.all(ids.map(() => freePort())) : [];
  return ids.map((i) => {
    const api = opts.api ? { port: apiPorts[i]!, token: randomBytes(16).toString('hex') } : undefined;
    const enrolled = opts.devicesOf?.(i) ?? devices;
    const { dir, cleanup } = tempDir('outpost-sib-');
    const dataDir = join(dir, 'data');
    const file = join(dir, 'outpost.yaml');
    const peers = ids
      .filter((j) => j !== i)
      .map((j) => `{ id: gw-${j}, publicKey: "${keys[j]}", host: 127.0.0.1, port: ${ports[j]} }`);
    writeFileSync(
      file,
      [
        `gateway: { id: gw-${i}, dataDir: ${JSON.stringify(dataDir)} }`,
        'mqtt: { port: 0 }',
        api
          ? `api: { enabled: true, host: 127.0.0.1, port: ${api.port}, token: "${api.token}" }`
          : 'api: { enabled: false }',
        'devices:',
        ...enrolled.map((d) => `  - { id: ${d.id}, publicKey: "${d.publicKeyHex}" }`),
        `sync: { enabled: true, host: 127.0.0.1, port: ${ports[i]}, intervalSeconds: 0.3, peers: [${peers.join(', ')}] }`,
      ].join('\n'),
    );
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'identity.key'), toHex(seeds[i]!) + '\n', { mode: 0o600 });
    return { file, dataDir, key: keys[i]!, ...(api && { api }), cleanup };
  });
}

/** A device publishes frames (boot, each seq) to a gateway's broker, QoS 1. */
export async function publishFrames(port: number, dev: TestDevice, boot: number, seqs: number[]): Promise<void> {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    clientId: `${dev.id}-${port}-${boot}`,
    reconnectPeriod: 0,
  });
  await Promise.all(seqs.map((s) => c.publishAsync(topics.up(dev.id), Buffer.from(dev.frame(boot, s)), { qos: 1 })));
  await c.endAsync();
}

/** Writes a config file enrolling `devices`, with the data dir and an ephemeral MQTT port. */
/** `extra`: more top-level YAML lines (e.g. `ingest: { minFreeBytes: 0 }`). */
export function writeGatewayConfig(
  dir: string,
  dataDir: string,
  devices: readonly { id: string; publicKey: string }[],
  extra: readonly string[] = [],
): string {
  const file = join(dir, 'outpost.yaml');
  writeFileSync(
    file,
    [
      `gateway: { id: gw-child, dataDir: ${JSON.stringify(dataDir)} }`,
      'mqtt: { port: 0 }',
      'api: { enabled: false }',
      ...extra,
      devices.length === 0 ? 'devices: []' : 'devices:',
      ...devices.map((d) => `  - { id: ${d.id}, publicKey: "${d.publicKey}" }`),
    ].join('\n'),
  );
  return file;
}

export interface GatewayProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** Every JSON log line so far. */
  readonly logs: Record<string, unknown>[];
  /** Its stderr lines (native errors, crashes): what to show when it exits unexpectedly. */
  readonly stderr: string[];
}

/**
 * Starts `gateway start --config FILE --no-simulate`; resolves once it logs "ready". `nodeArgs` go before the
 * script (e.g. `--import` of a fault to inject); `env` is added to the child's environment.
 */
export function startGatewayProcess(
  configFile: string,
  nodeArgs: readonly string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [...nodeArgs, gatewayBin, 'start', '--config', configFile, '--no-simulate'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const logs: Record<string, unknown>[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gateway did not become ready')), 60_000);
    const stderr: string[] = []; // lmdb writes native errors here; kept for the error of an early exit
    createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const rec = JSON.parse(line) as { event?: string; mqttPort?: number };
      logs.push(rec);
      if (rec.event === 'ready') {
        clearTimeout(timer);
        resolve({ child, port: rec.mqttPort!, logs, stderr });
      }
    });
    child.once('exit', (code) => reject(new Error(`gateway exited early (${code}): ${stderr.slice(-5).join('\n')}`)));
  });
}

/** SIGTERM and wait; resolves with the exit code. */
export function stopGatewayProcess(g: GatewayProcess): Promise<number | null> {
  if (g.child.exitCode !== null) return Promise.resolve(g.child.exitCode);
  const exited = new Promise<number | null>((r) => g.child.once('exit', (code) => r(code)));
  g.child.kill('SIGTERM');
  return exited;
}

/** After the gateway stopped: its store holds exactly `n` frames, each (device, boot, seq) once, and `audit verify` finds no fault. */
export async function expectStoredOnceAndAudited(dataDir: string, n: number): Promise<void> {
  const stored = await readFrames(dataDir);
  expect(stored).toHaveLength(n);
  expect(new Set(stored.map((f) => `${f.device}/${f.boot}/${f.seq}`)).size).toBe(n);
  const audit = execFileSync(process.execPath, [gatewayBin, 'audit', 'verify', '--data', dataDir], {
    encoding: 'utf8',
  });
  expect(audit).toContain('ok: no faults');
  expect(audit).toContain(`${n} distinct`);
}
