/**
 * Firmware messages on a byte stream (protocols/firmware-transfer.ts): offers and chunks are
 * told from every other downlink frame, reports from every other uplink frame, by their first
 * bytes; a chunk's CBOR stays within CHUNK_OVERHEAD of its data; `bleChunkBytes` is the largest
 * chunk whose framed message fits 16 ATT payloads.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createSigner } from '../../firmware-sim/crypto.js';
import {
  CHUNK_OVERHEAD,
  bleChunkBytes,
  encodeChunk,
  encodeOffer,
  encodeReport,
  isFirmwareDown,
  isFirmwareReport,
  MAX_CHUNK_BYTES,
  UPDATE_STATES,
} from '../../protocols/firmware-transfer.js';
import { encodeSettingsMessage } from '../../protocols/settings.js';
import { attPayload, deviceIdToKid, encodeSign1, serialFrameMaxWireLength, signBody } from '../../protocols/index.js';

const sign = createSigner(randomBytes(32));

describe('firmware messages on a byte stream', () => {
  it('property: a chunk is a firmware down message within CHUNK_OVERHEAD of its data', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 5000 }),
        fc.nat(0xffffffff),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (data, offset, digest) => {
          const m = encodeChunk({ digest, offset, data });
          expect(isFirmwareDown(m)).toBe(true);
          expect(isFirmwareReport(m)).toBe(false);
          expect(m.length).toBeLessThanOrEqual(data.length + CHUNK_OVERHEAD);
        },
      ),
      { numRuns: 200 },
    );
    const offer = encodeOffer({ manifest: randomBytes(300), rollout: 'r-1' });
    expect(isFirmwareDown(offer)).toBe(true);
  });

  it('property: a signed report is a firmware report, never a down message', () => {
    fc.assert(
      fc.property(
        fc.record({
          boot: fc.nat(),
          n: fc.nat(),
          time: fc.nat(),
          state: fc.constantFrom(...UPDATE_STATES),
          offset: fc.nat(),
          window: fc.integer({ min: 0, max: 64 }),
          chunkSize: fc.integer({ min: 0, max: MAX_CHUNK_BYTES }),
        }),
        (r) => {
          const payload = encodeReport({ ...r, digest: randomBytes(32), running: '1.2.3' });
          const frame = encodeSign1({ kid: deviceIdToKid('dev-1'), payload }, sign);
          expect(isFirmwareReport(frame)).toBe(true);
          expect(isFirmwareDown(frame)).toBe(false);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('frame-acks, commands, settings and readings are neither', () => {
    const frames = [
      signBody({ type: 'frame-ack', boot: 1, seq: 2, status: 0 }, 'gw-1', sign),
      signBody(
        { type: 'command', id: randomBytes(16), target: 'd', actuator: 'a', value: 1, expires: 9, issued: 1 },
        'gw-1',
        sign,
      ),
      signBody({ type: 'reading', boot: 1, seq: 1, records: [{ n: 't', v: 1 }] }, 'dev-1', sign),
      encodeSign1(
        {
          kid: deviceIdToKid('gw-1'),
          payload: encodeSettingsMessage({
            type: 'settings',
            id: randomBytes(16),
            target: 'd',
            issued: 1,
            expires: 2,
            entries: [{ key: 'interval', value: 5, version: { lamport: 1, author: randomBytes(32) } }],
          }),
        },
        sign,
      ),
    ];
    for (const f of frames) {
      expect(isFirmwareDown(f)).toBe(false);
      expect(isFirmwareReport(f)).toBe(false);
    }
  });

  it('property: arbitrary bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        isFirmwareDown(b);
        isFirmwareReport(b);
      }),
    );
  });

  it('the BLE chunk is the largest whose framed message fits 16 ATT payloads, at every MTU', () => {
    for (let mtu = 23; mtu <= 517; mtu++) {
      const n = bleChunkBytes(mtu);
      const budget = 16 * attPayload(mtu);
      expect(serialFrameMaxWireLength(n + CHUNK_OVERHEAD)).toBeLessThanOrEqual(budget);
      if (n < MAX_CHUNK_BYTES) expect(serialFrameMaxWireLength(n + 1 + CHUNK_OVERHEAD)).toBeGreaterThan(budget);
    }
    expect([bleChunkBytes(23), bleChunkBytes(247)]).toEqual([255, 3825]);
  });
});
