/**
 * Reads of the block log's streams (for sync and tools): a stream's blocks, eager or lazy,
 * its range and forks, every head, and the digest two logs compare. Queued blocks (the
 * pending chain in state.ts) are merged in, so a read sees what this turn queued.
 */
import { encodeCanonical, sha256, toHex } from '../../protocols/index.js';
import { headKey, type LogState, type StreamHead } from './state.js';

/** Queued blocks of one stream at or above `fromSeq`, as [seq, hash] (unsorted). */
function pendingOf(s: LogState, author: string, stream: string, fromSeq: number): [number, string][] {
  const prefix = `${author}/${stream}/`;
  const out: [number, string][] = [];
  for (const [key, set] of s.pendingChain) {
    if (!key.startsWith(prefix)) continue;
    const seq = Number(key.slice(prefix.length));
    if (seq >= fromSeq) for (const h of set) out.push([seq, h]);
  }
  return out;
}

/** Every block of one stream as [seq, hash], in seq order (hash order within a forked seq). */
export function streamBlocks(s: LogState, author: string, stream: string, fromSeq = 0): [number, string][] {
  const seen = new Set<string>();
  const out: [number, string][] = [];
  for (const k of s.chain.getKeys({
    start: [author, stream, fromSeq],
    end: [author, stream, Number.MAX_SAFE_INTEGER],
  })) {
    seen.add(k[3]);
    out.push([k[2], k[3]]);
  }
  for (const p of pendingOf(s, author, stream, fromSeq)) if (!seen.has(p[1])) out.push(p);
  return out.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
}

/**
 * One stream's blocks as [seq, hash] in seq order, read lazily in chunks (for sync: memory
 * does not grow with the stream). Queued blocks are merged in.
 */
export function* iterStream(s: LogState, author: string, stream: string, fromSeq = 0): Generator<[number, string]> {
  const pending = pendingOf(s, author, stream, fromSeq);
  pending.sort((a, b) => a[0] - b[0]);
  const queued = new Set(pending.map((p) => p[1]));
  let i = 0;
  let next = fromSeq;
  let last: [string, string, number, string] | undefined;
  for (;;) {
    const chunk = [
      ...s.chain.getKeys({
        start: last ?? [author, stream, next],
        end: [author, stream, Number.MAX_SAFE_INTEGER],
        limit: 256,
      }),
    ].filter((k) => last === undefined || k[2] !== last[2] || k[3] !== last[3]);
    if (chunk.length === 0) break;
    for (const k of chunk) {
      while (i < pending.length && pending[i]![0] < k[2]) yield pending[i++]!;
      if (!queued.has(k[3])) yield [k[2], k[3]];
    }
    last = chunk[chunk.length - 1]!;
    next = last[2];
  }
  while (i < pending.length) yield pending[i++]!;
}

/**
 * The version-vector entry of one stream without walking it: lowest seq held, and the
 * block count (one per seq, plus the extra blocks at equivocated seqs). `mark` is the
 * stream's low-water mark (0: none).
 */
export function streamRange(
  s: LogState,
  author: string,
  stream: string,
  mark: number,
): { low: number; high: number; count: number } | undefined {
  const h = s.heads.get(headKey(author, stream));
  if (!h) return undefined;
  // With a mark, the range starts there (blocks kept below it, such as enrolments, are extra).
  let low = h.seq;
  if (mark > 0) low = Math.min(mark, h.seq);
  else {
    for (const k of s.chain.getKeys({
      start: [author, stream, 0],
      end: [author, stream, Number.MAX_SAFE_INTEGER],
      limit: 1,
    }))
      low = Math.min(low, k[2]);
    const prefix = `${author}/${stream}/`;
    for (const key of s.pendingChain.keys())
      if (key.startsWith(prefix)) low = Math.min(low, Number(key.slice(prefix.length)));
  }
  let extra = 0;
  for (const [seq, hashes] of forks(s, author, stream)) if (seq >= low) extra += hashes.length - 1;
  return { low, high: h.seq, count: h.seq - low + 1 + extra };
}

/** The seqs of a stream that hold more than one block, with their hashes, in seq order. */
export function forks(s: LogState, author: string, stream: string): [number, string[]][] {
  const seqs = new Set<number>();
  for (const { key } of s.equivocDb.getRange({
    start: [author, stream, 0],
    end: [author, stream, Number.MAX_SAFE_INTEGER],
  }))
    seqs.add(key[2]);
  const prefix = `${author}/${stream}/`;
  for (const [key, set] of s.pendingChain)
    if (key.startsWith(prefix) && set.size > 0) seqs.add(Number(key.slice(prefix.length)));
  const out: [number, string[]][] = [];
  for (const seq of [...seqs].sort((a, b) => a - b)) {
    const hashes = s.hashesAt(author, stream, seq);
    if (hashes.length > 1) out.push([seq, hashes]);
  }
  return out;
}

/** Every stream head, sorted by (author, stream). */
export function streamHeads(s: LogState): StreamHead[] {
  return [...s.heads.values()].sort((a, b) =>
    a.author < b.author ? -1 : a.author > b.author ? 1 : a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0,
  );
}

/**
 * SHA-256 over the sorted heads `[author, stream, seq, [hashes], [[forked seq, [hashes]]…]]`
 * in canonical CBOR: two logs print the same digest exactly when they hold the same
 * blocks. Each head names its chain through `prev`, and a block off that chain (an
 * equivocation) sits at a seq holding two or more blocks, which the fork list names.
 * With `only`, over the streams it allows (what sync may offer one peer under policies).
 */
export function headsDigest(s: LogState, only?: (author: string, stream: string) => boolean): string {
  const heads = streamHeads(s)
    .filter((h) => only === undefined || only(h.author, h.stream))
    .map((h) => [h.author, h.stream, h.seq, h.hashes, forks(s, h.author, h.stream)]);
  return toHex(sha256(encodeCanonical(heads)));
}

/** Equivocations: (author, stream, seq) holding two or more blocks. */
export function equivocations(s: LogState): { author: string; stream: string; seq: number; hashes: string[] }[] {
  const out: { author: string; stream: string; seq: number; hashes: string[] }[] = [];
  for (const { key } of s.equivocDb.getRange())
    out.push({ author: key[0], stream: key[1], seq: key[2], hashes: s.hashesAt(key[0], key[1], key[2]) });
  return out;
}
