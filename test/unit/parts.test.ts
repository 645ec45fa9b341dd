import { describe, expect, it } from 'vitest';
import { Lifecycle, PartsStopError } from '../../gateway/parts.js';
import { memoryLogger } from '../helpers/env.js';

describe('gateway lifecycle', () => {
  it('stops parts last started first, every one even when some throw, and names the failures', async () => {
    const { log, lines } = memoryLogger('debug');
    const parts = new Lifecycle(log);
    const stopped: string[] = [];
    for (const name of ['store', 'pool', 'broker', 'serial', 'api'])
      parts.add(name, name, async (n) => {
        stopped.push(n);
        if (n === 'serial' || n === 'api') throw new Error(`${n} is stuck`);
      });
    const err = await parts.stop().catch((e: unknown) => e);
    expect(stopped).toEqual(['api', 'serial', 'broker', 'pool', 'store']);
    expect(err).toBeInstanceOf(PartsStopError);
    expect((err as PartsStopError).code).toBe('PARTS_STOP_FAILED');
    expect((err as PartsStopError).parts).toEqual(['api', 'serial']);
    expect((err as PartsStopError).errors.map((e: Error) => e.message)).toEqual(['api is stuck', 'serial is stuck']);
    const failures = lines.filter((l) => l.level === 50);
    expect(failures.map((l) => [l.part, l.msg])).toEqual([
      ['api', 'stopping api failed'],
      ['serial', 'stopping serial failed'],
    ]);
    expect(lines.filter((l) => l.level === 20).map((l) => l.part)).toEqual(['broker', 'pool', 'store']);
    // Everything was stopped once: a second stop has nothing left and succeeds.
    await parts.stop();
    expect(stopped).toHaveLength(5);
    expect(parts.names).toEqual([]);
  });

  it('a synchronous throw is caught like a rejected promise', async () => {
    const parts = new Lifecycle(memoryLogger().log);
    let storeClosed = false;
    parts.add('store', null, () => {
      storeClosed = true;
    });
    parts.add('timer', null, () => {
      throw new Error('boom');
    });
    await expect(parts.stop()).rejects.toThrow('stopping failed for timer');
    expect(storeClosed).toBe(true);
  });
});
