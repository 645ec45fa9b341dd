/** Small text helpers of the policy file: glob patterns and durations. */

/** `*` any run, `?` one character, anything else literal; anchored. */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's');
}

const UNITS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
};

/** `30d`, `12h`, `90m`, `3600s`, `2w`, `1y` → ms; `forever` → Infinity; anything else → undefined. */
export function parseDuration(text: string): number | undefined {
  if (text === 'forever') return Infinity;
  const m = /^(\d+)([smhdwy])$/.exec(text.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * UNITS[m[2]!]!;
  return ms > 0 && Number.isSafeInteger(ms) ? ms : undefined;
}
