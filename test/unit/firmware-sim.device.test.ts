/**
 * VirtualDevice: boot/seq survive reboots through the JSON-file store, the
 * unacked buffer is bounded and ordered, every frame verifies under node:crypto
 * (an independent Ed25519 implementation from the noble signer), and sensor
 * readings stay physically plausible.
 */
import { createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  decodeBody,
  decodeSign1,
  kidToDeviceId,
  type ReadingBody,
  resolvePack,
  type ResolvedRecord,
  sigStructure,
} from '../../protocols/index.js';
import { createSigner } from '../../firmware-sim/crypto.js';
import { VirtualDevice } from '../../firmware-sim/device.js';
import { forgedFrame, garbage, replayFrame, tamperedFrame, unknownDeviceFrame } from '../../firmware-sim/faults.js';
import { type DeviceModelName, MODEL_NAMES, SensorSuite } from '../../firmware-sim/sensors.js';
import { JsonFileStateStore, MemoryStateStore } from '../../firmware-sim/state.js';

const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const seedOf = (n: number): Uint8Array => new Uint8Array(32).fill(n);
const T0 = Date.UTC(2026, 0, 15, 8, 0, 0);

function verifyFrame(bytes: Uint8Array, pub: Uint8Array): { ok: boolean; id?: string; body?: ReadingBody } {
  const s = decodeSign1(bytes);
  if (!s.ok) return { ok: false };
  const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, pub]), format: 'der', type: 'spki' });
  const ok = verify(null, sigStructure(s.value.protectedBytes, s.value.payload), key, s.value.signature);
  const b = decodeBody(s.value.payload);
  return { ok, id: kidToDeviceId(s.value.kid), ...(b.ok && b.value.type === 'reading' && { body: b.value }) };
}

function device(id: string, opts: Partial<ConstructorParameters<typeof VirtualDevice>[0]> = {}): VirtualDevice {
  return new VirtualDevice({ id, seed: seedOf(id.length), model: 'env-1', powerOnMs: T0, ...opts });
}

describe('boot and seq counters', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fwsim-state-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('persist across reboots and power cycles through the JSON-file store', () => {
    const store = new JsonFileStateStore(dir);
    const a = device('dev-a', { store });
    expect([a.boot, a.seq]).toEqual([1, 0]);
    expect([0, 1, 2].map(() => a.nextFrame(T0)).map((f) => [f.boot, f.seq])).toEqual([
      [1, 0],
      [1, 1],
      [1, 2],
    ]);
    expect(JSON.parse(readFileSync(join(dir, 'dev-a.json'), 'utf8'))).toEqual({ boot: 1, seq: 3 });

    a.reboot();
    expect([a.boot, a.seq]).toEqual([2, 0]);
    expect(a.nextFrame(T0)).toMatchObject({ boot: 2, seq: 0 });

    // A new process with the same store: power-on is a boot, so the counter moves on.
    const again = device('dev-a', { store: new JsonFileStateStore(dir) });
    expect([again.boot, again.seq]).toEqual([3, 0]);
    expect(device('dev-b', { store }).boot).toBe(1); // independent per device
    expect(readdirSync(dir).sort()).toEqual(['dev-a.json', 'dev-b.json']); // no temp files left behind
  });

  it('refuses a corrupt state file with a clear error instead of reusing counters', () => {
    writeFileSync(join(dir, 'dev-c.json'), '{"boot": "x"}');
    expect(() => device('dev-c', { store: new JsonFileStateStore(dir) })).toThrow(/dev-c\.json.*boot/);
    writeFileSync(join(dir, 'dev-c.json'), 'not json');
    expect(() => device('dev-c', { store: new JsonFileStateStore(dir) })).toThrow(/not valid JSON/);
  });

  it('never repeats (boot, seq), whatever the interleaving of frames and reboots', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('frame', 'frame', 'frame', 'reboot', 'restart'), { maxLength: 60 }),
        (ops) => {
          const store = new MemoryStateStore();
          let d = device('dev-p', { store });
          const seen = new Set<string>();
          for (const op of ops) {
            if (op === 'reboot') d.reboot();
            else if (op === 'restart') d = device('dev-p', { store });
            else {
              const f = d.nextFrame(T0);
              const k = `${f.boot}:${f.seq}`;
              if (seen.has(k)) return false;
              seen.add(k);
            }
          }
          return true;
        },
      ),
    );
  });
});

describe('unacked buffer', () => {
  it('keeps frames in order, acks by (boot, seq), and drops the oldest when full', () => {
    const d = device('dev-buf', { bufferCapacity: 5 });
    const frames = Array.from({ length: 8 }, (_, i) => d.nextFrame(T0 + i * 1000));
    expect(d.pending().map((f) => f.seq)).toEqual([3, 4, 5, 6, 7]);
    expect(d.dropped).toBe(3);
    expect(d.pending()[0]!.bytes).toBe(frames[3]!.bytes);

    expect(d.ack(1, 5)).toBe(true);
    expect(d.ack(1, 5)).toBe(false); // already acked
    expect(d.ack(1, 0)).toBe(false); // dropped earlier
    expect(d.ack(9, 3)).toBe(false); // wrong boot
    expect(d.pending().map((f) => f.seq)).toEqual([3, 4, 6, 7]);

    d.reboot(); // frames kept in flash survive the reset
    d.nextFrame(T0);
    expect(d.pending().map((f) => `${f.boot}:${f.seq}`)).toEqual(['1:3', '1:4', '1:6', '1:7', '2:0']);
    expect(d.recentlyAcked().map((f) => f.seq)).toEqual([5]);
  });

  it('holds generated = acked + pending + dropped with at most `capacity` pending (random ops)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.oneof(fc.constant(-1), fc.constant(-2), fc.nat(20)), { maxLength: 80 }),
        (cap, ops) => {
          const d = device('dev-q', { bufferCapacity: cap });
          let acked = 0;
          const order: string[] = [];
          for (const op of ops) {
            if (op === -1) d.reboot();
            else if (op === -2 || d.pendingCount === 0) {
              const f = d.nextFrame(T0);
              order.push(`${f.boot}:${f.seq}`);
            } else {
              const p = d.pending();
              const f = p[op % p.length]!;
              if (d.ack(f.boot, f.seq)) acked++;
            }
            const keys = d.pending().map((f) => `${f.boot}:${f.seq}`);
            if (keys.length > cap) return false;
            // Pending frames keep generation order.
            const idx = keys.map((k) => order.indexOf(k));
            if (idx.some((v, i) => i > 0 && v <= idx[i - 1]!)) return false;
          }
          return d.generated === acked + d.pendingCount + d.dropped && d.generated === order.length;
        },
      ),
    );
  });
});

describe('frames', () => {
  it.each(MODEL_NAMES)('%s: every frame verifies under node:crypto and carries a valid SenML pack', (model) => {
    const d = device(`dev-${model}`, { model, seed: seedOf(42) });
    for (let i = 0; i < 25; i++) {
      const f = d.nextFrame(T0 + i * 500);
      const v = verifyFrame(f.bytes, d.publicKey);
      expect(v.ok).toBe(true);
      expect(v.id).toBe(d.id);
      expect(v.body).toMatchObject({ type: 'reading', boot: 1, seq: i, time: T0 + i * 500 });
      const resolved = resolvePack(v.body!.records);
      expect(resolved.ok).toBe(true);
      if (!resolved.ok) return;
      for (const r of resolved.value) {
        expect(r.name.startsWith(`${d.id}:`)).toBe(true);
        expect(r.time).toBeCloseTo((T0 + i * 500) / 1000, 3);
      }
    }
    // Another device's key does not verify this device's frames.
    expect(verifyFrame(d.nextFrame(T0).bytes, device('other', { seed: seedOf(43) }).publicKey).ok).toBe(false);
  });

  it('noble and node:crypto signers produce the same (deterministic) Ed25519 signature', () => {
    const msg = new TextEncoder().encode('outpost');
    expect(Buffer.from(createSigner(seedOf(9), 'noble')(msg))).toEqual(
      Buffer.from(createSigner(seedOf(9), 'node')(msg)),
    );
    const a = device('dev-s', { signer: 'noble' }).nextFrame(T0).bytes;
    const b = device('dev-s', { signer: 'node' }).nextFrame(T0).bytes;
    expect(Buffer.from(a)).toEqual(Buffer.from(b));
  });

  it('applies clock drift from power-on and a fixed offset', () => {
    const d = device('dev-clock', { clock: { driftPpm: 100, offsetMs: 5000 } });
    expect(d.deviceTime(T0)).toBe(T0 + 5000);
    expect(d.deviceTime(T0 + 3_600_000)).toBe(T0 + 3_600_000 + 360 + 5000);
    const f = d.nextFrame(T0 + 3_600_000);
    expect(verifyFrame(f.bytes, d.publicKey).body?.time).toBe(T0 + 3_600_000 + 5360);
  });
});

describe('sensors', () => {
  /** One simulated day at one sample a minute. */
  function day(model: DeviceModelName, seed: string): ResolvedRecord[][] {
    const s = new SensorSuite(model, seed);
    const out: ResolvedRecord[][] = [];
    for (let i = 0; i < 1440; i++) {
      const r = resolvePack(s.sample(T0 + i * 60_000, 'x:'));
      if (!r.ok) throw new Error(r.error.message);
      out.push(r.value);
    }
    return out;
  }
  const values = (rows: ResolvedRecord[][], name: string): number[] =>
    rows.map((r) => r.find((x) => x.name === `x:${name}`)!.value!);

  it('gives plausible, noisy values in the right units', () => {
    const env = day('env-1', 'a');
    expect(env[0]!.map((r) => [r.name, r.unit])).toEqual([
      ['x:temp', 'Cel'],
      ['x:hum', '%RH'],
    ]);
    const temp = values(env, 'temp');
    const hum = values(env, 'hum');
    expect(Math.min(...temp)).toBeGreaterThan(5);
    expect(Math.max(...temp)).toBeLessThan(40);
    expect(Math.max(...temp) - Math.min(...temp)).toBeGreaterThan(2); // the daily cycle shows
    expect(hum.every((h) => h >= 0 && h <= 100)).toBe(true);
    expect(new Set(hum).size).toBeGreaterThan(50);

    const vib = values(day('press-vib-1', 'b'), 'vib');
    expect(vib.every((v) => v >= 0 && v < 50)).toBe(true);
    const press = values(day('baro-1', 'c'), 'press');
    expect(press.every((p) => p > 95_000 && p < 107_000)).toBe(true);

    const traffic = day('traffic-1', 'd').map((r) => r[0]!);
    expect(traffic.every((r) => r.unit === 'count' && Number.isInteger(r.value) && r.value! >= 0)).toBe(true);
    const sums = traffic.map((r) => r.sum!);
    expect(sums.every((s, i) => i === 0 || s >= sums[i - 1]!)).toBe(true);
    expect(sums.at(-1)).toBeGreaterThan(1000); // ~0.5 per second over a day

    const door = day('door-1', 'e').map((r) => r[0]!.boolValue);
    expect(door.every((v) => typeof v === 'boolean')).toBe(true);
    expect(door.filter((v, i) => i > 0 && v !== door[i - 1]).length).toBeGreaterThan(10);
  });

  it('is reproducible from its seed and differs between seeds', () => {
    expect(day('env-1', 's1')).toEqual(day('env-1', 's1'));
    expect(values(day('env-1', 's1'), 'temp')).not.toEqual(values(day('env-1', 's2'), 'temp'));
  });
});

describe('fault frames', () => {
  const d = device('dev-f', { seed: seedOf(5) });

  it('forged and tampered frames decode but fail verification; a replay is byte-identical', () => {
    const forged = verifyFrame(forgedFrame('dev-f', { boot: 1, seq: 7 }), d.publicKey);
    expect(forged).toMatchObject({ ok: false, id: 'dev-f', body: { boot: 1, seq: 7 } });

    const genuine = d.nextFrame(T0);
    expect(verifyFrame(genuine.bytes, d.publicKey).ok).toBe(true);
    const tampered = verifyFrame(tamperedFrame(genuine.bytes), d.publicKey);
    expect(tampered).toMatchObject({ ok: false, id: 'dev-f', body: { seq: genuine.seq + 1 } });

    expect(replayFrame(d)).toBeUndefined();
    d.ack(genuine.boot, genuine.seq);
    expect(replayFrame(d)).toEqual(genuine.bytes); // a copy of its bytes (acked-ring.ts)
  });

  it('an unknown device signs correctly for itself; garbage is reproducible and not a frame', () => {
    const u = unknownDeviceFrame();
    expect(verifyFrame(u.bytes, u.publicKey)).toMatchObject({ ok: true, id: u.id });
    expect(Buffer.from(garbage(100, 1))).toEqual(Buffer.from(garbage(100, 1)));
    for (let s = 0; s < 50; s++) expect(decodeSign1(garbage(80, s)).ok).toBe(false);
  });
});
