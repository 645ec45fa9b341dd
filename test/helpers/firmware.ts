/**
 * Firmware update rigs of real processes: a `gateway start` child with a policy file naming a
 * release key and `n` enrolled firmware-sim devices (`startFirmwareSite`), `firmware-sim
 * update` children as the devices (`startUpdateSim`, each report a JSON line), and the
 * `gateway firmware …` CLI (`addRelease`, `startRollout`, `firmwareCli`, `rolloutStatus`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { expect, onTestFinished } from 'vitest';
import { generateManifest, writeManifest } from '../../firmware-sim/manifest.js';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { FirmwareStore } from '../../gateway/firmware/releases.js';
import { GatewayIdentity } from '../../gateway/identity.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { Store } from '../../gateway/store/store.js';
import { publicKeyToDidKey, toHex } from '../../protocols/index.js';
import { testTempDir } from './env.js';
import { gatewayCli, startGatewayProcess, stopGatewayProcess, writeGatewayConfig } from './process.js';

const simBin = new URL('../../bin/firmware-sim.js', import.meta.url).pathname;

export interface FirmwareSite {
  dir: string;
  cfg: string;
  port: number;
  /** With `api`: the API's base URL and admin token. */
  api?: { base: string; token: string };
  keys: string;
  releaseKeyFile: string;
  releaseDid: string;
  devices: string[];
}

const API_TOKEN = 'firmware-test-token-0123456789';

/** A fresh release key in `dir` (hex seed, mode 0600) and a policy file naming it `release-1`. */
export function writeReleaseKey(dir: string): { releaseKeyFile: string; releaseDid: string; policy: string } {
  const seed = randomBytes(32);
  const releaseKeyFile = join(dir, 'release.key');
  writeFileSync(releaseKeyFile, `${toHex(seed)}\n`, { mode: 0o600 });
  const releaseDid = publicKeyToDidKey(publicKeyFromSeed(seed));
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, `releaseKeys:\n  release-1: "${releaseDid}"\n`);
  return { releaseKeyFile, releaseDid, policy };
}

/** A gateway child (stopped when the test finishes) with `n` enrolled devices and a release key; `api`: the API on. */
export async function startFirmwareSite(n: number, opts: { api?: boolean } = {}): Promise<FirmwareSite> {
  const dir = testTempDir('outpost-fw-');
  const fleet = generateManifest({ devices: n });
  const keys = join(dir, 'fleet.json');
  writeManifest(keys, fleet);
  const { releaseKeyFile, releaseDid, policy } = writeReleaseKey(dir);
  const cfg = writeGatewayConfig(
    dir,
    join(dir, 'data'),
    fleet.devices.map((d) => ({ id: d.id, publicKey: d.publicKey })),
    ['simulate: { devices: 0 }', `policy: { file: ${JSON.stringify(policy)} }`],
  );
  if (opts.api)
    writeFileSync(
      cfg,
      readFileSync(cfg, 'utf8').replace('api: { enabled: false }', `api: { port: 0, token: ${API_TOKEN} }`),
    );
  const gw = await startGatewayProcess(cfg);
  onTestFinished(async () => {
    await stopGatewayProcess(gw);
  });
  const apiPort = gw.logs.find((l) => typeof l.tokenFile === 'string' && typeof l.port === 'number')?.port;
  if (opts.api) expect(apiPort, 'the API start line').toBeTypeOf('number');
  return {
    dir,
    cfg,
    port: gw.port,
    ...(opts.api && { api: { base: `http://127.0.0.1:${apiPort}`, token: API_TOKEN } }),
    keys,
    releaseKeyFile,
    releaseDid,
    devices: fleet.devices.map((d) => d.id),
  };
}

export interface ReportLine {
  device: string;
  state: string;
  offset: number;
  reason?: string;
}

export interface UpdateSim {
  child: ChildProcess;
  /** Every report line, in the order printed. */
  lines: ReportLine[];
}

/** `firmware-sim update` for every device of the site, its flash in `<dir>/flash` (killed when the test finishes). */
export function startUpdateSim(site: FirmwareSite, args: string[] = [], releaseDid = site.releaseDid): UpdateSim {
  const child = spawn(
    process.execPath,
    [
      simBin,
      'update',
      '--keys',
      site.keys,
      '--broker',
      `mqtt://127.0.0.1:${site.port}`,
      '--gateway-id',
      'gw-child',
      '--release-key',
      releaseDid,
      '--state',
      join(site.dir, 'flash'),
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines: ReportLine[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as ReportLine));
  onTestFinished(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, lines };
}

/** A device's last final report (confirmed, rolled-back, failed), if any. */
export const finalOf = (sim: UpdateSim, device: string): ReportLine | undefined =>
  sim.lines.filter((l) => l.device === device && ['confirmed', 'rolled-back', 'failed'].includes(l.state)).at(-1);

/** `gateway firmware …ARGS --config CFG`, expected to succeed. */
export async function firmwareCli(site: FirmwareSite, args: string[]): Promise<string> {
  const r = await gatewayCli(['firmware', ...args, '--config', site.cfg]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

/** Releases a random image of `size` bytes as env-1 `version`; returns the image. */
export async function addRelease(site: FirmwareSite, size: number, version = '1.1.0'): Promise<Uint8Array> {
  const image = randomBytes(size);
  const file = join(site.dir, `image-${version}.bin`);
  writeFileSync(file, image);
  const args = ['add', file, '--version', version, '--model', 'env-1', '--release-key', site.releaseKeyFile];
  await firmwareCli(site, [...args, '--wait', '60']);
  return image;
}

/** Rolls 1.1.0 out to every sim-* device as rollout `id`, waiting until it is logged. */
export async function startRollout(site: FirmwareSite, id: string, extra: string[] = []): Promise<void> {
  await firmwareCli(site, ['rollout', '1.1.0', '--devices', 'sim-*', '--id', id, '--wait', '60', ...extra]);
}

export interface RolloutView {
  state: string;
  stage: number;
  devices: Record<string, { state: string; reason: string }>;
}

/** `gateway firmware status ID --json`. */
export async function rolloutStatus(site: FirmwareSite, id: string): Promise<RolloutView> {
  return (JSON.parse(await firmwareCli(site, ['status', id, '--json'])) as RolloutView[])[0]!;
}

/**
 * Every device state of a rollout in the site's log (`device` blocks and the
 * entries of `devices` blocks), per device in the order the gateway logged them:
 * read from its lmdb beside the running gateway, as `gateway firmware status` does.
 */
export async function deviceBlocks(site: FirmwareSite, rollout: string): Promise<Map<string, string[]>> {
  const dataDir = join(site.dir, 'data');
  const identity = GatewayIdentity.loadExisting('gw-child', dataDir)!;
  const store = Store.open(dataDir);
  try {
    const fw = new FirmwareStore(new BlockLog(store, { publicKey: identity.publicKey, sign: identity.sign }), []);
    const out = new Map<string, string[]>();
    for (const d of fw.deviceHistory(rollout)) {
      const states = out.get(d.body.device) ?? [];
      states.push(d.body.state);
      out.set(d.body.device, states);
    }
    return out;
  } finally {
    await store.close();
  }
}
