/**
 * The C update receiver's manifest check against protocols/firmware-manifest.ts, property by
 * property: fast-check builds manifests (valid and broken fields, missing and unknown keys,
 * other signers, flipped bits), the TypeScript side says what firmware-sim's device would
 * answer (verifyManifest, then manifestRefusal for a device `env-1` running 1.2.0, slot 1),
 * and hardware/firmware/build/fw-check (the C receiver under ASan + UBSan) must give the same
 * code for every one.
 */
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519, verifyEd25519 } from '../../gateway/crypto/ed25519.js';
import { manifestRefusal, releaseKeyId, verifyManifest } from '../../protocols/firmware-manifest.js';
import { encodeCbor, encodeSign1, toHex } from '../../protocols/index.js';
import { needs } from '../helpers/system-tools.js';

const run = promisify(execFile);
const FIRMWARE = new URL('../../hardware/firmware', import.meta.url).pathname;
const DEVICE = { model: 'env-1', version: '1.2.0', slot: 1 } as const;
const RELEASE_SEED = Uint8Array.from({ length: 32 }, (_, i) => (i * 5 + 1) & 0xff);
const OTHER_SEED = Uint8Array.from({ length: 32 }, (_, i) => (i * 9 + 2) & 0xff);
const releasePk = publicKeyFromSeed(RELEASE_SEED);
const otherPk = publicKeyFromSeed(OTHER_SEED);

/** What firmware-sim/update.ts reports for an offer of these bytes: "ok" or the code. */
function tsAnswer(bytes: Uint8Array): string {
  const v = verifyManifest(bytes, [releasePk], (k, m, s) => verifyEd25519(k, m, s));
  if (!v.ok) return v.error.code.replace('firmware/', '');
  return manifestRefusal(v.value.manifest, DEVICE)?.code ?? 'ok';
}

const near = fc
  .tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 2 }))
  .map((v) => v.join('.'));
const digest32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
/** Fields a release tool would write (the device may still refuse them: model, versions, slot). */
const sane = fc.tuple(
  fc.constant<unknown>(16),
  fc.oneof({ weight: 8, arbitrary: fc.constant('env-1') }, fc.constantFrom('env-2', 'Env-1', 'e', 'env_1.a')),
  near,
  digest32.map((d) => [-16, d]),
  fc.integer({ min: 1, max: 100_000 }),
  near,
  fc.oneof({ weight: 8, arbitrary: fc.constant(1) }, fc.integer({ min: 0, max: 15 })),
  fc.nat(),
);
const badVersion = fc.oneof(
  fc.tuple(fc.nat(99_999), fc.nat(99_999), fc.nat(99_999)).map((v) => v.join('.')),
  fc.constantFrom('1.02.0', '1.2', '1.2.0.0', '100000.0.0', '', 'a.b.c', '1.2.-1', ' 1.2.0', '01.2.0', '1..0'),
  fc.string({ maxLength: 8 }),
  fc.constant(120),
);
/** Per field, values a release tool would not write. */
const wild = fc.tuple(
  fc.constantFrom<unknown>(17, 0, '16', -16),
  fc.oneof(
    fc.constantFrom('-x', 'env-1 ', '', 'a'.repeat(64), 'a'.repeat(65), 7),
    fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,70}$/),
    fc.string({ maxLength: 6 }),
  ),
  badVersion,
  fc.oneof(
    fc.uint8Array({ minLength: 0, maxLength: 40 }).map((d) => [-16, d]),
    digest32.map((d) => [-44, d]),
    fc.constantFrom<unknown>([-16], [-16, 'x'], 'digest', [16, new Uint8Array(32)]),
    digest32,
  ),
  fc.constantFrom<unknown>(0, 16 * 1024 * 1024, 16 * 1024 * 1024 + 1, 2 ** 32, -1, 1.5, '10'),
  badVersion,
  fc.constantFrom<unknown>(-1, 16, 20, 1.5, 'one'),
  fc.constantFrom<unknown>(2 ** 53 - 1, -5, 2.5, 'now'),
);

/** Mostly null: one case in `1 + w` gets a value. */
const rarely = <T>(arb: fc.Arbitrary<T>, w: number) =>
  fc.oneof({ weight: w, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });

const manifestInput = fc.record({
  fields: sane,
  wild,
  wildAt: rarely(fc.integer({ min: 0, max: 7 }), 2),
  omit: rarely(fc.integer({ min: 0, max: 7 }), 11),
  extra: rarely(fc.constantFrom<[unknown, unknown]>([8, 1], [-1, 0], ['x', 1], [100, 'y']), 11),
  reversed: fc.boolean(),
  signer: fc.constantFrom('release', 'release', 'release', 'release', 'other', 'release-kid-other-key'),
  flip: rarely(fc.record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }), 5),
});

type ManifestInput = typeof manifestInput extends fc.Arbitrary<infer T> ? T : never;

function build(i: ManifestInput) {
  let entries: [unknown, unknown][] = i.fields.map((v, k) => [k, k === i.wildAt ? i.wild[k] : v]);
  if (i.omit !== null) entries = entries.filter(([k]) => k !== i.omit);
  if (i.extra) entries.push(i.extra);
  if (i.reversed) entries.reverse();
  const kidKey = i.signer === 'other' ? otherPk : releasePk;
  const seed = i.signer === 'release' ? RELEASE_SEED : OTHER_SEED;
  const bytes = encodeSign1({ kid: releaseKeyId(kidKey), payload: encodeCbor(new Map(entries)) }, (m) =>
    signEd25519(seed, m),
  );
  if (i.flip) bytes[i.flip.at % bytes.length]! ^= 1 << i.flip.bit;
  return { bytes, flipped: i.flip !== null };
}

function cCheck(manifests: Uint8Array[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      join(FIRMWARE, 'build/fw-check'),
      [toHex(releasePk), DEVICE.model, DEVICE.version, `${DEVICE.slot}`],
      {
        env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1' },
      },
    );
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) =>
      code === 0 ? resolve(out.trim().split('\n')) : reject(new Error(`fw-check ${code}: ${err}`)),
    );
    p.stdin.end(manifests.map(toHex).join('\n') + '\n');
  });
}

describe(
  'C update receiver: manifest answers match protocols/firmware-manifest.ts',
  needs('make', 'cc', 'libsodium'),
  () => {
    beforeAll(async () => {
      await run('make', ['-C', FIRMWARE, '--no-print-directory', 'fw-check'], { timeout: 120_000 });
    }, 120_000);

    it('for 1500 fast-check manifests the C receiver gives the code verifyManifest / manifestRefusal give (an intact envelope) or refuses exactly when they refuse (a flipped bit) (clause: refusal codes matching manifestRefusal)', async () => {
      const cases = fc.sample(manifestInput, { numRuns: 1500, seed: 20261206 }).map(build);
      const got = await cCheck(cases.map((c) => c.bytes));
      expect(got).toHaveLength(cases.length);
      const answers = new Map<string, number>();
      const mismatches: string[] = [];
      cases.forEach((c, i) => {
        const want = tsAnswer(c.bytes);
        answers.set(want, (answers.get(want) ?? 0) + 1);
        const same = c.flipped ? (want === 'ok') === (got[i] === 'ok') : want === got[i];
        if (!same && mismatches.length < 5) mismatches.push(`${toHex(c.bytes)}: TypeScript ${want}, C ${got[i]}`);
      });
      expect(mismatches).toEqual([]);
      console.log(`manifest answers (TypeScript = C): ${JSON.stringify(Object.fromEntries(answers))}`);
      // the sample reaches every answer of the device, not only the easy ones
      for (const code of ['ok', 'wrong-model', 'downgrade', 'too-old', 'wrong-slot', 'unknown-key', 'bad-signature'])
        expect(answers.get(code) ?? 0, code).toBeGreaterThan(5);
      for (const code of ['bad-field', 'bad-digest', 'unknown-field', 'not-manifest'])
        expect(answers.get(code) ?? 0, code).toBeGreaterThan(5);
    }, 60_000);
  },
);
