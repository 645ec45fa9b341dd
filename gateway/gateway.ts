/**
 * The gateway process: store, registry, verify pool, ingest and transports,
 * wired together and stopped in reverse order.
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { startRules, type RulesHandle } from '../rules/start.js';
import { DeviceActivity } from './activity.js';
import { type ActuationSettings, GatewayActuation } from './actuation/start.js';
import { ApiServer } from './api/server.js';
import type { GatewayConfig } from './config.js';
import { HomeAssistantDiscovery } from './homeassistant.js';
import { GatewayIdentity } from './identity.js';
import { IngestPipeline } from './ingest/pipeline.js';
import { receiveClock } from './clock-offset.js';
import { BlockLog } from './log/block-log.js';
import { RetentionTimer, retentionResolver } from './log/retention.js';
import { type AuthorNames, authorNames } from './log/authors.js';
import type { FrameReader } from './log/frames-index.js';
import { Siblings, siblingKeys } from './sync/siblings.js';
import { loadPolicySet, PolicyRuntime } from './policy/runtime.js';
import { KeyRing } from './policy/keyring.js';
import { VerifyPool } from './ingest/verify-pool.js';
import type { Logger } from './logger.js';
import { loadProfiles } from './profiles.js';
import { Registry } from './registry.js';
import { logRuleVersions } from './rule-versions.js';
import { Simulation } from './simulation.js';
import { FreeSpaceGuard } from './store/free-space.js';
import { Store } from './store/store.js';
import { EmbeddedBroker } from './transports/mqtt-broker.js';
import { BleTransport } from './transports/ble.js';
import { SerialTransport } from './transports/serial.js';

export interface GatewayOptions {
  readonly logger: Logger;
  /** Start the demo fleet when no device is configured (default: as the config says). */
  readonly simulate?: boolean;
  /** Actuation timings (lease, retry); tests shorten them. */
  readonly actuation?: ActuationSettings;
}

export class Gateway {
  broker?: EmbeddedBroker;
  serial?: SerialTransport;
  ble?: BleTransport;
  simulation?: Simulation;
  api?: ApiServer;
  homeAssistant?: HomeAssistantDiscovery;
  /** The signed block log (every stored frame is also in a frames block). */
  blockLog?: BlockLog;
  /** Policies: permissions, grant state, tagging, sync filter (gateway/policy). */
  policies?: PolicyRuntime;
  /** Data keys of confidential policies (gateway/policy/keyring.ts). */
  keyRing?: KeyRing;
  /** Sync with sibling gateways (config `sync`). */
  siblings?: Siblings;
  /** Signed commands, acks, leases and the audit (always on; rules feed it). */
  actuation?: GatewayActuation;
  /** The live rules engine (config `rules.files`). */
  rules?: RulesHandle;
  private statusTimer?: NodeJS.Timeout;
  /** Logs revocations and retention marks of this gateway's streams (gateway/log/retention.ts). */
  retention?: RetentionTimer;
  /** Free-space guard of the data directory (ingest.minFreeBytes). */
  space?: FreeSpaceGuard;
  private lastStored = 0;
  /** Gateway ids of block authors (a frame's `heardBy`). */
  authors!: AuthorNames;

  /** Every frame this gateway holds, whichever gateway heard it, once (gateway/log/frames-index.ts). */
  get frames(): FrameReader {
    return this.blockLog!.frames;
  }

  private constructor(
    readonly config: GatewayConfig,
    readonly store: Store,
    readonly registry: Registry,
    readonly pool: VerifyPool,
    readonly ingest: IngestPipeline,
    readonly activity: DeviceActivity,
    readonly identity: GatewayIdentity,
    private readonly log: Logger,
  ) {}

  static async start(config: GatewayConfig, opts: GatewayOptions): Promise<Gateway> {
    const log = opts.logger;
    const dataDir = resolve(config.gateway.dataDir);
    const identity = GatewayIdentity.loadOrCreate(config.gateway.id, dataDir);
    // A policy file that does not load stops the start here, before anything is opened.
    const policySet = loadPolicySet(config, identity.publicKey);
    const store = Store.open(dataDir);
    // Refuse writes before the disk is full: lmdb-js may abort natively after an ENOSPC commit.
    const space = new FreeSpaceGuard(dataDir, { minFreeBytes: config.ingest.minFreeBytes, log });
    const registry = new Registry(store);
    for (const d of config.devices) await registry.enroll(d);
    const workers = config.ingest.verifyWorkers === 'auto' ? availableParallelism() : config.ingest.verifyWorkers;
    const pool = new VerifyPool(workers);
    const siblingAuthors = siblingKeys(config.sync);
    // Confidential policies: sealed at authoring, opened where this gateway holds a key (readers come from the permissions).
    const keyRing = new KeyRing({
      me: { publicKey: identity.publicKey, x25519Secret: identity.x25519Secret },
      durable: () => store.durable(),
    });
    // Retention: config per stream, else the stream's policy, else the config default (set once policies load).
    let retentionOf: (stream: string) => number | undefined = () => undefined;
    const blockLog = new BlockLog(store, {
      publicKey: identity.publicKey,
      sign: identity.sign,
      knownAuthors: siblingAuthors,
      crypto: keyRing,
      retentionFor: (s) => retentionOf(s),
      withheldParentsOk: config.policy.file !== undefined,
    });
    // A data directory of an earlier release is brought up to date before anything writes.
    await blockLog.upgrade(log);
    const policies = new PolicyRuntime(policySet, config, blockLog, dataDir, log);
    retentionOf = retentionResolver(config.log.retention, policies.retentionFor);
    keyRing.attach(policies.permissions);
    const ingest = new IngestPipeline(
      store,
      registry,
      pool,
      log,
      { ...config.ingest, now: receiveClock(), policyOf: (f) => policies.tagger.tag(f), space },
      blockLog,
    );
    const activity = new DeviceActivity(config.status.onlineTimeoutSeconds * 1000);
    const gw = new Gateway(config, store, registry, pool, ingest, activity, identity, log);
    gw.blockLog = blockLog;
    gw.authors = authorNames({ id: config.gateway.id, publicKey: identity.publicKey }, config.sync.peers);
    gw.policies = policies;
    gw.keyRing = keyRing;
    gw.space = space;
    policies.inbox.space = space;
    log.info(
      {
        gateway: config.gateway.id,
        did: identity.did,
        dataDir,
        frames: blockLog.frames.count(),
        devices: registry.activeCount(),
        verifyWorkers: workers,
      },
      `gateway ${config.gateway.id} starting`,
    );
    try {
      // Before any transport: a wiped gateway restores its own streams from its siblings first.
      if (config.sync.enabled)
        gw.siblings = await Siblings.start(config.sync, blockLog, identity, log, policies.sync.offerTo, space);
      policies.inbox.start(); // admin-signed grants/revocations handed over by `gateway policy grant|revoke`
      gw.retention = new RetentionTimer(blockLog, log, undefined, space).start(); // after restore: it authors blocks
      if (config.mqtt.enabled) await gw.startMqtt(siblingAuthors);
      if (config.serial.ports.length > 0) gw.startSerial();
      if (config.ble.enabled) gw.startBle();
      gw.startHomeAssistant();
      await gw.startRules(opts.actuation);
      if (config.api.enabled) {
        gw.api = await ApiServer.start(
          gw,
          { ...config.api, dataDir, metrics: config.metrics, statusIntervalMs: config.status.intervalSeconds * 1000 },
          log,
        );
      }
      await gw.startSimulation(opts.simulate ?? true, dataDir);
    } catch (err) {
      await gw.stop();
      throw err;
    }
    gw.statusTimer = setInterval(() => gw.reportStatus(), config.status.intervalSeconds * 1000);
    gw.statusTimer.unref();
    return gw;
  }

  private async startMqtt(siblingAuthors: readonly Uint8Array[]): Promise<void> {
    const { config, ingest, activity } = this;
    const ha = config.homeAssistant;
    // The gateway's own topics (status, Home Assistant states) and the discovery prefix are not writable by clients.
    const reservedPrefixes = [`outpost/v1/gw/${config.gateway.id}/`, ...(ha.enabled ? [`${ha.prefix}/`] : [])];
    this.broker = await EmbeddedBroker.start(
      {
        host: config.mqtt.host,
        port: config.mqtt.port,
        gatewayId: config.gateway.id,
        reservedPrefixes,
        syncPeers: config.sync.enabled ? siblingAuthors : [],
      },
      ingest,
      this.log,
      {
        onDeviceSeen: (device, client) => activity.seen(device, `mqtt:${client}`),
        onClientGone: (client) => activity.gone(`mqtt:${client}`),
      },
    );
    await this.siblings?.attachBroker(this.broker); // siblings may sync through this broker
  }

  /** Serial and BLE links report devices heard and links lost the same way. */
  private byteLinkEvents(): {
    onDeviceSeen: (device: string, source: string) => void;
    onLinkDown: (source: string) => void;
  } {
    return {
      onDeviceSeen: (device, source) => this.activity.seen(device, source),
      onLinkDown: (source) => this.activity.gone(source),
    };
  }

  private startSerial(): void {
    const { config, identity } = this;
    const s = config.serial;
    this.serial = SerialTransport.start(
      {
        ports: s.ports,
        gatewayId: config.gateway.id,
        sign: identity.sign,
        reconnectMinMs: s.reconnectMinMs,
        reconnectMaxMs: Math.max(s.reconnectMinMs, s.reconnectMaxMs),
        maxFrameBytes: config.ingest.maxFrameBytes,
      },
      this.ingest,
      this.log,
      this.byteLinkEvents(),
    );
  }

  private startBle(): void {
    const { config, identity, registry } = this;
    const b = config.ble;
    this.ble = BleTransport.start(
      {
        radio: b.radio,
        hciDevice: b.hciDevice,
        maxConnections: b.maxConnections,
        maxConnecting: Math.min(b.maxConnecting, b.maxConnections),
        connectTimeoutMs: b.connectTimeoutMs,
        backoffMinMs: b.backoffMinMs,
        backoffMaxMs: Math.max(b.backoffMinMs, b.backoffMaxMs),
        jitter: b.jitter,
        shareSlotsAfterMs: b.shareSlotsAfterMs,
        devices: b.scan.devices,
        gatewayId: config.gateway.id,
        sign: identity.sign,
        maxFrameBytes: config.ingest.maxFrameBytes,
        isEnrolled: (id) => registry.active(id) !== undefined,
      },
      this.ingest,
      this.log,
      this.byteLinkEvents(),
    );
  }

  private startHomeAssistant(): void {
    const { config } = this;
    if (!config.homeAssistant.enabled) return;
    if (!this.broker) {
      this.log.warn('homeAssistant.enabled needs mqtt.enabled: no discovery is published');
      return;
    }
    const haOpts = {
      prefix: config.homeAssistant.prefix,
      gatewayId: config.gateway.id,
      expireAfterSeconds: config.status.onlineTimeoutSeconds,
    };
    this.homeAssistant = new HomeAssistantDiscovery(
      this.broker,
      this.registry,
      (fn) => this.blockLog!.onFrames(fn),
      loadProfiles(),
      haOpts,
      this.log,
    );
  }

  /** Actuation over the transports started above, then the rules engine (if rule files are configured) feeding it. */
  private async startRules(overrides: ActuationSettings = {}): Promise<void> {
    const { config, identity, registry } = this;
    const a = config.actuation;
    const settings: ActuationSettings = {
      leaseMs: a.leaseSeconds * 1000,
      retryMinMs: a.retryMinMs,
      retryMaxMs: Math.max(a.retryMinMs, a.retryMaxMs),
      heardWithinMs: a.heardWithinSeconds * 1000,
      ...overrides,
    };
    this.actuation = new GatewayActuation(
      {
        gatewayId: config.gateway.id,
        publicKey: identity.publicKey,
        sign: identity.sign,
        frames$: this.ingest.frames$,
        appendInCommit: (author) => this.ingest.appendInCommit(author),
        blockLog: this.blockLog!,
        device: (id) => registry.get(id),
        targets: () => ({ mqtt: this.broker, serial: this.serial, ble: this.ble }),
        logger: this.log,
        ...(this.broker && { publish: (topic: string, payload: string) => this.broker!.publish(topic, payload) }),
      },
      settings,
    );
    const files = config.rules.files;
    if (files.length === 0) return;
    this.rules = await startRules({ files }, this.actuation.ruleFrames$, this.actuation.actuation, undefined, {
      log: this.log.child({ component: 'rules' }),
    });
    this.actuation.actuation.setInterlocks(this.rules.ruleSet.interlocks); // also held at delivery, until the other side's ack
    // each rule version not logged yet becomes a signed `rule` block: audited decisions name versions
    const logged = logRuleVersions(this.blockLog!, this.rules.ruleSet, {
      inCommit: (a) => this.ingest.appendInCommit(a),
    });
    this.log.info(
      { rules: this.rules.ruleSet.rules.length, files, versionsLogged: logged },
      `${this.rules.ruleSet.rules.length} rules running`,
    );
  }

  /** The demo fleet, only when no device is configured and every enrolled device is a simulated one. */
  private async startSimulation(allowed: boolean, dataDir: string): Promise<void> {
    const { config, registry } = this;
    if (!allowed || config.simulate.devices <= 0 || config.devices.length > 0) return;
    const enrolled = registry
      .list()
      .filter((d) => d.revokedAt === undefined)
      .map((d) => d.id);
    if (this.broker && Simulation.onlySimulated(dataDir, enrolled)) {
      this.simulation = await Simulation.start(
        {
          dataDir,
          devices: config.simulate.devices,
          rate: config.simulate.rate,
          brokerUrl: `mqtt://${config.mqtt.host}:${this.broker.port}`,
        },
        registry,
        this.log,
      );
    } else {
      this.log.info('devices are enrolled, so no simulated fleet is started');
    }
  }

  status(): Record<string, unknown> {
    return {
      gateway: this.config.gateway.id,
      devicesOnline: this.activity.online(),
      devicesEnrolled: this.registry.activeCount(),
      framesStored: this.blockLog!.frames.count(),
      storeBytes: this.store.sizeBytes(),
      pending: this.ingest.pending,
      verifyQueue: this.pool.queued,
      ingest: this.ingest.stats.snapshot(),
      ...(this.serial && {
        serial: this.serial.status().map((l) => ({
          name: l.name,
          path: l.path,
          state: l.state,
          frames: l.stats.frames,
          acks: l.stats.acks,
          badCrc: l.deframer.badCrc,
          badCobs: l.deframer.badCobs,
          oversize: l.deframer.oversize,
        })),
      }),
      ...(this.ble && { ble: this.bleStatus() }),
      ...(this.siblings && { sync: this.siblings.status() }),
      ...(this.actuation && { actuation: this.actuation.status() }),
      ...(this.rules && {
        rules: this.rules.stats().map((r) => ({
          id: r.id,
          version: r.version,
          frames: r.frames,
          decisions: r.decisions,
          errors: r.errors,
          disabled: r.disabled,
        })),
      }),
      ...(this.policies && { policy: this.policies.status() }),
      ...(this.keyRing && { confidential: this.keyRing.status() }),
    };
  }

  /** BLE in `gateway status`: the radio, the slots in use, and each device's state. */
  private bleStatus(): Record<string, unknown> {
    const s = this.ble!.status();
    return {
      radio: s.radio,
      adapter: s.adapter,
      ...(s.error !== undefined && { error: s.error }),
      connections: s.connections,
      connecting: s.connecting,
      maxConnections: s.maxConnections,
      devices: s.devices.map((d) => ({
        id: d.id,
        state: d.state,
        since: d.since,
        rssi: d.rssi,
        mtu: d.mtu,
        frames: d.stats.frames,
        acks: d.stats.acks,
        connects: d.stats.connects,
        disconnects: d.stats.disconnects,
      })),
    };
  }

  private reportStatus(): void {
    const stored = this.ingest.stats.stored;
    const rate = (stored - this.lastStored) / this.config.status.intervalSeconds;
    this.lastStored = stored;
    const s = this.status();
    const mb = ((s.storeBytes as number) / 1e6).toFixed(1);
    this.log.info(
      { ...s, framesPerSecond: rate },
      `${String(s.devicesOnline)} devices online, ${rate.toFixed(1)} frames/s, ${String(s.framesStored)} frames stored (${mb} MB), ${this.ingest.stats.rejectedTotal()} rejected`,
    );
  }

  async stop(): Promise<void> {
    clearInterval(this.statusTimer);
    this.retention?.stop();
    await this.simulation?.stop();
    this.rules?.stop();
    this.actuation?.stop(); // commands in flight end as expired; the last audit records go to the log
    await this.api?.close();
    this.homeAssistant?.close();
    await this.broker?.close();
    await this.serial?.close();
    await this.ble?.close();
    await this.siblings?.stop();
    this.policies?.stop();
    await this.ingest.close();
    await this.pool.close();
    await this.store.close();
    this.log.info('gateway stopped');
  }
}
