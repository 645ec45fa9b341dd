/**
 * `gateway config check` on the broken configs under test/fixtures/configs/:
 * each fails with exit 1 and one message that names the bad key and what is allowed.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { configJsonSchema, validateConfig } from '../../gateway/config.js';

const bin = new URL('../../bin/gateway.js', import.meta.url).pathname;
const dir = new URL('../fixtures/configs/', import.meta.url).pathname;

/** Fixture → the line `config check` must print for it (key and allowed values). */
const expected: Record<string, string> = {
  'api-enabled-not-boolean.yaml': 'api.enabled: must be true or false',
  'api-port-out-of-range.yaml': 'api.port: must be an integer from 0 to 65535',
  'api-token-too-short.yaml': 'api.token: must be at least 16 characters',
  'api-unknown-key.yaml':
    'api: unknown key "bind" (allowed: enabled, host, port, tls, allowPlainBeyondLoopback, token)',
  'gateway-memory-unknown.yaml': 'gateway.memory: must be one of "standard", "small"',
  'gateway-id-pattern.yaml': 'gateway.id: must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
  'homeassistant-bad-prefix.yaml':
    'homeAssistant.prefix: must be MQTT topic levels of [A-Za-z0-9_-], e.g. homeassistant',
  'ingest-verify-workers.yaml': 'ingest.verifyWorkers: must be "auto", or an integer from 0 to 64',
  'log-level-unknown.yaml': 'log.level: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"',
  'metrics-public-string.yaml': 'metrics.public: must be true or false',
  'mqtt-port-negative.yaml': 'mqtt.port: must be an integer from 0 to 65535',
  'serial-port-without-path.yaml': 'serial.ports.0: needs a path, or USB ids (vendorId, productId, serialNumber)',
};

async function check(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, 'config', 'check', file]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    return e as { code: number; stdout: string; stderr: string };
  }
}

describe('gateway config check on broken configs', () => {
  it('[fixtures] every fixture file has an expected message, and every expected message a fixture', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files.filter((f) => f !== 'not-yaml.yaml').sort()).toEqual(Object.keys(expected).sort());
  });

  it.each(Object.entries(expected))(
    '[key+allowed] %s → exit 1 naming the key and what is allowed',
    async (file, line) => {
      const r = await check(dir + file);
      expect(r.code).toBe(1);
      const issues = r.stderr
        .split('\n')
        .slice(1)
        .map((l) => l.trim())
        .filter(Boolean);
      expect(issues).toEqual([line]);
    },
  );

  it('[yaml] a file that is not YAML names the line', async () => {
    const r = await check(dir + 'not-yaml.yaml');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not valid YAML: .*line 3/);
  });

  it('[defaults] the operator sections default to a loopback API with a token, private metrics, HA off', () => {
    const c = validateConfig({});
    expect(c.api).toEqual({
      enabled: true,
      host: '127.0.0.1',
      port: 8080,
      tls: false,
      allowPlainBeyondLoopback: false,
    });
    expect(c.metrics).toEqual({ enabled: true, public: false });
    expect(c.homeAssistant).toEqual({ enabled: false, prefix: 'homeassistant' });
  });

  it('[schema] `config schema` comes from the same definition: it has the new sections and their limits', () => {
    const s = configJsonSchema() as {
      properties: Record<string, { properties: Record<string, { maximum?: number; default?: unknown }> }>;
    };
    expect(s.properties.api!.properties.port).toMatchObject({ maximum: 65535, default: 8080 });
    expect(s.properties.metrics!.properties.public).toMatchObject({ default: false });
    expect(s.properties.homeAssistant!.properties.prefix).toMatchObject({ default: 'homeassistant' });
  });
});
