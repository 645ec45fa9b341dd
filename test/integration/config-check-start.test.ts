/**
 * `gateway config check` loads exactly what `gateway start` loads (child processes): the
 * same policy file with the same known principals (this gateway, every sync peer), so a
 * policy naming the gateway itself passes both, and a bad one is refused by both with the
 * same file:line message. Before the first start the gateway's key is unknown: the check
 * accepts its id by name and says so; once the data directory holds the identity, the check
 * also refuses what only the key can refute.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { publicKeyToDidKey } from '../../protocols/index.js';
import { tempDir } from '../helpers/env.js';
import { gatewayCli, startGatewayProcess, stopGatewayProcess } from '../helpers/process.js';

const { dir, cleanup } = tempDir('outpost-check-start-');
afterAll(() => cleanup());
const did = (): string => publicKeyToDidKey(publicKeyFromSeed(randomBytes(32)));
const PEER = did();

/** gw-a's config (sync peer gw-b) with `policy` as its policy file; its data directory is `data-NAME`. */
function gwA(name: string, policy: string): { file: string; policyFile: string; dataDir: string } {
  const policyFile = join(dir, `${name}-policy.yaml`);
  writeFileSync(policyFile, policy);
  const dataDir = join(dir, `data-${name}`);
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `gateway: { id: gw-a, dataDir: ${JSON.stringify(dataDir)} }`,
      'mqtt: { port: 0 }',
      'api: { enabled: false }',
      'simulate: { devices: 0 }',
      `sync: { peers: [{ id: gw-b, publicKey: "${PEER}" }] }`,
      `policy: { file: ${JSON.stringify(policyFile)} }`,
    ].join('\n'),
  );
  return { file, policyFile, dataDir };
}

const start = (file: string) => gatewayCli(['start', '--config', file, '--no-simulate']);

describe('config check and start agree', () => {
  it('a policy naming the gateway itself (and its sync peer): both accept it, before and after the first start', async () => {
    const { file, dataDir } = gwA(
      'self',
      'policies:\n  vibration:\n    relations:\n      holder: [gw-a, gw-b]\n      reader: [gw-a]\n',
    );
    const before = await gatewayCli(['config', 'check', file]);
    expect(before.stderr).toBe('');
    expect(before.code).toBe(0);
    expect(before.stdout).toContain(`${file}: ok (policy file `);
    expect(before.stdout).toContain(
      `note: ${dataDir} holds no gateway identity yet, so "gw-a" was accepted as a principal by name`,
    );
    expect(existsSync(dataDir)).toBe(false); // the check creates nothing

    const gw = await startGatewayProcess(file);
    expect(await stopGatewayProcess(gw)).toBe(0);

    const after = await gatewayCli(['config', 'check', file]);
    expect(after.code).toBe(0);
    expect(after.stdout).not.toContain('note:'); // the key is known now
    // --data points the check at another data directory, as it does the start.
    const elsewhere = join(dir, 'data-elsewhere');
    expect((await gatewayCli(['config', 'check', file, '--data', elsewhere])).stdout).toContain(
      `note: ${elsewhere} holds no gateway identity yet`,
    );
  }, 120_000);

  it('a policy naming an unknown principal: both refuse it with the same file:line message', async () => {
    const { file, policyFile, dataDir } = gwA(
      'unknown',
      'policies:\n  vibration:\n    relations:\n      holder: [gw-a]\n      reader: [gw-a, carol]\n',
    );
    const check = await gatewayCli(['config', 'check', file]);
    const started = await start(file);
    for (const r of [check, started]) {
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `gateway: policy file ${policyFile} is invalid:\n  ${policyFile}:5: unknown principal "carol"\n`,
      );
    }
    expect(existsSync(join(dataDir, 'outpost.lmdb'))).toBe(false); // the start stopped before opening the store
  }, 120_000);

  it("the gateway's own name with another key: refused by start, and by the check once the key is known", async () => {
    const { file, policyFile, dataDir } = gwA(
      'other-key',
      `principals:\n  gw-a: { key: "${did()}" }\npolicies:\n  vibration:\n    relations:\n      reader: [gw-a]\n`,
    );
    const message = `gateway: policy file ${policyFile} is invalid:\n  ${policyFile}:2: principal gw-a has another key than the gateway gw-a of the config\n`;
    // Before the first start nothing can refute it: accepted, with the note that the key is unchecked.
    const unchecked = await gatewayCli(['config', 'check', file]);
    expect(unchecked.code).toBe(0);
    expect(unchecked.stdout).toContain('its key is checked at the first start');
    const started = await start(file);
    expect(started.code).toBe(1);
    expect(started.stderr).toBe(message);
    expect(existsSync(join(dataDir, 'identity.key'))).toBe(true); // the start created the identity …
    const check = await gatewayCli(['config', 'check', file]);
    expect(check.code).toBe(1); // … which the check now uses
    expect(check.stderr).toBe(message);
  }, 120_000);
});
