/**
 * `firmware-sim ble`: devices from a fleet manifest as BLE peripherals on a
 * simulated radio (transports/ble-radio.ts) that a gateway with
 * `ble.radio: ws://HOST:PORT` uses through its real noble code. Each device
 * samples at --rate and resends what the gateway has not acked.
 */
import { isValidId } from '../protocols/index.js';
import {
  type ActuatorSpec,
  actuatorsFlag,
  deviceActuators,
  DEVICE_RUN_FLAGS,
  downlinkTrust,
  gatewayFlags,
  parseFlags,
  numberFlag,
  signerFlag,
  untilDurationOrSignal,
} from './cli-common.js';
import { VirtualDevice } from './device.js';
import { manifestSeed, readManifest } from './manifest.js';
import { BleRadio } from './transports/ble-radio.js';

export const BLE_USAGE = `  firmware-sim ble --keys FILE [--device ID]... [--host H] [--port N] [--rate HZ] [--mtu N]
                   [--advertise name|manufacturer] [--gateway-key KEY] [--gateway-id ID] [--resend-ms MS]
                   [--duration SECONDS] [--max-frames N] [--signer noble|node] [--status SECONDS]
                   [--actuators NAME=INITIAL,...]
      Presents the manifest's devices (or the --device ones) as Nordic UART Service peripherals on a
      simulated radio speaking noble's websocket binding protocol, on ws://HOST:PORT (127.0.0.1:2846,
      the port noble's own NOBLE_WEBSOCKET binding uses; --port 0 picks a free one). Point the gateway
      at it with ble.radio. --max-frames is per device. --actuators: as for serial, on every device.`;

export interface BleCliOptions {
  readonly keys: string;
  readonly devices: string[];
  readonly host: string;
  readonly port: number;
  readonly rateHz: number;
  readonly mtu: number;
  readonly advertise: 'name' | 'manufacturer';
  readonly gatewayKey?: Uint8Array;
  readonly gatewayId?: string;
  readonly actuators?: ActuatorSpec;
  readonly resendMs: number;
  readonly durationS?: number;
  readonly maxFrames?: number;
  readonly signer: 'noble' | 'node';
  readonly statusS: number;
}

export class BleUsageError extends Error {}

const number = (flag: string, v: string | undefined, lo: number, hi: number, dflt: number, int = false): number =>
  numberFlag(BleUsageError, flag, v, lo, hi, dflt, { int });

export function parseBleCli(argv: readonly string[]): BleCliOptions | 'help' {
  const { values, str } = parseFlags(BleUsageError, argv, {
    ...DEVICE_RUN_FLAGS,
    device: { type: 'string', multiple: true },
    host: { type: 'string' },
    port: { type: 'string' },
    mtu: { type: 'string' },
    advertise: { type: 'string' },
  });
  if (values.help) return 'help';
  const keys = str('keys');
  if (!keys) throw new BleUsageError('--keys FILE is required (a manifest from firmware-sim keygen)');
  const devices = (values.device as string[] | undefined) ?? [];
  for (const d of devices) if (!isValidId(d)) throw new BleUsageError(`--device is not a valid id: "${d}"`);
  const gateway = gatewayFlags(BleUsageError, str('gateway-key'), str('gateway-id'));
  const signer = signerFlag(BleUsageError, str('signer'));
  const advertise = str('advertise') ?? 'name';
  if (advertise !== 'name' && advertise !== 'manufacturer')
    throw new BleUsageError(`--advertise must be name or manufacturer, got "${advertise}"`);
  const duration = str('duration');
  const maxFrames = str('max-frames');
  return {
    keys,
    devices,
    host: str('host') ?? '127.0.0.1',
    port: number('port', str('port'), 0, 65535, 2846, true),
    rateHz: number('rate', str('rate'), 0.001, 1000, 1),
    mtu: number('mtu', str('mtu'), 23, 517, 247, true),
    advertise,
    ...gateway,
    ...actuatorsFlag(BleUsageError, str('actuators'), gateway),
    resendMs: number('resend-ms', str('resend-ms'), 10, 3_600_000, 1000, true),
    ...(duration !== undefined && { durationS: number('duration', duration, 0.001, 365 * 86_400, 0) }),
    ...(maxFrames !== undefined && { maxFrames: number('max-frames', maxFrames, 0, Number.MAX_SAFE_INTEGER, 0, true) }),
    signer,
    statusS: number('status', str('status'), 0.01, 86_400, 5),
  };
}

export async function runBle(c: BleCliOptions, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const manifest = readManifest(c.keys);
  const entries = c.devices.length > 0 ? manifest.devices.filter((d) => c.devices.includes(d.id)) : manifest.devices;
  const missing = c.devices.filter((id) => !manifest.devices.some((d) => d.id === id));
  if (missing.length > 0) {
    process.stderr.write(`firmware-sim: --device: ${missing.join(', ')} not in ${c.keys}\n`);
    return 2;
  }
  const radio = await BleRadio.start({ host: c.host, port: c.port });
  const peripherals = entries.map((e) => {
    const device = new VirtualDevice({
      id: e.id,
      seed: manifestSeed(e),
      model: e.model,
      site: e.site,
      signer: c.signer,
    });
    let p: ReturnType<typeof radio.add>;
    const act = deviceActuators(device, c, (ack) => p.send(ack));
    p = radio.add(device, {
      mtu: c.mtu,
      advertiseAs: c.advertise,
      resendAfterMs: c.resendMs,
      ...downlinkTrust(c),
      ...(act && { onCommand: act.onCommand }),
    });
    return p;
  });
  const t0 = Date.now();
  out.write(
    `firmware-sim: BLE radio at ${radio.url} with ${peripherals.length} peripheral(s), MTU ${c.mtu}, ${c.rateHz} Hz each\n`,
  );
  if (!c.gatewayKey) out.write('firmware-sim: no --gateway-key: frame-acks are accepted UNVERIFIED\n');
  const line = (): string => {
    const sum = (k: 'sent' | 'resent' | 'acked' | 'badDownlink'): number =>
      peripherals.reduce((n, p) => n + p.stats[k], 0);
    const pending = peripherals.reduce((n, p) => n + p.device.pendingCount, 0);
    const generated = peripherals.reduce((n, p) => n + p.device.generated, 0);
    return `[${((Date.now() - t0) / 1000).toFixed(1)}s] connected=${radio.connections} generated=${generated} sent=${sum('sent')} resent=${sum('resent')} acked=${sum('acked')} pending=${pending} bad-downlink=${sum('badDownlink')}`;
  };
  const tick = setInterval(() => {
    for (const p of peripherals)
      if (c.maxFrames === undefined || p.device.generated < c.maxFrames) p.send(p.device.nextFrame());
  }, 1000 / c.rateHz);
  const status = setInterval(() => out.write(line() + '\n'), c.statusS * 1000);
  await untilDurationOrSignal(c.durationS);
  clearInterval(tick);
  clearInterval(status);
  await Promise.all(peripherals.map((p) => p.drain(Math.min(3000, c.resendMs * 3))));
  out.write(line() + ' (stopped)\n');
  await radio.close();
  return 0;
}
