/**
 * `firmware-sim` command line: make fleet identities (keygen) and run a fleet
 * against a broker (fleet). Bad flags exit 2 with a message naming the flag;
 * SIGINT/SIGTERM stop a fleet cleanly and exit 0.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { HubFleet } from './hub.js';
import { Fleet, type FleetStats } from './fleet.js';
import {
  formatManifest,
  generateManifest,
  MAX_MANIFEST_DEVICES,
  publicView,
  readManifest,
  writeManifest,
  type FleetManifest,
} from './manifest.js';
import { type DeviceModelName, isDeviceModel, MODEL_NAMES } from './sensors.js';
import { BLE_USAGE, type BleCliOptions, BleUsageError, parseBleCli, runBle } from './ble-cli.js';
import { runSerial, SERIAL_USAGE, type SerialCliOptions, parseSerialCli, SerialUsageError } from './serial-cli.js';
import { JsonFileStateStore } from './state.js';
import { runUpdateCli, UPDATE_USAGE } from './update-cli.js';
import { isValidId } from '../protocols/index.js';
import {
  type ActuatorSpec,
  actuatorsFlag,
  deviceActuators,
  gatewayFlags,
  numberFlag,
  signerFlag,
  untilDurationOrSignal,
} from './cli-common.js';

const USAGE = `Usage:
  firmware-sim keygen [--devices N] [--prefix sim] [--site S] [--model M] [--out FILE]
      Writes a fleet manifest (ids, models, sites, did:key public keys, secret seeds).
      With --out the file is written 0600 and the public view (no secrets) goes to stdout;
      without it the full manifest goes to stdout.
  firmware-sim fleet [--keys FILE | --devices N] [--rate HZ] [--broker URL] [--duration SECONDS]
                     [--state DIR] [--model M] [--site S] [--prefix P] [--signer noble|node]
                     [--max-frames N] [--status SECONDS] [--gateway-key KEY --gateway-id ID --actuators SPEC]
                     [--tls] [--ca FILE] [--per-connection N]
      Runs the fleet over MQTT, printing connected/sent/acked/pending every --status seconds (5).
      --per-connection N: devices behind hubs, N to an MQTT connection (frames only, each signed
      by its device, a hub's frames batched into one write a tick: the fastest way to load a gateway;
      not with --gateway-id or --actuators).
      --gateway-id ID: each device authenticates at CONNECT (username = its id, password = a fresh
      connect token it signs for that gateway). --tls: MQTT over TLS (mqtts://, port 8883 by default);
      --ca FILE: trust this certificate (the gateway's <dataDir>/tls/cert.pem) instead of the system's.
      --state DIR keeps boot/seq counters across runs. Stops on SIGINT/SIGTERM or after --duration.
      --actuators name=initial,... (every device) or FILE.json ({device: {actuator: initial}}, e.g.
      rules/examples/*/actuators.json): devices obey commands signed by that gateway.
${SERIAL_USAGE}
${BLE_USAGE}
${UPDATE_USAGE}
  firmware-sim --help

Models: ${MODEL_NAMES.join(', ')}`;

export class UsageError extends Error {}

export type CliCommand =
  | { cmd: 'help' }
  | ({ cmd: 'serial' } & SerialCliOptions)
  | ({ cmd: 'ble' } & BleCliOptions)
  | { cmd: 'keygen'; devices: number; prefix: string; site: string; model: DeviceModelName; out?: string }
  | {
      cmd: 'fleet';
      keys?: string;
      devices: number;
      prefix: string;
      site: string;
      model: DeviceModelName;
      rateHz: number;
      broker: string;
      durationS?: number;
      state?: string;
      signer: 'noble' | 'node';
      maxFrames?: number;
      statusS: number;
      gatewayKey?: Uint8Array;
      gatewayId?: string;
      actuators?: ActuatorSpec;
      tls: boolean;
      ca?: string;
      perConnection?: number;
    };

function int(flag: string, v: string | undefined, lo: number, hi: number, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < lo || n > hi)
    throw new UsageError(`--${flag} must be an integer ${lo}..${hi}, got "${v}"`);
  return n;
}
/** A number in (lo, hi]. */
const num = (flag: string, v: string | undefined, lo: number, hi: number, dflt: number): number =>
  numberFlag(UsageError, flag, v, lo, hi, dflt, { open: true });
function idFlag(flag: string, v: string | undefined, dflt: string): string {
  const s = v ?? dflt;
  if (!isValidId(s))
    throw new UsageError(`--${flag} must be 1..64 of [A-Za-z0-9._-] starting with a letter or digit, got "${s}"`);
  return s;
}
function modelFlag(v: string | undefined): DeviceModelName {
  const m = v ?? 'env-1';
  if (!isDeviceModel(m)) throw new UsageError(`--model must be one of ${MODEL_NAMES.join(', ')}, got "${m}"`);
  return m;
}

/** Parses argv (without node and script); throws UsageError. */
export function parseCli(argv: readonly string[]): CliCommand {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') return { cmd: 'help' };
  if (cmd === 'serial') {
    try {
      const s = parseSerialCli(rest);
      return s === 'help' ? { cmd: 'help' } : { cmd: 'serial', ...s };
    } catch (e) {
      if (e instanceof SerialUsageError) throw new UsageError(e.message);
      throw e;
    }
  }
  if (cmd === 'ble') {
    try {
      const b = parseBleCli(rest);
      return b === 'help' ? { cmd: 'help' } : { cmd: 'ble', ...b };
    } catch (e) {
      if (e instanceof BleUsageError) throw new UsageError(e.message);
      throw e;
    }
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    const common = {
      help: { type: 'boolean', short: 'h' },
      devices: { type: 'string' },
      prefix: { type: 'string' },
      site: { type: 'string' },
      model: { type: 'string' },
    } as const;
    if (cmd === 'keygen') {
      values = parseArgs({
        args: [...rest],
        strict: true,
        allowPositionals: false,
        options: { ...common, out: { type: 'string' } },
      }).values;
    } else if (cmd === 'fleet') {
      values = parseArgs({
        args: [...rest],
        strict: true,
        allowPositionals: false,
        options: {
          ...common,
          keys: { type: 'string' },
          rate: { type: 'string' },
          broker: { type: 'string' },
          duration: { type: 'string' },
          state: { type: 'string' },
          signer: { type: 'string' },
          'max-frames': { type: 'string' },
          status: { type: 'string' },
          'gateway-key': { type: 'string' },
          'gateway-id': { type: 'string' },
          actuators: { type: 'string' },
          tls: { type: 'boolean' },
          ca: { type: 'string' },
          'per-connection': { type: 'string' },
        },
      }).values;
    } else {
      throw new UsageError(`unknown command "${cmd}" (expected keygen, fleet, serial or ble)`);
    }
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError((e as Error).message);
  }
  const str = (k: string): string | undefined => {
    const v = values[k];
    return typeof v === 'string' ? v : undefined;
  };
  if (values.help) return { cmd: 'help' };
  const prefix = idFlag('prefix', str('prefix'), 'sim');
  const site = idFlag('site', str('site'), 'site-1');
  const model = modelFlag(str('model'));
  if (cmd === 'keygen') {
    const out = str('out');
    if (out === '') throw new UsageError('--out needs a file name');
    return {
      cmd: 'keygen',
      devices: int('devices', str('devices'), 1, MAX_MANIFEST_DEVICES, 1),
      prefix,
      site,
      model,
      ...(out !== undefined && { out }),
    };
  }
  const keys = str('keys');
  if (keys !== undefined && str('devices') !== undefined)
    throw new UsageError('--keys and --devices cannot be used together');
  if (keys === '') throw new UsageError('--keys needs a file name');
  const tls = values.tls === true || str('ca') !== undefined;
  const ca = str('ca');
  if (ca === '') throw new UsageError('--ca needs a file name');
  let broker = str('broker') ?? (tls ? 'mqtts://127.0.0.1:8883' : 'mqtt://127.0.0.1:1883');
  if (tls) broker = broker.replace(/^(mqtt|tcp):/, 'mqtts:');
  if (!/^(mqtts?|wss?|tcp|ssl):\/\/[^/\s]+/.test(broker))
    throw new UsageError(`--broker must be a URL such as mqtt://127.0.0.1:1883, got "${broker}"`);
  const signer = signerFlag(UsageError, str('signer'));
  const duration = str('duration');
  const maxFrames = str('max-frames');
  const state = str('state');
  if (state === '') throw new UsageError('--state needs a directory');
  const gateway = gatewayFlags(UsageError, str('gateway-key'), str('gateway-id'));
  const perConnection = str('per-connection');
  if (perConnection !== undefined && (gateway.gatewayId !== undefined || str('actuators') !== undefined))
    throw new UsageError('--per-connection carries frames only: not with --gateway-id or --actuators');
  return {
    cmd: 'fleet',
    ...gateway,
    ...actuatorsFlag(UsageError, str('actuators'), gateway),
    ...(keys !== undefined && { keys }),
    devices: int('devices', str('devices'), 1, MAX_MANIFEST_DEVICES, 1),
    prefix,
    site,
    model,
    rateHz: num('rate', str('rate'), 0, 1000, 1),
    broker,
    ...(duration !== undefined && { durationS: num('duration', duration, 0, 365 * 86_400, 0) }),
    ...(state !== undefined && { state }),
    signer,
    ...(maxFrames !== undefined && { maxFrames: int('max-frames', maxFrames, 0, Number.MAX_SAFE_INTEGER, 0) }),
    statusS: num('status', str('status'), 0, 86_400, 5),
    tls,
    ...(ca !== undefined && { ca }),
    ...(perConnection !== undefined && {
      perConnection: int('per-connection', perConnection, 1, MAX_MANIFEST_DEVICES, 1),
    }),
  };
}

function statusLine(elapsedMs: number, s: FleetStats, lastError?: Error): string {
  const line = `[${(elapsedMs / 1000).toFixed(1)}s] devices=${s.devices} connected=${s.connected} sent=${s.sent} acked=${s.acked} pending=${s.pending} dropped=${s.dropped} resent=${s.resent}`;
  return s.connected < s.devices && lastError ? `${line} last-error="${lastError.message}"` : line;
}

async function runFleet(c: Extract<CliCommand, { cmd: 'fleet' }>): Promise<number> {
  let manifest: FleetManifest;
  try {
    manifest =
      c.keys !== undefined
        ? readManifest(c.keys)
        : generateManifest({ devices: c.devices, prefix: c.prefix, site: c.site, model: c.model });
  } catch (e) {
    process.stderr.write(`firmware-sim: --keys: ${(e as Error).message}\n`);
    return 2;
  }
  const handlers = new Map<string, (frame: Uint8Array) => void>();
  if (c.perConnection !== undefined) return runHubs(c, manifest);
  const fleet = new Fleet({
    onCommand: (id, payload) => handlers.get(id)?.(payload),
    brokerUrl: c.broker,
    manifest,
    rateHz: c.rateHz,
    signer: c.signer,
    ...(c.gatewayId !== undefined && { gatewayId: c.gatewayId }),
    ...(c.ca !== undefined && { mqttOptions: { ca: readFileSync(c.ca) } }),
    ...(c.maxFrames !== undefined && { maxFrames: c.maxFrames }),
    ...(c.state !== undefined && { store: new JsonFileStateStore(c.state) }),
  });
  let withActuators = 0;
  for (const device of fleet.devices) {
    const act = deviceActuators(device, c, (ack) => fleet.link(device.id)!.send(ack));
    if (act) handlers.set(device.id, act.onCommand);
    if (act?.actuators) withActuators++;
  }
  const t0 = Date.now();
  if (withActuators > 0)
    process.stdout.write(`firmware-sim: ${withActuators} devices with actuators obey ${c.gatewayId}\n`);
  if (handlers.size > 0)
    process.stdout.write(`firmware-sim: ${handlers.size} devices take settings from ${c.gatewayId}\n`);
  process.stdout.write(`firmware-sim: ${manifest.devices.length} devices at ${c.rateHz} Hz -> ${c.broker}\n`);
  fleet.start();
  const status = setInterval(
    () => process.stdout.write(statusLine(Date.now() - t0, fleet.stats(), fleet.lastError()) + '\n'),
    c.statusS * 1000,
  );
  await untilDurationOrSignal(c.durationS);
  clearInterval(status);
  const final = await fleet.stop(3000);
  process.stdout.write(statusLine(Date.now() - t0, final) + ' (stopped)\n');
  return 0;
}

/** `fleet --per-connection N`: the devices behind hubs (hub.ts). */
async function runHubs(c: Extract<CliCommand, { cmd: 'fleet' }>, manifest: FleetManifest): Promise<number> {
  const hubs = new HubFleet({
    brokerUrl: c.broker,
    manifest,
    rateHz: c.rateHz,
    perConnection: c.perConnection,
    signer: c.signer,
    ...(c.ca !== undefined && { mqttOptions: { ca: readFileSync(c.ca) } }),
    ...(c.maxFrames !== undefined && { maxFrames: c.maxFrames }),
    ...(c.state !== undefined && { store: new JsonFileStateStore(c.state) }),
  });
  const t0 = Date.now();
  process.stdout.write(
    `firmware-sim: ${manifest.devices.length} devices at ${c.rateHz} Hz, ${c.perConnection} per connection -> ${c.broker}\n`,
  );
  hubs.start();
  const status = setInterval(
    () => process.stdout.write(statusLine(Date.now() - t0, hubs.stats()) + '\n'),
    c.statusS * 1000,
  );
  await untilDurationOrSignal(c.durationS);
  clearInterval(status);
  const final = await hubs.stop(3000);
  process.stdout.write(statusLine(Date.now() - t0, final) + ' (stopped)\n');
  return 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  let c: CliCommand;
  if (argv[0] === 'update') {
    try {
      return await runUpdateCli(argv.slice(1));
    } catch (e) {
      process.stderr.write(`firmware-sim: ${(e as Error).message}\n`);
      return 2;
    }
  }
  try {
    c = parseCli(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`firmware-sim: ${e.message}\nRun "firmware-sim --help" for usage.\n`);
    return 2;
  }
  switch (c.cmd) {
    case 'help':
      process.stdout.write(USAGE + '\n');
      return 0;
    case 'keygen': {
      const m = generateManifest({ devices: c.devices, prefix: c.prefix, site: c.site, model: c.model });
      if (c.out === undefined) {
        process.stdout.write(formatManifest(m));
        return 0;
      }
      try {
        writeManifest(c.out, m);
      } catch (e) {
        process.stderr.write(`firmware-sim: --out: cannot write ${c.out}: ${(e as Error).message}\n`);
        return 1;
      }
      process.stderr.write(`firmware-sim: wrote ${m.devices.length} device keys to ${c.out} (mode 0600)\n`);
      process.stdout.write(formatManifest(publicView(m)));
      return 0;
    }
    case 'fleet':
      return runFleet(c);
    case 'ble': {
      const { cmd: _cmd, ...opts } = c;
      try {
        return await runBle(opts);
      } catch (e) {
        process.stderr.write(`firmware-sim: ${(e as Error).message}\n`);
        return 1;
      }
    }
    case 'serial': {
      const { cmd: _cmd, ...opts } = c;
      try {
        return await runSerial(opts);
      } catch (e) {
        process.stderr.write(`firmware-sim: ${(e as Error).message}\n`);
        return 1;
      }
    }
  }
}

// Only when run as the program (bin/firmware-sim.js imports this file), not when a test imports parseCli.
const invokedAsCli =
  process.argv[1] !== undefined && /(^|[\\/])firmware-sim(\.js)?$|firmware-sim[\\/]cli\.[jt]s$/.test(process.argv[1]);
if (invokedAsCli) {
  const code = await main(process.argv.slice(2));
  process.exit(code);
}
