/**
 * What the API reads of the running gateway: its parts, by interface, so the API depends on them and
 * not on the Gateway class that starts it (the gateway passes itself; tests may pass less).
 */
import type { DeviceActivity } from '../activity.js';
import type { GatewayActuation } from '../actuation/start.js';
import type { GatewayConfig } from '../config.js';
import type { IngestPipeline } from '../ingest/pipeline.js';
import type { AuthorNames } from '../log/author-names.js';
import type { BlockLog } from '../log/block-log.js';
import type { FrameReader } from '../log/frames-index.js';
import type { PolicyRuntime } from '../policy/runtime.js';
import type { Registry } from '../registry.js';
import type { GatewayExport } from '../export/start.js';
import type { FirmwareStore } from '../firmware/releases.js';
import type { BudgetStatus } from '../log/budget.js';
import type { FreeSpaceGuard } from '../store/free-space.js';
import type { Store } from '../store/store.js';
import type { SiblingState } from '../sync/peer-state.js';

export interface ApiSource {
  readonly config: GatewayConfig;
  readonly store: Store;
  readonly registry: Registry;
  readonly ingest: IngestPipeline;
  readonly pool: { readonly queued: number };
  readonly activity: DeviceActivity;
  readonly identity: { readonly did: string };
  readonly blockLog: BlockLog;
  /** Every frame this gateway holds, whichever gateway heard it, once (gateway/log/frames-index.ts). */
  readonly frames: FrameReader;
  /** Gateway ids of block authors (a frame's `heardBy`). */
  readonly authors: AuthorNames;
  readonly policies: PolicyRuntime;
  readonly space: FreeSpaceGuard;
  readonly actuation: GatewayActuation;
  /** The embedded MQTT broker, when it runs (mqtt.enabled). */
  readonly broker?: { readonly port: number } | undefined;
  /** Export and rollups (config `export`), when on: /api/series reads the rollups, /metrics each exporter's lag. */
  readonly exports?: Pick<GatewayExport, 'rollups' | 'status'> | undefined;
  /** Sibling sync (config `sync`), when on: each sibling's state for /api/siblings. */
  readonly siblings?: { state(): SiblingState[] } | undefined;
  /** The storage budget (log.maxBytes): its figures for /metrics. */
  readonly budget?: { status(): BudgetStatus } | undefined;
  /** Desired vs reported settings of a device (gateway/settings), when it has desired settings. */
  readonly settings?: { view(device: string): unknown } | undefined;
  /** Firmware releases and rollouts in the log: /api/firmware. */
  readonly firmware?: { readonly store: FirmwareStore } | undefined;
  /** The status snapshot (gateway/status.ts). */
  status(): Record<string, unknown>;
}
