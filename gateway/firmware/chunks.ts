/**
 * Chunk messages shared by every device they go to: a rollout sends the same chunks (same
 * release, offset and length) to many devices, so each is read from the log's image blocks
 * (FirmwareStore.read), framed and CRC'd once (encodeChunk) and the same bytes handed to every
 * link (the broker writes them to each device's socket, nobody changes them). Bounded: at most
 * `maxBytes` of messages, least recently sent evicted first, so an image is never held whole
 * beyond that (a 256 KiB image in 16 KiB chunks fits; a 16 MiB one streams through).
 */
import { encodeChunk } from '../../protocols/firmware-transfer.js';
import type { FirmwareStore, Release } from './releases.js';

/** 1 MiB: a 256 KiB image in any one chunk size, and the windows in flight of a larger one. */
const CHUNK_CACHE_BYTES = 1024 * 1024;

export interface CachedChunk {
  /** The encoded chunk message (a Buffer over its own bytes: links pass it on as is). */
  readonly message: Buffer;
  /** Image bytes it carries. */
  readonly length: number;
}

export class ChunkCache {
  private readonly byRelease = new Map<Release, Map<number, CachedChunk>>();
  private bytes = 0;
  readonly stats = { hits: 0, misses: 0, evicted: 0 };

  constructor(
    private readonly store: FirmwareStore,
    readonly maxBytes = CHUNK_CACHE_BYTES,
  ) {}

  /** The chunk of `r` at `offset`, at most `length` bytes; undefined when an image block is missing. */
  get(r: Release, offset: number, length: number): CachedChunk | undefined {
    // Chunks are at most 32 KiB (< 2^16) and offsets at most 2^32: the key stays a safe integer.
    const key = offset * 65_536 + length;
    let chunks = this.byRelease.get(r);
    const hit = chunks?.get(key);
    if (hit && chunks) {
      this.stats.hits++;
      chunks.delete(key);
      chunks.set(key, hit); // most recently sent last
      return hit;
    }
    const data = this.store.read(r, offset, length);
    if (!data || data.length === 0) return undefined;
    this.stats.misses++;
    const bytes = encodeChunk({ digest: r.signed.manifest.digest, offset, data });
    const chunk = { message: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), length: data.length };
    if (!chunks) this.byRelease.set(r, (chunks = new Map()));
    chunks.set(key, chunk);
    this.bytes += bytes.length;
    this.evict();
    return chunk;
  }

  /** Bytes of messages held. */
  get heldBytes(): number {
    return this.bytes;
  }

  private evict(): void {
    for (const [release, chunks] of this.byRelease) {
      for (const [key, c] of chunks) {
        if (this.bytes <= this.maxBytes) return;
        chunks.delete(key);
        this.bytes -= c.message.length;
        this.stats.evicted++;
      }
      if (chunks.size === 0) this.byRelease.delete(release);
    }
  }
}
