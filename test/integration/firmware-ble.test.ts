/**
 * Firmware transfer over BLE: the gateway's real noble code against firmware-sim's simulated
 * radio, with an updatable device (update.ts behind update-ble.ts) as a Nordic UART Service
 * peripheral. Offers and chunks are written to RX in ATT payloads of MTU − 3, reports come
 * back as TX notifications; at MTU 23 and 247 the device ends confirmed with the image in its
 * slot, every chunk fits the MTU's budget and no more are in flight than the window.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it, onTestFinished } from 'vitest';
import { BleRadio } from '../../firmware-sim/transports/ble-radio.js';
import { generateManifest, manifestSeed, writeManifest } from '../../firmware-sim/manifest.js';
import { UpdatePeripheral } from '../../firmware-sim/update-ble.js';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { rolloutStatus } from '../../gateway/firmware/rollout.js';
import { BLE_INFLIGHT_BYTES, bleChunkBytes, bleWindow } from '../../protocols/firmware-transfer.js';
import { attPayload, publicKeyToDidKey, serialFrameMaxWireLength } from '../../protocols/index.js';
import { testTempDir, waitFor } from '../helpers/env.js';
import { expectResumedAndConfirmed, startFirmwareGateway } from '../helpers/firmware-gateway.js';

async function rig(
  mtu: number,
  size: number,
  corruptChunksAt?: number[],
  /** Runs once a third of the image is held. */
  midway?: (radio: BleRadio, p: UpdatePeripheral) => Promise<void>,
  /** false: a radio speaking noble's JSON writes only (ble-radio.ts `binaryWrites`). */
  binaryWrites = true,
) {
  const dir = testTempDir('outpost-fw-ble-');
  const radio = await BleRadio.start({ advertiseIntervalMs: 50, binaryWrites });
  onTestFinished(() => radio.close());
  const seed = randomBytes(32);
  const fw = await startFirmwareGateway(dir, [{ id: 'dev-1', seed }], {
    ble: { enabled: true, radio: radio.url, connectTimeoutMs: 2000, backoffMinMs: 50, backoffMaxMs: 500 },
  });
  onTestFinished(() => fw.gw.stop());
  let cut: Promise<void> | undefined;
  const p: UpdatePeripheral = radio
    .attach(
      (i) =>
        new UpdatePeripheral(i, {
          id: 'dev-1',
          seed,
          model: 'env-1',
          version: '1.0.0',
          releaseKey: fw.releasePub,
          dir: join(dir, 'flash'),
          mtu,
          // Corrupt chunks and cuts are asked for again after a short stall; a clean transfer must
          // not stall at all (its rewind-free assertions), however slow a loaded box makes 400 ms.
          stallMs: corruptChunksAt || midway ? 400 : 10_000,
          selfTestMs: 20,
          ...(corruptChunksAt && { corruptChunksAt }),
          // The cut starts from the device's own report: the simulated radio carries bytes as fast
          // as the CPU goes, so a poll from the test could see the whole image arrive before it cut.
          // (After this turn: the report being sent is not cut off inside its own send.)
          ...(midway && {
            onReport: (_state: string, offset: number) => {
              if (cut === undefined && offset > size / 3) cut = Promise.resolve().then(() => midway(radio, p));
            },
          }),
        }),
    )
    .start();
  onTestFinished(() => p.stop());
  await waitFor(() => fw.gw.firmware.transfer?.linkOf('dev-1')?.transport === 'ble', 10_000, 'device heard');
  const { image, digest } = await fw.release(size);
  fw.rollout('r-ble', digest, ['dev-1']);
  if (midway) {
    await waitFor(() => cut !== undefined, 20_000, 'a third downloaded');
    await cut;
  }
  await waitFor(
    () => p.device.history.some((h) => ['confirmed', 'failed', 'rolled-back'].includes(h.state)),
    40_000,
    () => JSON.stringify(p.device.history.slice(-5)),
  );
  // The runner logs the outcome and its last step (and the test does not stop the gateway mid-commit).
  await waitFor(() => rolloutStatus(fw.gw.firmware.store, 'r-ble')?.done === true, 10_000, 'rollout done');
  return { dir, fw, p, image, radio };
}

describe('firmware over BLE (simulated radio, real noble)', () => {
  for (const [mtu, size, binary] of [
    [23, 24_000, true],
    [247, 200_000, true],
    [247, 100_000, false],
  ] as const) {
    it(`MTU ${mtu}${binary ? '' : ', a radio taking JSON writes only'}: the device downloads, verifies and confirms; chunks fit the MTU, the window holds`, {
      timeout: 60_000,
    }, async () => {
      const { dir, fw, p, image, radio } = await rig(mtu, size, undefined, undefined, binary);
      expect(p.device.history.at(-1)).toMatchObject({ state: 'confirmed' });
      expect(readFileSync(join(dir, 'flash', 'slot0.bin')).equals(image)).toBe(true);
      const att = attPayload(mtu);
      expect(p.stats.maxWriteBytes).toBeLessThanOrEqual(att); // every RX write fits one ATT payload
      // A chunk message, framed, spans at most 16 ATT payloads.
      expect(serialFrameMaxWireLength(p.stream.stats.largestFrame)).toBeLessThanOrEqual(16 * att);
      expect(p.stream.stats.largestFrame).toBeGreaterThan(bleChunkBytes(mtu)); // the chunks were that big
      // Never more in flight than the window: nothing arrived past it, nothing was lost.
      expect(p.stream.stats.maxAhead).toBeLessThanOrEqual(bleWindow(mtu) * bleChunkBytes(mtu));
      expect(p.stream.stats.maxAhead).toBeGreaterThan(bleChunkBytes(mtu)); // several chunks were in flight
      // The window's framed chunks fit the device's receive buffer, in bytes whatever the MTU.
      expect(bleWindow(mtu) * serialFrameMaxWireLength(bleChunkBytes(mtu) + 58)).toBeLessThanOrEqual(
        BLE_INFLIGHT_BYTES,
      );
      expect(p.stream.stats.outOfOrder).toBe(0);
      expect(fw.gw.ble!.links.get('dev-1')!.stats.firmware).toBeGreaterThan(5);
      expect(fw.gw.firmware.transfer!.stats.rewinds).toBe(0);
      if (binary) {
        // Every RX write came in binary messages, a frame's ATT payloads (or a window's) in one.
        expect(radio.writes.json).toBe(0);
        expect(radio.writes.binary).toBeGreaterThan(4 * radio.writes.messages);
        // The gateway asked for notifications in binary too: the device's reports came so.
        expect(radio.notifications.json).toBe(0);
        expect(radio.notifications.binary).toBeGreaterThan(0);
      } else {
        expect(radio.notifications.binary).toBe(0);
        expect(radio.notifications.json).toBeGreaterThan(0);
        // The radio never said it takes binary writes: noble's JSON command, one per ATT write.
        expect(radio.writes.binary).toBe(0);
        expect(radio.writes.json).toBeGreaterThan(Math.floor(size / att));
      }
    });
  }

  it('MTU 23: a chunk whose data does not match its CRC-32C is asked for again, never installed', {
    timeout: 60_000,
  }, async () => {
    const at = bleChunkBytes(23) * 7;
    const { dir, p, image } = await rig(23, 8_000, [at]);
    expect(p.stream.stats.corrupted).toBe(1);
    expect(p.device.history.some((h) => h.state === 'downloading' && h.reason === 'resume' && h.offset === at)).toBe(
      true,
    );
    expect(p.device.history.at(-1)).toMatchObject({ state: 'confirmed' });
    expect(readFileSync(join(dir, 'flash', 'slot0.bin')).equals(image)).toBe(true);
  });

  it('MTU 247: out of range mid-transfer and back: the gateway reconnects, the device resumes from its offset', {
    timeout: 60_000,
  }, async () => {
    let cutAt = 0;
    const { dir, p, image } = await rig(247, 120_000, undefined, async (radio, p) => {
      radio.setInRange(p, false);
      cutAt = p.device.offset;
      await new Promise((r) => setTimeout(r, 300));
      radio.setInRange(p, true);
    });
    expect(p.stats.sessions).toBeGreaterThanOrEqual(2); // the central subscribed again
    expectResumedAndConfirmed(p.device.history, cutAt, join(dir, 'flash', 'slot0.bin'), image);
  });

  it('`firmware-sim update --ble-port` runs the device on a radio of its own in a child process: it ends confirmed', {
    timeout: 60_000,
  }, async () => {
    const dir = testTempDir('outpost-fw-ble-cli-');
    const fleet = generateManifest({ devices: 1, model: 'env-1' });
    writeManifest(join(dir, 'fleet.json'), fleet);
    const d = fleet.devices[0]!;
    // The device must trust the release key before the gateway (started once the radio is up) exists.
    const releaseSeed = randomBytes(32);
    const sim = new URL('../../bin/firmware-sim.js', import.meta.url).pathname;
    const child = spawn(
      process.execPath,
      [
        sim,
        'update',
        '--keys',
        join(dir, 'fleet.json'),
        '--ble-port',
        '0',
        '--mtu',
        '185',
        '--release-key',
        publicKeyToDidKey(publicKeyFromSeed(releaseSeed)),
        '--state',
        join(dir, 'flash'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    onTestFinished(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    const lines: { state: string }[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as { state: string }));
    const url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stderr! }).on('line', (l) => {
        const m = /BLE radio at (ws:\/\/\S+)/.exec(l);
        if (m) resolve(m[1]!);
      });
      child.once('exit', () => reject(new Error('firmware-sim exited')));
    });
    const fw = await startFirmwareGateway(
      dir,
      [{ id: d.id, seed: manifestSeed(d) }],
      {
        ble: { enabled: true, radio: url, connectTimeoutMs: 2000, backoffMinMs: 50, backoffMaxMs: 500 },
      },
      releaseSeed,
    );
    onTestFinished(() => fw.gw.stop());
    await waitFor(() => fw.gw.firmware.transfer?.linkOf(d.id)?.transport === 'ble', 20_000, 'device heard');
    const { image, digest } = await fw.release(40_000);
    fw.rollout('r-cli', digest, [d.id]);
    await waitFor(
      () => lines.some((l) => l.state === 'confirmed'),
      40_000,
      () => JSON.stringify(lines.slice(-5)),
    );
    expect(readFileSync(join(dir, 'flash', d.id, 'slot0.bin')).equals(image)).toBe(true);
    expect(fw.gw.ble!.links.get(d.id)!.mtu).toBe(185);
    await waitFor(() => rolloutStatus(fw.gw.firmware.store, 'r-cli')?.done === true, 10_000, 'rollout done');
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    expect(child.exitCode).toBe(0);
  });
});
