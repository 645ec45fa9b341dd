/**
 * Sibling sync in the gateway process: a TCP server that only the configured
 * siblings may use, and a loop that dials each sibling with a host every
 * `intervalSeconds` ("are we equal?" first; a full exchange when not).
 * Failures are logged (rate-limited) and retried on the next round.
 */
import { parsePublicKey } from '../../protocols/index.js';
import { ConfigError, type GatewayConfig } from '../config.js';
import type { BlockLog } from '../log/block-log.js';
import { type Logger, LogThrottle } from '../logger.js';
import { type LinkIdentity, SyncServer, syncOverTcp } from './tcp.js';

export interface SiblingStatus {
  readonly id: string;
  readonly lastOkAt?: number;
  readonly lastError?: string;
  readonly applied: number;
  readonly sent: number;
}

/** The sibling keys from the config (validated: a bad key is a config error). */
export function siblingKeys(cfg: GatewayConfig['sync']): Uint8Array[] {
  return cfg.peers.map((p) => {
    const k = parsePublicKey(p.publicKey);
    if (!k.ok) throw new ConfigError('config/invalid', `sync.peers ${p.id}: publicKey ${k.error.message}`);
    return k.value;
  });
}

export class Siblings {
  private timer?: NodeJS.Timeout;
  private running = false;
  private stopped = false;
  private readonly status_ = new Map<string, { lastOkAt?: number; lastError?: string; applied: number; sent: number }>();
  private readonly throttle: LogThrottle;

  private constructor(
    readonly server: SyncServer,
    private readonly cfg: GatewayConfig['sync'],
    private readonly log: BlockLog,
    private readonly identity: LinkIdentity,
    private readonly keys: Uint8Array[],
    private readonly logger: Logger,
  ) {
    this.throttle = new LogThrottle(logger);
    for (const p of cfg.peers) this.status_.set(p.id, { applied: 0, sent: 0 });
  }

  static async start(cfg: GatewayConfig['sync'], log: BlockLog, identity: LinkIdentity, logger: Logger): Promise<Siblings> {
    const keys = siblingKeys(cfg);
    const server = await SyncServer.listen(cfg.host, cfg.port, {
      log,
      identity,
      peers: keys,
      onLink: (r) => {
        if (r.error) logger.warn({ peer: r.peer, code: r.error.code, err: r.error.message }, 'sibling link failed');
        else if (r.stats && r.stats.applied > 0) logger.info({ peer: r.peer, applied: r.stats.applied, rejected: r.stats.rejected.length }, `applied ${r.stats.applied} blocks from a sibling`);
      },
    });
    const s = new Siblings(server, cfg, log, identity, keys, logger);
    logger.info({ port: server.port, peers: cfg.peers.map((p) => p.id) }, `sync listening on ${cfg.host}:${server.port}`);
    // A gateway whose store holds none of its own blocks (new, or its SD card replaced) first
    // pulls its own streams back from its siblings, so what it authors next continues its
    // chains instead of forking them. Called before ingest starts.
    if (!log.streamHeads().some((h) => h.author === log.author) && cfg.peers.some((p) => p.host !== undefined)) {
      await s.round(false);
      const own = log.streamHeads().filter((h) => h.author === log.author);
      logger.info({ streams: own.map((h) => ({ stream: h.stream, seq: h.seq })) }, own.length > 0 ? 'restored this gateway\'s own streams from siblings' : 'no sibling holds blocks of this gateway');
    }
    s.schedule(0);
    return s;
  }

  get port(): number {
    return this.server.port;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.round(), ms);
    this.timer.unref();
  }

  /** Dials every sibling with an address once (also callable directly, e.g. by tests). */
  async round(reschedule = true): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      for (const [i, p] of this.cfg.peers.entries()) {
        if (p.host === undefined || p.port === undefined || this.stopped) continue;
        const st = this.status_.get(p.id)!;
        try {
          const r = await syncOverTcp(p.host, p.port, { log: this.log, identity: this.identity, peers: [this.keys[i]!], probe: true, idleTimeoutMs: 10_000 });
          st.lastOkAt = Date.now();
          delete st.lastError;
          st.applied += r.stats.applied;
          st.sent += r.stats.blocksSent;
          if (r.stats.applied > 0 || r.stats.rejected.length > 0) {
            this.logger.info({ peer: p.id, applied: r.stats.applied, sent: r.stats.blocksSent, rejected: r.stats.rejected.map((f) => f.code) }, `synced with ${p.id}`);
          }
        } catch (err) {
          st.lastError = (err as Error).message;
          this.throttle.warn(`sync:${p.id}`, { peer: p.id, err: (err as Error).message }, `cannot sync with ${p.id}`);
        }
      }
    } finally {
      this.running = false;
      if (reschedule) this.schedule(this.cfg.intervalSeconds * 1000);
    }
  }

  status(): SiblingStatus[] {
    return this.cfg.peers.map((p) => ({ id: p.id, ...this.status_.get(p.id)! }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    while (this.running) await new Promise((r) => setTimeout(r, 20));
    await this.server.close();
  }
}
