/** The merged frames history from the command line: the data directory's block log, read only. */
import { resolve } from 'node:path';
import { fromHex } from '../../protocols/index.js';
import { type AuthorNames, authorNames } from '../log/author-names.js';
import type { BlockLog } from '../log/block-log.js';
import type { FrameReader } from '../log/frames-index.js';
import { requireCurrent } from '../log/upgrade.js';
import type { Store } from '../store/store.js';
import { resolveConfig } from './args.js';
import { openLog } from './log-audit.js';

export interface FramesCli {
  readonly cfg: ReturnType<typeof resolveConfig>;
  readonly store: Store;
  readonly log: BlockLog;
  readonly frames: FrameReader;
  readonly authors: AuthorNames;
  close(): Promise<void>;
}

/** Opens the data directory for reading frames; a directory of an earlier or newer release is refused (DataDirError). */
export function openFrames(values: { config?: string | undefined; data?: string | undefined }): FramesCli {
  const cfg = resolveConfig(values);
  const { store, log } = openLog(values, []);
  try {
    requireCurrent(store.root, resolve(cfg.gateway.dataDir));
  } catch (e) {
    void store.close();
    throw e;
  }
  const authors = authorNames({ id: cfg.gateway.id, publicKey: fromHex(log.author)! }, cfg.sync.peers);
  return { cfg, store, log, frames: log.frames, authors, close: () => store.close() };
}
