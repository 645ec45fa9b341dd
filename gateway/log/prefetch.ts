/**
 * Read-ahead of lmdb pages off the main thread (lmdb-js's prefetch touches each value's pages on
 * a libuv thread). After a restart a store's pages are on disk only; a synchronous walk that
 * reads scattered values waits for one page fault after another, while the disk serves several
 * reads at once (bench/README.md, "HTTP queries on a cold store").
 */

/**
 * Read-ahead tasks at once: libuv's thread pool size (4 unless UV_THREADPOOL_SIZE, which libuv
 * reads once, sets it): each task's page faults wait one after another on its thread, so the
 * disk sees as many reads at once as there are threads (bench/README.md, "/api/frames without
 * its objects": 16 threads read a device's hour of blocks in about half the time of 4).
 */
const PREFETCH_TASKS = poolSize(process.env.UV_THREADPOOL_SIZE);

/** libuv's pool size for a UV_THREADPOOL_SIZE value, as libuv reads it (threadpool.c: atoi, 0 → 1, at most 1024). */
export function poolSize(v: string | undefined): number {
  if (v === undefined) return 4;
  const n = Number.parseInt(v, 10) || 0; // atoi: no number is 0
  if (n === 0) return 1;
  return n < 0 || n > 1024 ? 1024 : n; // a negative count is a huge unsigned one
}
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
