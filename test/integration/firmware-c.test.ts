/**
 * The C firmware companion (hardware/firmware) proven against the gateway. Each test names
 * the behaviour it checks.
 *
 * - `make -C hardware/firmware test`: the library built with -Wall -Wextra -Werror,
 *   its unit tests and the update receiver's (byte-identical to protocols/ on the shared
 *   vectors) under AddressSanitizer + UBSan, and fixed-length libFuzzer runs of the
 *   command parser and of the update receiver.
 * - `make size`: the codec cross-compiled for Cortex-M4, under 4 KiB flash / 1 KiB RAM;
 *   the update receiver's size on its own line, outside that budget.
 * - End to end: the C device program → socat pty → the gateway's serial transport
 *   → store; a gateway-signed command goes back, the C program verifies it and
 *   answers with a signed command-ack, which the gateway stores.
 *
 * Each test names the system tools it needs (skipped without them, a failure in CI).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/gateway.js';
import { AckStatus, decodeBody, decodeSign1, fromHex as parseHex, signBody, toHex } from '../../protocols/index.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { running, startTestGateway, tempDir, waitFor } from '../helpers/env.js';
import { PtyPair } from '../helpers/pty.js';
import { needs } from '../helpers/system-tools.js';

const run = promisify(execFile);
const fromHex = (h: string): Uint8Array => parseHex(h)!;
const FIRMWARE = new URL('../../hardware/firmware', import.meta.url).pathname;
const DEVICE_BIN = join(FIRMWARE, 'build/outpost-device');

const make = (...args: string[]) =>
  run('make', ['-C', FIRMWARE, '--no-print-directory', ...args], { maxBuffer: 16 * 1024 * 1024, timeout: 240_000 });

describe('C firmware companion: build, sanitizers, fuzzing, size', () => {
  it('make test: -Werror build, unit tests (codec, update receiver) under ASan + UBSan against the shared vectors, 1M-run libFuzzer pass over the command parser and 100k over the update receiver (clauses: CI builds with -Wall -Wextra -Werror, ASan/UBSan; fuzz run with no crash; byte-identical vectors)', {
    ...needs('make', 'cc', 'libsodium', 'clang'),
    timeout: 300_000,
  }, async () => {
    const { stdout, stderr } = await make('-B', 'test'); // -B: compile afresh, so the flags are in the output
    const out = stdout + stderr;
    expect(out).toContain('-Wall -Wextra -Werror');
    expect(out).toContain('-fsanitize=address,undefined');
    expect(out.match(/^\d+ tests, \d+ checks, 0 failed$/gm)).toHaveLength(2); // test_outpost, test_update
    expect(out).toContain('build/test_update test/test_update.c');
    expect(out).toMatch(/-fsanitize=fuzzer,address/);
    expect(out).toMatch(/Done 1000000 runs/);
    expect(out).toMatch(/Done 100000 runs/); // fuzz_update: kept short
    expect(out).not.toMatch(/ERROR: (AddressSanitizer|libFuzzer)|runtime error:/);
  });

  it('make size: codec for Cortex-M4 (-Os, no crypto) under 4 KiB flash and 1 KiB static RAM; the update receiver under 6 KiB on its own line (clause: size report)', {
    ...needs('make', 'arm-none-eabi-gcc'),
    timeout: 120_000,
  }, async () => {
    const { stdout } = await make('size');
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+[0-9a-f]+\s+\S*outpost-cm4\.o$/m.exec(stdout);
    expect(m, stdout).not.toBeNull();
    const [text, data, bss] = [Number(m![1]), Number(m![2]), Number(m![3])];
    console.log(`firmware codec, Cortex-M4 -Os: flash ${text + data} B, static RAM ${data + bss} B`);
    expect(text + data).toBeLessThan(4096);
    expect(data + bss).toBeLessThan(1024);
    // The update receiver is an option a firmware links on top, reported on its own line.
    const u = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+[0-9a-f]+\s+\(TOTALS\)$/m.exec(stdout);
    expect(u, stdout).not.toBeNull();
    const [utext, udata, ubss] = [Number(u![1]), Number(u![2]), Number(u![3])];
    console.log(
      `firmware update receiver (+ SHA-256), Cortex-M4 -Os: flash ${utext + udata} B, static RAM ${udata + ubss} B`,
    );
    expect(utext + udata).toBeLessThan(6144);
    expect(udata + ubss).toBe(0);
  });
});

interface DeviceEvent {
  event: string;
  [k: string]: unknown;
}

describe('C device program over a real pty into the gateway', needs('make', 'cc', 'libsodium', 'socat'), () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  beforeAll(async () => {
    await make('device');
  }, 120_000);

  const DEVICE_ID = 'c-dev-1';
  const seed = Uint8Array.from({ length: 32 }, (_, i) => (i * 31 + 5) & 0xff);

  async function setup() {
    const tmp = tempDir('outpost-fw-c-');
    cleanups.push(() => tmp.cleanup());
    const pty = await PtyPair.open(tmp.dir);
    cleanups.push(() => pty.unplug());
    const { gw } = await startTestGateway(
      join(tmp.dir, 'data'),
      [{ id: DEVICE_ID, publicKey: toHex(publicKeyFromSeed(seed)) }],
      {
        serial: { ports: [{ path: pty.a, device: DEVICE_ID }], reconnectMinMs: 50, reconnectMaxMs: 200 },
      },
    );
    cleanups.push(() => gw.stop());
    return { pty, gw };
  }

  function startDevice(gw: Gateway, tty: string, args: string[]) {
    const child: ChildProcess = spawn(
      DEVICE_BIN,
      [
        '--tty',
        tty,
        '--id',
        DEVICE_ID,
        '--seed',
        toHex(seed),
        '--gateway-key',
        toHex(gw.identity.publicKey),
        '--gateway-id',
        'gw-test',
        '--boot',
        '3',
        '--resend-ms',
        '300',
        ...args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    cleanups.push(() => child.kill('SIGKILL'));
    const events: DeviceEvent[] = [];
    let text = '';
    child.stdout!.on('data', (d: Buffer) => {
      text += d.toString();
      let nl: number;
      while ((nl = text.indexOf('\n')) >= 0) {
        events.push(JSON.parse(text.slice(0, nl)) as DeviceEvent);
        text = text.slice(nl + 1);
      }
    });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    return { events, exited, stderr: () => err };
  }

  const commandFrame = (gw: Gateway, id: Uint8Array, actuator: string, sign = gw.identity.sign) =>
    signBody(
      { type: 'command', id, target: DEVICE_ID, actuator, value: 1, expires: Date.now() + 60_000, issued: Date.now() },
      'gw-test',
      sign,
    );

  const storedBodies = (gw: Gateway) =>
    [...gw.frames.query({ device: DEVICE_ID })].map((f) => {
      const c = decodeSign1(f.frame);
      if (!c.ok) throw new Error(c.error.message);
      const b = decodeBody(c.value.payload);
      if (!b.ok) throw new Error(b.error.message);
      return b.value;
    });

  it('readings from the C library are stored; a gateway-signed command is verified by the C program and its signed command-ack is stored (clause: C device program through a real pty; signed command verified and acked)', async () => {
    const { pty, gw } = await setup();
    const dev = startDevice(gw, pty.b, [
      '--frames',
      '5',
      '--interval-ms',
      '20',
      '--commands',
      '1',
      '--actuator',
      'relay',
      '--timeout-ms',
      '20000',
    ]);
    await waitFor(
      () => gw.frames.count() >= 5,
      15_000,
      `5 readings stored (device: ${JSON.stringify(dev.events.slice(-3))} ${dev.stderr()})`,
    );

    // the store keeps receive order, which a resend (a frame sent before the port was open) can change
    const readings = storedBodies(gw).sort((a, b) =>
      a.type === 'reading' && b.type === 'reading' ? a.seq - b.seq : 0,
    );
    expect(readings.map((b) => (b.type === 'reading' ? [b.boot, b.seq] : b.type))).toEqual([
      [3, 0],
      [3, 1],
      [3, 2],
      [3, 3],
      [3, 4],
    ]);
    const first = readings[0]!;
    expect(first.type === 'reading' && first.records).toEqual([
      { bn: `${DEVICE_ID}/`, n: 'temp', u: 'Cel', v: 20 },
      { n: 'hum', u: '%RH', v: 40 },
    ]);

    const cid = fromHex('c0ffee0000000001');
    expect(await running(gw, 'serial').send(DEVICE_ID, commandFrame(gw, cid, 'relay'))).toBe(true);
    expect(await dev.exited).toBe(0); // exits once every frame (readings and the command-ack) was frame-acked

    const cmd = dev.events.find((e) => e.event === 'command');
    expect(cmd).toMatchObject({ id: 'c0ffee0000000001', actuator: 'relay', verified: true, status: AckStatus.ok });
    expect(dev.events.filter((e) => e.event === 'bad-downlink')).toEqual([]);
    expect(dev.events.at(-1)).toMatchObject({ event: 'done', sent: 5, commands: 1, badDownlink: 0 });
    // every frame-ack the C program took was gateway-signed and freed a kept frame
    expect(dev.events.filter((e) => e.event === 'frame-ack' && e.freed === 1)).toHaveLength(6);

    await waitFor(() => gw.frames.count() >= 6, 5_000, 'command-ack stored');
    const ack = storedBodies(gw).find((b) => b.type === 'command-ack');
    expect(ack).toMatchObject({ type: 'command-ack', boot: 3, seq: 5, status: AckStatus.ok });
    expect(ack?.type === 'command-ack' && toHex(ack.commandId)).toBe('c0ffee0000000001');
    expect(gw.ingest.stats.stored).toBe(6);
  }, 60_000);

  it('a command signed by another key is refused by the C program: answered bad-signature, not acted on; unknown actuators are reported (clause: C program verifies the gateway signature)', async () => {
    const { pty, gw } = await setup();
    const dev = startDevice(gw, pty.b, [
      '--frames',
      '1',
      '--commands',
      '1',
      '--actuator',
      'relay',
      '--timeout-ms',
      '20000',
    ]);
    await waitFor(() => gw.frames.count() >= 1, 15_000, 'reading stored');

    const forger = Uint8Array.from({ length: 32 }, (_, i) => i);
    expect(
      await running(gw, 'serial').send(
        DEVICE_ID,
        commandFrame(gw, fromHex('bad0000000000001'), 'relay', (m) => signEd25519(forger, m)),
      ),
    ).toBe(true);
    await waitFor(() => dev.events.some((e) => e.event === 'command'), 10_000, 'forged command seen');
    expect(await running(gw, 'serial').send(DEVICE_ID, commandFrame(gw, fromHex('c0ffee0000000002'), 'siren'))).toBe(
      true,
    );
    expect(await dev.exited).toBe(0);

    const cmds = dev.events.filter((e) => e.event === 'command');
    expect(cmds).toEqual([
      { event: 'command', id: 'bad0000000000001', actuator: 'relay', verified: false, status: AckStatus.badSignature },
      {
        event: 'command',
        id: 'c0ffee0000000002',
        actuator: 'siren',
        verified: true,
        status: AckStatus.unknownActuator,
      },
    ]);
    await waitFor(() => gw.frames.count() >= 3, 5_000, 'both command-acks stored');
    const acks = storedBodies(gw).filter((b) => b.type === 'command-ack');
    expect(acks.map((a) => (a.type === 'command-ack' ? [toHex(a.commandId), a.status] : [])).sort()).toEqual([
      ['bad0000000000001', AckStatus.badSignature],
      ['c0ffee0000000002', AckStatus.unknownActuator],
    ]);
  }, 60_000);
});
