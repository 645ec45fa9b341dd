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
}

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
  return { sink: r.value.sink, author: toHex(b.author), cursor: cursorOf(r.value), at: r.value.at, lamport: b.lamport };
}

export class CursorLog {
  constructor(
    private readonly log: BlockLog,
    /** Where this gateway authors blocks (the ingest commit loop), so a block never rides a transaction in doubt. */
    private readonly inCommit: (author: () => void) => void,
  ) {}

  /** Every cursor block held for `sinks`, oldest first by lamport (at start). */
  held(sinks: ReadonlySet<string>): LoggedCursor[] {
    const out: LoggedCursor[] = [];
    for (const hash of this.log.hashesOfKind('cursor')) {
      const env = this.log.getEnvelope(hash);
      const sb = env && decodeSignedBlock(env);
      const c = sb?.ok ? loggedCursor(sb.value) : undefined;
      if (c && sinks.has(c.sink)) out.push(c);
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
          this.log.appendBlock({ kind: 'cursor', body }, CURSOR_STREAM);
          resolve();
        } catch (err) {
          reject(err);
        }
      }),
    );
    await this.log.durable();
  }
}
