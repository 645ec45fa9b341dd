/** firmware-sim flag parsing: defaults, and errors that name the flag. */
import { describe, expect, it } from 'vitest';
import { parseCli, UsageError } from '../../firmware-sim/cli.js';

describe('firmware-sim CLI parsing', () => {
  it('has sensible defaults', () => {
    expect(parseCli([])).toEqual({ cmd: 'help' });
    expect(parseCli(['keygen'])).toEqual({ cmd: 'keygen', devices: 1, prefix: 'sim', site: 'site-1', model: 'env-1' });
    expect(parseCli(['fleet', '--keys', 'k.json', '--rate', '2.5', '--duration', '10', '--state', 's'])).toMatchObject({
      cmd: 'fleet',
      keys: 'k.json',
      rateHz: 2.5,
      durationS: 10,
      state: 's',
      broker: 'mqtt://127.0.0.1:1883',
      signer: 'noble',
      statusS: 5,
    });
    expect(parseCli(['fleet', '--help'])).toEqual({ cmd: 'help' });
  });

  it.each([
    [['keygen', '--devices', '0'], '--devices'],
    [['keygen', '--devices', '1e3'], '--devices'],
    [['keygen', '--model', 'toaster'], '--model'],
    [['keygen', '--prefix', 'a b'], '--prefix'],
    [['keygen', '--bogus'], '--bogus'],
    [['keygen', '--devices'], '--devices'],
    [['fleet', '--rate', '0'], '--rate'],
    [['fleet', '--rate', 'fast'], '--rate'],
    [['fleet', '--broker', 'localhost:1883'], '--broker'],
    [['fleet', '--duration', '-1'], '--duration'],
    [['fleet', '--signer', 'openssl'], '--signer'],
    [['fleet', '--keys', 'a.json', '--devices', '3'], '--keys'],
    [['launch'], 'launch'],
  ])('%j is rejected naming %s', (argv, flag) => {
    expect(() => parseCli(argv)).toThrow(UsageError);
    expect(() => parseCli(argv)).toThrow(flag);
  });
});
