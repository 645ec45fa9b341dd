/**
 * A pool of worker threads verifying Ed25519 signatures, up to one per core.
 * Jobs submitted in one event-loop turn are packed into one transferable
 * buffer per worker, so message passing costs per batch, not per frame.
 * With `size` 0 it verifies inline (useful for the CLI and small tools).
 *
 * Sized to the load: each worker thread costs about 8 MB (its own V8 isolate
 * and heap), so the pool starts one and adds another only when the jobs in
 * flight exceed GROW_AT per running worker (~20 ms of verifying on this class
 * of core: a backlog one thread does not clear), up to `size`. A batch goes to
 * as many workers as that backlog needs, the first started, so an extra
 * worker gets no job while the first keeps up, and stops after `idleMs`
 * (default 30 s) without one. 1 000 devices at 1–4 Hz (a verify is ~80 µs)
 * need one worker; a saturating burst or a sync exchange brings up every core
 * within a batch.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { verifyEd25519 } from '../crypto/ed25519.js';
import { JOB_HEADER, type VerifyReply, type VerifyRequest } from './verify-worker.js';

export interface VerifyJob {
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
  readonly message: Uint8Array;
}

/** Below this many jobs a batch is not split across the workers it goes to. */
const SPLIT_AT = 32;
/** Above this many jobs in flight per running worker, another starts and takes a share. */
const GROW_AT = 256;
/** A worker beyond the first stops after this long without a job (default). */
const IDLE_MS = 30_000;

interface Pending {
  resolve: (r: Uint8Array) => void;
  reject: (e: Error) => void;
}

interface PoolWorker {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
  /** Jobs handed to this worker and not yet answered. */
  load: number;
  /** Stops this worker when it has been idle for `idleMs` (not set on the first worker). */
  idle?: NodeJS.Timeout;
}

// From source (.ts) the worker starts through a tsx bootstrap; compiled JS runs directly.
const fromSource = import.meta.url.endsWith('.ts');
const workerUrl = new URL(fromSource ? './ts-worker-boot.mjs' : './verify-worker.js', import.meta.url);
const workerData = fromSource ? { tsModule: new URL('./verify-worker.ts', import.meta.url).href } : {};

export class VerifyPool {
  private readonly workers: PoolWorker[] = [];
  private nextId = 1;
  private closed = false;

  /** `size`: the most worker threads it runs (0: verify inline on the calling thread). */
  constructor(
    readonly size = availableParallelism(),
    private readonly idleMs = IDLE_MS,
  ) {
    if (size > 0) this.workers.push(this.spawn());
  }

  /** Worker threads running now (1 up to `size`, or 0 when inline). */
  get running(): number {
    return this.workers.length;
  }

  /**
   * The workers a batch of `incoming` jobs goes to: the first ones in start order, as many as the
   * jobs in flight with it need at GROW_AT each, started while fewer are running.
   */
  private assign(incoming: number): PoolWorker[] {
    const need = Math.min(this.size, Math.max(1, Math.ceil((this.queued + incoming) / GROW_AT)));
    while (this.workers.length < need) this.workers.push(this.spawn());
    return this.workers.slice(0, need);
  }

  /** Arms the idle stop of a worker beyond the first once it has nothing in flight. */
  private armIdle(pw: PoolWorker): void {
    if (this.closed || this.workers[0] === pw) return;
    clearTimeout(pw.idle);
    pw.idle = setTimeout(() => {
      const i = this.workers.indexOf(pw);
      if (i <= 0 || pw.load > 0) return;
      this.workers.splice(i, 1); // out of the pool first: its exit is not a crash to replace
      void pw.worker.terminate();
    }, this.idleMs);
    pw.idle.unref();
  }

  private spawn(): PoolWorker {
    const worker = new Worker(workerUrl, { workerData });
    const pw: PoolWorker = { worker, pending: new Map(), load: 0 };
    worker.on('message', (reply: VerifyReply) => {
      const p = pw.pending.get(reply.id);
      if (!p) return;
      pw.pending.delete(reply.id);
      pw.load -= reply.results.length;
      if (pw.pending.size === 0) {
        worker.unref();
        this.armIdle(pw);
      }
      p.resolve(reply.results);
    });
    const fail = (err: Error): void => {
      for (const p of pw.pending.values()) p.reject(err);
      pw.pending.clear();
      pw.load = 0;
      const i = this.workers.indexOf(pw);
      // A crashed worker is replaced so one bad event cannot stop ingest.
      if (i >= 0 && !this.closed) this.workers[i] = this.spawn();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      clearTimeout(pw.idle);
      if (!this.closed && this.workers.includes(pw)) fail(new Error(`verify worker exited with code ${code}`));
    });
    // Idle workers must not keep the process alive; busy ones must.
    worker.unref();
    return pw;
  }

  /** Jobs waiting in workers (a queue-depth gauge). */
  get queued(): number {
    return this.workers.reduce((n, w) => n + w.load, 0);
  }

  /** Verifies jobs; result i is true when signature i holds. */
  async verify(jobs: readonly VerifyJob[]): Promise<boolean[]> {
    if (jobs.length === 0) return [];
    if (this.workers.length === 0) return jobs.map((j) => verifyEd25519(j.publicKey, j.message, j.signature));
    if (this.closed) throw new Error('verify pool is closed');
    // Small batches go whole to the least-loaded of the workers assigned (one message); large ones are split.
    const order = this.assign(jobs.length).sort((a, b) => a.load - b.load);
    const chunk = jobs.length < SPLIT_AT ? jobs.length : Math.ceil(jobs.length / order.length);
    const parts: Promise<Uint8Array>[] = [];
    for (let i = 0, w = 0; i < jobs.length; i += chunk, w++) {
      parts.push(this.send(order[w]!, jobs.slice(i, i + chunk)));
    }
    const results = await Promise.all(parts);
    const out: boolean[] = [];
    for (const r of results) for (const b of r) out.push(b === 1);
    return out;
  }

  private send(pw: PoolWorker, jobs: readonly VerifyJob[]): Promise<Uint8Array> {
    let bytes = 0;
    for (const j of jobs) bytes += JOB_HEADER + j.message.length;
    const buf = new Uint8Array(bytes);
    const view = new DataView(buf.buffer);
    let off = 0;
    for (const j of jobs) {
      if (j.publicKey.length === 32 && j.signature.length === 64) {
        buf[off] = 1;
        buf.set(j.publicKey, off + 1);
        buf.set(j.signature, off + 33);
      } // else the shape flag stays 0 and the job is answered "invalid"
      view.setUint32(off + 97, j.message.length);
      buf.set(j.message, off + JOB_HEADER);
      off += JOB_HEADER + j.message.length;
    }
    const id = this.nextId++;
    pw.load += jobs.length;
    clearTimeout(pw.idle);
    return new Promise((resolve, reject) => {
      pw.pending.set(id, { resolve, reject });
      pw.worker.ref();
      const req: VerifyRequest = { id, batch: buf.buffer, count: jobs.length };
      pw.worker.postMessage(req, [buf.buffer]);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.workers) clearTimeout(w.idle);
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
