/** `gateway status`: one snapshot of every running part, for the status log line, the API and the live feed. */
import type { RulesHandle } from '../rules/start.js';
import type { DeviceActivity } from './activity.js';
import type { GatewayActuation } from './actuation/start.js';
import type { GatewayConfig } from './config.js';
import type { IngestPipeline } from './ingest/pipeline.js';
import type { VerifyPool } from './ingest/verify-pool.js';
import type { Logger } from './logger.js';
import type { KeyRing } from './policy/keyring.js';
import type { PolicyRuntime } from './policy/runtime.js';
import type { Registry } from './registry.js';
import type { Store } from './store/store.js';
import type { Siblings } from './sync/siblings.js';
import type { GatewayExport } from './export/start.js';
import type { BlockLog } from './log/block-log.js';
import type { StorageBudget } from './log/budget.js';
import type { BleTransport } from './transports/ble.js';
import type { SerialTransport } from './transports/serial.js';

export interface StatusSource {
  readonly config: GatewayConfig;
  readonly store: Store;
  readonly registry: Registry;
  readonly pool: VerifyPool;
  readonly ingest: IngestPipeline;
  readonly activity: DeviceActivity;
  readonly policies: PolicyRuntime;
  readonly keyRing: KeyRing;
  readonly blockLog: BlockLog;
  readonly actuation: GatewayActuation;
  readonly serial?: SerialTransport | undefined;
  readonly ble?: BleTransport | undefined;
  readonly siblings?: Siblings | undefined;
  readonly rules?: RulesHandle | undefined;
  readonly exports?: GatewayExport | undefined;
  readonly budget?: StorageBudget | undefined;
}

export function gatewayStatus(g: StatusSource): Record<string, unknown> {
  return {
    gateway: g.config.gateway.id,
    devicesOnline: g.activity.online(),
    devicesEnrolled: g.registry.activeCount(),
    framesStored: g.blockLog.frames.count(),
    storeBytes: g.store.sizeBytes(),
    ...(g.budget && { storage: g.budget.status() }),
    pending: g.ingest.pending,
    verifyQueue: g.pool.queued,
    ingest: g.ingest.stats.snapshot(),
    ...(g.serial && {
      serial: g.serial.status().map((l) => ({
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
    ...(g.ble && { ble: bleStatus(g.ble) }),
    ...(g.siblings && { sync: g.siblings.status() }),
    actuation: g.actuation.status(),
    ...(g.rules && {
      rules: g.rules.stats().map((r) => ({
        id: r.id,
        version: r.version,
        frames: r.frames,
        decisions: r.decisions,
        errors: r.errors,
        disabled: r.disabled,
      })),
    }),
    policy: g.policies.status(),
    confidential: g.keyRing.status(),
    ...(g.exports && { export: g.exports.status() }),
  };
}

/** BLE in `gateway status`: the radio, the slots in use, and each device's state. */
function bleStatus(ble: BleTransport): Record<string, unknown> {
  const s = ble.status();
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

/** The status line every `intervalSeconds`: the snapshot plus frames per second since the last line. */
export function startStatusReports(g: StatusSource, log: Logger): { stop(): void } {
  const intervalSeconds = g.config.status.intervalSeconds;
  let lastStored = g.ingest.stats.stored;
  const timer = setInterval(() => {
    const stored = g.ingest.stats.stored;
    const rate = (stored - lastStored) / intervalSeconds;
    lastStored = stored;
    const s = gatewayStatus(g);
    const mb = ((s.storeBytes as number) / 1e6).toFixed(1);
    log.info(
      { ...s, framesPerSecond: rate },
      `${String(s.devicesOnline)} devices online, ${rate.toFixed(1)} frames/s, ${String(s.framesStored)} frames stored (${mb} MB), ${g.ingest.stats.rejectedTotal()} rejected`,
    );
  }, intervalSeconds * 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
