/**
 * Persistent device counters. A real MCU keeps its boot counter in flash so
 * (boot, seq) never repeats across power cycles; the simulator does the same
 * through this small interface, in memory for tests or as JSON files on disk.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isValidId, MAX_COUNTER } from '../protocols/index.js';

export interface DeviceCounters {
  readonly boot: number;
  readonly seq: number;
}

export interface DeviceStateStore {
  /** The last saved counters, or undefined for a device never seen. */
  load(id: string): DeviceCounters | undefined;
  save(id: string, counters: DeviceCounters): void;
}

export class MemoryStateStore implements DeviceStateStore {
  // Updated in place: a device saves its counters with every frame.
  private readonly map = new Map<string, { boot: number; seq: number }>();
  load(id: string): DeviceCounters | undefined {
    const c = this.map.get(id);
    return c && { boot: c.boot, seq: c.seq };
  }
  /** The entry saved last: a device's own store (the default) holds one, saved with every frame, no hash lookup. */
  private lastId: string | undefined;
  private last: { boot: number; seq: number } | undefined;
  save(id: string, counters: DeviceCounters): void {
    let c = id === this.lastId ? this.last : this.map.get(id);
    if (c === undefined) {
      c = { boot: counters.boot, seq: counters.seq };
      this.map.set(id, c);
    } else {
      c.boot = counters.boot;
      c.seq = counters.seq;
    }
    this.lastId = id;
    this.last = c;
  }
}

const isCounter = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_COUNTER;

/**
 * One `{id}.json` file per device in `dir`. Writes go to a temp file and are
 * renamed over the old one, so a crash leaves either the old or the new state,
 * never a torn file. No fsync per frame: losing the last few seq values on a
 * power cut is harmless because the boot counter still moves on.
 */
export class JsonFileStateStore implements DeviceStateStore {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  private path(id: string): string {
    // Ids are restricted to [A-Za-z0-9._-] (protocols/ids), but "." and ".." must not become paths.
    if (!isValidId(id) || id === '.' || id === '..') throw new TypeError(`"${id}" is not a valid device id`);
    return join(this.dir, `${id}.json`);
  }

  load(id: string): DeviceCounters | undefined {
    let text: string;
    try {
      text = readFileSync(this.path(id), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw new Error(`${this.path(id)}: device state is not valid JSON`);
    }
    const o = v as { boot?: unknown; seq?: unknown } | null;
    if (typeof o !== 'object' || o === null || !isCounter(o.boot) || !isCounter(o.seq)) {
      throw new Error(`${this.path(id)}: device state needs integer "boot" and "seq"`);
    }
    return { boot: o.boot, seq: o.seq };
  }

  save(id: string, counters: DeviceCounters): void {
    const file = this.path(id);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ boot: counters.boot, seq: counters.seq }) + '\n', { mode: 0o600 });
    renameSync(tmp, file);
  }
}
