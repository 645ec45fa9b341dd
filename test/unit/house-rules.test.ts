/**
 * The house rules check themselves: `npm test` starts with `biome check`, and this runs that
 * check, with the repository's own biome.json, on fixtures that break the rules
 * (test/fixtures/lint, laid out like the repository's folders). The main lint run excludes the
 * fixture folder, so here the fixtures are copied beside the config into a temp dir and checked there.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
const biome = join(root, 'node_modules/.bin/biome');

interface Diagnostic {
  readonly category: string;
  readonly location: { readonly path: string };
}

describe('house rules (biome.json) on deliberately bad code', () => {
  let dir: string;
  let exitCode: number | null;
  let byFile: Map<string, string[]>;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'house-rules-'));
    cpSync(join(root, 'test/fixtures/lint'), dir, { recursive: true });
    cpSync(join(root, 'biome.json'), join(dir, 'biome.json'));
    // The temp dir is no git checkout, so the config's .gitignore lookup is switched off.
    const run = spawnSync(biome, ['check', '--reporter=json', '--vcs-enabled=false', '.'], {
      cwd: dir,
      encoding: 'utf8',
    });
    exitCode = run.status;
    const report = JSON.parse(run.stdout) as { diagnostics: Diagnostic[] };
    byFile = new Map();
    for (const d of report.diagnostics)
      byFile.set(d.location.path, [...(byFile.get(d.location.path) ?? []), d.category]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('fails the check (so npm test fails)', () => {
    expect(exitCode).not.toBe(0);
  });

  it('protocols/ importing gateway/ is an error', () => {
    expect(byFile.get('protocols/imports-gateway.ts')).toEqual(['lint/style/noRestrictedImports']);
  });

  it('rules/ and firmware-sim/ importing gateway/ are errors', () => {
    expect(byFile.get('rules/imports-gateway.ts')).toEqual(['lint/style/noRestrictedImports']);
    expect(byFile.get('firmware-sim/imports-gateway.ts')).toEqual(['lint/style/noRestrictedImports']);
  });

  it('a floating promise is an error', () => {
    expect(byFile.get('rules/floating-promise.ts')).toEqual(['lint/nursery/noFloatingPromises']);
  });

  it('the same code done right passes: an import within protocols/, an awaited promise, gateway/ itself', () => {
    expect(byFile.get('protocols/clean.ts')).toBeUndefined();
    expect(byFile.get('rules/awaited-promise.ts')).toBeUndefined();
    expect(byFile.get('gateway/part.ts')).toBeUndefined();
    expect([...byFile.keys()].sort()).toEqual([
      'firmware-sim/imports-gateway.ts',
      'protocols/imports-gateway.ts',
      'rules/floating-promise.ts',
      'rules/imports-gateway.ts',
    ]);
  });
});
