/** Validated rule definitions (what rules/dsl/parse.ts produces and rules/engine compiles). */
import type { OperatorFunction } from 'rxjs';
import type { Action, FrameRef, SettingsValues } from '../decision.js';
import type { RuleFrame } from '../frame.js';
import type { SchedulerLike } from 'rxjs';

export interface TriggerSpec {
  readonly devices?: readonly string[];
  readonly models?: readonly string[];
  readonly sites?: readonly string[];
  /** The frame must carry at least one record with one of these (short) names. */
  readonly names?: readonly string[];
}

export type WindowSpec =
  | { readonly kind: 'tumbling'; readonly sizeMs: number }
  | { readonly kind: 'sliding'; readonly sizeMs: number }
  | { readonly kind: 'count'; readonly count: number };

export const AGGREGATE_FNS = ['avg', 'min', 'max', 'count', 'sum', 'last', 'rate'] as const;
export type AggregateFn = (typeof AGGREGATE_FNS)[number];
export interface AggregateSpec {
  readonly name: string;
  readonly fn: AggregateFn;
  /** The record name it reads. */
  readonly of: string;
}

/** An action as written; `{{path}}` in strings is filled from the evaluation context. */
export type ActionSpec =
  | {
      readonly kind: 'command';
      readonly device: string;
      readonly actuator: string;
      readonly value: number | boolean | string;
      readonly ttlMs: number;
    }
  | { readonly kind: 'publish'; readonly topic: string; readonly payload: string }
  | { readonly kind: 'alert'; readonly message: string }
  /** Desired settings of a device (only `device` is templated; values are checked at load). */
  | { readonly kind: 'settings'; readonly device: string; readonly values: SettingsValues };

interface RuleBase {
  readonly id: string;
  /** Content hash of the rule's definition (after the declared `version` label, if any). */
  readonly version: string;
  readonly file: string;
  /** What the version hashes: canonical JSON of the YAML rule, or a TS rule's trigger and operator source (logged as a `rule` block). */
  readonly definition: string;
  readonly description?: string;
  readonly trigger: TriggerSpec;
}

export interface WatchdogSpec {
  readonly silenceMs: number;
  /** Devices watched from the start; empty: every device the rule hears, once heard. */
  readonly devices: readonly string[];
}

export interface ConditionRule extends RuleBase {
  readonly kind: 'condition';
  /** `device`: one independent state per device (groupBy); `rule`: one state for all. */
  readonly per: 'device' | 'rule';
  readonly window?: WindowSpec;
  readonly aggregates: readonly AggregateSpec[];
  readonly when?: string;
  /** Hysteresis: once `when` holds, the condition stays true until `clear` holds. */
  readonly clear?: string;
  readonly forMs?: number;
  readonly debounceMs?: number;
  readonly cooldownMs?: number;
  readonly rateLimit?: { readonly max: number; readonly perMs: number };
  /** `rising`: act when the condition becomes true; `every`: on every sample where it holds. */
  readonly fire: 'rising' | 'every';
  readonly then: readonly ActionSpec[];
  readonly onClear: readonly ActionSpec[];
  readonly watchdog?: WatchdogSpec & { readonly then: readonly ActionSpec[]; readonly onResume: readonly ActionSpec[] };
}

export interface StateSpec {
  readonly minDwellMs: number;
  readonly onEnter: readonly ActionSpec[];
}
export interface TransitionSpec {
  /** A state name or `*` (any state). */
  readonly from: string;
  readonly to: string;
  readonly when?: string;
  /** Only after this long in `from` (a timed transition). */
  readonly afterMs?: number;
}
export interface LatchSpec {
  readonly name: string;
  /** CEL: sets the latch when true on a frame. */
  readonly set: string;
  /** Entering any of these states clears it (the request was served). */
  readonly clearOnEnter: readonly string[];
}

export interface MachineRule extends RuleBase {
  readonly kind: 'machine';
  /** Sliding or count window whose aggregates guards read as `agg.*`. */
  readonly window?: Exclude<WindowSpec, { kind: 'tumbling' }>;
  readonly aggregates: readonly AggregateSpec[];
  readonly initial: string;
  readonly states: ReadonlyMap<string, StateSpec>;
  readonly transitions: readonly TransitionSpec[];
  readonly latches: readonly LatchSpec[];
  /** A watched device silent for silenceMs forces `state` (minimum dwell does not hold it back). */
  readonly watchdog?: WatchdogSpec & { readonly state: string };
}

/** What a custom rule emits: the engine adds rule, version and time. */
export interface DecisionDraft {
  readonly inputs: readonly FrameRef[];
  readonly reason: string;
  readonly action: Action;
  /** Which condition instance of the rule went on (`rise`) or off (`fall`), so alerts can be resolved. */
  readonly episode?: Episode;
}

/** A rule's condition instance (`key`: the device with per: device, `watchdog/<device>` for a watchdog) and its edge. */
export interface Episode {
  readonly key: string;
  readonly edge: 'rise' | 'fall';
}

export interface CustomRuleContext {
  readonly scheduler: SchedulerLike;
  readonly ruleId: string;
}

export interface CustomRule extends RuleBase {
  readonly kind: 'custom';
  readonly operator: (ctx: CustomRuleContext) => OperatorFunction<RuleFrame, DecisionDraft>;
}

export type RuleSpec = ConditionRule | MachineRule | CustomRule;

/** At most one of these commanded states may hold at a time. */
export interface InterlockSpec {
  readonly id: string;
  readonly file: string;
  readonly never: readonly {
    readonly device: string;
    readonly actuator: string;
    readonly value: number | boolean | string;
  }[];
}

export interface RuleSet {
  readonly rules: readonly RuleSpec[];
  readonly interlocks: readonly InterlockSpec[];
}
