/**
 * The compiled gateway (`npm start`'s command: node [its flags] bin/gateway.js start, no tsx) on
 * a merged store, for bench/store-merged.ts: spawn → the PUBACK of a new frame over MQTT, its
 * API timed over HTTP, a sync check against a sibling, its RSS read from /proc.
 */
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { topics } from '../../protocols/index.js';
import { freePort } from '../../test/helpers/env.js';
import type { TestDevice } from '../../test/helpers/devices.js';
import { spawnGateway, startEnv, startFlags } from './gateway-process.js';

const API_TOKEN = 'bench-store-merged-token-0123456789';

export interface Ports {
  mqtt: number;
  api: number;
  sync: number;
}

export interface Peer {
  id: string;
  publicKey: string;
  port: number;
}

/** Writes a YAML config (JSON is YAML) for gateway `id` on `dataDir`. */
export function writeConfig(
  file: string,
  o: { id: string; dataDir: string; ports: Ports; devices: readonly TestDevice[]; peers?: readonly Peer[] },
): void {
  const cfg = {
    gateway: { id: o.id, dataDir: o.dataDir },
    mqtt: { port: o.ports.mqtt, host: '127.0.0.1' },
    api: { port: o.ports.api, token: API_TOKEN },
    ingest: { minFreeBytes: 0 },
    simulate: { devices: 0 },
    devices: o.devices.map((d) => ({ id: d.id, publicKey: d.publicKeyHex })),
    ...(o.peers && {
      sync: {
        enabled: true,
        host: '127.0.0.1',
        port: o.ports.sync,
        intervalSeconds: 1,
        peers: o.peers.map((p) => ({ id: p.id, publicKey: p.publicKey, host: '127.0.0.1', port: p.port })),
      },
    }),
  };
  writeFileSync(file, JSON.stringify(cfg, null, 1));
}

export async function ports(): Promise<Ports> {
  return { mqtt: await freePort(), api: await freePort(), sync: await freePort() };
}

export interface Started {
  child: ChildProcess;
  /** Spawn → PUBACK of the new frame, ms. */
  ackMs: number;
}

/** Spawns the compiled gateway; a device dials every 10 ms from the spawn on and publishes one new frame at QoS 1. */
export async function startCompiled(root: string, config: string, port: number, dev: TestDevice): Promise<Started> {
  const t0 = performance.now();
  const child = spawnGateway({ root, nodeArgs: startFlags(root), env: startEnv(root) }, [
    '--config',
    config,
    '--no-simulate',
  ]);
  // A boot no run has used: the frame is new, not a duplicate.
  const frame = Buffer.from(dev.frame(Math.floor(Date.now() / 1000), 0));
  for (;;) {
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
      clientId: dev.id,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    const ok = await new Promise<boolean>((r) => {
      client.once('connect', () => r(true));
      client.once('error', () => r(false));
      client.once('close', () => r(false));
    });
    if (ok) {
      await client.publishAsync(topics.up(dev.id), frame, { qos: 1 });
      const ackMs = performance.now() - t0;
      await client.endAsync();
      return { child, ackMs };
    }
    client.end(true);
    if (child.exitCode !== null) throw new Error(`compiled gateway (${config}) exited ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** GET an API path with the admin token; returns the parsed body and the round trip in ms. */
export async function api(port: number, path: string): Promise<{ body: unknown; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
  const body = (await res.json()) as unknown;
  const ms = performance.now() - t0;
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
  return { body, ms };
}

/** Waits until this gateway's /api/siblings reports a finished exchange with `peer`. */
export async function awaitExchange(port: number, peer: string, timeoutMs = 120_000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const { body } = await api(port, '/api/siblings');
    const s = (body as { siblings: { id: string; lastExchangeAt: string | null }[] }).siblings.find(
      (x) => x.id === peer,
    );
    if (s?.lastExchangeAt) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`no exchange with ${peer}: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const configFile = (dir: string, id: string): string => join(dir, `${id}.yaml`);
