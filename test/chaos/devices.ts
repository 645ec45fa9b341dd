/**
 * The campaign's devices: a firmware-sim Fleet per gateway over MQTT and single devices on
 * socat ptys over serial, all in this process so every ack a device sees is recorded in a
 * ledger: (device, boot, seq) → the gateway that acked it. That ledger is what the final
 * check holds the gateways to.
 */
import { VirtualDevice } from '../../firmware-sim/device.js';
import { Fleet } from '../../firmware-sim/fleet.js';
import { type FleetManifest, generateManifest, manifestSeed } from '../../firmware-sim/manifest.js';
import { SerialDeviceLink } from '../../firmware-sim/transports/serial.js';
import { AckStatus } from '../../protocols/index.js';
import { PtyPair } from '../helpers/pty.js';

export const frameKey = (device: string, boot: number, seq: number): string => `${device}/${boot}/${seq}`;

export interface SerialDevice {
  readonly device: VirtualDevice;
  readonly link: SerialDeviceLink;
  readonly pty: PtyPair;
  /** Index of the gateway whose serial.ports names `pty.a`. */
  readonly gateway: number;
}

export interface DevicePlan {
  readonly mqttPerGateway: number;
  readonly mqttRateHz: number;
  /** Gateway indexes that get one serial device each. */
  readonly serialGateways: readonly number[];
  readonly serialRateHz: number;
}

export class Devices {
  /** Frames a device saw acknowledged as stored: key → gateway index. */
  readonly acked = new Map<string, number>();
  /** Serial frames answered with a refusing status such as replayed (final, not stored: not counted as acked). */
  readonly refused = new Set<string>();
  readonly manifests: FleetManifest[];
  readonly serialManifest: FleetManifest;
  fleets: Fleet[] = [];
  serial: SerialDevice[] = [];
  /** Device clocks' offset from real time (the clock-jump fault moves it). */
  clockOffsetMs = 0;
  private generating = true;
  private serialTimers: NodeJS.Timeout[] = [];

  constructor(
    readonly plan: DevicePlan,
    gateways: number,
  ) {
    this.manifests = Array.from({ length: gateways }, (_, i) =>
      generateManifest({ devices: plan.mqttPerGateway, prefix: `chaos-m${i}`, model: 'env-1' }),
    );
    this.serialManifest = generateManifest({
      devices: plan.serialGateways.length,
      prefix: 'chaos-s',
      model: 'press-vib-1',
    });
  }

  /** Every device's id and public key, for the gateways' `devices:` lists. */
  enrolments(): { id: string; publicKey: string }[] {
    return [...this.manifests, this.serialManifest].flatMap((m) =>
      m.devices.map((d) => ({ id: d.id, publicKey: d.publicKey })),
    );
  }

  /** The pty pairs, made before the gateway configs that name them. */
  async openPtys(dir: string): Promise<PtyPair[]> {
    return Promise.all(this.plan.serialGateways.map((g, k) => PtyPair.open(dir, `gw${g}-tty${k}`, `dev${g}-tty${k}`)));
  }

  start(
    brokerUrls: readonly string[],
    ptys: readonly PtyPair[],
    gatewayKeys: readonly Uint8Array[],
    gatewayIds: readonly string[],
  ): void {
    const now = (): number => Date.now() + this.clockOffsetMs;
    this.fleets = this.manifests.map((manifest, i) => {
      const fleet = new Fleet({
        brokerUrl: brokerUrls[i]!,
        manifest,
        rateHz: this.plan.mqttRateHz,
        signer: 'node',
        reconnectPeriodMs: 200,
        now,
        faults: { beforeFrame: () => (this.generating ? undefined : 'skip') },
      });
      for (const d of fleet.devices) this.track(d, i);
      fleet.start();
      return fleet;
    });
    this.serial = this.plan.serialGateways.map((g, k) => {
      const entry = this.serialManifest.devices[k]!;
      const device = new VirtualDevice({ id: entry.id, seed: manifestSeed(entry), model: entry.model, signer: 'node' });
      const pty = ptys[k]!;
      const link = new SerialDeviceLink(device, {
        path: pty.b,
        gatewayPublicKey: gatewayKeys[g],
        gatewayId: gatewayIds[g],
        resendAfterMs: 400,
        reopenMs: 100,
      });
      this.track(device, g, link);
      link.start();
      this.serialTimers.push(
        setInterval(() => {
          if (this.generating) link.send(device.nextFrame(now()));
        }, 1000 / this.plan.serialRateHz),
      );
      return { device, link, pty, gateway: g };
    });
  }

  /** Stops producing new frames; pending ones keep being resent until acked. */
  stopGenerating(): void {
    this.generating = false;
  }

  pending(): number {
    return [...this.fleets.flatMap((f) => f.devices), ...this.serial.map((s) => s.device)].reduce(
      (n, d) => n + d.pendingCount,
      0,
    );
  }

  /** Devices with unacked frames: id, how many, the oldest (boot/seq), whether its link is up. */
  pendingReport(): string {
    const rows: string[] = [];
    for (const f of this.fleets) {
      for (const d of f.devices) {
        const p = d.pending();
        if (p.length)
          rows.push(
            `${d.id} ${p.length} from ${p[0]!.boot}/${p[0]!.seq} (mqtt ${f.link(d.id)?.connected ? 'up' : 'down'}, ${f.link(d.id)?.inFlight} in flight)`,
          );
      }
    }
    for (const s of this.serial) {
      const p = s.device.pending();
      if (p.length)
        rows.push(
          `${s.device.id} ${p.length} from ${p[0]!.boot}/${p[0]!.seq} (serial ${s.link.connected ? 'open' : 'closed'}, acks ${s.link.stats.acked}, bad downlink ${s.link.stats.badDownlink})`,
        );
    }
    return rows.join('; ');
  }

  /** Frames evicted from a full device buffer (lost on the device, before any gateway). */
  dropped(): number {
    return [...this.fleets.flatMap((f) => f.devices), ...this.serial.map((s) => s.device)].reduce(
      (n, d) => n + d.dropped,
      0,
    );
  }

  generated(): number {
    return [...this.fleets.flatMap((f) => f.devices), ...this.serial.map((s) => s.device)].reduce(
      (n, d) => n + d.generated,
      0,
    );
  }

  async settle(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (this.pending() > 0) {
      if (Date.now() > end) return false;
      await new Promise((r) => setTimeout(r, 200));
    }
    return true;
  }

  async stop(): Promise<void> {
    for (const t of this.serialTimers) clearInterval(t);
    await Promise.all([...this.fleets.map((f) => f.stop(2000)), ...this.serial.map((s) => s.link.stop())]);
    await Promise.all(this.serial.map((s) => s.pty.unplug()));
  }

  /** Records acks as the device sees them. A serial "replayed" (or other refusing) answer is final but says the frame was not stored. */
  private track(d: VirtualDevice, gateway: number, link?: SerialDeviceLink): void {
    const ack = d.ack.bind(d);
    let replays = 0;
    d.ack = (boot, seq) => {
      // SerialDeviceLink counts a non-ok status just before it calls ack(): a new count of a status
      // other than duplicate means this answer said "not stored".
      const now = Object.entries(link?.stats.ackStatus ?? {}).reduce(
        (n, [st, c]) => (Number(st) === AckStatus.duplicate ? n : n + c),
        0,
      );
      const replay = now > replays;
      replays = now;
      const removed = ack(boot, seq);
      if (removed)
        replay ? this.refused.add(frameKey(d.id, boot, seq)) : this.acked.set(frameKey(d.id, boot, seq), gateway);
      return removed;
    };
  }
}
