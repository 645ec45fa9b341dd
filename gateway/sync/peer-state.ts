/**
 * What this gateway knows of each sibling's sync, for the operator (GET /api/siblings,
 * `gateway status`) and the health checks: the last complete exchange (dialled or answered)
 * and its transport, the last failure, how far the sibling's copy trails this one, and
 * what was refused, by reason.
 *
 * Lag is counted, not guessed: after a complete exchange the sibling holds every block this
 * gateway could offer it (the engine sent what it lacked), so the blocks it may lack since
 * are the offerable blocks (not its own) added here after that exchange (an upper bound: it may have got
 * them from a third gateway). Blocks this gateway authored while the exchange ran count as
 * lacking (they may not have been sent). Seconds behind run from the first such block.
 */
import { toHex } from '../../protocols/index.js';
import type { BlockLog } from '../log/block-log.js';
import type { StreamFilter, SyncStats } from './engine.js';
import { LinkError } from './link.js';

/** How an exchange ran: direct TCP (plain or Noise-encrypted) or MQTT. */
export type SyncTransport = 'tcp' | 'tcp+noise' | 'mqtt';

/** One sibling's sync state as the API shows it. */
export interface SiblingState {
  readonly id: string;
  /** A complete exchange within the freshness window and no failure since. */
  readonly connected: boolean;
  /** This gateway dials it (it has an address); false: only it dials us. */
  readonly dials: boolean;
  /** The transport of the last complete exchange, else the one this gateway dials it over; null if neither. */
  readonly transport: SyncTransport | null;
  /** The last complete exchange, either direction (epoch ms). */
  readonly lastExchangeAt: number | null;
  readonly lastError: string | null;
  readonly lastErrorAt: number | null;
  /** How far its copy trails this gateway's; null before the first complete exchange since start. */
  readonly behind: { readonly blocks: number; readonly seconds: number } | null;
  /** Refused links (`link/<code>`), refused blocks (`block/<fault code>`) and blocks deferred for low disk. */
  readonly refusals: Readonly<Record<string, number>>;
  /** Blocks applied from it and sent to it since start. */
  readonly applied: number;
  readonly sent: number;
}

interface Mutable {
  readonly key: string;
  readonly dialsOver: SyncTransport | undefined;
  transport?: SyncTransport;
  lastOkAt?: number;
  lastError?: string;
  lastErrorAt?: number;
  /** Offerable blocks it held at the last complete exchange. */
  synced?: number;
  /** Own blocks authored when the exchange in progress started. */
  ownAtStart?: number;
  /** The first offerable block added here since the last complete exchange. */
  pendingSince?: number;
  /** This gateway's own offerable stream heads (seq) when the exchange in progress started. */
  ownHeadsAtStart?: Map<string, number>;
  /** Per own stream, the highest seq it held after a complete exchange (the storage budget's copies). */
  readonly held: Map<string, number>;
  refusals: Record<string, number>;
  applied: number;
  sent: number;
}

/** Blocks this log may offer a peer (all, or the streams `offer` allows), but the peer's own. */
function offerable(log: BlockLog, peer: string, offer: StreamFilter | undefined): number {
  let n = 0;
  for (const h of log.streamHeads()) {
    if (h.author === peer || (offer !== undefined && !offer(h.author, h.stream))) continue;
    n += log.streamRange(h.author, h.stream)?.count ?? 0;
  }
  return n;
}

export class PeerStates {
  private readonly peers = new Map<string, Mutable>();
  /** Peer key (hex) → id. */
  private readonly byKey = new Map<string, string>();
  private ownAuthored = 0;
  private readonly unsubscribe: () => void;

  constructor(
    peers: readonly { readonly id: string; readonly key: string; readonly dialsOver?: SyncTransport }[],
    private readonly log: BlockLog,
    private readonly offerTo: ((peer: string) => StreamFilter | undefined) | undefined,
    /** A complete exchange older than this no longer counts as connected. */
    private readonly freshMs: number,
  ) {
    for (const p of peers) {
      this.peers.set(p.id, {
        key: p.key,
        dialsOver: p.dialsOver,
        refusals: {},
        applied: 0,
        sent: 0,
        held: new Map(),
        ...(p.dialsOver && { transport: p.dialsOver }),
      });
      this.byKey.set(p.key, p.id);
    }
    this.unsubscribe = log.onDurableBlock((sb) => {
      const author = toHex(sb.block.author);
      if (author === log.author) this.ownAuthored++;
      const now = Date.now();
      for (const [key, id] of this.byKey) {
        const st = this.peers.get(id)!;
        if (author === key || st.pendingSince !== undefined) continue;
        const offer = this.offerTo?.(key);
        if (offer === undefined || offer(author, sb.block.stream)) st.pendingSince = now;
      }
    });
  }

  /** The id of a sibling key (hex), if configured. */
  idOf(key: string): string | undefined {
    return this.byKey.get(key);
  }

  /** An exchange with `id` starts (authenticated): blocks authored from now may not reach it. */
  started(id: string): void {
    const st = this.peers.get(id);
    if (!st) return;
    st.ownAtStart = this.ownAuthored;
    const offer = this.offerTo?.(st.key);
    st.ownHeadsAtStart = new Map(
      this.log
        .streamHeads()
        .filter((h) => h.author === this.log.author && (offer === undefined || offer(h.author, h.stream)))
        .map((h) => [h.stream, h.seq]),
    );
  }

  /**
   * Per sibling, the highest seq of this gateway's own `stream` it is known to hold: the
   * stream's head when its last complete exchange started (the engine sent it everything up
   * to there); -1 when not known (no complete exchange since this process started).
   */
  heldOwn(stream: string): number[] {
    return [...this.peers.values()].map((st) => st.held.get(stream) ?? -1);
  }

  /** An exchange ended: complete (no error), or failed with `error` (stats as far as it got). */
  ended(id: string, via: SyncTransport, stats: SyncStats | undefined, error?: Error): void {
    const st = this.peers.get(id);
    if (!st) return;
    const now = Date.now();
    if (stats) {
      st.applied += stats.applied;
      st.sent += stats.blocksSent;
      for (const f of stats.rejected) this.count(st, `block/${f.code}`);
      if (stats.deferred > 0) st.refusals['low-disk'] = (st.refusals['low-disk'] ?? 0) + stats.deferred;
    }
    if (error) {
      st.lastError = error.message;
      st.lastErrorAt = now;
      if (error instanceof LinkError) this.count(st, `link/${error.code}`);
      return;
    }
    st.lastOkAt = now;
    st.transport = via;
    for (const [stream, seq] of st.ownHeadsAtStart ?? []) st.held.set(stream, Math.max(seq, st.held.get(stream) ?? -1));
    delete st.ownHeadsAtStart;
    const duringExchange = this.ownAuthored - (st.ownAtStart ?? this.ownAuthored);
    st.synced = offerable(this.log, st.key, this.offerTo?.(st.key)) - duringExchange;
    if (duringExchange === 0) delete st.pendingSince;
    delete st.ownAtStart;
  }

  /** A dial that failed before any exchange (unreachable, refused connection). */
  failed(id: string, err: Error): void {
    this.ended(id, this.peers.get(id)?.dialsOver ?? 'tcp', undefined, err);
  }

  private count(st: Mutable, reason: string): void {
    st.refusals[reason] = (st.refusals[reason] ?? 0) + 1;
  }

  /** The health checks' view: last complete exchange and last error (cleared by a later success). */
  health(id: string): { lastOkAt?: number; lastError?: string; applied: number; sent: number } {
    const st = this.peers.get(id)!;
    const failing = st.lastErrorAt !== undefined && (st.lastOkAt === undefined || st.lastErrorAt > st.lastOkAt);
    return {
      ...(st.lastOkAt !== undefined && { lastOkAt: st.lastOkAt }),
      ...(failing && { lastError: st.lastError! }),
      applied: st.applied,
      sent: st.sent,
    };
  }

  state(id: string, now = Date.now()): SiblingState {
    const st = this.peers.get(id)!;
    const failing = st.lastErrorAt !== undefined && (st.lastOkAt === undefined || st.lastErrorAt > st.lastOkAt);
    let behind: SiblingState['behind'] = null;
    if (st.synced !== undefined) {
      const blocks = Math.max(0, offerable(this.log, st.key, this.offerTo?.(st.key)) - st.synced);
      const since = st.pendingSince ?? st.lastOkAt!;
      behind = { blocks, seconds: blocks === 0 ? 0 : Math.max(0, Math.round((now - since) / 1000)) };
    }
    return {
      id,
      connected: st.lastOkAt !== undefined && !failing && now - st.lastOkAt <= this.freshMs,
      dials: st.dialsOver !== undefined,
      transport: st.transport ?? null,
      lastExchangeAt: st.lastOkAt ?? null,
      lastError: failing ? st.lastError! : null,
      lastErrorAt: st.lastErrorAt ?? null,
      behind,
      refusals: { ...st.refusals },
      applied: st.applied,
      sent: st.sent,
    };
  }

  close(): void {
    this.unsubscribe();
  }
}
