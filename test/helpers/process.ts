/** Gateways as child processes (`gateway start`), as they run in the field. */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { expect } from 'vitest';
import { readFrames } from './frames.js';

const gatewayBin = new URL('../../bin/gateway.js', import.meta.url).pathname;

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
      'devices:',
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
}

/** Starts `gateway start --config FILE --no-simulate`; resolves once it logs "ready". */
export function startGatewayProcess(configFile: string): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [gatewayBin, 'start', '--config', configFile, '--no-simulate'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gateway did not become ready')), 20_000);
    createInterface({ input: child.stderr! }).on('line', () => {}); // lmdb writes native errors here
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const rec = JSON.parse(line) as { event?: string; mqttPort?: number };
      logs.push(rec);
      if (rec.event === 'ready') {
        clearTimeout(timer);
        resolve({ child, port: rec.mqttPort!, logs });
      }
    });
    child.once('exit', (code) => reject(new Error(`gateway exited early (${code})`)));
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
