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
import { createServer, type Server } from 'node:net';
import { Aedes, type Client, type PublishPacket } from 'aedes';
import {
  parsePublicKey,
  parseTopic,
  SYNC_BROKER_USER_PREFIX,
  SYNC_TOPIC_ROOT,
  syncBrokerAuthInput,
  toHex,
  topics,
} from '../../protocols/index.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import type { IngestPipeline } from '../ingest/pipeline.js';
import type { Logger } from '../logger.js';

export interface BrokerOptions {
  readonly host: string;
  readonly port: number;
  readonly gatewayId: string;
  /** Topic prefixes only the gateway publishes on (e.g. Home Assistant discovery); clients' publishes there are dropped. */
  readonly reservedPrefixes?: readonly string[];
  /**
   * Sibling gateway keys allowed on the sync topics (`outpost/v1/sync/…`): a client logging in as
   * `outpost-sync:{key hex}` with its signature over syncBrokerAuthInput(client id) as password.
   * Other clients may neither publish nor receive there; a bad sync login is refused.
   */
  readonly syncPeers?: readonly Uint8Array[];
}

export interface BrokerEvents {
  /** A device's frame was stored or recognised as a duplicate over this client. */
  onDeviceSeen?(device: string, clientId: string): void;
  onClientGone?(clientId: string): void;
}

export class EmbeddedBroker {
  /** Payload buffers of refused frames: aedes copies the packet but keeps the payload object. */
  private readonly refused = new WeakSet<object>();
  private constructor(
    readonly aedes: Aedes,
    private readonly server: Server,
    readonly opts: BrokerOptions,
  ) {}

  get port(): number {
    const a = this.server.address();
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
    const syncKeys = new Set((opts.syncPeers ?? []).map(toHex));
    /** Clients that proved a sibling gateway key at CONNECT. */
    const siblings = new WeakSet<Client>();
    const aedes = await Aedes.createBroker({
      id: opts.gatewayId,
      authenticate: (client, username, password, done) => {
        if (!username?.startsWith(SYNC_BROKER_USER_PREFIX)) return done(null, true); // devices: as before
        const key = parsePublicKey(username.slice(SYNC_BROKER_USER_PREFIX.length));
        if (
          key.ok &&
          syncKeys.has(toHex(key.value)) &&
          password?.length === 64 &&
          verifyEd25519(key.value, syncBrokerAuthInput(client.id), password)
        ) {
          siblings.add(client);
          return done(null, true);
        }
        log.warn({ client: client.id, user: username }, 'sync login refused: not a sibling gateway');
        const err = Object.assign(new Error('not a sibling gateway'), { returnCode: 5 as const });
        done(err, false);
      },
      authorizePublish: (client, packet, cb) => {
        if (!client) return cb(null); // the gateway's own publishes
        if (packet.topic.startsWith(SYNC_TOPIC_ROOT)) {
          if (siblings.has(client)) return cb(null);
          log.warn(
            { client: client.id, topic: packet.topic },
            'publish to a sync topic by a client that is not a sibling dropped',
          );
          packet.retain = false;
          self?.refused.add(packet.payload as object);
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
              else events.onDeviceSeen?.(o.device, client.id);
              cb(null);
            },
            (err: Error) => cb(err),
          );
          return;
        }
        const reserved = opts.reservedPrefixes?.some((p) => packet.topic.startsWith(p)) ?? false;
        if (t?.kind === 'cmd' || t?.kind === 'gateway-status' || reserved) {
          // Only the gateway speaks on these topics; drop, do not disconnect.
          log.warn({ client: client.id, topic: packet.topic }, 'publish to a gateway-owned topic dropped');
          packet.retain = false;
          self?.refused.add(packet.payload as object);
          return cb(null);
        }
        cb(null);
      },
      authorizeForward: (client, packet) => {
        if (self?.refused.has(packet.payload as object)) return null;
        // Sync messages only reach siblings, whatever wildcard another client subscribed.
        if (packet.topic.startsWith(SYNC_TOPIC_ROOT) && client && !siblings.has(client)) return null;
        return packet;
      },
    });
    aedes.on('clientDisconnect', (c: Client) => events.onClientGone?.(c.id));
    aedes.on('clientError', (c: Client, err: Error) =>
      log.debug({ client: c.id, err: err.message }, 'mqtt client error'),
    );
    const server = createServer(aedes.handle);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port, opts.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await new Promise<void>((resolve) => aedes.close(() => resolve())); // its timers would keep the process alive
      throw err;
    }
    self = new EmbeddedBroker(aedes, server, opts);
    await self.publishStatus('online');
    log.info({ host: opts.host, port: self.port }, `MQTT broker listening on ${opts.host}:${self.port}`);
    return self;
  }

  publish(topic: string, payload: Uint8Array | string, opts: { qos?: 0 | 1; retain?: boolean } = {}): Promise<void> {
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
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
