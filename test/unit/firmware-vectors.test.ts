/**
 * Shared vectors for the C firmware companion ("frames and commands
 * produced by the TypeScript protocols/ and by the C library must be
 * byte-identical"). The C side checks them in hardware/firmware/test/test_outpost.c
 * (run by test/integration/firmware-c.test.ts); this side re-derives them from
 * protocols/ and checks that the committed C header is the rendering of the JSON.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { verifyEd25519 } from '../../gateway/crypto/ed25519.js';
import { decodeBody, decodeSign1, Deframer, fromHex, resolvePack, sigStructure, toHex } from '../../protocols/index.js';
import { decodeDown, decodeReport } from '../../protocols/firmware-transfer.js';
import {
  buildVectors,
  type FirmwareVectors,
  HEADER_PATH,
  JSON_PATH,
  renderHeader,
  renderJson,
  renderUpdateHeader,
  UPDATE_HEADER_PATH,
} from '../vectors/generate-firmware-vectors.js';

const committed = JSON.parse(readFileSync(JSON_PATH, 'utf8')) as FirmwareVectors;
const hex = (h: string): Uint8Array => fromHex(h)!;

describe('firmware vectors', () => {
  it('re-deriving from protocols/ gives the committed JSON (clause: shared vectors, byte-identical for the same inputs and keys)', () => {
    expect(renderJson(buildVectors())).toBe(readFileSync(JSON_PATH, 'utf8'));
  });

  it('the committed C header is the rendering of the committed JSON (clause: shared vectors kept as data with a generator)', () => {
    expect(renderHeader(committed)).toBe(readFileSync(HEADER_PATH, 'utf8'));
    expect(renderUpdateHeader(committed.update)).toBe(readFileSync(UPDATE_HEADER_PATH, 'utf8'));
  });

  it('update vectors: the chunks reassemble the image whose SHA-256 the offer signs; the bad-CRC chunk is refused; reports decode (firmware-transfer.ts)', () => {
    const u = committed.update;
    const offer = decodeDown(hex(u.offer));
    expect(offer.ok && offer.value.type).toBe('offer');
    const image = new Uint8Array(u.image.length / 2);
    for (const c of u.chunks) {
      const m = decodeDown(hex(c));
      if (!m.ok || m.value.type !== 'chunk') throw new Error('not a chunk');
      expect(toHex(m.value.digest)).toBe(u.digest);
      image.set(m.value.data, m.value.offset);
    }
    expect(toHex(image)).toBe(u.image);
    expect(toHex(createHash('sha256').update(image).digest())).toBe(u.digest);
    const bad = decodeDown(hex(u.badCrcChunk));
    expect(!bad.ok && bad.error.code).toBe('firmware/bad-crc');
    expect(u.manifests.map((m) => m.reason)).toContain('ok');
    for (const r of u.reports) {
      const c = decodeSign1(hex(r.frame));
      if (!c.ok) throw new Error(c.error.message);
      const d = decodeReport(c.value.payload);
      expect(d.ok && [d.value.state, d.value.n, d.value.reason]).toEqual([r.state, r.n, r.reason]);
    }
  });

  it('every frame is a tagged COSE_Sign1, EdDSA, kid = signer id, signature valid (RFC 9052 §4.2, §4.4; protocols/README)', () => {
    const all = [
      ...committed.readings.map((v) => ({ v, signer: committed.device })),
      ...committed.commandAcks.map((v) => ({ v, signer: committed.device })),
      ...committed.commands.map((v) => ({ v, signer: committed.gateway })),
      ...committed.frameAcks.map((v) => ({ v, signer: committed.gateway })),
    ];
    expect(all.length).toBe(14);
    for (const { v, signer } of all) {
      const frame = hex(v.frame);
      expect(toHex(frame.subarray(0, 6))).toBe('d28443a10127'); // 18([h'a10127', ...
      const c = decodeSign1(frame);
      if (!c.ok) throw new Error(c.error.message);
      expect(c.value.alg).toBe(-8);
      expect(new TextDecoder().decode(c.value.kid)).toBe(signer.id);
      expect(toHex(c.value.payload)).toBe(v.body);
      expect(
        verifyEd25519(hex(signer.publicKey), sigStructure(c.value.protectedBytes, c.value.payload), c.value.signature),
      ).toBe(true);
    }
  });

  it('wire bytes deframe to the frame (protocols/README serial framing: COBS(frame ‖ CRC-32C LE) 0x00)', () => {
    for (const v of [...committed.readings, ...committed.commandAcks, ...committed.commands, ...committed.frameAcks]) {
      const d = new Deframer();
      const frames = d.push(hex(v.wire));
      expect(frames.map(toHex)).toEqual([v.frame]);
    }
  });

  it('bodies decode to the inputs; readings resolve (frame.ts; RFC 8428 §4.6)', () => {
    for (const r of committed.readings) {
      const b = decodeBody(hex(r.body));
      if (!b.ok || b.value.type !== 'reading') throw new Error('not a reading');
      expect([b.value.boot, b.value.seq, b.value.time]).toEqual([r.boot, r.seq, r.time]);
      expect(b.value.records).toEqual(r.records);
      expect(resolvePack(b.value.records).ok).toBe(true);
    }
    for (const c of committed.commands) {
      const b = decodeBody(hex(c.body));
      if (!b.ok || b.value.type !== 'command') throw new Error('not a command');
      expect({ ...b.value, id: toHex(b.value.id) }).toEqual({
        type: 'command',
        id: c.id,
        target: c.target,
        actuator: c.actuator,
        value: c.value,
        expires: c.expires,
        issued: c.issued,
        ...(c.fence !== undefined && { fence: c.fence }),
      });
    }
  });
});
