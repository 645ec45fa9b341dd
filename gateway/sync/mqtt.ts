/**
 * Sync over MQTT: the same authenticated exchange as the direct TCP link
 * (link.ts), carried one message per MQTT message (QoS 1, which keeps order per
 * topic) on `outpost/v1/sync/{responder key}/{session}/i` and `…/r`
 * (protocols/sync.ts). The responder listens on its key's topics on a broker:
 * in-process on its own embedded aedes (aedesBus), or as a client of any
 * broker such as Mosquitto (clientBus). An initiator picks a fresh session id,
 * subscribes to `…/r`, then speaks; the signed challenge runs end to end, so a
 * broker (or anyone else on it) cannot stand in for a sibling.
 */
import { randomBytes } from 'node:crypto';
import type { IClientOptions, MqttClient } from 'mqtt';
import {
  SYNC_BROKER_USER_PREFIX,
  SYNC_TOPIC_ROOT,
  syncBrokerAuthInput,
  syncTopic,
  toHex,
} from '../../protocols/index.js';
import { type MqttLogin, mqttLoginOptions } from '../outbound.js';
import type { EmbeddedBroker } from '../transports/mqtt-broker.js';
import {
  initiate,
  type LinkIdentity,
  LinkError,
  type LinkOptions,
  type LinkResult,
  MAX_LINK_MESSAGE,
  type MessageLink,
  MessageQueue,
  respond,
  type SyncLinkEvents,
} from './link.js';

/** Publish/subscribe on one broker connection. */
export interface MqttBus {
  publish(topic: string, payload: Uint8Array): Promise<void>;
  /** Subscribes `filter` (exact, or with `+` levels); resolves once the broker has it, with an unsubscribe. */
  subscribe(filter: string, on: (topic: string, payload: Uint8Array) => void): Promise<() => Promise<void>>;
  /** `cb` runs whenever the connection is lost (links on it fail). */
  onDown(cb: () => void): () => void;
  close(): Promise<void>;
}

function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  return f.length === t.length && f.every((x, i) => x === '+' || x === t[i]);
}

/** A bus on the gateway's own embedded aedes, in-process. */
export function aedesBus(broker: EmbeddedBroker): MqttBus {
  return {
    publish: (topic, payload) => broker.publish(topic, payload, { qos: 1 }),
    subscribe: async (filter, on) => {
      const deliver = (packet: { topic: string; payload: Buffer | string }, cb: () => void): void => {
        on(packet.topic, typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload);
        cb();
      };
      await new Promise<void>((resolve) => broker.aedes.subscribe(filter, deliver, resolve));
      return () => new Promise<void>((resolve) => broker.aedes.unsubscribe(filter, deliver, resolve));
    },
    onDown: () => () => {},
    close: async () => {},
  };
}

/** How a bus logs in to a broker: its URL, and the broker's own credentials when configured (sync.brokers). */
export interface BrokerLogin extends MqttLogin {
  readonly password?: string;
}

/** A broker refused this gateway's login, or its TLS failed: a matter of `sync.brokers`, and said so. */
class BrokerError extends Error {
  override readonly name = 'BrokerError';
  constructor(
    readonly code: 'sync/broker-login-refused' | 'sync/broker-tls',
    message: string,
  ) {
    super(message);
  }
}

/** Node's TLS failures (certificate checks, handshake) carry such codes; a refused TCP connect does not. */
const TLS_ERROR = /CERT|SSL|TLS|ALTNAME|SIGNATURE|ISSUER/;

/** The error of a failed connection, naming the broker and, for a refusal or TLS failure, what to check. */
function brokerFailure(login: BrokerLogin, err: Error): Error {
  const code = (err as { code?: unknown }).code;
  // CONNACK 4/5 (MQTT 3.1.1), 134/135 (MQTT 5): bad username or password, not authorised.
  if (typeof code === 'number' && [4, 5, 134, 135].includes(code)) {
    const as =
      login.username === undefined
        ? 'as a sync sibling (no username for this broker in sync.brokers)'
        : `as "${login.username}"`;
    return new BrokerError('sync/broker-login-refused', `${login.url} refused the login ${as}: ${err.message}`);
  }
  if (login.url.startsWith('mqtts:') && typeof code === 'string' && TLS_ERROR.test(code))
    return new BrokerError(
      'sync/broker-tls',
      `${login.url}: TLS failed: ${err.message} (the server certificate must chain to sync.brokers tls.ca, else to the system CAs)`,
    );
  return err;
}

/**
 * A bus as a client of a broker (`mqtt://` or `mqtts://host:port`). Without a username it logs
 * in as a sync sibling (a sibling's embedded broker checks that); with one, with the broker's
 * own credentials (a site Mosquitto's password_file), never falling back to another login.
 * `reconnect`: keep reconnecting and resubscribing (a responder; `onError` hears each new
 * failure once); otherwise one connection (a dialer), whose failure is the rejection.
 */
export async function clientBus(
  broker: string | BrokerLogin,
  identity: LinkIdentity,
  opts: { reconnect?: boolean; connectTimeoutMs?: number; onError?: (err: Error) => void } = {},
): Promise<MqttBus> {
  const login = typeof broker === 'string' ? { url: broker } : broker;
  const url = login.url;
  // mqtt.js is loaded by the first bus through an outside broker: a gateway syncing over its own broker or TCP never holds it.
  const { default: mqtt } = await import('mqtt');
  const clientId = `outpost-sync-${randomBytes(8).toString('hex')}`;
  const options = {
    clientId,
    ...(login.username === undefined
      ? {
          username: `${SYNC_BROKER_USER_PREFIX}${toHex(identity.publicKey)}`,
          password: Buffer.from(identity.sign(syncBrokerAuthInput(clientId))),
        }
      : {}),
    ...mqttLoginOptions(login, login.password),
    reconnectPeriod: opts.reconnect ? 1000 : 0,
    // A responder keeps trying after a refused login too (the broker's password file may be fixed meanwhile).
    reconnectOnConnackError: opts.reconnect === true,
    connectTimeout: opts.connectTimeoutMs ?? 10_000,
    resubscribe: false,
    clean: true,
  };
  const fail = (err: Error): Error => brokerFailure(login, err);
  const subs = new Map<string, Set<(topic: string, payload: Uint8Array) => void>>();
  const downs = new Set<() => void>();
  let client: MqttClient;
  if (opts.reconnect) {
    client = mqtt.connect(url, options);
    // Told once per distinct failure until a connection succeeds (a retry every second would flood the log).
    let told: string | undefined;
    client.on('error', (e) => {
      const err = fail(e);
      if (err.message !== told) opts.onError?.(err);
      told = err.message;
    });
    client.on('connect', () => {
      told = undefined;
    });
    // Give the first connection a moment so subscriptions go out at once; a broker that is down or
    // refuses the login does not hold up the gateway (subscriptions are sent on every connect).
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, opts.connectTimeoutMs ?? 5_000);
      const done = (): void => {
        clearTimeout(t);
        client.off('connect', done).off('error', done);
        resolve();
      };
      client.once('connect', done).once('error', done);
    });
  } else client = await connectOnce(mqtt.connect, url, options, fail);
  client.on('message', (topic, payload) => {
    for (const [f, hs] of subs) if (matches(f, topic)) for (const h of hs) h(topic, payload);
  });
  client.on('close', () => {
    for (const d of downs) d();
  });
  client.on('connect', () => {
    // Clean sessions: subscribe again after every (re)connect.
    for (const f of subs.keys()) client.subscribe(f, { qos: 1 });
  });
  return {
    publish: async (topic, payload) => {
      await client.publishAsync(topic, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), { qos: 1 });
    },
    subscribe: async (filter, on) => {
      let hs = subs.get(filter);
      if (!hs) subs.set(filter, (hs = new Set()));
      hs.add(on);
      if (client.connected) {
        const granted = await client.subscribeAsync(filter, { qos: 1 });
        if (granted.some((g) => g.qos === 128))
          throw new LinkError('refused', `broker refused the subscription to ${filter}`);
      }
      return async () => {
        hs.delete(on);
        if (hs.size === 0) {
          subs.delete(filter);
          // A failed unsubscribe means the connection is going: the broker drops its subscriptions with it.
          if (client.connected) await client.unsubscribeAsync(filter).catch(() => {});
        }
      };
    },
    onDown: (cb) => {
      downs.add(cb);
      return () => downs.delete(cb);
    },
    // Forced: a graceful end() waits for every unacked QoS 1 publish, forever when a restarted broker
    // lost them (test/chaos: a gateway that never stopped on SIGTERM). Nothing is lost by not
    // waiting: a session's publishes are acked before it ends (TopicLink.end), and a cut exchange is redone.
    close: () => new Promise<void>((resolve) => client.end(true, () => resolve())),
  };
}

const MAX_INFLIGHT_PUBLISHES = 32;

/** A MessageQueue that also tells when it failed: nothing waits on a dead link's publishes. */
class LinkQueue extends MessageQueue {
  private onFail!: () => void;
  readonly dead = new Promise<void>((r) => (this.onFail = r));

  override fail(e: LinkError): void {
    super.fail(e);
    this.onFail();
  }
}

/** One session's messages: received ones queued, sent ones published in order. */
class TopicLink implements MessageLink {
  readonly queue = new LinkQueue();
  private sending: Promise<void> = Promise.resolve();
  private inflight = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly bus: MqttBus,
    private readonly out: string,
    private readonly idleMs: number,
    private readonly cleanup: () => void,
  ) {
    this.touch();
  }

  private touch(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.queue.fail(new LinkError('timeout', 'link idle too long')), this.idleMs);
    this.timer.unref();
  }

  receive(msg: Uint8Array): void {
    if (msg.length > MAX_LINK_MESSAGE)
      return this.queue.fail(new LinkError('too-large', `message of ${msg.length} bytes`));
    this.touch();
    this.queue.push(msg);
  }

  next(): Promise<Uint8Array> {
    return this.queue.next();
  }

  send(msg: Uint8Array): void | Promise<void> {
    const copy = new Uint8Array(msg);
    this.inflight++;
    this.sending = this.sending
      // A publish made while the broker is gone stays pending in mqtt.js until the client ends,
      // which the dialer does only after the session: stop waiting once the link is dead.
      .then(() => Promise.race([this.bus.publish(this.out, copy), this.queue.dead]))
      .catch((err: Error) => this.queue.fail(new LinkError('closed', err.message)))
      .finally(() => this.inflight--);
    // Publishes are acknowledged one by one (QoS 1): past a few in flight, the sender waits.
    if (this.inflight > MAX_INFLIGHT_PUBLISHES) return this.sending;
  }

  async end(): Promise<void> {
    await Promise.race([this.sending, this.queue.dead]);
    clearTimeout(this.timer);
    this.queue.fail(new LinkError('closed', 'link closed'));
    this.cleanup();
  }
}

/**
 * One connection attempt that always settles: mqtt.connectAsync never does when the server
 * closes the TCP connection before CONNACK (a broker restarting, a proxy without its
 * backend), which hung a gateway's sync rounds and its start-up restore for good (test/chaos).
 */
function connectOnce(
  connect: (url: string, options: IClientOptions) => MqttClient,
  url: string,
  options: IClientOptions & { connectTimeout: number },
  fail: (err: Error) => Error,
): Promise<MqttClient> {
  const client = connect(url, { ...options, reconnectPeriod: 0 });
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      clearTimeout(timer);
      client.off('connect', onConnect).off('error', done).off('close', onClose);
      // After connecting, an error also ends in 'close', which the bus reports to its links.
      if (!err) return resolve(client.on('error', () => undefined));
      client.end(true);
      reject(fail(err));
    };
    const onConnect = (): void => done();
    const onClose = (): void => done(new LinkError('closed', `${url} closed the connection before CONNACK`));
    const timer = setTimeout(
      () => done(new LinkError('timeout', `no CONNACK from ${url} in ${options.connectTimeout} ms`)),
      options.connectTimeout,
    );
    client.on('connect', onConnect).on('error', done).on('close', onClose);
  });
}

/** Dials the sibling with key `peer` through a broker and runs one exchange as the initiator. */
export async function syncOverMqtt(
  bus: MqttBus,
  peer: Uint8Array,
  opts: LinkOptions & { probe?: boolean },
): Promise<LinkResult> {
  const responder = toHex(peer);
  const session = randomBytes(8).toString('hex');
  let unsubscribe: (() => Promise<void>) | undefined;
  let offDown: (() => void) | undefined;
  const link = new TopicLink(bus, syncTopic(responder, session, 'i'), opts.idleTimeoutMs ?? 30_000, () => {
    offDown?.();
    void unsubscribe?.();
  });
  offDown = bus.onDown(() => link.queue.fail(new LinkError('closed', 'broker connection lost')));
  unsubscribe = await bus.subscribe(syncTopic(responder, session, 'r'), (_t, p) => link.receive(p));
  return initiate(link, { ...opts, peers: [peer] });
}

/** Answers sync sessions addressed to this gateway's key on one broker. */
export class MqttSyncResponder {
  private readonly links = new Map<string, TopicLink>();
  /** Recently finished sessions, so a late message does not open a new one. */
  private readonly done = new Set<string>();
  private unsubscribe?: () => Promise<void>;
  private offDown?: () => void;

  private constructor(
    private readonly bus: MqttBus,
    private readonly opts: LinkOptions & SyncLinkEvents & { maxSessions?: number },
  ) {}

  static async start(
    bus: MqttBus,
    opts: LinkOptions & SyncLinkEvents & { maxSessions?: number },
  ): Promise<MqttSyncResponder> {
    const r = new MqttSyncResponder(bus, opts);
    const me = toHex(opts.identity.publicKey);
    r.offDown = bus.onDown(() => {
      for (const l of r.links.values()) l.queue.fail(new LinkError('closed', 'broker connection lost'));
    });
    r.unsubscribe = await bus.subscribe(syncTopic(me, '+', 'i'), (topic, payload) => r.onMessage(me, topic, payload));
    return r;
  }

  private onMessage(me: string, topic: string, payload: Uint8Array): void {
    const session = topic.slice(SYNC_TOPIC_ROOT.length + me.length + 1, -2);
    if (!/^[0-9a-f]{1,64}$/.test(session) || this.done.has(session)) return;
    let link = this.links.get(session);
    if (!link) {
      if (this.links.size >= (this.opts.maxSessions ?? 16)) return; // busy: the initiator times out and retries
      const l = new TopicLink(this.bus, syncTopic(me, session, 'r'), this.opts.idleTimeoutMs ?? 30_000, () => {
        this.links.delete(session);
        this.done.add(session);
        if (this.done.size > 1024) this.done.delete(this.done.values().next().value!);
      });
      this.links.set(session, l);
      link = l;
      void respond(l, this.opts, () => void l.end()).then(() => l.end());
    }
    link.receive(payload);
  }

  async close(): Promise<void> {
    this.offDown?.();
    for (const l of this.links.values()) l.queue.fail(new LinkError('closed', 'responder closed'));
    // The broker may already be closed (gateway shutdown): do not wait on it for long, and an
    // unsubscribe that fails there has nothing left to undo.
    await Promise.race([this.unsubscribe?.().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
}
