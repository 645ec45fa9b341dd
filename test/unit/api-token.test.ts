/** The admin token file: created once with mode 0600, reused, repaired; the config's token wins; bearer check. */
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkBearer, loadOrCreateToken } from '../../gateway/api/token.js';
import { tempDir } from '../helpers/env.js';

describe('admin token', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('[create+reuse] is generated once (0600) and read back on the next start', () => {
    const a = loadOrCreateToken(tmp.dir);
    expect(a).toMatchObject({ created: true, file: join(tmp.dir, 'api-token') });
    expect(statSync(a.file!).mode & 0o777).toBe(0o600);
    const b = loadOrCreateToken(tmp.dir);
    expect(b).toEqual({ token: a.token, file: a.file, created: false });
  });

  it('[permissions] a token file others can read is tightened back to 0600', () => {
    const file = join(tmp.dir, 'api-token');
    chmodSync(file, 0o644);
    loadOrCreateToken(tmp.dir);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('[repair] a truncated token file is replaced', () => {
    writeFileSync(join(tmp.dir, 'api-token'), 'short\n');
    const t = loadOrCreateToken(tmp.dir);
    expect(t.created).toBe(true);
    expect(readFileSync(t.file!, 'utf8').trim()).toBe(t.token);
    expect(t.token.length).toBeGreaterThanOrEqual(43);
  });

  it('[config] a configured token is used as is and no file is written', () => {
    const other = tempDir();
    expect(loadOrCreateToken(other.dir, 'configured-token-1234')).toEqual({
      token: 'configured-token-1234',
      created: false,
    });
    other.cleanup();
  });

  it('[bearer] only an exact "Bearer <token>" matches', () => {
    const t = 'abcdefghijklmnop';
    expect(checkBearer(`Bearer ${t}`, t)).toBe(true);
    for (const h of [
      undefined,
      '',
      t,
      `bearer ${t}`,
      `Bearer  ${t}`,
      `Bearer ${t}x`,
      `Bearer ${t.slice(1)}`,
      `Basic ${t}`,
      `Bearer ${t} extra`,
    ])
      expect(checkBearer(h, t), String(h)).toBe(false);
  });
});
