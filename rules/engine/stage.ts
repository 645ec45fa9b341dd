/**
 * A stateful rxjs operator whose callbacks and timers may throw: a throw becomes the
 * stream's error (so the engine can isolate the rule) instead of an unhandled exception.
 */
import { Observable, type OperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';

export interface StageIo<O> {
  emit(o: O): void;
  /** Runs `fn` after `ms` on the rule's scheduler; errors reach the stream. */
  timer(ms: number, fn: () => void): Subscription;
  now(): number;
}

export interface StageHandlers<I> {
  next(v: I): void;
  complete?(): void;
}

export type StageSetup<I, O> = (io: StageIo<O>) => StageHandlers<I>;

/** A stage as an operator, its setup kept so that consecutive stages can be fused (`stages`). */
export type StageOperator<I, O> = OperatorFunction<I, O> & { readonly setup: StageSetup<I, O> };

export function stage<I, O>(scheduler: SchedulerLike, setup: StageSetup<I, O>): StageOperator<I, O> {
  return Object.assign(stages<I, O>(scheduler, [setup]), { setup });
}

/**
 * Consecutive stages as one operator: a stage's emit calls the next stage's handler directly
 * instead of passing through rxjs subscribers (a rule's frame crossed ~5 calls a stage; this is
 * the replay's hot path). Same order of calls as the stages piped one after another: setups
 * run last stage first (as subscribing a piped chain does), each handler, timer and setup runs
 * in its own try, and a throw anywhere errors the stream, tears every stage down and drops any
 * later emission, as the piped chain's teardown did.
 */
export function stages<I, O>(
  scheduler: SchedulerLike,
  // biome-ignore lint/suspicious/noExplicitAny: a heterogeneous chain (frame → window → verdict → …), typed where each stage is written
  setups: readonly StageSetup<any, any>[],
): OperatorFunction<I, O> {
  const n = setups.length;
  return (source) =>
    new Observable<O>((sub) => {
      const timers = new Set<Subscription>();
      const hs: StageHandlers<unknown>[] = new Array(n);
      let dead = false;
      let s: Subscription | undefined;
      const teardown = (): void => {
        s?.unsubscribe();
        for (const t of timers) t.unsubscribe();
        timers.clear();
      };
      const fail = (e: unknown): void => {
        if (dead) return;
        dead = true;
        teardown();
        sub.error(e);
      };
      const ioOf = (i: number): StageIo<unknown> => {
        const into = i + 1 < n ? hs : undefined;
        return {
          emit:
            into === undefined
              ? (o) => {
                  if (!dead) sub.next(o as O);
                }
              : (o) => {
                  if (dead) return;
                  try {
                    into[i + 1]!.next(o);
                  } catch (e) {
                    fail(e);
                  }
                },
          now: () => scheduler.now(),
          timer(ms, fn) {
            const t = scheduler.schedule(
              () => {
                timers.delete(t);
                try {
                  fn();
                } catch (e) {
                  fail(e);
                }
              },
              Math.max(0, ms),
            );
            timers.add(t);
            return t;
          },
        };
      };
      for (let i = n - 1; i >= 0; i--) {
        try {
          hs[i] = setups[i]!(ioOf(i));
        } catch (e) {
          fail(e);
          return;
        }
      }
      const first = hs[0]!;
      s = source.subscribe({
        next(v) {
          if (dead) return;
          try {
            first.next(v);
          } catch (e) {
            fail(e);
          }
        },
        error: (e: unknown) => fail(e),
        complete() {
          for (const h of hs) {
            if (dead) return;
            try {
              h.complete?.();
            } catch (e) {
              fail(e);
              return;
            }
          }
          if (!dead) sub.complete();
        },
      });
      return teardown;
    });
}
