/**
 * What a sink exports, read from the log through one small interface (positions always from the
 * log; a block the log has just announced durable may be taken as announced, not read back),
 * so the reader behind it can change (today the block log's chains, log-source.ts) without
 * touching the sinks or the exporter.
 *
 * A position in the log is a cursor per chain (author, stream): which block seqs of that
 * chain the sink has confirmed. Oldest-first export keeps one contiguous prefix per chain
 * (`done`); newest-first also keeps one range above it (`top`, from the newest block down),
 * which grows upward as new blocks arrive and downward as the backlog drains, and merges
 * into the prefix when it reaches it. Two numbers per chain, so the cursor stays small
 * whatever the backlog.
 */

/** One frame to export, with where it sits in the log. */
export interface ExportFrame {
  readonly device: string;
  readonly boot: number;
  readonly seq: number;
  /** Receive time at the gateway that heard it, ms. */
  readonly rxTime: number;
  readonly transport: string;
  /** The COSE_Sign1 bytes as the device signed them (so a reader can re-verify). */
  readonly frame: Uint8Array;
  /** Hex key of the gateway that heard it (the block's author). */
  readonly author: string;
  /** The block's policy, `name@version`. */
  readonly policy: string;
  readonly block: string;
  readonly index: number;
}

/** Where one chain's export stands: every seq ≤ done confirmed, and every seq in top (if any). */
export interface ChainCursor {
  done: number;
  top?: [number, number];
}

/** A sink's position: one ChainCursor per `author/stream`. */
export type ExportCursor = Record<string, ChainCursor>;

export type ResendPriority = 'oldest' | 'newest';

/** One step of the log for a sink: the frames of some blocks, and the cursor once they are confirmed. */
export interface ExportBatch {
  readonly frames: ExportFrame[];
  /** The blocks read (frames or not): the cursor moves past them once the sink confirmed. */
  readonly blocks: number;
  readonly cursor: ExportCursor;
  /** Durable blocks were left for the next batch (it stopped at maxFrames). */
  readonly more?: boolean;
}

export interface ChainInfo {
  readonly author: string;
  readonly stream: string;
  /** Newest seq held. */
  readonly head: number;
  /** Lowest seq that may still be held (the chain's low-water mark; 0 without one). */
  readonly low: number;
}

export interface ExportSource {
  /** Every chain the sink might read (the caller filters by policy). */
  chains(): ChainInfo[];
  /**
   * The next blocks after `cursor`, at most `maxFrames` frames (at least one block when any
   * is waiting), in `order`; only chains `readable(stream)` allows. Never returns a block
   * that is not yet durable.
   */
  next(
    cursor: ExportCursor,
    maxFrames: number,
    order: ResendPriority,
    readable: (stream: string) => boolean,
  ): ExportBatch;
  /**
   * Blocks of readable streams not in any chain yet (frames acked into this gateway's journal,
   * sealed within a second): a sink is behind by them too, though no batch can take them yet.
   */
  unsealed?(readable: (stream: string) => boolean): number;
  /** Calls `fn` when new blocks may be waiting; returns an unsubscribe. */
  onChange(fn: () => void): () => void;
}

export const chainKey = (author: string, stream: string): string => `${author}/${stream}`;

/** Whether `seq` of a chain is confirmed. */
export function covered(c: ChainCursor | undefined, seq: number): boolean {
  if (!c) return false;
  return seq <= c.done || (c.top !== undefined && seq >= c.top[0] && seq <= c.top[1]);
}

/** Seqs of a chain not yet confirmed, between its low mark and head (the sink's lag in blocks). */
export function pendingBlocks(c: ChainCursor | undefined, info: ChainInfo): number {
  const done = Math.max(c?.done ?? -1, info.low - 1);
  let n = info.head - done;
  if (c?.top) n -= Math.min(c.top[1], info.head) - Math.max(c.top[0], done + 1) + 1;
  return Math.max(0, n);
}

/**
 * Marks one seq confirmed. Oldest-first seqs extend `done`; newest-first seqs start or
 * extend `top`, which merges into `done` once they meet. A seq below the chain's low
 * mark (pruned) counts as confirmed, so `low` lets `done` jump over a pruned range.
 */
export function confirm(c: ChainCursor | undefined, seq: number, low = 0): ChainCursor {
  const out: ChainCursor = c ? { done: c.done, ...(c.top && { top: [...c.top] as [number, number] }) } : { done: -1 };
  if (out.done < low - 1) out.done = low - 1;
  if (seq <= out.done) return normalise(out);
  if (seq === out.done + 1) out.done = seq;
  else if (!out.top) out.top = [seq, seq];
  else if (seq === out.top[1] + 1) out.top[1] = seq;
  else if (seq === out.top[0] - 1) out.top[0] = seq;
  else if (seq < out.top[0] || seq > out.top[1])
    // Not adjacent to either range: the exporter never asks for this (one gap at a time).
    throw new Error(`export cursor: seq ${seq} is not next to the confirmed ranges`);
  return normalise(out);
}

function normalise(c: ChainCursor): ChainCursor {
  if (c.top && c.top[0] <= c.done + 1) return { done: Math.max(c.done, c.top[1]) };
  return c;
}
