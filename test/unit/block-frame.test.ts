/**
 * Reading one frame out of a stored block (protocols/block-frame.ts): the same entry, author
 * and stream as the full decoder, for any frames block and index; for other kinds and for any
 * bytes at all, a `block/bad-frame-read` result, never an exception.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Block,
  decodeSignedBlock,
  type FrameEntry,
  frameBlockLayout,
  frameInBlock,
  signBlock,
} from '../../protocols/index.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';

const seed = randomBytes(32);
const author = publicKeyFromSeed(seed);
const sign = (m: Uint8Array): Uint8Array => signEd25519(seed, m);
const frameArb: fc.Arbitrary<FrameEntry> = fc.record({
  frame: fc.uint8Array({ minLength: 1, maxLength: 600 }),
  rxTime: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  transport: fc.constantFrom('mqtt', 'serial', 'ble', 'bench'),
});
const header = (stream: string, seq: number) => ({
  author,
  stream,
  seq,
  lamport: seq + 1,
  prev: seq === 0 ? null : new Uint8Array(32).fill(7),
  parents: [new Uint8Array(32).fill(1)],
  policy: `${stream}@2`,
});

describe('frameInBlock', () => {
  it('reads the entry at any index exactly as decodeSignedBlock does, with the author and stream', () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 40 }),
        fc.constantFrom('default', 'hot', 'a.b-c'),
        fc.nat({ max: 1_000_000 }),
        fc.nat(),
        (frames, stream, seq, pick) => {
          const sb = signBlock({ ...header(stream, seq), kind: 'frames', body: frames } as Block, sign);
          const i = pick % frames.length;
          const r = frameInBlock(sb.envelope, i);
          const full = decodeSignedBlock(sb.envelope);
          expect(full.ok && full.value.block.kind === 'frames').toBe(true);
          if (!r.ok || !full.ok || full.value.block.kind !== 'frames') throw new Error('unreadable');
          expect(r.value.entry).toEqual(full.value.block.body[i]);
          expect(r.value.author).toEqual(author);
          expect(r.value.stream).toBe(stream);
          expect(frameInBlock(sb.envelope, frames.length).ok).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a layout reads every entry in any order exactly as decodeSignedBlock does', () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: -2, max: 45 }), { maxLength: 60 }),
        (frames, picks) => {
          const sb = signBlock({ ...header('hot', 1), kind: 'frames', body: frames } as Block, sign);
          const l = frameBlockLayout(sb.envelope);
          if (!l.ok) throw new Error('unreadable');
          expect(l.value.count).toBe(frames.length);
          expect(l.value.stream).toBe('hot');
          // Random order first (the walk extends as far as asked), then all of them.
          for (const i of [...picks, ...frames.keys()]) expect(l.value.entry(i)).toEqual(frames[i]);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a layout reads the lamport, the policy and every entry as decodeSignedBlock does (the export reads blocks so)', () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 40 }),
        fc.nat({ max: 1_000_000 }),
        fc.constantFrom('default', 'hot', 'a.b-c'),
        (frames, seq, stream) => {
          const sb = signBlock({ ...header(stream, seq), kind: 'frames', body: frames } as Block, sign);
          const l = frameBlockLayout(sb.envelope);
          const full = decodeSignedBlock(sb.envelope);
          if (!l.ok || !full.ok || full.value.block.kind !== 'frames') throw new Error('unreadable');
          expect(l.value.lamport).toBe(full.value.block.lamport);
          expect(l.value.policy).toBe(full.value.block.policy);
          expect(l.value.entries()).toEqual(full.value.block.body);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses blocks of other kinds by result', () => {
    const sb = signBlock(
      {
        ...header('default', 0),
        kind: 'enrolment',
        body: { device: 'dev-a', publicKey: author, enrolledAt: 1 },
      } as Block,
      sign,
    );
    const r = frameInBlock(sb.envelope, 0);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('block/bad-frame-read');
  });

  it('never throws on any bytes, truncations or mutations of a real block', () => {
    const sb = signBlock(
      {
        ...header('default', 3),
        kind: 'frames',
        body: [{ frame: randomBytes(90), rxTime: 1, transport: 'mqtt' }],
      } as Block,
      sign,
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(), (bytes, i) => {
        expect(() => frameInBlock(bytes, i % 3)).not.toThrow();
        const l = frameBlockLayout(bytes);
        if (l.ok) expect(() => [l.value.entry(i % 3), l.value.entries()]).not.toThrow();
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(
        fc.nat({ max: sb.envelope.length - 1 }),
        fc.nat({ max: 255 }),
        fc.nat({ max: sb.envelope.length }),
        (at, v, cut) => {
          const m = sb.envelope.slice(0, Math.max(cut, 1));
          if (at < m.length) m[at] = v;
          expect(() => frameInBlock(m, 0)).not.toThrow();
          const l = frameBlockLayout(m);
          if (l.ok) expect(() => [l.value.entry(0), l.value.entries()]).not.toThrow();
        },
      ),
      { numRuns: 1000 },
    );
  });
});
