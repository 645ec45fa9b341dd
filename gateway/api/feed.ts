/**
 * The live feed (Server-Sent Events): `frame` for every frame that enters the merged
 * history (heard here or synced from a sibling, once, with `heardBy` and its policy;
 * decoded records), `rejected` for every refused frame (device and reason), and
 * `status` every few seconds. Slow clients are cut off rather than buffered
 * without bound.
 */
import type { ServerResponse } from 'node:http';
import type { Subscription } from 'rxjs';
import type { ApiSource } from './source.js';
import { apiFrame } from './decode.js';

export const MAX_FEED_CLIENTS = 32;
/** Bytes queued in one client's socket before it is dropped as too slow. */
const MAX_BUFFERED = 1 << 20;

/** A signed principal's view of the feed: frames of the policies it may read, nothing else. */
export interface FeedViewer {
  readonly mayRead: (policy: string) => boolean;
}

export class LiveFeed {
  private readonly clients = new Set<ServerResponse>();
  /** Clients that are principals, not the operator: filtered frames, no rejections or status. */
  private readonly viewers = new Map<ServerResponse, FeedViewer>();
  private readonly subs: Subscription[] = [];
  private readonly timer: NodeJS.Timeout;

  private readonly unsubscribeFrames: () => void;

  constructor(
    private readonly gw: ApiSource,
    statusIntervalMs: number,
  ) {
    // Every frame that enters the merged history, heard here or by a sibling (synced), once.
    this.unsubscribeFrames = gw.blockLog!.onFrames((rows) => {
      if (this.clients.size === 0) return;
      for (const f of rows) {
        const frame = apiFrame(f, gw.authors.name(f.heardBy));
        for (const c of this.clients) {
          const v = this.viewers.get(c);
          if (v && !v.mayRead(f.policy)) continue;
          this.send(c, 'frame', frame);
        }
      }
    });
    this.subs.push(
      gw.ingest.outcomes$.subscribe((e) => {
        if (this.clients.size === 0 || e.outcome.status !== 'rejected') return;
        this.broadcast('rejected', {
          device: e.device ?? null,
          reason: e.outcome.reason,
          detail: e.outcome.detail.slice(0, 200),
          transport: e.transport,
          at: new Date().toISOString(),
        });
      }),
    );
    this.timer = setInterval(() => this.clients.size > 0 && this.broadcast('status', gw.status()), statusIntervalMs);
    this.timer.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /** Whether another client may join. */
  get full(): boolean {
    return this.clients.size >= MAX_FEED_CLIENTS;
  }

  /** A new client: the operator (everything), or a principal `viewer` (only frames it may read). */
  add(res: ServerResponse, viewer?: FeedViewer): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 2000\n\n`);
    this.clients.add(res);
    if (viewer) this.viewers.set(res, viewer);
    else this.send(res, 'status', this.gw.status());
    res.on('close', () => {
      this.clients.delete(res);
      this.viewers.delete(res);
    });
  }

  private send(res: ServerResponse, event: string, data: unknown): void {
    if (res.writableLength > MAX_BUFFERED) {
      res.destroy();
      this.clients.delete(res);
      this.viewers.delete(res);
      return;
    }
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** To the operator's clients only (rejections and status are operator data). */
  private broadcast(event: string, data: unknown): void {
    for (const c of this.clients) if (!this.viewers.has(c)) this.send(c, event, data);
  }

  close(): void {
    clearInterval(this.timer);
    this.unsubscribeFrames();
    for (const s of this.subs) s.unsubscribe();
    for (const c of this.clients) c.end();
    this.clients.clear();
    this.viewers.clear();
  }
}
