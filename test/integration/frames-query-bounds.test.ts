/**
 * The frames reader's ranges over binary keys (data format 4, real lmdb): frames at the
 * edges of a range (boot 0, seq 0, at exactly `since`; at `until`, excluded), many devices at
 * one receive time, and paging with cursors forward and backward, by device and across all,
 * each give every row once and in key order, compared with the same query answered by
 * filtering and sorting everything the log holds.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import type { FrameCursor, FrameQuery, FrameRow } from '../../gateway/log/frames-index.js';
import { Store } from '../../gateway/store/store.js';
import { testDevice } from '../helpers/devices.js';
import { tempDir } from '../helpers/env.js';

const devices = ['d-0', 'd-1', 'd-2', 'd-3'].map((id) => testDevice(id));
const T = 1_800_000_000_000;

describe('frames reader ranges', () => {
  const tmp = tempDir('outpost-query-bounds-');
  const store = Store.open(tmp.dir);
  afterAll(async () => {
    await store.close();
    tmp.cleanup();
  });
  for (const d of devices) store.devices.putSync(d.id, { id: d.id, publicKey: d.publicKeyHex, enrolledAt: 1 });
  const seed = randomBytes(32);
  const log = new BlockLog(store, { publicKey: publicKeyFromSeed(seed), sign: (m) => signEd25519(seed, m) });

  it('every range and every page, by device and across devices, forward and reverse', async () => {
    // boot 0 / seq 0 frames, several devices at one time, times clustered on a few values.
    const frames = devices.flatMap((d, di) =>
      Array.from({ length: 12 }, (_, i) => ({
        frame: d.frame(i % 2, i),
        rxTime: T + Math.floor(i / 3) * 10 + (di % 2),
        transport: 'mqtt',
      })),
    );
    log.appendFrames(frames);
    await log.durable();
    const all = [...log.frames.query()];
    expect(all).toHaveLength(frames.length);
    const key = (r: FrameRow): string => `${r.device}/${r.boot}/${r.seq}`;
    expect(new Set(all.map(key)).size).toBe(frames.length);

    const expectedRows = (q: FrameQuery): string[] => {
      const rows = all.filter(
        (r) =>
          (q.device === undefined || r.device === q.device) &&
          r.rxTime >= (q.since ?? 0) &&
          r.rxTime < (q.until ?? Number.MAX_SAFE_INTEGER),
      );
      // Order within one receive time is the reader's own (device numbers): take it from `all`.
      const at = new Map(all.map((r, i) => [key(r), i]));
      rows.sort((a, b) => at.get(key(a))! - at.get(key(b))!);
      if (q.reverse) rows.reverse();
      return rows.map(key);
    };
    const paged = (q: FrameQuery, size: number): string[] => {
      const out: string[] = [];
      let after: FrameCursor | undefined;
      for (;;) {
        const page = [...log.frames.query({ ...q, limit: size, ...(after && { after }) })];
        out.push(...page.map(key));
        if (page.length < size) return out;
        const l = page.at(-1)!;
        after = { rxTime: l.rxTime, device: l.device, boot: l.boot, seq: l.seq };
      }
    };
    // Time order overall: rxTime ascending.
    for (let i = 1; i < all.length; i++) expect(all[i]!.rxTime).toBeGreaterThanOrEqual(all[i - 1]!.rxTime);

    fc.assert(
      fc.property(
        fc.option(fc.constantFrom(...devices.map((d) => d.id)), { nil: undefined }),
        fc.option(fc.integer({ min: -1, max: 45 }), { nil: undefined }),
        fc.option(fc.integer({ min: -1, max: 45 }), { nil: undefined }),
        fc.boolean(),
        fc.integer({ min: 1, max: 7 }),
        (device, s, u, reverse, size) => {
          const q: FrameQuery = {
            ...(device !== undefined && { device }),
            ...(s !== undefined && { since: T + s }),
            ...(u !== undefined && { until: T + u }),
            reverse,
          };
          const want = expectedRows(q);
          expect([...log.frames.query(q)].map(key)).toEqual(want);
          expect(paged(q, size)).toEqual(want);
        },
      ),
      { numRuns: 150 },
    );
  });
});
