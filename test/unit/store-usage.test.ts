/** StoreUsage opens every table for its page counts without changing how the owners' handles find keys. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { BINARY_KEYED_TABLES, StoreUsage } from '../../gateway/store/usage.js';

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
  it('counts pages of every table, and every binary-keyed table still finds its keys afterwards', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-usage-'));
    dirs.push(dir);
    const root = open({ path: join(dir, 'outpost.lmdb'), maxDbs: 64, compression: false, overlappingSync: false });
    try {
      // The journal's layout: a 4-byte head key before 6-byte entry keys (the case seen to miss).
      const keys = [key(1), key(1, 0), key(1, 1), key(2), key(2, 0)];
      const tables = [...BINARY_KEYED_TABLES].map((name) =>
        root.openDB<Buffer, Buffer>({ name, keyEncoding: 'binary', encoding: 'binary' }),
      );
      const strings = root.openDB<string, string>({ name: 'devices' });
      for (const db of tables) keys.forEach((k, i) => void db.put(k, Buffer.alloc(140, i + 1)));
      await strings.put('dev-a', 'x');
      const before = new StoreUsage(root).liveBytes();
      expect(before).toBeGreaterThan(0);
      for (const db of tables) for (const [i, k] of keys.entries()) expect(db.get(k)?.[0], `${i}`).toBe(i + 1);
      expect(strings.get('dev-a')).toBe('x');
    } finally {
      await root.close();
    }
  });
});
