/**
 * The frames journal (gateway/log/journal.ts): ingest acks a frame once it is durable in the
 * journal with its view entries, and its signed frames block is sealed later: by count, by
 * the seal window, before a sync exchange, on close. Real lmdb, real gateway, real TCP sync.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { auditLog } from '../../gateway/log/audit.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { FrameReader, type FrameRow } from '../../gateway/log/frames-index.js';
import { JournalTable } from '../../gateway/log/journal-table.js';
import { Store } from '../../gateway/store/store.js';
import { SyncServer, syncOverTcp } from '../../gateway/sync/tcp.js';
import { decodeSignedBlock, MAX_BLOCK_FRAMES, type SignedBlock, toHex } from '../../protocols/index.js';
import { frameEntries, testDevice } from '../helpers/devices.js';
import { startScopedGateway, tempDir, waitFor } from '../helpers/env.js';
import { type LogNode, logNode } from '../helpers/log-node.js';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const dev = testDevice('jr-1');
const enrol = [{ id: dev.id, publicKey: dev.publicKeyHex }];
const framesBlocks = (sbs: SignedBlock[]): SignedBlock[] => sbs.filter((b) => b.block.kind === 'frames');

describe('frames journal', () => {
  it('keeps a row a commit group: entries read back by index from the row holding them, removed row by row', async () => {
    const { dir, cleanup } = tempDir();
    const store = Store.open(dir);
    closers.push(cleanup, () => store.close());
    const t = new JournalTable(store.root);
    const es = [0, 1, 2, 3, 4].map((s) => ({ frame: dev.frame(1, s), rxTime: 1000 + s, transport: 'mqtt' }));
    store.track(t.putHead(7, { author: 'ab', policy: 'default', opened: 1 }));
    store.track(t.putRow(7, 0, es.slice(0, 3)));
    store.track(t.putRow(7, 3, es.slice(3)));
    store.track(t.putHead(9, { author: 'ab', policy: 'other', opened: 2 }));
    store.track(t.putRow(9, 0, es.slice(4)));
    await store.durable();
    for (const [i, e] of es.entries()) expect(t.entry(7, i)).toEqual({ ...e, frame: expect.any(Uint8Array) });
    expect(Buffer.from(t.entry(7, 4)!.frame).equals(Buffer.from(es[4]!.frame))).toBe(true);
    expect(t.entry(7, 5)).toBeUndefined(); // past the last row's end
    expect(t.entry(8, 0)).toBeUndefined(); // no such block: the row before it is another block's
    expect(t.blocks().map((b) => [b.no, b.entries.map((e) => e.rxTime), b.rows])).toEqual([
      [7, [1000, 1001, 1002, 1003, 1004], [0, 3]],
      [9, [1004], [0]],
    ]);
    for (const p of t.remove(7, [0, 3])) store.track(p);
    await store.durable();
    expect(t.blocks().map((b) => b.no)).toEqual([9]);
    expect(t.last()).toBe(9);
  });

  it('acks frames before any block: every reader sees them (block null), then sealed in place', async () => {
    const { gw } = await startScopedGateway(enrol, { log: { sealAfterMs: 60_000 } });
    const fed: FrameRow[] = [];
    gw.blockLog.onFrames((rows) => fed.push(...rows));
    const sent = [0, 1, 2, 3, 4].map((s) => dev.frame(1, s));
    const out = await Promise.all(sent.map((f) => gw.ingest.submit(f, { transport: 'mqtt' })));
    expect(out.map((o) => o.status)).toEqual(['stored', 'stored', 'stored', 'stored', 'stored']);
    expect(gw.blockLog.blockCount()).toBe(0); // no block yet, not even the enrolment
    expect(gw.blockLog.journaled).toBe(5);
    const me = toHex(gw.identity.publicKey);
    for (const reader of [gw.blockLog.frames, FrameReader.plain(gw.store.root)]) {
      const rows = [...reader.query({ device: dev.id })];
      expect(rows.map((r) => [r.seq, r.block, r.index, r.heardBy, r.policy])).toEqual(
        [0, 1, 2, 3, 4].map((s) => [s, null, s, me, 'default']),
      );
      expect(Buffer.from(rows[2]!.frame).equals(Buffer.from(sent[2]!))).toBe(true);
      expect([...reader.query({ heardBy: me })]).toHaveLength(5);
    }
    // The live feed saw them at ack time.
    expect(fed.map((r) => [r.seq, r.block])).toEqual([0, 1, 2, 3, 4].map((s) => [s, null]));
    expect(gw.blockLog.viewEntry(dev.id, 1, 3)).toMatchObject({ block: null, index: 3 });
    expect(gw.blockLog.framePolicy(dev.id, 1, 3)).toBe('default'); // the broker's read check, from the open block
    expect((await gw.ingest.submit(dev.frame(1, 3), { transport: 'mqtt' })).status).toBe('duplicate');

    const durable: SignedBlock[] = [];
    gw.blockLog.onDurableBlock((sb) => durable.push(sb));
    await gw.blockLog.sealOpen();
    expect(gw.blockLog.journaled).toBe(0);
    expect(durable.map((b) => b.block.kind)).toEqual(['enrolment', 'frames']);
    const hash = toHex(durable[1]!.hash);
    const rows = [...FrameReader.plain(gw.store.root).query({ device: dev.id })];
    expect(rows.map((r) => [r.seq, r.block, r.index])).toEqual([0, 1, 2, 3, 4].map((s) => [s, hash, s]));
    expect(fed).toHaveLength(5); // sealing announces no frame twice
    expect(gw.blockLog.framePolicy(dev.id, 1, 3)).toBe('default'); // now from the sealed block
    expect(gw.blockLog.framePolicy(dev.id, 1, 99)).toBeUndefined();
    expect(auditLog(gw.blockLog).faults).toEqual([]);
    expect(auditLog(gw.blockLog)).toMatchObject({ frames: 5, uniqueFrames: 5 });
  }, 60_000);

  it('seals a block when it reaches the frame cap; the rest wait in the next one', async () => {
    const { gw } = await startScopedGateway(enrol, { log: { sealAfterMs: 60_000 } });
    const n = MAX_BLOCK_FRAMES + 3;
    const out = await Promise.all(
      Array.from({ length: n }, (_, s) => gw.ingest.submit(dev.frame(2, s), { transport: 'mqtt' })),
    );
    expect(out.every((o) => o.status === 'stored')).toBe(true);
    expect(gw.blockLog.journaled).toBe(3);
    const head = gw.blockLog.streamHeads()[0]!;
    const full = gw.blockLog.lookup(head.hashes[0]!)!;
    expect(full).toMatchObject({ kind: 'frames', frames: MAX_BLOCK_FRAMES });
    const rows = [...gw.blockLog.frames.query({ device: dev.id })];
    expect(rows.filter((r) => r.block === head.hashes[0]).length).toBe(MAX_BLOCK_FRAMES);
    expect(rows.filter((r) => r.block === null).map((r) => r.index)).toEqual([0, 1, 2]);
  }, 120_000);

  it('seals an open block once its first frame is a window old', async () => {
    const { gw } = await startScopedGateway(enrol, { log: { sealAfterMs: 150 } });
    const sealed: SignedBlock[] = [];
    gw.blockLog.onDurableBlock((sb) => sb.block.kind === 'frames' && sealed.push(sb));
    const out = await Promise.all([0, 1, 2].map((s) => gw.ingest.submit(dev.frame(3, s), { transport: 'serial' })));
    expect(out.map((o) => o.status)).toEqual(['stored', 'stored', 'stored']);
    // Nothing asks for a seal here: only the window's timer can seal them (in one block, unless a
    // loaded box spread the three acks over more than a window).
    const frames = (): number =>
      sealed.reduce((n, sb) => n + (sb.block.kind === 'frames' ? sb.block.body.length : 0), 0);
    await waitFor(() => frames() === 3, 10_000, 'the open block sealed by its timer');
    expect(sealed.flatMap((sb) => (sb.block.kind === 'frames' ? sb.block.body.map((e) => e.transport) : []))).toEqual([
      'serial',
      'serial',
      'serial',
    ]);
    expect(gw.blockLog.journaled).toBe(0);
    const hashes = new Set(sealed.map((sb) => toHex(sb.hash)));
    expect([...gw.blockLog.frames.query({})].every((r) => r.block !== null && hashes.has(r.block))).toBe(true);
  }, 60_000);
});

describe('frames journal: blocks sized to whole lmdb pages', () => {
  // 20 frames of ~131 B make a ~3.2 KB block: an overflow value in one 4 KiB page, ~75 % used.
  const PAGE = 4096;
  const sealedFrames = (gw: Awaited<ReturnType<typeof startScopedGateway>>['gw']) => {
    const out: { sb: SignedBlock; at: number }[] = [];
    gw.blockLog.onDurableBlock((sb) => sb.block.kind === 'frames' && out.push({ sb, at: Date.now() }));
    return out;
  };

  it('past its window, a block leaving its last page mostly empty waits for frames, and is sealed at three windows without them', async () => {
    const { gw } = await startScopedGateway(enrol, { log: { sealAfterMs: 300 } });
    const sealed = sealedFrames(gw);
    const t0 = Date.now();
    const out = await Promise.all(
      Array.from({ length: 20 }, (_, s) => gw.ingest.submit(dev.frame(4, s), { transport: 'mqtt' })),
    );
    expect(out.every((o) => o.status === 'stored')).toBe(true);
    await waitFor(() => sealed.length === 1, 20_000, 'the held block sealed at its last chance');
    // Opened at or after t0; a loaded box only delays the timer.
    expect(sealed[0]!.at - t0).toBeGreaterThanOrEqual(3 * 300 - 5);
    expect(sealed[0]!.sb.block.kind === 'frames' && sealed[0]!.sb.block.body.length).toBe(20);
  }, 60_000);

  it('takes frames past its window until the next would need another page, then is sealed before it', async () => {
    const { gw } = await startScopedGateway(enrol, { log: { sealAfterMs: 1500 } });
    const sealed = sealedFrames(gw);
    await Promise.all(Array.from({ length: 20 }, (_, s) => gw.ingest.submit(dev.frame(5, s), { transport: 'mqtt' })));
    await new Promise((r) => setTimeout(r, 1700)); // past the window, within the hold (4.5 s)
    for (let s = 20; s < 60 && sealed.length === 0; s++)
      expect((await gw.ingest.submit(dev.frame(5, s), { transport: 'mqtt' })).status).toBe('stored');
    await waitFor(() => sealed.length > 0, 20_000, 'a block sealed');
    const first = sealed[0]!.sb;
    const n = first.block.kind === 'frames' ? first.block.body.length : 0;
    expect(n).toBeGreaterThan(20); // took frames past its window
    expect(first.envelope.length).toBeLessThanOrEqual(PAGE - 16); // within one overflow page
    expect(first.envelope.length).toBeGreaterThan(0.85 * PAGE); // and fills most of it
    expect(gw.blockLog.journaled).toBe(1); // the frame that did not fit opened the next block
  }, 60_000);
});

describe('frames journal and sync', () => {
  const [sa, sb, sc] = [randomBytes(32), randomBytes(32), randomBytes(32)];
  const [ka, kb, kc] = [sa, sb, sc].map(publicKeyFromSeed) as [Uint8Array, Uint8Array, Uint8Array];
  const node = (seed: Uint8Array, peers: Uint8Array[]): LogNode => logNode(seed, peers, [dev], closers);

  it('both sides seal their journals before an exchange, so each gets every frame the other holds', async () => {
    const a = node(sa, [kb]);
    const b = node(sb, [ka]);
    a.log.journalFrames(frameEntries(dev, 10, 20));
    b.log.journalFrames(frameEntries(dev, 11, 7));
    await Promise.all([a.log.durable(), b.log.durable()]);
    expect([a.log.blockCount(), b.log.blockCount()]).toEqual([0, 0]);
    const server = await SyncServer.listen('127.0.0.1', 0, { log: b.log, identity: b.identity, peers: [ka] });
    closers.push(() => server.close());
    const r = await syncOverTcp('127.0.0.1', server.port, { log: a.log, identity: a.identity, peers: [kb] });
    expect(r.stats.rejected).toEqual([]);
    await b.log.settled();
    expect([a.log.journaled, b.log.journaled]).toEqual([0, 0]);
    expect(b.log.headsDigest()).toBe(a.log.headsDigest());
    expect([...a.log.frameView()]).toHaveLength(27);
    expect([...b.log.frameView()]).toEqual([...a.log.frameView()]);
  });

  it("the same after a restart: a journal reloaded from disk is sealed with the copies table's word", async () => {
    const a = node(sa, [kb, kc]);
    const b = node(sb, [ka, kc]);
    const c = node(sc, [ka, kb]);
    let rechosen = false;
    for (let boot = 12; boot < 40 && !rechosen; boot++) {
      const entries = frameEntries(dev, boot, 3);
      const fromA = a.log.appendFrames(entries);
      await a.log.durable();
      b.log.journalFrames(entries);
      await b.log.durable();
      for (const x of fromA) expect(b.log.apply(x.envelope).status).toBe('applied');
      await b.log.durable();
      b.log.stopJournal();
      // A second log on the same store, as a start after a crash: it knows nothing of this run.
      const again = new BlockLog(b.store, { ...b.identity, knownAuthors: [ka, kc] });
      const fromB: SignedBlock[] = [];
      again.onDurableBlock((x) => toHex(x.block.author) === again.author && fromB.push(x));
      expect(await again.sealJournal()).toBe(3);
      for (const x of [...fromA, ...fromB]) expect(c.log.apply(x.envelope).status).toBe('applied');
      await c.log.durable();
      const hashA = toHex(fromA.at(-1)!.hash);
      const least = [hashA, toHex(framesBlocks(fromB)[0]!.hash)].sort()[0];
      rechosen = least === hashA;
      const mine = (e: { boot: number }): boolean => e.boot === boot;
      expect([...again.frameView()].filter(mine).map((e) => e.block)).toEqual(entries.map(() => least));
      expect([...again.frameView()]).toEqual([...c.log.frameView()]);
      b.log = again;
    }
    expect(rechosen).toBe(true);
  });

  it("a frame journaled here and held in a sibling's block: chosen again at sealing, as a replica holding both blocks chooses", async () => {
    const a = node(sa, [kb, kc]);
    const b = node(sb, [ka, kc]);
    const c = node(sc, [ka, kb]);
    // Which block's hash is less is chance: boots are tried until the sibling's block wins, the
    // case where sealing must choose again (the journal's copy was shown until then).
    let rechosen = false;
    for (let boot = 12; boot < 40 && !rechosen; boot++) {
      const entries = frameEntries(dev, boot, 6);
      const fromA = a.log.appendFrames(entries);
      await a.log.durable();
      // b heard the same frames: journaled first, then a's block arrives before b seals.
      const fromB: SignedBlock[] = [];
      const off = b.log.onDurableBlock((x) => toHex(x.block.author) === b.log.author && fromB.push(x));
      b.log.journalFrames(entries);
      await b.log.durable();
      for (const x of fromA) expect(b.log.apply(x.envelope).status).toBe('applied');
      await b.log.durable();
      expect(b.log.viewEntry(dev.id, boot, 0)?.block).toBeNull(); // the journal's copy shown until sealed
      await b.log.sealOpen();
      off();
      expect(framesBlocks(fromB)).toHaveLength(1);
      for (const x of [...fromA, ...fromB]) expect(c.log.apply(x.envelope).status).toBe('applied');
      await c.log.durable();
      const hashA = toHex(fromA.at(-1)!.hash);
      const least = [hashA, toHex(framesBlocks(fromB)[0]!.hash)].sort()[0];
      rechosen = least === hashA;
      const mine = (e: { boot: number }): boolean => e.boot === boot;
      expect([...b.log.frameView()].filter(mine).map((e) => e.block)).toEqual(entries.map(() => least));
      expect([...b.log.frameView()]).toEqual([...c.log.frameView()]);
      expect([...FrameReader.plain(b.store.root).query({ device: dev.id })].filter(mine).map((r) => r.block)).toEqual(
        entries.map(() => least),
      );
      const d = decodeSignedBlock(b.log.getEnvelope(toHex(framesBlocks(fromB)[0]!.hash))!);
      expect(d.ok && d.value.block.kind === 'frames' && d.value.block.body.length).toBe(6);
    }
    expect(rechosen).toBe(true);
  });
});
