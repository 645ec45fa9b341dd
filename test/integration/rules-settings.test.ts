/**
 * A rule's `settings` action in a running gateway (real aedes, real lmdb, a firmware-sim device
 * that applies signed settings): a frame triggers the rule, the gateway logs the desired settings
 * as a signed settings block by `rule:<id>`, delivers them, and the device reports them applied.
 * A rule firing on every frame queues its unchanged values once; a rule whose device template
 * fills to no device id is a warning, not a stop.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualDevice } from '../../firmware-sim/device.js';
import { generateManifest, manifestSeed } from '../../firmware-sim/manifest.js';
import { DeviceSettings, settingsHandler } from '../../firmware-sim/settings.js';
import { MqttDeviceLink } from '../../firmware-sim/transports/mqtt.js';
import { actuationBlocks } from '../../gateway/actuation/journal.js';
import { validateConfig } from '../../gateway/config.js';
import { Gateway } from '../../gateway/gateway.js';
import { GatewayIdentity } from '../../gateway/identity.js';
import { settingsOf } from '../../gateway/settings/log.js';
import { decodeSignedBlock, type SignedBlock } from '../../protocols/index.js';
import { readDecisions } from '../../rules/actuation/index.js';
import { memoryLogger, running, tempDir, waitFor } from '../helpers/env.js';
import { gatewayCli } from '../helpers/process.js';

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const dev = generateManifest({ devices: 1, prefix: 'boiler', model: 'env-1' }).devices[0]!;

const RULES = `rules:
  - id: boiler-eco
    trigger: { names: [temp] }
    when: "v.temp > -100.0"
    fire: every
    then:
      - settings: { device: "{{device}}", values: { mode: eco, interval: 30 } }
  - id: bad-target
    trigger: { names: [temp] }
    when: "v.temp > -100.0"
    then:
      - settings: { device: "{{device}}!", values: { mode: off } }
`;

describe('rule settings action', () => {
  it('a frame triggers a rule that sets desired settings; logged by rule:<id> once, delivered and reported applied', async () => {
    const tmp = tempDir('outpost-rule-settings-');
    closers.push(tmp.cleanup);
    const rules = join(tmp.dir, 'rules.yaml');
    writeFileSync(rules, RULES);
    const dataDir = join(tmp.dir, 'data');
    const gwKey = GatewayIdentity.loadOrCreate('gw-r', dataDir).publicKey;
    const { log, lines } = memoryLogger();
    const gw = await Gateway.start(
      validateConfig({
        gateway: { id: 'gw-r', dataDir },
        mqtt: { port: 0 },
        devices: [{ id: dev.id, publicKey: dev.publicKey }],
        simulate: { devices: 0 },
        api: { enabled: false },
        rules: { files: [rules] },
      }),
      { logger: log, simulate: false, settings: { retryMinMs: 200, retryMaxMs: 2000 } },
    );
    closers.push(() => gw.stop());

    // The device: trusts the gateway, applies what it is sent, reports it in each reading (every 200 ms).
    const d = new VirtualDevice({ id: dev.id, seed: manifestSeed(dev), model: dev.model, signer: 'node' });
    const settings = new DeviceSettings({ device: dev.id, gateways: [{ id: 'gw-r', publicKey: gwKey }] });
    let link: MqttDeviceLink | undefined;
    const onFrame = settingsHandler(settings, d, (f) => link!.send(f));
    link = new MqttDeviceLink(d, {
      brokerUrl: `mqtt://127.0.0.1:${running(gw, 'broker').port}`,
      onCommand: (p) => onFrame(p),
    });
    link.start();
    const timer = setInterval(() => link.send(d.nextFrame()), 200);
    closers.push(async () => {
      clearInterval(timer);
      await link.stop();
    });

    await waitFor(
      () => settings.get('mode') === 'eco' && settings.get('interval') === 30,
      30_000,
      'device applied the rule settings',
    );
    const view = () =>
      gw.settings.view(dev.id) as {
        pending: unknown[];
        reported: Record<string, unknown> | null;
        desired: Record<string, { value: unknown; by: string | null; author: string }>;
      };
    await waitFor(() => view().pending.length === 0, 30_000, 'reported equals desired');
    expect(view().reported).toMatchObject({ mode: 'eco', interval: 30 });
    expect(view().desired.mode).toMatchObject({ value: 'eco', by: 'rule:boiler-eco', author: 'gw-r' });

    // Several more frames: the rule decided on each (audited), its unchanged values were queued once.
    const decided = () => readDecisions(actuationBlocks(gw.blockLog)).decisions.filter((x) => x.rule === 'boiler-eco');
    const before = decided().length;
    await waitFor(() => decided().length >= before + 3, 15_000, 'more decisions');
    await new Promise((r) => setTimeout(r, 1200)); // longer than the settings inbox's drain interval
    await gw.blockLog.durable();
    expect(decided()[0]!.action).toEqual({
      kind: 'settings',
      device: dev.id,
      values: [
        ['interval', 30],
        ['mode', 'eco'],
      ],
    });
    const blocks = [...gw.blockLog.hashesOfKind('settings')].map((h) => {
      const sb = decodeSignedBlock(gw.blockLog.getEnvelope(h)!);
      if (!sb.ok) throw new Error(sb.error.message);
      return settingsOf(sb.value as SignedBlock)!.record;
    });
    expect(blocks).toEqual([
      {
        device: dev.id,
        values: [
          ['interval', 30],
          ['mode', 'eco'],
        ],
        at: expect.any(Number) as number,
        by: 'rule:boiler-eco',
      },
    ]);
    expect(blocks[0]!.at).toBe(decided()[0]!.at); // the decision's time

    // `gateway rules log` prints it; --device finds the decision by the device it set.
    const printed = await gatewayCli([
      'rules',
      'log',
      '--data',
      dataDir,
      '--rule',
      'bad-target',
      '--device',
      `${dev.id}!`,
    ]);
    expect(printed.stderr).toBe('');
    expect(printed.stdout).toContain(`settings ${dev.id}! mode="off"`);

    // The other rule's template filled to no device id: a warning, nothing queued, the gateway goes on.
    const warned = lines.find((l) => l.msg === 'settings action not queued');
    expect(warned).toMatchObject({ rule: 'bad-target', device: `${dev.id}!` });
    expect(String(warned!.err)).toMatch(/device id/);
    const audit = readDecisions(actuationBlocks(gw.blockLog)).decisions;
    expect(audit.find((x) => x.rule === 'bad-target')?.action).toMatchObject({
      kind: 'settings',
      device: `${dev.id}!`,
    });
  }, 60_000);
});
