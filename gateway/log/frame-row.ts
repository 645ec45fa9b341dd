/** A reader row (frames-index.ts, FrameRow) built from its parts. */
import type { FrameEntry } from '../../protocols/index.js';
import type { FrameRow } from './frames-index.js';

/** A reader row: a frame's identity, where its chosen copy sits, its entry there, and that block's author and stream. */
export function frameRow(
  id: { readonly device: string; readonly boot: number; readonly seq: number },
  block: string | null,
  index: number,
  e: FrameEntry,
  heardBy: string,
  policy: string,
): FrameRow {
  return rowOf(id, block, index, e.rxTime, heardBy, e.transport, policy, e.frame);
}

/**
 * A row built without an object literal: V8 pretenures a literal's allocation site once a
 * burst of its objects survives (a caller keeping a page of rows), and every later row of every
 * query is then allocated in the old generation, holding its young frame view through each
 * scavenge (bench/README.md, "Rule replay: the frames' allocation sites"). `{}` has no site.
 */
export function rowOf(
  id: { readonly device: string; readonly boot: number; readonly seq: number },
  block: string | null,
  index: number,
  rxTime: number,
  heardBy: string,
  transport: string,
  policy: string,
  frame: Uint8Array,
): FrameRow {
  const r = {} as { -readonly [K in keyof FrameRow]: FrameRow[K] };
  r.device = id.device;
  r.boot = id.boot;
  r.seq = id.seq;
  r.rxTime = rxTime;
  r.heardBy = heardBy;
  r.transport = transport;
  r.policy = policy;
  r.block = block;
  r.index = index;
  r.frame = frame;
  return r;
}
