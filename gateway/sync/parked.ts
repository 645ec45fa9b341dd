/**
 * Blocks a sync session holds back instead of refusing: received while streams it asked
 * for (`want`) are still to come, and refused only because their `prev` or a parent is not
 * held yet. The case: the peer is behind on a stream whose chain forked from ours (a key
 * that equivocated), so it cannot tell our chain there is not its own; we can, and ask for
 * the stream whole, but its blocks naming its branch as parents were sent before our `want`
 * reached it. Each waits under one missing hash and is applied again once that block lands;
 * what still waits when the peer is done is tried once more, then refused with its faults. Bounded: past the caps
 * a block is refused at once, as before (the next exchange sends it again).
 */
import { decodeSignedBlock, hashHex } from '../../protocols/index.js';
import type { Fault } from '../log/verify.js';

/** At most this many blocks, and this many envelope bytes, wait in one session. */
const MAX_PARKED_BLOCKS = 1024;
const MAX_PARKED_BYTES = 16 * 1024 * 1024;

/** Faults that a block arriving later in the same session can cure. */
export function onlyMissingLinks(faults: readonly Fault[]): boolean {
  return faults.length > 0 && faults.every((f) => f.code === 'missing-prev' || f.code === 'missing-parent');
}

/** The first of a block's `prev` and parents that `held` says is absent. */
export function missingLink(envelope: Uint8Array, held: (hash: string) => boolean): string | undefined {
  const d = decodeSignedBlock(envelope);
  if (!d.ok) return undefined;
  const b = d.value.block;
  for (const link of b.prev === null ? b.parents : [b.prev, ...b.parents]) {
    const h = hashHex(link);
    if (!held(h)) return h;
  }
  return undefined;
}

export class Parked {
  private readonly waiting = new Map<string, Uint8Array[]>();
  private blocks = 0;
  private bytes = 0;

  get size(): number {
    return this.blocks;
  }

  /** Holds a block's envelope until `missing` lands; false (not held) past the caps. */
  hold(missing: string, envelope: Uint8Array): boolean {
    if (this.blocks >= MAX_PARKED_BLOCKS || this.bytes + envelope.length > MAX_PARKED_BYTES) return false;
    let list = this.waiting.get(missing);
    if (!list) this.waiting.set(missing, (list = []));
    // A copy: the transport may reuse the buffer the message arrived in.
    list.push(Uint8Array.from(envelope));
    this.blocks++;
    this.bytes += envelope.length;
    return true;
  }

  /** The blocks that waited for `hash`, no longer held. */
  release(hash: string): Uint8Array[] {
    const list = this.waiting.get(hash);
    if (!list) return [];
    this.waiting.delete(hash);
    this.blocks -= list.length;
    for (const e of list) this.bytes -= e.length;
    return list;
  }

  /** Everything still held, no longer held. */
  drain(): Uint8Array[] {
    const all = [...this.waiting.values()].flat();
    this.waiting.clear();
    this.blocks = 0;
    this.bytes = 0;
    return all;
  }
}
