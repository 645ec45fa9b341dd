/**
 * Line noise for serial links: bit flips, dropped bytes, duplicated bytes and
 * truncated frames (the rest of a frame lost up to its delimiter, as when an
 * MCU resets mid-transmission), drawn from a seedable PRNG so a failing run
 * can be replayed. `NoiseInjector.apply` is the pure core; `noiseStream` wraps
 * it as a stream Transform.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { Prng } from './sensors.js';

export interface NoiseWeights {
  readonly flip: number;
  readonly drop: number;
  readonly dup: number;
  readonly truncate: number;
}

export interface NoiseOptions {
  /** Probability that a byte suffers a noise event (0.01 = 1%). */
  readonly rate: number;
  readonly seed?: number | string;
  /** Relative weights of the event kinds; default flip 4, drop 2.5, dup 2.5, truncate 1. */
  readonly weights?: Partial<NoiseWeights>;
}

export interface NoiseStats {
  bytesIn: number;
  bytesOut: number;
  flips: number;
  drops: number;
  dups: number;
  truncations: number;
}

const DEFAULT_NOISE_WEIGHTS: NoiseWeights = { flip: 4, drop: 2.5, dup: 2.5, truncate: 1 };

export class NoiseInjector {
  readonly stats: NoiseStats = { bytesIn: 0, bytesOut: 0, flips: 0, drops: 0, dups: 0, truncations: 0 };
  private readonly prng: Prng;
  private readonly rate: number;
  private readonly cuts: [number, number, number];
  /** Dropping bytes until the next 0x00 (a truncated frame). */
  private truncating = false;

  constructor(opts: NoiseOptions) {
    if (!(opts.rate >= 0 && opts.rate <= 1)) throw new RangeError('noise rate must be within 0..1');
    this.rate = opts.rate;
    this.prng = new Prng(opts.seed ?? 1);
    const w = { ...DEFAULT_NOISE_WEIGHTS, ...opts.weights };
    const total = w.flip + w.drop + w.dup + w.truncate;
    if (!(total > 0) || [w.flip, w.drop, w.dup, w.truncate].some((x) => x < 0))
      throw new RangeError('noise weights must be ≥ 0 and not all 0');
    this.cuts = [w.flip / total, (w.flip + w.drop) / total, (w.flip + w.drop + w.dup) / total];
  }

  /** The bytes as the far end receives them. */
  apply(chunk: Uint8Array): Uint8Array {
    this.stats.bytesIn += chunk.length;
    if (this.rate === 0 && !this.truncating) {
      this.stats.bytesOut += chunk.length;
      return chunk;
    }
    const out: number[] = [];
    for (const b of chunk) {
      if (this.truncating) {
        if (b !== 0) continue;
        this.truncating = false;
        out.push(b);
        continue;
      }
      if (this.prng.next() >= this.rate) {
        out.push(b);
        continue;
      }
      const k = this.prng.next();
      if (k < this.cuts[0]) {
        out.push(b ^ (1 << this.prng.int(8)));
        this.stats.flips++;
      } else if (k < this.cuts[1]) {
        this.stats.drops++;
      } else if (k < this.cuts[2]) {
        out.push(b, b);
        this.stats.dups++;
      } else {
        this.stats.truncations++;
        if (b === 0) out.push(b);
        else this.truncating = true;
      }
    }
    this.stats.bytesOut += out.length;
    return Uint8Array.from(out);
  }
}

/** A Transform that passes bytes through a NoiseInjector. */
export function noiseStream(opts: NoiseOptions | NoiseInjector): Transform & { injector: NoiseInjector } {
  const injector = opts instanceof NoiseInjector ? opts : new NoiseInjector(opts);
  const t = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      const out = injector.apply(chunk);
      cb(null, out.length ? Buffer.from(out.buffer, out.byteOffset, out.byteLength) : undefined);
    },
  });
  return Object.assign(t, { injector });
}
