/**
 * `gateway identity` prints this gateway's id and did:key before it ever starts (creating
 * the key file the gateway uses), and what it prints is accepted as a peer key by a
 * sibling's `gateway config check`; a mistyped key is not. `gateway --version`.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { GatewayIdentity } from '../../gateway/identity.js';
import { tempDir } from '../helpers/env.js';

const bin = new URL('../../bin/gateway.js', import.meta.url).pathname;

async function gateway(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    return e as { code: number; stdout: string; stderr: string };
  }
}

describe('gateway identity', () => {
  const tmp = tempDir('outpost-identity-');
  afterAll(() => tmp.cleanup());

  it('with TLS on, prints the certificate gateway start will serve and its SHA-256 fingerprint', async () => {
    const data = join(tmp.dir, 'tls');
    const cfg = join(tmp.dir, 'tls.yaml');
    writeFileSync(cfg, `gateway: { id: gw-t, dataDir: ${JSON.stringify(data)} }\nmqtt: { tls: { enabled: true } }\n`);
    const json = await gateway('identity', '--config', cfg, '--json');
    expect(json.code, json.stderr).toBe(0);
    const t = (JSON.parse(json.stdout) as { tls: { cert: string; fingerprint: string } }).tls;
    expect(t.cert).toBe(join(data, 'tls', 'cert.pem'));
    expect(t.fingerprint).toBe(new X509Certificate(readFileSync(t.cert)).fingerprint256);
    const text = await gateway('identity', '--config', cfg);
    expect(text.stdout).toContain(`SHA-256 ${t.fingerprint}`); // the same certificate, not a new one
    const plain = join(tmp.dir, 'plain.yaml');
    writeFileSync(plain, `gateway: { id: gw-p, dataDir: ${JSON.stringify(join(tmp.dir, 'p'))} }\n`);
    expect((await gateway('identity', '--config', plain)).stdout).not.toContain('SHA-256');
  });

  it("prints the id and did:key, creating the key the gateway itself loads; a sibling's config check accepts it", async () => {
    const dataA = join(tmp.dir, 'a');
    const cfgA = join(tmp.dir, 'a.yaml');
    writeFileSync(cfgA, `gateway: { id: gw-a, dataDir: ${JSON.stringify(dataA)} }\n`);
    const json = await gateway('identity', '--config', cfgA, '--json');
    expect(json.code, json.stderr).toBe(0);
    const a = JSON.parse(json.stdout) as { id: string; did: string; publicKey: string };
    expect(a.id).toBe('gw-a');
    expect(a.did).toMatch(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/);
    expect(statSync(join(dataA, 'identity.key')).mode & 0o777).toBe(0o600);
    // The same key as the gateway's own (loaded from the same file), and stable across calls.
    expect(GatewayIdentity.loadOrCreate('gw-a', dataA).did).toBe(a.did);
    const text = await gateway('identity', '--config', cfgA);
    expect(text.stdout).toContain(`did  ${a.did}`);
    expect(text.stdout).toContain(`{ id: gw-a, publicKey: "${a.did}"`);

    const cfgB = join(tmp.dir, 'b.yaml');
    const peerLine = (key: string) =>
      `gateway: { id: gw-b, dataDir: ${JSON.stringify(join(tmp.dir, 'b'))} }\n` +
      `sync:\n  enabled: true\n  peers:\n    - { id: ${a.id}, publicKey: "${key}", url: "tcp://10.0.0.11:7878" }\n`;
    writeFileSync(cfgB, peerLine(a.did));
    const ok = await gateway('config', 'check', cfgB);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`${cfgB}: ok`);
    writeFileSync(cfgB, peerLine(a.publicKey)); // the hex form is a key too
    expect((await gateway('config', 'check', cfgB)).code).toBe(0);

    // A key cut short in copying is refused, naming the key.
    writeFileSync(cfgB, peerLine(a.did.slice(0, -3)));
    const bad = await gateway('config', 'check', cfgB);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/sync\.peers\.0\.publicKey: /);
  });

  it('read-only commands on a data directory with no identity say so and create nothing', async () => {
    const data = join(tmp.dir, 'never-started');
    for (const args of [
      ['audit', 'verify'],
      ['log', 'heads'],
      ['rules', 'log'],
    ]) {
      const r = await gateway(...args, '--data', data);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toMatch(/no gateway (identity|store) in .*never-started \(start the gateway once\)/);
      expect(existsSync(join(data, 'identity.key'))).toBe(false);
    }
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const r = await gateway('--version');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });
});
