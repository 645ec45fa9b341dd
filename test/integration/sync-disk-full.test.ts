/**
 * Sync under disk-full (found by the fault campaign, test/chaos): a gateway whose disk fills
 * while it applies a sibling's blocks, and gets space back mid-exchange, must not keep a
 * block above a hole in its chain (a `missing-prev` that no later sync would fill, the
 * stream's head already matching the sibling's). The next exchange brings what failed and
 * the log reopened from disk is whole: every frame, no audit fault, equal heads.
 * Real 1 MiB tmpfs (root, as CI runs), the scenario in a child process (sync-disk-full.child.ts).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { mountTmpfs } from '../helpers/tmpfs.js';

const disk = mountTmpfs('outpost-sync-full-', 'b', '1m', 'the sync disk-full test');
const { path: bDir, mounted } = disk;

describe.runIf(mounted)('sync into a gateway whose disk fills and frees mid-exchange', () => {
  afterAll(() => disk.remove());

  it('leaves no hole: what failed to commit is forgotten and comes back with the next exchange (gateway/log: conditional apply)', async () => {
    const child = new URL('./sync-disk-full.child.ts', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', child, bDir], {
      maxBuffer: 1 << 20,
    });
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
