/**
 * The ingest acceptance suite: one set of cases every device transport must pass, run by ingest.test.ts
 * with one small adapter per transport (ingest-mqtt, ingest-serial, ingest-ble) that says how to
 * start a gateway with that transport and attach simulated devices to it. Devices are firmware-sim's
 * `VirtualDevice`s: a frame leaves a device's buffer only when the transport's ack for it
 * arrives (a QoS 1 PUBACK on MQTT, a gateway-signed frame-ack checked against the gateway's key
 * on serial and BLE), so "nothing pending" means "every frame acked".
 *
 * Cases: every frame stored once and verbatim, acked, and a resend acked again but stored once;
 * a malformed frame between good ones refused with its reason, the good ones all kept; a
 * signed frame from a boot past the replay memory, never stored, refused as a replay; a device
 * cut off mid-stream comes back and resumes with nothing lost and nothing stored twice.
 * A transport that cannot honestly do a case names it in `skip` with the reason.
 */
import type { TestOptions } from 'vitest';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type DeviceFrame, VirtualDevice } from '../../firmware-sim/device.js';
import { generateManifest, manifestSeed } from '../../firmware-sim/manifest.js';
import type { Gateway } from '../../gateway/gateway.js';
import type { IngestOutcome } from '../../gateway/ingest/outcome.js';
import { DEFAULT_REPLAY_LIMITS } from '../../gateway/ingest/replay-window.js';
import { testDevice } from '../helpers/devices.js';
import { waitFor } from '../helpers/env.js';

/** One simulated device attached to the gateway through the transport under test. */
export interface AttachedDevice {
  readonly device: VirtualDevice;
  /** Hands a new frame to the link (sent now when connected, else on the next connect). */
  send(frame: DeviceFrame): void;
  /** Puts arbitrary bytes on the wire as one frame (MQTT: one publish; serial and BLE: one COBS/CRC frame). */
  sendRaw(bytes: Uint8Array): Promise<void>;
  /** Resolves once the link reports nothing in flight and the device nothing pending. */
  drain(timeoutMs: number): Promise<boolean>;
  /** Acks that settled a pending frame, and downlink frames the device refused (bad signature, unknown kid, …). */
  acks(): { settled: number; refused: number };
  /** The link goes down as in the field (broker connection dropped, adapter unplugged, out of radio range). */
  goAway(): Promise<void>;
  /** The link comes back; resolves once the device is connected again. */
  comeBack(): Promise<void>;
}

export interface IngestRig {
  readonly gw: Gateway;
  /** The gateway's log lines, as objects. */
  readonly lines: Record<string, unknown>[];
  readonly devices: readonly AttachedDevice[];
}

export type IngestCase = 'stored-once' | 'malformed' | 'replay' | 'reconnect';

/** Simulated devices, enrolled at the gateway by the adapter (`id`, `publicKey` hex). */
export interface SuiteFleet {
  readonly devices: readonly VirtualDevice[];
  readonly enrolment: readonly { id: string; publicKey: string }[];
}

export interface IngestAdapter {
  /** The transport's name, as the gateway records it on each frame. */
  readonly transport: 'mqtt' | 'serial' | 'ble';
  /** vitest options of the whole suite, e.g. `needs('socat')`. */
  readonly options?: TestOptions;
  /**
   * Starts a gateway with the fleet enrolled and attaches every device through the transport,
   * each connected when this resolves. Registers its own teardown with `onTestFinished`.
   */
  start(fleet: SuiteFleet): Promise<IngestRig>;
  /** Cases the transport cannot honestly do, with the reason (shown as the skipped test's name). */
  readonly skip?: Partial<Record<IngestCase, string>>;
}

const DRAIN_MS = 15_000;

function fleet(n: number, prefix: string): SuiteFleet & { seeds: Uint8Array[] } {
  const manifest = generateManifest({ devices: n, prefix, site: 'site-1', model: 'env-1' });
  const seeds = manifest.devices.map(manifestSeed);
  return {
    seeds,
    devices: manifest.devices.map(
      (d, i) => new VirtualDevice({ id: d.id, seed: seeds[i]!, model: d.model, signer: 'node' }),
    ),
    enrolment: manifest.devices.map((d) => ({ id: d.id, publicKey: d.publicKey })),
  };
}

/** The device's frames as the gateway stores them: (boot:seq) → bytes, and every key in receive order. */
function storedOf(gw: Gateway, device: string): { bytes: Map<string, Buffer>; keys: string[] } {
  const rows = [...gw.frames.query({ device })];
  return {
    bytes: new Map(rows.map((r) => [`${r.boot}:${r.seq}`, Buffer.from(r.frame)])),
    keys: rows.map((r) => `${r.boot}:${r.seq}`),
  };
}

/** Every frame sent is stored exactly once, byte for byte, on this transport. */
function expectStoredOnce(gw: Gateway, transport: string, device: string, sent: readonly DeviceFrame[]): void {
  const { bytes, keys } = storedOf(gw, device);
  expect(keys.length, `${device}: frames stored`).toBe(sent.length);
  expect(new Set(keys).size, `${device}: each (boot, seq) once`).toBe(sent.length);
  for (const f of sent) {
    const got = bytes.get(`${f.boot}:${f.seq}`);
    expect(got, `${device} ${f.boot}:${f.seq} stored`).toBeDefined();
    expect(got!.equals(Buffer.from(f.bytes)), `${device} ${f.boot}:${f.seq} verbatim`).toBe(true);
  }
  expect([...gw.frames.query({ device })].every((r) => r.transport === transport)).toBe(true);
}

/** `n` new frames from the device through its link, kept in `sent`; resolves once all are acked. */
async function sendAndDrain(d: AttachedDevice, n: number, sent: DeviceFrame[]): Promise<void> {
  for (let k = 0; k < n; k++) {
    const frame = d.device.nextFrame();
    sent.push(frame);
    d.send(frame);
  }
  expect(await d.drain(DRAIN_MS)).toBe(true);
}

/** A gateway with one device attached; `good(n)` sends n frames (kept in `sent`) and waits for their acks. */
async function oneDevice(adapter: IngestAdapter, prefix: string) {
  const f = fleet(1, prefix);
  const rig = await adapter.start(f);
  const d = rig.devices[0]!;
  const sent: DeviceFrame[] = [];
  return { f, rig, d, sent, good: (n: number): Promise<void> => sendAndDrain(d, n, sent) };
}

const rejections = (lines: Record<string, unknown>[]) => lines.filter((l) => l.msg === 'frame rejected');

export function ingestAcceptance(adapter: IngestAdapter): void {
  const t = adapter.transport;
  const skipped = (c: IngestCase, name: string, fn: () => Promise<void>): void => {
    const why = adapter.skip?.[c];
    if (why) it.skip(`${name} (skipped on ${t}: ${why})`, fn);
    else it(name, fn, 40_000);
  };

  describe(`ingest acceptance over ${t}`, adapter.options ?? {}, () => {
    skipped(
      'stored-once',
      'every frame is stored once and verbatim, acked to the device; a resend is acked again and stored once',
      async () => {
        const f = fleet(2, `acc-${t}-a`);
        const rig = await adapter.start(f);
        const sent = rig.devices.map(() => [] as DeviceFrame[]);
        for (let k = 0; k < 20; k++)
          for (const [i, d] of rig.devices.entries()) {
            const frame = d.device.nextFrame();
            sent[i]!.push(frame);
            d.send(frame);
          }
        expect(await Promise.all(rig.devices.map((d) => d.drain(DRAIN_MS)))).toEqual([true, true]);
        for (const [i, d] of rig.devices.entries()) {
          expect(d.device.pendingCount).toBe(0);
          expect(d.acks()).toEqual({ settled: 20, refused: 0 });
          expectStoredOnce(rig.gw, t, d.device.id, sent[i]!);
        }
        // A resend after a lost ack: the same bytes again. (The links' own resends on a loaded
        // machine may have made duplicates already, so the answer to this one is looked for.)
        const [first] = rig.devices;
        const again = sent[0]![3]!;
        const answers: IngestOutcome[] = [];
        const sub = rig.gw.ingest.outcomes$.subscribe((e) => answers.push(e.outcome));
        onTestFinished(() => sub.unsubscribe());
        await first!.sendRaw(again.bytes);
        const isAgain = (o: IngestOutcome): boolean =>
          o.status === 'duplicate' && o.device === first!.device.id && o.boot === again.boot && o.seq === again.seq;
        await waitFor(() => answers.some(isAgain), 5000, 'the resend answered as a duplicate');
        expectStoredOnce(rig.gw, t, first!.device.id, sent[0]!);
        expect(rig.gw.ingest.stats.stored).toBe(40);
        expect(rejections(rig.lines)).toEqual([]);
      },
    );

    skipped(
      'malformed',
      'a malformed frame between good ones is refused with its reason and loses none of them',
      async () => {
        const { rig, d, sent, good } = await oneDevice(adapter, `acc-${t}-m`);
        await good(5);
        // A COSE_Sign1 tag and array header, then bytes that are no CBOR structure at all.
        await d.sendRaw(Uint8Array.of(0xd2, 0x84, 0xff, 0x00, 0x13));
        await good(5);
        await waitFor(() => rig.gw.ingest.stats.rejected.get('malformed') === 1, 5000, 'the malformed frame refused');
        expectStoredOnce(rig.gw, t, d.device.id, sent);
        const refused = rejections(rig.lines);
        expect(refused).toHaveLength(1);
        expect(refused[0]).toMatchObject({ reason: 'malformed', transport: t });
        expect(String(refused[0]!.detail)).not.toBe('');
        expect(d.acks()).toEqual({ settled: 10, refused: 0 });
      },
    );

    skipped(
      'replay',
      'a signed frame from a boot past the replay memory, never stored, is refused as a replay',
      async () => {
        const { f, rig, d, sent, good } = await oneDevice(adapter, `acc-${t}-r`);
        await good(3);
        const oldBoot = d.device.boot;
        // The gateway remembers the newest DEFAULT_REPLAY_LIMITS.boots boots (a never-stored
        // frame of those is accepted once); one boot more and the old boot is past its memory.
        for (let b = 0; b < DEFAULT_REPLAY_LIMITS.boots; b++) {
          d.device.reboot();
          await good(1);
        }
        // Signed with the device's own key, so only the replay memory can refuse it.
        const replayed = testDevice(d.device.id, f.seeds[0]).frame(oldBoot, 50);
        await d.sendRaw(replayed);
        await waitFor(() => rig.gw.ingest.stats.rejected.get('replay') === 1, 5000, 'the replay refused');
        await good(2);
        expectStoredOnce(rig.gw, t, d.device.id, sent);
        expect(rejections(rig.lines)).toEqual([
          expect.objectContaining({ reason: 'replay', device: d.device.id, transport: t }),
        ]);
      },
    );

    skipped(
      'reconnect',
      'a device cut off mid-stream comes back and resumes: nothing lost, nothing stored twice',
      async () => {
        const f = fleet(2, `acc-${t}-c`);
        const rig = await adapter.start(f);
        const [d, other] = [rig.devices[0]!, rig.devices[1]!];
        const sent: DeviceFrame[] = [];
        const otherSent: DeviceFrame[] = [];
        const burst = (n: number): void => {
          for (let k = 0; k < n; k++) {
            const frame = d.device.nextFrame();
            sent.push(frame);
            d.send(frame);
            const o = other.device.nextFrame();
            otherSent.push(o);
            other.send(o);
          }
        };
        burst(10);
        expect(await d.drain(DRAIN_MS)).toBe(true);
        burst(10); // in flight when the link goes
        await d.goAway();
        burst(10); // sampled while away: kept in the device's buffer
        expect(d.device.pendingCount).toBeGreaterThan(0);
        await d.comeBack();
        burst(10);
        expect(await Promise.all([d.drain(DRAIN_MS), other.drain(DRAIN_MS)])).toEqual([true, true]);
        expectStoredOnce(rig.gw, t, d.device.id, sent);
        // The other device's link was not touched by the first one's outage.
        expectStoredOnce(rig.gw, t, other.device.id, otherSent);
        expect(rig.gw.ingest.stats.stored).toBe(80);
        expect(d.acks().refused + other.acks().refused).toBe(0);
      },
    );
  });
}
