/**
 * Serial transport over real ptys (socat): firmware-sim → pty → the gateway's
 * serialport → ingest → lmdb, with frame-acks signed by the gateway coming
 * back. Each test names the behaviour it checks. What every transport must do (frames stored
 * once and verbatim, bad frames refused around good ones, replays, resuming after an unplug)
 * is the ingest acceptance suite's (test/acceptance/ingest-serial.ts); here, what is
 * serial's own: line noise, USB hot-plug, ack timing and ack abuse, commands.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualDevice } from '../../firmware-sim/device.js';
import { generateManifest, manifestSeed, writeManifest } from '../../firmware-sim/manifest.js';
import { SerialDeviceLink } from '../../firmware-sim/transports/serial.js';
import type { Gateway } from '../../gateway/gateway.js';
import { SerialTransport } from '../../gateway/transports/serial.js';
import { listSerialPorts } from '../../gateway/transports/serial-ports.js';
import { AckStatus, decodeBody, decodeSign1, Deframer, encodeSerialFrame, signBody } from '../../protocols/index.js';
import type { IngestOutcome } from '../../gateway/ingest/outcome.js';
import type { IngestPipeline } from '../../gateway/ingest/pipeline.js';
import { SerialPort } from 'serialport';
import { signEd25519 } from '../../gateway/crypto/ed25519.js';
import { memoryLogger, running, startTestGateway, tempDir, waitFor } from '../helpers/env.js';
import { PtyPair } from '../helpers/pty.js';
import { needs } from '../helpers/system-tools.js';

// CI installs socat (.ci/run); without it locally these tests are skipped, in CI they fail.

/** Stored seqs of a device, sorted (the store keeps receive order, which resends reorder). */
const seqsOf = (gw: Gateway, device: string): number[] =>
  [...gw.frames.query({ device })].map((f) => f.seq).sort((a, b) => a - b);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('serial over a pty', needs('socat'), () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** The device's end of the line, opened raw: collects the frame-acks the gateway sends. */
  function deviceEnd(path: string): { port: SerialPort; acks: { boot: number; seq: number; status: number }[] } {
    const port = new SerialPort({ path, baudRate: 115200 });
    cleanups.push(() => new Promise<void>((r) => (port.isOpen ? port.close(() => r()) : r())));
    const acks: { boot: number; seq: number; status: number }[] = [];
    const deframer = new Deframer();
    port.on('data', (c: Buffer) => {
      for (const f of deframer.push(c)) {
        const cose = decodeSign1(f);
        const b = cose.ok ? decodeBody(cose.value.payload) : undefined;
        if (b?.ok && b.value.type === 'frame-ack')
          acks.push({ boot: b.value.boot, seq: b.value.seq, status: b.value.status });
      }
    });
    return { port, acks };
  }

  async function setup(serial?: Record<string, unknown>, extra: Record<string, unknown> = {}) {
    const tmp = tempDir('outpost-serial-');
    cleanups.push(() => tmp.cleanup());
    const pty = await PtyPair.open(tmp.dir);
    cleanups.push(() => pty.unplug());
    const manifest = generateManifest({ devices: 1, prefix: 'ser', site: 'site-1', model: 'env-1' });
    const dev = manifest.devices[0]!;
    const { gw, lines } = await startTestGateway(join(tmp.dir, 'data'), [{ id: dev.id, publicKey: dev.publicKey }], {
      serial: serial ?? { ports: [{ path: pty.a, device: dev.id }], reconnectMinMs: 50, reconnectMaxMs: 200 },
      ...extra,
    });
    cleanups.push(() => gw.stop());
    return { tmp, pty, manifest, dev, gw, lines };
  }

  it('firmware-sim serial with 1% byte noise: every frame stored exactly once through ack + resend (clause: real pty, 1% noise)', async () => {
    const { tmp, pty, manifest, dev, gw } = await setup();
    const keys = join(tmp.dir, 'keys.json');
    writeManifest(keys, manifest);
    const N = 60;
    const child = spawn(
      process.execPath,
      [
        'bin/firmware-sim.js',
        'serial',
        '--keys',
        keys,
        '--device',
        dev.id,
        '--port',
        pty.b,
        '--rate',
        '40',
        '--max-frames',
        String(N),
        '--noise',
        '0.01',
        '--seed',
        '42',
        '--resend-ms',
        '200',
        '--gateway-key',
        gw.identity.did,
        '--gateway-id',
        'gw-test',
        '--signer',
        'node',
        '--status',
        '0.5',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    cleanups.push(() => child.kill('SIGKILL'));
    await waitFor(() => gw.frames.count() >= N, 25_000, `${N} frames stored (sim said: ${out.slice(-300)})`);
    // let the last acks arrive, then stop the simulator and read its final counters
    await waitFor(() => /pending=0 /.test(out.split('\n').filter(Boolean).pop() ?? ''), 10_000, 'sim pending=0');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const last = out.trim().split('\n').pop()!;
    expect(last).toMatch(new RegExp(`generated=${N} `));
    expect(last).toMatch(/acked=60 /);
    expect(last).toMatch(/unverified=0 bad-downlink=0/);
    expect(out).not.toContain('UNVERIFIED');

    expect(seqsOf(gw, dev.id)).toEqual(range(N)); // each (boot, seq) once, none missing
    expect(gw.ingest.stats.stored).toBe(N);
    const [link] = running(gw, 'serial').status();
    // the noise really hit the line: frames were dropped by CRC / COBS and resent
    expect(link!.deframer.badCrc + link!.deframer.badCobs).toBeGreaterThan(5);
    expect(Number(/resent=(\d+)/.exec(last)![1])).toBeGreaterThan(5);
    expect(link!.stats.rejected).toBe(0); // CRC-32C catches the noise before ingest
    expect(link!.stats.acks).toBe(link!.stats.stored + link!.stats.duplicates);
  });

  // Unplugged and plugged again mid-stream, resuming with nothing lost: the ingest acceptance
  // suite's reconnect case (test/acceptance/ingest-serial.ts).
  it('commands go down the serial link to the device, signed by the gateway; none for a device on no link', async () => {
    const { pty, dev, gw } = await setup();
    const device = new VirtualDevice({ id: dev.id, seed: manifestSeed(dev), model: dev.model, signer: 'node' });
    const commands: Uint8Array[] = [];
    const link = new SerialDeviceLink(device, {
      path: pty.b,
      gatewayPublicKey: gw.identity.publicKey,
      gatewayId: 'gw-test',
      reopenMs: 50,
      onCommand: (f) => commands.push(f),
    });
    link.start();
    cleanups.push(() => link.stop());
    await waitFor(() => link.connected && running(gw, 'serial').links[0]!.isOpen, 5000, 'both ends open');
    const cmd = signBody(
      {
        type: 'command',
        id: Uint8Array.of(1, 2, 3, 4),
        target: dev.id,
        actuator: 'relay',
        value: true,
        expires: Date.now() + 60_000,
        issued: Date.now(),
      },
      'gw-test',
      gw.identity.sign,
    );
    expect(await running(gw, 'serial').send(dev.id, cmd)).toBe(true);
    expect(await running(gw, 'serial').send('nobody', cmd)).toBe(false);
    await waitFor(() => commands.length === 1, 3000, 'command at the device');
    expect(Buffer.from(commands[0]!).equals(Buffer.from(cmd))).toBe(true);
  });

  it('a port matched by USB ids comes back under another /dev path and is found again without restart (clause: hot-plug by USB ids)', async () => {
    const { tmp, pty, dev, gw } = await setup({ ports: [] });
    await pty.unplug();
    // A fake sysfs/dev tree: the adapter is ttyUSB0 first, ttyUSB3 after the replug.
    const sys = join(tmp.dir, 'sys');
    const devRoot = join(tmp.dir, 'dev');
    mkdirSync(devRoot);
    const plugAdapter = (tty: string): void => {
      const usb = join(sys, 'devices', 'usb1', '1-1');
      const port = join(usb, '1-1:1.0', tty);
      mkdirSync(join(port, 'tty', tty), { recursive: true });
      mkdirSync(join(sys, 'bus', 'usb-serial', 'drivers', 'cp210x'), { recursive: true });
      mkdirSync(join(sys, 'class', 'tty'), { recursive: true });
      for (const [f, v] of Object.entries({
        idVendor: '10c4',
        idProduct: 'ea60',
        serial: 'A1B2',
        manufacturer: 'Silicon Labs',
        product: 'CP2102 USB to UART Bridge Controller',
      }))
        writeFileSync(join(usb, f), v + '\n');
      symlinkSync(join(sys, 'bus', 'usb-serial', 'drivers', 'cp210x'), join(port, 'driver'));
      symlinkSync(port, join(port, 'tty', tty, 'device'));
      symlinkSync(join(port, 'tty', tty), join(sys, 'class', 'tty', tty));
    };
    const unplugAdapter = (): void => rmSync(join(sys), { recursive: true, force: true });
    plugAdapter('ttyUSB0');
    await pty.plug(join(devRoot, 'ttyUSB0'), join(tmp.dir, 'mcu'));
    const listed = await listSerialPorts({ udev: false, sysRoot: sys, devRoot });
    expect(listed).toEqual([
      expect.objectContaining({
        path: join(devRoot, 'ttyUSB0'),
        vendorId: '10c4',
        productId: 'ea60',
        serialNumber: 'A1B2',
        driver: 'cp210x',
      }),
    ]);

    const { log } = memoryLogger();
    const serial = SerialTransport.start(
      {
        ports: [{ vendorId: '10C4', productId: 'ea60', serialNumber: 'A1B2', baudRate: 921600, device: dev.id }],
        gatewayId: 'gw-test',
        sign: gw.identity.sign,
        reconnectMinMs: 50,
        reconnectMaxMs: 200,
        list: () => listSerialPorts({ udev: false, sysRoot: sys, devRoot }),
      },
      gw.ingest,
      log,
    );
    cleanups.push(() => serial.close());
    const device = new VirtualDevice({ id: dev.id, seed: manifestSeed(dev), model: dev.model, signer: 'node' });
    const link = new SerialDeviceLink(device, {
      path: join(tmp.dir, 'mcu'),
      gatewayPublicKey: gw.identity.publicKey,
      resendAfterMs: 300,
      reopenMs: 50,
    });
    link.start();
    cleanups.push(() => link.stop());
    for (let i = 0; i < 20; i++) link.send(device.nextFrame());
    await waitFor(() => device.pendingCount === 0, 10_000, 'first frames acked');
    expect(serial.links[0]!.path).toBe(join(devRoot, 'ttyUSB0'));

    await pty.unplug();
    unplugAdapter();
    for (let i = 0; i < 20; i++) link.send(device.nextFrame()); // generated while unplugged
    await waitFor(() => !serial.links[0]!.isOpen, 5000, 'the gateway notices the unplug');
    plugAdapter('ttyUSB3');
    await pty.plug(join(devRoot, 'ttyUSB3'), join(tmp.dir, 'mcu'));
    for (let i = 0; i < 20; i++) link.send(device.nextFrame());
    await waitFor(() => device.pendingCount === 0 && device.generated === 60, 10_000, 'frames after the replug acked');
    expect(serial.links[0]!.path).toBe(join(devRoot, 'ttyUSB3'));
    expect(seqsOf(gw, dev.id)).toEqual(range(60));
  });

  it('a line unplugged and plugged back at once (the node back under the same number) is reopened', async () => {
    const { pty, dev, gw } = await setup();
    const device = new VirtualDevice({ id: dev.id, seed: manifestSeed(dev), model: dev.model, signer: 'node' });
    const link = new SerialDeviceLink(device, {
      path: pty.b,
      gatewayPublicKey: gw.identity.publicKey,
      resendAfterMs: 300,
      reopenMs: 50,
    });
    link.start();
    cleanups.push(() => link.stop());
    for (let i = 0; i < 10; i++) link.send(device.nextFrame());
    await waitFor(() => device.pendingCount === 0, 10_000, 'first frames acked');
    const opens = running(gw, 'serial').links[0]!.stats.opens;
    // socat ends and starts again at once, as the chaos campaign's final heal does. The fd's
    // hang-up usually closes the port; when the poller misses it (seen under load), the
    // presence check tells the new node from the old by its ctime.
    await pty.unplug();
    await pty.plug();
    for (let i = 0; i < 10; i++) link.send(device.nextFrame());
    await waitFor(() => device.pendingCount === 0 && device.generated === 20, 10_000, 'frames after the replug acked');
    expect(running(gw, 'serial').links[0]!.stats.opens).toBeGreaterThan(opens);
    expect(seqsOf(gw, dev.id)).toEqual(range(20));
  });

  it('acks only once the outcome is final, with its status; a transient failure gets no ack (clause: ack after durable append, nothing for transient failures)', async () => {
    const { pty, dev, gw } = await setup({ ports: [] });
    // An ingest stand-in whose outcomes the test decides, so the ack's timing can be observed.
    const pending: Array<(o: IngestOutcome) => void> = [];
    const ingest = { submit: () => new Promise<IngestOutcome>((r) => pending.push(r)) } as unknown as IngestPipeline;
    const { log } = memoryLogger();
    const serial = SerialTransport.start(
      { ports: [{ path: pty.a, baudRate: 115200 }], gatewayId: 'gw-test', sign: gw.identity.sign, reconnectMinMs: 50 },
      ingest,
      log,
    );
    cleanups.push(() => serial.close());
    const { port, acks } = deviceEnd(pty.b);
    await waitFor(() => serial.links[0]!.isOpen && port.isOpen, 5000, 'both ends open');
    const device = new VirtualDevice({ id: dev.id, seed: manifestSeed(dev), model: dev.model, signer: 'node' });
    const f0 = device.nextFrame();
    const f1 = device.nextFrame();
    port.write(Buffer.from(encodeSerialFrame(f0.bytes)));
    port.write(Buffer.from(encodeSerialFrame(f1.bytes)));
    await waitFor(() => pending.length === 2, 5000, 'two frames submitted');
    await new Promise((r) => setTimeout(r, 200));
    expect(acks).toEqual([]); // not durable yet: no ack
    pending[1]!({ status: 'failed', reason: 'store-failed', detail: 'disk full' });
    pending[0]!({ status: 'stored', device: dev.id, boot: f0.boot, seq: f0.seq });
    await waitFor(() => acks.length === 1, 3000, 'ack of the stored frame');
    await new Promise((r) => setTimeout(r, 200));
    expect(acks).toEqual([{ boot: f0.boot, seq: f0.seq, status: AckStatus.ok }]); // none for the failed one
    // the device resends the failed frame; now it is a duplicate of a stored one
    port.write(Buffer.from(encodeSerialFrame(f1.bytes)));
    await waitFor(() => pending.length === 3, 5000, 'resend submitted');
    pending[2]!({ status: 'duplicate', device: dev.id, boot: f1.boot, seq: f1.seq });
    await waitFor(() => acks.length === 2, 3000, 'ack of the resend');
    expect(acks[1]).toEqual({ boot: f1.boot, seq: f1.seq, status: AckStatus.duplicate });
    expect(serial.status()[0]!.stats).toMatchObject({ frames: 3, stored: 1, duplicates: 1, failed: 1, acks: 2 });
  });

  it('does not ack a forgery naming a pending frame, and acks a signed replay as replayed (clause: acks cannot be abused)', async () => {
    // One boot remembered: a frame of an earlier boot never stored is past the replay memory.
    const { pty, dev, gw } = await setup(undefined, { ingest: { replayBoots: 1 } });
    const { port, acks } = deviceEnd(pty.b);
    await waitFor(() => running(gw, 'serial').links[0]!.isOpen && port.isOpen, 5000, 'both ends open');
    const device = new VirtualDevice({ id: dev.id, seed: manifestSeed(dev), model: dev.model, signer: 'node' });
    const frames = [device.nextFrame()];
    device.reboot();
    frames.push(device.nextFrame());
    // A forgery naming the device's next (boot, seq), signed with another key.
    const forged = signBody(
      { type: 'reading', boot: frames[0]!.boot, seq: frames[0]!.seq, records: [{ n: 't', v: 1 }] },
      dev.id,
      (m) => signEd25519(new Uint8Array(32).fill(7), m),
    );
    port.write(Buffer.from(encodeSerialFrame(forged)));
    await waitFor(() => gw.ingest.stats.rejected.get('bad-signature') === 1, 5000, 'forgery rejected');
    // The new boot's frame first, so the previous boot is then forgotten: its frame is a replay.
    port.write(Buffer.from(encodeSerialFrame(frames[1]!.bytes)));
    port.write(Buffer.from(encodeSerialFrame(frames[0]!.bytes)));
    await waitFor(() => acks.length === 2, 5000, 'two acks');
    await new Promise((r) => setTimeout(r, 200));
    expect(acks).toEqual([
      { boot: frames[1]!.boot, seq: frames[1]!.seq, status: AckStatus.ok },
      { boot: frames[0]!.boot, seq: frames[0]!.seq, status: AckStatus.replayed },
    ]);
  });
});
