/**
 * Policies through the real CLI (child processes): a bad policy file is
 * refused by `gateway config check` and by `gateway start` with one line
 * naming file, line and problem, no stack, and the gateway never opens its
 * store; `gateway policy grant|revoke` signed by an admin key is logged by the
 * running gateway (not by the CLI: no fork of its stream), and a key that is
 * not an admin's is refused.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startGatewayProcess, stopGatewayProcess, type GatewayProcess } from '../helpers/process.js';
import { tempDir } from '../helpers/env.js';

const bin = new URL('../../bin/gateway.js', import.meta.url).pathname;
const { dir, cleanup } = tempDir('outpost-policy-cli-');
afterAll(() => cleanup());

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args], { cwd: dir });
    return { code: 0, stdout, stderr };
  } catch (e) {
    return e as { code: number; stdout: string; stderr: string };
  }
}

function writeConfig(name: string, policyFile: string): { file: string; dataDir: string } {
  const dataDir = join(dir, `data-${name}`);
  const file = join(dir, `cfg-${name}.yaml`);
  writeFileSync(
    file,
    [
      `gateway: { id: gw-${name}, dataDir: ${JSON.stringify(dataDir)} }`,
      'mqtt: { port: 0 }',
      'api: { enabled: false }',
      'simulate: { devices: 0 }',
      `policy: { file: ${JSON.stringify(policyFile)} }`,
    ].join('\n'),
  );
  return { file, dataDir };
}

const OPERATOR = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
const bad: Record<string, [string, RegExp]> = {
  'unknown principal': [
    `policies:\n  vibration:\n    relations:\n      reader: [carol]\n`,
    /^gateway: policy file .*unknown-principal\.yaml is invalid:\n {2}.*unknown-principal\.yaml:4: unknown principal "carol"$/,
  ],
  'CEL syntax error': [
    `policies:\n  vibration:\n    when: 'principal.site == '\n`,
    /cel-syntax-error\.yaml:3: CEL syntax error in "principal\.site == ": Unexpected token: EOF$/,
  ],
  'cycle in groups': [
    `principals:\n  op: { key: "${OPERATOR}" }\ngroups:\n  a: [op, group:b]\n  b: [group:a]\n`,
    /cycle-in-groups\.yaml:4: cycle in groups: a → b → a$/,
  ],
};

describe('bad policy files through the CLI', () => {
  for (const [problem, [text, message]] of Object.entries(bad)) {
    it(`[bad policy files are refused at start] ${problem}: config check and start exit 1 naming file, line and problem`, async () => {
      const slug = problem.replace(/ /g, '-').toLowerCase();
      const policyFile = join(dir, `${slug}.yaml`);
      writeFileSync(policyFile, text);
      const { file, dataDir } = writeConfig(slug, policyFile);
      for (const args of [
        ['config', 'check', file],
        ['start', '--config', file, '--no-simulate'],
      ]) {
        const r = await cli(args);
        expect(r.code).toBe(1);
        expect(r.stderr.trim()).toMatch(message);
        expect(r.stderr).not.toMatch(/\n\s+at /); // no stack
      }
      // The gateway never ran with it: its store was never opened.
      expect(existsSync(join(dataDir, 'outpost.lmdb'))).toBe(false);
    }, 90_000);
  }
});

describe('gateway policy grant|revoke against a running gateway', () => {
  let gw: GatewayProcess | undefined;
  afterAll(async () => {
    if (gw) await stopGatewayProcess(gw);
  });

  it('[made with gateway policy grant|revoke by an admin key] the gateway logs admin-signed ops; other keys are refused', async () => {
    const adminKey = join(dir, 'admin.key');
    const keygen = await cli(['policy', 'keygen', '--out', adminKey]);
    expect(keygen.code).toBe(0);
    const adminDid = keygen.stdout.trim();
    expect(adminDid).toMatch(/^did:key:z6Mk/);
    const strangerKey = join(dir, 'stranger.key');
    expect((await cli(['policy', 'keygen', '--out', strangerKey])).code).toBe(0);
    const policyFile = join(dir, 'good.yaml');
    writeFileSync(
      policyFile,
      `admins: [ops]\nprincipals:\n  ops: { key: "${adminDid}", kind: operator }\n  alice: { key: "${OPERATOR}", kind: operator }\npolicies:\n  vibration: { reach: site, relations: { owner: [ops] } }\n`,
    );
    const { file, dataDir } = writeConfig('good', policyFile);
    mkdirSync(dataDir, { recursive: true });
    expect((await cli(['config', 'check', file])).stdout).toMatch(/ok \(policy file .*good\.yaml: ok\)/);
    gw = await startGatewayProcess(file);

    const grant = await cli([
      'policy',
      'grant',
      'alice',
      'reader',
      'vibration',
      '--admin-key',
      adminKey,
      '--config',
      file,
      '--wait',
      '15',
    ]);
    expect(grant.stderr).toBe('');
    expect(grant.stdout.trim()).toBe('grant of reader on vibration to alice logged');
    const granted = gw.logs.find(
      (l) => typeof l.msg === 'string' && l.msg === `permission reader on vibration for ${OPERATOR}: granted`,
    );
    expect(granted).toBeDefined();

    const stranger = await cli([
      'policy',
      'revoke',
      'alice',
      'reader',
      'vibration',
      '--admin-key',
      strangerKey,
      '--config',
      file,
    ]);
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toMatch(/^gateway: not queued: key [0-9a-f]{16}… is not an admin key of the policy file/);

    const revoke = await cli([
      'policy',
      'revoke',
      'alice',
      'reader',
      'vibration',
      '--admin-key',
      adminKey,
      '--config',
      file,
      '--wait',
      '15',
    ]);
    expect(revoke.stdout.trim()).toBe('revoke of reader on vibration to alice logged');
    expect(gw.logs.some((l) => l.msg === `permission reader on vibration for ${OPERATOR}: revoked`)).toBe(true);
    expect(
      (await cli(['policy', 'grant', 'alice', 'writer', 'vibration', '--admin-key', adminKey, '--config', file])).code,
    ).toBe(2);
    expect(await stopGatewayProcess(gw)).toBe(0);
    gw = undefined;

    // The ops are blocks on the gateway's own $acl stream, and the log audits clean.
    const heads = JSON.parse((await cli(['log', 'heads', '--json', '--config', file])).stdout) as {
      heads: { stream: string; seq: number }[];
    };
    expect(heads.heads.find((h) => h.stream === '$acl')?.seq).toBe(1);
    const audit = await cli(['audit', 'verify', '--config', file]);
    expect(audit.code).toBe(0);
    // And the state read back from the log names the principal.
    const show = JSON.parse((await cli(['policy', 'show', '--json', '--config', file])).stdout) as {
      grants: unknown[];
    };
    expect(show.grants).toEqual([
      { ref: OPERATOR, principal: 'alice', relation: 'reader', policy: 'vibration', status: 'revoked' },
    ]);
  }, 180_000);
});
