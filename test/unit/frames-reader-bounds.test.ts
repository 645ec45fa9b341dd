/**
 * FrameReader's per-query memory of blocks read once stays under PEEKED_MAX through one query
 * over more blocks than that (here rows whose blocks were pruned since the index was read, the
 * cheapest way to have many distinct blocks; real lmdb).
 */
import { join } from 'node:path';
import { open } from 'lmdb';
import { describe, expect, it } from 'vitest';
import { FrameIndexTables, FrameReader, PEEKED_MAX } from '../../gateway/log/frames-index.js';
import { tempDir } from '../helpers/env.js';

describe('FrameReader', () => {
  it('a query over 6000 blocks remembers at most PEEKED_MAX of them', async () => {
    const tmp = tempDir();
    const root = open({ path: join(tmp.dir, 'db') });
    try {
      const tables = new FrameIndexTables(root);
      const N = PEEKED_MAX + 2000;
      await Promise.all(
        Array.from({ length: N }, (_, i) => tables.put('dev-a', 1, i, 1000 + i, [`block-${i}`, 0])).flat(),
      );
      let peeks = 0;
      const reader = new FrameReader({
        root,
        envelope: () => undefined,
        peek: () => void peeks++,
        readable: (b) => b,
      });
      expect([...reader.query({ device: 'dev-a' })]).toEqual([]);
      expect(peeks).toBe(N); // every row's block was looked at
      expect((reader as unknown as { peeked: Set<string> }).peeked.size).toBeLessThanOrEqual(PEEKED_MAX);
    } finally {
      await root.close();
      tmp.cleanup();
    }
  });
});
