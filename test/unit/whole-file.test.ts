/** writeFileWhole (gateway/store/whole-file.ts): the file appears whole or not at all, and no temp file stays behind. */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileWhole } from '../../gateway/store/whole-file.js';
import { tempDir } from '../helpers/env.js';

describe('writeFileWhole', () => {
  let tmp: ReturnType<typeof tempDir>;
  afterEach(() => tmp.cleanup());

  it('writes the bytes with the mode, and replaces an existing file unless exclusive', () => {
    tmp = tempDir();
    const file = join(tmp.dir, 'key');
    writeFileWhole(file, 'one\n', { mode: 0o600 });
    expect(readFileSync(file, 'utf8')).toBe('one\n');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    writeFileWhole(file, new Uint8Array([116, 119, 111]), { mode: 0o600 });
    expect(readFileSync(file, 'utf8')).toBe('two');
    expect(() => writeFileWhole(file, 'three', { mode: 0o600, exclusive: true })).toThrow(/EEXIST/);
    expect(readFileSync(file, 'utf8')).toBe('two');
    expect(readdirSync(tmp.dir)).toEqual(['key']);
  });

  it('leaves nothing when the write fails', () => {
    tmp = tempDir();
    writeFileSync(join(tmp.dir, 'not-a-dir'), '');
    expect(() => writeFileWhole(join(tmp.dir, 'not-a-dir', 'key'), 'x', { mode: 0o600 })).toThrow(/ENOTDIR/);
    expect(readdirSync(tmp.dir)).toEqual(['not-a-dir']);
  });
});
