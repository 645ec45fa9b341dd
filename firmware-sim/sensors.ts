/**
 * Sensor models for virtual devices: plausible values with noise, slow drift
 * and daily cycles, all drawn from a seedable PRNG so a test can replay the
 * exact same readings. Each device model yields one SenML pack per sample.
 */
import type { SenmlRecord } from '../protocols/index.js';

/** Small fast PRNG (sfc32 seeded through splitmix32); not for keys. */
export class Prng {
  /**
   * The state (a, b, c, d) and the cached Gaussian in typed arrays: a number field holds a
   * uint32 above 2^31 or a double in a fresh heap box at every store, and each box lived until
   * the next sample, a sample period: promoted by the young collection, and an old-to-new
   * pointer to record at each store (bench/README.md, "firmware-sim", fourth pass).
   */
  private readonly s = new Uint32Array(4);
  private readonly spare = new Float64Array(1);
  private hasSpare = false;

  constructor(seed: number | string) {
    let s = typeof seed === 'number' ? seed >>> 0 : fnv1a(seed);
    const split = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    const st = this.s;
    st[0] = split();
    st[1] = split();
    st[2] = split();
    st[3] = split();
    for (let i = 0; i < 12; i++) this.next();
  }

  /** Uniform in [0, 1). */
  next(): number {
    const st = this.s; // a, b, c, d; a Uint32Array keeps each mod 2^32, as `>>> 0` did
    const b = st[1]!;
    const c = st[2]!;
    const t = (((st[0]! + b) >>> 0) + st[3]!) >>> 0;
    st[3] = st[3]! + 1;
    st[0] = b ^ (b >>> 9);
    st[1] = c + (c << 3);
    st[2] = (((c << 21) | (c >>> 11)) >>> 0) + t;
    return t / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Gaussian (Box–Muller, the second value cached). */
  normal(mean = 0, sd = 1): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return mean + sd * this.spare[0]!;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    const th = 2 * Math.PI * this.next();
    this.spare[0] = r * Math.sin(th);
    this.hasSpare = true;
    return mean + sd * r * Math.cos(th);
  }

  /** Poisson-distributed count (Knuth for small means, normal approximation above 30). */
  poisson(mean: number): number {
    if (mean <= 0) return 0;
    if (mean > 30) return Math.max(0, Math.round(this.normal(mean, Math.sqrt(mean))));
    const l = Math.exp(-mean);
    let k = 0;
    let p = 1;
    do {
      k++;
      p *= this.next();
    } while (p > l);
    return k - 1;
  }

  /** An independent generator derived from this one and a label. */
  fork(label: string): Prng {
    return new Prng(fnv1a(label) ^ Math.floor(this.next() * 4294967296));
  }
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));
const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** A physical sensor: advances its state to device time `tSec` and reports one record. */
export interface Sensor {
  readonly name: string;
  sample(tSec: number): SenmlRecord;
}

/** Mean-reverting random walk (Ornstein–Uhlenbeck): bounded drift that still wanders. */
class Drift {
  /** The walk's value, in a typed array for the reason Prng's state is. */
  private readonly x = new Float64Array(1);
  constructor(
    private readonly rng: Prng,
    private readonly sigmaPerSqrtSec: number,
    private readonly revertPerSec: number,
  ) {}
  step(dt: number): number {
    const x = this.x[0]!;
    if (dt > 0)
      this.x[0] = x + (-this.revertPerSec * x * dt + this.sigmaPerSqrtSec * Math.sqrt(dt) * this.rng.normal());
    return this.x[0]!;
  }
}

/**
 * Seconds since the previous sample, capped so a long gap does not explode the walk. The last
 * time sits in a typed array: a closure variable or an object's number field holds each new
 * double in a fresh box, which lived a sample period (promoted by the young-generation collector).
 */
function makeClock(): (tSec: number) => number {
  const last = new Float64Array(1);
  let set = false;
  return (t) => {
    const dt = set ? clamp(t - last[0]!, 0, 3600) : 0;
    last[0] = t;
    set = true;
    return dt;
  };
}

const DAY = 86_400;

function temperatureSensor(rng: Prng, base = 21): Sensor {
  const drift = new Drift(rng, 0.02, 1 / 600);
  const dt = makeClock();
  const phase = rng.next() * 2 * Math.PI;
  const offset = rng.normal(0, 1.5);
  return {
    name: 'temp',
    sample(t) {
      const daily = 3 * Math.sin((2 * Math.PI * (t % DAY)) / DAY + phase);
      const v = base + offset + daily + drift.step(dt(t)) + rng.normal(0, 0.05);
      return { n: 'temp', u: 'Cel', v: round(clamp(v, -40, 85), 2) };
    },
  };
}

function humiditySensor(rng: Prng): Sensor {
  const drift = new Drift(rng, 0.1, 1 / 900);
  const dt = makeClock();
  const base = 45 + rng.normal(0, 5);
  return {
    name: 'hum',
    sample(t) {
      const v = base + drift.step(dt(t)) * 5 + rng.normal(0, 0.3);
      return { n: 'hum', u: '%RH', v: round(clamp(v, 0, 100), 1) };
    },
  };
}

/** Vibration RMS of a running machine: log-normal noise, rare spikes, slow wear. */
function vibrationSensor(rng: Prng): Sensor {
  const dt = makeClock();
  const base = 1.5 + rng.next();
  const wear = new Float64Array(1); // in place (makeClock)
  return {
    name: 'vib',
    sample(t) {
      wear[0] = wear[0]! + (dt(t) / 3600) * 0.001;
      let v = (base + wear[0]!) * Math.exp(rng.normal(0, 0.15));
      if (rng.next() < 0.01) v *= 3 + 2 * rng.next();
      return { n: 'vib', u: 'm/s2', v: round(Math.max(0, v), 3) };
    },
  };
}

function pressureSensor(rng: Prng): Sensor {
  const drift = new Drift(rng, 2, 1 / 3600);
  const dt = makeClock();
  const base = 101_325 + rng.normal(0, 300);
  return {
    name: 'press',
    sample(t) {
      const v = base + drift.step(dt(t)) + rng.normal(0, 3);
      return { n: 'press', u: 'Pa', v: Math.round(clamp(v, 87_000, 108_500)) };
    },
  };
}

/** People/vehicle counter: `v` is the count since the previous sample, `s` the running total (kept across simulated reboots). */
function counterSensor(rng: Prng, ratePerSec = 0.5): Sensor {
  const dt = makeClock();
  let total = 0;
  return {
    name: 'count',
    sample(t) {
      const n = rng.poisson(ratePerSec * dt(t));
      total += n;
      return { n: 'count', u: 'count', v: n, s: total };
    },
  };
}

/** Door contact: a two-state Markov chain (opens about every 2 min, stays open ~20 s). */
function doorSensor(rng: Prng): Sensor {
  const dt = makeClock();
  let open = false;
  return {
    name: 'door',
    sample(t) {
      const d = dt(t);
      const rate = open ? 1 / 20 : 1 / 120;
      if (rng.next() < 1 - Math.exp(-rate * d)) open = !open;
      return { n: 'door', vb: open };
    },
  };
}

/** Device models: a name the registry and manifest carry, and the sensors it has. */
export const DEVICE_MODELS = {
  'env-1': (rng: Prng): Sensor[] => [temperatureSensor(rng.fork('temp')), humiditySensor(rng.fork('hum'))],
  'press-vib-1': (rng: Prng): Sensor[] => [vibrationSensor(rng.fork('vib')), temperatureSensor(rng.fork('temp'), 35)],
  'baro-1': (rng: Prng): Sensor[] => [pressureSensor(rng.fork('press')), temperatureSensor(rng.fork('temp'))],
  'traffic-1': (rng: Prng): Sensor[] => [counterSensor(rng.fork('count'))],
  'door-1': (rng: Prng): Sensor[] => [doorSensor(rng.fork('door'))],
} as const;

export type DeviceModelName = keyof typeof DEVICE_MODELS;
export const MODEL_NAMES = Object.keys(DEVICE_MODELS) as DeviceModelName[];
export const isDeviceModel = (m: unknown): m is DeviceModelName =>
  typeof m === 'string' && Object.hasOwn(DEVICE_MODELS, m);

/** The sensors of one device, sampled together into one SenML pack. */
export class SensorSuite {
  private readonly sensors: Sensor[];

  constructor(
    readonly model: DeviceModelName,
    seed: number | string,
  ) {
    if (!isDeviceModel(model))
      throw new TypeError(`unknown device model "${String(model)}" (known: ${MODEL_NAMES.join(', ')})`);
    this.sensors = DEVICE_MODELS[model](new Prng(seed));
  }

  /**
   * One pack at device time `timeMs`: the first record carries the base name
   * (`{baseName}` + sensor name must be a valid RFC 8428 §4.5.1 name) and base time in seconds.
   */
  sample(timeMs: number, baseName: string): SenmlRecord[] {
    const t = timeMs / 1000;
    const out: SenmlRecord[] = [];
    for (let i = 0; i < this.sensors.length; i++) {
      const r = this.sensors[i]!.sample(t); // a fresh record, so it takes the base fields itself
      if (i === 0) {
        r.bn = baseName;
        r.bt = t;
      }
      out.push(r);
    }
    return out;
  }
}
