/**
 * The contract between the rules engine (rules/dsl, rules/engine) and the actuation layer
 * (rules/actuation): a rule turns frames into decisions; actuation carries out the commands
 * and reports the outcome; both are recorded for the audit.
 */

/** A stored frame, named the way the frames view names it. */
export interface FrameRef {
  readonly device: string;
  readonly boot: number;
  readonly seq: number;
}

/** A command a rule wants a device's actuator to carry out. */
export interface CommandIntent {
  readonly device: string;
  readonly actuator: string;
  readonly value: number | boolean | string;
  /** How long the command stays valid after it is issued (becomes the command's expiry). */
  readonly ttlMs: number;
}

/** A device's desired settings (gateway/settings): `[key, value]` sorted by key, keys unique. */
export type SettingsValues = readonly (readonly [string, number | boolean | string])[];

export type Action =
  | { readonly kind: 'command'; readonly command: CommandIntent }
  | { readonly kind: 'publish'; readonly topic: string; readonly payload: string }
  | { readonly kind: 'alert'; readonly message: string }
  | { readonly kind: 'settings'; readonly device: string; readonly values: SettingsValues };

export interface Decision {
  readonly rule: string;
  /** Content hash (or declared version) of the rule definition that decided. */
  readonly ruleVersion: string;
  /** Decision time (virtual clock in a replay, wall clock live), ms since the epoch. */
  readonly at: number;
  /** The frames that caused it. */
  readonly inputs: readonly FrameRef[];
  /** Human-readable why: the condition and the values it saw. */
  readonly reason: string;
  readonly action: Action;
  /** Condition and watchdog rules: which instance went on (`rise`) or off (`fall`); alerts resolve on `fall`. */
  readonly episode?: { readonly key: string; readonly edge: 'rise' | 'fall' };
}

/** Where the engine sends decisions (actuation live, a recorder in a dry run). */
export interface DecisionSink {
  decide(decision: Decision): void;
}
