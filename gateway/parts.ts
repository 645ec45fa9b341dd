/**
 * The gateway's lifecycle: every part (store, verify pool, transports, API, …) is registered once it has
 * started and stopped in reverse order. Stopping runs every part's stop even when one throws, so a failing
 * transport cannot leave the broker listening or the store open; each failure is logged with the part's
 * name and the stop reports them together (PartsStopError), so `gateway start` exits non-zero.
 */
import type { Logger } from './logger.js';

/** One started part of the gateway: its name in logs and how it stops. */
export interface Part {
  readonly name: string;
  stop(): Promise<void> | void;
}

/** Stopping failed for one or more parts; every other part still stopped. */
export class PartsStopError extends AggregateError {
  readonly code = 'PARTS_STOP_FAILED';

  constructor(
    /** The parts whose stop threw, in the order they were stopped. */
    readonly parts: readonly string[],
    errors: readonly unknown[],
  ) {
    super(errors, `stopping failed for ${parts.join(', ')}`);
    this.name = 'PartsStopError';
  }
}

export class Lifecycle {
  private readonly running: Part[] = [];

  constructor(private readonly log: Logger) {}

  /** Registers a started part (stopped before every part registered earlier) and returns it. */
  add<T>(name: string, value: T, stop: (value: T) => Promise<void> | void): T {
    this.running.push({ name, stop: () => stop(value) });
    return value;
  }

  /** The running parts' names, in start order. */
  get names(): string[] {
    return this.running.map((p) => p.name);
  }

  /**
   * Stops every part, last started first. A part whose stop throws is logged and the rest still stop;
   * then a PartsStopError names them all. A second call finds nothing left to stop.
   */
  async stop(): Promise<void> {
    const failed: string[] = [];
    const errors: unknown[] = [];
    for (let part = this.running.pop(); part; part = this.running.pop()) {
      try {
        await part.stop();
        this.log.debug({ part: part.name }, `${part.name} stopped`);
      } catch (err) {
        this.log.error({ err, part: part.name }, `stopping ${part.name} failed`);
        failed.push(part.name);
        errors.push(err);
      }
    }
    if (failed.length > 0) throw new PartsStopError(failed, errors);
  }
}
