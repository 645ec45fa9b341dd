// Loaded into a measured process with `node --import` (bench/memory.ts): on SIGUSR2 it writes
// the process's memory breakdown as JSON to $OUTPOST_MEMORY_PROBE, so the bench reads the
// main thread's heap next to the RSS the kernel reports. It adds no timer and no work until asked.
// With --expose-gc (bench/firmware-rollout.ts) it first runs a full GC: a settled process to
// measure an idle baseline against.
import { writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

const out = process.env.OUTPOST_MEMORY_PROBE;
if (out) {
  process.on('SIGUSR2', () => {
    globalThis.gc?.();
    const stats = getHeapSpaceStatistics();
    const spaces = Object.fromEntries(stats.map((s) => [s.space_name, s.space_used_size]));
    // Committed per space: the young generation (new_space) V8 grew under load and keeps.
    const committed = Object.fromEntries(stats.map((s) => [s.space_name, s.space_size]));
    writeFileSync(out, JSON.stringify({ usage: process.memoryUsage(), spaces, committed }));
  });
}
