/**
 * A real tcpdump capturing a test's loopback traffic to a pcap file, and a reader of that file's
 * TCP payloads. Run the test in its own network namespace (`unshare -n`, lo up) so the capture
 * holds only the test's own traffic.
 *
 * tcpdump writes its savefile through stdio buffers: without `-U` (flush per packet) a short
 * capture can end up empty; it flushes and closes only on SIGINT/SIGTERM, so `stop()` waits for
 * its exit before the file is read. It starts capturing only once it prints "listening on", so
 * `startCapture` resolves then, before the test sends anything. libpcap hands packets over in
 * blocks on a timer, and those not handed over when tcpdump is stopped are lost: so
 * `--immediate-mode`, and `stop()` first sends a marker connection of its own and waits until
 * the file holds it (everything before it is then written too). `-Z root`: Debian's tcpdump
 * otherwise drops to the `tcpdump` user before opening the file, which a root-owned 0700 temp
 * dir refuses.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { onTestFinished } from 'vitest';
import { waitFor } from './env.js';

export interface Capture {
  /** Waits until the file holds everything sent so far, stops tcpdump (SIGINT) and resolves once it has exited. */
  stop(): Promise<void>;
}

export async function startCapture(file: string, iface = 'lo'): Promise<Capture> {
  const child = spawn(
    'tcpdump',
    ['-i', iface, '--immediate-mode', '-U', '-s', '0', '-n', '-Z', 'root', '-w', file, 'tcp'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start listening: ${stderr}`)), 10_000);
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/listening on/.test(stderr)) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump exited (${code}) before listening: ${stderr}`));
    });
  });
  let stopped: Promise<void> | undefined;
  const drain = async (): Promise<void> => {
    const sentinel = randomBytes(16);
    const server = createServer((s) => s.resume());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((resolve, reject) => {
      const c = connect(port, '127.0.0.1', () => c.end(sentinel));
      c.once('close', () => resolve()).once('error', reject);
    });
    server.close();
    await waitFor(() => readFileSync(file).includes(sentinel), 10_000, 'tcpdump to write the sentinel segment');
  };
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (child.exitCode === null) await drain();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      await exited;
    })();
    return stopped;
  };
  onTestFinished(async () => {
    if (stopped !== undefined) return void (await stopped);
    child.kill('SIGINT');
    await exited;
  });
  return { stop };
}

export interface TcpSegment {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly payload: Buffer;
}

/** TCP segments with a payload in a pcap file (link types Ethernet, as on lo, and Linux cooked v1). */
export function readTcpSegments(file: string): TcpSegment[] {
  const buf = readFileSync(file);
  if (buf.length < 24) throw new Error(`${file}: no pcap header (${buf.length} bytes)`);
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && buf.readUInt32BE(0) !== 0xa1b2c3d4 && buf.readUInt32BE(0) !== 0xa1b23c4d)
    throw new Error(`${file}: not a pcap file`);
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linkType = u32(20);
  const linkHeader = linkType === 1 ? 14 : linkType === 113 ? 16 : -1;
  if (linkHeader < 0) throw new Error(`${file}: link type ${linkType} not read here`);
  const out: TcpSegment[] = [];
  for (let o = 24; o + 16 <= buf.length; ) {
    const capLen = u32(o + 8);
    const pkt = buf.subarray(o + 16, o + 16 + capLen);
    o += 16 + capLen;
    const etherType = pkt.readUInt16BE(linkHeader - 2);
    let ip = linkHeader;
    let proto: number;
    let ipEnd: number;
    if (etherType === 0x0800) {
      proto = pkt[ip + 9]!;
      ipEnd = ip + pkt.readUInt16BE(ip + 2);
      ip += (pkt[ip]! & 0x0f) * 4;
    } else if (etherType === 0x86dd) {
      proto = pkt[ip + 6]!;
      ipEnd = ip + 40 + pkt.readUInt16BE(ip + 4);
      ip += 40;
    } else continue;
    if (proto !== 6) continue;
    const payload = pkt.subarray(ip + (pkt[ip + 12]! >> 4) * 4, Math.min(ipEnd, pkt.length));
    if (payload.length > 0) out.push({ srcPort: pkt.readUInt16BE(ip), dstPort: pkt.readUInt16BE(ip + 2), payload });
  }
  return out;
}
