/**
 * The fault catalogue. Each fault names its target (one fault per target at a time), does
 * its damage at once and returns the repair to run later (or nothing for a one-off such as
 * a burst of line noise). Every choice comes from the campaign's seeded PRNG.
 */
import type { Prng } from '../../firmware-sim/sensors.js';
import type { Devices } from './devices.js';
import { DISK_GATEWAY, type Site } from './topology.js';

export interface Injected {
  readonly target: string;
  readonly what: string;
  /** Undoes the fault; returns what it did (for the timeline). */
  readonly heal?: () => Promise<string>;
}

interface Fault {
  readonly name: string;
  readonly weight: number;
  /** Targets this fault could hit now. */
  targets(site: Site, devices: Devices): string[];
  inject(target: string, site: Site, devices: Devices, rng: Prng): Promise<Injected>;
}

const pick = <T>(rng: Prng, xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)]!;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Clock jumps: a Pi without an RTC booting in 1970-ish "yesterday", NTP stepping forward, etc. */
const JUMPS = [-2 * DAY, -HOUR, -5 * 60_000, 0, 90_000, HOUR, 30 * DAY];
const fmtJump = (ms: number): string =>
  ms === 0
    ? 'real time'
    : `${ms > 0 ? '+' : '−'}${Math.abs(ms) >= DAY ? `${Math.abs(ms) / DAY} d` : Math.abs(ms) >= HOUR ? `${Math.abs(ms) / HOUR} h` : `${Math.abs(ms) / 1000} s`}`;

const gwIndex = (target: string): number => Number(target.slice(2));

const FAULTS: readonly Fault[] = [
  {
    name: 'sigkill',
    weight: 3,
    targets: (site) => site.nodes.flatMap((n, i) => (n.running ? [`gw${i}`] : [])),
    async inject(target, site, _d, rng) {
      const node = site.nodes[gwIndex(target)]!;
      await node.kill();
      // Sometimes it comes back with its clock jumped (the receive clock; gateway/clock-offset.ts).
      const jump = rng.next() < 0.35 ? pick(rng, JUMPS) : node.clockOffsetMs;
      return {
        target,
        what: `SIGKILL ${node.id}`,
        heal: async () => {
          node.clockOffsetMs = jump;
          await node.start();
          return `restarted ${node.id}${jump !== 0 ? ` with its clock at ${fmtJump(jump)}` : ''}`;
        },
      };
    },
  },
  {
    name: 'broker-restart',
    weight: 1.5,
    targets: (site) => (site.mosquitto.running ? ['link0-2'] : []),
    async inject(target, site) {
      await site.mosquitto.kill();
      return {
        target,
        what: 'mosquitto killed (sync broker of gw-0 ⇄ gw-2)',
        heal: async () => (await site.mosquitto.start(), 'mosquitto restarted'),
      };
    },
  },
  {
    name: 'link-cut',
    weight: 2,
    targets: (site) => [...site.links.entries()].flatMap(([k, ps]) => (ps.every((p) => p.isUp) ? [`link${k}`] : [])),
    async inject(target, site) {
      const proxies = site.links.get(target.slice(4))!;
      for (const p of proxies) p.cut();
      return {
        target,
        what: `cut sibling link ${target.slice(4)} (${proxies.map((p) => p.name).join(', ')})`,
        heal: async () => {
          for (const p of proxies) p.restore();
          return `restored sibling link ${target.slice(4)}`;
        },
      };
    },
  },
  {
    name: 'serial-noise',
    weight: 2,
    targets: (_s, d) => d.serial.flatMap((s, k) => (s.pty.running ? [`tty${k}`] : [])),
    async inject(target, _site, devices, rng) {
      const s = devices.serial[Number(target.slice(3))]!;
      const n = 64 + Math.floor(rng.next() * 2000);
      // Garbage with some zero bytes in it (frame ends), as a floating line or a babbling MCU gives.
      const junk = Uint8Array.from({ length: n }, () => (rng.next() < 0.05 ? 0 : Math.floor(rng.next() * 256)));
      s.link.writeRaw(junk);
      return { target: '', what: `${n} bytes of noise on ${s.device.id}'s line (gw-${s.gateway})` };
    },
  },
  {
    name: 'serial-unplug',
    weight: 1.5,
    targets: (_s, d) => d.serial.flatMap((s, k) => (s.pty.running ? [`tty${k}`] : [])),
    async inject(target, _site, devices) {
      const s = devices.serial[Number(target.slice(3))]!;
      await s.pty.unplug();
      return {
        target,
        what: `unplugged ${s.device.id}'s serial line (gw-${s.gateway})`,
        heal: async () => (await s.pty.plug(), `plugged ${s.device.id}'s line back in`),
      };
    },
  },
  {
    name: 'disk-full',
    weight: 1.5,
    targets: (site) => (site.disk && site.nodes[DISK_GATEWAY]!.running ? [`gw${DISK_GATEWAY}`] : []),
    async inject(target, site) {
      const bytes = site.disk!.fill();
      return {
        target,
        what: `disk full on gw-${DISK_GATEWAY} (${(bytes / 2 ** 20).toFixed(0)} MiB of ballast)`,
        heal: async () => (site.disk!.free(), `freed gw-${DISK_GATEWAY}'s disk`),
      };
    },
  },
  {
    name: 'device-clock-jump',
    weight: 1,
    targets: () => ['device-clocks'],
    async inject(_t, _site, devices, rng) {
      const jump = pick(rng, JUMPS);
      devices.clockOffsetMs = jump;
      return { target: '', what: `device clocks jumped to ${fmtJump(jump)}` };
    },
  },
  {
    name: 'device-reboot',
    weight: 1,
    targets: (_s, d) => [...d.fleets.flatMap((f) => f.devices.map((v) => v.id)), ...d.serial.map((s) => s.device.id)],
    async inject(target, _site, devices) {
      const fleet = devices.fleets.find((f) => f.device(target));
      if (fleet) fleet.reboot(target);
      else devices.serial.find((s) => s.device.id === target)!.device.reboot();
      return { target: '', what: `rebooted device ${target} (new boot, unacked frames kept)` };
    },
  },
];

/** Picks a fault and a free target by weight; undefined when nothing can be hit. */
export function chooseFault(
  rng: Prng,
  site: Site,
  devices: Devices,
  busy: ReadonlySet<string>,
): { fault: Fault; target: string } | undefined {
  const options = FAULTS.map((f) => ({ f, targets: f.targets(site, devices).filter((t) => !busy.has(t)) })).filter(
    (o) => o.targets.length > 0,
  );
  // The disk gateway is one target for both SIGKILL and disk-full: a killed gateway is not
  // filled, a full one is not killed (a restart on a full disk is not this campaign's question).
  const total = options.reduce((n, o) => n + o.f.weight, 0);
  if (total === 0) return undefined;
  let r = rng.next() * total;
  for (const o of options) {
    r -= o.f.weight;
    if (r <= 0) return { fault: o.f, target: pick(rng, o.targets) };
  }
  const last = options[options.length - 1]!;
  return { fault: last.f, target: pick(rng, last.targets) };
}
