/**
 * Bytes the lmdb environment holds in live pages: the sum over its named databases of their
 * branch, leaf and overflow pages. The file itself never shrinks (lmdb keeps freed pages on
 * its freelist and reuses them), so its size cannot show that pruning made room; this does.
 */
import type { Database, RootDatabase } from 'lmdb';

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
          // With binary keys, whatever key encoding the table's owner uses: lmdb-js puts its
          // ordered-binary comparator on the environment's handle of a table opened with its
          // default key encoding, and a tree sorted bytewise then misses keys on `get`
          // (test/unit/store-usage.test.ts). A binary open sets no comparator, so it changes
          // no owner's handle, and page counts do not depend on how keys are read.
          db = this.root.openDB({ name, keyEncoding: 'binary', encoding: 'binary' });
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
