/**
 * The block log (gateway/log): ingest writes one signed frames block per batch in
 * the frames' transaction; chains survive restarts; blocks from another gateway
 * are verified before they are applied; equivocation is kept and flagged; the
 * frames view is the same whatever order blocks arrive in; `gateway audit verify`
 * tells a flipped frame byte, a forged author signature and a broken chain apart.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { auditLog } from '../../gateway/log/audit.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { Store } from '../../gateway/store/store.js';
import {
  type Block,
  decodeSignedBlock,
  encodeCanonical,
  type FrameEntry,
  fromHex,
  hashHex,
  type SignedBlock,
  signBlock,
  toHex,
} from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { startTestGateway, tempDir } from '../helpers/env.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Replica {
  store: Store;
  log: BlockLog;
  seed: Uint8Array;
  pub: Uint8Array;
}

const devA = testDevice('dev-a');
const devB = testDevice('dev-b');

function replica(knownSeeds: Uint8Array[] = [], seed: Uint8Array = randomBytes(32), enrol = true): Replica {
  const { dir, cleanup } = tempDir('outpost-log-');
  const store = Store.open(dir);
  if (enrol)
    for (const d of [devA, devB]) store.devices.putSync(d.id, { id: d.id, publicKey: d.publicKeyHex, enrolledAt: 1 });
  const pub = publicKeyFromSeed(seed);
  const log = new BlockLog(store, {
    publicKey: pub,
    sign: (m) => signEd25519(seed, m),
    knownAuthors: knownSeeds.map(publicKeyFromSeed),
  });
  cleanups.push(async () => {
    await store.close();
    cleanup();
  });
  return { store, log, seed, pub };
}

const entries = (dev: ReturnType<typeof testDevice>, boot: number, from: number, n: number): FrameEntry[] =>
  Array.from({ length: n }, (_, i) => ({
    frame: dev.frame(boot, from + i),
    rxTime: 1_700_000_000_000 + i,
    transport: 'mqtt',
  }));

/** A frames block per commit group, sealed in it (the journal's default seals a second later: log-journal.test.ts). */
const perGroup = { log: { sealAfterMs: 0 } };

describe('block log', () => {
  it('ingest: one frames block per batch, chained, acked frames are in durable blocks, chain continues after restart', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const devs = [devA, devB].map((d) => ({ id: d.id, publicKey: d.publicKeyHex }));
    let { gw } = await startTestGateway(dir, devs, perGroup);
    // One event-loop turn: one batch, one block.
    const batch1 = await Promise.all(
      [...Array(10).keys()].map((i) => gw.ingest.submit(devA.frame(1, i), { transport: 'mqtt' })),
    );
    expect(batch1.every((o) => o.status === 'stored')).toBe(true);
    const batch2 = await Promise.all([0, 1, 2].map((i) => gw.ingest.submit(devB.frame(1, i), { transport: 'serial' })));
    expect(batch2.every((o) => o.status === 'stored')).toBe(true);
    // A duplicate is not written again.
    expect((await gw.ingest.submit(devA.frame(1, 0), { transport: 'mqtt' })).status).toBe('duplicate');
    let log = gw.blockLog;
    // Each device's enrolment is logged before its first frames: 2 enrolment + 2 frames blocks.
    expect(log.blockCount()).toBe(4);
    expect([...log.frameView()].length).toBe(13);
    const heads = log.streamHeads();
    expect(heads).toHaveLength(1);
    expect(heads[0]!.seq).toBe(3);
    expect(heads[0]!.author).toBe(toHex(gw.identity.publicKey));
    const digest = log.headsDigest();
    await gw.stop();

    ({ gw } = await startTestGateway(dir, devs, perGroup));
    log = gw.blockLog;
    expect(log.headsDigest()).toBe(digest);
    expect((await gw.ingest.submit(devA.frame(2, 0), { transport: 'mqtt' })).status).toBe('stored');
    const h = log.streamHeads()[0]!;
    expect(h.seq).toBe(4);
    const b = decodeSignedBlock(log.getEnvelope(h.hashes[0]!)!);
    expect(b.ok && b.value.block.prev && hashHex(b.value.block.prev)).toBe(heads[0]!.hashes[0]);
    expect(b.ok && b.value.block.lamport).toBe(5);
    const s = auditLog(log);
    expect(s.faults).toEqual([]);
    expect(s).toMatchObject({ blocks: 5, streams: 1, authors: 1, frames: 14, uniqueFrames: 14 });
    await gw.stop();
  });

  it('apply: a sibling verifies and applies blocks; same digest and frame view; parents and lamport carry causality', async () => {
    const a = replica();
    const b = replica([a.seed]);
    const sent = [...a.log.appendFrames(entries(devA, 1, 0, 5)), ...a.log.appendFrames(entries(devA, 1, 5, 5))];
    await a.store.durable();
    for (const sb of sent) expect(b.log.apply(sb.envelope)).toMatchObject({ status: 'applied' });
    expect(b.log.apply(sent[0]!.envelope).status).toBe('known');
    await b.store.durable();
    expect(b.log.headsDigest()).toBe(a.log.headsDigest());
    expect([...b.log.frameView()]).toEqual([...a.log.frameView()]);
    // b's next own block names a's head as a parent and is later in lamport time.
    const [own] = b.log.appendFrames(entries(devB, 1, 0, 1));
    expect(own!.block.parents.map(hashHex)).toEqual([hashHex(sent.at(-1)!.hash)]);
    expect(own!.block.lamport).toBe(sent.at(-1)!.block.lamport + 1);
    await b.store.durable();
    expect(auditLog(b.log).faults).toEqual([]);
  });

  it("a sibling that never enrolled a device verifies its frames under the key from the author's enrolment block", async () => {
    const a = replica();
    const b = replica([a.seed], randomBytes(32), false);
    const blocks = a.log.appendFrames([...entries(devA, 1, 0, 3), ...entries(devB, 1, 0, 2)]);
    expect(blocks.map((x) => x.block.kind)).toEqual(['enrolment', 'enrolment', 'frames']);
    // Without the enrolments, b cannot check the device signatures.
    expect(b.log.apply(blocks[2]!.envelope)).toMatchObject({ status: 'rejected' });
    for (const sb of blocks) expect(b.log.apply(sb.envelope).status).toBe('applied');
    await b.store.durable();
    expect([...b.log.frameView()]).toHaveLength(5);
    expect(auditLog(b.log).faults).toEqual([]);
    // An enrolment under another key does not make a forged frame valid.
    const mallory = testDevice('dev-a');
    const forged = a.log.appendFrames([{ frame: mallory.frame(9, 0), rxTime: 1, transport: 'mqtt' }]);
    await a.store.durable();
    const r = forged.map((sb) => b.log.apply(sb.envelope));
    expect(r.at(-1)).toMatchObject({ status: 'rejected', faults: [{ code: 'device-signature' }] });
    // A (compromised) sibling enrolling another key for a device enrolled here changes nothing here.
    const e = replica();
    const evil = new BlockLog(e.store, {
      publicKey: e.pub,
      sign: (m) => signEd25519(e.seed, m),
      deviceRecord: (d) => (d === 'dev-a' ? { id: d, publicKey: mallory.publicKeyHex, enrolledAt: 2 } : undefined),
    });
    const evilBlocks = evil.appendFrames([{ frame: mallory.frame(9, 1), rxTime: 1, transport: 'mqtt' }]);
    expect(evilBlocks.map((x) => x.block.kind)).toEqual(['enrolment', 'frames']);
    const c = replica([a.seed, e.seed]);
    expect(c.log.apply(evilBlocks[0]!.envelope).status).toBe('applied'); // kept, as any trusted author's block
    expect(c.log.apply(evilBlocks[1]!.envelope)).toMatchObject({
      status: 'rejected',
      faults: [{ code: 'device-signature' }],
    });
    expect(c.log.ctx.deviceKeys('dev-a').map(toHex)).toEqual([devA.publicKeyHex]);
  });

  it('refuses unknown authors, tampered frames, forged signatures and broken chains, each with its own code', async () => {
    const a = replica();
    const b = replica([a.seed]);
    const [enrol, g0] = a.log.appendFrames(entries(devA, 1, 0, 3)) as [SignedBlock, SignedBlock];
    const g1 = a.log.appendFrames(entries(devA, 1, 3, 3))[0]!;
    expect([enrol.block.kind, g0.block.kind, g1.block.kind]).toEqual(['enrolment', 'frames', 'frames']);
    await a.store.durable();
    expect(b.log.apply(enrol.envelope).status).toBe('applied');
    const codes = (r: ReturnType<BlockLog['apply']>): string[] =>
      r.status === 'rejected' ? r.faults.map((f) => f.code) : [r.status];

    expect(codes(replica().log.apply(enrol.envelope))).toEqual(['unknown-author']);
    // A flipped byte inside a device frame, block re-signed by the (compromised) author: the device signature catches it.
    const frames = (g0.block as Extract<Block, { kind: 'frames' }>).body.map((f) => ({ ...f }));
    const bad = Uint8Array.from(frames[1]!.frame);
    bad[bad.length - 70]! ^= 1; // inside the payload
    frames[1] = { ...frames[1]!, frame: bad };
    const tampered = signBlock({ ...g0.block, body: frames } as Block, (m) => signEd25519(a.seed, m));
    expect(codes(b.log.apply(tampered.envelope))).toEqual(['device-signature']);
    // Forged author signature.
    const forged = encodeCanonical([g0.bytes, signEd25519(randomBytes(32), g0.hash)]);
    expect(codes(b.log.apply(forged))).toEqual(['bad-signature']);
    // A chain that skips ahead (seq 1 before seq 0 is held).
    expect(codes(b.log.apply(g1.envelope))).toEqual(['missing-prev']);
    // A validly signed block whose prev is not the block one seq back.
    expect(b.log.apply(g0.envelope).status).toBe('applied');
    const skip = signBlock({ ...g1.block, seq: 3 } as Block, (m) => signEd25519(a.seed, m));
    expect(codes(b.log.apply(skip.envelope))).toEqual(['broken-chain']);
    // The valid rest still applies.
    expect(b.log.apply(g1.envelope).status).toBe('applied');
    await b.store.durable();
    expect(b.log.headsDigest()).toBe(a.log.headsDigest());
  });

  it('equivocation: two blocks at one (author, stream, seq) are both kept and the author is flagged', async () => {
    const seed = randomBytes(32);
    const a1 = replica([], seed);
    const a2 = replica([], seed); // the same gateway key on a second store (say, restored without its chain)
    const b = replica([seed]);
    const [enrol, x] = a1.log.appendFrames(entries(devA, 1, 0, 2)) as [SignedBlock, SignedBlock];
    const y = a2.log.appendFrames(entries(devA, 1, 2, 2)).at(-1)!;
    expect(b.log.apply(enrol.envelope).status).toBe('applied');
    expect(b.log.apply(x.envelope)).toMatchObject({ status: 'applied', equivocation: false });
    expect(b.log.apply(y.envelope)).toMatchObject({ status: 'applied', equivocation: true });
    await b.store.durable();
    expect(b.log.flaggedAuthors()).toEqual([toHex(a1.pub)]);
    expect(b.log.equivocations()).toEqual([
      { author: toHex(a1.pub), stream: 'default', seq: 1, hashes: [hashHex(x.hash), hashHex(y.hash)].sort() },
    ]);
    expect(b.log.streamHeads()[0]!.hashes).toHaveLength(2);
    expect([...b.log.frameView()]).toHaveLength(4);
    expect(auditLog(b.log)).toMatchObject({ equivocations: 1, faults: [] });
    // The author itself learns of the fork: it keeps ingesting, on the least hash.
    expect(a1.log.apply(y.envelope)).toMatchObject({ status: 'applied', equivocation: true });
    const next = a1.log.appendFrames(entries(devA, 1, 9, 1))[0]!;
    expect(next.block.seq).toBe(2);
    expect(hashHex(next.block.prev!)).toBe([hashHex(x.hash), hashHex(y.hash)].sort()[0]);
    expect(a1.log.ownForks()).toEqual(['default']);
    expect(b.log.apply(next.envelope).status).toBe('applied');
    await b.store.durable();
    expect(b.log.streamHeads()[0]!.hashes).toEqual([hashHex(next.hash)]);
  });

  it('frames view: one entry per (device, boot, seq) across authors, the same whatever the arrival order', async () => {
    const a = replica();
    const c = replica();
    const shared = entries(devA, 7, 0, 4);
    const fromA = a.log.appendFrames([...shared, ...entries(devB, 1, 0, 2)]);
    const fromC = c.log.appendFrames([...shared.slice(2), ...entries(devA, 7, 4, 1)]);
    const r1 = replica([a.seed, c.seed]);
    const r2 = replica([a.seed, c.seed]);
    for (const sb of [...fromA, ...fromC]) expect(r1.log.apply(sb.envelope).status).toBe('applied');
    for (const sb of [...fromC, ...fromA]) expect(r2.log.apply(sb.envelope).status).toBe('applied');
    await Promise.all([r1.store.durable(), r2.store.durable()]);
    const v1 = [...r1.log.frameView()];
    expect(v1).toHaveLength(7);
    expect([...r2.log.frameView()]).toEqual(v1);
    expect(r2.log.headsDigest()).toBe(r1.log.headsDigest());
  });
});

describe('gateway audit verify / log heads (CLI)', () => {
  const bin = new URL('../../bin/gateway.js', import.meta.url).pathname;
  const run = async (args: string[]): Promise<{ code: number; stdout: string }> => {
    try {
      const { stdout } = await promisify(execFile)(process.execPath, [bin, ...args]);
      return { code: 0, stdout };
    } catch (e) {
      const err = e as { code: number; stdout: string };
      return { code: err.code, stdout: err.stdout };
    }
  };

  it('clean log: exit 0; each tampering is reported distinctly with exit 1', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const seed = randomBytes(32);
    writeFileSync(join(dir, 'identity.key'), toHex(seed) + '\n', { mode: 0o600 });
    const cfg = join(dir, 'outpost.yaml');
    writeFileSync(cfg, `gateway: { id: gw-audit, dataDir: ${JSON.stringify(dir)} }\n`);
    const store = Store.open(dir);
    for (const d of [devA, devB]) await store.devices.put(d.id, { id: d.id, publicKey: d.publicKeyHex, enrolledAt: 1 });
    const sign = (m: Uint8Array): Uint8Array => signEd25519(seed, m);
    const log = new BlockLog(store, { publicKey: publicKeyFromSeed(seed), sign });
    const blocks = [0, 1, 2, 3].map((i) => log.appendFrames(entries(i % 2 ? devB : devA, 1, i * 3, 3)).at(-1)!); // the frames blocks
    await store.durable();
    await store.close();

    let r = await run(['audit', 'verify', '--config', cfg]);
    expect(r.stdout).toContain('ok: no faults');
    expect(r.stdout).toContain('6 blocks in 1 streams by 1 authors; 12 frames (12 distinct)'); // and 2 enrolments
    expect(r.code).toBe(0);
    const heads = await run(['log', 'heads', '--config', cfg]);
    expect(heads.code).toBe(0);
    expect(heads.stdout).toMatch(/^heads [0-9a-f]{64}\n/);

    // Tamper on disk: a flipped byte in a frame of block 1, a forged signature on block 2,
    // and block 3 replaced by a validly signed block whose prev skips back to block 0.
    const s2 = Store.open(dir);
    const l2 = new BlockLog(s2, { publicKey: publicKeyFromSeed(seed), sign });
    const env1 = Uint8Array.from(blocks[1]!.envelope);
    const at = toHex(env1).indexOf(toHex((blocks[1]!.block as Extract<Block, { kind: 'frames' }>).body[0]!.frame)) / 2;
    env1[at + 30]! ^= 0x01;
    await l2.rawPut(hashHex(blocks[1]!.hash), env1);
    await l2.rawPut(
      hashHex(blocks[2]!.hash),
      encodeCanonical([blocks[2]!.bytes, signEd25519(randomBytes(32), blocks[2]!.hash)]),
    );
    const broken = signBlock({ ...blocks[3]!.block, prev: fromHex(hashHex(blocks[0]!.hash))! } as Block, sign);
    await l2.rawPut(hashHex(broken.hash), broken.envelope);
    await l2.rawPut(hashHex(blocks[3]!.hash), new Uint8Array(0).fill(0)); // and the original left unreadable
    await s2.close();

    r = await run(['audit', 'verify', '--config', cfg]);
    expect(r.code).toBe(1);
    const faultLines = r.stdout.split('\n').filter((l) => l.startsWith('FAULT'));
    const byBlock = (h: Uint8Array): string[] =>
      faultLines.filter((l) => l.split(' ')[2] === `${hashHex(h)}:`).map((l) => l.split(' ')[1]!);
    expect(byBlock(blocks[1]!.hash).sort()).toEqual(['bad-signature', 'device-signature', 'hash-mismatch']);
    expect(byBlock(blocks[2]!.hash)).toEqual(['bad-signature']);
    expect(byBlock(broken.hash)).toEqual(['broken-chain']);
    expect(byBlock(blocks[3]!.hash)).toEqual(['malformed']);
  });
});
