/**
 * `npm run bench:serial [-- --quick]`: the serial path, measured in one run.
 *
 * 1. Deframer throughput (MB/s of wire bytes, 64 KiB chunks, real signed
 *    frames) against the floor of any 0x00-delimited framing: a raw
 *    `Buffer.indexOf(0)` scan of the same bytes.
 * 2. Line utilisation over a socat pty at 115200 and 921600 baud. A pty moves
 *    bytes as fast as both ends go and ignores the baud rate, so the simulated
 *    device paces its writer at the line rate (10 bits per byte, 8N1: a token
 *    bucket refilled every ~2 ms, see firmware-sim/transports/serial.ts) and
 *    keeps it busy. Utilisation = wire bytes of the frames the gateway stored
 *    (COBS + CRC + delimiter included) / (elapsed × baud / 10), where elapsed
 *    runs from the first byte written to the last frame stored (durable, acked).
 *    Payload share = COSE frame bytes / wire bytes.
 * 3. The same link unpaced: what the gateway takes from a pty when nothing
 *    limits the line (headroom).
 *
 * Prints figure / value / baseline / ratio / goal and writes bench/results/serial.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { VirtualDevice } from '../firmware-sim/device.js';
import { generateManifest, manifestSeed } from '../firmware-sim/manifest.js';
import { SerialDeviceLink } from '../firmware-sim/transports/serial.js';
import { Deframer, encodeSerialFrame } from '../protocols/index.js';
import { startTestGateway, tempDir, waitFor } from '../test/helpers/env.js';
import { PtyPair } from '../test/helpers/pty.js';
import { haveTool, installHint } from '../test/helpers/system-tools.js';
import type { Row } from './lib/row.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' } } });
const quick = values.quick === true;

function deframerBench(seconds: number): { deframer: number; indexOf: number; garbage: number; frameBytes: number } {
  const m = generateManifest({ devices: 1, prefix: 'bench', site: 'site-1', model: 'env-1' });
  const dev = new VirtualDevice({
    id: m.devices[0]!.id,
    seed: manifestSeed(m.devices[0]!),
    model: 'env-1',
    signer: 'node',
    bufferCapacity: 1,
  });
  const wires: Uint8Array[] = [];
  for (let i = 0; i < 512; i++) wires.push(encodeSerialFrame(dev.nextFrame().bytes));
  const one = Buffer.concat(wires);
  const stream = Buffer.concat(Array.from({ length: Math.ceil((16 << 20) / one.length) }, () => one));
  const chunks: Buffer[] = [];
  for (let i = 0; i < stream.length; i += 65536) chunks.push(stream.subarray(i, i + 65536));
  const garbage = Buffer.alloc(16 << 20);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (Math.random() * 256) | 0;
  const gchunks: Buffer[] = [];
  for (let i = 0; i < garbage.length; i += 65536) gchunks.push(garbage.subarray(i, i + 65536));

  const timeIt = (fn: (cs: Buffer[]) => number, cs: Buffer[], bytes: number): number => {
    fn(cs); // warm up
    let n = 0;
    const t0 = performance.now();
    let sink = 0;
    while (performance.now() - t0 < seconds * 1000) {
      sink += fn(cs);
      n++;
    }
    if (sink < 0) console.log(sink);
    return (n * bytes) / 1e6 / ((performance.now() - t0) / 1000);
  };
  const deframe = (cs: Buffer[]): number => {
    const d = new Deframer();
    let f = 0;
    for (const c of cs) f += d.push(c).length;
    return f;
  };
  const scan = (cs: Buffer[]): number => {
    let f = 0;
    for (const c of cs) for (let i = c.indexOf(0); i >= 0; i = c.indexOf(0, i + 1)) f++;
    return f;
  };
  if (deframe(chunks) !== scan(chunks)) throw new Error('deframer lost frames in the bench stream');
  return {
    deframer: timeIt(deframe, chunks, stream.length),
    indexOf: timeIt(scan, chunks, stream.length),
    garbage: timeIt(deframe, gchunks, garbage.length),
    frameBytes: wires[0]!.length,
  };
}

interface LineResult {
  baud: number;
  paced: boolean;
  frames: number;
  seconds: number;
  wireBytes: number;
  frameBytes: number;
  writerBytes: number;
}

async function lineBench(baud: number, seconds: number, paced: boolean): Promise<LineResult> {
  const tmp = tempDir('outpost-bench-serial-');
  const pty = await PtyPair.open(tmp.dir);
  const m = generateManifest({ devices: 1, prefix: 'bench', site: 'site-1', model: 'env-1' });
  const d = m.devices[0]!;
  const { gw } = await startTestGateway(join(tmp.dir, 'data'), [{ id: d.id, publicKey: d.publicKey }], {
    serial: { ports: [{ path: pty.a, baudRate: baud, device: d.id }], reconnectMinMs: 50 },
  });
  const device = new VirtualDevice({
    id: d.id,
    seed: manifestSeed(d),
    model: 'env-1',
    signer: 'node',
    bufferCapacity: 100_000,
  });
  // Paced, nothing is lost on a pty, so resends would only blur the figure; unpaced, the gateway sheds load and resends recover it.
  const link = new SerialDeviceLink(device, {
    path: pty.b,
    baudRate: baud,
    pace: paced,
    resendAfterMs: paced ? 60_000 : 1000,
  });
  link.start();
  await waitFor(() => link.connected && gw.serial!.links[0]!.isOpen, 5000, 'serial link open');
  await new Promise((r) => setTimeout(r, 100));
  const stored0 = gw.ingest.stats.stored;
  const bytes0 = link.stats.bytesOut;
  let wireBytes = 0;
  let frameBytes = 0;
  const sub = gw.ingest.frames$.subscribe((f) => {
    wireBytes += encodeSerialFrame(f.frame).length;
    frameBytes += f.frame.length;
  });
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  // Keep the line busy: top up the writer whenever less than ~20 ms of line time is queued.
  const low = Math.max(512, baud / 10 / 50);
  while (performance.now() < end) {
    if (paced) {
      while (link.queuedBytes < low) link.send(device.nextFrame());
    } else {
      for (let i = 0; i < 32 && device.pendingCount < 2000; i++) link.send(device.nextFrame());
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await waitFor(() => device.pendingCount === 0, 30_000, 'all frames acked').catch((e: Error) => {
    console.log(
      device.pendingCount,
      device.generated,
      link.stats,
      link.queuedBytes,
      JSON.stringify(gw.serial!.status()),
      gw.ingest.stats.snapshot(),
    );
    throw e;
  });
  const elapsed = (performance.now() - t0) / 1000;
  sub.unsubscribe();
  const res = {
    baud,
    paced,
    frames: gw.ingest.stats.stored - stored0,
    seconds: elapsed,
    wireBytes,
    frameBytes,
    writerBytes: link.stats.bytesOut - bytes0,
  };
  await link.stop();
  await gw.stop();
  await pty.unplug();
  tmp.cleanup();
  return res;
}

async function main(): Promise<void> {
  if (!haveTool('socat')) throw new Error(`bench:serial needs socat (${installHint('socat')})`);
  const secs = quick ? 1.5 : 5;
  console.log(
    `outpost serial bench (${quick ? 'quick' : 'full'}): deframer vs indexOf scan, and frames over a socat pty paced at the baud rate`,
  );
  const df = deframerBench(quick ? 0.5 : 2);
  const lines: LineResult[] = [];
  for (const baud of [115200, 921600]) lines.push(await lineBench(baud, secs, true));
  const unpaced = await lineBench(921600, quick ? 1 : 3, false);
  const rows: Row[] = [
    {
      figure: 'deframer, signed frames (64 KiB chunks)',
      value: df.deframer,
      unit: 'MB/s',
      baseline: 'indexOf(0)',
      baselineValue: df.indexOf,
      ratio: df.deframer / df.indexOf,
    },
    { figure: 'raw Buffer.indexOf(0) scan, same bytes', value: df.indexOf, unit: 'MB/s' },
    {
      figure: 'deframer, random garbage',
      value: df.garbage,
      unit: 'MB/s',
      baseline: 'indexOf(0)',
      baselineValue: df.indexOf,
      ratio: df.garbage / df.indexOf,
    },
    {
      figure: 'deframer vs 921600 baud line (92.2 kB/s)',
      value: df.deframer / 0.09216,
      unit: 'x line',
      goal: '>= 100x',
      pass: df.deframer / 0.09216 >= 100,
    },
  ];
  for (const l of lines) {
    const capacity = l.baud / 10; // bytes/s at 8N1
    const util = l.wireBytes / l.seconds / capacity;
    const perFrame = l.wireBytes / l.frames;
    rows.push(
      {
        figure: `${l.baud} baud: frames stored`,
        value: l.frames / l.seconds,
        unit: 'frames/s',
        baseline: 'line max',
        baselineValue: capacity / perFrame,
        ratio: l.frames / l.seconds / (capacity / perFrame),
      },
      {
        figure: `${l.baud} baud: line utilisation (wire bytes)`,
        value: util * 100,
        unit: '%',
        goal: '>= 95%',
        pass: util >= 0.95,
      },
      { figure: `${l.baud} baud: payload share of wire bytes`, value: (l.frameBytes / l.wireBytes) * 100, unit: '%' },
      {
        figure: `${l.baud} baud: writer rate vs line rate`,
        value: (l.writerBytes / l.seconds / capacity) * 100,
        unit: '%',
        goal: '<= 100%',
        pass: l.writerBytes / l.seconds <= capacity * 1.001,
      },
    );
  }
  rows.push({ figure: 'unpaced pty: frames stored', value: unpaced.frames / unpaced.seconds, unit: 'frames/s' });
  rows.push({
    figure: 'unpaced pty: equivalent line rate',
    value: ((unpaced.wireBytes / unpaced.seconds) * 10) / 1e6,
    unit: 'Mbaud',
  });
  const fmt = (n: number, d = 1): string => (Number.isFinite(n) ? n.toFixed(d) : '');
  console.log(
    `${'figure'.padEnd(44)} ${'value'.padStart(10)} ${'unit'.padEnd(9)} ${'baseline'.padEnd(11)} ${'base val'.padStart(9)} ${'ratio'.padStart(7)}  ${'goal'.padEnd(8)} result`,
  );
  for (const r of rows) {
    console.log(
      `${r.figure.padEnd(44)} ${fmt(r.value).padStart(10)} ${r.unit.padEnd(9)} ${(r.baseline ?? '').padEnd(11)} ${(r.baselineValue !== undefined ? fmt(r.baselineValue) : '').padStart(9)} ${(r.ratio !== undefined ? fmt(r.ratio, 3) + 'x' : '').padStart(7)}  ${(r.goal ?? '').padEnd(8)} ${r.pass === undefined ? '' : r.pass ? 'pass' : 'FAIL'}`,
    );
  }
  console.log(`(frame on the wire: ${df.frameBytes} bytes incl. CRC, COBS and delimiter; ${secs} s per paced run)`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./results/serial.json', import.meta.url),
    JSON.stringify({ at: new Date().toISOString(), quick, rows, lines, unpaced }, null, 2) + '\n',
  );
}

await main();
