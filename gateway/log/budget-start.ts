/**
 * The storage budget in the running gateway: `log.maxBytes` resolved against the data
 * directory's filesystem (`auto`: budget-config.ts), the store's live bytes, each sink's
 * cursor and each sibling's copies, checked every few seconds (budget.ts).
 */
import { statfsSync } from 'node:fs';
import type { GatewayConfig } from '../config.js';
import type { GatewayExport } from '../export/start.js';
import type { Logger } from '../logger.js';
import type { FreeSpaceGuard } from '../store/free-space.js';
import type { Store } from '../store/store.js';
import { StoreUsage } from '../store/usage.js';
import type { Siblings } from '../sync/siblings.js';
import type { BlockLog } from './block-log.js';
import { resolveBudget } from './budget-config.js';
import { StorageBudget } from './budget.js';

/** How often the budget is checked. */
const BUDGET_INTERVAL_MS = 1_000;

export function startBudget(deps: {
  readonly config: GatewayConfig;
  readonly dataDir: string;
  readonly store: Store;
  readonly blockLog: BlockLog;
  readonly space: FreeSpaceGuard;
  readonly siblings: Siblings | undefined;
  readonly exports: GatewayExport | undefined;
  readonly log: Logger;
}): StorageBudget {
  const { config, dataDir, store, space, log } = deps;
  const usage = new StoreUsage(store.root);
  const statFree = (): number => {
    try {
      const s = statfsSync(dataDir);
      return Number(s.bavail) * Number(s.bsize);
    } catch {
      return Number.NaN;
    }
  };
  let totalBytes = Number.NaN;
  try {
    const s = statfsSync(dataDir);
    totalBytes = Number(s.blocks) * Number(s.bsize);
  } catch {
    // unknown disk: `auto` then falls back to what is reachable above the floor
  }
  const usedBytes = usage.liveBytes();
  const maxBytes = resolveBudget(config.log.maxBytes, {
    totalBytes: Number.isFinite(totalBytes) ? totalBytes : Number.POSITIVE_INFINITY,
    freeBytes: statFree(),
    usedBytes,
    minFreeBytes: space.minFreeBytes,
  });
  log.info(
    { maxBytes, usedBytes, minCopies: config.log.minCopies, auto: config.log.maxBytes === 'auto' },
    maxBytes > 0
      ? `storage budget ${maxBytes} bytes (${usedBytes} in use)${config.log.maxBytes === 'auto' ? ', log.maxBytes auto' : ''}`
      : 'no storage budget (log.maxBytes: 0): the log keeps everything',
  );
  const { exports, siblings } = deps;
  return new StorageBudget({
    log: deps.blockLog,
    usedBytes: () => usage.liveBytes(),
    freeBytes: () => (Number.isFinite(space.lastFree) ? space.lastFree : statFree()),
    minFreeBytes: space.minFreeBytes,
    maxBytes,
    minCopies: config.log.minCopies,
    ...(exports && { exportedThrough: (a: string, s: string) => exports.exportedThrough(a, s) }),
    ...(siblings && { heldOwn: (s: string) => siblings.heldOwn(s) }),
    logger: log.child({ component: 'budget' }),
  }).start(BUDGET_INTERVAL_MS);
}
