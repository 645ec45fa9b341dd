/**
 * Retention and logged revocations in the block log, over real lmdb stores:
 * - the author's retention block prunes its stream below a low-water mark (blocks, index,
 *   chain, view entries and the frames it stored, one transaction); audit accepts the chain
 *   starting at the mark; the mark survives a restart;
 * - siblings that held the old blocks prune alike, a fresh sibling starts at the mark, and
 *   pruned blocks are never pulled back (answered `pruned`, not a fault);
 * - a revocation is logged as an enrolment block with revokedAt: siblings learn it (their
 *   registry too), and frames of the device a sibling received after it are kept in their
 *   blocks but left out of the frames view on every replica alike.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { auditLog } from '../../gateway/log/audit.js';
import { BlockLog, type BlockLogOptions } from '../../gateway/log/block-log.js';
import { KeyRing } from '../../gateway/policy/keyring.js';
import { x25519FromEd25519Seed } from '../../gateway/policy/seal.js';
import { Registry } from '../../gateway/registry.js';
import { Store } from '../../gateway/store/store.js';
import { exchange } from '../../gateway/sync/engine.js';
import { decodeSignedBlock, type FrameEntry } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { startTestGateway, tempDir, waitFor } from '../helpers/env.js';
import { parseRetention, retentionResolver } from '../../gateway/log/retention.js';
import { validateConfig } from '../../gateway/config.js';

const devA = testDevice('dev-a');
const devB = testDevice('dev-b');
const T0 = 1_760_000_000_000;

interface Replica {
  store: Store;
  log: BlockLog;
  dir: string;
  seed: Uint8Array;
  reopen(): Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function replicas(
  n: number,
  enrol: (i: number) => ReturnType<typeof testDevice>[] = () => [devA, devB],
  extra: Partial<BlockLogOptions> = {},
): Replica[] {
  const seeds = Array.from({ length: n }, () => randomBytes(32));
  const keys = seeds.map(publicKeyFromSeed);
  return seeds.map((seed, i) => {
    const { dir, cleanup } = tempDir('outpost-retention-');
    const mk = (store: Store): BlockLog =>
      new BlockLog(store, { publicKey: keys[i]!, sign: (m) => signEd25519(seed, m), knownAuthors: keys, ...extra });
    const store = Store.open(dir);
    for (const d of enrol(i)) store.devices.putSync(d.id, { id: d.id, publicKey: d.publicKeyHex, enrolledAt: 1 });
    const r: Replica = {
      store,
      log: mk(store),
      dir,
      seed,
      reopen: async () => {
        await r.log.settled();
        await r.store.close();
        r.store = Store.open(dir);
        r.log = mk(r.store);
      },
    };
    cleanups.push(async () => {
      await r.log.settled().catch(() => {});
      await r.store.close();
      cleanup();
    });
    return r;
  });
}

/** Ingests one batch as the pipeline does: the frames into their block (their only copy). */
function ingest(r: Replica, dev: ReturnType<typeof testDevice>, seqs: number[], rxTime: number): void {
  const entries: FrameEntry[] = seqs.map((seq) => ({ frame: dev.frame(1, seq), rxTime, transport: 'mqtt' }));
  r.log.appendFrames(entries);
}

const view = (r: Replica): string[] =>
  [...r.log.frameView()].map((v) => `${v.device}/${v.boot}/${v.seq}@${v.block}:${v.index}`);
const seqsInView = (r: Replica): number[] => [...r.log.frameView()].map((v) => v.seq).sort((a, b) => a - b);

describe('retention (low-water marks)', () => {
  it('the author prunes its stream below the mark in one go: blocks, view, stored frames; audit accepts the chain from the mark; the mark survives a restart', async () => {
    const maxAge = 60_000;
    const [a] = replicas(1, () => [devA, devB], { retentionFor: (s) => (s === 'default' ? maxAge : undefined) });
    // Five batches, a second apart: enrolments of both devices, then 5 frames blocks.
    for (let k = 0; k < 5; k++) ingest(a!, k % 2 ? devB : devA, [k * 10, k * 10 + 1], T0 + k * 1000);
    await a!.log.settled();
    const before = a!.log.streamBlocks(a!.log.author, 'default');
    expect(before).toHaveLength(7);
    // Dry run: what would go, nothing authored.
    const now = T0 + 3500 + maxAge;
    expect(a!.log.retainByAge(now, true)).toEqual([{ stream: 'default', low: 6, prunable: 4 }]);
    expect(a!.log.streamBlocks(a!.log.author, 'default')).toHaveLength(7);
    // Receive times before T0 + 3500 are older than maxAge: frames blocks 0..3 go.
    const done = a!.log.retainByAge(now);
    expect(done.map((d) => [d.stream, d.low, d.prunable])).toEqual([['default', 6, 4]]);
    await a!.log.settled();
    expect(a!.log.mark(a!.log.author, 'default')).toBe(6);
    const after = a!.log.streamBlocks(a!.log.author, 'default');
    // Kept: the two enrolment blocks (seq 0 for dev-a, seq 2 for dev-b: registry facts stay), frames block #4, the retention block.
    expect(after.map(([s]) => s)).toEqual([0, 2, 6, 7]);
    for (const [, h] of before.filter(([s]) => ![0, 2, 6, 7].includes(s))) {
      expect(a!.log.lookup(h)).toBeUndefined();
      expect(a!.log.getEnvelope(h)).toBeUndefined();
    }
    expect(seqsInView(a!)).toEqual([40, 41]);
    expect([...a!.log.frames.query({})].map((f) => f.seq)).toEqual([40, 41]);
    expect(a!.log.frames.get(devA.id, 1, 0)).toBeUndefined();
    expect(a!.log.holds(devA.id, 1, 0)).toBe(false);
    expect(a!.log.frames.count()).toBe(2);
    // Nothing more to prune until newer frames age.
    expect(a!.log.retainByAge(now)).toEqual([]);
    const audit = auditLog(a!.log);
    expect(audit.faults).toEqual([]);
    expect(audit.blocks).toBe(4);
    // Restart: the mark is on disk; an old block is answered pruned, not applied.
    const old = a!.log.getEnvelope(after[2]![1])!; // a kept block, to check apply still says known
    await a!.reopen();
    expect(a!.log.mark(a!.log.author, 'default')).toBe(6);
    expect(a!.log.apply(old).status).toBe('known');
    expect(auditLog(a!.log).faults).toEqual([]);
  });

  it('a long history is pruned a bounded step per mark (one transaction each)', async () => {
    const [a] = replicas(1, () => [devA], { retentionFor: () => 1000, maxPrunePerMark: 2 });
    for (let k = 0; k < 5; k++) ingest(a!, devA, [k], T0 + k);
    await a!.log.settled();
    const steps: number[][] = [];
    for (let i = 0; i < 4; i++) {
      steps.push(a!.log.retainByAge(T0 + 10_000).map((r) => r.prunable));
      await a!.log.settled();
    }
    // 5 frames blocks, 2 per mark: 2, 2, then the last one with the first mark; then only marks
    // are left, which alone are no reason for another (no churn).
    expect(steps).toEqual([[2], [2], [2], []]);
    expect(seqsInView(a!)).toEqual([]);
    expect(auditLog(a!.log).faults).toEqual([]);
    expect(a!.log.streamBlocks(a!.log.author, 'default').map(([, h]) => a!.log.lookup(h)!.kind)).toEqual([
      'enrolment',
      'retention',
      'retention',
    ]);
  });

  it('a mark learnt ahead of its blocks (exchange cut after `mark`) prunes the head too; the next exchange completes it', async () => {
    const [a, c] = replicas(2);
    for (let k = 0; k < 2; k++) ingest(a!, devA, [k], T0 + k);
    await a!.log.settled();
    await exchange(c!.log, a!.log); // c: enrolment #0, frames #1, #2
    for (let k = 2; k < 6; k++) ingest(a!, devA, [k], T0 + k);
    const mark = a!.log.retain('default', 5, T0 + 4);
    await a!.log.settled();
    expect(c!.log.acceptMark(mark.envelope)).toEqual({ status: 'raised' });
    await c!.log.settled();
    const head = c!.log.streamHeads().find((h) => h.author === a!.log.author)!;
    expect(head.seq).toBe(0); // the kept enrolment: #1 and #2 (the old head) are pruned
    expect(head.hashes.every((h) => c!.log.lookup(h) !== undefined)).toBe(true);
    const x = await exchange(c!.log, a!.log);
    expect([...x.initiator.rejected, ...x.responder.rejected]).toEqual([]);
    expect(c!.log.headsDigest()).toBe(a!.log.headsDigest());
    expect(view(c!)).toEqual(view(a!));
    expect(auditLog(c!.log).faults).toEqual([]);
  });

  it('siblings converge: one that held the old blocks prunes them, a fresh one starts at the mark, and pruned blocks are never pulled back', async () => {
    const [a, b, c, d] = replicas(4);
    for (let k = 0; k < 3; k++) ingest(a!, devA, [k], T0 + k * 1000);
    await a!.log.settled();
    await exchange(b!.log, a!.log);
    // b's own stream: its first block names a's head (seq 3, soon pruned) as a parent.
    ingest(b!, devB, [100], T0 + 10_000);
    await b!.log.settled();
    const bFirst = b!.log.streamBlocks(b!.log.author, 'default').at(-1)![1];
    expect(b!.log.lookup(bFirst)).toBeDefined();
    for (let k = 3; k < 6; k++) ingest(a!, devA, [k], T0 + k * 1000);
    await a!.log.settled();
    await exchange(b!.log, a!.log);
    await exchange(d!.log, a!.log); // d holds everything old and will never talk to a again
    const oldEnvelopes = a!.log.streamBlocks(a!.log.author, 'default').map(([, h]) => a!.log.getEnvelope(h)!);
    a!.log.retain('default', 4, T0 + 3000); // frames blocks seq 1..3 go (seq 0 is the enrolment)
    await a!.log.settled();
    // b held the old blocks: it learns the mark in the chain and prunes alike.
    const xb = await exchange(b!.log, a!.log);
    expect([...xb.initiator.rejected, ...xb.responder.rejected]).toEqual([]);
    expect(b!.log.mark(a!.log.author, 'default')).toBe(4);
    expect(b!.log.headsDigest()).toBe(a!.log.headsDigest());
    expect(view(b!)).toEqual(view(a!));
    // c starts empty: the mark goes first, then the stream from the mark (and the kept enrolment).
    const xc = await exchange(c!.log, b!.log);
    expect(xc.initiator.rejected).toEqual([]);
    expect(xc.initiator.marks).toBe(1);
    expect(c!.log.headsDigest()).toBe(a!.log.headsDigest());
    expect(view(c!)).toEqual(view(a!));
    expect(seqsInView(c!)).toEqual([3, 4, 5, 100]); // frames 0..2 sat in blocks 1..3
    for (const r of [a!, b!, c!]) expect(auditLog(r.log).faults).toEqual([]);
    // d never pruned: syncing with c, it gets the retention block, prunes, and sends nothing old back.
    const xd = await exchange(c!.log, d!.log);
    expect([...xd.initiator.rejected, ...xd.responder.rejected]).toEqual([]);
    // d does not know the mark when it plans: it offers only its registry blocks below it (the
    // enrolment, which c holds), never the frames blocks c pruned.
    expect(xd.responder.blocksSent).toBe(1);
    expect(xd.initiator.known).toBe(1);
    expect(xd.initiator.pruned).toBe(0);
    expect(d!.log.headsDigest()).toBe(a!.log.headsDigest());
    expect(view(d!)).toEqual(view(a!));
    // A pruned block offered by anyone is answered pruned: not kept, not a fault.
    for (const r of [a!, b!, c!, d!]) {
      const statuses = oldEnvelopes.slice(1, 4).map((e) => r.log.apply(e).status);
      expect(statuses).toEqual(['pruned', 'pruned', 'pruned']);
    }
    await c!.reopen();
    expect(c!.log.apply(oldEnvelopes[2]!).status).toBe('pruned');
    expect(c!.log.headsDigest()).toBe(a!.log.headsDigest());
    // A sync `mark` must be a retention block its (known) author signed; else refused, mark unchanged.
    const markEnv = c!.log.markEnvelope(a!.log.author, 'default')!;
    const forged = Uint8Array.from(markEnv);
    forged[forged.length - 1]! ^= 1; // last byte of the signature
    expect(c!.log.acceptMark(forged)).toMatchObject({ status: 'rejected', faults: [{ code: 'bad-signature' }] });
    expect(c!.log.acceptMark(oldEnvelopes[1]!)).toMatchObject({ status: 'rejected', faults: [{ code: 'malformed' }] }); // a frames block
    const [stranger] = replicas(1);
    stranger!.log.appendFrames([{ frame: devA.frame(9, 0), rxTime: T0, transport: 'mqtt' }]);
    const strangerMark = stranger!.log.retain('default', 2, T0);
    expect(c!.log.acceptMark(strangerMark.envelope)).toMatchObject({
      status: 'rejected',
      faults: [{ code: 'unknown-author' }],
    });
    expect(c!.log.acceptMark(markEnv)).toEqual({ status: 'held' });
    expect(c!.log.mark(a!.log.author, 'default')).toBe(4);
  });
});

describe('revocations in the log', () => {
  it("a revocation is logged once, siblings learn it, and a sibling's frames received after it are left out of every view alike", async () => {
    // a and b enrolled dev-a; c never did (it verifies dev-a under a's logged enrolment).
    const [a, b, c] = replicas(3, (i) => (i === 2 ? [devB] : [devA, devB]));
    ingest(a!, devA, [0, 1], T0);
    await a!.log.settled();
    await exchange(b!.log, a!.log);
    await exchange(c!.log, a!.log);
    // Partition: a's operator revokes dev-a at T0 + 5000; c keeps hearing dev-a.
    const revokedAt = T0 + 5000;
    await new Registry(a!.store).revoke(devA.id, revokedAt);
    expect(a!.log.logRevocations()).toHaveLength(1);
    expect(a!.log.logRevocations()).toHaveLength(0); // logged once
    c!.log.appendFrames([{ frame: devA.frame(1, 2), rxTime: T0 + 4000, transport: 'mqtt' }]); // before the revocation
    c!.log.appendFrames([{ frame: devA.frame(1, 3), rxTime: T0 + 6000, transport: 'mqtt' }]); // after it
    await Promise.all([a!.log.settled(), c!.log.settled()]);
    expect(seqsInView(c!)).toEqual([0, 1, 2, 3]);
    // Links return.
    for (const [x, y] of [
      [a, b],
      [b, c],
      [a, c],
      [a, b],
    ] as const) {
      const r = await exchange(x!.log, y!.log);
      expect([...r.initiator.rejected, ...r.responder.rejected]).toEqual([]);
    }
    const digest = a!.log.headsDigest();
    for (const r of [a!, b!, c!]) {
      expect(r.log.headsDigest()).toBe(digest);
      expect(seqsInView(r)).toEqual([0, 1, 2]); // frame 3 is held in c's block but not shown
      expect(view(r)).toEqual(view(a!));
      expect(r.log.revokedSince(devA.id)).toBe(revokedAt);
      expect(auditLog(r.log).faults).toEqual([]);
    }
    // b enrolled dev-a with the same key: its registry learns the revocation (ingest refuses dev-a now).
    expect(b!.store.devices.get(devA.id)?.revokedAt).toBe(revokedAt);
    expect(new Registry(b!.store).active(devA.id)).toBeUndefined();
    // c never enrolled it: nothing appears in its registry.
    expect(c!.store.devices.get(devA.id)).toBeUndefined();
    // Restart keeps it.
    await c!.reopen();
    expect(seqsInView(c!)).toEqual([0, 1, 2]);
    // a enrols dev-a again with the same key: its next frames carry a fresh enrolment block, and
    // every replica shows the device again (the latest of enrolment and revocation wins, whatever
    // order the blocks arrive in; frames from the revoked gap show again too, a known limit).
    await new Registry(a!.store).enroll({ id: devA.id, publicKey: devA.publicKeyHex }, T0 + 8000);
    ingest(a!, devA, [4], T0 + 9000);
    await a!.log.settled();
    expect(a!.log.revokedSince(devA.id)).toBeUndefined();
    const [fresh] = replicas(1, () => []);
    for (const k of [a!, b!, c!]) fresh!.log.addKnownAuthor(publicKeyFromSeed(k.seed));
    for (const x of [b!, c!]) x.log.addKnownAuthor(publicKeyFromSeed(fresh!.seed));
    for (const [x, y] of [
      [c, a],
      [b, c],
      [fresh, b],
    ] as const) {
      const r = await exchange(x!.log, y!.log);
      expect([...r.initiator.rejected, ...r.responder.rejected]).toEqual([]);
    }
    for (const r of [a!, b!, c!, fresh!]) {
      expect(r.log.headsDigest()).toBe(a!.log.headsDigest());
      expect(seqsInView(r)).toEqual([0, 1, 2, 3, 4]);
    }
  });
});

describe('retention in the gateway (config log.retention, timer)', () => {
  it('parses durations; config per stream, else policy, else default; forever keeps', () => {
    expect(parseRetention('30d')).toBe(30 * 86_400_000);
    expect(parseRetention('90m')).toBe(5_400_000);
    expect(parseRetention(3600)).toBe(3_600_000);
    expect(parseRetention('forever')).toBe(Infinity);
    expect(parseRetention('soon')).toBeUndefined();
    const r = retentionResolver({ default: '7d', hot: '1h', keep: 'forever' }, (s) =>
      s === 'audit' ? 1000 : undefined,
    );
    expect([r('hot'), r('audit'), r('other'), r('keep')]).toEqual([3_600_000, 1000, 7 * 86_400_000, undefined]);
    expect(retentionResolver({})('default')).toBeUndefined();
    expect(() => validateConfig({ log: { retention: { default: 'a month' } } })).toThrow(/log\.retention/);
  });

  it('a running gateway prunes its own old blocks and stored frames, and logs a CLI revocation for its siblings', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const { gw } = await startTestGateway(
      dir,
      [devA, devB].map((d) => ({ id: d.id, publicKey: d.publicKeyHex })),
      // A frames block per frame (sealed at each commit), so the marks below fall between frames.
      { log: { retention: { default: '1s' }, sealAfterMs: 0 } },
    );
    cleanups.push(() => gw.stop());
    for (let i = 0; i < 3; i++)
      expect((await gw.ingest.submit(devA.frame(1, i), { transport: 'mqtt' })).status).toBe('stored');
    await waitFor(() => gw.frames.count() === 3, 5000, 'frames stored');
    await new Promise((r) => setTimeout(r, 1100));
    const log = gw.blockLog;
    // `gateway log prune --dry-run` (another process, same store) previews; it prunes nothing.
    const cfg = join(dir, 'outpost.yaml');
    writeFileSync(
      cfg,
      `gateway: { id: gw-test, dataDir: ${JSON.stringify(dir)} }\nlog: { retention: { default: 1s } }\n`,
    );
    const bin = new URL('../../bin/gateway.js', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(process.execPath, [bin, 'log', 'prune', '--dry-run', '--config', cfg]);
    expect(stdout).toMatch(/would prune 3 block\(s\) of default below seq 4/); // enrolment #0 stays; frames #1..3 go
    await expect(promisify(execFile)(process.execPath, [bin, 'log', 'prune', '--config', cfg])).rejects.toMatchObject({
      code: 2,
    });
    expect(log.mark(log.author, 'default')).toBe(0);
    expect((await gw.ingest.submit(devA.frame(1, 3), { transport: 'mqtt' })).status).toBe('stored');
    gw.retention.tick();
    await log.settled();
    expect(log.mark(log.author, 'default')).toBeGreaterThan(0);
    expect([...gw.frames.query({})].map((f) => f.seq)).toEqual([3]);
    expect([...log.frameView()].map((v) => v.seq)).toEqual([3]);
    expect(auditLog(log).faults).toEqual([]);
    const heads = JSON.parse(
      (await promisify(execFile)(process.execPath, [bin, 'log', 'heads', '--json', '--config', cfg])).stdout,
    ) as { heads: { stream: string; mark: number }[] };
    expect(heads.heads.find((h) => h.stream === 'default')?.mark).toBe(log.mark(log.author, 'default'));
    // `gateway devices revoke` writes the registry from another process; the timer logs it.
    await new Registry(gw.store).revoke(devB.id);
    gw.retention.tick();
    await log.settled();
    expect(log.revokedSince(devB.id)).toBe(gw.store.devices.get(devB.id)!.revokedAt); // logged, with the registry's time…
    expect(log.logRevocations()).toEqual([]); // …once
    // (The tick may also have set a newer mark: everything is over 1 s old by now.)
    const revocations = log
      .streamBlocks(log.author, 'default')
      .map(([, h]) => decodeSignedBlock(log.getEnvelope(h)!))
      .flatMap((d) =>
        d.ok && d.value.block.kind === 'enrolment' && d.value.block.body.revokedAt !== undefined
          ? [d.value.block.body.device]
          : [],
      );
    expect(revocations).toEqual([devB.id]);
  });
});

describe('retention of a confidential (sealed) stream', () => {
  it('sealed frames blocks are aged and pruned like plain ones, on readers and on a relay that cannot read them', async () => {
    const seeds = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const keys = seeds.map(publicKeyFromSeed);
    // author and reader may read `doors`; the relay holds ciphertext only.
    const readers = [keys[0]!, keys[1]!];
    const nodes = seeds.map((seed, i) => {
      const { dir, cleanup } = tempDir('outpost-sealed-ret-');
      const store = Store.open(dir);
      store.devices.putSync(devA.id, { id: devA.id, publicKey: devA.publicKeyHex, enrolledAt: 1 });
      const ring = new KeyRing({
        me: { publicKey: keys[i]!, x25519Secret: x25519FromEd25519Seed(seed) },
        readersOf: (p) => (p === 'doors' ? readers : undefined),
      });
      const log = new BlockLog(store, {
        publicKey: keys[i]!,
        sign: (m) => signEd25519(seed, m),
        knownAuthors: keys,
        crypto: ring,
      });
      cleanups.push(async () => {
        await log.settled().catch(() => {});
        await store.close();
        cleanup();
      });
      return { store, log };
    });
    const [author, reader, relay] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
    for (let k = 0; k < 4; k++)
      author.log.appendFrames([{ frame: devA.frame(1, k), rxTime: T0 + k * 1000, transport: 'mqtt' }], 'doors');
    await author.log.settled();
    const kinds = author.log.streamBlocks(author.log.author, 'doors').map(([, h]) => author.log.lookup(h)!.kind);
    expect(kinds.filter((k) => k === 'sealed')).toHaveLength(4);
    await exchange(relay.log, author.log);
    await exchange(reader.log, relay.log);
    expect(seqsInView({ log: reader.log } as Replica)).toEqual([0, 1, 2, 3]);
    // Receive times before T0 + 2500 go: the first three sealed frames blocks.
    const plan = author.log.planRetention('doors', T0 + 2500);
    expect(plan.prunable).toBe(3);
    author.log.retain('doors', plan.low, T0 + 2500);
    await author.log.settled();
    await exchange(relay.log, author.log);
    await exchange(reader.log, relay.log);
    for (const n of [author, reader, relay]) {
      expect(n.log.headsDigest()).toBe(author.log.headsDigest());
      expect(
        n.log
          .streamBlocks(author.log.author, 'doors')
          .map(([, h]) => n.log.lookup(h)!.kind)
          .filter((k) => k === 'sealed'),
      ).toHaveLength(1);
      expect(auditLog(n.log).faults).toEqual([]);
    }
    expect(seqsInView({ log: author.log } as Replica)).toEqual([3]);
    expect(seqsInView({ log: reader.log } as Replica)).toEqual([3]);
    expect(seqsInView({ log: relay.log } as Replica)).toEqual([]); // it never could read them
  });
});
