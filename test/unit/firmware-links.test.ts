/**
 * FirmwareTransfer over its links (gateway/firmware/transfer.ts, links.ts): a device is
 * served over the transport it was last heard on; the window is cut to what the link holds in
 * flight and the chunk to its largest; a chunk the link does not take is not counted as sent,
 * so the next report asks for it again. The links here are fakes at the edge (they record what
 * would go on the wire); the reports are real device-signed COSE_Sign1.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { createSigner } from '../../firmware-sim/crypto.js';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import type { FirmwareLink, FirmwareTransport, LinkLimits, ReportSource } from '../../gateway/firmware/links.js';
import type { FirmwareStore, Release } from '../../gateway/firmware/releases.js';
import { FirmwareTransfer } from '../../gateway/firmware/transfer.js';
import { createLogger } from '../../gateway/logger.js';
import { CHUNK_OVERHEAD, decodeDown, encodeReport, type UpdateReport } from '../../protocols/firmware-transfer.js';
import { deviceIdToKid, encodeSign1, serialFrameMaxWireLength, toHex } from '../../protocols/index.js';

class FakeLink implements FirmwareLink {
  readonly sent: { device: string; offset: number; length: number }[] = [];
  offers = 0;
  accepts = true;
  onReport: ((r: Uint8Array, from: ReportSource) => void) | undefined;
  constructor(
    readonly transport: FirmwareTransport,
    private readonly lim: LinkLimits,
    readonly totalInflightBytes?: number,
  ) {}
  async start(fn: (r: Uint8Array, from: ReportSource) => void): Promise<void> {
    this.onReport = fn;
  }
  send(device: string, message: Uint8Array): boolean {
    if (!this.accepts) return false;
    const m = decodeDown(message);
    if (m.ok && m.value.type === 'chunk')
      this.sent.push({ device, offset: m.value.offset, length: m.value.data.length });
    else this.offers++;
    return true;
  }
  limits(): LinkLimits {
    return this.lim;
  }
}

const SIZE = 100_000;
const image = randomBytes(SIZE);
const digest = new Uint8Array(createHash('sha256').update(image).digest());
const release = {
  digest: toHex(digest),
  signed: { manifest: { size: SIZE, digest }, bytes: Uint8Array.of(1, 2, 3) },
} as unknown as Release;
const store = {
  read: (_r: Release, off: number, len: number) => image.subarray(off, off + len),
} as unknown as FirmwareStore;
const seed = randomBytes(32);
const sign = createSigner(seed);
let n = 0;
function report(offset: number, window: number, chunkSize: number, reason?: string): Uint8Array {
  return reportOf('dev-1', offset, window, chunkSize, reason);
}
function reportOf(
  device: string,
  offset: number,
  window: number,
  chunkSize: number,
  reason?: string,
  state: UpdateReport['state'] = 'downloading',
): Uint8Array {
  const r: UpdateReport = {
    boot: 1,
    n: ++n,
    time: Date.now(),
    state,
    digest,
    offset,
    window,
    chunkSize,
    running: '1.0.0',
    ...(reason !== undefined && { reason }),
  };
  return encodeSign1({ kid: deviceIdToKid(device), payload: encodeReport(r) }, sign);
}

async function rig() {
  const mqtt = new FakeLink('mqtt', { maxChunk: 32 * 1024, maxInflightBytes: Number.POSITIVE_INFINITY });
  const serial = new FakeLink('serial', { maxChunk: 4000, maxInflightBytes: 10_000 });
  const pub = publicKeyFromSeed(seed);
  const t = await new FirmwareTransfer(
    [mqtt, serial],
    store,
    (id) => (id === 'dev-1' ? pub : undefined),
    createLogger('error'),
  ).start();
  return { t, mqtt, serial };
}

describe('firmware transfer over links', () => {
  it('a device never heard gets MQTT; once heard on serial (a frame or a report), serial', async () => {
    const { t, mqtt, serial } = await rig();
    t.offer('dev-1', release, 'r');
    expect([mqtt.offers, serial.offers]).toEqual([1, 0]);
    t.heard('dev-1', 'serial');
    t.offer('dev-1', release, 'r');
    expect([mqtt.offers, serial.offers]).toEqual([1, 1]);
    t.heard('dev-1', 'mqtt');
    // A verified report on serial moves it back there, and tells the link.
    const accepted: string[] = [];
    serial.onReport!(report(0, 4, 1024, 'resume'), { accepted: (d) => accepted.push(d) });
    expect(accepted).toEqual(['dev-1']);
    expect(t.linkOf('dev-1')?.transport).toBe('serial');
    expect(serial.sent.length).toBe(4);
    // An unknown transport name (a frame from elsewhere) changes nothing.
    t.heard('dev-1', 'lora');
    expect(t.linkOf('dev-1')?.transport).toBe('serial');
  });

  it('the window is cut to what the link holds in flight, the chunk to its largest', async () => {
    const { t, serial } = await rig();
    t.offer('dev-1', release, 'r');
    serial.onReport!(report(0, 64, 8192), { claimed: 'dev-1' });
    const wire = serialFrameMaxWireLength(4000 + CHUNK_OVERHEAD);
    expect(serial.sent.every((c) => c.length === 4000)).toBe(true);
    expect(serial.sent.length).toBe(Math.floor(10_000 / wire)); // 2, not 64
    expect(serial.sent.length * wire).toBeLessThanOrEqual(10_000);
  });

  it("a link that batches gets each report's window of chunks in one batch", async () => {
    const batched = new (class extends FakeLink {
      /** Chunks sent inside each batch. */
      readonly batches: number[] = [];
      private inBatch = false;
      batch(fn: () => void): void {
        const before = this.sent.length;
        this.inBatch = true;
        fn();
        this.inBatch = false;
        this.batches.push(this.sent.length - before);
      }
      override send(device: string, message: Uint8Array): boolean {
        const chunk = decodeDown(message);
        if (chunk.ok && chunk.value.type === 'chunk' && !this.inBatch) throw new Error('chunk sent outside a batch');
        return super.send(device, message);
      }
    })('ble', { maxChunk: 1000, maxInflightBytes: 100_000 });
    const t = await new FirmwareTransfer(
      [batched],
      store,
      () => publicKeyFromSeed(seed),
      createLogger('error'),
    ).start();
    t.heard('dev-1', 'ble');
    t.offer('dev-1', release, 'r');
    batched.onReport!(report(0, 8, 1000, 'resume'), {});
    batched.onReport!(report(6000, 8, 1000), {});
    expect(batched.batches).toEqual([8, 6]);
    expect(batched.sent.map((c) => c.offset)).toEqual(Array.from({ length: 14 }, (_, i) => i * 1000));
  });

  it('a chunk the link does not take is sent again on the next report; a report for another device is refused', async () => {
    const { t, serial } = await rig();
    t.offer('dev-1', release, 'r');
    serial.accepts = false;
    serial.onReport!(report(0, 2, 1000, 'resume'), {});
    expect(t.stats.linkFull).toBe(1);
    serial.accepts = true;
    serial.onReport!(report(0, 2, 1000, 'resume'), {});
    expect(serial.sent.map((c) => c.offset)).toEqual([0, 1000]);
    serial.onReport!(report(1000, 2, 1000), { claimed: 'dev-2' });
    expect(t.stats.refusedReports).toBe(1);
    expect(serial.sent.length).toBe(2);
  });

  it('a link bounding the bytes in flight to all its devices: a window that does not fit waits, in order, until others report, end or go quiet', async () => {
    const framedWindow = 4 * (1000 + CHUNK_OVERHEAD);
    const mqtt = new FakeLink(
      'mqtt',
      { maxChunk: 32 * 1024, maxInflightBytes: Number.POSITIVE_INFINITY },
      2 * framedWindow,
    );
    const pub = publicKeyFromSeed(seed);
    const t = await new FirmwareTransfer([mqtt], store, () => pub, createLogger('error')).start();
    const sent = (d: string) => mqtt.sent.filter((c) => c.device === d).map((c) => c.offset);
    for (const d of ['dev-1', 'dev-2', 'dev-3']) t.offer(d, release, 'r');
    for (const d of ['dev-1', 'dev-2', 'dev-3']) mqtt.onReport!(reportOf(d, 0, 4, 1000, 'resume'), { claimed: d });
    expect(sent('dev-1')).toEqual([0, 1000, 2000, 3000]);
    expect(sent('dev-2')).toEqual([0, 1000, 2000, 3000]);
    expect(sent('dev-3')).toEqual([]); // two windows are the link's total
    expect(t.stats.waited).toBe(1);
    // dev-1 holds half its window: its next half fits where that was, dev-3's whole window does not.
    mqtt.onReport!(reportOf('dev-1', 2000, 4, 1000), { claimed: 'dev-1' });
    expect(sent('dev-1')).toEqual([0, 1000, 2000, 3000, 4000, 5000]);
    expect(sent('dev-3')).toEqual([]);
    // dev-2 ends (verified): nothing of it in flight any more, and dev-3 goes.
    mqtt.onReport!(reportOf('dev-2', SIZE, 4, 1000, undefined, 'verified'), { claimed: 'dev-2' });
    expect(sent('dev-3')).toEqual([0, 1000, 2000, 3000]);
    // dev-1 goes quiet (power lost mid-window): after 10 s what it holds no longer blocks dev-4.
    t.offer('dev-4', release, 'r');
    mqtt.onReport!(reportOf('dev-4', 0, 4, 1000, 'resume'), { claimed: 'dev-4' });
    expect(sent('dev-4')).toEqual([]);
    vi.useFakeTimers({ now: Date.now() + 11_000, toFake: ['Date'] });
    try {
      mqtt.onReport!(reportOf('dev-4', 0, 4, 1000, 'resume'), { claimed: 'dev-4' });
    } finally {
      vi.useRealTimers();
    }
    expect(sent('dev-4')).toEqual([0, 1000, 2000, 3000]);
    t.drop('dev-4');
    // A device alone always goes, whatever its window.
    t.drop('dev-1');
    t.drop('dev-3');
    mqtt.onReport!(reportOf('dev-2', 0, 64, 1000, 'resume'), { claimed: 'dev-2' });
    expect(sent('dev-2').length).toBe(4 + 64);
  });
});
