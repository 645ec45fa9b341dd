/**
 * Read-ahead of lmdb pages off the main thread (lmdb-js's prefetch touches each value's pages on
 * a libuv thread). After a restart a store's pages are on disk only; a synchronous walk that
 * reads scattered values waits for one page fault after another, while the disk serves several
 * reads at once (bench/README.md, "HTTP queries on a cold store").
 */

/** Read-ahead tasks at once: libuv's default thread pool size. */
const PREFETCH_TASKS = 4;

/** `fetch` over `keys` in PREFETCH_TASKS slices side by side. */
export function inSlices<K>(keys: readonly K[], fetch: (slice: K[]) => Promise<void>): Promise<unknown> {
  const per = Math.ceil(keys.length / PREFETCH_TASKS);
  const slices: Promise<void>[] = [];
  for (let i = 0; i < keys.length; i += per) slices.push(fetch(keys.slice(i, i + per)));
  return Promise.all(slices);
}
