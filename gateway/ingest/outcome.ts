/** What ingest says about one frame. Rejections are permanent; failures are transient (do not ack). */
import type { UplinkBody } from '../../protocols/index.js';

export type RejectReason =
  /** Larger than the frame limit. */
  | 'too-large'
  /** Not a well-formed COSE_Sign1 (detail carries the wire error code). */
  | 'malformed'
  /** Not EdDSA / Ed25519. */
  | 'unsupported-alg'
  /** The kid names no enrolled device. */
  | 'unknown-device'
  /** The device was revoked. */
  | 'revoked-device'
  /** The kid and the device the transport claims (e.g. the MQTT topic) differ. */
  | 'device-mismatch'
  /** The signature does not hold under the device key. */
  | 'bad-signature'
  /** Signed, but the body is not a valid uplink body. */
  | 'bad-body'
  /** (boot, seq) older than the replay memory (its last boots, its seq ranges per boot) and not stored. */
  | 'replay';

/** `disk-low`: the data directory's free space is below ingest.minFreeBytes (gateway/store/free-space.ts). */
export type FailReason = 'store-failed' | 'disk-low' | 'verify-failed' | 'internal-error' | 'overloaded' | 'closed';

export type IngestOutcome =
  | {
      readonly status: 'stored';
      readonly device: string;
      readonly boot: number;
      readonly seq: number;
    }
  | { readonly status: 'duplicate'; readonly device: string; readonly boot: number; readonly seq: number }
  | { readonly status: 'rejected'; readonly reason: RejectReason; readonly detail: string; readonly device?: string }
  | { readonly status: 'failed'; readonly reason: FailReason; readonly detail: string };

export interface FrameMeta {
  /** mqtt, serial, ble, … */
  readonly transport: string;
  /** The device the transport says sent it (MQTT topic, serial port binding), if any. */
  readonly claimedDevice?: string;
  /** Connection or port, for logs. */
  readonly source?: string;
}

/** A frame that is durable in its block, as emitted on `frames$` (frames this gateway heard). */
export interface IngestedFrame {
  readonly device: string;
  readonly rxTime: number;
  readonly transport: string;
  readonly body: UplinkBody;
  readonly frame: Uint8Array;
}

/** One answered frame, as emitted on `outcomes$` (metrics, per-device rejection views). */
export interface OutcomeEvent {
  readonly outcome: IngestOutcome;
  readonly transport: string;
  /** The device the frame named or the transport claimed, if known. */
  readonly device?: string;
  /** Submit to answer (for stored frames: to durable), ms. */
  readonly latencyMs: number;
}

export function rejected(reason: RejectReason, detail: string, device?: string): IngestOutcome {
  return { status: 'rejected', reason, detail, ...(device !== undefined && { device }) };
}

export function failed(reason: FailReason, detail: string): IngestOutcome {
  return { status: 'failed', reason, detail };
}
