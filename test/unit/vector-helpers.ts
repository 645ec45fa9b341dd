/** Small helpers shared by the protocols test suites: loading vectors and hex. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Result } from '../../protocols/result.js';

const vectorsDir = fileURLToPath(new URL('../vectors/', import.meta.url));

export const readVector = (name: string): string => readFileSync(vectorsDir + name, 'utf8');
export const loadJson = <T>(name: string): T => JSON.parse(readVector(name)) as T;

export function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean))
    throw new Error(`bad hex in a vector: ${s.slice(0, 40)}`);
  return new Uint8Array(Buffer.from(clean, 'hex'));
}

export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** The error code of a failed Result; fails the test if the Result was ok. */
export function errorCode(r: Result<unknown>): string {
  if (r.ok) throw new Error(`expected an error, got ok: ${String(r.value)}`);
  return r.error.code;
}

/** The value of an ok Result; fails the test with the error otherwise. */
export function okValue<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`expected ok, got ${r.error.code}: ${r.error.message}`);
  return r.value;
}

/** Error codes are `area/what`: stable, machine-readable, never empty. */
const ERROR_CODE = /^[a-z0-9]+\/[a-z0-9-]+$/;

/** Asserts a decoder's result shape for arbitrary input: ok, or a typed error in the given area. */
export function isTypedResult(r: Result<unknown>, areas: readonly string[]): boolean {
  if (r.ok) return true;
  return (
    ERROR_CODE.test(r.error.code) && areas.includes(r.error.code.split('/')[0]!) && typeof r.error.message === 'string'
  );
}
