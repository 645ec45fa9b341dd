/**
 * Pieces the firmware-sim commands share (cli.ts, serial-cli.ts, ble-cli.ts):
 * flag checks that throw the command's own usage error, the downlink trust
 * taken from the gateway flags, and the wait for --duration or a signal.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isValidId, parsePublicKey } from '../protocols/index.js';
import { join } from 'node:path';
import { Actuators, type ActuatorValue, commandHandler } from './actuators.js';
import { DeviceSettings, settingsHandler } from './settings.js';
import type { DeviceFrame, VirtualDevice } from './device.js';
import type { DownlinkTrust } from './transports/downlink.js';

/** The usage error class of a command (each command throws its own). */
export type UsageErrorClass = new (message: string) => Error;

type FlagOptions = NonNullable<ParseArgsConfig['options']>;

/** The flags every device-running command (serial, ble) takes. */
export const DEVICE_RUN_FLAGS = {
  help: { type: 'boolean', short: 'h' },
  keys: { type: 'string' },
  rate: { type: 'string' },
  'gateway-key': { type: 'string' },
  'gateway-id': { type: 'string' },
  'resend-ms': { type: 'string' },
  duration: { type: 'string' },
  'max-frames': { type: 'string' },
  signer: { type: 'string' },
  status: { type: 'string' },
  actuators: { type: 'string' },
} as const satisfies FlagOptions;

/**
 * Parses `argv` strictly (no positionals, no unknown flags; parse errors throw
 * `Err`) and returns the values with `str`, a flag's value when it is a string.
 */
export function parseFlags(
  Err: UsageErrorClass,
  argv: readonly string[],
  options: FlagOptions,
): {
  values: Record<string, string | boolean | Array<string | boolean> | undefined>;
  str: (k: string) => string | undefined;
} {
  let values: Record<string, string | boolean | Array<string | boolean> | undefined>;
  try {
    values = parseArgs({ args: [...argv], strict: true, allowPositionals: false, options }).values;
  } catch (e) {
    throw new Err((e as Error).message);
  }
  return { values, str: (k) => (typeof values[k] === 'string' ? (values[k] as string) : undefined) };
}

/**
 * A numeric flag: `dflt` when absent, else a finite number in [lo, hi], or in
 * (lo, hi] with `open`, and an integer with `int`; anything else throws `Err`.
 */
export function numberFlag(
  Err: UsageErrorClass,
  flag: string,
  v: string | undefined,
  lo: number,
  hi: number,
  dflt: number,
  opts: { int?: boolean; open?: boolean } = {},
): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  const bad =
    v.trim() === '' ||
    !Number.isFinite(n) ||
    (opts.int && !Number.isInteger(n)) ||
    (opts.open ? n <= lo : n < lo) ||
    n > hi;
  if (bad)
    throw new Err(
      `--${flag} must be ${opts.int ? 'an integer' : 'a number'} in ${opts.open ? '(' : '['}${lo}, ${hi}], got "${v}"`,
    );
  return n;
}

/** --signer: noble (default) or node. */
export function signerFlag(Err: UsageErrorClass, v: string | undefined): 'noble' | 'node' {
  const signer = v ?? 'noble';
  if (signer !== 'noble' && signer !== 'node') throw new Err(`--signer must be noble or node, got "${signer}"`);
  return signer;
}

/** --gateway-key (64 hex digits or did:key) and --gateway-id, as given or absent. */
export function gatewayFlags(
  Err: UsageErrorClass,
  key: string | undefined,
  id: string | undefined,
): { gatewayKey?: Uint8Array; gatewayId?: string } {
  let gatewayKey: Uint8Array | undefined;
  if (key !== undefined) {
    const k = parsePublicKey(key);
    if (!k.ok) throw new Err(`--gateway-key: ${k.error.message}`);
    gatewayKey = k.value;
  }
  if (id !== undefined && !isValidId(id)) throw new Err(`--gateway-id is not a valid id: "${id}"`);
  return { ...(gatewayKey && { gatewayKey }), ...(id !== undefined && { gatewayId: id }) };
}

/** The downlink trust a device link gets from the parsed gateway flags. */
export function downlinkTrust(c: { readonly gatewayKey?: Uint8Array; readonly gatewayId?: string }): DownlinkTrust {
  return {
    ...(c.gatewayKey && { gatewayPublicKey: c.gatewayKey }),
    ...(c.gatewayId !== undefined && { gatewayId: c.gatewayId }),
  };
}

/** Resolves after `durationS` seconds (never, when undefined) or on the first SIGINT/SIGTERM. */
export function untilDurationOrSignal(durationS: number | undefined): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = durationS !== undefined ? setTimeout(resolve, durationS * 1000) : undefined;
    const onSignal = (): void => {
      clearTimeout(timer);
      resolve();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
}

/** Actuators per device id (`*`: every device) and their power-on states. */
export type ActuatorSpec = Readonly<Record<string, Readonly<Record<string, ActuatorValue>>>>;

/**
 * --actuators: inline "conveyor=true,speed=1.5,phase=red" for every device (true/false →
 * boolean, a number → number, else text), or a JSON file `{device: {actuator: initial}}` such
 * as rules/examples/factory-cell/actuators.json. Commands are obeyed only when signed by the
 * gateway named by --gateway-id and --gateway-key, so both are required.
 */
export function actuatorsFlag(
  Err: UsageErrorClass,
  v: string | undefined,
  gw: { gatewayKey?: Uint8Array; gatewayId?: string },
): { actuators?: ActuatorSpec } {
  if (v === undefined) return {};
  if (!gw.gatewayKey || gw.gatewayId === undefined)
    throw new Err(
      '--actuators needs --gateway-key and --gateway-id (commands are obeyed only when signed by that gateway)',
    );
  if (v.endsWith('.json')) {
    let spec: unknown;
    try {
      spec = JSON.parse(readFileSync(v, 'utf8'));
    } catch (e) {
      throw new Err(`--actuators ${v}: ${(e as Error).message}`);
    }
    const ok = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
    if (
      !ok(spec) ||
      !Object.values(spec).every(
        (d) => ok(d) && Object.values(d).every((x) => ['number', 'boolean', 'string'].includes(typeof x)),
      )
    ) {
      throw new Err(`--actuators ${v}: must be {"device": {"actuator": initial value}}`);
    }
    return { actuators: spec as ActuatorSpec };
  }
  const out: Record<string, ActuatorValue> = {};
  for (const part of v.split(',')) {
    const m = /^\s*([A-Za-z0-9][A-Za-z0-9._-]{0,63})=(.{1,64})$/.exec(part);
    if (!m) throw new Err(`--actuators: "${part}" is not name=initial-value`);
    const raw = m[2]!.trim();
    out[m[1]!] =
      raw === 'true' ? true : raw === 'false' ? false : raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  return { actuators: { '*': out } };
}

/**
 * Gives `device` its --actuators (if any) and, whenever a gateway is trusted (--gateway-key and
 * --gateway-id), desired settings (firmware-sim/settings.ts; kept in `<state>/<id>.settings.json`
 * with --state); returns the link's onCommand (acks sent with `send`), or undefined if neither.
 */
export function deviceActuators(
  device: VirtualDevice,
  c: { actuators?: ActuatorSpec; gatewayKey?: Uint8Array; gatewayId?: string; state?: string },
  send: (ack: DeviceFrame) => void,
): { actuators?: Actuators; settings: DeviceSettings; onCommand: (frame: Uint8Array) => void } | undefined {
  if (!c.gatewayKey || c.gatewayId === undefined) return undefined;
  const gateways = [{ id: c.gatewayId, publicKey: c.gatewayKey }];
  const initial = c.actuators?.[device.id] ?? c.actuators?.['*'];
  const actuators = initial ? new Actuators({ device: device.id, gateways, initial }) : undefined;
  const settings = new DeviceSettings({
    device: device.id,
    gateways,
    ...(c.state !== undefined && { file: join(c.state, `${device.id}.settings.json`) }),
  });
  const commands = actuators && commandHandler(actuators, device, send);
  return {
    ...(actuators && { actuators }),
    settings,
    onCommand: settingsHandler(settings, device, send, commands),
  };
}
