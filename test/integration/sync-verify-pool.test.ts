/**
 * Received blocks verified on the worker pool (gateway/sync/intake.ts) over real lmdb logs and
 * a real VerifyPool: the same faults as on the main thread (a bad device signature is
 * `device-signature`, a forged author signature `bad-signature`), devices enrolled only by
 * blocks of the same exchange verified under those keys, a pool that fails falls back to the
 * main thread, and at most MAX_IN_FLIGHT_BYTES of blocks wait unapplied.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { type VerifyJob, VerifyPool } from '../../gateway/ingest/verify-pool.js';
import { auditLog } from '../../gateway/log/audit.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { Store } from '../../gateway/store/store.js';
import { exchange, SyncSession } from '../../gateway/sync/engine.js';
import { MAX_IN_FLIGHT_BYTES, type SignatureVerifier } from '../../gateway/sync/intake.js';
import { encodeSyncMessage, type FrameEntry } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { tempDir } from '../helpers/env.js';

const devA = testDevice('dev-a');
const devB = testDevice('dev-b');
const pool = new VerifyPool(2);
afterAll(() => pool.close());
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A log knowing `seeds`' authors; `enrol`: dev-a and dev-b in its local registry. */
function replica(seeds: Uint8Array[], i: number, enrol: boolean): BlockLog {
  const { dir, cleanup } = tempDir('outpost-sync-pool-');
  const store = Store.open(dir);
  if (enrol)
    for (const d of [devA, devB]) store.devices.putSync(d.id, { id: d.id, publicKey: d.publicKeyHex, enrolledAt: 1 });
  cleanups.push(async () => {
    await store.close();
    cleanup();
  });
  return new BlockLog(store, {
    publicKey: publicKeyFromSeed(seeds[i]!),
    sign: (m) => signEd25519(seeds[i]!, m),
    knownAuthors: seeds.map(publicKeyFromSeed),
  });
}

const entries = (frames: Uint8Array[]): FrameEntry[] =>
  frames.map((frame, i) => ({ frame, rxTime: 1_700_000_000_000 + i, transport: 'mqtt' }));

/** A frame whose device signature no longer verifies (its last byte, in the signature, flipped). */
function badSignature(frame: Uint8Array): Uint8Array {
  const bad = Uint8Array.from(frame);
  bad[bad.length - 1]! ^= 1;
  return bad;
}

/** An author `a` whose stream holds good frames, a block with one bad device signature, and a forged frame. */
async function authorWithFaults(): Promise<{ seeds: Uint8Array[]; a: BlockLog }> {
  const seeds = [randomBytes(32), randomBytes(32)];
  const a = replica(seeds, 0, true);
  a.appendFrames(entries([devA.frame(1, 0), devB.frame(1, 0)]));
  a.appendFrames(entries([devA.frame(1, 1), badSignature(devA.frame(1, 2)), devB.frame(1, 1)]));
  // dev-a's id, another key: no enrolment here makes it valid.
  a.appendFrames(entries([testDevice('dev-a').frame(9, 0)]));
  await a.durable();
  return { seeds, a };
}

const codes = (x: Awaited<ReturnType<typeof exchange>>): string[] => x.initiator.rejected.map((f) => f.code).sort();

describe('sync verifying on the worker pool', () => {
  for (const enrol of [true, false]) {
    it(`refuses the same blocks with the same codes as the main thread (devices ${enrol ? 'enrolled here' : 'known only from the enrolment blocks sent alongside'})`, async () => {
      const { seeds, a } = await authorWithFaults();
      const onThread = replica(seeds, 1, enrol);
      const onPool = replica(seeds, 1, enrol);
      let jobs = 0;
      const counting: SignatureVerifier = { verify: (j) => ((jobs += j.length), pool.verify(j)) };
      const x = await exchange(onThread, a);
      const y = await exchange(onPool, a, { verifier: counting });
      // Every signature went to the pool: 5 authors' and 6 frames' (each device has one key).
      expect(jobs).toBe(11);
      expect(codes(x)).toEqual(['device-signature', 'missing-prev']); // the forged frame's block hangs on the bad one
      expect(codes(y)).toEqual(codes(x));
      expect(y.initiator.rejected.map((f) => f.detail)).toEqual(x.initiator.rejected.map((f) => f.detail));
      expect(y.initiator.applied).toBe(x.initiator.applied);
      expect(x.initiator.applied).toBe(3); // two enrolments and the good frames block
      expect(onPool.headsDigest()).toBe(onThread.headsDigest());
      expect([...onPool.frameView()]).toEqual([...onThread.frameView()]);
      expect(auditLog(onPool).faults).toEqual([]);
    });
  }

  it('a forged author signature is bad-signature on the pool too', async () => {
    const seeds = [randomBytes(32), randomBytes(32)];
    const a = replica(seeds, 0, true);
    const [enrolment] = a.appendFrames(entries([devA.frame(1, 0)]));
    await a.durable();
    const forged = Uint8Array.from(enrolment!.envelope);
    forged[forged.length - 1]! ^= 1; // the author signature ends the envelope
    const b = replica(seeds, 1, true);
    const s = new SyncSession(b, undefined, pool);
    s.receive(encodeSyncMessage({ type: 'block', envelope: forged }));
    await s.settled();
    expect(s.stats.rejected.map((f) => f.code)).toEqual(['bad-signature']);
  });

  it('a pool that fails leaves the checks to the main thread: the same results', async () => {
    const { seeds, a } = await authorWithFaults();
    const closed = new VerifyPool(1);
    await closed.close();
    const b = replica(seeds, 1, false);
    const x = await exchange(b, a, { verifier: closed });
    expect(codes(x)).toEqual(['device-signature', 'missing-prev']);
    expect(x.initiator.applied).toBe(3);
  });

  it(`holds at most ${MAX_IN_FLIGHT_BYTES} bytes of blocks unapplied: the reader is told to wait, and all apply in order once verified`, async () => {
    const seeds = [randomBytes(32), randomBytes(32)];
    const a = replica(seeds, 0, true);
    // Frames blocks of 256 frames (~37 kB each), enough to pass the bound; the same frames in each
    // (copies of one another), so the test signs only 256.
    const frames = entries(Array.from({ length: 256 }, (_, i) => (i % 2 ? devA : devB).frame(1, i)));
    for (let k = 0; k < 130; k++) a.appendFrames(frames);
    await a.durable();
    // The pool's answers held back until released.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const held: SignatureVerifier = {
      verify: async (jobs: readonly VerifyJob[]) => {
        await gate;
        return pool.verify(jobs);
      },
    };
    const b = replica(seeds, 1, true);
    const sb = new SyncSession(b, undefined, held);
    const sa = new SyncSession(a);
    const vector = [...sb.receive([...sa.open()][0]!)]; // hello → vector, blocks…, done
    let taken = 0;
    let bytes = 0;
    let waiting: Promise<void> | undefined;
    for (const m of [...sa.receive(vector[0]!)]) {
      sb.receive(m);
      taken++;
      bytes += m.length;
      waiting = sb.backlog();
      if (waiting !== undefined) break;
    }
    expect(waiting).toBeDefined();
    expect(bytes).toBeGreaterThan(MAX_IN_FLIGHT_BYTES);
    expect(bytes).toBeLessThan(MAX_IN_FLIGHT_BYTES + 64 * 1024); // one block past it
    expect(sb.stats.applied).toBe(0);
    release();
    await waiting;
    await sb.settled();
    expect(sb.stats.applied).toBe(taken);
    expect(sb.stats.rejected).toEqual([]);
  });
});
