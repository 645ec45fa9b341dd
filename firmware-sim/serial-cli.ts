/**
 * `firmware-sim serial`: one device from a fleet manifest on a serial line
 * (a real USB-serial adapter or a pty), sampling at --rate, with optional line
 * noise, resending what the gateway has not acked.
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
import { JsonFileStateStore } from './state.js';
import { SerialDeviceLink } from './transports/serial.js';

export const SERIAL_USAGE = `  firmware-sim serial --keys FILE --device ID --port PATH [--baud N] [--rate HZ] [--noise P]
                      [--seed S] [--gateway-key KEY] [--gateway-id ID] [--resend-ms MS] [--pace]
                      [--duration SECONDS] [--max-frames N] [--state DIR] [--signer noble|node] [--status SECONDS]
                      [--actuators NAME=INITIAL,...]
      Runs device ID of the manifest over a serial line: frames go out as COBS(frame ‖ CRC-32C) 0x00,
      gateway frame-acks come back; unacked frames are resent after --resend-ms (1000) and on reopen.
      --noise P corrupts each byte sent with probability P (bit flips, drops, duplicates, truncated
      frames; --seed makes it repeatable). --gateway-key (64 hex digits or did:key) checks the acks'
      signatures; without it acks are accepted unverified. --pace writes no faster than --baud.
      --actuators conveyor=true,speed=1 gives the device actuators that obey commands signed by
      --gateway-id/--gateway-key (checked: signature, expiry, replay, fence) and answer signed acks.`;

export interface SerialCliOptions {
  readonly keys: string;
  readonly device: string;
  readonly port: string;
  readonly baud: number;
  readonly rateHz: number;
  readonly noise: number;
  readonly seed: string;
  readonly gatewayKey?: Uint8Array;
  readonly gatewayId?: string;
  readonly actuators?: ActuatorSpec;
  readonly resendMs: number;
  readonly pace: boolean;
  readonly durationS?: number;
  readonly maxFrames?: number;
  readonly state?: string;
  readonly signer: 'noble' | 'node';
  readonly statusS: number;
}

export class SerialUsageError extends Error {}

const number = (
  flag: string,
  v: string | undefined,
  lo: number,
  hi: number,
  dflt: number,
  opts: { int?: boolean; open?: boolean } = {},
): number => numberFlag(SerialUsageError, flag, v, lo, hi, dflt, opts);

export function parseSerialCli(argv: readonly string[]): SerialCliOptions | 'help' {
  const { values, str } = parseFlags(SerialUsageError, argv, {
    ...DEVICE_RUN_FLAGS,
    device: { type: 'string' },
    port: { type: 'string' },
    baud: { type: 'string' },
    noise: { type: 'string' },
    seed: { type: 'string' },
    pace: { type: 'boolean' },
    state: { type: 'string' },
  });
  if (values.help) return 'help';
  const keys = str('keys');
  const device = str('device');
  const port = str('port');
  if (!keys) throw new SerialUsageError('--keys FILE is required (a manifest from firmware-sim keygen)');
  if (!device || !isValidId(device))
    throw new SerialUsageError(`--device must name a device of the manifest, got "${device ?? ''}"`);
  if (!port) throw new SerialUsageError('--port PATH is required (e.g. /dev/ttyUSB0 or /dev/pts/3)');
  const gateway = gatewayFlags(SerialUsageError, str('gateway-key'), str('gateway-id'));
  const signer = signerFlag(SerialUsageError, str('signer'));
  const duration = str('duration');
  const maxFrames = str('max-frames');
  const state = str('state');
  return {
    keys,
    device,
    port,
    baud: number('baud', str('baud'), 50, 4_000_000, 115200, { int: true }),
    rateHz: number('rate', str('rate'), 0, 10_000, 1, { open: true }),
    noise: number('noise', str('noise'), 0, 1, 0),
    seed: str('seed') ?? '1',
    ...gateway,
    ...actuatorsFlag(SerialUsageError, str('actuators'), gateway),
    resendMs: number('resend-ms', str('resend-ms'), 10, 3_600_000, 1000, { int: true }),
    pace: values.pace === true,
    ...(duration !== undefined && { durationS: number('duration', duration, 0, 365 * 86_400, 0, { open: true }) }),
    ...(maxFrames !== undefined && {
      maxFrames: number('max-frames', maxFrames, 0, Number.MAX_SAFE_INTEGER, 0, { int: true }),
    }),
    ...(state !== undefined && state !== '' && { state }),
    signer,
    statusS: number('status', str('status'), 0, 86_400, 5, { open: true }),
  };
}

export async function runSerial(c: SerialCliOptions, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const manifest = readManifest(c.keys);
  const entry = manifest.devices.find((d) => d.id === c.device);
  if (!entry) {
    process.stderr.write(`firmware-sim: --device: ${c.device} is not in ${c.keys}\n`);
    return 2;
  }
  const device = new VirtualDevice({
    id: entry.id,
    seed: manifestSeed(entry),
    model: entry.model,
    site: entry.site,
    signer: c.signer,
    ...(c.state !== undefined && { store: new JsonFileStateStore(c.state) }),
  });
  let link: SerialDeviceLink;
  const act = deviceActuators(device, c, (ack) => link.send(ack));
  link = new SerialDeviceLink(device, {
    ...(act && { onCommand: act.onCommand }),
    path: c.port,
    baudRate: c.baud,
    resendAfterMs: c.resendMs,
    pace: c.pace,
    ...downlinkTrust(c),
    ...(c.noise > 0 && { noise: { rate: c.noise, seed: c.seed } }),
  });
  const t0 = Date.now();
  out.write(
    `firmware-sim: ${device.id} (boot ${device.boot}) on ${c.port} at ${c.baud} baud, ${c.rateHz} Hz${c.noise > 0 ? `, noise ${c.noise}` : ''}\n`,
  );
  if (!c.gatewayKey) out.write('firmware-sim: no --gateway-key: frame-acks are accepted UNVERIFIED\n');
  const line = (): string => {
    const s = link.stats;
    const n = link.noise?.stats;
    return (
      `[${((Date.now() - t0) / 1000).toFixed(1)}s] open=${link.connected} generated=${device.generated} sent=${s.sent} resent=${s.resent} acked=${s.acked} ` +
      `pending=${device.pendingCount} dropped=${device.dropped} unverified=${s.unverifiedAcks} bad-downlink=${s.badDownlink}` +
      (n ? ` noise(flips=${n.flips} drops=${n.drops} dups=${n.dups} truncations=${n.truncations})` : '') +
      (act?.actuators
        ? ` actuators=${JSON.stringify(act.actuators.states())} refused=${JSON.stringify(act.actuators.stats.refused)}`
        : '') +
      (act && Object.keys(act.settings.values()).length > 0
        ? ` settings=${JSON.stringify(act.settings.values())}`
        : '') +
      (!link.connected && link.lastError ? ` last-error="${link.lastError.message}"` : '')
    );
  };
  link.start();
  const tick = setInterval(() => {
    if (c.maxFrames !== undefined && device.generated >= c.maxFrames) return;
    link.send(device.nextFrame());
  }, 1000 / c.rateHz);
  const status = setInterval(() => out.write(line() + '\n'), c.statusS * 1000);
  await untilDurationOrSignal(c.durationS);
  clearInterval(tick);
  clearInterval(status);
  await link.drain(Math.min(3000, c.resendMs * 3));
  await link.stop();
  out.write(line() + ' (stopped)\n');
  return 0;
}
