/**
 * Sync under disk-full (found by the fault campaign, test/chaos): a gateway whose disk fills
 * while it applies a sibling's blocks, and gets space back mid-exchange, must not keep a
 * block above a hole in its chain (a `missing-prev` that no later sync would fill, the
 * stream's head already matching the sibling's). The next exchange brings what failed and
 * the log reopened from disk is whole: every frame, no audit fault, equal heads.
 * Real 2 MiB tmpfs (root, as CI runs), the scenario in a child process (sync-disk-full.child.ts).
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'outpost-sync-full-'));
const bDir = join(dir, 'b');
let mounted = false;
try {
  mkdirSync(bDir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', bDir], { stdio: 'ignore' });
  mounted = true;
} catch {
  if (process.env.CI) throw new Error('CI must be able to mount a tmpfs for the sync disk-full test (run as root)');
}

describe.runIf(mounted)('sync into a gateway whose disk fills and frees mid-exchange', () => {
  afterAll(() => {
    if (mounted) execFileSync('umount', ['-l', bDir]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves no hole: what failed to commit is forgotten and comes back with the next exchange (gateway/log: conditional apply)', async () => {
    const child = new URL('./sync-disk-full.child.ts', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', child, bDir], { maxBuffer: 1 << 20 });
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as {
      commitFailures: number;
      second: { applied: number };
      faults: Record<string, number>;
      frames: number;
      equal: boolean;
      expected: number;
    };
    expect(r.commitFailures).toBeGreaterThan(0); // the disk did fill during the first exchange
    expect(r.second.applied).toBeGreaterThan(0); // what did not land was asked for again
    expect(r.faults).toEqual({});
    expect(r.frames).toBe(r.expected);
    expect(r.equal).toBe(true);
  }, 90_000);
});
