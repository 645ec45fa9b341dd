/**
 * KeyRing (gateway/policy/keyring.ts), the data-key state of confidential
 * policies (issue 6), without a log: an author's ring hands out keys blocks and
 * seals; readers' rings learn keys from the keys blocks they see. Every change of
 * readers starts a new epoch, so a removed reader gets no key for what follows,
 * and one granted again does not read what was written while it was out.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Block, type FrameEntry, toHex } from '../../protocols/index.js';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { KeyRing, readersFrom } from '../../gateway/policy/keyring.js';
import { x25519FromEd25519Seed } from '../../gateway/policy/seal.js';

const party = () => {
  const seed = new Uint8Array(randomBytes(32));
  return { publicKey: publicKeyFromSeed(seed), x25519Secret: x25519FromEd25519Seed(seed) };
};

describe('KeyRing', () => {
  it('every change of readers starts a new epoch; a reader reads exactly the epochs it was a reader in (property)', () => {
    const people = Array.from({ length: 4 }, party);
    fc.assert(
      fc.property(fc.array(fc.subarray([0, 1, 2, 3]), { minLength: 1, maxLength: 8 }), (steps) => {
        const author = party();
        let readers: number[] = [];
        const ring = new KeyRing({
          me: author,
          readersOf: (p) => (p === 'doors' ? readers.map((i) => people[i]!.publicKey) : undefined),
        });
        const rings = people.map((me) => new KeyRing({ me }));
        let seq = 0;
        const sealed: { block: Block; members: number[] }[] = [];
        const header = () => ({
          author: author.publicKey,
          stream: 'doors',
          seq: seq++,
          lamport: seq,
          prev: seq === 1 ? null : new Uint8Array(32),
          parents: [],
          policy: 'doors@1',
        });
        for (const step of steps) {
          readers = step;
          ring.invalidate('doors');
          for (const c of ring.beforeAppend('doors@1')) {
            const kb = { ...header(), ...c } as Block;
            ring.observe(kb);
            for (const r of rings) r.observe(kb);
          }
          const frames: FrameEntry[] = [{ frame: new Uint8Array(randomBytes(40)), rxTime: seq, transport: 'mqtt' }];
          const block = ring.seal({ ...header(), kind: 'frames', body: frames });
          expect(block.kind).toBe('sealed');
          expect(ring.open(block).ok).toBe(true); // the author always reads its own
          sealed.push({ block, members: step });
        }
        for (const { block, members } of sealed) {
          rings.forEach((r, i) => {
            const o = r.open(block);
            expect(o.ok, `reader ${i} of ${members.join(',')}`).toBe(members.includes(i));
            if (!o.ok) expect(o.error.code).toBe('sealed/no-key');
          });
        }
        // Epochs: one per change of the reader set.
        let changes = 0;
        for (const [i, s] of steps.entries())
          if (i === 0 || toHex(Uint8Array.from(s)) !== toHex(Uint8Array.from(steps[i - 1]!))) changes++;
        expect(ring.currentEpoch('doors')).toBe(changes - 1);
      }),
      { numRuns: 25 },
    );
  });

  it('a new epoch whose keys block did not reach the disk is replaced by another at the next block', async () => {
    let fail = true;
    const ring = new KeyRing({
      me: party(),
      readersOf: () => [],
      durable: () => (fail ? Promise.reject(new Error('Commit failed: MDB_MAP_FULL')) : Promise.resolve()),
    });
    const b = {
      author: new Uint8Array(32),
      stream: 'doors',
      seq: 1,
      lamport: 2,
      prev: new Uint8Array(32),
      parents: [],
      policy: 'doors',
      kind: 'frames' as const,
      body: [{ frame: new Uint8Array([1]), rxTime: 1, transport: 'mqtt' }],
    };
    expect(ring.beforeAppend('doors')).toHaveLength(1);
    ring.seal(b);
    await new Promise((r) => setImmediate(r));
    fail = false;
    expect(ring.beforeAppend('doors')).toHaveLength(1); // epoch 1, wrapped again
    expect(ring.currentEpoch('doors')).toBe(1);
    ring.seal(b);
    await new Promise((r) => setImmediate(r));
    expect(ring.beforeAppend('doors')).toEqual([]); // durable: keep sealing under epoch 1
    expect(ring.currentEpoch('doors')).toBe(1);
  });

  it('policies that are not confidential are neither sealed nor given keys blocks', () => {
    const ring = new KeyRing({
      me: party(),
      readersOf: readersFrom({ policy: (n) => ({ confidential: n === 'doors' }), readers: () => [] }),
    });
    expect(ring.beforeAppend('vibration@2')).toEqual([]);
    const b = {
      author: new Uint8Array(32),
      stream: 'vibration',
      seq: 0,
      lamport: 1,
      prev: null,
      parents: [],
      policy: 'vibration@2',
      kind: 'frames' as const,
      body: [{ frame: new Uint8Array([1]), rxTime: 1, transport: 'mqtt' }],
    };
    expect(ring.seal(b)).toBe(b);
    expect(ring.beforeAppend('doors@1')).toHaveLength(1); // only itself as reader: still one wrap
    expect(() => new KeyRing({ me: party(), readersOf: () => [] }).seal({ ...b, policy: 'doors' })).toThrow(
      /beforeAppend was not called/,
    );
    // A reader key with no curve point (cannot come from the loader) is skipped, not thrown into ingest.
    const good = party();
    const me2 = party();
    const ring2 = new KeyRing({ me: me2, readersOf: () => [new Uint8Array(32).fill(255), good.publicKey] });
    const [kb] = ring2.beforeAppend('doors');
    expect(ring2.stats.badReaders).toBe(1);
    const reader = new KeyRing({ me: good });
    reader.observe({ ...b, author: me2.publicKey, policy: 'doors', ...kb! } as Block);
    expect(reader.stats.unwrapped).toBe(1);
  });
});
