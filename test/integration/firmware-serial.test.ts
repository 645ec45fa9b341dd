/**
 * Firmware transfer over a real pty (socat): the gateway's serial link carries the offer and
 * the chunks as frames of the port's COBS stream, firmware-sim's updatable device (update.ts
 * behind update-serial.ts) downloads, verifies, test-boots and confirms; its signed reports
 * come back on the same line. No MQTT broker runs: the device is reached over the transport
 * it was heard on.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it, onTestFinished } from 'vitest';
import { generateManifest, manifestSeed, writeManifest } from '../../firmware-sim/manifest.js';
import { UpdateSerialLink } from '../../firmware-sim/update-serial.js';
import { rolloutStatus } from '../../gateway/firmware/rollout.js';
import { publicKeyToDidKey } from '../../protocols/index.js';
import { testTempDir, waitFor } from '../helpers/env.js';
import { expectResumedAndConfirmed, startFirmwareGateway } from '../helpers/firmware-gateway.js';
import { type PtyPair, testPty } from '../helpers/pty.js';
import { needs } from '../helpers/system-tools.js';

// CI installs socat (.ci/run); without it locally these tests are skipped, in CI they fail.

async function rig(opts: {
  size: number;
  corruptChunksAt?: number[];
  /** The gateway runs its MQTT broker too (the device must still be served over serial). */
  mqtt?: boolean;
  /** Runs once a third of the image is held. */
  midway?: (pty: PtyPair, link: UpdateSerialLink) => Promise<void>;
}) {
  const dir = testTempDir('outpost-fw-serial-');
  const pty = await testPty(dir);
  const seed = randomBytes(32);
  const fw = await startFirmwareGateway(dir, [{ id: 'dev-1', seed }], {
    serial: { ports: [{ path: pty.a, baudRate: 921600 }], reconnectMinMs: 50, reconnectMaxMs: 200 },
    ...(opts.mqtt && { mqtt: { enabled: true, port: 0 } }),
  });
  onTestFinished(() => fw.gw.stop());
  let midway: Promise<void> | undefined;
  const link: UpdateSerialLink = new UpdateSerialLink({
    id: 'dev-1',
    seed,
    model: 'env-1',
    version: '1.0.0',
    releaseKey: fw.releasePub,
    dir: join(dir, 'flash'),
    path: pty.b,
    baudRate: 921600,
    // Corrupt chunks and cuts are asked for again after a short stall; a clean transfer must
    // not stall at all (its no-resend assertions), however slow a loaded box makes 400 ms.
    stallMs: opts.corruptChunksAt || opts.midway ? 400 : 10_000,
    selfTestMs: 20,
    ...(opts.corruptChunksAt && { corruptChunksAt: opts.corruptChunksAt }),
    // The cut starts from the device's own report: a pty carries bytes as fast as the CPU
    // goes, so a poll from the test could see the whole image arrive before it cut the line.
    ...(opts.midway && {
      onReport: (_state: string, offset: number) => {
        if (midway === undefined && offset > opts.size / 3) midway = opts.midway!(pty, link);
      },
    }),
  }).start();
  onTestFinished(() => link.stop());
  // The device's first report (idle) is how the gateway learns it is on this port.
  await waitFor(() => fw.gw.firmware.transfer?.linkOf('dev-1')?.transport === 'serial', 10_000, 'device heard');
  const { image, digest } = await fw.release(opts.size);
  fw.rollout('r-serial', digest, ['dev-1']);
  if (opts.midway) {
    await waitFor(() => midway !== undefined, 20_000, 'a third downloaded');
    await midway;
  }
  await waitFor(
    () => link.device.history.some((h) => ['confirmed', 'failed', 'rolled-back'].includes(h.state)),
    40_000,
    () => JSON.stringify(link.device.history.slice(-5)),
  );
  // The runner logs the outcome and its last step (and the test does not stop the gateway mid-commit).
  await waitFor(() => rolloutStatus(fw.gw.firmware.store, 'r-serial')?.done === true, 10_000, 'rollout done');
  return { dir, fw, link, image, digest };
}

describe('firmware over serial', needs('socat'), () => {
  it('a device on a pty downloads, verifies and confirms the release over serial, though MQTT runs too; its slot holds the image', {
    timeout: 60_000,
  }, async () => {
    const { dir, fw, link, image } = await rig({ size: 200_000, mqtt: true });
    expect(fw.gw.broker).toBeDefined();
    expect(link.device.history.at(-1)).toMatchObject({ state: 'confirmed' });
    expect(link.device.running.version).toBe('1.1.0');
    expect(readFileSync(join(dir, 'flash', 'slot0.bin')).equals(image)).toBe(true);
    const serial = fw.gw.serial!.links[0]!;
    expect(serial.stats.firmware).toBeGreaterThan(10); // the reports came up the serial line
    expect(serial.stats.rejected).toBe(0); // none reached ingest as a bad frame
    expect(fw.gw.firmware.transfer!.stats.bytes).toBeGreaterThanOrEqual(image.length);
    expect(fw.gw.firmware.transfer!.stats.linkFull).toBe(0);
    expect(link.stream.stats.messages).toBeGreaterThan(image.length / 2048);
    // The window (12 chunks of 2 KiB) held: nothing arrived past it, nothing was lost or resent.
    expect(link.stream.stats.maxAhead).toBeLessThanOrEqual(12 * 2048);
    expect(link.stream.stats.maxAhead).toBeGreaterThan(2048); // several chunks were in flight
    expect(link.stream.stats.outOfOrder).toBe(0);
    expect(fw.gw.firmware.store.deviceHistory('r-serial').at(-1)?.body.state).toBe('confirmed');
  });

  it('a chunk whose data does not match its CRC-32C is dropped and asked for again, never installed', {
    timeout: 60_000,
  }, async () => {
    const at = 2048 * 5;
    const { dir, link, image } = await rig({ size: 60_000, corruptChunksAt: [at] });
    expect(link.stream.stats.corrupted).toBe(1);
    // The device stalled at the bad chunk's offset and asked to resume from there.
    const resumeAt = link.device.history.findIndex(
      (h) => h.state === 'downloading' && h.reason === 'resume' && h.offset === at,
    );
    expect(resumeAt).toBeGreaterThan(0);
    expect(link.device.history.at(-1)).toMatchObject({ state: 'confirmed' });
    const slot = readFileSync(join(dir, 'flash', 'slot0.bin'));
    expect(slot.equals(image)).toBe(true);
    expect(createHash('sha256').update(slot).digest('hex')).toBe(createHash('sha256').update(image).digest('hex'));
  });

  it('the adapter unplugged mid-transfer: both ends reopen, the device resumes from its offset and confirms', {
    timeout: 60_000,
  }, async () => {
    let cutAt = 0;
    const { dir, link, image } = await rig({
      size: 150_000,
      midway: async (pty, l) => {
        await pty.unplug();
        cutAt = l.device.offset;
        await new Promise((r) => setTimeout(r, 300));
        await pty.plug();
      },
    });
    // After the replug it asked to resume from what it held, not from 0.
    expectResumedAndConfirmed(link.device.history, cutAt, join(dir, 'flash', 'slot0.bin'), image);
  });

  it('`firmware-sim update --serial` runs the device as a child process: it ends confirmed', {
    timeout: 60_000,
  }, async () => {
    const dir = testTempDir('outpost-fw-serial-cli-');
    const pty = await testPty(dir);
    const fleet = generateManifest({ devices: 1, model: 'env-1' });
    writeManifest(join(dir, 'fleet.json'), fleet);
    const d = fleet.devices[0]!;
    const fw = await startFirmwareGateway(dir, [{ id: d.id, seed: manifestSeed(d) }], {
      serial: { ports: [{ path: pty.a, baudRate: 921600 }], reconnectMinMs: 50 },
    });
    onTestFinished(() => fw.gw.stop());
    const sim = new URL('../../bin/firmware-sim.js', import.meta.url).pathname;
    const child = spawn(
      process.execPath,
      [
        sim,
        'update',
        '--keys',
        join(dir, 'fleet.json'),
        '--serial',
        pty.b,
        '--baud',
        '921600',
        '--release-key',
        publicKeyToDidKey(fw.releasePub),
        '--state',
        join(dir, 'flash'),
        '--device',
        d.id,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    onTestFinished(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    const lines: { state: string }[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as { state: string }));
    await waitFor(() => fw.gw.firmware.transfer?.linkOf(d.id)?.transport === 'serial', 20_000, 'device heard');
    const { image, digest } = await fw.release(50_000);
    fw.rollout('r-cli', digest, [d.id]);
    await waitFor(
      () => lines.some((l) => l.state === 'confirmed'),
      40_000,
      () => JSON.stringify(lines.slice(-5)),
    );
    expect(readFileSync(join(dir, 'flash', d.id, 'slot0.bin')).equals(image)).toBe(true);
    await waitFor(() => rolloutStatus(fw.gw.firmware.store, 'r-cli')?.done === true, 10_000, 'rollout done');
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    expect(child.exitCode).toBe(0);
  });
});
