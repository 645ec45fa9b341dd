/**
 * Confidential policies end to end: three in-process gateways syncing
 * over real TCP with the policy filter — gw-a (plant-a) ingests door frames over
 * MQTT under a confidential policy; `city` (a cloud peer) may hold but not read
 * them; gw-b (plant-b) reads them and hears gw-a only through city. After sync:
 * city holds the blocks but only ciphertext (its lmdb file holds none of the door
 * frame bytes, audit: chain only), gw-b decrypts and verifies every device
 * signature. Then an admin revokes gw-b's read (an admin-signed op through the
 * gateway's inbox): gw-a starts a new epoch wrapped without gw-b, and gw-b — still
 * a holder — receives the later blocks but no key for them.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../gateway/config.js';
import { privateKeyObject, publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { Gateway } from '../../gateway/gateway.js';
import { auditLog } from '../../gateway/log/audit.js';
import { queueOp } from '../../gateway/policy/inbox.js';
import { decodeSignedBlock, publicKeyToDidKey, toHex, topics } from '../../protocols/index.js';
import { signedGet } from '../../gateway/api/client.js';
import { policyOpSigningInput } from '../../protocols/policy-op.js';
import { testDevice } from '../helpers/devices.js';
import { freePort, memoryLogger, tempDir, waitFor } from '../helpers/env.js';

const bin = new URL('../../bin/gateway.js', import.meta.url).pathname;
const names = ['gw-a', 'city', 'gw-b'] as const;
type Name = (typeof names)[number];
const seeds = Object.fromEntries(names.map((n) => [n, randomBytes(32)])) as Record<Name, Buffer>;
const did = (n: Name): string => publicKeyToDidKey(publicKeyFromSeed(seeds[n]));
const site: Record<Name, string | undefined> = { 'gw-a': 'plant-a', 'gw-b': 'plant-b', city: undefined };
const adminSeed = randomBytes(32);
/** gw-a and gw-b never dial each other: gw-b hears gw-a only through the relay. */
const talks: Record<Name, Name[]> = { 'gw-a': ['city'], city: ['gw-a', 'gw-b'], 'gw-b': ['city'] };

const security = new Uint8Array(32).fill(5); // an app that reads doors, through any gateway's API
const outsider = new Uint8Array(32).fill(6);
const POLICY = `admins: ["${publicKeyToDidKey(publicKeyFromSeed(adminSeed))}"]
principals:
  security: { key: "${publicKeyToDidKey(publicKeyFromSeed(security))}", kind: app }
  outsider: { key: "${publicKeyToDidKey(publicKeyFromSeed(outsider))}", kind: app }
policies:
  doors:
    reach: cloud
    confidential: true
    relations: { holder: [city, gw-b], reader: [gw-a, gw-b, security] }
  fleet-data: { reach: cloud, relations: { holder: ["*"], reader: ["*"] } }
tagging:
  - { policy: doors, model: door }
default: fleet-data
`;

const door = testDevice('door-1');
const temp = testDevice('temp-1');
const gws = {} as Record<Name, Gateway>;
const dirs = {} as Record<Name, string>;
let cleanup = (): void => {};

beforeAll(async () => {
  const t = tempDir('outpost-confidential-');
  cleanup = t.cleanup;
  const policyFile = join(t.dir, 'policies.yaml');
  writeFileSync(policyFile, POLICY);
  const ports = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await freePort()]))) as Record<
    Name,
    number
  >;
  const closed = await freePort(); // nobody listens: a peer known (as an author) but not reachable
  for (const n of names) {
    const dataDir = (dirs[n] = join(t.dir, n));
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'identity.key'), seeds[n].toString('hex') + '\n', { mode: 0o600 });
    const config = validateConfig({
      gateway: { id: n, dataDir, ...(site[n] && { site: site[n] }) },
      mqtt: { enabled: n === 'gw-a', port: 0 },
      api: { enabled: n !== 'gw-a', port: 0 },
      simulate: { devices: 0 },
      devices:
        n === 'gw-a'
          ? [
              { id: door.id, publicKey: door.publicKeyHex, model: 'door', site: 'plant-a' },
              { id: temp.id, publicKey: temp.publicKeyHex, model: 'thermo', site: 'plant-a' },
            ]
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
            url: `tcp://127.0.0.1:${talks[n].includes(p) ? ports[p] : closed}`,
            role: p === 'city' ? 'cloud' : 'gateway',
            ...(site[p] && { site: site[p] }),
          })),
      },
    });
    gws[n] = await Gateway.start(config, { logger: memoryLogger().log, simulate: false });
  }
}, 60_000);

afterAll(async () => {
  for (const n of names) await gws[n]?.stop();
  cleanup();
});

/** The exact bytes published (a test device's frame carries the time it was signed). */
const sent = new Map<string, Buffer>();
const bytesOf = (dev: typeof door, seq: number): Buffer => sent.get(`${dev.id}/${seq}`)!;

async function publish(dev: typeof door, seqs: number[]): Promise<void> {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${gws['gw-a'].broker!.port}`, {
    clientId: `pub-${dev.id}`,
    reconnectPeriod: 0,
  });
  for (const s of seqs) {
    const f = Buffer.from(dev.frame(1, s));
    sent.set(`${dev.id}/${s}`, f);
    await c.publishAsync(topics.up(dev.id), f, { qos: 1 });
  }
  await c.endAsync();
  await gws['gw-a'].blockLog.durable();
}

async function syncAll(): Promise<void> {
  for (let round = 0; round < 2; round++) for (const n of names) await gws[n].siblings!.round(false);
  for (const n of names) await gws[n].blockLog.durable();
}

const api = (n: Name): string => `http://127.0.0.1:${gws[n].api!.port}`;
const doorSeqs = (n: Name): number[] => [...gws[n].blockLog.frameView(door.id)].map((v) => v.seq);
const sealedHashes = (n: Name): string[] => [...gws[n].blockLog.hashesOfKind('sealed')].sort();
const fileBytes = (n: Name): Buffer => readFileSync(join(dirs[n], 'outpost.lmdb'));

describe('confidential policy across 3 gateways over real TCP', () => {
  it('the relay holds the sealed blocks but only ciphertext; the reader two hops away decrypts and verifies', async () => {
    await publish(door, [0, 1, 2, 3]);
    await publish(temp, [0, 1]);
    await syncAll();
    const sealed = sealedHashes('gw-a');
    expect(sealed.length).toBeGreaterThan(0);
    expect(sealedHashes('city')).toEqual(sealed);
    expect(sealedHashes('gw-b')).toEqual(sealed);
    // city: chain-verified, held, unreadable; none of the frame bytes on its disk (temp frames, not confidential, are).
    expect(doorSeqs('city')).toEqual([]);
    const cityFile = fileBytes('city');
    for (const s of [0, 1, 2, 3]) expect(cityFile.includes(bytesOf(door, s))).toBe(false);
    expect(cityFile.includes(bytesOf(temp, 0))).toBe(true);
    // A frame lives once, in its block, and a confidential one's block is sealed: not even the author's disk holds it in clear.
    for (const s of [0, 1, 2, 3]) expect(fileBytes('gw-a').includes(bytesOf(door, s))).toBe(false);
    expect(doorSeqs('gw-a')).toEqual([0, 1, 2, 3]); // while the author still reads its own frames
    const ca = auditLog(gws.city.blockLog);
    expect(ca.faults).toEqual([]);
    expect(ca.sealed).toMatchObject({ blocks: sealed.length, opened: 0, unreadable: sealed.length });
    // gw-b: every sealed block opened, every device signature inside checked.
    expect(doorSeqs('gw-b')).toEqual([0, 1, 2, 3]);
    const ba = auditLog(gws['gw-b'].blockLog);
    expect(ba.faults).toEqual([]);
    expect(ba.sealed).toMatchObject({ blocks: sealed.length, opened: sealed.length, unreadable: 0 });
    expect(ba.deviceSignatures).toBe(6);
    // An app reading through gw-b's API gets the frames gw-a heard, decrypted at gw-b, byte for byte;
    // through the relay's API it gets none of them (city cannot open them); an outsider gets 403.
    const viaB = (await (await signedGet(api('gw-b'), '/api/log/frames?device=door-1', security)).json()) as any;
    expect(viaB.frames.map((f: any) => [f.seq, f.policy, f.author, f.frame])).toEqual(
      [0, 1, 2, 3].map((s) => [s, 'doors', toHex(publicKeyFromSeed(seeds['gw-a'])), bytesOf(door, s).toString('hex')]),
    );
    const p1 = (await (await signedGet(api('gw-b'), '/api/log/frames?device=door-1&limit=3', security)).json()) as any;
    expect(p1).toMatchObject({ more: true, next: 'door-1/1/2' });
    const p2 = (await (
      await signedGet(api('gw-b'), `/api/log/frames?device=door-1&limit=3&after=${p1.next}`, security)
    ).json()) as any;
    expect([...p1.frames, ...p2.frames].map((f: any) => f.seq)).toEqual([0, 1, 2, 3]);
    expect(p2.more).toBe(false);
    const viaCity = (await (await signedGet(api('city'), '/api/log/frames?device=door-1', security)).json()) as any;
    expect(viaCity).toEqual({ frames: [], more: false, next: null });
    const out = await signedGet(api('gw-b'), '/api/log/frames?device=door-1', outsider);
    expect(out.status).toBe(403);
    expect(((await out.json()) as any).error).toMatchObject({ policy: 'doors@1', missing: 'reader' });
    // `gateway audit verify` on the relay's data dir says what it could and could not open.
    const cli = await promisify(execFile)(process.execPath, [
      bin,
      'audit',
      'verify',
      '--data',
      dirs.city,
      '--trust',
      did('gw-a'),
      '--trust',
      did('gw-b'),
    ]);
    expect(cli.stdout).toContain(
      `${sealed.length} sealed blocks (confidential policies): 0 opened and verified inside, ${sealed.length} without a key here (author signature and chain only)`,
    );
    expect(cli.stdout).toContain('ok: no faults');
  }, 60_000);

  it('after an admin revokes its read, gw-b still holds the new blocks but gets no key for them', async () => {
    const claim = {
      op: 'revoke' as const,
      principal: did('gw-b'),
      relation: 'reader',
      policy: 'doors',
      issuedAt: Date.now(),
      admin: publicKeyFromSeed(adminSeed),
    };
    queueOp(dirs['gw-a'], {
      ...claim,
      signature: signEd25519(privateKeyObject(adminSeed), policyOpSigningInput(claim)),
      after: [],
    });
    await gws['gw-a'].policies.inbox.drain();
    await waitFor(
      () => !gws['gw-a'].policies.permissions.check(did('gw-b'), 'read', 'doors').allowed,
      5000,
      'revocation in force',
    );
    const before = new Set(sealedHashes('gw-a'));
    await publish(door, [4, 5, 6]);
    await syncAll();
    const after = sealedHashes('gw-a').filter((h) => !before.has(h));
    expect(after.length).toBeGreaterThan(0);
    for (const h of after) expect(sealedHashes('gw-b')).toContain(h); // still a holder
    expect(doorSeqs('gw-b')).toEqual([0, 1, 2, 3]); // but reads nothing written after the revocation
    const bFile = fileBytes('gw-b');
    for (const s of [4, 5, 6]) expect(bFile.includes(bytesOf(door, s))).toBe(false);
    for (const h of after) {
      const sb = decodeSignedBlock(gws['gw-b'].blockLog.getEnvelope(h)!);
      const r = sb.ok ? gws['gw-b'].blockLog.openSealed(sb.value.block) : undefined;
      expect(r && !r.ok && r.error.code).toBe('sealed/no-key');
    }
    // The author itself still reads everything (its own wraps).
    expect(doorSeqs('gw-a')).toEqual([0, 1, 2, 3, 4, 5, 6]);
    // The author's status names the epoch it now seals under and for how many readers (gw-a itself and security).
    expect((gws['gw-a'].status() as any).confidential.sealing).toEqual([{ policy: 'doors', epoch: 1, recipients: 2 }]);
    // Through gw-b's API the app (still a reader itself) sees only what gw-b can open.
    const viaB = (await (await signedGet(api('gw-b'), '/api/log/frames?device=door-1', security)).json()) as any;
    expect(viaB.frames.map((f: any) => f.seq)).toEqual([0, 1, 2, 3]);
    expect(auditLog(gws['gw-b'].blockLog).faults).toEqual([]);
  });
});
