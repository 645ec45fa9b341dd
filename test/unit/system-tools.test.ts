/**
 * The system-tools table, the install script and the end-of-run skip report agree: every
 * package a test's tool names is one scripts/setup-system.sh installs, and the report
 * says one line per missing tool (test/e2e/fresh-clone.test.ts sees it count real skips).
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { skipReportLines } from '../helpers/skip-report.js';
import { onPath, SYSTEM_TOOLS } from '../helpers/system-tools.js';

describe('system tools', () => {
  it('scripts/setup-system.sh installs every package the tools table names', () => {
    const script = execFileSync('bash', ['scripts/setup-system.sh', '--list'], { encoding: 'utf8' }).split('\n');
    for (const tool of Object.values(SYSTEM_TOOLS))
      for (const deb of tool.deb.split(' ')) expect(script, `${deb} missing from setup-system.sh`).toContain(deb);
  });

  it('onPath finds an executable only on the given PATH', () => {
    expect(onPath('node', process.env.PATH)).toBeDefined();
    expect(onPath('node', '/nonexistent')).toBeUndefined();
  });

  it('the skip report says one line per tool with its install hint and count, then the setup command', () => {
    const lines = skipReportLines(
      new Map([
        ['mosquitto', 3],
        ['chromium', 1],
      ]),
    );
    expect(lines).toEqual([
      'mosquitto: not installed (sudo apt-get install mosquitto) — 3 tests skipped',
      'chromium: not installed (sudo apt-get install chromium) — 1 test skipped',
      'all of them: npm run setup:system (Debian, Raspberry Pi OS)',
    ]);
    expect(skipReportLines(new Map())).toEqual([]);
  });
});
