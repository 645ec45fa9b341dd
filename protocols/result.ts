/**
 * Results for untrusted wire input: decoders never throw on bad bytes, they
 * return `{ ok: false, error }` with a stable machine-readable code.
 */
export interface WireError {
  /** Stable code, `area/what`, e.g. `cbor/truncated`, `cose/bad-tag`. */
  readonly code: string;
  readonly message: string;
}

export type Result<T, E extends WireError = WireError> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: E };

export const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });

export const fail = (code: string, message: string): { ok: false; error: WireError } => ({
  ok: false,
  error: { code, message },
});

/** Thrown for programmer misuse (bad arguments to an encoder), never for wire input. */
export class ProtocolUsageError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolUsageError';
  }
}
