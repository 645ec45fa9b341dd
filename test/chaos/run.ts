/**
 * `npm run chaos [-- --duration 300 | --minutes 30] [--seed N]`: the long fault campaign. The seed comes
 * from --seed, else CHAOS_SEED, else is random; it is printed first so a failure replays.
 * Exit 0 only when nothing was lost, duplicated or crashed.
 */
import { parseArgs } from 'node:util';
import { formatReport, runCampaign } from './campaign.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '180' },
    minutes: { type: 'string' },
    seed: { type: 'string' },
    quick: { type: 'boolean' },
  },
});
const seedText = values.seed ?? process.env.CHAOS_SEED;
const seed = seedText !== undefined ? Number(seedText) >>> 0 : Math.floor(Math.random() * 2 ** 32);
const seconds = values.quick
  ? 45
  : values.minutes !== undefined
    ? Number(values.minutes) * 60
    : Number(values.duration);
if (!Number.isFinite(seconds) || seconds <= 0) {
  const given = values.minutes !== undefined ? `--minutes ${values.minutes}` : `--duration ${values.duration}`;
  console.error(`--duration (seconds) or --minutes must be a positive number, not "${given}"`);
  process.exit(2);
}
console.log(`chaos: seed ${seed}, ${seconds} s of faults`);
const report = await runCampaign({
  seed,
  durationMs: seconds * 1000,
  requireDisk: process.env.CI !== undefined,
  print: (l) => console.log(l),
  settleMs: 120_000,
});
console.log(formatReport(report));
process.exit(report.ok ? 0 : 1);
