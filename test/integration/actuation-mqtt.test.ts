/**
 * Actuation end to end against firmware-sim over real MQTT (the gateway's embedded
 * aedes): a rule from a YAML file, a frame crossing the vibration threshold, a command signed
 * by the gateway, obeyed by the device's actuator, acked with a signed command-ack through
 * ingest, and the decision + outcome in a signed actuation block of the log.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Actuators, commandHandler } from '../../firmware-sim/actuators.js';
import { VirtualDevice } from '../../firmware-sim/device.js';
import { generateManifest, manifestSeed } from '../../firmware-sim/manifest.js';
import { MqttDeviceLink } from '../../firmware-sim/transports/mqtt.js';
import { actuationBlocks } from '../../gateway/actuation/journal.js';
import { GatewayMetrics } from '../../gateway/api/metrics.js';
import type { Gateway } from '../../gateway/gateway.js';
import { signEd25519 } from '../../gateway/crypto/ed25519.js';
import { AckStatus, signBody, topics } from '../../protocols/index.js';
import { readDecisions } from '../../rules/actuation/index.js';
import { startRules } from '../../rules/start.js';
import { running, startTestGateway, tempDir, waitFor } from '../helpers/env.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function cell(devices: number, rules: string) {
  const tmp = tempDir('outpost-act-');
  cleanups.push(() => tmp.cleanup());
  const manifest = generateManifest({ devices, prefix: 'cell', site: 'plant-a', model: 'press-vib-1' });
  const { gw, url } = await startTestGateway(
    join(tmp.dir, 'data'),
    manifest.devices.map((d) => ({ id: d.id, publicKey: d.publicKey, model: d.model, site: d.site })),
  );
  cleanups.push(() => gw.stop());
  const file = join(tmp.dir, 'rules.yaml');
  writeFileSync(file, rules);
  const handle = await startRules({ files: [file] }, gw.actuation.ruleFrames$, gw.actuation.actuation);
  cleanups.push(() => handle.stop());
  const sims = manifest.devices.map((d) => {
    const device = new VirtualDevice({ id: d.id, seed: manifestSeed(d), model: d.model, signer: 'node' });
    const actuators = new Actuators({
      device: d.id,
      gateways: [{ id: 'gw-test', publicKey: gw.identity.publicKey }],
      initial: { conveyor: true, speed: 1 },
    });
    const received: Uint8Array[] = [];
    let mute = false;
    let link: MqttDeviceLink;
    const handler = commandHandler(actuators, device, (f) => link.send(f));
    link = new MqttDeviceLink(device, {
      brokerUrl: url,
      onCommand: (payload) => {
        received.push(payload);
        if (!mute) handler(payload);
      },
    });
    link.start();
    cleanups.push(() => link.stop());
    return { device, actuators, link, received, mute: () => (mute = true) };
  });
  await waitFor(() => sims.every((s) => s.link.connected), 5000, 'devices connected');
  return { gw, sims };
}

const stopRule = (device: string, ttl = '2s') => `
  - id: stop-${device}
    trigger: { devices: [${device}], names: [vib] }
    when: "v.vib > 8.0"
    then: [{ command: { device: ${device}, actuator: conveyor, value: false, ttl: ${ttl} } }]
`;

const auditOf = (gw: Gateway) => readDecisions(actuationBlocks(gw.blockLog)).decisions;

describe('actuation over MQTT', () => {
  it("the conveyor stops within the rule's deadline after the vibration threshold; decision and outcome are in the log (factory cell)", async () => {
    const { gw, sims } = await cell(1, `rules:${stopRule('cell-0001')}`);
    const s = sims[0]!;
    s.device.force('vib', 2);
    for (let i = 0; i < 3; i++) s.link.send(s.device.nextFrame());
    await waitFor(() => gw.frames.count() >= 3, 5000, 'normal frames stored');
    expect(s.actuators.get('conveyor')).toBe(true);
    s.device.force('vib', 9.5);
    const trigger = s.device.nextFrame();
    const t0 = Date.now();
    s.link.send(trigger);
    await waitFor(() => s.actuators.get('conveyor') === false, 2000, 'conveyor stopped within the 2 s deadline');
    expect(Date.now() - t0).toBeLessThan(2000);
    await waitFor(() => gw.actuation.actuation.stats.acked === 1, 5000, 'command acked through ingest');
    // The device's readings now report the stopped conveyor.
    s.link.send(s.device.nextFrame());
    await waitFor(
      () => [...gw.frames.query({ device: 'cell-0001' })].length === 6,
      5000,
      'reading after the stop (the ack is a stored frame too)',
    );
    await gw.blockLog.durable();
    await new Promise((r) => setImmediate(r));
    await gw.blockLog.durable();
    const audit = auditOf(gw);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      rule: 'stop-cell-0001',
      inputs: [{ device: 'cell-0001', boot: trigger.boot, seq: trigger.seq }],
      action: { kind: 'command', command: { device: 'cell-0001', actuator: 'conveyor', value: false, ttlMs: 2000 } },
      command: { fence: 1 },
      outcome: { state: 'acked', ackStatus: AckStatus.ok, attempts: 1 },
    });
    expect(audit[0]!.ruleVersion).toMatch(/.+/);
    expect(gw.status()).toMatchObject({
      actuation: { acked: 1, leases: [{ device: 'cell-0001', actuator: 'conveyor', fence: 1 }] },
    });
    const metrics = new GatewayMetrics(gw, { processMetrics: false });
    expect(await metrics.text()).toMatch(/outpost_commands_total\{state="acked",gateway="gw-test"\} 1/);
    metrics.close();
  });

  it('a replayed and a forged command are refused by the device and reported to the gateway', async () => {
    const { gw, sims } = await cell(1, `rules:${stopRule('cell-0001', '30s')}`);
    const s = sims[0]!;
    s.device.force('vib', 9);
    s.link.send(s.device.nextFrame());
    await waitFor(() => gw.actuation.actuation.stats.acked === 1, 5000, 'first command acked');
    // The executed command, replayed by an attacker on the command topic.
    await running(gw, 'broker').publish(topics.cmd('cell-0001'), s.received[0]!);
    await waitFor(() => gw.actuation.actuation.stats.replayReports === 1, 5000, 'replay reported');
    const forged = signBody(
      {
        type: 'command',
        id: randomBytes(16),
        target: 'cell-0001',
        actuator: 'conveyor',
        value: true,
        issued: Date.now(),
        expires: Date.now() + 60_000,
        fence: 99,
      },
      'gw-test',
      (m) => signEd25519(randomBytes(32), m),
    );
    await running(gw, 'broker').publish(topics.cmd('cell-0001'), forged);
    await waitFor(() => gw.actuation.actuation.stats.forgeryReports === 1, 5000, 'forgery reported');
    expect(s.actuators.get('conveyor')).toBe(false);
    expect(s.actuators.stats).toMatchObject({ obeyed: 1, refused: { replayed: 1, badSignature: 1 } });
    expect(gw.actuation.actuation.stats.acked).toBe(1);
  });

  it("a device that never acks does not stop the other devices' commands or rules", async () => {
    const { gw, sims } = await cell(2, `rules:${stopRule('cell-0001', '1500ms')}${stopRule('cell-0002', '1500ms')}`);
    const [mute, ok] = sims as [(typeof sims)[0], (typeof sims)[0]];
    mute.mute();
    mute.device.force('vib', 9);
    mute.link.send(mute.device.nextFrame());
    await waitFor(() => mute.received.length >= 1, 3000, 'command reached the mute device');
    ok.device.force('vib', 9);
    ok.link.send(ok.device.nextFrame());
    await waitFor(
      () => ok.actuators.get('conveyor') === false && gw.actuation.actuation.stats.acked === 1,
      3000,
      'other device obeyed and acked',
    );
    expect(gw.actuation.actuation.inFlight).toBe(1); // the mute one, still being retried
    await waitFor(() => gw.actuation.actuation.stats.expired === 1, 5000, 'mute command expired');
    expect(mute.received.length).toBeGreaterThan(1); // resent with backoff until expiry
    expect(mute.actuators.get('conveyor')).toBe(true);
  });

  it("`gateway rules log` (a separate process, on the running gateway's store) prints the decision, its input frame and its outcome", {
    timeout: 30_000,
  }, async () => {
    const { gw, sims } = await cell(1, `rules:${stopRule('cell-0001')}`);
    const s = sims[0]!;
    s.device.force('vib', 9.5);
    const trigger = s.device.nextFrame();
    s.link.send(trigger);
    await waitFor(() => gw.actuation.actuation.stats.acked === 1, 5000, 'acked');
    await waitFor(
      () => readDecisions(actuationBlocks(gw.blockLog)).decisions[0]?.outcome !== undefined,
      5000,
      'outcome logged',
    );
    const run = (args: string[]) =>
      new Promise<{ code: number | null; out: string }>((res) => {
        const child = spawn(
          process.execPath,
          ['bin/gateway.js', 'rules', 'log', '--data', gw.config.gateway.dataDir, ...args],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.on('exit', (code) => res({ code, out }));
      });
    const text = await run([]);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(
      new RegExp(
        `self  stop-cell-0001@\\S+  \\[cell-0001/${trigger.boot}/${trigger.seq}\\]  cell-0001/conveyor = false \\(fence 1\\)  acked after 1 send\\(s\\)`,
      ),
    );
    const json = await run(['--json', '--rule', 'stop-cell-0001']);
    expect(JSON.parse(json.out)).toMatchObject([
      { rule: 'stop-cell-0001', gateway: 'self', outcome: { state: 'acked' } },
    ]);
  });
});
