/**
 * The C device program updated by the real gateway, real processes: a compiled `gateway start`
 * child whose YAML config names a serial port (one end of a socat pty), the release and the
 * rollout made with the CLI only (`gateway firmware add`, `gateway firmware rollout`), and the
 * C host program (hardware/firmware/host, `build/outpost-device --update-dir`) on the other end,
 * its "flash" the files of a directory. It downloads the image over the gateway's serial
 * firmware link, verifies it, resets into the trial boot and confirms; `gateway firmware
 * status` shows it confirmed.
 *
 * A tampered image: the gateway refuses to store a release whose image does not match its
 * signed manifest (test/e2e/firmware-update.test.ts), so the tampering here is on the line: a
 * relay between two ptys alters one chunk's bytes on its way to the device and recomputes both
 * CRC-32Cs (the chunk's and the COBS frame's), as a tampering adapter or cable would. Only the
 * image's SHA-256 against the signed manifest catches it: the device reports failed
 * digest-mismatch, the gateway records it, and slot 0 still holds the old image.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { SerialPort } from 'serialport';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { decodeDown, encodeChunk } from '../../protocols/firmware-transfer.js';
import { Deframer, encodeSerialFrame, toHex } from '../../protocols/index.js';
import { testTempDir, waitFor } from '../helpers/env.js';
import { writeReleaseKey } from '../helpers/firmware.js';
import { gatewayCli, startGatewayProcess, stopGatewayProcess, writeGatewayConfig } from '../helpers/process.js';
import { testPty } from '../helpers/pty.js';
import { needs } from '../helpers/system-tools.js';

const run = promisify(execFile);
const FIRMWARE = new URL('../../hardware/firmware', import.meta.url).pathname;
const DEVICE_BIN = join(FIRMWARE, 'build/outpost-device');
const DEVICE = 'c-dev-1';
const IMAGE_BYTES = 30_000;
/** The chunk the tampering relay alters (the host program asks for 448-byte chunks). */
const TAMPERED_OFFSET = 448 * 5;

interface DeviceEvent {
  event: string;
  state?: string;
  reason?: string;
  running?: string;
}

interface RolloutView {
  state: string;
  devices: Record<string, { state: string; reason?: string }>;
}

/** A gateway process with the C device enrolled and a serial port at `gatewayTty`; the release 1.3.0 added through the CLI. */
async function startSite(dir: string, gatewayTty: string) {
  const deviceSeed = randomBytes(32);
  const gatewaySeed = randomBytes(32);
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(join(dataDir, 'identity.key'), `${toHex(gatewaySeed)}\n`, { mode: 0o600 });
  const { releaseKeyFile, policy } = writeReleaseKey(dir);
  const cfg = writeGatewayConfig(
    dir,
    dataDir,
    [{ id: DEVICE, publicKey: toHex(publicKeyFromSeed(deviceSeed)) }],
    [
      'simulate: { devices: 0 }',
      `policy: { file: ${JSON.stringify(policy)} }`,
      `serial: { ports: [{ path: ${JSON.stringify(gatewayTty)}, baudRate: 115200 }], reconnectMinMs: 50 }`,
    ],
  );
  const gw = await startGatewayProcess(cfg);
  onTestFinished(async () => {
    await stopGatewayProcess(gw);
  });
  // The device's first report must find the port open: it is how the gateway learns the device is there.
  await waitFor(
    () => gw.logs.some((l) => typeof l.msg === 'string' && /^serial port .* open at /.test(l.msg)),
    20_000,
    'the gateway opened its serial port',
  );
  const cli = async (args: string[]) => {
    const r = await gatewayCli([...args, '--config', cfg]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return r.stdout;
  };
  const image = randomBytes(IMAGE_BYTES);
  writeFileSync(join(dir, 'app.bin'), image);
  await cli(
    ['firmware', 'add', join(dir, 'app.bin'), '--version', '1.3.0', '--model', 'c-env'].concat([
      '--release-key',
      releaseKeyFile,
      '--wait',
      '60',
    ]),
  );
  const releaseSeed = Buffer.from(readFileSync(releaseKeyFile, 'utf8').trim(), 'hex');
  const status = async () => (JSON.parse(await cli(['firmware', 'status', 'r-c', '--json'])) as RolloutView[])[0]!;
  /** Reports the gateway refused (forged, replayed, undecodable): none is expected. */
  const refusedReports = () => gw.logs.filter((l) => l.msg === 'firmware report refused');
  return {
    refusedReports,
    deviceSeed,
    gatewayPub: publicKeyFromSeed(gatewaySeed),
    releasePub: publicKeyFromSeed(releaseSeed),
    image,
    cli,
    status,
  };
}

/** The C host program on `tty`, its flash in `flash`: each stdout line an event. */
function startDevice(
  tty: string,
  flash: string,
  keys: { deviceSeed: Uint8Array; gatewayPub: Uint8Array; releasePub: Uint8Array },
) {
  mkdirSync(flash, { recursive: true });
  const child: ChildProcess = spawn(
    DEVICE_BIN,
    [
      ...['--tty', tty, '--id', DEVICE, '--seed', toHex(keys.deviceSeed), '--gateway-key', toHex(keys.gatewayPub)],
      ...['--frames', '0', '--update-dir', flash, '--release-key', toHex(keys.releasePub), '--model', 'c-env'],
      ...['--version', '1.2.0', '--timeout-ms', '90000'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const events: DeviceEvent[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => events.push(JSON.parse(l) as DeviceEvent));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { events, exited, stderr: () => stderr };
}

async function openPort(path: string): Promise<SerialPort> {
  const port = new SerialPort({ path, baudRate: 115200, autoOpen: false, hupcl: false });
  await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
  onTestFinished(() => new Promise<void>((res) => port.close(() => res())));
  return port;
}

/**
 * Relays bytes between the gateway's pty and the device's; on the way down, the chunk at
 * TAMPERED_OFFSET gets one data byte flipped, its CRC-32C and the frame's recomputed.
 */
async function tamperingRelay(gatewaySide: string, deviceSide: string): Promise<{ tampered: number }> {
  const up = await openPort(gatewaySide);
  const down = await openPort(deviceSide);
  const stats = { tampered: 0 };
  const deframer = new Deframer();
  down.on('data', (d: Buffer) => up.write(d));
  up.on('data', (d: Buffer) => {
    for (const frame of deframer.push(new Uint8Array(d))) {
      const m = decodeDown(frame);
      let out = frame;
      if (m.ok && m.value.type === 'chunk' && m.value.offset === TAMPERED_OFFSET) {
        const data = Uint8Array.from(m.value.data);
        data[17]! ^= 0x40;
        out = encodeChunk({ digest: m.value.digest, offset: m.value.offset, data });
        stats.tampered++;
      }
      down.write(Buffer.from(encodeSerialFrame(out)));
    }
  });
  return stats;
}

const updates = (events: DeviceEvent[]) =>
  events.filter((e) => e.event === 'update').map((e) => (e.reason ? `${e.state}:${e.reason}` : e.state));

describe('the C device program updated by the gateway over a pty', needs('make', 'cc', 'libsodium', 'socat'), () => {
  beforeAll(async () => {
    await run('make', ['-C', FIRMWARE, '--no-print-directory', 'device'], { timeout: 120_000 });
  }, 120_000);

  it('`gateway firmware add` and `rollout` through a gateway process: the device downloads over serial, resets into the trial, confirms; status says confirmed and slot 0 is the image', {
    timeout: 120_000,
  }, async () => {
    const dir = testTempDir('outpost-fw-c-gw-');
    const pty = await testPty(dir);
    const site = await startSite(dir, pty.a);
    await site.cli(['firmware', 'rollout', '1.3.0', '--devices', DEVICE, '--id', 'r-c', '--wait', '60']);
    const dev = startDevice(pty.b, join(dir, 'flash'), site);
    expect(await dev.exited, dev.stderr()).toBe(0);
    const states = updates(dev.events);
    expect(states.slice(0, 3), JSON.stringify(states)).toEqual(['idle', 'offered', 'downloading']);
    // The trial boot confirms, and the program's (re)connect report says it again.
    expect(states.slice(-4)).toEqual(['verified', 'installing', 'confirmed', 'confirmed']);
    expect(states.filter((s) => s === 'downloading:resume')).toEqual([]); // no stall: the window kept chunks flowing
    expect(dev.events.filter((e) => e.event === 'update').at(-1)?.running).toBe('1.3.0');
    expect(dev.events.filter((e) => e.event === 'reset')).toHaveLength(1);
    expect(dev.events.find((e) => e.event === 'trial')).toEqual({ event: 'trial', fails: false });
    expect(readFileSync(join(dir, 'flash', 'slot0.bin')).equals(site.image)).toBe(true);
    await waitFor(async () => (await site.status()).state === 'done', 30_000, 'rollout done');
    expect((await site.status()).devices[DEVICE]).toMatchObject({ state: 'confirmed' });
    expect(site.refusedReports()).toEqual([]);
  });

  it('a chunk tampered on the line (its CRCs recomputed) is caught by the image digest: the device reports failed digest-mismatch, status records it, slot 0 keeps the old image', {
    timeout: 120_000,
  }, async () => {
    const dir = testTempDir('outpost-fw-c-gw-tamper-');
    const gatewayPty = await testPty(dir, 'gw', 'relay-up');
    const devicePty = await testPty(dir, 'relay-down', 'dev');
    const site = await startSite(dir, gatewayPty.a);
    const relay = await tamperingRelay(gatewayPty.b, devicePty.a);
    await site.cli(['firmware', 'rollout', '1.3.0', '--devices', DEVICE, '--id', 'r-c', '--wait', '60']);
    const dev = startDevice(devicePty.b, join(dir, 'flash'), site);
    expect(await dev.exited, dev.stderr()).toBe(0);
    expect(relay.tampered).toBeGreaterThan(0);
    const states = updates(dev.events);
    expect(states.slice(0, 3), JSON.stringify(states)).toEqual(['idle', 'offered', 'downloading']);
    expect(states.at(-1)).toBe('failed:digest-mismatch');
    expect(states).not.toContain('verified');
    expect(dev.events.filter((e) => e.event === 'update').at(-1)?.running).toBe('1.2.0');
    expect(dev.events.filter((e) => e.event === 'reset')).toEqual([]);
    expect(readFileSync(join(dir, 'flash', 'slot0.bin'), 'utf8')).toBe('factory image 1.2.0\n');
    await waitFor(
      async () => (await site.status()).devices[DEVICE]?.state === 'failed',
      30_000,
      'the failure recorded',
    );
    expect((await site.status()).devices[DEVICE]).toMatchObject({ state: 'failed', reason: 'digest-mismatch' });
    expect(site.refusedReports()).toEqual([]);
  });
});
