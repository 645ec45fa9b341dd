/**
 * Fuzz of the settings decoders (protocols/settings.ts): valid downlink messages and log bodies
 * under bit flips, truncation, inserts and splices (mutate.ts) plus random bytes. A Result
 * always; what is accepted re-encodes to the same message / body.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCbor, encodeCanonical } from '../../protocols/index.js';
import {
  decodeSettingsBody,
  decodeSettingsMessage,
  encodeSettingsMessage,
  type SettingsMessage,
  settingsBody,
} from '../../protocols/settings.js';
import { budget, fuzzInput, fuzzTimeout } from './mutate.js';

const author = new Uint8Array(32).fill(7);
const messages: SettingsMessage[] = [
  {
    type: 'settings',
    id: new Uint8Array(16).fill(1),
    target: 'boiler-01',
    issued: 1_764_000_000_000,
    expires: 1_764_000_300_000,
    entries: [
      { key: 'rate', value: 5, version: { lamport: 12, author } },
      { key: 'mode', value: 'eco', version: { lamport: 12, author } },
      { key: 'setpoint', value: 20.5, version: { lamport: 9, author } },
      { key: 'fan', value: false, version: { lamport: 3, author } },
    ],
  },
  {
    type: 'settings',
    id: new Uint8Array(8),
    target: 'd',
    issued: 0,
    expires: 0,
    entries: [{ key: 'a', value: -1, version: { lamport: 0, author } }],
  },
];
const bodies = [
  settingsBody({
    device: 'boiler-01',
    values: [
      ['mode', 'eco'],
      ['rate', 5],
      ['setpoint', 20.5],
    ],
    at: 1,
    by: 'cli',
  }),
  settingsBody({ device: 'd', values: [['a', -0.5]], at: 0 }),
].map((b) => encodeCanonical(b as never));

const T = fuzzTimeout(20_000);

describe('fuzz: settings decoders never throw and stay consistent', () => {
  it(
    'downlink settings messages: Result always; accepted ones re-encode to the same message',
    () => {
      fc.assert(
        fc.property(fuzzInput(messages.map(encodeSettingsMessage)), (b) => {
          const r = decodeSettingsMessage(b);
          expect(r.ok || typeof r.error.code === 'string').toBe(true);
          if (r.ok) expect(decodeSettingsMessage(encodeSettingsMessage(r.value))).toEqual(r);
        }),
        budget(3000),
      );
    },
    T,
  );

  it(
    'settings block bodies: Result always; accepted ones re-encode to the same bytes',
    () => {
      fc.assert(
        fc.property(fuzzInput(bodies), (b) => {
          const c = decodeCbor(b);
          if (!c.ok) return;
          const r = decodeSettingsBody(c.value);
          expect(r.ok || typeof r.error.code === 'string').toBe(true);
          if (r.ok) expect(encodeCanonical(settingsBody(r.value) as never)).toEqual(encodeCanonical(c.value));
        }),
        budget(3000),
      );
    },
    T,
  );
});
