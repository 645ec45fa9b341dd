/**
 * Fleet manifest: round trip, 0600 files, public view without secrets, and
 * validation that never throws and names the offending field.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parsePublicKey } from '../../protocols/index.js';
import { publicKeyFromSeed, seedFromHex } from '../../firmware-sim/crypto.js';
import {
  formatManifest,
  generateManifest,
  ManifestError,
  parseManifest,
  publicView,
  readManifest,
  validateManifest,
  writeManifest,
} from '../../firmware-sim/manifest.js';

const base = generateManifest({ devices: 3, prefix: 'sim', site: 'site-a', model: ['env-1', 'door-1'] });
const clone = (): { version: number; devices: Record<string, unknown>[] } => JSON.parse(JSON.stringify(base));

describe('manifest', () => {
  it('generates ids, models and matching key pairs, and round-trips through JSON', () => {
    expect(base.devices.map((d) => [d.id, d.model, d.site])).toEqual([
      ['sim-0001', 'env-1', 'site-a'],
      ['sim-0002', 'door-1', 'site-a'],
      ['sim-0003', 'env-1', 'site-a'],
    ]);
    for (const d of base.devices) {
      const pub = parsePublicKey(d.publicKey);
      expect(pub.ok && Buffer.from(pub.value).equals(Buffer.from(publicKeyFromSeed(seedFromHex(d.secretKey)!)))).toBe(
        true,
      );
    }
    expect(parseManifest(formatManifest(base))).toEqual(base);
  });

  it('writes files with mode 0600 and reads them back; the public view has no secrets', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fwsim-manifest-'));
    try {
      const file = join(dir, 'fleet.json');
      writeFileSync(file, 'old', { mode: 0o644 });
      writeManifest(file, base);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(readManifest(file)).toEqual(base);
      const view = publicView(base);
      expect(JSON.stringify(view)).not.toContain('secretKey');
      expect(view.devices[1]).toEqual({
        id: 'sim-0002',
        model: 'door-1',
        site: 'site-a',
        publicKey: base.devices[1]!.publicKey,
      });
      writeFileSync(file, '{"version":1,"devices":[{"id":"x"}]}');
      expect(() => readManifest(file)).toThrow(/devices\[0\]\.model.*fleet\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the field for each kind of mistake', () => {
    const cases: Array<[(m: ReturnType<typeof clone>) => void, string, RegExp?]> = [
      [(m) => (m.version = 2), 'version'],
      [(m) => ((m as { devices: unknown }).devices = {}), 'devices'],
      [(m) => (m.devices[1] = 7 as never), 'devices[1]'],
      [(m) => (m.devices[2]!.id = 'has space'), 'devices[2].id'],
      [(m) => (m.devices[2]!.id = 'sim-0001'), 'devices[2].id', /duplicate/],
      [(m) => (m.devices[0]!.model = 'toaster-9'), 'devices[0].model'],
      [(m) => delete m.devices[0]!.site, 'devices[0].site'],
      [(m) => (m.devices[1]!.publicKey = 'did:key:zBogus'), 'devices[1].publicKey'],
      [(m) => (m.devices[1]!.publicKey = m.devices[0]!.publicKey), 'devices[1].publicKey', /does not match/],
      [(m) => (m.devices[0]!.secretKey = 'abcd'), 'devices[0].secretKey'],
    ];
    for (const [mutate, field, message] of cases) {
      const m = clone();
      mutate(m);
      const r = validateManifest(m);
      expect(r.ok).toBe(false);
      if (r.ok) continue;
      expect(r.error.field).toBe(field);
      expect(r.error.message.startsWith(`${field}: `)).toBe(true);
      if (message) expect(r.error.message).toMatch(message);
    }
    expect(() => parseManifest('{')).toThrow(ManifestError);
  });

  it('never throws on arbitrary JSON and always names a field when it rejects', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue(),
          fc.record({ version: fc.constantFrom(1, 2), devices: fc.array(fc.jsonValue(), { maxLength: 4 }) }),
        ),
        (v) => {
          const r = validateManifest(v);
          // Random JSON can only be valid as an empty fleet (it cannot invent matching key pairs).
          return r.ok
            ? r.value.devices.length === 0
            : /^(manifest|version|devices(\[\d+\](\.\w+)?)?)$/.test(r.error.field);
        },
      ),
    );
  });

  it('rejects any one corrupted field of any device, naming exactly that field', () => {
    // Values invalid for every field: non-strings, and strings no id, model, did:key or hex seed can be.
    const bad = fc.oneof(
      fc.constant(null),
      fc.integer(),
      fc.boolean(),
      fc.array(fc.string(), { maxLength: 2 }),
      fc.string().map((s) => `${s} !`),
    );
    fc.assert(
      fc.property(
        fc.nat(2),
        fc.constantFrom('id', 'model', 'site', 'publicKey', 'secretKey'),
        bad,
        (i, field, value) => {
          const m = clone();
          m.devices[i]![field] = value;
          const r = validateManifest(m);
          return !r.ok && r.error.field === `devices[${i}].${field}`;
        },
      ),
    );
  });
});
