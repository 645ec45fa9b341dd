/**
 * The outcome of the last `gateway audit verify`, kept in the data directory (`last-audit.json`)
 * so the operator surface (GET /api/siblings, `gateway status`, the dashboard) can say when the
 * log was last verified and whether it was clean. Written whole to a temporary file and
 * renamed, so a reader sees the old record or the new one, never half of one.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditSummary } from './audit.js';

const FILE = 'last-audit.json';

export interface AuditRecord {
  /** When the audit ran (ISO 8601). */
  readonly at: string;
  readonly ok: boolean;
  readonly blocks: number;
  readonly frames: number;
  readonly faults: number;
  readonly faultsByCode: Readonly<Record<string, number>>;
  readonly headsDigest: string;
}

export function writeAuditRecord(dataDir: string, s: AuditSummary, at = Date.now()): void {
  const rec: AuditRecord = {
    at: new Date(at).toISOString(),
    ok: s.faults.length === 0,
    blocks: s.blocks,
    frames: s.uniqueFrames,
    faults: s.faults.length,
    faultsByCode: s.faultsByCode as Record<string, number>,
    headsDigest: s.headsDigest,
  };
  const file = join(dataDir, FILE);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(rec)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** The last audit's record, or null when none ran here (or its file is unreadable). */
export function readAuditRecord(dataDir: string): AuditRecord | null {
  try {
    const r = JSON.parse(readFileSync(join(dataDir, FILE), 'utf8')) as AuditRecord;
    return typeof r.at === 'string' && typeof r.ok === 'boolean' ? r : null;
  } catch {
    return null;
  }
}
