/**
 * The quick fault campaign in the suite (issue 10, "must show"): 3 gateway processes, a
 * Mosquitto, sibling links through cuttable proxies, MQTT and serial (pty) devices, and
 * ~40 s of seeded faults (SIGKILL + restart, clock jumps, broker restarts, link cuts, serial
 * noise and unplugs, disk-full, device clock jumps and reboots), then a heal. Fails on any
 * frame a device saw acked that a gateway lacks, any duplicate, any crash or unhandled
 * rejection, an audit fault or unequal heads. The seed is fixed and printed; CHAOS_SEED=N
 * runs another (CHAOS_SEED=random: a fresh one).
 * The long version is `npm run chaos -- --duration 300`.
 */
import { describe, expect, it } from 'vitest';
import { needs } from '../helpers/system-tools.js';
import { formatReport, runCampaign } from './campaign.js';

// Without socat or mosquitto this is skipped (in CI it fails); CI also runs as root for the disk-full fault.
/** A seed whose 40 s schedule injects a SIGKILL, broker restarts, a sibling cut, serial noise and unplugs, device clock jumps and disk-full. */
const QUICK_SEED = 132777681;

describe('chaos: quick fault campaign', needs('socat', 'mosquitto'), () => {
  it('loses nothing, duplicates nothing, crashes nothing', async () => {
    // A fixed seed in the suite, so a red run replays exactly (timing still varies); random
    // seeds are the long campaign's job (`npm run chaos`), and CHAOS_SEED=random picks one here.
    const env = process.env.CHAOS_SEED;
    const seed =
      env === 'random' ? Math.floor(Math.random() * 2 ** 32) : env !== undefined ? Number(env) >>> 0 : QUICK_SEED;
    console.log(`chaos seed ${seed} (replay: CHAOS_SEED=${seed} npx vitest run test/chaos)`);
    const report = await runCampaign({
      seed,
      durationMs: 40_000,
      requireDisk: process.env.CI !== undefined,
      settleMs: 60_000,
    });
    const text = formatReport(report);
    console.log([...report.timeline, text].join('\n'));
    expect(report.verdict?.lost ?? ['no verdict']).toEqual([]);
    expect(report.verdict?.duplicates).toEqual([]);
    expect(report.crashes).toEqual([]);
    expect(report.alarms).toEqual([]);
    expect(report.ok, text).toBe(true);
  }, 240_000);
});
