/**
 * The block log's hook for confidential policies. The log itself
 * knows nothing of keys: an implementation (gateway/policy/keyring.ts) seals
 * the blocks this gateway authors, publishes key wraps before the data that
 * needs them, and opens sealed blocks it holds a key for, so device
 * signatures inside are verified and frames indexed wherever they can be read.
 * Where they cannot (a relay), a sealed block is held, chain-verified and
 * synced like any other.
 */
import type { Block, Result } from '../../protocols/index.js';

export interface BlockCrypto {
  /** Blocks to author on `policy`'s stream before its next data (a keys block for a new or widened epoch). */
  beforeAppend(policy: string): Pick<Block, 'kind' | 'body'>[];
  /**
   * Whether `policy`'s frames are sealed (confidential): they skip the journal and are signed
   * into a sealed block in their own transaction, so no clear copy of them is ever written.
   */
  confidential(policy: string): boolean;
  /** The block as it will be signed: sealed when its policy is confidential, else unchanged. */
  seal(block: Block): Block;
  /** The readable form of a sealed block: `sealed/no-key` when this gateway holds no key for it. */
  open(block: Block): Result<Block>;
  /** Sees every block the log queues (authored or received), to learn the key wraps it carries. */
  observe(block: Block): void;
}
