/**
 * The export source over a real lmdb block log: the blocks the log announces as durable are
 * taken from memory (the frames ingest just stored, not read back and decoded), a block still
 * queued is not read, and a source started afresh on the same log (a restart) reads the very
 * same batch and cursor from lmdb. Frames acked into the journal and not sealed yet are in no
 * chain: no batch takes them, and the source counts their open block as unsealed until sealed.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { BlockLogSource } from '../../gateway/export/log-source.js';
import type { ExportBatch } from '../../gateway/export/source.js';
import { testDevice } from '../helpers/devices.js';
import { logNode } from '../helpers/log-node.js';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const all = (): boolean => true;
const plain = (b: ExportBatch) => ({
  blocks: b.blocks,
  cursor: b.cursor,
  frames: b.frames.map(({ frame, ...rest }) => ({ ...rest, frame: [...frame] })),
});

describe('export source', () => {
  it('takes just-durable blocks from memory, never a queued one, and reads the same batch back from the log', async () => {
    const dev = testDevice('src-1');
    const node = logNode(randomBytes(32), [], [dev], closers);
    const live = new BlockLogSource(node.log, node.store);
    closers.push(() => live.close());
    const off = live.onChange(() => {}); // one exporter reading
    closers.push(off);
    const frames = Array.from({ length: 12 }, (_, i) => dev.frame(1, i));
    for (let b = 0; b < 3; b++)
      node.log.appendFrames(
        frames.slice(b * 4, b * 4 + 4).map((frame, i) => ({ frame, rxTime: 1_000 + b * 4 + i, transport: 'mqtt' })),
      );
    // Queued, not durable: nothing of it is read (the enrolment block may already be durable).
    expect(live.next({}, 100, 'oldest', all).frames).toHaveLength(0);
    await node.log.settled();

    const batch = live.next({}, 100, 'oldest', all);
    expect(batch.frames.map((f) => f.seq)).toEqual([...Array(12).keys()]);
    // The very bytes objects that were appended: from the announced blocks, not decoded from lmdb.
    for (const [i, f] of batch.frames.entries()) expect(f.frame).toBe(frames[i]);

    // A restart: a source with nothing announced reads the same frames and cursor from lmdb.
    const fresh = new BlockLogSource(node.log, node.store);
    closers.push(() => fresh.close());
    const again = fresh.next({}, 100, 'oldest', all);
    expect(again.frames[0]!.frame).not.toBe(frames[0]);
    expect(plain(again)).toEqual(plain(batch));
    // Read once by its one reader, a kept block is dropped: a second read comes from lmdb, the same.
    const second = live.next({}, 100, 'oldest', all);
    expect(second.frames[0]!.frame).not.toBe(frames[0]);
    expect(plain(second)).toEqual(plain(batch));
    // From the confirmed cursor on, nothing is left (no frame skipped or read twice).
    expect(live.next(batch.cursor, 100, 'oldest', all).blocks).toBe(0);
  });

  it('counts an open journal block as unsealed, takes its frames only once it is sealed', async () => {
    const dev = testDevice('src-2');
    const node = logNode(randomBytes(32), [], [dev], closers);
    const src = new BlockLogSource(node.log, node.store);
    closers.push(() => src.close());
    node.log.journalFrames(
      Array.from({ length: 5 }, (_, i) => ({ frame: dev.frame(1, i), rxTime: 1_000 + i, transport: 'mqtt' })),
    );
    await node.log.settled();
    expect(src.unsealed(all)).toBe(1);
    expect(src.unsealed(() => false)).toBe(0); // a sink that may not read the stream is not behind by it
    expect(src.next({}, 100, 'oldest', all).frames).toHaveLength(0);
    await node.log.sealOpen();
    expect(src.unsealed(all)).toBe(0);
    expect(src.next({}, 100, 'oldest', all).frames.map((f) => f.seq)).toEqual([0, 1, 2, 3, 4]);
  });
});
