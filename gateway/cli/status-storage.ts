/**
 * `gateway status`'s storage line: the running gateway's storage budget from GET /api/status
 * (rates and warnings need it), else what the data directory shows (budget, live bytes,
 * history held).
 */
import { statfsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { GatewayConfig } from '../config.js';
import type { BlockLog } from '../log/block-log.js';
import type { BudgetStatus } from '../log/budget.js';
import { resolveBudget } from '../log/budget-config.js';
import type { Store } from '../store/store.js';
import { StoreUsage } from '../store/usage.js';

export type StorageView = Pick<BudgetStatus, 'maxBytes' | 'usedBytes' | 'historyDays'> & Partial<BudgetStatus>;

export async function storageView(
  cfg: GatewayConfig,
  store: Store,
  log: BlockLog,
  api: { url: string; token: string } | undefined,
): Promise<StorageView> {
  if (api)
    try {
      const r = await fetch(`${api.url}/api/status`, {
        headers: { authorization: `Bearer ${api.token}` },
        signal: AbortSignal.timeout(2000),
      });
      const s = r.ok ? ((await r.json()) as { storage?: BudgetStatus }).storage : undefined;
      if (s) return s;
    } catch {
      // not running, or its API not answering: read the directory
    }
  const dir = resolve(cfg.gateway.dataDir);
  const fs = statfsSync(dir);
  const usedBytes = new StoreUsage(store.root).liveBytes();
  const oldest = [...log.frames.query({ limit: 1 })][0]?.rxTime;
  return {
    maxBytes: resolveBudget(cfg.log.maxBytes, {
      totalBytes: Number(fs.blocks) * Number(fs.bsize),
      freeBytes: Number(fs.bavail) * Number(fs.bsize),
      usedBytes,
      minFreeBytes: cfg.ingest.minFreeBytes,
    }),
    usedBytes,
    historyDays: oldest === undefined ? null : Number(((Date.now() - oldest) / 86_400_000).toPrecision(3)),
  };
}

export function storageLine(s: StorageView): string {
  const mb = (b: number): string => `${(b / 1e6).toFixed(1)} MB`;
  return [
    s.maxBytes > 0
      ? `storage: ${mb(s.usedBytes)} of a ${mb(s.maxBytes)} budget`
      : `storage: ${mb(s.usedBytes)}, no budget`,
    ...(s.budgetDays != null ? [`holds ${s.budgetDays} days at the current rate`] : []),
    ...(s.historyDays !== null ? [`${s.historyDays} days of history held`] : []),
    ...(s.state === 'blocked' ? [`over budget and not pruning (${String(s.blockedBy)})`] : []),
    ...(s.warning ? [`WARNING: ${s.warning}`] : []),
  ].join(', ');
}
