/**
 * Read-ahead of lmdb pages off the main thread (lmdb-js's prefetch touches each value's pages on
 * a libuv thread). After a restart a store's pages are on disk only; a synchronous walk that
 * reads scattered values waits for one page fault after another, while the disk serves several
 * reads at once (bench/README.md, "HTTP queries on a cold store").
 */

/** Read-ahead tasks at once: libuv's default thread pool size. */
const PREFETCH_TASKS = 4;
/**
 * The longest a caller waits for its read-ahead: it is only a hint, and lmdb-js never calls back
 * a prefetch that failed (it logs the error), so an unbounded wait could hang a request.
 */
const PREFETCH_WAIT_MS = 1000;

/** `fetch` over `keys` in PREFETCH_TASKS slices side by side; settles when all are done or after PREFETCH_WAIT_MS. */
export function inSlices<K>(keys: readonly K[], fetch: (slice: K[]) => Promise<void>): Promise<void> {
  const per = Math.ceil(keys.length / PREFETCH_TASKS);
  const slices: Promise<void>[] = [];
  for (let i = 0; i < keys.length; i += per) slices.push(fetch(keys.slice(i, i + per)));
  let timer: NodeJS.Timeout | undefined;
  const cap = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, PREFETCH_WAIT_MS);
    timer.unref();
  });
  const all = Promise.all(slices).then(
    () => undefined,
    () => undefined, // a failed read-ahead only means the walk reads those pages itself
  );
  return Promise.race([all, cap]).finally(() => clearTimeout(timer));
}
