/**
 * Sibling sync in the gateway process: a TCP server that only the configured
 * siblings may use, MQTT responders (on the embedded broker once attached, and
 * on each of `brokers`), and a loop that dials each sibling with an address
 * (host/port or url) every `intervalSeconds` ("are we equal?" first; a full
 * exchange when not).
 * Failures are logged (rate-limited) and retried on the next round.
 */
import { parsePublicKey, toHex } from '../../protocols/index.js';
import { ConfigError, type GatewayConfig } from '../config.js';
import { rememberSiblings } from '../log/authors.js';
import type { BlockLog } from '../log/block-log.js';
import { type Logger, LogThrottle } from '../logger.js';
import type { SpaceCheck } from '../store/free-space.js';
import type { SignatureVerifier } from './intake.js';
import type { EmbeddedBroker } from '../transports/mqtt-broker.js';
import type { LinkOptions, LinkResult, SyncLinkEvents } from './link.js';
import { PeerStates, type SiblingState, type SyncTransport } from './peer-state.js';
import { readSecret } from '../outbound.js';
import { brokerKey, brokerOf } from './config.js';
import { aedesBus, type BrokerLogin, clientBus, MqttSyncResponder, syncOverMqtt } from './mqtt.js';
import { type LinkIdentity, SyncServer, syncOverTcp } from './tcp.js';

type Peer = GatewayConfig['sync']['peers'][number];

/** A sibling last heard from longer ago than this (or 3 sync intervals) is shown not connected. */
const FRESH_MS = 30_000;

/** How to reach a sibling: its `url`, else host/port over TCP; undefined if it only dials us. */
function peerEndpoint(
  p: Peer,
): { kind: 'tcp'; host: string; port: number } | { kind: 'mqtt'; url: string } | undefined {
  if (p.url !== undefined) {
    const u = new URL(p.url);
    return u.protocol === 'tcp:'
      ? { kind: 'tcp', host: u.hostname, port: Number(u.port) }
      : { kind: 'mqtt', url: p.url };
  }
  return p.host !== undefined && p.port !== undefined ? { kind: 'tcp', host: p.host, port: p.port } : undefined;
}

/**
 * Each broker of `sync.brokers` as this gateway logs in there, by address, its password read
 * from its file now: a missing or unreadable file stops the start with the key that names it.
 */
function brokerLogins(cfg: GatewayConfig['sync']): Map<string, BrokerLogin> {
  return new Map(
    cfg.brokers.map((entry, i) => {
      const b = brokerOf(entry);
      let password: string | undefined;
      try {
        password = readSecret(b.passwordFile);
      } catch (e) {
        throw new ConfigError(
          'config/invalid',
          `sync.brokers.${i}.passwordFile: cannot read ${b.passwordFile}: ${(e as Error).message}`,
        );
      }
      return [brokerKey(b.url), { url: b.url, username: b.username, tls: b.tls, password }];
    }),
  );
}

/** The transport a sibling is dialled over (none when it only dials us). */
function dialTransport(p: Peer, cfg: GatewayConfig['sync']): SyncTransport | undefined {
  const ep = peerEndpoint(p);
  if (ep === undefined) return undefined;
  return ep.kind === 'mqtt' ? 'mqtt' : cfg.encrypted ? 'tcp+noise' : 'tcp';
}

export interface SiblingStatus {
  readonly id: string;
  /** The last complete exchange, dialled or answered. */
  readonly lastOkAt?: number;
  /** Why the last attempt failed, when none succeeded since. */
  readonly lastError?: string;
  readonly applied: number;
  readonly sent: number;
}

/** The gateway cannot restore its own streams before authoring (a start-up refusal, exit 1). */
export class RestoreError extends Error {
  readonly code = 'sync/restore-low-disk';
  override readonly name = 'RestoreError';
}

/** TCP links are Noise-encrypted (sync.encrypted) with the X25519 key of the gateway's identity; every link offers compression unless sync.compress is false. */
const noiseOf = (cfg: GatewayConfig['sync'], identity: LinkIdentity): { noiseSecret?: Uint8Array; deflate: boolean } =>
  cfg.encrypted && identity.x25519Secret
    ? { noiseSecret: identity.x25519Secret, deflate: cfg.compress }
    : { deflate: cfg.compress };

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
  /** The round dialling now, and the one callers asked for meanwhile (round()). */
  private running: Promise<void> | undefined;
  private queued: { reschedule: boolean; done: Promise<void> } | undefined;
  private stopped = false;
  private readonly throttle: LogThrottle;
  private readonly responders: MqttSyncResponder[] = [];
  private readonly buses: { close(): Promise<void> }[] = [];
  private forgetPeers: () => void = () => {};
  /** The broker connection of the dial in progress, closed by stop() so a round ends at once. */
  private dialBus?: { close(): Promise<void> };

  private constructor(
    readonly server: SyncServer,
    private readonly cfg: GatewayConfig['sync'],
    private readonly log: BlockLog,
    private readonly identity: LinkIdentity,
    private readonly keys: Uint8Array[],
    private readonly logger: Logger,
    /** Each sibling's sync state (the API's /api/siblings, the health checks). */
    private readonly states: PeerStates,
    /** `sync.brokers` by address: where this gateway answers, and how it logs in to dial a sibling there. */
    private readonly logins: Map<string, BrokerLogin>,
    private readonly offerTo?: LinkOptions['offerTo'],
    private readonly space?: SpaceCheck,
    private readonly verifier?: SignatureVerifier,
  ) {
    this.throttle = new LogThrottle(logger);
  }

  /** `offerTo`: the streams each sibling may be offered (gateway/policy/sync-filter.ts); default all. */
  /** `space`: the free-space guard; while the disk is low siblings' blocks are not applied (the next exchange resends). */
  /** `verifier`: the verify pool, which checks received blocks' signatures on every core (default: this thread). */
  static async start(
    cfg: GatewayConfig['sync'],
    log: BlockLog,
    identity: LinkIdentity,
    logger: Logger,
    offerTo?: LinkOptions['offerTo'],
    space?: SpaceCheck,
    verifier?: SignatureVerifier,
  ): Promise<Siblings> {
    const keys = siblingKeys(cfg);
    const logins = brokerLogins(cfg);
    const states = new PeerStates(
      cfg.peers.map((p, i) => ({ id: p.id, key: toHex(keys[i]!), dialsOver: dialTransport(p, cfg) })),
      log,
      offerTo,
      Math.max(FRESH_MS, 3 * cfg.intervalSeconds * 1000),
    );
    const server = await SyncServer.listen(cfg.host, cfg.port, {
      log,
      identity,
      ...noiseOf(cfg, identity),
      peers: keys,
      offerTo,
      space,
      verifier,
      ...Siblings.events(logger, states, cfg.encrypted ? 'tcp+noise' : 'tcp'),
    });
    const s = new Siblings(server, cfg, log, identity, keys, logger, states, logins, offerTo, space, verifier);
    // The peers' keys are remembered in the store as their blocks land, so the audit checks them without the config.
    s.forgetPeers = rememberSiblings(
      log,
      cfg.peers.map((p, i) => ({ id: p.id, publicKey: keys[i]! })),
    );
    logger.info(
      { port: server.port, peers: cfg.peers.map((p) => p.id) },
      `sync listening on ${cfg.host}:${server.port}${cfg.encrypted ? ' (Noise XX)' : ' (plain TCP)'}`,
    );
    for (const login of logins.values()) {
      const url = login.url;
      const bus = await clientBus(login, identity, {
        reconnect: true,
        onError: (err) =>
          logger.warn(
            { broker: url, code: (err as { code?: unknown }).code, err: err.message },
            `sync cannot answer siblings on ${url}: ${err.message}`,
          ),
      });
      s.buses.push(bus);
      s.responders.push(
        await MqttSyncResponder.start(bus, {
          log,
          identity,
          peers: keys,
          offerTo,
          space,
          verifier,
          deflate: cfg.compress,
          ...Siblings.events(logger, states, 'mqtt'),
        }),
      );
      logger.info({ broker: url }, `sync answering siblings on ${url}`);
    }
    // A gateway whose store holds none of its own blocks (new, or its SD card replaced) first
    // pulls its own streams back from its siblings, so what it authors next continues its
    // chains instead of forking them. Called before ingest starts.
    if (
      !log.streamHeads().some((h) => h.author === log.author) &&
      cfg.peers.some((p) => peerEndpoint(p) !== undefined)
    ) {
      // A low disk defers siblings' blocks, so the restore would be partial and the next block
      // authored here would fork this gateway's own chains: refuse to start instead.
      const lowDisk = async (): Promise<void> => {
        if (space === undefined || space.writable()) return;
        await s.stop();
        throw new RestoreError(
          "this gateway's store holds none of its own blocks and the data directory is below ingest.minFreeBytes: " +
            'its streams cannot be restored from siblings, and authoring now would fork them; free some space and start again',
        );
      };
      await lowDisk();
      await s.round(false);
      await lowDisk();
      const own = log.streamHeads().filter((h) => h.author === log.author);
      logger.info(
        { streams: own.map((h) => ({ stream: h.stream, seq: h.seq })) },
        own.length > 0
          ? "restored this gateway's own streams from siblings"
          : 'no sibling holds blocks of this gateway',
      );
    }
    s.schedule(0);
    return s;
  }

  /** Link events of answered exchanges: logged, and recorded in the peer's state. */
  private static events(logger: Logger, states: PeerStates, via: SyncTransport): SyncLinkEvents {
    return {
      onStart: (key) => {
        const id = states.idOf(key);
        if (id !== undefined) states.started(id);
      },
      onLink: (r) => {
        const id = r.peer === undefined ? undefined : states.idOf(r.peer);
        if (id !== undefined) states.ended(id, via, r.stats, r.error);
        if (r.error) logger.warn({ peer: r.peer, code: r.error.code, err: r.error.message }, 'sibling link failed');
        else if (r.stats && r.stats.deferred > 0)
          logger.warn(
            { peer: r.peer, applied: r.stats.applied, deferred: r.stats.deferred },
            `low disk: ${r.stats.deferred} blocks from a sibling not applied (resent next exchange)`,
          );
        else if (r.stats && r.stats.applied > 0)
          logger.info(
            { peer: r.peer, applied: r.stats.applied, rejected: r.stats.rejected.length },
            `applied ${r.stats.applied} blocks from a sibling`,
          );
      },
    };
  }

  /** Answers siblings' sync on the gateway's own embedded broker (they log in with their gateway keys). */
  async attachBroker(broker: EmbeddedBroker): Promise<void> {
    this.responders.push(
      await MqttSyncResponder.start(aedesBus(broker), {
        log: this.log,
        identity: this.identity,
        peers: this.keys,
        offerTo: this.offerTo,
        space: this.space,
        verifier: this.verifier,
        deflate: this.cfg.compress,
        ...Siblings.events(this.logger, this.states, 'mqtt'),
      }),
    );
  }

  private async dial(p: Peer, key: Uint8Array): Promise<LinkResult | undefined> {
    const ep = peerEndpoint(p);
    if (ep === undefined) return undefined;
    const opts = {
      log: this.log,
      identity: this.identity,
      peers: [key],
      probe: true,
      idleTimeoutMs: 10_000,
      ...noiseOf(this.cfg, this.identity),
      offerTo: this.offerTo,
      space: this.space,
      verifier: this.verifier,
    };
    if (ep.kind === 'tcp') return syncOverTcp(ep.host, ep.port, opts);
    const bus = await clientBus(this.logins.get(brokerKey(ep.url)) ?? ep.url, this.identity, {
      connectTimeoutMs: 5_000,
    });
    this.dialBus = bus;
    try {
      return await syncOverMqtt(bus, key, opts);
    } finally {
      this.dialBus = undefined;
      await bus.close().catch((err: unknown) => this.warnClose(err));
    }
  }

  get port(): number {
    return this.server.port;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.round(), ms);
    this.timer.unref();
  }

  /**
   * Dials every sibling with an address once (the timer, the restore at start, tests). A call
   * while a round runs gets the next one, started when it ends (the running round may have passed
   * a sibling before the caller's change), so whoever awaits a round sees an exchange that began
   * after the call. Calls meanwhile share that next round; the timer is rescheduled once.
   */
  round(reschedule = true): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running !== undefined) {
      if (this.queued) {
        this.queued.reschedule ||= reschedule;
        return this.queued.done;
      }
      const q = { reschedule, done: Promise.resolve() };
      const next = (): Promise<void> => {
        this.queued = undefined;
        return this.round(q.reschedule);
      };
      q.done = this.running.then(next, next);
      this.queued = q;
      return q.done;
    }
    const run = this.dialAll().finally(() => {
      this.running = undefined;
      if (reschedule) this.schedule(this.cfg.intervalSeconds * 1000);
    });
    this.running = run;
    return run;
  }

  private async dialAll(): Promise<void> {
    for (const [i, p] of this.cfg.peers.entries()) {
      if (peerEndpoint(p) === undefined || this.stopped) continue;
      try {
        this.states.started(p.id);
        const r = await this.dial(p, this.keys[i]!);
        if (!r) continue;
        this.states.ended(p.id, dialTransport(p, this.cfg)!, r.stats);
        if (r.stats.applied > 0 || r.stats.rejected.length > 0 || r.stats.marks > 0) {
          this.logger.info(
            {
              peer: p.id,
              applied: r.stats.applied,
              sent: r.stats.blocksSent,
              pruned: r.stats.pruned,
              marks: r.stats.marks,
              rejected: r.stats.rejected.map((f) => f.code),
            },
            `synced with ${p.id}`,
          );
        }
      } catch (err) {
        this.states.failed(p.id, err as Error);
        this.throttle.warn(`sync:${p.id}`, { peer: p.id, err: (err as Error).message }, `cannot sync with ${p.id}`);
      }
    }
  }

  status(): SiblingStatus[] {
    return this.cfg.peers.map((p) => ({ id: p.id, ...this.states.health(p.id) }));
  }

  /** Per sibling, the highest seq of this gateway's own `stream` it holds (-1: not known); peer-state.ts. */
  heldOwn(stream: string): number[] {
    return this.states.heldOwn(stream);
  }

  /** Each sibling's sync state: connection, transport, last exchange, lag, refusals. */
  state(): SiblingState[] {
    const now = Date.now();
    return this.cfg.peers.map((p) => this.states.state(p.id, now));
  }

  private warnClose(err: unknown): void {
    this.logger.warn(
      { err: err instanceof Error ? err.message : String(err) },
      'sync: closing an MQTT connection failed',
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.forgetPeers();
    this.states.close();
    // A session over a broker that restarted can wait out its idle timeout (10 s per sibling):
    // cut it, so a SIGTERM does not wait for it (test/chaos saw stops of over 30 s).
    await this.dialBus?.close().catch((err: unknown) => this.warnClose(err));
    while (this.running !== undefined) await this.running;
    for (const r of this.responders) await r.close();
    for (const b of this.buses) await b.close().catch((err: unknown) => this.warnClose(err));
    await this.server.close();
  }
}
