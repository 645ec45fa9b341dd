/**
 * Export in the gateway process: one exporter per data sink (PostgreSQL, MQTT) reading the
 * log from its durable cursor, the local rollups fed the same way, and the alert notifiers
 * with the health checks. Each data sink is a principal of the policy file and gets only
 * the streams (policies) it may read; without a policy file every sink gets every stream.
 */
import { join } from 'node:path';
import { parsePublicKey, toHex } from '../../protocols/index.js';
import type { Decision } from '../../rules/decision.js';
import type { ActionSpec, RuleSet } from '../../rules/dsl/types.js';
import type { GatewayConfig } from '../config.js';
import type { BlockLog } from '../log/block-log.js';
import type { Logger } from '../logger.js';
import type { Permissions } from '../policy/permissions.js';
import type { Store } from '../store/store.js';
import { AlertManager } from './alerts.js';
import { durationMs, type SinkConfig } from './config.js';
import { CursorLog } from './cursor-log.js';
import { CursorStore } from './cursors.js';
import { type ExporterStatus, SinkExporter } from './exporter.js';
import { BlockLogSource } from './log-source.js';
import { RollupStore } from './rollups.js';
import { HttpNotifier } from './sinks/http.js';
import { MqttSink } from './sinks/mqtt.js';
import { PostgresSink } from './sinks/postgres.js';
import type { DataSink, GatewayName, Notifier } from './sinks/types.js';
import type { ExportSource } from './source.js';
import { SinkSharing } from './takeover.js';

export interface ExportDeps {
  readonly config: GatewayConfig;
  readonly store: Store;
  readonly blockLog: BlockLog;
  readonly selfKey: Uint8Array;
  /** Policies in force (file and grants); undefined: every stream is readable by every sink. */
  readonly permissions?: Permissions;
  /** The rules the engine runs, if any: which of their alerts a later decision resolves. */
  readonly rules?: RuleSet;
  /** Where blocks are authored (the ingest commit loop); a shared sink's cursor blocks go through it. */
  readonly inCommit?: (author: () => void) => void;
  readonly log: Logger;
}

const ROLLUP_PRUNE_MS = 10 * 60_000;

export class GatewayExport {
  readonly source: ExportSource;
  private readonly logSource: BlockLogSource;
  readonly cursors: CursorStore;
  readonly exporters: SinkExporter[] = [];
  readonly rollups?: RollupStore;
  readonly alerts?: AlertManager;
  private readonly sinks: (DataSink | Notifier)[] = [];
  private rollupExporter?: SinkExporter;
  private pruneTimer?: NodeJS.Timeout;
  private readonly resolvable: (rule: string, episodeKey: string) => boolean;

  constructor(private readonly deps: ExportDeps) {
    const { config, store, blockLog, log } = deps;
    this.resolvable = deps.rules ? resolvableAlerts(deps.rules) : () => true;
    this.logSource = new BlockLogSource(blockLog, store);
    this.source = this.logSource;
    this.cursors = new CursorStore(store);
    const names = gatewayNames(config, deps.selfKey);
    const notifiers = new Map<string, Notifier>();
    const cursorLog = new CursorLog(blockLog, deps.inCommit ?? ((a) => a()));
    const shared: SinkSharing[] = [];
    for (const s of config.export.sinks) {
      const sink = makeSink(s, names, config.gateway.id);
      this.sinks.push(sink);
      if ('notify' in sink) notifiers.set(s.name, sink);
      if (s.type === 'http' || !('deliver' in sink)) continue;
      const sharing =
        s.owner === undefined
          ? undefined
          : new SinkSharing(
              {
                sink: s.name,
                ownerKey: gatewayKey(config, deps.selfKey, s.owner),
                selfKey: toHex(deps.selfKey),
                takeoverAfterMs: s.takeoverAfterSeconds * 1000,
                cursorBlockMs: s.cursorBlockSeconds * 1000,
              },
              cursorLog,
              log.child({ component: 'export' }),
            );
      if (sharing) shared.push(sharing);
      this.exporters.push(
        new SinkExporter(
          sink,
          this.source,
          this.cursors,
          {
            batchFrames: s.batchFrames,
            maxFramesPerSecond: s.maxFramesPerSecond,
            resendPriority: s.resendPriority,
            readable: this.readableBy(s.principal),
            ...(sharing && { sharing }),
          },
          log.child({ component: 'export' }),
        ),
      );
    }
    // Where the sinks shared with siblings stand, as logged by any of them (the exporters merge it in).
    if (shared.length > 0) {
      const held = cursorLog.held(new Set(config.export.sinks.map((s) => s.name)));
      for (const sh of shared) sh.seed(held);
    }
    const r = config.export.rollups;
    if (r.enabled) {
      this.rollups = new RollupStore(store, { 60: durationMs(r.retainMinute), 3600: durationMs(r.retainHour) });
      this.rollupExporter = new SinkExporter(
        this.rollups,
        this.source,
        this.cursors,
        { batchFrames: 2000, maxFramesPerSecond: 0, resendPriority: 'oldest', readable: () => true },
        log.child({ component: 'rollups' }),
      );
    }
    const notify = config.alerts.notify.map((n) => notifiers.get(n)).filter((n): n is Notifier => n !== undefined);
    if (notify.length > 0)
      this.alerts = new AlertManager(
        notify,
        {
          gateway: config.gateway.id,
          minIntervalMs: config.alerts.minIntervalSeconds * 1000,
          maxPerMinute: config.alerts.maxPerMinute,
          stateFile: join(config.gateway.dataDir, 'alerts.json'),
        },
        log.child({ component: 'alerts' }),
      );
  }

  /** Streams a sink's principal may read now (grants and revocations take effect at the next batch). */
  private readableBy(principal: string | undefined): (stream: string) => boolean {
    const perms = this.deps.permissions;
    if (!perms || this.deps.config.policy.file === undefined || principal === undefined) return () => true;
    return (stream) => perms.check(principal, 'read', stream).allowed;
  }

  start(): this {
    for (const e of this.exporters) e.start();
    this.rollupExporter?.start();
    if (this.rollups) {
      const rollups = this.rollups;
      this.pruneTimer = setInterval(() => void rollups.prune().catch(() => {}), ROLLUP_PRUNE_MS);
      this.pruneTimer.unref();
    }
    return this;
  }

  /**
   * The highest seq of a chain every sink that may read it has confirmed, rollups included
   * (Infinity when none reads it): the storage budget never prunes above it.
   */
  exportedThrough(author: string, stream: string): number {
    let min = Number.POSITIVE_INFINITY;
    for (const e of [...this.exporters, ...(this.rollupExporter ? [this.rollupExporter] : [])]) {
      const c = e.confirmedThrough(author, stream);
      if (c !== undefined) min = Math.min(min, c);
    }
    return min;
  }

  /**
   * A rule's alert decision: a condition rule's rise raises it, its fall (an onClear alert)
   * resolves it. A rise whose fall carries no alert is one-shot: nothing would resolve it, and
   * held as firing it would swallow the rule's later firings.
   */
  ruleAlert(d: Decision & { action: { kind: 'alert' } }): void {
    if (!this.alerts) return;
    const detail = { rule: d.rule, ruleVersion: d.ruleVersion, reason: d.reason };
    if (!d.episode)
      return this.alerts.raise(`rule/${d.rule}/${d.action.message}`, 'rule', d.action.message, detail, true);
    const key = `rule/${d.rule}/${d.episode.key}`;
    if (d.episode.edge === 'fall') return this.alerts.resolve(key, d.action.message);
    this.alerts.raise(key, 'rule', d.action.message, detail, !this.resolvable(d.rule, d.episode.key));
  }

  status(): { sinks: ExporterStatus[]; rollups?: ExporterStatus; alerts?: unknown } {
    return {
      sinks: this.exporters.map((e) => e.status()),
      ...(this.rollupExporter && { rollups: this.rollupExporter.status() }),
      ...(this.alerts && {
        alerts: { firing: this.alerts.firing(), ...this.alerts.stats, tracked: this.alerts.tracked },
      }),
    };
  }

  async stop(): Promise<void> {
    clearInterval(this.pruneTimer);
    await Promise.all(this.exporters.map((e) => e.stop()));
    await this.rollupExporter?.stop();
    this.logSource.close();
    await this.alerts?.close();
    await Promise.all(this.sinks.map((s) => s.close().catch(() => {})));
  }
}

/**
 * Whether a rule's episode ends in an alert: a condition's onClear, a watchdog's onResume
 * (episode key `watchdog/<device>`). Other rules: assumed yes (a custom rule's decisions say).
 */
function resolvableAlerts(set: RuleSet): (rule: string, episodeKey: string) => boolean {
  const alerts = (actions: readonly ActionSpec[] | undefined): boolean =>
    actions?.some((a) => a.kind === 'alert') ?? false;
  const rules = new Map(set.rules.map((r) => [r.id, r]));
  return (id, key) => {
    const r = rules.get(id);
    if (r?.kind !== 'condition') return true;
    return key.startsWith('watchdog/') ? alerts(r.watchdog?.onResume) : alerts(r.onClear);
  };
}

function makeSink(s: SinkConfig, names: GatewayName, gatewayId: string): DataSink | Notifier {
  switch (s.type) {
    case 'postgres':
      return new PostgresSink(s, names);
    case 'mqtt':
      return new MqttSink(s, names, gatewayId);
    case 'http':
      return new HttpNotifier(s);
  }
}

/** The hex key of a gateway named by id: this one, or a sync peer (the config check refuses any other). */
function gatewayKey(config: GatewayConfig, selfKey: Uint8Array, id: string): string {
  if (id === config.gateway.id) return toHex(selfKey);
  const p = config.sync.peers.find((x) => x.id === id);
  const k = p && parsePublicKey(p.publicKey);
  if (!k?.ok) throw new Error(`export: sink owner "${id}" is not a sync peer`);
  return toHex(k.value);
}

/** Gateway ids by hex key: this gateway and the configured siblings; anything else by its key. */
function gatewayNames(config: GatewayConfig, selfKey: Uint8Array): GatewayName {
  const m = new Map<string, string>([[toHex(selfKey), config.gateway.id]]);
  for (const p of config.sync.peers) {
    const k = parsePublicKey(p.publicKey);
    if (k.ok) m.set(toHex(k.value), p.id);
  }
  return (author) => m.get(author) ?? author;
}
