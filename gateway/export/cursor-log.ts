/**
 * A shared sink's cursor in the log: signed `cursor` blocks (protocols/export-cursor.ts) on
 * this gateway's `$export` stream, synced to its siblings like any block, so a sibling that
 * takes the sink over resumes where the sink's far end confirmed (takeover.ts).
 *
 * A cursor is per chain (author, stream) in the chain's own seqs (source.ts), which every
 * replica holding the chain shares: nothing in it is local to one store. Cursors logged by
 * several gateways for one sink (the owner, then a standby that took over) are merged per
 * chain, keeping the one that confirmed more (`mergeCursors`): each says what that sink's far
 * end holds, so the merge never claims a block no gateway had confirmed.
 *
 * Only each sink's latest cursor block matters, so once this gateway's `$export` stream holds
 * more than PRUNE_AFTER blocks above its mark it logs a retention mark (kind 6) at the oldest
 * of its latest block per shared sink: every replica prunes the superseded ones alike.
 */
import {
  type Block,
  type CborValue,
  decodeSignedBlock,
  fromHex,
  type SignedBlock,
  toHex,
} from '../../protocols/index.js';
import {
  CURSOR_STREAM,
  type CursorChain,
  type CursorRecord,
  cursorBody,
  decodeCursorBody,
  MAX_CURSOR_CHAINS,
} from '../../protocols/export-cursor.js';
import type { BlockLog } from '../log/block-log.js';
import { type ChainCursor, chainKey, type ExportCursor } from './source.js';

/** A cursor block seen for a sink: who logged it, and what it says. */
export interface LoggedCursor {
  readonly sink: string;
  /** The logging gateway's key, hex. */
  readonly author: string;
  readonly cursor: ExportCursor;
  readonly at: number;
  readonly lamport: number;
  readonly seq: number;
}

/** Own `$export` blocks above the mark before the superseded ones are pruned. */
const PRUNE_AFTER = 256;

/** The body record of a sink's cursor (at most MAX_CURSOR_CHAINS chains: the furthest behind kept first). */
export function cursorRecord(sink: string, cursor: ExportCursor, at: number): CursorRecord {
  const chains: CursorChain[] = [];
  for (const [key, c] of Object.entries(cursor)) {
    const slash = key.indexOf('/');
    const author = fromHex(key.slice(0, slash));
    if (author?.length !== 32) continue;
    const top = c.top && c.top[0] > c.done + 1 ? c.top : undefined;
    chains.push({ author, stream: key.slice(slash + 1), next: c.done + 1, ...(top && { top }) });
  }
  // Over the bound, a chain left out is simply resumed from its start (idempotent sinks): keep the
  // chains whose loss would cost least to resend out, i.e. keep the most advanced.
  chains.sort((a, b) => b.next - a.next);
  return { sink, at, chains: chains.slice(0, MAX_CURSOR_CHAINS) };
}

/** The export cursor a record carries. */
export function cursorOf(r: CursorRecord): ExportCursor {
  const out: ExportCursor = {};
  for (const c of r.chains)
    out[chainKey(toHex(c.author), c.stream)] = {
      done: c.next - 1,
      ...(c.top && { top: [c.top[0], c.top[1]] as [number, number] }),
    };
  return out;
}

/** Per chain, the cursor that confirmed more (a further `done`; at equal `done`, one with a `top`). */
export function mergeCursors(local: ExportCursor, other: ExportCursor): ExportCursor {
  let out: ExportCursor | undefined;
  for (const [key, c] of Object.entries(other)) {
    const mine: ChainCursor | undefined = local[key];
    if (mine && (mine.done > c.done || (mine.done === c.done && (mine.top !== undefined || c.top === undefined))))
      continue;
    out ??= { ...local };
    out[key] = c;
  }
  return out ?? local;
}

/** The cursor record of a block, if it is a readable cursor block. */
function loggedCursor(sb: { readonly block: Block }): LoggedCursor | undefined {
  const b = sb.block;
  if (b.kind !== 'cursor') return undefined;
  const r = decodeCursorBody(b.body as CborValue);
  if (!r.ok) return undefined;
  return {
    sink: r.value.sink,
    author: toHex(b.author),
    cursor: cursorOf(r.value),
    at: r.value.at,
    lamport: b.lamport,
    seq: b.seq,
  };
}

export class CursorLog {
  /** Seq of this gateway's latest cursor block per shared sink: the superseded ones below may go. */
  private readonly ownLatest = new Map<string, number>();

  constructor(
    private readonly log: BlockLog,
    /** Where this gateway authors blocks (the ingest commit loop), so a block never rides a transaction in doubt. */
    private readonly inCommit: (author: () => void) => void,
  ) {}

  /** Every cursor block held for `sinks` (the shared sinks configured), oldest first by lamport (at start). */
  held(sinks: ReadonlySet<string>): LoggedCursor[] {
    const out: LoggedCursor[] = [];
    for (const hash of this.log.hashesOfKind('cursor')) {
      const env = this.log.getEnvelope(hash);
      const sb = env && decodeSignedBlock(env);
      const c = sb?.ok ? loggedCursor(sb.value) : undefined;
      if (!c || !sinks.has(c.sink)) continue;
      out.push(c);
      if (c.author === this.log.author && c.seq > (this.ownLatest.get(c.sink) ?? -1)) this.ownLatest.set(c.sink, c.seq);
    }
    return out.sort((a, b) => a.lamport - b.lamport);
  }

  /** Calls `fn` with each cursor block once it is durable here (logged here or synced). */
  onCursor(fn: (c: LoggedCursor) => void): () => void {
    return this.log.onDurableBlock((sb: SignedBlock) => {
      if (sb.block.kind !== 'cursor') return;
      const c = loggedCursor(sb);
      if (c) fn(c);
    });
  }

  /** Logs a sink's cursor; resolves once its block is durable. */
  async append(sink: string, cursor: ExportCursor, at = Date.now()): Promise<void> {
    const body = cursorBody(cursorRecord(sink, cursor, at)) as unknown as CborValue;
    await new Promise<void>((resolve, reject) =>
      this.inCommit(() => {
        try {
          this.ownLatest.set(sink, this.log.appendBlock({ kind: 'cursor', body }, CURSOR_STREAM).block.seq);
          this.pruneSuperseded(at);
          resolve();
        } catch (err) {
          reject(err);
        }
      }),
    );
    await this.log.durable();
  }

  /** A retention mark below the oldest latest block per sink, once enough superseded ones piled up. */
  private pruneSuperseded(at: number): void {
    const self = this.log.author;
    const range = this.log.streamRange(self, CURSOR_STREAM);
    if (!range || range.count <= PRUNE_AFTER) return;
    const low = Math.min(...this.ownLatest.values());
    if (low > this.log.mark(self, CURSOR_STREAM)) this.log.retain(CURSOR_STREAM, low, at);
  }
}
