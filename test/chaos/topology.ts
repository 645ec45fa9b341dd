/**
 * The campaign's site: three gateway processes, each with its own MQTT devices, serial
 * devices on two of them, and sync between every pair over a different path:
 *
 *   gw0 ⇄ gw1  direct TCP, both directions through proxies (link "0-1")
 *   gw1 ⇄ gw2  gw1 dials gw2's TCP port, gw2 dials gw1's embedded broker, both through proxies (link "1-2")
 *   gw0 ⇄ gw2  through a Mosquitto both answer on (link "0-2": the broker is the link)
 *
 * gw2 keeps its data on a small tmpfs (disk-full). Identities are made up front so each
 * config can name its siblings' keys.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { toHex } from '../../protocols/index.js';
import { freePort } from '../helpers/env.js';
import type { PtyPair } from '../helpers/pty.js';
import { GatewayNode, Mosquitto, SmallDisk } from './cluster.js';
import type { Devices } from './devices.js';
import { TcpProxy } from './proxy.js';

export const GATEWAYS = 3;
/** The gateway whose data dir is the small disk. */
export const DISK_GATEWAY = 2;

export interface Site {
  readonly nodes: GatewayNode[];
  readonly keys: Uint8Array[];
  readonly mosquitto: Mosquitto;
  /** Proxies per sibling link ("0-1", "1-2"). */
  readonly links: Map<string, TcpProxy[]>;
  readonly disk: SmallDisk | undefined;
  readonly ptys: PtyPair[];
  close(): Promise<void>;
}

export async function buildSite(
  dir: string,
  devices: Devices,
  opts: { syncIntervalSeconds: number; requireDisk: boolean; diskMiB: number },
): Promise<Site> {
  const seeds = Array.from({ length: GATEWAYS }, () => randomBytes(32));
  const keys = seeds.map((s) => publicKeyFromSeed(s));
  const hex = keys.map((k) => toHex(k));
  const mqttPorts = await Promise.all(seeds.map(() => freePort()));
  const syncPorts = await Promise.all(seeds.map(() => freePort()));
  const mosquitto = new Mosquitto(dir, await freePort());
  const links = new Map<string, TcpProxy[]>([
    ['0-1', [await TcpProxy.start('gw0→gw1 tcp', syncPorts[1]!), await TcpProxy.start('gw1→gw0 tcp', syncPorts[0]!)]],
    ['1-2', [await TcpProxy.start('gw1→gw2 tcp', syncPorts[2]!), await TcpProxy.start('gw2→gw1 mqtt', mqttPorts[1]!)]],
  ]);
  const [p01, p10] = links.get('0-1')!;
  const [p12, p21] = links.get('1-2')!;
  const tcp = (p: TcpProxy): string => `tcp://127.0.0.1:${p.port}`;
  const peer = (j: number, url: string): string => `{ id: gw-${j}, publicKey: "${hex[j]}", url: "${url}" }`;
  const peers = [
    [peer(1, tcp(p01!)), peer(2, mosquitto.url)],
    [peer(0, tcp(p10!)), peer(2, tcp(p12!))],
    [peer(0, mosquitto.url), peer(1, `mqtt://127.0.0.1:${p21!.port}`)],
  ];
  const brokers = [[mosquitto.url], [], [mosquitto.url]];

  const disk = SmallDisk.mount(join(dir, `gw${DISK_GATEWAY}-data`), `${opts.diskMiB}m`);
  if (!disk && opts.requireDisk) throw new Error('the disk-full fault needs a tmpfs: run as root (CI does)');
  const ptys = await devices.openPtys(dir);
  const serialPorts = (i: number): string[] =>
    devices.plan.serialGateways.flatMap((g, k) =>
      g === i
        ? [`    - { path: ${JSON.stringify(ptys[k]!.a)}, device: ${devices.serialManifest.devices[k]!.id} }`]
        : [],
    );

  const nodes = seeds.map((seed, i) => {
    const dataDir = join(dir, `gw${i}-data`);
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'identity.key'), toHex(seed) + '\n', { mode: 0o600 });
    const file = join(dir, `gw${i}.yaml`);
    const ports = serialPorts(i);
    writeFileSync(
      file,
      [
        `gateway: { id: gw-${i}, dataDir: ${JSON.stringify(dataDir)} }`,
        `mqtt: { port: ${mqttPorts[i]} }`,
        'api: { enabled: false }',
        // Three gateways and the campaign share two cores. The free-space guard is on (ingest.minFreeBytes,
        // default 64 MiB): gw-2's disk-full fault is refused before lmdb meets ENOSPC (lmdb-js aborted after one).
        'ingest: { verifyWorkers: 1 }',
        'status: { intervalSeconds: 60 }',
        'devices:',
        ...devices.enrolments().map((d) => `  - { id: ${d.id}, publicKey: "${d.publicKey}" }`),
        ...(ports.length ? ['serial:', '  reconnectMinMs: 100', '  reconnectMaxMs: 500', '  ports:', ...ports] : []),
        `sync: { enabled: true, host: 127.0.0.1, port: ${syncPorts[i]}, intervalSeconds: ${opts.syncIntervalSeconds}, peers: [${peers[i]!.join(', ')}], brokers: [${brokers[i]!.map((b) => `"${b}"`).join(', ')}] }`,
      ].join('\n'),
    );
    return new GatewayNode(`gw-${i}`, file, dataDir, mqttPorts[i]!);
  });

  return {
    nodes,
    keys,
    mosquitto,
    links,
    disk,
    ptys,
    async close() {
      await Promise.all(nodes.map((n) => n.kill()));
      await mosquitto.kill();
      for (const ps of links.values()) for (const p of ps) await p.close();
      for (const p of ptys) await p.unplug();
      disk?.free();
      disk?.unmount();
    },
  };
}
