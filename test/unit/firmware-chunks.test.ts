/**
 * The chunk messages the transfer sends, encoded once and shared by every device: whatever
 * order chunks are asked in, each message is byte for byte what encodeChunk makes of the
 * image's bytes there; a chunk asked again is not read again while it is held; and what is
 * held never exceeds the bound (the image is not kept whole).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChunkCache } from '../../gateway/firmware/chunks.js';
import type { FirmwareStore, Release } from '../../gateway/firmware/releases.js';
import { decodeDown, encodeChunk } from '../../protocols/firmware-transfer.js';

const SIZE = 40_000;
const image = Uint8Array.from({ length: SIZE }, (_, i) => (i * 31 + (i >> 8)) & 0xff);
const digest = new Uint8Array(32).fill(9);
const release = { digest: '09'.repeat(32), signed: { manifest: { digest, size: SIZE } } } as unknown as Release;

/** Just what ChunkCache reads of a store: the image's bytes, counted. */
function storeOf(): { store: FirmwareStore; reads: () => number } {
  let reads = 0;
  const store = {
    read(_r: Release, offset: number, length: number) {
      reads++;
      return image.subarray(offset, Math.min(SIZE, offset + length));
    },
  } as unknown as FirmwareStore;
  return { store, reads: () => reads };
}

describe('firmware chunk cache', () => {
  it('each message is encodeChunk of the image bytes at its offset, whatever the order and the bound', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ chunk: fc.integer({ min: 0, max: 40 }), size: fc.constantFrom(255, 2048, 4096) }), {
          minLength: 1,
          maxLength: 60,
        }),
        fc.integer({ min: 1, max: 64 * 1024 }),
        (asks, max) => {
          const cache = new ChunkCache(storeOf().store, max);
          for (const a of asks) {
            const offset = Math.min(a.chunk * a.size, SIZE - 1);
            const c = cache.get(release, offset, a.size)!;
            const data = image.subarray(offset, Math.min(SIZE, offset + a.size));
            expect(c.length).toBe(data.length);
            expect(new Uint8Array(c.message)).toEqual(encodeChunk({ digest, offset, data }));
            const d = decodeDown(c.message);
            expect(d.ok && d.value.type === 'chunk' && d.value.offset === offset).toBe(true);
            expect(cache.heldBytes).toBeLessThanOrEqual(Math.max(max, c.message.length));
          }
        },
      ),
    );
  });

  it('a chunk asked again (another device) is not read or encoded again while held', () => {
    const { store, reads } = storeOf();
    const cache = new ChunkCache(store);
    const first = Array.from({ length: 10 }, (_, i) => cache.get(release, i * 4096, 4096)!);
    for (let device = 0; device < 50; device++)
      for (let i = 0; i < 10; i++) expect(cache.get(release, i * 4096, 4096)).toBe(first[i]);
    expect(reads()).toBe(10);
    expect(cache.stats).toMatchObject({ misses: 10, hits: 500, evicted: 0 });
  });

  it('held bytes stay within the bound: the least recently sent go first', () => {
    const { store, reads } = storeOf();
    const probe = new ChunkCache(store);
    const bound = probe.get(release, 0, 4096)!.message.length + probe.get(release, 4096, 4096)!.message.length;
    const cache = new ChunkCache(store, bound); // two chunks fit, not three
    const a = cache.get(release, 0, 4096);
    cache.get(release, 4096, 4096);
    cache.get(release, 0, 4096); // a is now the most recent
    cache.get(release, 8192, 4096); // evicts the chunk at 4096
    expect(cache.heldBytes).toBeLessThanOrEqual(bound);
    const before = reads();
    expect(cache.get(release, 0, 4096)).toBe(a);
    cache.get(release, 4096, 4096);
    expect(reads()).toBe(before + 1);
    expect(cache.stats.evicted).toBe(2);
  });

  it('a missing image block is no chunk', () => {
    const store = { read: () => undefined } as unknown as FirmwareStore;
    expect(new ChunkCache(store).get(release, 0, 4096)).toBeUndefined();
  });
});
