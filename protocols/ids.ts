/** Device and gateway identifiers: short printable names carried as the COSE kid (UTF-8). */
import { decodeUtf8 } from './bytes.js';
import { ProtocolUsageError } from './result.js';

/** Letters, digits, `.`, `_`, `-`; 1..64 characters; safe as an MQTT topic level and a file name. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const isValidId = (id: string): boolean => ID_PATTERN.test(id);

export function deviceIdToKid(id: string): Uint8Array {
  if (!isValidId(id)) throw new ProtocolUsageError('id/invalid', `"${id}" is not a valid id (${ID_PATTERN.source})`);
  return new TextEncoder().encode(id);
}

/** The id a kid names, or undefined when the kid is not a valid id. */
export function kidToDeviceId(kid: Uint8Array): string | undefined {
  const s = decodeUtf8(kid);
  return s !== undefined && isValidId(s) ? s : undefined;
}
