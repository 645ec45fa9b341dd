/**
 * Commands reach devices over their own byte-stream transport: serial through a
 * real pty (socat) and BLE through firmware-sim's simulated radio into the gateway's real
 * noble code. The device obeys and its signed command-ack comes back through ingest.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Actuators, commandHandler } from '../../firmware-sim/actuators.js';
import { VirtualDevice } from '../../firmware-sim/device.js';
import { generateManifest, manifestSeed, readManifest } from '../../firmware-sim/manifest.js';
import { decodeBody, decodeSign1 } from '../../protocols/index.js';
import { SerialDeviceLink } from '../../firmware-sim/transports/serial.js';
import type { SimPeripheral } from '../../firmware-sim/transports/ble-peripheral.js';
import type { Gateway } from '../../gateway/gateway.js';
import type { Decision } from '../../rules/decision.js';
import { startBleRig } from '../helpers/ble.js';
import { startTestGateway, tempDir, waitFor } from '../helpers/env.js';
import { PtyPair } from '../helpers/pty.js';
import { needs } from '../helpers/system-tools.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const stop = (device: string): Decision => ({
  rule: 'manual-stop',
  ruleVersion: 't',
  at: Date.now(),
  inputs: [],
  reason: 'test',
  action: { kind: 'command', command: { device, actuator: 'conveyor', value: false, ttlMs: 5000 } },
});

async function commandAndAck(gw: Gateway, actuators: Actuators, device: string, via: string): Promise<void> {
  await waitFor(() => gw.actuation.routes.transportOf(device) === via, 5000, `${device} heard over ${via}`);
  gw.actuation.actuation.decide(stop(device));
  await waitFor(() => actuators.get('conveyor') === false, 5000, `command obeyed over ${via}`);
  await waitFor(() => gw.actuation.actuation.stats.acked === 1, 5000, `command-ack back over ${via}`);
  expect(gw.actuation.routes.sent[via]).toBeGreaterThanOrEqual(1);
}

describe('actuation over byte-stream links', () => {
  it("serial (pty): the command goes down the device's line and the ack comes back up", needs('socat'), async () => {
    const tmp = tempDir('outpost-act-serial-');
    cleanups.push(() => tmp.cleanup());
    const pty = await PtyPair.open(tmp.dir);
    cleanups.push(() => pty.unplug());
    const dev = generateManifest({ devices: 1, prefix: 'ser', model: 'press-vib-1' }).devices[0]!;
    const { gw } = await startTestGateway(join(tmp.dir, 'data'), [{ id: dev.id, publicKey: dev.publicKey }], {
      serial: { ports: [{ path: pty.a, device: dev.id }], reconnectMinMs: 50, reconnectMaxMs: 200 },
    });
    cleanups.push(() => gw.stop());
    const device = new VirtualDevice({ id: dev.id, seed: manifestSeed(dev), model: dev.model, signer: 'node' });
    const actuators = new Actuators({
      device: dev.id,
      gateways: [{ id: 'gw-test', publicKey: gw.identity.publicKey }],
      initial: { conveyor: true },
    });
    let link: SerialDeviceLink;
    const handler = commandHandler(actuators, device, (f) => link.send(f));
    link = new SerialDeviceLink(device, {
      path: pty.b,
      gatewayPublicKey: gw.identity.publicKey,
      gatewayId: 'gw-test',
      resendAfterMs: 300,
      reopenMs: 50,
      onCommand: (f) => handler(f),
    });
    link.start();
    cleanups.push(() => link.stop());
    link.send(device.nextFrame());
    await commandAndAck(gw, actuators, dev.id, 'serial');
    expect(link.stats.commands).toBe(1);
  });

  it("BLE (simulated radio, real noble): the command is written to the device's RX and the ack notified back", async () => {
    let peripheral: SimPeripheral | undefined;
    let handler: ((f: Uint8Array) => void) | undefined;
    const rig = await startBleRig(1, { peripheral: () => ({ onCommand: (f) => handler?.(f) }) });
    cleanups.push(() => rig.close());
    const device = rig.devices[0]!;
    peripheral = rig.peripherals[0]!;
    const actuators = new Actuators({
      device: device.id,
      gateways: [{ id: 'gw-test', publicKey: rig.gw.identity.publicKey }],
      initial: { conveyor: true },
    });
    handler = commandHandler(actuators, device, (f) => peripheral!.send(f));
    await waitFor(() => peripheral!.subscribed, 10_000, 'gateway subscribed to the peripheral');
    peripheral.send(device.nextFrame());
    await commandAndAck(rig.gw, actuators, device.id, 'ble');
    expect(peripheral.stats.commands).toBe(1);
  });
});

describe('firmware-sim fleet CLI with --actuators', () => {
  it("a separate firmware-sim process (the example's manifest and actuators.json) obeys the gateway's signed command and acks it", {
    timeout: 30_000,
  }, async () => {
    const example = join(import.meta.dirname, '../../rules/examples/factory-cell');
    const manifest = readManifest(join(example, 'manifest.json'));
    const tmp = tempDir('outpost-act-cli-');
    cleanups.push(() => tmp.cleanup());
    const { gw, url } = await startTestGateway(
      join(tmp.dir, 'data'),
      manifest.devices.map((d) => ({ id: d.id, publicKey: d.publicKey })),
    );
    cleanups.push(() => gw.stop());
    const args = [
      'bin/firmware-sim.js',
      'fleet',
      '--keys',
      join(example, 'manifest.json'),
      '--broker',
      url,
      '--rate',
      '5',
      '--signer',
      'node',
      '--status',
      '0.5',
    ];
    const child = spawn(
      process.execPath,
      [
        ...args,
        '--gateway-key',
        gw.identity.did,
        '--gateway-id',
        'gw-test',
        '--actuators',
        join(example, 'actuators.json'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    cleanups.push(
      () =>
        new Promise<void>((r) =>
          child.exitCode !== null ? r() : (child.once('exit', () => r()), child.kill('SIGTERM')),
        ),
    );
    await waitFor(() => gw.actuation.routes.transportOf('conveyor-01') === 'mqtt', 15_000, 'conveyor heard');
    expect(out).toContain('1 devices with actuators obey gw-test');
    gw.actuation.actuation.decide({
      ...stop('conveyor-01'),
      action: { kind: 'command', command: { device: 'conveyor-01', actuator: 'speed', value: 0, ttlMs: 5000 } },
    });
    await waitFor(() => gw.actuation.actuation.stats.acked === 1, 10_000, 'command acked by the firmware-sim process');
    // Its readings now report the new state.
    await waitFor(
      () => {
        const last = [...gw.frames.query({ device: 'conveyor-01' })].at(-1);
        const cose = last && decodeSign1(last.frame);
        const body = cose?.ok ? decodeBody(cose.value.payload) : undefined;
        return (
          body?.ok === true &&
          body.value.type === 'reading' &&
          body.value.records.some((r) => r.n === 'act.speed' && r.v === 0)
        );
      },
      5000,
      'act.speed = 0 in a reading',
    );
  });
});
