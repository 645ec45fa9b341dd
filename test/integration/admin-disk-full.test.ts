/**
 * Administrative writes under the free-space guard, on a real full disk (16 MiB tmpfs, needs
 * root, as CI has): `gateway devices enroll` and `revoke`, `gateway policy grant` and the
 * identity file are refused with a coded error (`disk-low`) and exit 1, nothing of them is
 * written (with the guard off, the identity write meets ENOSPC and leaves no torn file either),
 * and the running gateway (a child process) keeps running, serving MQTT, and takes
 * the same commands once space returns.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/devices.js';
import { readFrames } from '../helpers/frames.js';
import {
  gatewayCli,
  publishFrames,
  startGatewayProcess,
  stopGatewayProcess,
  writeGatewayConfig,
} from '../helpers/process.js';
import { mountTmpfs } from '../helpers/tmpfs.js';

const MiB = 1024 * 1024;
const FLOOR = 4 * MiB;
const disk = mountTmpfs('outpost-admin-full-', 'data', '16m', 'the administrative disk-full test');
const { dir, path: mount, mounted } = disk;
const dataDir = join(mount, 'gw');

const free = (): number => {
  const s = statfsSync(mount);
  return Number(s.bavail) * Number(s.bsize);
};
/** Takes every free byte of the tmpfs with fallocate'd files. */
function fill(): void {
  for (let i = 0; i < 16 && free() > 0; i++) {
    try {
      execFileSync('fallocate', ['-l', String(Math.max(4096, free() - i * 65536)), join(mount, `ballast-${i}`)], {
        stdio: 'ignore',
      });
    } catch {
      // the gateway took pages meanwhile: ask for less
    }
  }
  // The last pages one at a time: even a one-page write must meet ENOSPC.
  for (let j = 0; free() > 0 && j < 4096; j++) {
    try {
      execFileSync('fallocate', ['-l', '4096', join(mount, `ballast-page-${j}`)], { stdio: 'ignore' });
    } catch {
      break;
    }
  }
}
const emptyDisk = () => {
  for (const f of readdirSync(mount)) if (f.startsWith('ballast-')) rmSync(join(mount, f));
};
/** Files of a folder (none when it does not exist). */
const filesIn = (d: string): string[] => (existsSync(d) ? readdirSync(d) : []);

describe.runIf(mounted)('administrative writes on a full disk', () => {
  afterAll(() => disk.remove());

  it('refuses enroll, revoke, a policy grant and a new identity with disk-low, writes nothing, and the gateway keeps serving', {
    timeout: 180_000,
  }, async () => {
    const known = testDevice('press-01');
    const newcomer = testDevice('press-02');
    const adminKey = join(dir, 'admin.key');
    const keygen = await gatewayCli(['policy', 'keygen', '--out', adminKey]);
    expect(keygen.code).toBe(0);
    mkdirSync(join(dir, 'unguarded'));
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(
      policyFile,
      `admins: [ops]\nprincipals:\n  ops: { key: "${keygen.stdout.trim()}", kind: operator }\npolicies:\n  vibration: { reach: site, relations: { owner: [ops] } }\n`,
    );
    const config = writeGatewayConfig(
      dir,
      dataDir,
      [{ id: known.id, publicKey: known.publicKeyHex }],
      [`ingest: { minFreeBytes: ${FLOOR} }`, `policy: { file: ${JSON.stringify(policyFile)} }`],
    );
    const gw = await startGatewayProcess(config);
    const cli = (...args: string[]) => gatewayCli([...args, '--config', config]);
    const listed = async () =>
      (await cli('devices', 'list', '--json')).stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { id: string; revokedAt?: number });
    try {
      await publishFrames(gw.port, known, 1, [0, 1, 2]);
      fill();
      expect(free()).toBeLessThan(FLOOR);

      const enroll = await cli('devices', 'enroll', '--id', newcomer.id, '--key', newcomer.publicKeyHex);
      expect(enroll.code).toBe(1);
      expect(enroll.stderr.trim()).toMatch(
        /^gateway: enrolling device press-02 refused: .* below the floor of 4194304 .*\(disk-low\)/,
      );
      const revoke = await cli('devices', 'revoke', known.id);
      expect(revoke.code).toBe(1);
      expect(revoke.stderr).toMatch(/revoking device press-01 refused: .*\(disk-low\)/);
      const grant = await cli('policy', 'grant', 'ops', 'reader', 'vibration', '--admin-key', adminKey);
      expect(grant.code).toBe(1);
      expect(grant.stderr).toMatch(
        /not queued: queueing the policy grant of reader on vibration refused: .*\(disk-low\)/,
      );
      const fresh = join(mount, 'other-gw');
      const identity = await gatewayCli(['identity', '--data', fresh, '--config', config]);
      expect(identity.code).toBe(1);
      expect(identity.stderr).toMatch(/creating the gateway's identity key refused: .*\(disk-low\)/);
      // With the guard off, the write itself meets ENOSPC: still one clear line, and no torn key left.
      const unguarded = writeGatewayConfig(
        join(dir, 'unguarded'),
        join(mount, 'unguarded-gw'),
        [],
        ['ingest: { minFreeBytes: 0 }'],
      );
      const enospc = await gatewayCli(['identity', '--config', unguarded]);
      expect(enospc.code).toBe(1);
      expect(enospc.stderr).toMatch(/^gateway: no space left on the device \(ENOSPC\)/);
      for (const r of [enroll, revoke, grant, identity, enospc]) expect(r.stderr).not.toMatch(/\n\s+at /); // no stack

      // Nothing written: the registry as it was, no queued op, no identity, no temp file anywhere.
      expect(await listed()).toEqual([expect.objectContaining({ id: known.id })]);
      expect((await listed())[0]!.revokedAt).toBeUndefined();
      expect(filesIn(join(dataDir, 'policy-pending'))).toEqual([]);
      expect(filesIn(fresh)).toEqual([]);
      expect(filesIn(join(mount, 'unguarded-gw'))).toEqual([]);
      expect(filesIn(dataDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

      // The gateway still runs and serves: the broker takes a connection; no commit failed.
      expect(gw.child.exitCode).toBeNull();
      const probe = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.port}`, { clientId: 'probe', reconnectPeriod: 0 });
      await probe.endAsync();
      expect(gw.logs.filter((l) => l.kind === 'store-failed')).toEqual([]);

      // Space returns: the same commands go through, the gateway logs the grant and stores frames.
      emptyDisk();
      expect((await cli('devices', 'enroll', '--id', newcomer.id, '--key', newcomer.publicKeyHex)).code).toBe(0);
      const granted = await cli(
        'policy',
        'grant',
        'ops',
        'reader',
        'vibration',
        '--admin-key',
        adminKey,
        '--wait',
        '15',
      );
      expect(granted.stdout.trim()).toBe('grant of reader on vibration to ops logged');
      await publishFrames(gw.port, newcomer, 1, [0, 1]);
      expect((await cli('devices', 'revoke', known.id)).code).toBe(0);
      expect((await listed()).map((d) => [d.id, d.revokedAt !== undefined])).toEqual([
        [known.id, true],
        [newcomer.id, false],
      ]);
    } finally {
      expect(await stopGatewayProcess(gw)).toBe(0);
    }
    expect((await readFrames(dataDir)).map((f) => `${f.device}/${f.seq}`).sort()).toEqual([
      'press-01/0',
      'press-01/1',
      'press-01/2',
      'press-02/0',
      'press-02/1',
    ]);
  });
});
