/**
 * An in-process gateway with a release key in its policy file, for firmware transfer tests
 * over one transport: `release` signs and queues an image as `gateway firmware add` does,
 * `rollout` queues a rollout of it to some devices (gateway/firmware/inbox.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { validateConfig } from '../../gateway/config.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { queueRelease, queueRollout } from '../../gateway/firmware/inbox.js';
import { Gateway } from '../../gateway/gateway.js';
import { firmwareBody } from '../../protocols/firmware-block.js';
import { encodeManifest } from '../../protocols/firmware-manifest.js';
import { encodeCanonical, publicKeyToDidKey } from '../../protocols/index.js';
import { memoryLogger, waitFor } from './env.js';

/**
 * A device cut mid-transfer at `cutAt` asked to resume from what it held (not from 0), ended
 * confirmed, and its slot 0 holds the image.
 */
export function expectResumedAndConfirmed(
  history: readonly { state: string; reason?: string; offset: number }[],
  cutAt: number,
  slot0: string,
  image: Uint8Array,
): void {
  const resumed = history.filter((h) => h.reason === 'resume' && h.offset > 0);
  expect(resumed.length).toBeGreaterThan(0);
  expect(resumed[0]!.offset).toBeGreaterThanOrEqual(cutAt);
  expect(history.at(-1)).toMatchObject({ state: 'confirmed' });
  expect(readFileSync(slot0).equals(image)).toBe(true);
}

export interface FirmwareGateway {
  readonly gw: Gateway;
  readonly lines: Record<string, unknown>[];
  readonly releasePub: Uint8Array;
  /** Signs and queues an image of `size` random bytes; resolves once the gateway logged it. */
  release(size: number, version?: string): Promise<{ image: Uint8Array; digest: Uint8Array }>;
  rollout(id: string, digest: Uint8Array, devices: string[]): void;
}

export async function startFirmwareGateway(
  dir: string,
  devices: { id: string; seed: Uint8Array }[],
  extra: Record<string, unknown>,
  /** The release key's seed (default a fresh one). */
  releaseSeed: Uint8Array = randomBytes(32),
): Promise<FirmwareGateway> {
  const releasePub = publicKeyFromSeed(releaseSeed);
  const dataDir = join(dir, 'data');
  writeFileSync(join(dir, 'policy.yaml'), `releaseKeys:\n  r: "${publicKeyToDidKey(releasePub)}"\n`);
  const config = validateConfig({
    gateway: { id: 'gw-test', dataDir },
    mqtt: { enabled: false },
    api: { enabled: false },
    simulate: { devices: 0 },
    policy: { file: join(dir, 'policy.yaml') },
    devices: devices.map((d) => ({ id: d.id, publicKey: publicKeyToDidKey(publicKeyFromSeed(d.seed)) })),
    ...extra,
  });
  const { log, lines } = memoryLogger();
  const gw = await Gateway.start(config, {
    logger: log,
    simulate: false,
    firmware: { tickMs: 50 },
  });
  let releases = 0;
  return {
    gw,
    lines,
    releasePub,
    async release(size, version = '1.1.0') {
      const image = randomBytes(size);
      const file = join(dir, `image-${version}.bin`);
      writeFileSync(file, image);
      const digest = new Uint8Array(createHash('sha256').update(image).digest());
      const manifest = encodeManifest(
        { model: 'env-1', version, digest, size, minVersion: '0.0.0', slot: 1, issued: Date.now() },
        releasePub,
        (m) => signEd25519(releaseSeed, m),
      );
      queueRelease(dataDir, manifest, file);
      const want = ++releases;
      await waitFor(() => gw.firmware.store.releases.size === want, 20_000, 'release logged');
      return { image, digest };
    },
    rollout(id, digest, ids) {
      queueRollout(
        dataDir,
        encodeCanonical(
          firmwareBody({
            type: 'rollout',
            id,
            digest,
            devices: ids,
            canary: 0,
            steps: [100],
            haltPercent: 100,
            at: Date.now(),
          }),
        ),
      );
    },
  };
}
