/**
 * hardware/pi: the systemd unit passes `systemd-analyze verify` and has the
 * restart policy and hardening the install guide promises; the udev rules
 * cover the common adapters; the sample config is valid.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startScript } from '../../bench/lib/gateway-process.js';
import { loadConfig } from '../../gateway/config.js';
import { tempDir } from '../helpers/env.js';
import { needs } from '../helpers/system-tools.js';

const pi = new URL('../../hardware/pi/', import.meta.url).pathname;
const UNIT = join(pi, 'outpost-gateway.service');
/** systemd's fixed search path for a bare ExecStart command. */
const SYSTEMD_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

async function verify(file: string): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await promisify(execFile)('systemd-analyze', ['verify', file], {
      env: { ...process.env, SYSTEMD_LOG_COLOR: '0' },
    });
    return { code: 0, stderr };
  } catch (e) {
    const err = e as { code: number; stderr: string };
    return { code: err.code, stderr: err.stderr };
  }
}

/** Unit settings, key → values, from the active (uncommented) lines. */
function settings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

describe('Raspberry Pi deployment files', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());
  const text = readFileSync(UNIT, 'utf8');

  it('[verify] the unit passes systemd-analyze verify without a warning', needs('systemd-analyze'), async () => {
    let file = UNIT;
    const nodeOnPath = SYSTEMD_PATH.some((d) => {
      try {
        accessSync(join(d, 'node'), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
    if (!nodeOnPath) {
      // node lives outside systemd's search path here (nvm, a tarball): verify the unit with this node's absolute path.
      file = join(tmp.dir, 'outpost-gateway.service');
      writeFileSync(file, text.replace(/^ExecStart=node /m, `ExecStart=${process.execPath} `));
    }
    const r = await verify(file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it(
    '[verify-negative] systemd-analyze does flag a broken copy (so the check above can fail)',
    needs('systemd-analyze'),
    async () => {
      const bad = join(tmp.dir, 'bad', 'outpost-gateway.service');
      (await import('node:fs')).mkdirSync(join(tmp.dir, 'bad'));
      copyFileSync(UNIT, bad);
      writeFileSync(
        bad,
        text.replace('Restart=always', 'Restart=sometimes').replace('ProtectSystem=strict', 'ProtectSytem=strict'),
      );
      const r = await verify(bad);
      expect(r.stderr).toContain('sometimes');
      expect(r.stderr).toContain("Unknown key 'ProtectSytem'");
    },
  );

  it('[policy] restarts always, runs as a dynamic user with a state directory, read-only system, no capabilities unless BLE', () => {
    const s = settings(text);
    expect(s.get('Restart')).toEqual(['always']);
    expect(s.get('StartLimitIntervalSec')).toEqual(['0']);
    expect(s.get('DynamicUser')).toEqual(['yes']);
    expect(s.get('StateDirectory')).toEqual(['outpost']);
    expect(s.get('ProtectSystem')).toEqual(['strict']);
    expect(s.get('NoNewPrivileges')).toEqual(['yes']);
    expect(s.get('ExecStart')![0]).toContain('--data /var/lib/outpost');
    // Capabilities are empty; the BLE ones exist only as commented lines, marked as such.
    expect(s.get('CapabilityBoundingSet')).toEqual(['']);
    expect(s.get('AmbientCapabilities')).toEqual(['']);
    expect(text).toMatch(/# BLE only:[^\n]*\n(#[^\n]*\n)*#AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN/);
    expect(s.get('RestrictAddressFamilies')![0]).not.toContain('AF_BLUETOOTH');
  });

  it("[memory] the unit runs npm start's node options, and its commented small-board line npm run start:small's", () => {
    const root = new URL('../../', import.meta.url).pathname;
    const unitOptions = (line: string): string => /node\s+(.*?)\s*\/opt\/outpost\/bin\/gateway\.js/.exec(line)![1]!;
    expect(unitOptions(settings(text).get('ExecStart')![0]!)).toBe(startScript(root, 'start').nodeArgs.join(' '));
    const small = /^#ExecStart=(.*)$/m.exec(text)?.[1];
    expect(small).toContain('start --small');
    expect(unitOptions(small!)).toBe(startScript(root, 'start:small').nodeArgs.join(' '));
    // And the environment both scripts set before node (glibc's malloc arenas).
    const env = startScript(root, 'start').env;
    expect(startScript(root, 'start:small').env).toEqual(env);
    expect(Object.keys(env).length).toBeGreaterThan(0);
    for (const [k, v] of Object.entries(env)) expect(settings(text).get('Environment')).toContain(`${k}=${v}`);
  });

  it('[udev] rules cover CP210x, CH340, FTDI and native CDC-ACM, each with group dialout and ModemManager off', () => {
    const rules = readFileSync(join(pi, '99-outpost-serial.rules'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'));
    const ids = rules.map(
      (r) =>
        /ATTRS\{idVendor\}=="(\w+)", ATTRS\{idProduct\}=="(\w+)"/.exec(r)?.slice(1).join(':') ??
        (r.includes('DRIVERS=="cdc_acm"') ? 'cdc_acm' : r),
    );
    expect(ids).toEqual(['10c4:ea60', '1a86:7523', '0403:6001', 'cdc_acm']);
    for (const r of rules) {
      expect(r).toMatch(/^SUBSYSTEM=="tty", /);
      expect(r).toContain('GROUP="dialout"');
      expect(r).toContain('MODE="0660"');
      expect(r).toContain('ENV{ID_MM_DEVICE_IGNORE}="1"');
      // Every key is KEY=="v", KEY="v" or KEY+="v" (udev syntax), separated by ", ".
      for (const part of r.split(', ')) expect(part).toMatch(/^[A-Z_]+(\{[A-Za-z_]+\})?(==|\+=|=)"[^"]*"$/);
    }
  });

  it("[config] the sample /etc/outpost/outpost.yaml is valid and uses the unit's data directory", () => {
    const c = loadConfig(join(pi, 'outpost.yaml'));
    expect(c.gateway.dataDir).toBe('/var/lib/outpost');
    expect(c.api.host).toBe('0.0.0.0');
    expect(c.simulate.devices).toBe(0);
  });
});
