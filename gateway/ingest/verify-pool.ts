/**
 * A pool of worker threads verifying Ed25519 signatures, sized to the cores.
 * Jobs submitted in one event-loop turn are packed into one transferable
 * buffer per worker, so message passing costs per batch, not per frame.
 * With `size` 0 it verifies inline (useful for the CLI and small tools).
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

/** Below this many jobs a batch is not split across workers. */
const SPLIT_AT = 32;

interface Pending {
  resolve: (r: Uint8Array) => void;
  reject: (e: Error) => void;
}

interface PoolWorker {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
  /** Jobs handed to this worker and not yet answered. */
  load: number;
}

// From source (.ts) the worker starts through a tsx bootstrap; compiled JS runs directly.
const fromSource = import.meta.url.endsWith('.ts');
const workerUrl = new URL(fromSource ? './ts-worker-boot.mjs' : './verify-worker.js', import.meta.url);
const workerData = fromSource ? { tsModule: new URL('./verify-worker.ts', import.meta.url).href } : {};

export class VerifyPool {
  private readonly workers: PoolWorker[] = [];
  private nextId = 1;
  private closed = false;

  constructor(readonly size = availableParallelism()) {
    for (let i = 0; i < size; i++) this.workers.push(this.spawn());
  }

  private spawn(): PoolWorker {
    const worker = new Worker(workerUrl, { workerData });
    const pw: PoolWorker = { worker, pending: new Map(), load: 0 };
    worker.on('message', (reply: VerifyReply) => {
      const p = pw.pending.get(reply.id);
      if (!p) return;
      pw.pending.delete(reply.id);
      pw.load -= reply.results.length;
      if (pw.pending.size === 0) worker.unref();
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
      if (!this.closed) fail(new Error(`verify worker exited with code ${code}`));
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
    // Small batches go whole to the least-loaded worker (one message); large ones are split.
    const order = [...this.workers].sort((a, b) => a.load - b.load);
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
    return new Promise((resolve, reject) => {
      pw.pending.set(id, { resolve, reject });
      pw.worker.ref();
      const req: VerifyRequest = { id, batch: buf.buffer, count: jobs.length };
      pw.worker.postMessage(req, [buf.buffer]);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
