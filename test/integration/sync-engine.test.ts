/**
 * The in-process sync engine (gateway/sync/engine.ts) over real lmdb block logs:
 * N replicas with random ingest, random partitions, merges and cut exchanges
 * converge to identical heads digests and frame views after a final full
 * exchange; "already equal" is one small message each way; one round trip
 * learns the difference; a tampered block is refused and the valid rest syncs.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { auditLog } from '../../gateway/log/audit.js';
import { BlockLog, PRUNABLE_KINDS } from '../../gateway/log/block-log.js';
import { VerifyPool } from '../../gateway/ingest/verify-pool.js';
import { Store } from '../../gateway/store/store.js';
import { exchange, SyncSession } from '../../gateway/sync/engine.js';
import { type FrameEntry, hashHex } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { tempDir } from '../helpers/env.js';

const devices = [testDevice('dev-a'), testDevice('dev-b'), testDevice('dev-c')];
const frameCache = new Map<string, Uint8Array>();
function frame(d: number, boot: number, seq: number): Uint8Array {
  const k = `${d}/${boot}/${seq}`;
  let f = frameCache.get(k);
  if (!f) frameCache.set(k, (f = devices[d]!.frame(boot, seq)));
  return f;
}

interface Replica {
  store: Store;
  log: BlockLog;
  /** (device, boot, seq) this replica ingested itself (its pipeline would dedupe them). */
  heard: Set<string>;
  close: () => Promise<void>;
}

const open: Replica[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
});
/** Received blocks verified on worker threads (as a gateway does), in the runs that draw it. */
const pool = new VerifyPool(2);
afterAll(() => pool.close());

/** `twin`: one more replica with replica 0's key (a gateway restored without its chain), so equivocations happen. */
function replicas(n: number, twin = false): Replica[] {
  const seeds = Array.from({ length: n }, () => randomBytes(32));
  if (twin) seeds.push(seeds[0]!);
  const keys = seeds.map(publicKeyFromSeed);
  return seeds.map((seed, i) => {
    const { dir, cleanup } = tempDir('outpost-sync-');
    const store = Store.open(dir);
    for (const d of devices) store.devices.putSync(d.id, { id: d.id, publicKey: d.publicKeyHex, enrolledAt: 1 });
    const log = new BlockLog(store, { publicKey: keys[i]!, sign: (m) => signEd25519(seed, m), knownAuthors: keys });
    const r: Replica = {
      store,
      log,
      heard: new Set(),
      close: async () => {
        await store.close();
        cleanup();
      },
    };
    open.push(r);
    return r;
  });
}

function ingest(r: Replica, frames: [number, number, number][]): void {
  const entries: FrameEntry[] = [];
  for (const [d, boot, seq] of frames) {
    const k = `${d}/${boot}/${seq}`;
    if (r.heard.has(k)) continue;
    r.heard.add(k);
    entries.push({ frame: frame(d, boot, seq), rxTime: 1_760_000_000_000 + seq, transport: 'mqtt' });
  }
  if (entries.length > 0) r.log.appendFrames(entries);
}

/** An exchange cut after `limit` messages have been delivered (the link died mid-sync). */
async function cutExchange(a: BlockLog, b: BlockLog, limit: number, verifier?: VerifyPool): Promise<void> {
  const sa = new SyncSession(a, undefined, verifier);
  const sb = new SyncSession(b, undefined, verifier);
  let flight = sa.open();
  let toB = true;
  let delivered = 0;
  while (flight.length > 0 && delivered < limit) {
    const next: Uint8Array[] = [];
    const to = toB ? sb : sa;
    for (const m of flight) {
      if (delivered++ >= limit) break;
      next.push(...to.receive(m));
    }
    await to.settled();
    flight = next;
    toB = !toB;
  }
  await Promise.all([a.settled(), b.settled()]);
}

const view = (r: Replica): string[] =>
  [...r.log.frameView()].map((v) => `${v.device}/${v.boot}/${v.seq}@${v.block}:${v.index}`);

type Op =
  | { op: 'ingest'; r: number; frames: [number, number, number][] }
  | { op: 'partition'; groups: number[] }
  | { op: 'sync'; i: number; j: number; probe: boolean }
  | { op: 'cut'; i: number; j: number; limit: number }
  | { op: 'retain'; r: number; frac: number };

const opArb = (n: number): fc.Arbitrary<Op> =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        op: fc.constant('ingest' as const),
        r: fc.nat(n - 1),
        frames: fc.array(fc.tuple(fc.nat(2), fc.integer({ min: 1, max: 2 }), fc.nat(15)), {
          minLength: 1,
          maxLength: 6,
        }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('partition' as const),
        groups: fc.array(fc.nat(2), { minLength: n, maxLength: n }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant('sync' as const),
        i: fc.nat(n - 1),
        j: fc.nat(n - 1),
        probe: fc.boolean(),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('cut' as const),
        i: fc.nat(n - 1),
        j: fc.nat(n - 1),
        limit: fc.integer({ min: 1, max: 6 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('retain' as const),
        r: fc.nat(n - 1),
        frac: fc.double({ min: 0, max: 1, noNaN: true }),
      }),
    },
  );

/** A replica's own low-water mark at a random point of its own stream (retention). */
function retain(r: Replica, frac: number): boolean {
  const head = r.log.streamHeads().find((h) => h.author === r.log.author && h.stream === 'default');
  if (!head) return false;
  r.log.retain('default', Math.min(head.seq + 1, Math.floor(frac * (head.seq + 2))), 0);
  return true;
}

/** Prunable blocks held below a mark (there must be none once settled). */
function belowMarks(r: Replica): string[] {
  const out: string[] = [];
  for (const h of r.log.streamHeads()) {
    const m = r.log.mark(h.author, h.stream);
    for (const [seq, hash] of r.log.iterStream(h.author, h.stream, 0)) {
      if (seq >= m) break;
      if (PRUNABLE_KINDS.has(r.log.lookup(hash)!.kind)) out.push(`${h.author.slice(0, 6)}/${h.stream}#${seq}`);
    }
  }
  return out;
}

describe('sync engine', () => {
  it('N replicas (sometimes two sharing a key, so equivocating), random ingest, partitions, merges, cut exchanges and retention marks: identical heads and frame views after a full exchange', async () => {
    let prunedRuns = 0;
    await fc.assert(
      fc.asyncProperty(
        fc
          .tuple(fc.integer({ min: 2, max: 4 }), fc.boolean())
          .chain(([k, twin]) =>
            fc.tuple(
              fc.constant(k + (twin ? 1 : 0)),
              fc.constant(twin),
              fc.array(opArb(k + (twin ? 1 : 0)), { minLength: 1, maxLength: 30 }),
              fc.boolean(),
            ),
          ),
        async ([n, twin, ops, pooled]) => {
          const verifier = pooled ? pool : undefined;
          const rs = replicas(n - (twin ? 1 : 0), twin);
          let retained = false;
          try {
            let groups = Array.from({ length: n }, () => 0);
            for (const o of ops) {
              if (o.op === 'ingest') ingest(rs[o.r]!, o.frames);
              else if (o.op === 'retain') retained = retain(rs[o.r]!, o.frac) || retained;
              else if (o.op === 'partition') groups = o.groups;
              else if (o.i !== o.j && groups[o.i] === groups[o.j]) {
                if (o.op === 'sync') {
                  const x = await exchange(rs[o.i]!.log, rs[o.j]!.log, { probe: o.probe, verifier });
                  expect(x.initiator.rejected).toEqual([]);
                  expect(x.responder.rejected).toEqual([]);
                } else await cutExchange(rs[o.i]!.log, rs[o.j]!.log, o.limit, verifier);
              }
              // Authoring interleaves with syncs, so parents and lamport times cross replicas.
            }
            // And one mark past everything replica 0 authored (its frames blocks all go), so every run
            // that ingested there prunes; the random marks above land anywhere.
            retained = retain(rs[0]!, 1) || retained;
            await Promise.all(rs.map((r) => r.log.settled()));
            // The network heals: a full exchange (everyone with replica 0, twice).
            for (let round = 0; round < 2; round++) {
              for (let i = 1; i < n; i++) {
                const x = await exchange(rs[0]!.log, rs[i]!.log, { verifier });
                expect([...x.initiator.rejected, ...x.responder.rejected]).toEqual([]);
              }
            }
            const digest = rs[0]!.log.headsDigest();
            const v0 = view(rs[0]!);
            const all = new Set(rs.flatMap((r) => [...r.heard]));
            // Retention removes frames whose every copy sat below a mark; without it, none is lost.
            if (retained) expect(v0.length).toBeLessThanOrEqual(all.size);
            else expect(v0).toHaveLength(all.size);
            // Marks in force everywhere and prunable blocks below them gone (belowMarks) = retention exercised.
            if (rs[0]!.log.streamHeads().some((h) => rs[0]!.log.mark(h.author, h.stream) > 1)) prunedRuns++;
            for (const r of rs) {
              expect(r.log.headsDigest()).toBe(digest);
              expect(view(r)).toEqual(v0);
              // pruned blocks are not pulled back by sync, from any sibling
              expect(belowMarks(r)).toEqual([]);
              if (retained) expect(auditLog(r.log).faults).toEqual([]);
            }
            if (twin && rs[0]!.heard.size > 0 && rs[n - 1]!.heard.size > 0)
              expect(auditLog(rs[1]!.log).faults).toEqual([]);
            // Now equal: the probe is one small message each way.
            if (n > 1) {
              const x = await exchange(rs[n - 1]!.log, rs[0]!.log, { probe: true });
              expect(x).toMatchObject({
                flights: 2,
                initiator: { equal: true, bytesSent: 36 },
                responder: { bytesSent: 2 },
              });
            }
          } finally {
            for (const r of rs) await r.log.settled().catch(() => {});
            for (const r of rs) await r.close();
            open.length = 0;
          }
        },
      ),
      { numRuns: 40 },
    );
    // The runs did exercise retention: some marks pruned blocks on every replica.
    expect(prunedRuns).toBeGreaterThan(0);
  }, 120_000);

  it("a sibling behind on a stream its twin forked sends blocks naming the twin's block: held until the streams asked for arrive, not refused (either role, on this thread and on the verify pool)", async () => {
    for (const [behindInitiates, verifier] of [
      [true, undefined],
      [false, undefined],
      [true, pool],
      [false, pool],
    ] as const) {
      const [a, b, twin] = replicas(2, true); // twin: a's key, its own chain
      ingest(twin!, [[0, 1, 0]]); // twin: enrolment #0, frames #1
      await twin!.log.settled();
      await exchange(twin!.log, b!.log);
      ingest(b!, [[0, 1, 0]]); // b's own block names the twin's #1 as a parent
      ingest(a!, [[1, 1, 0]]);
      ingest(a!, [[0, 1, 0]]); // a: #0..#3 of its own, ahead of b's #1 on that stream (the twin's)
      await Promise.all([a!.log.settled(), b!.log.settled()]);
      // b is behind on a's stream and cannot tell a's chain is not its own there; a can, and asks
      // for the stream whole (want), but b's blocks naming the twin's #1 are already on their way.
      const x = behindInitiates
        ? await exchange(b!.log, a!.log, { verifier })
        : await exchange(a!.log, b!.log, { verifier });
      expect([...x.initiator.rejected, ...x.responder.rejected]).toEqual([]);
      expect(x.initiator.equivocations + x.responder.equivocations).toBeGreaterThan(0);
      expect(a!.log.headsDigest()).toBe(b!.log.headsDigest());
      expect(auditLog(a!.log).faults).toEqual([]);
      for (const r of [a, b, twin]) await r!.close();
      open.length = 0;
    }
  });

  it('one round trip learns the difference; sync bytes stay within 5% of the missing blocks; a second exchange finds them equal', async () => {
    const [a, b] = replicas(2);
    const common: [number, number, number][] = [];
    for (let s = 0; s < 200; s++) common.push([s % 3, 1, s]);
    ingest(a!, common);
    await a!.log.durable();
    expect((await exchange(a!.log, b!.log)).initiator.blocksSent).toBe(4); // 3 enrolments, 1 frames block
    for (let k = 0; k < 10; k++) {
      ingest(
        a!,
        Array.from({ length: 64 }, (_, i) => [i % 3, 2, 1000 + k * 64 + i] as [number, number, number]),
      );
      ingest(
        b!,
        Array.from({ length: 64 }, (_, i) => [i % 3, 3, 1000 + k * 64 + i] as [number, number, number]),
      );
    }
    await Promise.all([a!.log.durable(), b!.log.durable()]);
    const x = await exchange(a!.log, b!.log);
    // hello → (vector, blocks, done) → (blocks, done): the initiator knows the difference after one round trip.
    expect(x.flights).toBe(3);
    expect(x.responder.applied).toBe(10);
    expect(x.initiator.applied).toBe(10); // b already holds a's enrolments of the 3 devices, so logs none of its own
    const blockBytes = x.initiator.blockBytesSent + x.responder.blockBytesSent;
    const syncBytes = x.initiator.bytesSent + x.responder.bytesSent;
    expect(syncBytes / blockBytes).toBeLessThan(1.05);
    console.log(
      `sync: ${syncBytes} bytes for ${blockBytes} bytes of missing blocks (${(syncBytes / blockBytes).toFixed(4)}), ${x.flights} flights`,
    );
    expect(a!.log.headsDigest()).toBe(b!.log.headsDigest());
    const again = await exchange(b!.log, a!.log);
    expect(again).toMatchObject({ flights: 2, initiator: { equal: true }, responder: { equal: true } });
    expect(auditLog(b!.log).faults).toEqual([]);
  });

  it.each([
    ['on this thread', undefined],
    ['on the verify pool', pool],
  ])(
    'a tampered block from a relay is refused (%s); the valid rest syncs, and the real block arrives from its author',
    async (_, verifier) => {
      const [a, relay, b] = replicas(3);
      ingest(relay!, [[2, 1, 0]]); // the relay's own block, before it hears a's
      for (let k = 0; k < 3; k++) ingest(a!, [[0, 1, k]]);
      await Promise.all([a!.log.durable(), relay!.log.durable()]);
      await exchange(relay!.log, a!.log);
      // Corrupt the relay's copy of a's block #1 on disk (a flipped byte in its frame).
      const h1 = a!.log.streamBlocks(a!.log.author, 'default')[2]![1]; // enrolment, frames #1, frames #2 ← this one
      const env = Uint8Array.from(relay!.log.getEnvelope(h1)!);
      env[env.length - 100]! ^= 0x40;
      await relay!.log.rawPut(h1, env);
      const x = await exchange(b!.log, relay!.log, { verifier });
      const codes = x.initiator.rejected.map((f) => f.code);
      expect(codes).toContain('bad-signature'); // #1: its bytes no longer match what a signed
      expect(codes).toContain('missing-prev'); // #2 hangs on #1
      expect(x.initiator.applied).toBe(4); // a's enrolment and first frames block, the relay's enrolment and frames
      expect([...b!.log.frameView()].map((v) => v.device + '/' + v.seq).sort()).toEqual(['dev-a/0', 'dev-c/0']);
      const y = await exchange(b!.log, a!.log, { verifier });
      expect(y.initiator.rejected).toEqual([]);
      expect(b!.log.headsDigest()).toBe(a!.log.headsDigest());
      expect(b!.log.streamHeads().find((h) => h.author === a!.log.author)!.hashes).toEqual([
        hashHex(Buffer.from(a!.log.streamHeads().find((h) => h.author === a!.log.author)!.hashes[0]!, 'hex')),
      ]);
    },
  );
});
