/**
 * MQTT uplink for one virtual device, as a real device would run it: its own
 * client (clientId = device id, clean session), frames published QoS 1 to
 * `topics.up(id)`, and a frame leaves the device's unacked buffer only when
 * the broker's PUBACK arrives (DESIGN: PUBACK means durable at the gateway).
 *
 * The device buffer, not mqtt.js, is the source of truth: on every (re)connect
 * the link resends all pending frames, oldest first, before any new one. Frames
 * go out through mqtt-qos1.ts (whole packets, PUBACKs matched there), outside
 * mqtt.js's outgoing store, which would otherwise replay its own copies on
 * reconnect (even with a clean session) and grow without bound while offline;
 * what does pass through it (publishRaw) is forgotten on every close.
 */
import { TLSSocket } from 'node:tls';
import { type IClientOptions, type MqttClient, Store } from 'mqtt';
import { topics } from '../../protocols/index.js';
import type { DeviceFrame, VirtualDevice } from '../device.js';
import { connectQos1, encodeTopic, type Qos1Publisher } from './mqtt-qos1.js';
import { countAttempt, IdleWaiters } from './uplink-buffer.js';

const DEFAULT_RECONNECT_MS = 250;

/** mqtt.js hands its options to tls.connect, whose `session` its types leave out. */
type TlsResumable = IClientOptions & { session?: Buffer };

const noLog = (): void => {};
export interface MqttLinkOptions {
  /** e.g. mqtt://127.0.0.1:1883 */
  readonly brokerUrl: string;
  readonly reconnectPeriodMs?: number;
  readonly connectTimeoutMs?: number;
  readonly keepaliveSec?: number;
  /** Raw payloads received on `topics.cmd(id)` (command handling is the caller's). */
  readonly onCommand?: (payload: Uint8Array, device: VirtualDevice) => void;
  /** Client errors (refused CONNACK, socket errors); the link keeps retrying regardless. */
  readonly onError?: (error: Error, device: VirtualDevice) => void;
  /** Extra mqtt.js options (TLS: `ca`); the ones above win. */
  readonly clientOptions?: IClientOptions;
  /**
   * Authenticate at CONNECT to this gateway: username = device id, password = a fresh connect
   * token signed by the device (a new one for every connect and reconnect).
   */
  readonly gatewayId?: string;
}

export interface LinkStats {
  /** Frames published for the first time. */
  sent: number;
  /** Repeat publishes of frames that were not acked on an earlier connection. */
  resent: number;
  /** PUBACKs that removed a frame from the device buffer. */
  acked: number;
  /** Publishes that completed with an error (connection lost, negative ack). */
  failed: number;
  connects: number;
  /** Connects over TLS that resumed the previous connection's session (no full handshake). */
  resumed: number;
  disconnects: number;
  errors: number;
}

const toBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

export class MqttDeviceLink {
  readonly stats: LinkStats = {
    sent: 0,
    resent: 0,
    acked: 0,
    failed: 0,
    connects: 0,
    resumed: 0,
    disconnects: 0,
    errors: 0,
  };
  lastError: Error | undefined;

  private client: MqttClient | undefined;
  private publisher: Qos1Publisher | undefined;
  private online = false;
  private stopped = false;
  /**
   * Frames published on this connection and not acked yet (each one object from the device's
   * buffer), the first `inflightCount` entries, in no order. An array kept at its size, not a
   * Set: a device has one or two in flight, and a Set reallocated its table as it went from one
   * to none and back, once a frame (the table then lived a sample period: promoted, GC work).
   */
  private readonly inflight: (DeviceFrame | undefined)[] = [];
  private inflightCount = 0;
  /** One PUBACK handler for every publish, the frame its token (no closure per frame). */
  private readonly onAck = (err: Error | undefined, frame: DeviceFrame): void => {
    // A frame failed by a close is already out (the close forgot them all).
    this.forget(frame);
    if (err) this.stats.failed++;
    else if (this.device.ack(frame.boot, frame.seq)) this.stats.acked++;
    if (this.inflightCount === 0) this.idle.wake();
  };
  private readonly idle = new IdleWaiters();
  private readonly upTopic: string;
  private readonly upTopicBytes: Buffer;
  private readonly cmdTopic: string;

  constructor(
    readonly device: VirtualDevice,
    private readonly opts: MqttLinkOptions,
  ) {
    this.upTopic = topics.up(device.id);
    this.upTopicBytes = encodeTopic(this.upTopic);
    this.cmdTopic = topics.cmd(device.id);
  }

  /** Connected, subscribed and done resending what was pending. */
  get connected(): boolean {
    return this.online;
  }
  get inFlight(): number {
    return this.inflightCount;
  }

  start(): void {
    if (this.client) return;
    this.stopped = false;
    const gatewayId = this.opts.gatewayId;
    const { client, publisher } = connectQos1(this.opts.brokerUrl, {
      // mqtt.js logs every packet through `debug` (a call and its arguments per publish and ack
      // even when off): ~2 % of a fleet's CPU. Given a logger, it calls that instead.
      log: noLog,
      ...this.opts.clientOptions,
      ...(gatewayId !== undefined && { username: this.device.id, password: this.device.connectToken(gatewayId) }),
      clientId: this.device.id,
      clean: true,
      reconnectPeriod: this.opts.reconnectPeriodMs ?? DEFAULT_RECONNECT_MS,
      connectTimeout: this.opts.connectTimeoutMs ?? 5000,
      keepalive: this.opts.keepaliveSec ?? 30,
      // A device refused at CONNACK (e.g. the gateway not ready) keeps trying.
      reconnectOnConnackError: true,
      resubscribe: false,
      queueQoSZero: false,
    });
    this.client = client;
    this.publisher = publisher;
    // mqtt.js builds each CONNECT from client.options: a token is good once, so every attempt signs a new one.
    if (gatewayId !== undefined)
      client.on('reconnect', () => (client.options.password = this.device.connectToken(gatewayId)));
    // Over TLS, a device keeps the session ticket of its last connection and offers it on the
    // next (resumption, RFC 8446 §2.2; mbedTLS: mbedtls_ssl_get_session / set_session), so a
    // reconnect skips the certificate check and the gateway its signature. mqtt.js dials every
    // attempt with client.options; the first stream exists already (mqtt.connect dialled it),
    // each later one is watched as its CONNECT is written, before its handshake can finish.
    const keepTicket = (): void => {
      const stream = client.stream;
      if (stream instanceof TLSSocket)
        stream.on('session', (ticket: Buffer) => ((client.options as TlsResumable).session = ticket));
    };
    keepTicket();
    client.on('packetsend', (p) => p.cmd === 'connect' && keepTicket());
    client.on('connect', () => this.onConnect(client));
    client.on('close', () => this.onClose(client));
    client.on('error', (e) => {
      this.stats.errors++;
      this.lastError = e;
      this.safe(() => this.opts.onError?.(e, this.device));
    });
    client.on('message', (topic, payload) => {
      if (topic === this.cmdTopic) this.safe(() => this.opts.onCommand?.(new Uint8Array(payload), this.device));
    });
  }

  /** Hands a new frame to the network; offline, it simply stays pending for the next connect. */
  send(frame: DeviceFrame): void {
    if (this.online && !this.stopped) this.publish(frame);
  }

  /** Publishes arbitrary bytes (fault injection); resolves on PUBACK. Not tracked by the device. */
  publishRaw(bytes: Uint8Array, topic: string = this.upTopic): Promise<void> {
    const client = this.client;
    if (!client || !this.online) return Promise.reject(new Error(`${this.device.id}: not connected`));
    return new Promise((resolve, reject) => {
      client.publish(topic, toBuffer(bytes), { qos: 1 }, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Cuts the TCP connection as a network fault would; mqtt.js reconnects after the reconnect period. */
  dropConnection(): void {
    this.client?.stream?.destroy();
  }

  /** An offline burst: closes the connection, stays away `ms`, then reconnects and resends the backlog. */
  async offlineFor(ms: number): Promise<void> {
    const client = this.client;
    if (!client) return;
    await new Promise<void>((resolve) => client.end(true, () => resolve()));
    await new Promise((r) => setTimeout(r, ms));
    if (this.client === client && !this.stopped) {
      if (this.opts.gatewayId !== undefined) client.options.password = this.device.connectToken(this.opts.gatewayId);
      client.reconnect();
    }
  }

  /** Resolves true once nothing is in flight, false if `timeoutMs` passes first. */
  drain(timeoutMs: number): Promise<boolean> {
    return this.idle.wait(this.inflightCount === 0, timeoutMs);
  }

  /** Waits for in-flight publishes (up to `timeoutMs`), then closes the client. Unsent frames stay pending. */
  async stop(timeoutMs = 2000): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.stopped = true;
    const start = Date.now();
    if (this.online) await this.drain(timeoutMs);
    const left = Math.max(100, timeoutMs - (Date.now() - start));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => client.end(true, () => resolve()), left);
      client.end(!this.online, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.client = undefined;
    this.publisher = undefined;
    this.online = false;
  }

  private onConnect(client: MqttClient): void {
    if (client !== this.client) return;
    this.forgetAll();
    this.stats.connects++;
    if (client.stream instanceof TLSSocket && client.stream.isSessionReused()) this.stats.resumed++;
    client.subscribe(this.cmdTopic, { qos: 1 }, (err) => {
      if (err) {
        this.stats.errors++;
        this.lastError = err;
      }
    });
    this.online = true;
    if (this.stopped) return;
    this.publisher?.corked(() => {
      // Nothing is in flight on a new connection: no need to look each one up.
      for (const frame of this.device.pending()) this.publish(frame, false);
    });
  }

  private onClose(client: MqttClient): void {
    if (this.online) this.stats.disconnects++;
    this.online = false;
    this.forgetAll();
    // Forget mqtt.js's copies of unacked publishes: the device resends from its own buffer.
    for (const [id, entry] of Object.entries(client.outgoing)) {
      if (entry.cmd === 'publish') this.safe(() => client.removeOutgoingMessage(Number(id)));
    }
    client.outgoingStore = new Store();
    this.idle.wake();
  }

  private publish(frame: DeviceFrame, check = true): void {
    const publisher = this.publisher;
    if (!publisher || (check && this.indexInFlight(frame) >= 0)) return;
    this.inflight[this.inflightCount++] = frame;
    countAttempt(frame, this.stats);
    publisher.publish(this.upTopicBytes, frame.bytes, this.onAck, frame);
  }

  private indexInFlight(frame: DeviceFrame): number {
    for (let i = 0; i < this.inflightCount; i++) if (this.inflight[i] === frame) return i;
    return -1;
  }

  private forget(frame: DeviceFrame): void {
    const i = this.indexInFlight(frame);
    if (i < 0) return;
    const last = --this.inflightCount;
    this.inflight[i] = this.inflight[last];
    this.inflight[last] = undefined;
  }

  private forgetAll(): void {
    this.inflight.fill(undefined, 0, this.inflightCount);
    this.inflightCount = 0;
  }

  private safe(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.stats.errors++;
      this.lastError = e instanceof Error ? e : new Error(String(e));
    }
  }
}
