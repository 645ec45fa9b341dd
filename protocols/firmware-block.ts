/**
 * Bodies of `firmware` log blocks (kind 9, protocols/block.ts). Key 0 is the body's type:
 *
 *   release   {0: 1, 1: manifest (COSE_Sign1 bytes), 2: release key name, 3: image blocks}
 *   image     {0: 2, 1: image digest, 2: index, 3: data (IMAGE_BLOCK_BYTES, the last shorter)}
 *   rollout   {0: 3, 1: id, 2: image digest, 3: [device ids], 4: canary, 5: [step percents],
 *              6: halt-on-failure percent, 7: at, 8?: [window start, window end] (minutes of
 *              the day, the gateway's local time; start > end crosses midnight)}
 *   device    {0: 4, 1: rollout id, 2: device, 3: state (firmware-transfer.ts UPDATE_STATES
 *              index), 4: percent, 5: reason, 6: at}: one device's state (what gateways logged
 *              before `devices`; still read)
 *   step      {0: 5, 1: rollout id, 2: step index reached (0 = canary), 3: halted (bool), 4: at}
 *   control   {0: 6, 1: rollout id, 2: action (0 pause, 1 resume, 2 abort), 3: at}
 *   devices   {0: 7, 1: rollout id, 2: [[device, state, percent, reason, at], …] (1..256, in the
 *              order they happened)}: several devices' states in one block
 *
 * An image lives in the log as blocks of its own, so sync carries it to siblings once (a
 * block is sent only to a sibling that does not hold it) and a gateway streams it from the
 * store a block at a time. No floats (canonical CBOR without them). Decoding never throws.
 */
import type { CborValue } from './cbor.js';
import { UPDATE_STATES, type UpdateState } from './firmware-transfer.js';
import { fail, ok, ProtocolUsageError, type Result } from './result.js';

/** Bytes of image per log block. */
export const IMAGE_BLOCK_BYTES = 64 * 1024;
const MAX_ROLLOUT_DEVICES = 10_000;
const MAX_STEPS = 16;
const MAX_TEXT = 200;
/** Entries of one `devices` body: its CBOR (6 items an entry) stays well inside a block's item limit. */
export const MAX_DEVICE_ENTRIES = 256;
const MINUTES_PER_DAY = 24 * 60;

/** An operator's control of a rollout (gateway/firmware/README.md, "Pause, resume, abort"). */
export const CONTROL_ACTIONS = ['pause', 'resume', 'abort'] as const;
export type ControlAction = (typeof CONTROL_ACTIONS)[number];

/** When offers may be made: minutes of the day [start, end), local time; start > end crosses midnight. */
export interface OfferWindow {
  readonly start: number;
  readonly end: number;
}

/** One device's state in a rollout: a `device` body's fields, or one entry of a `devices` body. */
export interface DeviceEntry {
  readonly device: string;
  readonly state: UpdateState;
  readonly percent: number;
  readonly reason: string;
  readonly at: number;
}

export type FirmwareBody =
  | { readonly type: 'release'; readonly manifest: Uint8Array; readonly keyName: string; readonly blocks: number }
  | { readonly type: 'image'; readonly digest: Uint8Array; readonly index: number; readonly data: Uint8Array }
  | {
      readonly type: 'rollout';
      readonly id: string;
      readonly digest: Uint8Array;
      readonly devices: readonly string[];
      readonly canary: number;
      readonly steps: readonly number[];
      readonly haltPercent: number;
      readonly at: number;
      readonly window?: OfferWindow;
    }
  | {
      readonly type: 'device';
      readonly rollout: string;
      readonly device: string;
      readonly state: UpdateState;
      readonly percent: number;
      readonly reason: string;
      readonly at: number;
    }
  | {
      readonly type: 'step';
      readonly rollout: string;
      readonly step: number;
      readonly halted: boolean;
      readonly at: number;
    }
  | { readonly type: 'control'; readonly rollout: string; readonly action: ControlAction; readonly at: number }
  | { readonly type: 'devices'; readonly rollout: string; readonly entries: readonly DeviceEntry[] };

const TYPES = ['release', 'image', 'rollout', 'device', 'step', 'control', 'devices'] as const;

const entryValue = (e: DeviceEntry): CborValue[] => [
  e.device,
  UPDATE_STATES.indexOf(e.state),
  e.percent,
  e.reason.slice(0, MAX_TEXT),
  e.at,
];

export function firmwareBody(b: FirmwareBody): Map<number, CborValue> {
  const m = new Map<number, CborValue>([[0, TYPES.indexOf(b.type) + 1]]);
  const vals: CborValue[] =
    b.type === 'release'
      ? [b.manifest, b.keyName, b.blocks]
      : b.type === 'image'
        ? [b.digest, b.index, b.data]
        : b.type === 'rollout'
          ? [
              b.id,
              b.digest,
              [...b.devices],
              b.canary,
              [...b.steps],
              b.haltPercent,
              b.at,
              ...(b.window ? [[b.window.start, b.window.end]] : []),
            ]
          : b.type === 'device'
            ? [b.rollout, ...entryValue(b)]
            : b.type === 'step'
              ? [b.rollout, b.step, b.halted, b.at]
              : b.type === 'control'
                ? [b.rollout, CONTROL_ACTIONS.indexOf(b.action), b.at]
                : [b.rollout, b.entries.map(entryValue)];
  for (const [i, v] of vals.entries()) m.set(i + 1, v);
  const d = decodeFirmwareBody(m);
  if (!d.ok) throw new ProtocolUsageError(d.error.code, d.error.message);
  return m;
}

const uint = (v: CborValue | undefined): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const text = (v: CborValue | undefined, max = 64): v is string =>
  typeof v === 'string' && v.length > 0 && v.length <= max;
const bytes = (v: CborValue | undefined, len?: number): v is Uint8Array =>
  v instanceof Uint8Array && (len === undefined || v.length === len);
const percent = (v: CborValue | undefined): v is number => uint(v) && v <= 100;

export function decodeFirmwareBody(body: CborValue): Result<FirmwareBody> {
  if (!(body instanceof Map)) return fail('firmware-block/bad-body', 'a firmware body is a map');
  const t = body.get(0);
  const type = typeof t === 'number' ? TYPES[t - 1] : undefined;
  if (type === undefined) return fail('firmware-block/bad-type', `unknown firmware body type ${String(t)}`);
  const f = (k: number) => body.get(k);
  const bad = (what: string) => fail('firmware-block/bad-field', `${type}: ${what}`);
  switch (type) {
    case 'release':
      if (!bytes(f(1)) || (f(1) as Uint8Array).length === 0) return bad('manifest must be bytes');
      if (!text(f(2))) return bad('key name must be text');
      if (!uint(f(3))) return bad('blocks must be a count');
      return ok({ type, manifest: f(1) as Uint8Array, keyName: f(2) as string, blocks: f(3) as number });
    case 'image':
      if (!bytes(f(1), 32)) return bad('digest must be 32 bytes');
      if (!uint(f(2))) return bad('index must be a count');
      if (!bytes(f(3)) || (f(3) as Uint8Array).length === 0 || (f(3) as Uint8Array).length > IMAGE_BLOCK_BYTES)
        return bad(`data must be 1..${IMAGE_BLOCK_BYTES} bytes`);
      return ok({ type, digest: f(1) as Uint8Array, index: f(2) as number, data: f(3) as Uint8Array });
    case 'rollout': {
      const devices = f(3);
      const steps = f(5);
      if (!text(f(1)) || !bytes(f(2), 32)) return bad('id and digest');
      if (!Array.isArray(devices) || devices.length === 0 || devices.length > MAX_ROLLOUT_DEVICES)
        return bad(`devices must be 1..${MAX_ROLLOUT_DEVICES} ids`);
      if (!devices.every((d) => text(d))) return bad('device ids must be text');
      if (!Array.isArray(steps) || steps.length === 0 || steps.length > MAX_STEPS) return bad('steps');
      if (!steps.every((s, i) => percent(s) && s > 0 && (i === 0 || s > (steps[i - 1] as number))))
        return bad('steps must be increasing percents');
      if (steps[steps.length - 1] !== 100) return bad('the last step must be 100%');
      if (!uint(f(4)) || !percent(f(6)) || !uint(f(7))) return bad('canary, halt percent and at');
      const w = f(8);
      const minute = (v: CborValue | undefined) => uint(v) && v < MINUTES_PER_DAY;
      if (w !== undefined && (!Array.isArray(w) || w.length !== 2 || !minute(w[0]) || !minute(w[1]) || w[0] === w[1]))
        return bad('window must be two different minutes of the day');
      return ok({
        type,
        id: f(1) as string,
        digest: f(2) as Uint8Array,
        devices: devices as string[],
        canary: f(4) as number,
        steps: steps as number[],
        haltPercent: f(6) as number,
        at: f(7) as number,
        ...(w !== undefined && { window: { start: (w as number[])[0]!, end: (w as number[])[1]! } }),
      });
    }
    case 'device': {
      if (!text(f(1))) return bad('rollout and device');
      const e = deviceEntry(f(2), f(3), f(4), f(5), f(6));
      return typeof e === 'string' ? bad(e) : ok({ type, rollout: f(1) as string, ...e });
    }
    case 'devices': {
      const list = f(2);
      if (!text(f(1))) return bad('rollout');
      if (!Array.isArray(list) || list.length === 0 || list.length > MAX_DEVICE_ENTRIES)
        return bad(`entries must be 1..${MAX_DEVICE_ENTRIES}`);
      const entries: DeviceEntry[] = [];
      for (const v of list) {
        if (!Array.isArray(v) || v.length !== 5) return bad('an entry is [device, state, percent, reason, at]');
        const e = deviceEntry(v[0], v[1], v[2], v[3], v[4]);
        if (typeof e === 'string') return bad(e);
        entries.push(e);
      }
      return ok({ type, rollout: f(1) as string, entries });
    }
    case 'step':
      if (!text(f(1)) || !uint(f(2)) || typeof f(3) !== 'boolean' || !uint(f(4))) return bad('fields');
      return ok({ type, rollout: f(1) as string, step: f(2) as number, halted: f(3) as boolean, at: f(4) as number });
    case 'control': {
      const a = f(2);
      if (!text(f(1)) || !uint(a) || a >= CONTROL_ACTIONS.length || !uint(f(3))) return bad('fields');
      return ok({ type, rollout: f(1) as string, action: CONTROL_ACTIONS[a]!, at: f(3) as number });
    }
  }
}

/** A device's state from its fields (a `device` body's or a `devices` entry's), or what is wrong with them. */
function deviceEntry(
  device: CborValue | undefined,
  state: CborValue | undefined,
  pct: CborValue | undefined,
  reason: CborValue | undefined,
  at: CborValue | undefined,
): DeviceEntry | string {
  if (!text(device)) return 'rollout and device';
  if (!uint(state) || state >= UPDATE_STATES.length) return 'state';
  if (!percent(pct) || typeof reason !== 'string' || reason.length > MAX_TEXT || !uint(at))
    return 'percent, reason and at';
  return { device, state: UPDATE_STATES[state]!, percent: pct, reason, at };
}
