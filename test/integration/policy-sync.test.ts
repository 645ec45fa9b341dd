/**
 * Enforcement at sync, end to end: four in-process gateways syncing over real
 * TCP (the sibling links' signed challenge, the sync engine, the policy
 * filter) — two gateways on site plant-a, one on plant-b, and a cloud peer.
 * Frames of five policies are ingested over MQTT at gw-a1 and tagged by model;
 * after several rounds of everyone dialling everyone, each gateway holds
 * exactly the blocks its policies allow, checked block by block (including
 * what relays could have passed on), and the refusals name the policy and
 * the missing permission.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../gateway/config.js';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { Gateway } from '../../gateway/gateway.js';
import { auditLog } from '../../gateway/log/audit.js';
import { policyStream } from '../../gateway/log/block-log.js';
import { exchange } from '../../gateway/sync/engine.js';
import { decodeSignedBlock, publicKeyToDidKey, toHex, topics } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { freePort, memoryLogger, tempDir } from '../helpers/env.js';

const names = ['gw-a1', 'gw-a2', 'gw-b1', 'city'] as const;
type Name = (typeof names)[number];
const seeds = Object.fromEntries(names.map((n) => [n, randomBytes(32)])) as Record<Name, Buffer>;
const keyHex = (n: Name): string => toHex(publicKeyFromSeed(seeds[n]));
const did = (n: Name): string => publicKeyToDidKey(publicKeyFromSeed(seeds[n]));
const site: Record<Name, string | undefined> = {
  'gw-a1': 'plant-a',
  'gw-a2': 'plant-a',
  'gw-b1': 'plant-b',
  city: undefined,
};
const role: Record<Name, 'gateway' | 'cloud'> = {
  'gw-a1': 'gateway',
  'gw-a2': 'gateway',
  'gw-b1': 'gateway',
  city: 'cloud',
};

const POLICY = `admins: []
groups:
  gateways: [gw-a1, gw-a2, gw-b1]
policies:
  vibration: { version: 2, reach: site, relations: { holder: [group:gateways] } }
  traffic:   { reach: cloud, relations: { holder: [group:gateways, city] } }
  doors:     { reach: fleet, relations: { holder: [gw-a1, gw-b1] } }
  local:     { reach: gateway, relations: { holder: ["*"] } }
  fleet-data: { reach: fleet, relations: { holder: ["*"] } }
tagging:
  - { policy: vibration, model: "press-vib-*" }
  - { policy: traffic, model: counter }
  - { policy: doors, model: door }
  - { policy: local, model: "local-*" }
default: fleet-data
`;

/** What each policy lets each gateway hold of gw-a1's blocks (the spec of this test, written out by hand). */
const allowed: Record<string, readonly Name[]> = {
  vibration: ['gw-a2'],
  traffic: ['gw-a2', 'gw-b1', 'city'],
  doors: ['gw-b1'],
  local: [],
  'fleet-data': ['gw-a2', 'gw-b1'],
};

const devices = [
  { dev: testDevice('press-1'), model: 'press-vib-3' },
  { dev: testDevice('count-1'), model: 'counter' },
  { dev: testDevice('door-1'), model: 'door' },
  { dev: testDevice('local-1'), model: 'local-probe' },
  { dev: testDevice('temp-1'), model: 'thermo' },
];

const gws = {} as Record<Name, Gateway>;
const logs = {} as Record<Name, Record<string, unknown>[]>;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  const { dir, cleanup } = tempDir('outpost-policy-sync-');
  cleanups.push(cleanup);
  const policyFile = join(dir, 'policies.yaml');
  writeFileSync(policyFile, POLICY);
  const ports = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await freePort()]))) as Record<
    Name,
    number
  >;
  for (const n of names) {
    const dataDir = join(dir, n);
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'identity.key'), seeds[n].toString('hex') + '\n', { mode: 0o600 });
    const config = validateConfig({
      gateway: { id: n, dataDir, ...(site[n] && { site: site[n] }) },
      mqtt: { enabled: n === 'gw-a1', port: 0 },
      api: { enabled: false },
      simulate: { devices: 0 },
      devices:
        n === 'gw-a1'
          ? devices.map(({ dev, model }) => ({ id: dev.id, publicKey: dev.publicKeyHex, model, site: 'plant-a' }))
          : [],
      policy: { file: policyFile },
      sync: {
        enabled: true,
        host: '127.0.0.1',
        port: ports[n],
        intervalSeconds: 3600,
        peers: names
          .filter((p) => p !== n)
          .map((p) => ({
            id: p,
            publicKey: did(p),
            url: `tcp://127.0.0.1:${ports[p]}`,
            role: role[p],
            ...(site[p] && { site: site[p] }),
          })),
      },
    });
    const { log, lines } = memoryLogger();
    logs[n] = lines;
    gws[n] = await Gateway.start(config, { logger: log, simulate: false });
  }
}, 60_000);

afterAll(async () => {
  for (const n of names) await gws[n]?.stop();
  for (const c of cleanups) c();
});

/** Every block a gateway holds: hash → (author, stream, policy tag). */
function held(n: Name): Map<string, { author: string; stream: string; policy: string; kind: string }> {
  const out = new Map<string, { author: string; stream: string; policy: string; kind: string }>();
  for (const { key, envelope } of gws[n].blockLog.rawBlocks()) {
    const d = decodeSignedBlock(envelope);
    if (!d.ok) throw new Error(`${n} holds a malformed block ${key}`);
    const b = d.value.block;
    out.set(key, { author: toHex(b.author), stream: b.stream, policy: b.policy, kind: b.kind });
  }
  return out;
}

describe('policies enforced at sync (3 gateways on 2 sites + a cloud peer, real TCP)', () => {
  it('[each holds exactly what the policies allow, block by block]', async () => {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${gws['gw-a1'].broker!.port}`, {
      clientId: 'policy-devs',
      reconnectPeriod: 0,
    });
    for (const { dev } of devices)
      for (let s = 0; s < 3; s++) await c.publishAsync(topics.up(dev.id), Buffer.from(dev.frame(1, s)), { qos: 1 });
    await c.endAsync();
    // The acked frames wait in the journal: seal their blocks now (a sync exchange would too).
    await gws['gw-a1'].blockLog.sealOpen();

    // Tagged at ingest: one stream per policy, blocks named policy@version.
    const source = held('gw-a1');
    const byStream = new Map<string, Set<string>>();
    for (const b of source.values()) byStream.set(b.stream, (byStream.get(b.stream) ?? new Set()).add(b.policy));
    expect(Object.fromEntries([...byStream].map(([s, p]) => [s, [...p]]))).toEqual({
      vibration: ['vibration@2'],
      traffic: ['traffic@1'],
      doors: ['doors@1'],
      local: ['local@1'],
      'fleet-data': ['fleet-data@1'],
    });

    // Everyone dials everyone, a few times (relays could pass blocks on).
    for (let round = 0; round < 3; round++) for (const n of names) await gws[n].siblings!.round(false);

    const a1 = keyHex('gw-a1');
    for (const n of names.filter((x) => x !== 'gw-a1')) {
      const mine = held(n);
      const expected = [...source]
        .filter(([, b]) => allowed[policyStream(b.policy)]!.includes(n))
        .map(([h]) => h)
        .sort();
      const got = [...mine]
        .filter(([, b]) => b.author === a1)
        .map(([h]) => h)
        .sort();
      expect({ gateway: n, blocks: got }).toEqual({ gateway: n, blocks: expected });
      // And nothing else from anyone (no other gateway authored data blocks).
      expect([...mine.values()].filter((b) => b.author !== a1)).toEqual([]);
      // What it holds verifies, though parents in withheld streams never arrive.
      expect(auditLog(gws[n].blockLog).faults).toEqual([]);
    }
    // Converged: the "are we equal?" probe, over the streams each may offer the other, says equal.
    for (const [x, y] of [
      ['gw-a1', 'gw-b1'],
      ['gw-a1', 'city'],
      ['gw-a2', 'gw-b1'],
    ] as const) {
      const r = await exchange(gws[x].blockLog, gws[y].blockLog, {
        probe: true,
        aOffers: gws[x].policies.sync.offerTo(keyHex(y)),
        bOffers: gws[y].policies.sync.offerTo(keyHex(x)),
      });
      expect({ pair: [x, y], equal: r.initiator.equal, flights: r.flights }).toEqual({
        pair: [x, y],
        equal: true,
        flights: 2,
      });
    }
    // Sanity: the filter did not simply block everything.
    expect(held('city').size).toBeGreaterThan(0);
    expect(held('gw-a2').size).toBeGreaterThan(held('city').size);
  }, 60_000);

  it('[a refusal names the policy and the missing permission] in the status and the log', () => {
    const withheld = (
      gws['gw-a1'].status().policy as { withheld: { peer: string; stream: string; policy: string; missing: string }[] }
    ).withheld;
    const w = (peer: Name, stream: string) => withheld.find((x) => x.peer === peer && x.stream === stream);
    expect(w('gw-b1', 'vibration')).toMatchObject({ policy: 'vibration@2', missing: 'reach:site' });
    expect(w('city', 'fleet-data')).toMatchObject({ policy: 'fleet-data@1', missing: 'reach:fleet' });
    expect(w('gw-a2', 'doors')).toMatchObject({ policy: 'doors@1', missing: 'holder|reader' });
    expect(w('gw-a2', 'local')).toMatchObject({ policy: 'local@1', missing: 'reach:gateway' });
    // A relay on plant-a does not pass plant-a's vibration data to plant-b either.
    const relay = (gws['gw-a2'].status().policy as { withheld: { peer: string; stream: string; missing: string }[] })
      .withheld;
    expect(relay.find((x) => x.peer === 'gw-b1' && x.stream === 'vibration')).toMatchObject({ missing: 'reach:site' });
    const line = logs['gw-a1'].find(
      (l) => typeof l.msg === 'string' && l.msg.includes('not offering vibration') && l.missing === 'reach:site',
    );
    expect(line).toMatchObject({ policy: 'vibration@2', stream: 'vibration' });
  });
});
