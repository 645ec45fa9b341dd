/**
 * The replay memory's config: its bounds are validated, and the key it replaced
 * (`ingest.replayWindow`) still loads so an older config file keeps working (the gateway warns
 * at start that it is ignored).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, validateConfig } from '../../gateway/config.js';
import { DEFAULT_REPLAY_LIMITS } from '../../gateway/ingest/replay-window.js';

describe('ingest replay config', () => {
  it('defaults to the documented bounds', () => {
    const c = validateConfig({});
    expect([c.ingest.replayBoots, c.ingest.replayRanges]).toEqual([
      DEFAULT_REPLAY_LIMITS.boots,
      DEFAULT_REPLAY_LIMITS.ranges,
    ]);
  });

  it('an older file with ingest.replayWindow still loads', () => {
    const c = validateConfig({ ingest: { replayWindow: 1024 } });
    expect(c.ingest.replayWindow).toBe(1024);
    expect(c.ingest.replayBoots).toBe(DEFAULT_REPLAY_LIMITS.boots);
  });

  it('refuses bounds outside 1..64 boots and 1..4096 ranges, naming the key', () => {
    for (const ingest of [{ replayBoots: 0 }, { replayBoots: 65 }, { replayRanges: 0 }, { replayRanges: 5000 }]) {
      const key = Object.keys(ingest)[0]!;
      expect(() => validateConfig({ ingest })).toThrow(ConfigError);
      expect(() => validateConfig({ ingest })).toThrow(key);
    }
  });
});
