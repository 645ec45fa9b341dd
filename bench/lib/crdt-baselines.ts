/**
 * The sync bench's baselines: the same frame bytes replicated with Yjs and with Automerge,
 * two replicas holding `common` frames, then `onlyA` / `onlyB` frames each, then synced.
 * Both store each device's frames as a list of byte strings (a Y.Array per device; an
 * Automerge map of device → list of bytes), appended 256 frames per transaction/change, as
 * our ingest writes one block per batch. Neither verifies any signature (ours does).
 */
import * as Automerge from '@automerge/automerge';
import * as Y from 'yjs';

/** A frame and the device whose list it goes to. */
export interface DeviceFrame {
  readonly device: string;
  readonly bytes: Uint8Array;
}

export interface BaselineFrames {
  readonly devices: readonly string[];
  readonly common: readonly DeviceFrame[];
  readonly onlyA: readonly DeviceFrame[];
  readonly onlyB: readonly DeviceFrame[];
}

export interface BaselineResult {
  /** Frames in common actually used (Automerge may be run smaller when told to). */
  readonly n: number;
  readonly bytes: number;
  /** Messages sent, alternating direction (a round trip is two). */
  readonly flights: number;
  readonly wallMs: number;
  /** Bytes both sides send to find out they are already equal. */
  readonly equalBytes: number;
  /** Building both replicas (not part of the sync). */
  readonly buildMs: number;
  readonly converged: boolean;
}

const BATCH = 256;

/**
 * Yjs: the two-step exchange of y-protocols. A sends its state vector; B answers with the
 * update A lacks (`encodeStateAsUpdate(doc, sv)`) and its own state vector; A sends the update
 * B lacks. The equal check is the two state vectors (each side sees they match).
 */
export function yjsSync(f: BaselineFrames): BaselineResult {
  const t0 = performance.now();
  const push = (doc: Y.Doc, frames: readonly DeviceFrame[]): void => {
    for (let i = 0; i < frames.length; i += BATCH) {
      doc.transact(() => {
        for (let j = i; j < Math.min(frames.length, i + BATCH); j++)
          doc.getArray<Uint8Array>(frames[j]!.device).push([frames[j]!.bytes]);
      });
    }
  };
  const a = new Y.Doc();
  push(a, f.common);
  const b = new Y.Doc();
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
  push(a, f.onlyA);
  push(b, f.onlyB);
  const buildMs = performance.now() - t0;

  const t1 = performance.now();
  const svA = Y.encodeStateVector(a); // A → B
  const forA = Y.encodeStateAsUpdate(b, svA); // B → A, with B's state vector
  const svB = Y.encodeStateVector(b);
  Y.applyUpdate(a, forA);
  const forB = Y.encodeStateAsUpdate(a, svB); // A → B
  Y.applyUpdate(b, forB);
  const wallMs = performance.now() - t1;
  const eqA = Y.encodeStateVector(a);
  const eqB = Y.encodeStateVector(b);
  const converged = Buffer.from(eqA).equals(Buffer.from(eqB)) && sameYArrays(a, b, f);
  const result = {
    n: f.common.length,
    bytes: svA.length + forA.length + svB.length + forB.length,
    flights: 3,
    wallMs,
    equalBytes: eqA.length + eqB.length,
    buildMs,
    converged,
  };
  a.destroy();
  b.destroy();
  return result;
}

function sameYArrays(a: Y.Doc, b: Y.Doc, f: BaselineFrames): boolean {
  for (const name of f.devices) if (a.getArray(name).length !== b.getArray(name).length) return false;
  return true;
}

type Doc = Automerge.Doc<Record<string, Uint8Array[]>>;

/**
 * Automerge: its sync protocol from fresh sync states (as a new connection would), each side
 * calling generateSyncMessage / receiveSyncMessage in turn until neither has anything to send.
 */
export function automergeSync(f: BaselineFrames): BaselineResult {
  const t0 = performance.now();
  const push = (doc: Doc, frames: readonly DeviceFrame[]): Doc => {
    for (let i = 0; i < frames.length; i += BATCH) {
      doc = Automerge.change(doc, (d) => {
        for (let j = i; j < Math.min(frames.length, i + BATCH); j++) d[frames[j]!.device]!.push(frames[j]!.bytes);
      });
    }
    return doc;
  };
  let a: Doc = Automerge.from<Record<string, Uint8Array[]>>(Object.fromEntries(f.devices.map((d) => [d, []])));
  a = push(a, f.common);
  let b: Doc = Automerge.load<Record<string, Uint8Array[]>>(Automerge.save(a));
  a = push(a, f.onlyA);
  b = push(b, f.onlyB);
  const buildMs = performance.now() - t0;

  const t1 = performance.now();
  const s = run(a, b);
  const wallMs = performance.now() - t1;
  const eq = run(s.a, s.b);
  return {
    n: f.common.length,
    bytes: s.bytes,
    flights: s.flights,
    wallMs,
    equalBytes: eq.bytes,
    buildMs,
    converged: Automerge.equals(s.a, s.b),
  };
}

function run(a: Doc, b: Doc): { a: Doc; b: Doc; bytes: number; flights: number } {
  let sa = Automerge.initSyncState();
  let sb = Automerge.initSyncState();
  let bytes = 0;
  let flights = 0;
  for (let turn = 0; turn < 1000; turn++) {
    let msg: Uint8Array | null;
    let sent = false;
    [sa, msg] = Automerge.generateSyncMessage(a, sa);
    if (msg) {
      bytes += msg.length;
      flights++;
      sent = true;
      [b, sb] = Automerge.receiveSyncMessage(b, sb, msg);
    }
    [sb, msg] = Automerge.generateSyncMessage(b, sb);
    if (msg) {
      bytes += msg.length;
      flights++;
      sent = true;
      [a, sa] = Automerge.receiveSyncMessage(a, sa, msg);
    }
    if (!sent) break;
  }
  return { a, b, bytes, flights };
}
