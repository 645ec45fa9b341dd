/** What flows through a condition rule: a window's worth of frames and what they add up to. */
import type { FrameRef } from '../decision.js';
import type { CelContext } from '../dsl/cel.js';
import type { RuleFrame } from '../frame.js';
import type { Refs } from './rolling.js';

export interface Sample {
  /** The newest frame (its device, model and site are the context's). */
  readonly frame: RuleFrame;
  /** The window's newest frames (at most MAX_INPUTS, oldest first); absent without a window: the frame alone. */
  readonly window?: Refs;
  readonly agg: Readonly<Record<string, number>>;
}

/** A condition's level at one sample. */
export interface Signal {
  readonly on: boolean;
  readonly sample: Sample;
  /** What the condition saw (also fills `{{…}}` in actions). */
  readonly ctx: CelContext;
}

/** An action trigger: the condition became true (rise) or false (fall). */
export interface Fire {
  readonly edge: 'rise' | 'fall';
  readonly ctx: CelContext;
  readonly inputs: readonly FrameRef[];
  /** Why, for the decision's reason. */
  readonly note?: string;
}

/** Inputs named in a decision: the window's frames, newest last, at most this many. */
export const MAX_INPUTS = 16;

export function inputsOf(s: Sample): FrameRef[] {
  return s.window ? s.window.list() : [{ device: s.frame.device, boot: s.frame.boot, seq: s.frame.seq }];
}

/** Values of a frame's records by (short) name; a later record of the same name wins. */
export function valuesOf(f: RuleFrame): Record<string, number | boolean | string> {
  const v: Record<string, number | boolean | string> = {};
  for (const r of f.records) v[r.name] = r.value;
  return v;
}
