/**
 * The gateway process: store, registry, verify pool, ingest, transports, API and the rest, each started
 * as a part of one lifecycle (gateway/parts.ts) and stopped in reverse order, every part even when one fails.
 */
import { resolve } from 'node:path';
import type { RulesHandle } from '../rules/start.js';
import { DeviceActivity } from './activity.js';
import type { ActuationSettings, GatewayActuation } from './actuation/start.js';
import { ApiServer } from './api/server.js';
import { receiveClock } from './clock-offset.js';
import type { GatewayConfig } from './config.js';
import type { HomeAssistantDiscovery } from './homeassistant.js';
import { GatewayIdentity } from './identity.js';
import { IngestPipeline } from './ingest/pipeline.js';
import { VerifyPool } from './ingest/verify-pool.js';
import { BlockLog } from './log/block-log.js';
import { RetentionTimer, retentionResolver } from './log/retention.js';
import type { StorageBudget } from './log/budget.js';
import { startBudget } from './log/budget-start.js';
import { type AuthorNames, authorNames } from './log/author-names.js';
import type { FrameReader } from './log/frames-index.js';
import type { Logger } from './logger.js';
import { maxInflight, verifyWorkers, youngGenerationWarning } from './memory-profile.js';
import { Lifecycle } from './parts.js';
import { KeyRing } from './policy/keyring.js';
import { PolicyRuntime } from './policy/runtime.js';
import { Registry } from './registry.js';
import type { Simulation } from './simulation.js';
import {
  startActuation,
  startBle,
  startHomeAssistant,
  startMqtt,
  startRuleEngine,
  startSerial,
  startExport,
  startSimulation,
} from './start-parts.js';
import { gatewayStatus, startStatusReports } from './status.js';
import { loadStartInputs } from './start-inputs.js';
import { DataDirLock } from './store/data-dir-lock.js';
import type { GatewayExport } from './export/start.js';
import { loadOrCreateTls, type TlsMaterial } from './crypto/certificate.js';
import { type GatewaySettings, type SettingsTimings, startSettings } from './settings/start.js';
import { FreeSpaceGuard } from './store/free-space.js';
import { Store } from './store/store.js';
import { Siblings, siblingKeys } from './sync/siblings.js';
import type { BleTransport } from './transports/ble.js';
import type { EmbeddedBroker } from './transports/mqtt-broker.js';
import { type FirmwareSettings, type GatewayFirmware, startFirmware } from './firmware/start.js';
import type { SerialTransport } from './transports/serial.js';

export interface GatewayOptions {
  readonly logger: Logger;
  /** Start the demo fleet when no device is configured (default: as the config says). */
  readonly simulate?: boolean;
  /** Actuation timings (lease, retry); tests shorten them. */
  readonly actuation?: ActuationSettings;
  /** Settings delivery timings (resend backoff); tests shorten them. */
  readonly settings?: SettingsTimings;
  /** Firmware rollout timings; tests shorten them. */
  readonly firmware?: FirmwareSettings;
}

/** The gateway's parts, as the start hands them over. */
export type GatewayParts = Omit<Gateway, 'status' | 'stop' | 'frames'>;

/** The running gateway: the parts that always run, and (possibly undefined) those the config turns on. */
export class Gateway {
  readonly config: GatewayConfig;
  readonly identity: GatewayIdentity;
  readonly store: Store;
  /** Free-space guard of the data directory (ingest.minFreeBytes). */
  readonly space: FreeSpaceGuard;
  readonly registry: Registry;
  readonly pool: VerifyPool;
  /** Data keys of confidential policies (gateway/policy/keyring.ts). */
  readonly keyRing: KeyRing;
  /** The signed block log (every stored frame is also in a frames block). */
  readonly blockLog: BlockLog;
  /** Policies: permissions, grant state, tagging, sync filter (gateway/policy). */
  readonly policies: PolicyRuntime;
  readonly ingest: IngestPipeline;
  readonly activity: DeviceActivity;
  /** Logs revocations and retention marks of this gateway's streams (gateway/log/retention.ts). */
  readonly retention: RetentionTimer;
  /** Signed commands, acks, leases and the audit (always on; rules feed it). */
  readonly actuation: GatewayActuation;
  /** Desired settings of devices and their delivery (gateway/settings). */
  readonly settings: GatewaySettings;
  /** Sync with sibling gateways (config `sync`). */
  readonly siblings: Siblings | undefined;
  readonly broker: EmbeddedBroker | undefined;
  /** Firmware releases, transfers and rollouts (gateway/firmware). */
  readonly firmware: GatewayFirmware;
  readonly serial: SerialTransport | undefined;
  readonly ble: BleTransport | undefined;
  readonly homeAssistant: HomeAssistantDiscovery | undefined;
  /** The live rules engine (config `rules.files`). */
  readonly rules: RulesHandle | undefined;
  readonly api: ApiServer | undefined;
  readonly simulation: Simulation | undefined;
  /** The certificate of the MQTT TLS listener and HTTPS API (config `tls`), when either is on. */
  readonly tls: TlsMaterial | undefined;
  /** Export to sinks, rollups and alerts (config `export`, `alerts`; gateway/export). */
  readonly exports: GatewayExport | undefined;
  /** The storage budget (config `log.maxBytes`, `log.minCopies`; gateway/log/budget.ts). */
  readonly budget: StorageBudget;
  /** Gateway ids of block authors (a frame's `heardBy`). */
  readonly authors: AuthorNames;

  /** Every frame this gateway holds, whichever gateway heard it, once (gateway/log/frames-index.ts). */
  get frames(): FrameReader {
    return this.blockLog.frames;
  }

  private constructor(
    p: GatewayParts,
    private readonly lifecycle: Lifecycle,
    private readonly log: Logger,
  ) {
    this.config = p.config;
    this.identity = p.identity;
    this.store = p.store;
    this.space = p.space;
    this.registry = p.registry;
    this.pool = p.pool;
    this.keyRing = p.keyRing;
    this.blockLog = p.blockLog;
    this.policies = p.policies;
    this.ingest = p.ingest;
    this.activity = p.activity;
    this.retention = p.retention;
    this.actuation = p.actuation;
    this.settings = p.settings;
    this.siblings = p.siblings;
    this.broker = p.broker;
    this.firmware = p.firmware;
    this.serial = p.serial;
    this.ble = p.ble;
    this.homeAssistant = p.homeAssistant;
    this.rules = p.rules;
    this.api = p.api;
    this.simulation = p.simulation;
    this.tls = p.tls;
    this.exports = p.exports;
    this.budget = p.budget;
    this.authors = p.authors;
  }

  /** Starts a gateway on `config`; throws DataDirLockError while another process runs on its data directory. */
  static async start(config: GatewayConfig, opts: GatewayOptions): Promise<Gateway> {
    const log = opts.logger;
    const dataDir = resolve(config.gateway.dataDir);
    const parts = new Lifecycle(log);
    // Before anything is read or written there: one gateway process per data directory (released last).
    parts.add('data directory lock', DataDirLock.acquire(dataDir), (l) => l.release());
    try {
      // First: its first worker thread boots (a V8 isolate, ~0.1 s) while the store opens,
      // instead of holding up the first frame's verify.
      const workers = verifyWorkers(config);
      const pool = parts.add('verify pool', new VerifyPool(workers), (p) => p.close());
      // Refuse writes before the disk is full: lmdb-js may abort natively after an ENOSPC commit.
      const space = new FreeSpaceGuard(dataDir, { minFreeBytes: config.ingest.minFreeBytes, log });
      const identity = GatewayIdentity.loadOrCreate(config.gateway.id, dataDir, space);
      // A policy or rule file that does not load stops the start here, before the store is opened.
      const { policySet, ruleSet } = await loadStartInputs(config, identity.publicKey);
      const store = parts.add('store', Store.open(dataDir), (s) => s.close());
      const registry = new Registry(store, space);
      await registry.enrollAll(config.devices, log);
      const siblingAuthors = siblingKeys(config.sync);
      // Confidential policies: sealed at authoring, opened where this gateway holds a key (readers come from the permissions).
      const keyRing = new KeyRing({
        me: { publicKey: identity.publicKey, x25519Secret: identity.x25519Secret },
        durable: () => store.durable(),
      });
      // Retention: config per stream, else the stream's policy, else the config default (set once policies load).
      let retentionOf: (stream: string) => number | undefined = () => undefined;
      const blockLog = store.tables(
        () =>
          new BlockLog(store, {
            publicKey: identity.publicKey,
            sign: identity.sign,
            knownAuthors: siblingAuthors,
            crypto: keyRing,
            retentionFor: (s) => retentionOf(s),
            withheldParentsOk: config.policy.file !== undefined,
            sealAfterMs: config.log.sealAfterMs,
            log,
          }),
      );
      // A data directory of an earlier release is brought up to date before anything writes.
      await blockLog.upgrade(log);
      // Frames a crash left in the journal (acked, not yet in a block) get their blocks first.
      const sealed = await blockLog.sealJournal();
      if (sealed > 0)
        log.info({ frames: sealed }, `sealed ${sealed} journaled frames left by the last run into blocks`);
      const policies = parts.add('policies', new PolicyRuntime(policySet, config, blockLog, dataDir, log), (p) =>
        p.stop(),
      );
      retentionOf = retentionResolver(config.log.retention, policies.retentionFor);
      keyRing.attach(policies.permissions);
      policies.inbox.space = space;
      const ingest = new IngestPipeline(
        store,
        registry,
        pool,
        log,
        {
          ...config.ingest,
          maxInflight: maxInflight(config),
          now: receiveClock(),
          policyOf: (f) => policies.tagger.tag(f),
          space,
        },
        blockLog,
      );
      // Stopped after ingest: the open journal blocks are sealed before the store closes.
      parts.add('log journal', blockLog, async (b) => {
        await b.sealOpen();
        b.stopJournal();
      });
      blockLog.inCommit = (task) => ingest.appendInCommit(task);
      parts.add('ingest', ingest, (i) => i.close());
      const activity = new DeviceActivity(config.status.onlineTimeoutSeconds * 1000);
      log.info(
        {
          gateway: config.gateway.id,
          did: identity.did,
          dataDir,
          frames: blockLog.frames.count(),
          devices: registry.activeCount(),
          verifyWorkers: workers,
          memory: config.gateway.memory,
        },
        `gateway ${config.gateway.id} starting`,
      );
      const youngGeneration = youngGenerationWarning(config);
      if (youngGeneration) log.warn({ key: 'gateway.memory' }, youngGeneration);
      if (config.ingest.replayWindow !== undefined)
        log.warn(
          { key: 'ingest.replayWindow' },
          'ingest.replayWindow is no longer used and is ignored: ingest.replayBoots and ingest.replayRanges bound the replay memory',
        );
      const tls =
        config.mqtt.tls.enabled || config.api.tls
          ? loadOrCreateTls(dataDir, { ...config.tls, commonName: config.gateway.id })
          : undefined;
      if (tls)
        log.info(
          { cert: tls.certFile, fingerprint: tls.fingerprint, created: tls.created },
          `TLS certificate ${tls.certFile} (SHA-256 fingerprint ${tls.fingerprint})`,
        );
      const ctx = { config, parts, log, identity, registry, ingest, activity, blockLog, policies, tls };
      // Before any transport: a wiped gateway restores its own streams from its siblings first.
      const siblings = config.sync.enabled
        ? parts.add(
            'sync',
            await Siblings.start(config.sync, blockLog, identity, log, policies.sync.offerTo, space, pool),
            (s) => s.stop(),
          )
        : undefined;
      policies.inbox.start(); // admin-signed grants/revocations handed over by `gateway policy grant|revoke`
      // After restore: it authors blocks.
      const retention = parts.add('retention', new RetentionTimer(blockLog, log, undefined, space).start(), (r) =>
        r.stop(),
      );
      let budget: StorageBudget | undefined;
      const exports = startExport(ctx, { store, space, siblings, storage: () => budget?.status(), rules: ruleSet });
      budget = parts.add('storage budget', startBudget({ ...ctx, dataDir, store, space, siblings, exports }), (b) =>
        b.stop(),
      );
      const broker = config.mqtt.enabled ? await startMqtt(ctx, siblingAuthors, siblings) : undefined;
      const serial = config.serial.ports.length > 0 ? await startSerial(ctx) : undefined;
      const ble = config.ble.enabled ? startBle(ctx) : undefined;
      const homeAssistant = startHomeAssistant(ctx, broker);
      const actuation = startActuation(ctx, { mqtt: broker, serial, ble }, opts.actuation, exports, space);
      const rules = await startRuleEngine(ctx, actuation, ruleSet);
      const settings = startSettings(ctx, actuation, space, opts.settings);
      const firmware = await startFirmware(ctx, { broker, serial, ble }, dataDir, opts.firmware);
      const running = {
        ...{ config, identity, store, space, registry, pool, keyRing, blockLog, policies, ingest, activity },
        ...{ retention, actuation, siblings, broker, serial, ble, homeAssistant, rules, tls, exports, budget },
        ...{ settings, firmware },
        authors: authorNames({ id: config.gateway.id, publicKey: identity.publicKey }, config.sync.peers),
      };
      const apiOptions = {
        ...config.api,
        dataDir,
        metrics: config.metrics,
        statusIntervalMs: config.status.intervalSeconds * 1000,
        tls: config.api.tls ? tls : undefined,
      };
      const api = config.api.enabled
        ? parts.add(
            'api',
            await ApiServer.start(
              { ...running, frames: blockLog.frames, status: () => gatewayStatus(running) },
              apiOptions,
              log,
            ),
            (a) => a.close(),
          )
        : undefined;
      const simulation = await startSimulation(ctx, broker, opts.simulate ?? true, dataDir);
      parts.add('status reports', startStatusReports(running, log), (r) => r.stop());
      return new Gateway({ ...running, api, simulation }, parts, log);
    } catch (err) {
      // Each part that fails to stop is logged by the lifecycle; the start's own error is the one to report.
      await parts.stop().catch(() => {});
      throw err;
    }
  }

  status(): Record<string, unknown> {
    return gatewayStatus(this);
  }

  /**
   * Stops every part, last started first, each even when an earlier stop threw;
   * rejects with a PartsStopError naming the parts that failed (each also logged).
   */
  async stop(): Promise<void> {
    try {
      await this.lifecycle.stop();
    } finally {
      this.log.info('gateway stopped');
    }
  }
}
