/**
 * An export sink's progress as a log record: the body of a `cursor` block (kind 10,
 * protocols/block.ts), so a sibling holding the same chains can take the sink over where the
 * author left it. Pure codec, no I/O.
 *
 * Canonical CBOR (RFC 8949 §4.2.1), every integer unsigned:
 *
 *   {1: sink name, 2: at (ms, the author's clock), 3: [[author (32 bytes), stream, next], …]
 *                                              or [author, stream, next, top low, top high]}
 *
 * A position is per chain (author, stream), in the chain's own seqs, which every replica
 * holding the chain shares (no local store key): every seq below `next` is confirmed by the
 * sink, and, newest-first, every seq in [top low, top high] too (top low > next, so the two
 * ranges never touch). Entries are sorted by (author bytes, stream) and unique, so a cursor
 * has one encoding. At most MAX_CURSOR_CHAINS chains: a block's decoder bounds its items.
 * Decoding never throws: every fault is a `cursor/bad-record` error.
 */
import type { CborValue } from './cbor.js';
import { ID_PATTERN } from './ids.js';
import { fail, ok, ProtocolUsageError, type Result } from './result.js';

/** The stream cursor blocks go on (not a policy: synced to every sibling gateway, never exported). */
export const CURSOR_STREAM = '$export';
/** Chains in one cursor block (each entry is at most 6 CBOR items; a block decodes ≤ 4608). */
export const MAX_CURSOR_CHAINS = 512;
const AUTHOR_BYTES = 32;
const MAX_STREAM = 64;

export interface CursorChain {
  /** The chain author's raw Ed25519 key. */
  readonly author: Uint8Array;
  readonly stream: string;
  /** Every seq below it is confirmed. */
  readonly next: number;
  /** A confirmed range above `next` (newest-first export), both ends inclusive. */
  readonly top?: readonly [number, number];
}

export interface CursorRecord {
  readonly sink: string;
  /** When the author logged it (its clock, ms): shown, and a standby's hint of staleness. */
  readonly at: number;
  readonly chains: readonly CursorChain[];
}

type Plain = number | string | Uint8Array | readonly Plain[] | Map<number, Plain>;

function usage(what: string): never {
  throw new ProtocolUsageError('cursor/bad-record', what);
}

const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Bytewise, then by stream: the one order of entries. */
function compareChains(a: CursorChain, b: CursorChain): number {
  for (let i = 0; i < AUTHOR_BYTES; i++) if (a.author[i] !== b.author[i]) return a.author[i]! - b.author[i]!;
  return a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0;
}

/** Why a chain entry is malformed, or undefined. */
function chainProblem(c: CursorChain): string | undefined {
  if (!(c.author instanceof Uint8Array) || c.author.length !== AUTHOR_BYTES) return 'author must be 32 bytes';
  if (typeof c.stream !== 'string' || c.stream.length === 0 || c.stream.length > MAX_STREAM)
    return `stream must be 1..${MAX_STREAM} characters`;
  if (!isNat(c.next)) return 'next must be an unsigned integer';
  if (c.top !== undefined && !(isNat(c.top[0]) && isNat(c.top[1]) && c.top[0] > c.next && c.top[1] >= c.top[0]))
    return 'top must be a range above next';
  return undefined;
}

/** The block body of a cursor record (entries sorted here); throws ProtocolUsageError on a bad one. */
export function cursorBody(r: CursorRecord): Map<number, Plain> {
  if (!ID_PATTERN.test(r.sink)) usage('sink must be a sink name');
  if (!isNat(r.at)) usage('at must be a non-negative integer');
  if (r.chains.length > MAX_CURSOR_CHAINS) usage(`at most ${MAX_CURSOR_CHAINS} chains`);
  const chains = [...r.chains].sort(compareChains);
  const list: Plain[] = [];
  for (let i = 0; i < chains.length; i++) {
    const c = chains[i]!;
    const problem = chainProblem(c);
    if (problem !== undefined) usage(problem);
    if (i > 0 && compareChains(chains[i - 1]!, c) === 0) usage(`chain ${c.stream} given twice`);
    list.push(c.top ? [c.author, c.stream, c.next, c.top[0], c.top[1]] : [c.author, c.stream, c.next]);
  }
  return new Map<number, Plain>([
    [1, r.sink],
    [2, r.at],
    [3, list],
  ]);
}

/** Decodes a cursor block body. Never throws. */
export function decodeCursorBody(body: CborValue): Result<CursorRecord> {
  const bad = (what: string) => fail('cursor/bad-record', what);
  if (!(body instanceof Map)) return bad('a cursor body is a map');
  for (const k of body.keys()) if (k !== 1 && k !== 2 && k !== 3) return bad(`unknown key ${String(k)}`);
  const [sink, at, list] = [body.get(1), body.get(2), body.get(3)];
  if (typeof sink !== 'string' || !ID_PATTERN.test(sink)) return bad('sink must be a sink name');
  if (!isNat(at)) return bad('at must be an unsigned integer');
  if (!Array.isArray(list) || list.length > MAX_CURSOR_CHAINS)
    return bad(`chains must be a list of ≤ ${MAX_CURSOR_CHAINS}`);
  const chains: CursorChain[] = [];
  for (const e of list) {
    if (!Array.isArray(e) || (e.length !== 3 && e.length !== 5)) return bad('a chain is [author, stream, next, top?]');
    const [author, stream, next, lo, hi] = e as CborValue[];
    const c: CursorChain = {
      author: author as Uint8Array,
      stream: stream as string,
      next: next as number,
      ...(e.length === 5 && { top: [lo as number, hi as number] as const }),
    };
    const problem = chainProblem(c);
    if (problem !== undefined) return bad(problem);
    if (chains.length > 0 && compareChains(chains[chains.length - 1]!, c) >= 0)
      return bad('chains must be sorted and unique');
    chains.push(c);
  }
  return ok({ sink, at, chains });
}
