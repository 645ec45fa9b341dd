/**
 * Embedded MQTT broker (aedes) with ingest in `authorizePublish`.
 *
 * aedes 1.x writes a QoS 1 PUBACK right after `authorizePublish` calls back
 * (lib/handlers/publish.js), so ingest completes there: the callback runs only
 * once the frame is durable. A refusal (callback with an error) makes aedes
 * drop the whole connection, including good frames of the same read, so
 * permanently bad frames (forged, unknown device, replay) are acked, counted
 * and never forwarded; only transient failures (store error, overload) refuse,
 * which makes the device reconnect and resend.
 */
// Before aedes loads mqtt-packet: its disabled debug calls stop building argument arrays.
import './quiet-debug.js';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { Aedes, type Client, type PublishPacket } from 'aedes';
import { parseTopic, SYNC_BROKER_USER_PREFIX, SYNC_TOPIC_ROOT, topics } from '../../protocols/index.js';
import type { IngestPipeline } from '../ingest/pipeline.js';
import type { Logger } from '../logger.js';
import { BrokerAccess, type BrokerAccessOptions, type BrokerIdentity } from './broker-access.js';
import { ConnectionGuard, type GuardLimits, LogThrottle } from './broker-guard.js';

// mqtt-packet (aedes's packet writer) fills a cache of 65 536 two-byte Buffers on its first
// packet, one per message id: about 6 MB of heap held for the life of the process, a seventh
// of an idle gateway's JavaScript heap. Writing the two bytes per packet instead costs one
// small allocation per PUBACK. Resolved from aedes's own directory: the instance aedes uses.
const requireFromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
requireFromAedes('mqtt-packet').writeToStream.cacheNumbers = false;

export interface BrokerListener {
  readonly host: string;
  readonly port: number;
  /** Certificate and key (PEM): a TLS listener. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Clients without credentials are accepted here (default: only when `host` is a loopback address). */
  readonly anonymous?: boolean;
}

export interface BrokerOptions {
  /** The plain listener. */
  readonly host: string;
  readonly port: number;
  /** More listeners (the TLS one). */
  readonly listeners?: readonly BrokerListener[];
  /** Anonymous clients: on loopback listeners only (default), everywhere, or nowhere. */
  readonly anonymous?: 'loopback' | boolean;
  readonly gatewayId: string;
  /** Topic prefixes only the gateway publishes on (e.g. Home Assistant discovery); clients' publishes there are dropped. */
  readonly reservedPrefixes?: readonly string[];
  /**
   * Sibling gateway keys allowed on the sync topics (`outpost/v1/sync/…`): a client logging in as
   * `outpost-sync:{key hex}` with its signature over syncBrokerAuthInput(client id) as password.
   * Other clients may neither publish nor receive there; a bad sync login is refused.
   */
  readonly syncPeers?: readonly Uint8Array[];
  /** Devices (the registry), principals and their permissions, token window (broker-access.ts). */
  readonly access?: Omit<BrokerAccessOptions, 'gatewayId' | 'syncPeers'>;
  /** Topic prefixes principals may read besides frames and gateway topics (the Home Assistant discovery prefix). */
  readonly principalReadable?: readonly string[];
  /** The policy tag of a stored frame (forwarded frames are filtered by it for principals). */
  readonly policyOf?: (f: { device: string; boot: number; seq: number }) => string | undefined;
  /** Flood limits (broker-guard.ts) and the time a socket has to send CONNECT. */
  readonly limits?: GuardLimits & { readonly connectTimeoutMs: number };
}

export interface BrokerEvents {
  /** A device's frame was stored or recognised as a duplicate over this client. */
  onDeviceSeen?(device: string, clientId: string): void;
  onClientGone?(clientId: string): void;
}

const DEFAULT_LIMITS: GuardLimits & { connectTimeoutMs: number } = {
  connectionsPerAddress: 1024,
  pendingPerAddress: 32,
  connectsPerSecond: 200,
  preAuthBytes: 4096,
  connectTimeoutMs: 10_000,
};

/** 127.0.0.0/8, ::1, localhost: a listener there is reachable from this machine only. */
export const isLoopbackHost = (host: string): boolean =>
  host === 'localhost' ||
  host === '::1' ||
  /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ||
  host === '::ffff:127.0.0.1';

/**
 * aedes-persistence's memory store creates an (empty) outgoing queue for every client id that
 * PUBACKs (`outgoingClearMessageId` with CREATE_ON_EMPTY) and never deletes it: each reader
 * with a fresh client id was one entry for the life of the process. Nothing is ever queued for
 * a clean-session client (its subscriptions are not persisted), so there is nothing to clear.
 */
function boundOutgoing(aedes: Aedes): void {
  type Clear = (client: { clean?: boolean }, packet: unknown) => Promise<unknown>;
  const p = (aedes as unknown as { persistence: { outgoingClearMessageId: Clear } }).persistence;
  const clear = p.outgoingClearMessageId.bind(p);
  p.outgoingClearMessageId = (client, packet) => (client.clean ? Promise.resolve(undefined) : clear(client, packet));
}

/**
 * TLS session tickets (RFC 8446 §4.6.1; RFC 5077 for TLS 1.2): a device that kept the ticket of
 * its last connection resumes without the certificate exchange and signature, which is most of
 * a handshake's cost when a whole fleet reconnects at once. A ticket is good for this long after
 * it was issued (a day: a device connected since yesterday that loses the network still resumes).
 */
const TICKET_LIFETIME_S = 86_400;

/**
 * The keys that encrypt tickets live in memory only (never in the data dir: with them, recorded
 * TLS 1.2 resumptions could be decrypted) and are replaced once a ticket lifetime, so a key
 * taken from a running process opens no session older than that. A restart or a replacement
 * makes devices do a full handshake once.
 */
function rotateTicketKeys(server: TlsServer): void {
  const timer = setInterval(() => server.setTicketKeys(randomBytes(48)), TICKET_LIFETIME_S * 1000);
  timer.unref();
  server.once('close', () => clearInterval(timer));
}

const refusal = (code: 2 | 4 | 5, message: string): Error & { returnCode: 2 | 4 | 5 } =>
  Object.assign(new Error(message), { returnCode: code });

export class EmbeddedBroker {
  /** Payload buffers of refused frames: aedes copies the packet but keeps the payload object. */
  private readonly refused = new WeakSet<object>();
  /** Policy tags of forwarded payloads (frames and Home Assistant states), for principals' filtering. */
  private readonly policyTags = new WeakMap<object, string>();
  private constructor(
    readonly aedes: Aedes,
    private readonly servers: readonly Server[],
    readonly opts: BrokerOptions,
    readonly guard: ConnectionGuard,
    readonly access: BrokerAccess,
  ) {}

  /** The plain listener's port. */
  get port(): number {
    return this.portOf(0);
  }

  /** The port of listener `i` (0 = plain, then `listeners` in order). */
  portOf(i: number): number {
    const a = this.servers[i]?.address();
    return typeof a === 'object' && a ? a.port : this.opts.port;
  }

  get clients(): number {
    return this.aedes.connectedClients;
  }

  static async start(
    opts: BrokerOptions,
    ingest: IngestPipeline,
    log: Logger,
    events: BrokerEvents = {},
  ): Promise<EmbeddedBroker> {
    let self: EmbeddedBroker | undefined;
    const access = new BrokerAccess({
      gatewayId: opts.gatewayId,
      tokenWindowMs: 300_000,
      device: () => undefined,
      ...opts.access,
      ...(opts.syncPeers && { syncPeers: opts.syncPeers }),
    });
    access.extraReadable.push(...(opts.principalReadable ?? []).map((p) => `${p.replace(/\/$/, '')}/#`));
    const limits = opts.limits ?? DEFAULT_LIMITS;
    const guard = new ConnectionGuard(limits);
    // Refused CONNECTs come from anyone: their warnings are throttled (suppressed ones are counted).
    const refusalLog = new LogThrottle();
    /** Who each connected client proved to be at CONNECT. */
    const who = new WeakMap<Client, BrokerIdentity>();
    /** Whether a socket came in on a listener that takes anonymous clients. */
    const anonymousOk = new WeakMap<object, boolean>();
    const identity = (c: Client): BrokerIdentity => who.get(c) ?? { kind: 'anonymous' };
    const drop = (packet: PublishPacket): void => {
      packet.retain = false;
      self?.refused.add(packet.payload as object);
    };
    const aedes = await Aedes.createBroker({
      id: opts.gatewayId,
      connectTimeout: limits.connectTimeoutMs,
      preConnect: (client, _packet, done) => {
        const ok = guard.takeConnect(client.conn as Socket);
        if (!ok) log.debug({ address: (client.conn as Socket).remoteAddress }, 'CONNECT over the rate limit refused');
        done(null, ok);
      },
      authenticate: (client, username, password, done) => {
        const r = access.authenticate(client.id, username, password, anonymousOk.get(client.conn) ?? false, (id) => {
          const holder = (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[id];
          return holder ? identity(holder) : undefined;
        });
        if (!r.ok) {
          const sync = username?.startsWith(SYNC_BROKER_USER_PREFIX) ?? false;
          const logged = refusalLog.take();
          if (logged)
            log.warn(
              { client: client.id, user: username, code: r.code, reason: r.reason, ...logged },
              sync ? 'sync login refused: not a sibling gateway' : 'MQTT CONNECT refused',
            );
          return done(refusal(r.code, r.reason), false);
        }
        who.set(client, r.identity);
        guard.authenticated(client.conn as Socket);
        done(null, true);
      },
      authorizeSubscribe: (client, sub, done) => {
        if (!client || access.maySubscribe(identity(client), sub.topic)) return done(null, sub);
        log.warn({ client: client.id, topic: sub.topic }, 'subscription refused');
        done(null, null); // SUBACK 0x80 for this filter (MQTT 3.1.1 §3.9.3)
      },
      authorizePublish: (client, packet, cb) => {
        if (!client) return cb(null); // the gateway's own publishes
        const id = identity(client);
        if (!access.mayPublish(id, packet.topic)) {
          log.warn(
            { client: client.id, topic: packet.topic, as: id.kind },
            "publish outside the client's topics dropped",
          );
          drop(packet);
          return cb(null);
        }
        if (packet.topic.startsWith(SYNC_TOPIC_ROOT)) {
          if (id.kind === 'sibling') return cb(null);
          log.warn(
            { client: client.id, topic: packet.topic },
            'publish to a sync topic by a client that is not a sibling dropped',
          );
          drop(packet);
          return cb(null);
        }
        const t = parseTopic(packet.topic);
        if (t?.kind === 'up') {
          packet.retain = false; // frames are never retained
          const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
          ingest.submit(payload, { transport: 'mqtt', claimedDevice: t.device, source: client.id }).then(
            (o) => {
              if (o.status === 'failed') return cb(new Error(`frame not ingested: ${o.reason}`));
              if (o.status === 'rejected') self?.refused.add(packet.payload as object);
              else {
                const policy = opts.policyOf?.(o);
                if (policy !== undefined) self?.policyTags.set(packet.payload as object, policy);
                // Ingest is asynchronous: a client gone meanwhile (its clientDisconnect already
                // told) must not be recorded as the device's connection again, never to be cleared.
                if (client.connected) events.onDeviceSeen?.(o.device, client.id);
              }
              cb(null);
            },
            (err: Error) => cb(err),
          );
          return;
        }
        const reserved = opts.reservedPrefixes?.some((p) => packet.topic.startsWith(p)) ?? false;
        if (t?.kind === 'cmd' || t?.kind === 'fw-down' || t?.kind === 'gateway-status' || reserved) {
          // Only the gateway speaks on these topics; drop, do not disconnect.
          log.warn({ client: client.id, topic: packet.topic }, 'publish to a gateway-owned topic dropped');
          drop(packet);
          return cb(null);
        }
        cb(null);
      },
      authorizeForward: (client, packet) => {
        if (self?.refused.has(packet.payload as object)) return null;
        if (!client) return packet;
        const policy = self?.policyTags.get(packet.payload as object);
        return access.mayReceive(identity(client), packet.topic, policy) ? packet : null;
      },
    });
    boundOutgoing(aedes);
    aedes.on('clientDisconnect', (c: Client) => events.onClientGone?.(c.id));
    aedes.on('clientError', (c: Client, err: Error) =>
      log.debug({ client: c.id, err: err.message }, 'mqtt client error'),
    );
    const all: BrokerListener[] = [{ host: opts.host, port: opts.port }, ...(opts.listeners ?? [])];
    const servers: Server[] = [];
    try {
      for (const l of all) {
        const anon =
          l.anonymous ??
          (opts.anonymous === 'loopback' || opts.anonymous === undefined ? isLoopbackHost(l.host) : opts.anonymous);
        // Counted from the TCP accept (for TLS: before the handshake costs anything; handshakes time out too).
        const onSocket = (socket: Socket): void => {
          if (!l.tls && !guard.admit(socket)) return;
          guard.watch(socket);
          // No Nagle: a small publish (a firmware report, an ack) must not wait for a delayed ACK.
          socket.setNoDelay(true);
          anonymousOk.set(socket, anon);
          aedes.handle(socket);
        };
        const server = l.tls
          ? createTlsServer(
              {
                cert: l.tls.cert,
                key: l.tls.key,
                minVersion: 'TLSv1.2',
                handshakeTimeout: limits.connectTimeoutMs,
                sessionTimeout: TICKET_LIFETIME_S,
              },
              onSocket,
            )
          : createServer(onSocket);
        if (l.tls) rotateTicketKeys(server as TlsServer);
        if (l.tls) server.on('connection', (raw: Socket) => guard.admit(raw));
        if (l.tls) server.on('tlsClientError', (err: Error) => log.debug({ err: err.message }, 'TLS handshake failed'));
        servers.push(server);
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(l.port, l.host, () => {
            server.off('error', reject);
            resolve();
          });
        });
        if (!anon && !l.tls && !isLoopbackHost(l.host))
          log.warn(
            { host: l.host },
            'plain MQTT beyond loopback: credentials are required, but readings cross the network in clear (use mqtt.tls)',
          );
      }
    } catch (err) {
      for (const s of servers) s.close();
      await new Promise<void>((resolve) => aedes.close(() => resolve())); // its timers would keep the process alive
      throw err;
    }
    self = new EmbeddedBroker(aedes, servers, opts, guard, access);
    await self.publishStatus('online');
    for (const [i, l] of all.entries())
      log.info(
        { host: l.host, port: self.portOf(i), tls: l.tls !== undefined },
        `MQTT broker listening on ${l.tls ? 'mqtts' : 'mqtt'}://${l.host}:${self.portOf(i)}`,
      );
    return self;
  }

  /** Publishes as the gateway; `policy` tags the payload, so principals receive it only if they may read that policy. */
  publish(
    topic: string,
    payload: Uint8Array | string,
    opts: { qos?: 0 | 1; retain?: boolean; policy?: string } = {},
  ): Promise<void> {
    const packet: PublishPacket = {
      cmd: 'publish',
      topic,
      payload:
        typeof payload === 'string'
          ? Buffer.from(payload)
          : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
      qos: opts.qos ?? 1,
      retain: opts.retain ?? false,
      dup: false,
    };
    if (opts.policy !== undefined) this.policyTags.set(packet.payload as Buffer, opts.policy);
    return new Promise((resolve, reject) => this.aedes.publish(packet, (err) => (err ? reject(err) : resolve())));
  }

  /** Retained gateway status (DESIGN.md: `outpost/v1/gw/{gateway}/status`). */
  publishStatus(state: 'online' | 'offline'): Promise<void> {
    return this.publish(
      topics.gatewayStatus(this.opts.gatewayId),
      JSON.stringify({ state, at: new Date().toISOString() }),
      { retain: true },
    );
  }

  async close(): Promise<void> {
    // Best effort while shutting down: a broker that cannot publish any more is closed next anyway.
    await this.publishStatus('offline').catch(() => {});
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
