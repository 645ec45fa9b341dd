/** The journal's seal window (`log.sealAfterMs`): a documented default, validated bounds naming the key. */
import { describe, expect, it } from 'vitest';
import { ConfigError, validateConfig } from '../../gateway/config.js';
import { DEFAULT_SEAL_AFTER_MS } from '../../gateway/log/journal.js';

describe('log.sealAfterMs', () => {
  it('defaults to the journal default, and 0 (a block per commit group) is allowed', () => {
    expect(validateConfig({}).log.sealAfterMs).toBe(DEFAULT_SEAL_AFTER_MS);
    expect(validateConfig({ log: { sealAfterMs: 0 } }).log.sealAfterMs).toBe(0);
  });

  it('refuses negative, fractional, over-a-minute and non-number windows, naming the key', () => {
    for (const sealAfterMs of [-1, 1.5, 60_001, '1s']) {
      expect(() => validateConfig({ log: { sealAfterMs } })).toThrow(ConfigError);
      expect(() => validateConfig({ log: { sealAfterMs } })).toThrow('sealAfterMs');
    }
  });
});
