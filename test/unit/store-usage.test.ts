/** StoreUsage opens every table for its page counts without changing how the owners' handles find keys. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreUsage } from '../../gateway/store/usage.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const key = (no: number, slot?: number): Buffer => {
  const b = Buffer.alloc(slot === undefined ? 4 : 6);
  b.writeUInt32BE((no | 0x80000000) >>> 0, 0);
  if (slot !== undefined) b.writeUInt16BE(slot, 4);
  return b;
};

describe('StoreUsage', () => {
  it('counts pages of every table, and every table, binary-keyed or not, still finds its keys afterwards', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-usage-'));
    dirs.push(dir);
    const root = open({ path: join(dir, 'outpost.lmdb'), maxDbs: 64, compression: false, overlappingSync: false });
    try {
      // The journal's layout: a 4-byte head key before 6-byte entry keys (the case seen to miss).
      const keys = [key(1), key(1, 0), key(1, 1), key(2), key(2, 0)];
      // Tables of this release and one StoreUsage has never heard of: it needs no list of them.
      const tables = ['log-frame-view', 'log-block-nos', 'log-journal', 'a-table-added-later'].map((name) =>
        root.openDB<Buffer, Buffer>({ name, keyEncoding: 'binary', encoding: 'binary' }),
      );
      const strings = root.openDB<string, string>({ name: 'devices' });
      const arrays = root.openDB<number, [string, number]>({ name: 'log-chain' });
      for (let i = 0; i < 50; i++) void arrays.put([`author-${i % 3}`, i * 7], i);
      for (const db of tables) keys.forEach((k, i) => void db.put(k, Buffer.alloc(140, i + 1)));
      await strings.put('dev-a', 'x');
      const before = new StoreUsage(root).liveBytes();
      expect(before).toBeGreaterThan(0);
      for (const db of tables) for (const [i, k] of keys.entries()) expect(db.get(k)?.[0], `${i}`).toBe(i + 1);
      expect(strings.get('dev-a')).toBe('x');
      for (let i = 0; i < 50; i++) expect(arrays.get([`author-${i % 3}`, i * 7])).toBe(i);
      expect([...arrays.getKeys({ start: ['author-1'], end: ['author-2'] })]).toHaveLength(17);
    } finally {
      await root.close();
    }
  });
});
