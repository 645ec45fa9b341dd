/**
 * Flood resistance at the broker's sockets, before MQTT authentication has a
 * say: so a flood of bad clients costs little and does not starve enrolled
 * devices.
 * - connections per source address (all, and not yet authenticated), counted from the TCP
 *   accept: a TLS connection still in its handshake is an unauthenticated one (each holds
 *   OpenSSL state, so handshakes left hanging must be capped too);
 * - CONNECT attempts per source address per second (token bucket), which also
 *   bounds the signature checks a flood can make us do;
 * - bytes read from a connection before it authenticates (the first packet
 *   must be a CONNECT; its remaining length is capped).
 * Counters live only while an address has connections or a bucket that is
 * not full, so their memory is bounded by the connections themselves.
 */
import type { Socket } from 'node:net';

export interface GuardLimits {
  /** Connections at once from one address (authenticated or not). */
  readonly connectionsPerAddress: number;
  /** Connections at once from one address that have not authenticated yet. */
  readonly pendingPerAddress: number;
  /** CONNECTs per second from one address (sustained; bursts up to twice this). */
  readonly connectsPerSecond: number;
  /** Bytes a connection may send before it has authenticated. */
  readonly preAuthBytes: number;
}

export interface GuardStats {
  refusedConnections: number;
  refusedConnects: number;
  oversizePreAuth: number;
}

/** Addresses remembered before those without connections are swept. */
const MAX_ADDRESSES = 4096;

interface PerAddress {
  open: number;
  pending: number;
  tokens: number;
  at: number;
}

/**
 * One live TCP connection, the same for the accepted socket and the TLS socket over it (which
 * share both ends): so a TLS connection admitted at accept is found again when its client authenticates.
 */
const connectionKey = (s: Socket): string => `${s.remoteAddress}|${s.remotePort}|${s.localPort}`;

export class ConnectionGuard {
  readonly stats: GuardStats = { refusedConnections: 0, refusedConnects: 0, oversizePreAuth: 0 };
  private readonly byAddress = new Map<string, PerAddress>();
  /** Admitted connections not yet authenticated, by connectionKey. */
  private readonly unauthenticated = new Map<string, PerAddress>();

  constructor(
    private readonly limits: GuardLimits,
    private readonly now: () => number = Date.now,
  ) {}

  private entry(addr: string): PerAddress {
    let e = this.byAddress.get(addr);
    if (!e) {
      if (this.byAddress.size >= MAX_ADDRESSES) this.sweep();
      e = { open: 0, pending: 0, tokens: this.limits.connectsPerSecond * 2, at: this.now() };
      this.byAddress.set(addr, e);
    }
    return e;
  }

  /**
   * A socket just accepted (plain, or the TCP under a TLS handshake): false (and destroyed) when
   * its address is over a cap. Otherwise counted until it closes.
   */
  admit(socket: Socket): boolean {
    const addr = socket.remoteAddress ?? '?';
    const e = this.entry(addr);
    if (e.open >= this.limits.connectionsPerAddress || e.pending >= this.limits.pendingPerAddress) {
      this.stats.refusedConnections++;
      this.forgetIfIdle(addr, e);
      socket.destroy();
      return false;
    }
    e.open++;
    e.pending++;
    const key = connectionKey(socket);
    this.unauthenticated.set(key, e);
    socket.once('close', () => {
      e.open--;
      if (this.unauthenticated.get(key) === e) {
        this.unauthenticated.delete(key);
        e.pending--;
      }
      this.forgetIfIdle(addr, e);
    });
    return true;
  }

  /**
   * The socket MQTT is read from (the accepted one, or the TLS socket over it): until its client
   * authenticates, the first packet must be a CONNECT and at most `preAuthBytes` are read.
   */
  watch(socket: Socket): void {
    const key = connectionKey(socket);
    let bytes = 0;
    const onData = (chunk: Buffer): void => {
      if (!this.unauthenticated.has(key)) return void socket.off('data', onData);
      if (bytes === 0 && chunk[0] !== 0x10) return this.cut(socket); // MQTT-3.1.0-1: CONNECT first
      bytes += chunk.length;
      if (bytes > this.limits.preAuthBytes) this.cut(socket);
    };
    socket.on('data', onData);
  }

  /** The socket's client authenticated: it no longer counts as pending. */
  authenticated(socket: Socket): void {
    const key = connectionKey(socket);
    const e = this.unauthenticated.get(key);
    if (!e) return;
    this.unauthenticated.delete(key);
    e.pending--;
  }

  /** A CONNECT from this socket's address: within the rate? */
  takeConnect(socket: Socket): boolean {
    const e = this.entry(socket.remoteAddress ?? '?');
    const now = this.now();
    const rate = this.limits.connectsPerSecond;
    e.tokens = Math.min(rate * 2, e.tokens + ((now - e.at) / 1000) * rate);
    e.at = now;
    if (e.tokens < 1) {
      this.stats.refusedConnects++;
      return false;
    }
    e.tokens -= 1;
    return true;
  }

  /** Addresses tracked (for tests and status). */
  get addresses(): number {
    return this.byAddress.size;
  }

  /** Forgets addresses with no open connection (their buckets start full again). */
  private sweep(): void {
    for (const [a, e] of this.byAddress) if (e.open === 0) this.byAddress.delete(a);
  }

  private cut(socket: Socket): void {
    this.stats.oversizePreAuth++;
    socket.destroy();
  }

  private forgetIfIdle(addr: string, e: PerAddress): void {
    // A full bucket and no connection: nothing worth remembering.
    if (
      e.open === 0 &&
      e.tokens + ((this.now() - e.at) / 1000) * this.limits.connectsPerSecond >= this.limits.connectsPerSecond * 2
    )
      this.byAddress.delete(addr);
  }
}

/**
 * Lets through at most `burst` log lines per `periodMs` and counts the rest, so a flood of refused
 * clients cannot flood the log (and the disk under it). `take()` says whether to log this one; the
 * first line let through after a suppression carries the count of lines suppressed before it.
 */
export class LogThrottle {
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly burst = 20,
    private readonly periodMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** undefined: suppress; otherwise log, with `suppressed` lines left out since the last one. */
  take(): { suppressed: number } | undefined {
    const t = this.now();
    if (t - this.windowStart >= this.periodMs) {
      this.windowStart = t;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.burst) {
      this.suppressed++;
      return undefined;
    }
    this.inWindow++;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    return { suppressed };
  }
}
