/**
 * One start function per optional part of the gateway (transports, Home Assistant, actuation and rules,
 * the demo fleet). Each registers what it started with the lifecycle (gateway/parts.ts), so the gateway
 * stops it, in reverse order, even when a part started after it fails to start or to stop.
 */
import { resolve } from 'node:path';
import { HealthChecks, type HealthInputs } from './export/health.js';
import { GatewayExport } from './export/start.js';
import type { Store } from './store/store.js';
import type { FreeSpaceGuard } from './store/free-space.js';
import type { TlsMaterial } from './crypto/certificate.js';
import type { PolicyRuntime } from './policy/runtime.js';
import type { RuleSet } from '../rules/dsl/types.js';
import { type RulesHandle, startRules } from '../rules/start.js';
import type { DeviceActivity } from './activity.js';
import type { RouteTargets } from './actuation/routes.js';
import { type ActuationSettings, GatewayActuation } from './actuation/start.js';
import type { GatewayConfig } from './config.js';
import { HomeAssistantDiscovery } from './homeassistant.js';
import type { GatewayIdentity } from './identity.js';
import type { IngestPipeline } from './ingest/pipeline.js';
import type { BlockLog } from './log/block-log.js';
import type { Logger } from './logger.js';
import type { Lifecycle } from './parts.js';
import { loadProfiles } from './profiles.js';
import type { Registry } from './registry.js';
import { logRuleVersions } from './rule-versions.js';
import { queueSettings } from './settings/inbox.js';
import { Simulation } from './simulation.js';
import type { Siblings } from './sync/siblings.js';
import { BleTransport } from './transports/ble.js';
import { EmbeddedBroker } from './transports/mqtt-broker.js';
import type { SerialTransport } from './transports/serial.js';

/** What the parts below are built on: the gateway's core, started before any of them. */
export interface PartContext {
  readonly config: GatewayConfig;
  readonly parts: Lifecycle;
  readonly log: Logger;
  readonly identity: GatewayIdentity;
  readonly registry: Registry;
  readonly ingest: IngestPipeline;
  readonly activity: DeviceActivity;
  readonly blockLog: BlockLog;
  readonly policies: PolicyRuntime;
  /** The certificate of the MQTT TLS listener and HTTPS API (config `tls`), when either is on. */
  readonly tls: TlsMaterial | undefined;
}

export async function startMqtt(
  ctx: PartContext,
  siblingAuthors: readonly Uint8Array[],
  siblings: Siblings | undefined,
): Promise<EmbeddedBroker> {
  const { config, ingest, activity, registry, blockLog, tls } = ctx;
  const perms = ctx.policies.permissions;
  const ha = config.homeAssistant;
  // The gateway's own topics (status, Home Assistant states) and the discovery prefix are not writable by clients.
  const reservedPrefixes = [`outpost/v1/gw/${config.gateway.id}/`, ...(ha.enabled ? [`${ha.prefix}/`] : [])];
  const broker = await EmbeddedBroker.start(
    {
      host: config.mqtt.host,
      port: config.mqtt.port,
      gatewayId: config.gateway.id,
      reservedPrefixes,
      syncPeers: config.sync.enabled ? siblingAuthors : [],
      anonymous: config.mqtt.anonymous,
      ...(config.mqtt.tls.enabled &&
        tls && { listeners: [{ host: config.mqtt.tls.host, port: config.mqtt.tls.port, tls }] }),
      limits: config.mqtt.limits,
      access: {
        tokenWindowMs: config.mqtt.tokenWindowSeconds * 1000,
        // One store read for an enrolled device (a reconnect storm asks for every device at once).
        device: (id) => {
          const a = registry.active(id);
          if (a) return { publicKey: a.publicKey, revoked: false };
          return registry.get(id) && { publicKey: new Uint8Array(32), revoked: true };
        },
        principal: (ref) => {
          const p = perms.principal(ref);
          return p && { did: p.did, name: p.id, publicKey: p.publicKey };
        },
        mayRead: (did, policy) => perms.check(did, 'read', policy).allowed,
      },
      principalReadable: ha.enabled ? [ha.prefix] : [],
      // The frame's policy is the stream of the log block holding it (as the API reads it).
      policyOf: (f) => blockLog.framePolicy(f.device, f.boot, f.seq),
    },
    ingest,
    ctx.log,
    {
      onDeviceSeen: (device, client) => activity.seen(device, `mqtt:${client}`),
      onClientGone: (client) => activity.gone(`mqtt:${client}`),
    },
  );
  ctx.parts.add('mqtt broker', broker, (b) => b.close());
  await siblings?.attachBroker(broker); // siblings may sync through this broker
  return broker;
}

/** Serial and BLE links report devices heard and links lost the same way. */
function byteLinkEvents(activity: DeviceActivity) {
  return {
    onDeviceSeen: (device: string, source: string) => activity.seen(device, source),
    onLinkDown: (source: string) => activity.gone(source),
  };
}

export async function startSerial(ctx: PartContext): Promise<SerialTransport> {
  // serialport (native bindings) is loaded only by a gateway with serial ports configured.
  const { SerialTransport } = await import('./transports/serial.js');
  const { config, identity } = ctx;
  const s = config.serial;
  const serial = SerialTransport.start(
    {
      ports: s.ports,
      gatewayId: config.gateway.id,
      sign: identity.sign,
      reconnectMinMs: s.reconnectMinMs,
      reconnectMaxMs: Math.max(s.reconnectMinMs, s.reconnectMaxMs),
      maxFrameBytes: config.ingest.maxFrameBytes,
    },
    ctx.ingest,
    ctx.log,
    byteLinkEvents(ctx.activity),
  );
  return ctx.parts.add('serial', serial, (t) => t.close());
}

export function startBle(ctx: PartContext): BleTransport {
  const { config, identity, registry } = ctx;
  const b = config.ble;
  const ble = BleTransport.start(
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
      maxAdvertisers: b.maxAdvertisers,
      forgetAdvertisersAfterMs: b.forgetAdvertisersAfterMs,
      devices: b.scan.devices,
      gatewayId: config.gateway.id,
      sign: identity.sign,
      maxFrameBytes: config.ingest.maxFrameBytes,
      isEnrolled: (id) => registry.active(id) !== undefined,
    },
    ctx.ingest,
    ctx.log,
    byteLinkEvents(ctx.activity),
  );
  return ctx.parts.add('ble', ble, (t) => t.close());
}

export function startHomeAssistant(
  ctx: PartContext,
  broker: EmbeddedBroker | undefined,
): HomeAssistantDiscovery | undefined {
  const { config } = ctx;
  if (!config.homeAssistant.enabled) return undefined;
  if (!broker) {
    ctx.log.warn('homeAssistant.enabled needs mqtt.enabled: no discovery is published');
    return undefined;
  }
  const haOpts = {
    prefix: config.homeAssistant.prefix,
    gatewayId: config.gateway.id,
    expireAfterSeconds: config.status.onlineTimeoutSeconds,
  };
  const ha = new HomeAssistantDiscovery(
    broker,
    ctx.registry,
    (fn) => ctx.blockLog.onFrames(fn),
    loadProfiles(),
    haOpts,
    ctx.log,
  );
  return ctx.parts.add('home assistant', ha, (h) => h.close());
}

/** Actuation over the transports started before it (always on: rules and synced leases feed it). */
export function startActuation(
  ctx: PartContext,
  targets: RouteTargets & { readonly mqtt?: EmbeddedBroker | undefined },
  overrides: ActuationSettings = {},
  exports?: GatewayExport,
  /** Free-space guard of the data directory: a rule's settings wait in a file there. */
  space?: FreeSpaceGuard,
): GatewayActuation {
  const { config, identity, registry, ingest } = ctx;
  const a = config.actuation;
  const broker = targets.mqtt;
  const actuation = new GatewayActuation(
    {
      gatewayId: config.gateway.id,
      publicKey: identity.publicKey,
      sign: identity.sign,
      frames$: ingest.frames$,
      appendInCommit: (author) => ingest.appendInCommit(author),
      blockLog: ctx.blockLog,
      device: (id) => registry.get(id),
      targets: () => targets,
      logger: ctx.log,
      ...(broker && { publish: (topic: string, payload: string) => broker.publish(topic, payload) }),
      ...(exports && { alert: (d) => exports.ruleAlert(d) }),
      queueSettings: (record) => queueSettings(resolve(config.gateway.dataDir), record, space),
    },
    {
      leaseMs: a.leaseSeconds * 1000,
      // Unset: half the lease (rules/actuation), also when a test overrides leaseMs.
      ...(a.leaseGraceSeconds !== undefined && { leaseGraceMs: a.leaseGraceSeconds * 1000 }),
      retryMinMs: a.retryMinMs,
      retryMaxMs: Math.max(a.retryMinMs, a.retryMaxMs),
      heardWithinMs: a.heardWithinSeconds * 1000,
      ...overrides,
    },
  );
  // Commands in flight end as expired; the last audit records go to the log.
  return ctx.parts.add('actuation', actuation, (act) => act.stop());
}

/** The live rules engine over the configured rule files (none: no engine), feeding actuation. */
export async function startRuleEngine(
  ctx: PartContext,
  actuation: GatewayActuation,
  ruleSet: RuleSet | undefined,
): Promise<RulesHandle | undefined> {
  const files = ctx.config.rules.files;
  if (ruleSet === undefined) return undefined;
  const rules = await startRules(ruleSet, actuation.ruleFrames$, actuation.actuation, undefined, {
    log: ctx.log.child({ component: 'rules' }),
  });
  ctx.parts.add('rules', rules, (r) => r.stop());
  actuation.actuation.setInterlocks(rules.ruleSet.interlocks); // also held at delivery, until the other side's ack
  // each rule version not logged yet becomes a signed `rule` block: audited decisions name versions
  const logged = logRuleVersions(ctx.blockLog, rules.ruleSet, { inCommit: (a) => ctx.ingest.appendInCommit(a) });
  ctx.log.info(
    { rules: rules.ruleSet.rules.length, files, versionsLogged: logged },
    `${rules.ruleSet.rules.length} rules running`,
  );
  return rules;
}

/** The demo fleet, only when no device is configured and every enrolled device is a simulated one. */
export async function startSimulation(
  ctx: PartContext,
  broker: EmbeddedBroker | undefined,
  allowed: boolean,
  dataDir: string,
): Promise<Simulation | undefined> {
  const { config, registry } = ctx;
  if (!allowed || config.simulate.devices <= 0 || config.devices.length > 0) return undefined;
  const enrolled = registry
    .list()
    .filter((d) => d.revokedAt === undefined)
    .map((d) => d.id);
  if (!broker || !Simulation.onlySimulated(dataDir, enrolled)) {
    ctx.log.info('devices are enrolled, so no simulated fleet is started');
    return undefined;
  }
  const simulation = await Simulation.start(
    {
      dataDir,
      devices: config.simulate.devices,
      rate: config.simulate.rate,
      brokerUrl: `mqtt://${config.mqtt.host}:${broker.port}`,
      gatewayId: config.gateway.id,
    },
    registry,
    ctx.log,
  );
  return ctx.parts.add('simulated fleet', simulation, (s) => s.stop());
}

/**
 * Export to sinks, rollups and alerts (config `export`, `alerts`; gateway/export), after restore:
 * sinks read the log from their cursors. Health checks raise alerts on disk, siblings, sinks, devices.
 */
export function startExport(
  ctx: PartContext,
  deps: {
    store: Store;
    space: FreeSpaceGuard;
    siblings: Siblings | undefined;
    storage?: HealthInputs['storage'];
    /** The rules the engine will run (their alerts reach the notifiers). */
    rules?: RuleSet | undefined;
  },
): GatewayExport | undefined {
  const { config, identity, registry, activity, log } = ctx;
  if (config.export.sinks.length === 0 && !config.export.rollups.enabled) return undefined;
  // Its tables opened in one transaction (Store.tables); started after it, since an exporter's
  // first batch may queue a transaction at once.
  const created = deps.store.tables(
    () =>
      new GatewayExport({
        config,
        store: deps.store,
        blockLog: ctx.blockLog,
        selfKey: identity.publicKey,
        permissions: ctx.policies.permissions,
        ...(deps.rules && { rules: deps.rules }),
        inCommit: (a) => ctx.ingest.appendInCommit(a),
        log,
      }),
  );
  const exports = ctx.parts.add('export', created.start(), (e) => e.stop());
  const alerts = exports.alerts;
  if (alerts)
    ctx.parts.add(
      'health checks',
      new HealthChecks(alerts, config.alerts, config.export.sinks, {
        freeBytes: () => deps.space.lastFree,
        minFreeBytes: config.ingest.minFreeBytes,
        siblings: () => deps.siblings?.status() ?? [],
        sinks: () => exports.exporters.map((e) => e.status()),
        devices: () =>
          registry
            .list()
            .filter((d) => d.revokedAt === undefined)
            .map((d) => d.id),
        lastSeenAt: (d) => activity.lastSeenAt(d),
        ...(deps.storage && { storage: deps.storage }),
      }),
      (h) => h.stop(),
    );
  return exports;
}
