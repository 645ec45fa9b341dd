/**
 * BLE as a byte pipe (DESIGN.md): the Nordic UART Service carries the same
 * `COBS(frame ‖ CRC-32C) 0x00` stream as a UART. The device notifies on TX and
 * the gateway writes to RX; each ATT payload holds at most MTU − 3 bytes.
 *
 * A device advertises its id as the complete local name, or (when the name is
 * taken for something else) in manufacturer-specific data: a 2-byte company id
 * (little-endian) followed by the id in ASCII.
 */
import { isValidId } from './ids.js';

/** UUIDs as noble writes them: lower-case hex, no dashes. */
export const NUS_SERVICE_UUID = '6e400001b5a3f393e0a9e50e24dcca9e';
/** Gateway → device (write / write without response). */
export const NUS_RX_UUID = '6e400002b5a3f393e0a9e50e24dcca9e';
/** Device → gateway (notify). */
export const NUS_TX_UUID = '6e400003b5a3f393e0a9e50e24dcca9e';
/** The default ATT MTU (Bluetooth 4.0); 247 is common after an MTU exchange. */
export const BLE_DEFAULT_MTU = 23;
/** Company id for manufacturer data when a device has none of its own (0xFFFF: reserved for testing). */
const BLE_TEST_COMPANY_ID = 0xffff;

/** Largest ATT payload for an MTU: MTU − 3 (opcode and handle). */
export const attPayload = (mtu: number): number => Math.max(20, Math.floor(mtu) - 3);

/** Splits bytes into ATT payloads of at most MTU − 3 bytes (views, not copies). */
export function chunkForMtu(bytes: Uint8Array, mtu: number): Uint8Array[] {
  const n = attPayload(mtu);
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += n) out.push(bytes.subarray(i, Math.min(bytes.length, i + n)));
  return out;
}

/** Manufacturer data carrying a device id. */
export function encodeManufacturerId(id: string, companyId = BLE_TEST_COMPANY_ID): Uint8Array {
  const ascii = new TextEncoder().encode(id);
  const out = new Uint8Array(2 + ascii.length);
  out[0] = companyId & 0xff;
  out[1] = companyId >>> 8;
  out.set(ascii, 2);
  return out;
}

/** The device id an advertisement names: a valid-id local name first, else manufacturer data. */
export function advertisedDeviceIds(adv: {
  localName?: string | undefined;
  manufacturerData?: Uint8Array | null | undefined;
}): string[] {
  const ids: string[] = [];
  if (adv.localName !== undefined && isValidId(adv.localName)) ids.push(adv.localName);
  const m = adv.manufacturerData;
  if (m && m.length > 2 && m.length <= 66) {
    let s = '';
    for (let i = 2; i < m.length; i++) s += String.fromCharCode(m[i]!);
    if (isValidId(s) && !ids.includes(s)) ids.push(s);
  }
  return ids;
}
