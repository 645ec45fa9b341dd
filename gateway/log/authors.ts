/**
 * Sibling keys this gateway accepted blocks under through sync, with the peer id configured
 * then, so `audit verify` run without the config still checks those blocks' author signatures
 * instead of reporting them as unknown-author:
 *
 *   log-authors   author hex → {id, since}
 *
 * Only the audit trusts them: the running gateway accepts new blocks from `sync.peers` alone,
 * so a peer taken out of the config is not synced with again.
 */
import type { Database, RootDatabase } from 'lmdb';
import { type SignedBlock, toHex } from '../../protocols/index.js';

export interface RememberedAuthor {
  /** The sync peer's id in the config when its blocks were first accepted. */
  readonly id: string;
  /** When it was recorded, ms since the epoch. */
  readonly since: number;
}

export class RememberedAuthors {
  private readonly db: Database<RememberedAuthor, string>;
  private readonly known = new Map<string, RememberedAuthor>();

  constructor(
    root: RootDatabase,
    private readonly track: (p: Promise<unknown>) => void,
  ) {
    this.db = root.openDB({ name: 'log-authors' });
    for (const { key, value } of this.db.getRange()) this.known.set(key, value);
  }

  all(): ReadonlyMap<string, RememberedAuthor> {
    return this.known;
  }

  /** Records `author` under the peer `id` (queued; nothing when already recorded under that id). */
  remember(author: string, id: string, now = Date.now()): void {
    if (this.known.get(author)?.id === id) return;
    const rec = { id, since: now };
    this.known.set(author, rec);
    this.track(this.db.put(author, rec));
  }
}

/** What `rememberSiblings` needs of the block log. */
interface HeldBlocks {
  readonly remembered: RememberedAuthors;
  streamHeads(): readonly { readonly author: string }[];
  onDurableBlock(fn: (sb: SignedBlock) => void): () => void;
}

/**
 * Remembers the key of each sync peer whose blocks the log holds, now (a store synced before
 * keys were remembered) and whenever one of its blocks lands. Returns an unsubscribe.
 */
export function rememberSiblings(
  log: HeldBlocks,
  peers: readonly { readonly id: string; readonly publicKey: Uint8Array }[],
): () => void {
  const ids = new Map(peers.map((p) => [toHex(p.publicKey), p.id]));
  const note = (author: string): void => {
    const id = ids.get(author);
    if (id !== undefined) log.remembered.remember(author, id);
  };
  for (const h of log.streamHeads()) note(h.author);
  return log.onDurableBlock((sb) => note(toHex(sb.block.author)));
}
