/**
 * The alert manager's state across restarts (`<dataDir>/alerts.json`): the conditions raised,
 * the resolutions not yet delivered, and what each notifier was last told. Without it a
 * restart re-sends every alert that still holds (its firing looks new) and never sends the
 * resolution of one raised before it. Written whole (temp file, fsync, rename: never torn)
 * when it changes; a file that does not parse is ignored (logged), never fatal: the worst
 * case is the behaviour without it.
 */
import { readFileSync } from 'node:fs';
import { writeFileWhole } from '../store/whole-file.js';

export interface Condition {
  readonly kind: string;
  readonly message: string;
  readonly detail?: Record<string, unknown>;
  readonly since: number;
  /** One-shot: sent once, never resolved. */
  readonly once?: boolean;
}

export interface Notified {
  state: 'firing' | 'resolved';
  at: number;
  /** The condition's `since` this state was sent for (a new firing has a new since). */
  since: number;
}

export interface AlertSnapshot {
  readonly active: [string, Condition][];
  readonly cleared: [string, Condition][];
  /** Per notifier name, per key. */
  readonly told: [string, [string, Notified][]][];
}

const VERSION = 1;
/** Keys kept in the file at most (the manager forgets settled keys; this only bounds a bad file). */
const MAX_KEYS = 10_000;

const isCondition = (c: unknown): c is Condition => {
  const x = c as Condition;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.kind === 'string' &&
    typeof x.message === 'string' &&
    Number.isFinite(x.since) &&
    (x.once === undefined || typeof x.once === 'boolean') &&
    (x.detail === undefined || (typeof x.detail === 'object' && x.detail !== null))
  );
};
const isNotified = (n: unknown): n is Notified => {
  const x = n as Notified;
  return (
    typeof x === 'object' &&
    x !== null &&
    (x.state === 'firing' || x.state === 'resolved') &&
    Number.isFinite(x.at) &&
    Number.isFinite(x.since)
  );
};
const pairs = <T>(v: unknown, ok: (x: unknown) => x is T): [string, T][] | undefined =>
  Array.isArray(v) &&
  v.length <= MAX_KEYS &&
  v.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && ok(p[1]))
    ? (v as [string, T][])
    : undefined;

export class AlertStateFile {
  private last = '';

  constructor(private readonly file: string) {}

  /** The saved state; undefined when there is none; throws with the reason when it is unreadable. */
  load(): AlertSnapshot | undefined {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const raw = JSON.parse(text) as { v?: unknown; active?: unknown; cleared?: unknown; told?: unknown };
    if (raw.v !== VERSION) throw new Error(`unknown version ${String(raw.v)}`);
    const active = pairs(raw.active, isCondition);
    const cleared = pairs(raw.cleared, isCondition);
    const told = Array.isArray(raw.told)
      ? (raw.told as unknown[]).map((e) =>
          Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' ? pairs(e[1], isNotified) && e : undefined,
        )
      : undefined;
    if (!active || !cleared || !told || told.some((t) => !t)) throw new Error('malformed');
    this.last = text;
    return { active, cleared, told: told as [string, [string, Notified][]][] };
  }

  /** Writes the state if it changed since the last write. */
  save(s: AlertSnapshot): void {
    const text = JSON.stringify({ v: VERSION, ...s });
    if (text === this.last) return;
    writeFileWhole(this.file, text, { mode: 0o600 });
    this.last = text;
  }
}
