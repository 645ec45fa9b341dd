/**
 * The fuzz campaign's shared pieces: a mutator over valid inputs (bit flips, byte
 * overwrites, inserts, deletes, truncation, duplication, splicing with another valid
 * input), as a fast-check arbitrary so failures shrink and replay, and the run budget.
 *
 * Budget: each target names its CI run count; `FUZZ_RUNS=N` (npm run fuzz) gives every
 * target N runs times its weight instead, `FUZZ_SEED` replays a seed fast-check printed.
 */
import fc from 'fast-check';
import { concatBytes } from '../../protocols/bytes.js';

export type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; byte: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; len: number }
  | { op: 'truncate'; at: number }
  | { op: 'dup'; at: number; len: number }
  | { op: 'splice'; at: number; other: number; from: number }
  // CBOR-aware: a length or count byte pushed to an edge value (0x17, 0x18, 0x1f, 0xff …).
  | { op: 'edge'; at: number; byte: number };

const EDGE_BYTES = [
  0x00, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x3f, 0x5f, 0x7f, 0x9f, 0xbf, 0xf4, 0xf6, 0xf7, 0xfb, 0xff,
];

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('insert' as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 16 }) }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('dup' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('splice' as const), at: fc.nat(), other: fc.nat(), from: fc.nat() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('edge' as const), at: fc.nat(), byte: fc.constantFrom(...EDGE_BYTES) }),
  },
);

/** Applies one mutation (positions taken modulo the input's length); `pool` supplies the other valid inputs for splicing. */
export function mutate(input: Uint8Array, m: Mutation, pool: readonly Uint8Array[]): Uint8Array {
  const n = input.length;
  const at = n === 0 ? 0 : m.at % (n + (m.op === 'insert' || m.op === 'truncate' ? 1 : 0));
  switch (m.op) {
    case 'flip': {
      if (n === 0) return input;
      const out = input.slice();
      out[at] = out[at]! ^ (1 << m.bit);
      return out;
    }
    case 'set':
    case 'edge': {
      if (n === 0) return input;
      const out = input.slice();
      out[at] = m.byte;
      return out;
    }
    case 'insert':
      return concatBytes(input.subarray(0, at), m.bytes, input.subarray(at));
    case 'delete':
      return concatBytes(input.subarray(0, at), input.subarray(Math.min(n, at + m.len)));
    case 'truncate':
      return input.slice(0, at);
    case 'dup':
      return concatBytes(input.subarray(0, at), input.subarray(at, at + m.len), input.subarray(at));
    case 'splice': {
      const other = pool.length ? pool[m.other % pool.length]! : input;
      const from = other.length === 0 ? 0 : m.from % other.length;
      return concatBytes(input.subarray(0, at), other.subarray(from));
    }
  }
}

/**
 * Inputs for a decoder: mostly valid inputs under 1–4 mutations, some valid ones unchanged,
 * some plain random bytes.
 */
export function fuzzInput(valid: readonly Uint8Array[], maxRandom = 512): fc.Arbitrary<Uint8Array> {
  if (valid.length === 0) throw new Error('fuzzInput needs at least one valid input');
  const pick = fc.nat({ max: valid.length - 1 });
  return fc.oneof(
    {
      weight: 7,
      arbitrary: fc
        .tuple(pick, fc.array(mutationArb, { minLength: 1, maxLength: 4 }))
        .map(([i, ms]) => ms.reduce((b, m) => mutate(b, m, valid), valid[i]!)),
    },
    { weight: 1, arbitrary: pick.map((i) => valid[i]!) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: maxRandom }) },
  );
}

const envRuns = Number(process.env.FUZZ_RUNS ?? '');
/** True under `npm run fuzz` with FUZZ_RUNS set (the long local mode). */
const longMode = Number.isFinite(envRuns) && envRuns > 0;

/** fast-check parameters for one target: its CI runs, or FUZZ_RUNS × weight in the long mode. */
export function budget(ciRuns: number, weight = 1): fc.Parameters<unknown> {
  const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : undefined;
  return {
    numRuns: longMode ? Math.max(1, Math.round(envRuns * weight)) : ciRuns,
    ...(seed !== undefined && Number.isFinite(seed) && { seed }),
  };
}

/** A per-test timeout that leaves the long mode unbounded. */
export const fuzzTimeout = (ciMs: number): number => (longMode ? 24 * 3600_000 : ciMs);
