/**
 * `log.maxBytes` and `log.minCopies` (the storage budget, budget.ts): what the config accepts
 * and what `auto` means.
 */
import { z } from 'zod';

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** The smallest budget accepted: below this a few blocks' indexes would not fit. */
export const MIN_BUDGET_BYTES = 4 * 2 ** 20;

/** `500MB`, `2 GiB`, `1.5GB`, or a bare number of bytes → bytes; undefined when unreadable. */
export function parseBytes(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$/i.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]) * (UNITS[(m[2] ?? 'b').toLowerCase()] ?? Number.NaN);
  return Number.isFinite(n) ? Math.floor(n) : undefined;
}

export const maxBytesSchema = z
  .union([
    z.literal('auto'),
    z.union([z.number(), z.string()]).superRefine((v, ctx) => {
      if (v === 'auto') return;
      const n = parseBytes(v);
      if (n === undefined)
        ctx.addIssue({
          code: 'custom',
          message: 'must be auto, 0 (no budget), a number of bytes, or a size such as 500MB, 2GiB',
        });
      else if (n !== 0 && n < MIN_BUDGET_BYTES)
        ctx.addIssue({
          code: 'custom',
          message: `must be at least ${MIN_BUDGET_BYTES} bytes (4 MiB), or 0 for no budget (keep everything)`,
        });
    }),
  ])
  .default('auto');

export const minCopiesSchema = z.number().int().min(0).max(16).default(0);

/** Share of the data directory's filesystem that `auto` gives the log. */
const AUTO_SHARE = 0.5;

/**
 * The budget in bytes (0: none). `auto`: half the size of the filesystem holding the data
 * directory, and never more than what the gateway can reach before the free-space floor
 * (what the store holds now plus the free bytes above twice the floor), so pruning starts
 * before ingest would be refused.
 */
export function resolveBudget(
  v: string | number,
  disk: { totalBytes: number; freeBytes: number; usedBytes: number; minFreeBytes: number },
): number {
  if (v !== 'auto') return parseBytes(v) ?? 0;
  const reach = disk.usedBytes + disk.freeBytes - 2 * disk.minFreeBytes;
  return Math.max(MIN_BUDGET_BYTES, Math.floor(Math.min(AUTO_SHARE * disk.totalBytes, reach)));
}
