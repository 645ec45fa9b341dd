/**
 * Test-only hook for the fault campaign (test/chaos): `OUTPOST_CLOCK_OFFSET_MS`, read once
 * at start, shifts the clock ingest stamps receive times with, so a gateway can be
 * restarted with its clock jumped (as a Pi without an RTC boots before NTP fixes it).
 * Unset, empty or not a finite number: the system clock, unchanged.
 */
export function receiveClock(env: NodeJS.ProcessEnv = process.env): () => number {
  const offset = Number(env.OUTPOST_CLOCK_OFFSET_MS ?? '');
  if (!env.OUTPOST_CLOCK_OFFSET_MS || !Number.isFinite(offset) || offset === 0) return Date.now;
  return () => Date.now() + offset;
}
