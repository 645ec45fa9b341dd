/** Memory profiles: what `small` changes, that a value set in the file wins, and the start warning about node's young generation. */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../gateway/config.js';
import { maxInflight, semiSpaceCapMb, verifyWorkers, youngGenerationWarning } from '../../gateway/memory-profile.js';

const config = (gateway: object, ingest: object = {}) => validateConfig({ gateway, ingest });

describe('memory profiles', () => {
  it('standard by default: a verify worker per core, 20 000 frames in flight', () => {
    const cfg = config({});
    expect(cfg.gateway.memory).toBe('standard');
    expect(verifyWorkers(cfg, 4)).toBe(4);
    expect(maxInflight(cfg)).toBe(20_000);
  });

  it('small: one verify worker and 2 000 frames in flight', () => {
    const cfg = config({ memory: 'small' });
    expect(verifyWorkers(cfg, 4)).toBe(1);
    expect(maxInflight(cfg)).toBe(2_000);
  });

  it('a value the file sets wins over either profile', () => {
    expect(verifyWorkers(config({ memory: 'small' }, { verifyWorkers: 3 }), 4)).toBe(3);
    expect(verifyWorkers(config({ memory: 'small' }, { verifyWorkers: 0 }), 4)).toBe(0);
    expect(maxInflight(config({ memory: 'small' }, { maxInflight: 50_000 }))).toBe(50_000);
    expect(maxInflight(config({}, { maxInflight: 10 }))).toBe(10);
  });

  it('reads the semi-space cap from node options and NODE_OPTIONS, the last one winning', () => {
    expect(semiSpaceCapMb([])).toBeUndefined();
    expect(semiSpaceCapMb(['--max-semi-space-size=8', '--heap-growing-percent=20'])).toBe(8);
    expect(semiSpaceCapMb(['--max-semi-space-size', '2'])).toBe(2);
    expect(semiSpaceCapMb(['--max_semi_space_size=4'])).toBe(4);
    expect(semiSpaceCapMb(['--max-semi-space-size=8'], '--max-semi-space-size=2 --inspect')).toBe(2);
    expect(semiSpaceCapMb(['--max-semi-space-size=x'])).toBeUndefined();
  });

  it('warns when small runs without its young-generation cap, and only then', () => {
    const small = config({ memory: 'small' });
    expect(youngGenerationWarning(config({}), [], '')).toBeUndefined();
    expect(youngGenerationWarning(small, ['--max-semi-space-size=2'], '')).toBeUndefined();
    expect(youngGenerationWarning(small, [], '--max-semi-space-size=1')).toBeUndefined();
    expect(youngGenerationWarning(small, ['--max-semi-space-size=8'], '')).toMatch(
      /started with --max-semi-space-size=8; start it with --max-semi-space-size=2/,
    );
    expect(youngGenerationWarning(small, [], '')).toMatch(/V8's default young generation/);
  });
});
