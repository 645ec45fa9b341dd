/**
 * Durations as people write them in rule files, the config and the policy file: a number and a
 * unit, `250ms`, `5s`, `1.5m`, `2h`, `30d`, `2w`, `1y` (365 days), or `forever`.
 * A bare number (a YAML number, or digits alone) is seconds, as in systemd.time(7).
 */
const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
};
const DURATION = /^(\d{1,15}(?:\.\d{1,6})?)\s*(ms|s|m|h|d|w|y)?$/;
const MAX_TEXT = 32;

/** Milliseconds (whole, ≥ 0), Infinity for `forever`, undefined when `v` is not a duration. */
export function parseDuration(v: unknown): number | undefined {
  let ms: number;
  if (typeof v === 'number') ms = Math.round(v * 1000);
  else if (typeof v !== 'string' || v.length > MAX_TEXT) return undefined;
  else if (v.trim() === 'forever') return Infinity;
  else {
    const m = DURATION.exec(v.trim());
    if (!m) return undefined;
    ms = Math.round(Number(m[1]) * UNIT_MS[m[2] ?? 's']!);
  }
  return Number.isSafeInteger(ms) && ms >= 0 ? ms : undefined;
}
