/**
 * Each sink's durable cursor (source.ts: a position per chain of the log), in the gateway's
 * lmdb environment (`export-cursors`: sink name → cursor). Written only after the sink
 * confirmed the batch it covers; a sink that writes to the same environment (rollups)
 * writes it inside its own transaction instead, so its data and cursor commit together.
 */
import type { Database } from 'lmdb';
import { type Store, untracked } from '../store/store.js';
import type { ExportCursor } from './source.js';

export class CursorStore {
  private readonly db: Database<ExportCursor, string>;

  constructor(store: Store) {
    this.db = store.root.openDB({ name: 'export-cursors' });
  }

  get(sink: string): ExportCursor {
    return this.db.get(sink) ?? {};
  }

  /** Resolves once the cursor is committed. */
  async save(sink: string, cursor: ExportCursor): Promise<void> {
    await untracked(this.db.put(sink, cursor));
  }

  /** Inside an lmdb transaction callback: written in that transaction. */
  putInTransaction(sink: string, cursor: ExportCursor): void {
    this.db.putSync(sink, cursor);
  }

  /** Forgets a sink (e.g. removed from the config). */
  async remove(sink: string): Promise<void> {
    await untracked(this.db.remove(sink));
  }
}
