/**
 * Bytes the lmdb environment holds in live pages: the sum over its named databases of their
 * branch, leaf and overflow pages. The file itself never shrinks (lmdb keeps freed pages on
 * its freelist and reuses them), so its size cannot show that pruning made room; this does.
 */
import type { Database, RootDatabase } from 'lmdb';

/**
 * The tables opened with binary keys (frame-tables.ts, numbers.ts, journal-table.ts). Opening
 * a table with lmdb-js's default key encoding sets its ordered-binary comparator on the
 * environment's handle of that table, for every Database object of it: a tree sorted bytewise
 * then misses keys on `get` (seen with the journal's keys). So a table is opened here with the
 * key encoding its owner uses.
 */
export const BINARY_KEYED_TABLES: ReadonlySet<string> = new Set([
  'log-frame-view',
  'log-frame-copies',
  'log-frame-time',
  'log-frame-device',
  'log-block-nos',
  'log-journal',
]);

interface DbStats {
  readonly pageSize: number;
  readonly treeBranchPageCount: number;
  readonly treeLeafPageCount: number;
  readonly overflowPages: number;
}

export class StoreUsage {
  private readonly dbs = new Map<string, Database>();

  constructor(private readonly root: RootDatabase) {}

  /** Live bytes (pages in use × page size), main database included. */
  liveBytes(): number {
    const own = this.root.getStats() as DbStats;
    let pages = own.treeBranchPageCount + own.treeLeafPageCount + own.overflowPages;
    for (const name of this.root.getKeys()) {
      if (typeof name !== 'string') continue;
      let db = this.dbs.get(name);
      if (!db) {
        try {
          db = this.root.openDB(
            BINARY_KEYED_TABLES.has(name) ? { name, keyEncoding: 'binary', encoding: 'binary' } : { name },
          );
        } catch {
          continue; // a plain key of the main database, not a named database
        }
        this.dbs.set(name, db);
      }
      const s = db.getStats() as DbStats;
      pages += s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
    }
    return pages * own.pageSize;
  }
}
