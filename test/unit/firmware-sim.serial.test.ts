/** firmware-sim serial pieces without a tty: the noise injector and `firmware-sim serial` flags. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCli, UsageError } from '../../firmware-sim/cli.js';
import { NoiseInjector, noiseStream } from '../../firmware-sim/noise.js';
import { Deframer, encodeSerialFrame } from '../../protocols/index.js';

const frames = (n: number): Uint8Array[] =>
  Array.from({ length: n }, (_, i) => Uint8Array.from({ length: 150 }, (_, j) => (i * 31 + j * 7) & 0xff));

describe('noise injector (clause: bit flips, dropped and duplicated bytes, truncated frames; seedable)', () => {
  it('is repeatable for a seed and differs between seeds', () => {
    const data = Uint8Array.from({ length: 20_000 }, (_, i) => (i * 13) & 0xff);
    const a = new NoiseInjector({ rate: 0.02, seed: 'x' }).apply(data);
    const b = new NoiseInjector({ rate: 0.02, seed: 'x' }).apply(data);
    const c = new NoiseInjector({ rate: 0.02, seed: 'y' }).apply(data);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(a).equals(Buffer.from(c))).toBe(false);
  });

  it('rate 0 passes bytes through untouched', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500 }), (d) => {
        expect(Buffer.from(new NoiseInjector({ rate: 0 }).apply(d)).equals(Buffer.from(d))).toBe(true);
      }),
    );
  });

  it('produces faults at the configured rate per byte, and every kind with the default weights', () => {
    const data = new Uint8Array(400_000).fill(0x41);
    for (let i = 0; i < data.length; i += 400) data[i] = 0; // delimiters, so truncations end
    // Without truncations (which skip the rest of a frame) every byte is one draw: 4000 ± 63 expected.
    const n = new NoiseInjector({ rate: 0.01, seed: 3, weights: { truncate: 0 } });
    n.apply(data);
    const events = n.stats.flips + n.stats.drops + n.stats.dups;
    expect(events).toBeGreaterThan(3600);
    expect(events).toBeLessThan(4400);
    const all = new NoiseInjector({ rate: 0.01, seed: 3 });
    all.apply(data);
    for (const k of ['flips', 'drops', 'dups', 'truncations'] as const) expect(all.stats[k]).toBeGreaterThan(100);
  });

  it('each kind alone does what it says', () => {
    const d = new Uint8Array(1000).fill(7);
    expect(new NoiseInjector({ rate: 0.1, weights: { flip: 1, drop: 0, dup: 0, truncate: 0 } }).apply(d).length).toBe(
      1000,
    );
    expect(
      new NoiseInjector({ rate: 0.1, weights: { flip: 0, drop: 1, dup: 0, truncate: 0 } }).apply(d).length,
    ).toBeLessThan(1000);
    expect(
      new NoiseInjector({ rate: 0.1, weights: { flip: 0, drop: 0, dup: 1, truncate: 0 } }).apply(d).length,
    ).toBeGreaterThan(1000);
    const t = new NoiseInjector({ rate: 0.5, weights: { flip: 0, drop: 0, dup: 0, truncate: 1 } });
    expect(Array.from(t.apply(Uint8Array.of(1, 2, 3, 4, 0, 5)))).toEqual(expect.arrayContaining([0])); // the delimiter survives
  });

  it('through the deframer: some frames survive 1% noise intact, and nothing unsent appears', () => {
    const sent = frames(300);
    const noisy = new NoiseInjector({ rate: 0.01, seed: 11 }).apply(Buffer.concat(sent.map(encodeSerialFrame)));
    const got = new Deframer().push(noisy);
    const sentHex = new Set(sent.map((f) => Buffer.from(f).toString('hex')));
    expect(got.length).toBeGreaterThan(30);
    expect(got.length).toBeLessThan(300);
    for (const f of got) expect(sentHex.has(Buffer.from(f).toString('hex'))).toBe(true);
  });

  it('works as a stream Transform', async () => {
    const t = noiseStream({ rate: 0 });
    const out: Buffer[] = [];
    t.on('data', (c: Buffer) => out.push(c));
    t.end(Buffer.from('abc'));
    await new Promise((r) => t.on('end', r));
    expect(Buffer.concat(out).toString()).toBe('abc');
  });

  it('refuses rates outside 0..1', () => {
    expect(() => new NoiseInjector({ rate: 2 })).toThrow(RangeError);
  });
});

describe('firmware-sim serial flags (clause: CLI firmware-sim serial --keys --device --port [--noise] [--gateway-key])', () => {
  it('parses the documented flags with defaults', () => {
    const c = parseCli([
      'serial',
      '--keys',
      'k.json',
      '--device',
      'sim-0001',
      '--port',
      '/dev/pts/3',
      '--noise',
      '0.01',
      '--gateway-key',
      '11'.repeat(32),
    ]);
    expect(c).toMatchObject({
      cmd: 'serial',
      keys: 'k.json',
      device: 'sim-0001',
      port: '/dev/pts/3',
      noise: 0.01,
      baud: 115200,
      rateHz: 1,
      resendMs: 1000,
      pace: false,
      signer: 'noble',
    });
    expect((c as { gatewayKey: Uint8Array }).gatewayKey).toHaveLength(32);
    expect(parseCli(['serial', '--help'])).toEqual({ cmd: 'help' });
  });

  it.each([
    [['serial', '--device', 'd', '--port', 'p'], '--keys'],
    [['serial', '--keys', 'k', '--port', 'p'], '--device'],
    [['serial', '--keys', 'k', '--device', 'd'], '--port'],
    [['serial', '--keys', 'k', '--device', 'd', '--port', 'p', '--noise', '1.5'], '--noise'],
    [['serial', '--keys', 'k', '--device', 'd', '--port', 'p', '--baud', 'fast'], '--baud'],
    [['serial', '--keys', 'k', '--device', 'd', '--port', 'p', '--gateway-key', 'abc'], '--gateway-key'],
    [['serial', '--keys', 'k', '--device', 'd', '--port', 'p', '--bogus'], '--bogus'],
  ])('%j is rejected naming %s', (argv, flag) => {
    expect(() => parseCli(argv)).toThrow(UsageError);
    expect(() => parseCli(argv)).toThrow(flag);
  });
});
