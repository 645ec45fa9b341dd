/**
 * FrameReader's per-query memory of blocks read once stays under PEEKED_MAX through one query
 * over more blocks than that (here rows whose blocks were pruned since the index was read, the
 * cheapest way to have many distinct blocks; real lmdb). Its read-ahead (`prefetch`) asks for
 * exactly the blocks the query's first rows then read, each once.
 */
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { describe, expect, it } from 'vitest';
import { FrameReader, PEEKED_MAX } from '../../gateway/log/frames-index.js';
import { FrameTables } from '../../gateway/log/frame-tables.js';
import { BlockNumbers } from '../../gateway/log/numbers.js';
import { poolSize } from '../../gateway/log/prefetch.js';
import { tempDir } from '../helpers/env.js';

/** A fresh lmdb root with the frames tables and block numbers, device `dev-a` numbered 1; closed and removed after `fn`. */
async function withIndex(
  fn: (t: { root: RootDatabase; tables: FrameTables; blockNos: BlockNumbers }) => Promise<void>,
): Promise<void> {
  const tmp = tempDir();
  const root = open({ path: join(tmp.dir, 'db') });
  try {
    await root.openDB<number, string>({ name: 'log-device-nos' }).put('dev-a', 1);
    await root.openDB<string, number>({ name: 'log-device-ids' }).put(1, 'dev-a');
    await fn({ root, tables: new FrameTables(root), blockNos: new BlockNumbers(root) });
  } finally {
    await root.close();
    tmp.cleanup();
  }
}

describe('FrameReader', () => {
  it('a query over 6000 blocks remembers at most PEEKED_MAX of them', async () => {
    await withIndex(async ({ root, tables, blockNos }) => {
      const N = PEEKED_MAX + 2000;
      await Promise.all(
        Array.from({ length: N }, (_, i) => [
          blockNos.put(i + 1, Buffer.alloc(32, i).toString('hex')),
          ...tables.putIndex({ dev: 1, rxTime: 1000 + i, boot: 1, seq: i }, { block: i + 1, index: 0 }),
        ]).flat(),
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
    });
  });

  it('prefetch reads ahead the blocks of the first n index entries, each once, as the query then reads them', async () => {
    await withIndex(async ({ root, tables, blockNos }) => {
      const hash = (no: number): string => Buffer.alloc(32, no).toString('hex');
      // 10 blocks of 5 rows each, in time order.
      await Promise.all(
        Array.from({ length: 50 }, (_, i) => [
          blockNos.put(Math.floor(i / 5) + 1, hash(Math.floor(i / 5) + 1)),
          ...tables.putIndex(
            { dev: 1, rxTime: 1000 + i, boot: 1, seq: i },
            { block: Math.floor(i / 5) + 1, index: i % 5 },
          ),
        ]).flat(),
      );
      const asked: string[][] = [];
      const peeked: string[] = [];
      const reader = new FrameReader({
        root,
        envelope: () => undefined,
        peek: (h) => void peeked.push(h),
        readable: (b) => b,
        prefetch: async (hs) => void asked.push(hs),
      });
      await reader.prefetch({ device: 'dev-a', since: 1010 }, 12); // rows 10..21: blocks 3, 4, 5
      expect(asked.flat().sort()).toEqual([3, 4, 5].map(hash));
      expect(asked.length).toBeGreaterThan(1); // side by side, not one task
      // The same rows read (these blocks are gone, so no row comes back: bounded by time instead).
      [...reader.query({ device: 'dev-a', since: 1010, until: 1022 })];
      expect([...new Set(peeked)].sort()).toEqual([3, 4, 5].map(hash));
      asked.length = 0;
      await reader.prefetch({ since: 5000 }, 10); // nothing there
      expect(asked).toEqual([]);
    });
  });

  it("prefetch settles when lmdb's read-ahead never answers or fails", async () => {
    await withIndex(async ({ root, tables, blockNos }) => {
      await Promise.all([
        blockNos.put(1, Buffer.alloc(32, 1).toString('hex')),
        ...tables.putIndex({ dev: 1, rxTime: 1000, boot: 1, seq: 1 }, { block: 1, index: 0 }),
      ]);
      for (const prefetch of [() => new Promise<void>(() => {}), () => Promise.reject(new Error('lmdb'))]) {
        const reader = new FrameReader({ root, envelope: () => undefined, readable: (b) => b, prefetch });
        await expect(reader.prefetch({ device: 'dev-a' }, 10)).resolves.toBeUndefined();
      }
    });
  });

  it("reads ahead in as many slices as libuv's pool has threads, as libuv reads UV_THREADPOOL_SIZE", () => {
    expect(poolSize(undefined)).toBe(4);
    expect(poolSize('16')).toBe(16);
    expect(poolSize(' 8 ')).toBe(8);
    expect(poolSize('0')).toBe(1);
    expect(poolSize('many')).toBe(1);
    expect(poolSize('5000')).toBe(1024);
  });
});
