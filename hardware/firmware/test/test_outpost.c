/*
 * Unit tests for the C firmware companion, built with -fsanitize=address,undefined.
 * Byte-identity with protocols/ (TypeScript) is checked against vectors.h, which
 * test/vectors/generate-firmware-vectors.ts renders from test/vectors/firmware-vectors.json.
 * Each test names the clause it checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/outpost.h"
#include "../src/outpost_sodium.h"
#include "harness.h"
#include "vectors.h"

static double bits_to_double(uint64_t b) {
  double d;
  memcpy(&d, &b, 8);
  return d;
}

static uint8_t dev_sk[64], dev_pk[32], gw_sk[64], gw_pk[32];
static outpost_crypto dev_crypto, gw_crypto;

static outpost_device make_device(void) {
  outpost_device d;
  memset(&d, 0, sizeof d);
  d.crypto = &dev_crypto;
  d.kid = (const uint8_t *)VEC_DEVICE_ID;
  d.kid_len = strlen(VEC_DEVICE_ID);
  d.gateway_pk = gw_pk;
  d.gateway_kid = (const uint8_t *)VEC_GATEWAY_ID;
  d.gateway_kid_len = strlen(VEC_GATEWAY_ID);
  return d;
}

/* Deframes wire bytes into a frame inside d (with headroom). */
static uint8_t *deframe_one(outpost_deframer *d, const uint8_t *wire, size_t n, size_t *len) {
  uint8_t *f = NULL;
  size_t used = outpost_deframer_push(d, wire, n, &f, len);
  return used == n ? f : NULL;
}

TEST(crc_vectors) {
  for (size_t i = 0; i < VEC_COUNT(vec_crcs); i++) CHECK(outpost_crc32c(0, vec_crcs[i].data.p, vec_crcs[i].data.n) == vec_crcs[i].crc);
  /* chaining */
  const uint8_t *s = (const uint8_t *)"123456789";
  CHECK(outpost_crc32c(outpost_crc32c(0, s, 4), s + 4, 5) == 0xe3069283u);
}

TEST(cobs_vectors) {
  uint8_t out[1100];
  for (size_t i = 0; i < VEC_COUNT(vec_cobs_encode); i++) {
    const vec_cobs *v = &vec_cobs_encode[i];
    size_t n = outpost_cobs_encode(v->decoded.p, v->decoded.n, out, sizeof out);
    CHECK(same(out, n, v->wire.p, v->wire.n - 1));
    if (!same(out, n, v->wire.p, v->wire.n - 1)) fprintf(stderr, "  %s\n", v->name);
  }
  CHECK(outpost_cobs_encode((const uint8_t *)"\x11\x22", 2, out, 2) == 0); /* too small */
}

TEST(wire_roundtrip_and_noise) {
  static outpost_deframer d;
  outpost_deframer_init(&d);
  uint8_t frame[300], wire[400];
  for (size_t n = 0; n < sizeof frame; n++) frame[n] = (uint8_t)(n % 7 == 0 ? 0 : n);
  size_t sizes[] = {1, 2, 253, 254, 255, 300};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t w = outpost_wire_encode(frame, sizes[k], wire, sizeof wire);
    CHECK(w > 0 && wire[w - 1] == 0);
    for (size_t i = 0; i + 1 < w; i++) CHECK(wire[i] != 0);
    /* byte by byte */
    uint8_t *got = NULL;
    size_t glen = 0, seen = 0;
    for (size_t i = 0; i < w; i++) {
      uint8_t *f;
      size_t fl;
      outpost_deframer_push(&d, wire + i, 1, &f, &fl);
      if (f) {
        got = f;
        glen = fl;
        seen++;
      }
    }
    CHECK(seen == 1 && same(got, glen, frame, sizes[k]));
  }
  /* noise, then a delimiter, then a good frame: recovered; bad CRC counted */
  size_t w = outpost_wire_encode(frame, 40, wire, sizeof wire);
  uint8_t stream[200];
  size_t s = 0;
  const uint8_t noise[] = {0x05, 0x11, 0x00, 0x03, 0x01, 0x02};
  memcpy(stream + s, noise, sizeof noise), s += sizeof noise;
  stream[s++] = 0;
  memcpy(stream + s, wire, w), s += w;
  memcpy(stream + s, wire, w), s += w;
  stream[s + 10 - w] ^= 0x40; /* corrupt the second copy */
  outpost_deframer_init(&d);
  size_t off = 0, frames = 0;
  while (off < s) {
    uint8_t *f;
    size_t fl;
    off += outpost_deframer_push(&d, stream + off, s - off, &f, &fl);
    if (f) {
      frames++;
      CHECK(same(f, fl, frame, 40));
    }
  }
  CHECK(frames == 1);
  CHECK(d.stats.bad_cobs == 1);
  CHECK(d.stats.bad_crc + d.stats.bad_cobs + d.stats.runt >= 2);
  CHECK(d.stats.frames == 1);
}

TEST(deframer_oversize_and_runt) {
  static outpost_deframer d;
  outpost_deframer_init(&d);
  uint8_t f[OUTPOST_MAX_FRAME + 1];
  memset(f, 0x55, sizeof f);
  static uint8_t wire[OUTPOST_WIRE_MAX(OUTPOST_MAX_FRAME + 1)];
  size_t w = outpost_wire_encode(f, sizeof f, wire, sizeof wire);
  uint8_t *fr;
  size_t fl;
  CHECK(outpost_deframer_push(&d, wire, w, &fr, &fl) == w && fr == NULL);
  CHECK(d.stats.oversize == 1);
  w = outpost_wire_encode(f, OUTPOST_MAX_FRAME, wire, sizeof wire);
  CHECK(outpost_deframer_push(&d, wire, w, &fr, &fl) == w && fr != NULL && fl == OUTPOST_MAX_FRAME);
  const uint8_t runt[] = {0x03, 0x01, 0x02, 0x00, 0x00, 0x00};
  CHECK(outpost_deframer_push(&d, runt, sizeof runt, &fr, &fl) == sizeof runt && fr == NULL);
  CHECK(d.stats.runt == 1);
}

TEST(cbor_numbers_match_ts) {
  /* encodings the TypeScript encoder (cbor-x via protocols/cbor.ts) writes for these numbers */
  struct { double v; const char *hex; } cases[] = {
      {0, "00"}, {-0.0, "00"}, {23, "17"}, {24, "1818"}, {256, "190100"}, {65536, "1a00010000"},
      {4294967295.0, "1affffffff"}, {4294967296.0, "1b0000000100000000"}, {-1, "20"}, {-25, "3818"},
      {-2147483649.0, "3a80000000"}, {-4294967296.0, "3affffffff"}, {-4294967297.0, "3b0000000100000000"},
      {1.5, "fb3ff8000000000000"}, {0.1, "fb3fb999999999999a"}, {9007199254740992.0, "fb4340000000000000"},
      {1e300, "fb7e37e43c8800759c"}, {1700000000000.0, "1b0000018bcfe56800"}, {1e-7, "fb3e7ad7f29abcaf48"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t buf[16], want[16];
    outpost_cbor w;
    outpost_cbor_init(&w, buf, sizeof buf);
    outpost_cbor_number(&w, cases[i].v);
    size_t n = strlen(cases[i].hex) / 2;
    for (size_t j = 0; j < n; j++) {
      unsigned x;
      sscanf(cases[i].hex + 2 * j, "%2x", &x);
      want[j] = (uint8_t)x;
    }
    CHECK(w.err == 0 && same(buf, w.len, want, n));
    if (!same(buf, w.len, want, n)) hexdump(cases[i].hex, buf, w.len);
  }
  uint8_t b[4];
  outpost_cbor w;
  outpost_cbor_init(&w, b, sizeof b);
  outpost_cbor_number(&w, bits_to_double(0x7ff0000000000000ull)); /* inf */
  CHECK(w.err == OUTPOST_E_ARG);
  outpost_cbor_init(&w, b, 2);
  outpost_cbor_uint(&w, 65536);
  CHECK(w.err == OUTPOST_E_SPACE);
}

static void to_records(const vec_reading *v, outpost_senml_record *out) {
  for (size_t i = 0; i < v->nrecs; i++) {
    const vec_record *r = &v->recs[i];
    memset(&out[i], 0, sizeof out[i]);
    out[i].has = r->has;
    out[i].bn = r->bn, out[i].bu = r->bu, out[i].n = r->n, out[i].u = r->u, out[i].vs = r->vs;
    out[i].bt = bits_to_double(r->bt), out[i].v = bits_to_double(r->v), out[i].s = bits_to_double(r->s), out[i].t = bits_to_double(r->t);
    out[i].vb = r->vb;
  }
}

TEST(reading_frames_byte_identical) {
  for (size_t i = 0; i < VEC_COUNT(vec_readings); i++) {
    const vec_reading *v = &vec_readings[i];
    outpost_senml_record recs[8];
    to_records(v, recs);
    outpost_device dev = make_device();
    dev.boot = v->boot;
    dev.seq = v->seq;
    uint8_t out[512], wire[600];
    size_t n = 0;
    CHECK(outpost_frame_reading(&dev, v->time, recs, v->nrecs, out, sizeof out, &n) == OUTPOST_OK);
    CHECK(same(out, n, v->frame.p, v->frame.n));
    if (!same(out, n, v->frame.p, v->frame.n)) {
      fprintf(stderr, "  %s\n", v->name);
      hexdump("c ", out, n);
      hexdump("ts", v->frame.p, v->frame.n);
    }
    CHECK(dev.seq == v->seq + 1u); /* wraps at 2^32 */
    size_t w = outpost_wire_encode(out, n, wire, sizeof wire);
    CHECK(same(wire, w, v->wire.p, v->wire.n));
    /* too small an output buffer is an error, never an overrun */
    for (size_t cap = 0; cap < n; cap += 7) {
      outpost_device d2 = make_device();
      d2.boot = v->boot;
      d2.seq = v->seq;
      size_t n2;
      CHECK(outpost_frame_reading(&d2, v->time, recs, v->nrecs, out, cap, &n2) == OUTPOST_E_SPACE);
      CHECK(d2.seq == v->seq); /* a frame that was not made does not use up a seq */
    }
  }
}

TEST(command_ack_frames_byte_identical) {
  for (size_t i = 0; i < VEC_COUNT(vec_command_acks); i++) {
    const vec_command_ack *v = &vec_command_acks[i];
    outpost_device dev = make_device();
    dev.boot = v->boot;
    dev.seq = v->seq;
    uint8_t out[256], wire[300];
    size_t n = 0;
    CHECK(outpost_frame_command_ack(&dev, v->time, v->cid.p, v->cid.n, v->status, out, sizeof out, &n) == OUTPOST_OK);
    CHECK(same(out, n, v->frame.p, v->frame.n));
    size_t w = outpost_wire_encode(out, n, wire, sizeof wire);
    CHECK(same(wire, w, v->wire.p, v->wire.n));
  }
  outpost_device dev = make_device();
  uint8_t out[256];
  size_t n;
  CHECK(outpost_frame_command_ack(&dev, 0, (const uint8_t *)"abc", 3, 0, out, sizeof out, &n) == OUTPOST_E_ARG);
}

static void encode_command_body(const vec_command *v, outpost_cbor *w) {
  outpost_cbor_head(w, 5, v->has_fence ? 8 : 7);
  outpost_cbor_uint(w, 0), outpost_cbor_uint(w, 2);
  outpost_cbor_uint(w, 8), outpost_cbor_bytes(w, v->id.p, v->id.n);
  outpost_cbor_uint(w, 9), outpost_cbor_text(w, v->target, strlen(v->target));
  outpost_cbor_uint(w, 10), outpost_cbor_text(w, v->actuator, strlen(v->actuator));
  outpost_cbor_uint(w, 11);
  if (v->kind == OUTPOST_VALUE_INT) outpost_cbor_int(w, v->vint);
  else if (v->kind == OUTPOST_VALUE_FLOAT) outpost_cbor_number(w, bits_to_double(v->vfloat));
  else if (v->kind == OUTPOST_VALUE_BOOL) outpost_cbor_bool(w, v->vbool);
  else outpost_cbor_text(w, v->vtext, strlen(v->vtext));
  outpost_cbor_uint(w, 12), outpost_cbor_uint(w, v->expires);
  outpost_cbor_uint(w, 13), outpost_cbor_uint(w, v->issued);
  if (v->has_fence) outpost_cbor_uint(w, 14), outpost_cbor_uint(w, v->fence);
}

TEST(commands_verify_and_parse) {
  static outpost_deframer d;
  for (size_t i = 0; i < VEC_COUNT(vec_commands); i++) {
    const vec_command *v = &vec_commands[i];
    outpost_device dev = make_device();
    /* the C writer makes the same body bytes as protocols/ encodeBody */
    uint8_t body[200];
    outpost_cbor w;
    outpost_cbor_init(&w, body, sizeof body);
    encode_command_body(v, &w);
    CHECK(w.err == 0 && same(body, w.len, v->body.p, v->body.n));
    /* and, signed with the gateway key, the same frame */
    outpost_device gw;
    memset(&gw, 0, sizeof gw);
    gw.crypto = &gw_crypto;
    gw.kid = (const uint8_t *)VEC_GATEWAY_ID;
    gw.kid_len = strlen(VEC_GATEWAY_ID);
    uint8_t frame[300];
    size_t off = outpost_sign1_body_offset(gw.kid_len), fl;
    memcpy(frame + off, body, w.len);
    CHECK(outpost_sign1(&gw, frame, sizeof frame, off, w.len, &fl) == OUTPOST_OK && same(frame, fl, v->frame.p, v->frame.n));

    outpost_deframer_init(&d);
    size_t len;
    uint8_t *f = deframe_one(&d, v->wire.p, v->wire.n, &len);
    CHECK(f != NULL && same(f, len, v->frame.p, v->frame.n));
    if (!f) continue;
    outpost_sign1_view sv;
    CHECK(outpost_verify_sign1(&dev, f, len, &sv) == OUTPOST_OK);
    CHECK(same(sv.payload, sv.payload_len, v->body.p, v->body.n));
    outpost_command c;
    outpost_frame_ack a;
    CHECK(outpost_parse_downlink(sv.payload, sv.payload_len, &c, &a) == OUTPOST_BODY_COMMAND);
    CHECK(same(c.id, c.id_len, v->id.p, v->id.n));
    CHECK(same((const uint8_t *)c.target, c.target_len, (const uint8_t *)v->target, strlen(v->target)));
    CHECK(same((const uint8_t *)c.actuator, c.actuator_len, (const uint8_t *)v->actuator, strlen(v->actuator)));
    CHECK(c.value_kind == v->kind);
    if (v->kind == OUTPOST_VALUE_INT) CHECK(c.value_int == v->vint);
    if (v->kind == OUTPOST_VALUE_FLOAT) CHECK(memcmp(&c.value_float, &v->vfloat, 8) == 0);
    if (v->kind == OUTPOST_VALUE_BOOL) CHECK(c.value_bool == v->vbool);
    if (v->kind == OUTPOST_VALUE_TEXT) CHECK(same((const uint8_t *)c.value_text, c.value_text_len, (const uint8_t *)v->vtext, strlen(v->vtext)));
    CHECK(c.expires_ms == v->expires && c.issued_ms == v->issued && c.has_fence == v->has_fence && c.fence == v->fence);
    uint8_t want = strcmp(v->target, VEC_DEVICE_ID) == 0 ? OUTPOST_ACK_OK : OUTPOST_ACK_REJECTED;
    CHECK(outpost_command_check(&dev, &c, v->issued + 1) == want);
    CHECK(outpost_command_check(&dev, &c, v->expires + 1) == (want == OUTPOST_ACK_OK ? OUTPOST_ACK_EXPIRED : want));
  }
}

TEST(signature_and_kid_checks) {
  const vec_command *v = &vec_commands[0];
  uint8_t buf[OUTPOST_VERIFY_HEADROOM + 300];
  uint8_t *f = buf + OUTPOST_VERIFY_HEADROOM;
  outpost_sign1_view sv;
  outpost_device dev = make_device();
  /* every single-bit flip is refused (parse error or bad signature), never accepted */
  for (size_t i = 0; i < v->frame.n * 8; i++) {
    memcpy(f, v->frame.p, v->frame.n);
    f[i / 8] ^= (uint8_t)(1u << (i % 8));
    int rc = outpost_verify_sign1(&dev, f, v->frame.n, &sv);
    CHECK(rc != OUTPOST_OK);
  }
  /* another gateway's key */
  memcpy(f, v->frame.p, v->frame.n);
  dev.gateway_pk = dev_pk;
  CHECK(outpost_verify_sign1(&dev, f, v->frame.n, &sv) == OUTPOST_E_SIGNATURE);
  /* expected gateway kid */
  dev = make_device();
  dev.gateway_kid = (const uint8_t *)"gw-other";
  dev.gateway_kid_len = 8;
  memcpy(f, v->frame.p, v->frame.n);
  CHECK(outpost_verify_sign1(&dev, f, v->frame.n, &sv) == OUTPOST_E_KID);
  /* a device frame is not a gateway frame */
  dev = make_device();
  dev.gateway_kid = NULL;
  memcpy(f, vec_readings[0].frame.p, vec_readings[0].frame.n);
  CHECK(outpost_verify_sign1(&dev, f, vec_readings[0].frame.n, &sv) == OUTPOST_E_SIGNATURE);
  /* but verifies under the device key */
  dev.gateway_pk = dev_pk;
  memcpy(f, vec_readings[0].frame.p, vec_readings[0].frame.n);
  CHECK(outpost_verify_sign1(&dev, f, vec_readings[0].frame.n, &sv) == OUTPOST_OK);
  /* every truncation is refused */
  dev = make_device();
  for (size_t n = 0; n < v->frame.n; n++) {
    memcpy(f, v->frame.p, n);
    CHECK(outpost_verify_sign1(&dev, f, n, &sv) != OUTPOST_OK);
  }
}

TEST(frame_acks_and_ring) {
  static outpost_deframer d;
  static uint8_t data[4 * 200];
  outpost_slot slots[4];
  outpost_ring r;
  outpost_ring_init(&r, data, slots, 4, 200);
  /* keep two readings' wire frames */
  for (size_t i = 0; i < 2; i++) {
    const vec_reading *v = &vec_readings[i];
    CHECK(outpost_ring_push(&r, v->boot, v->seq, v->wire.p, v->wire.n, 1000) == OUTPOST_OK);
  }
  CHECK(r.count == 2);
  outpost_device dev = make_device();
  for (size_t i = 0; i < VEC_COUNT(vec_frame_acks); i++) {
    const vec_frame_ack *v = &vec_frame_acks[i];
    outpost_deframer_init(&d);
    size_t len;
    uint8_t *f = deframe_one(&d, v->wire.p, v->wire.n, &len);
    CHECK(f != NULL);
    if (!f) continue;
    outpost_sign1_view sv;
    CHECK(outpost_verify_sign1(&dev, f, len, &sv) == OUTPOST_OK);
    outpost_command c;
    outpost_frame_ack a;
    CHECK(outpost_parse_downlink(sv.payload, sv.payload_len, &c, &a) == OUTPOST_BODY_FRAME_ACK);
    CHECK(a.boot == v->boot && a.seq == v->seq && a.status == v->status);
    int freed = outpost_ring_ack(&r, &a);
    /* 'stored' acks reading 0; 'failed' names reading 1 but is not final; the third names nothing kept */
    CHECK(freed == (i == 0 ? 1 : 0));
  }
  CHECK(r.count == 1);
  /* resend: only frames older than after_ms, oldest first */
  CHECK(outpost_ring_resend(&r, 1100, 500, NULL, NULL) == 0); /* not due yet: write is not called */
}

/* the in-place Sig_structure stays within OUTPOST_VERIFY_HEADROOM for the smallest frame;
 * alg -19 verifies; other header layouts are refused */
TEST(sign1_layouts) {
  outpost_device dev = make_device();
  dev.gateway_kid = NULL;
  for (int alg = 0; alg < 2; alg++) {
    /* 18([h'a101xx', {4: h'67'}, h'', sig]) signed over ["Signature1", h'a101xx', h'', h''] */
    uint8_t tbs[19] = {0x84, 0x6a, 'S', 'i', 'g', 'n', 'a', 't', 'u', 'r', 'e', '1', 0x43, 0xa1, 0x01, alg ? 0x32 : 0x27, 0x40, 0x40};
    uint8_t frame[] = {0xd2, 0x84, 0x43, 0xa1, 0x01, alg ? 0x32 : 0x27, 0xa1, 0x04, 0x41, 'g', 0x40, 0x58, 0x40};
    uint8_t *buf = malloc(OUTPOST_VERIFY_HEADROOM + sizeof frame + 64); /* exact: ASan catches any write before it */
    uint8_t *f = buf + OUTPOST_VERIFY_HEADROOM;
    memcpy(f, frame, sizeof frame);
    CHECK(gw_crypto.sign(gw_crypto.ctx, f + sizeof frame, tbs, 18) == 0);
    outpost_sign1_view v;
    CHECK(outpost_verify_sign1(&dev, f, sizeof frame + 64, &v) == OUTPOST_OK);
    CHECK(v.payload_len == 0);
    free(buf);
  }
  const char *bad[] = {
      "8443a10127a104416740" /* untagged */, "d28444a1012720a104416740" /* protected with more */,
      "d28443a10126a104416740" /* alg -7 */, "d28443a10127a204416701f640" /* unprotected with more */,
      "d28440a104416740" /* empty protected */, "d28443a10127a1044067" /* empty kid */};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint8_t b[200];
    size_t n = strlen(bad[i]) / 2;
    for (size_t j = 0; j < n; j++) {
      unsigned x;
      sscanf(bad[i] + 2 * j, "%2x", &x);
      b[j] = (uint8_t)x;
    }
    b[n++] = 0x58, b[n++] = 0x40;
    memset(b + n, 0, 64), n += 64;
    outpost_sign1_view v;
    CHECK(outpost_parse_sign1(b, n, &v) == OUTPOST_E_COSE);
  }
}

static size_t resend_calls;
static uint32_t resend_first_seq;
static void count_write(void *ctx, const uint8_t *wire, size_t len) {
  (void)ctx, (void)wire, (void)len;
  if (resend_calls++ == 0) resend_first_seq = (uint32_t)len;
}

TEST(ring_overflow_out_of_order_acks) {
  static uint8_t data[3 * 16];
  outpost_slot slots[3];
  outpost_ring r;
  outpost_ring_init(&r, data, slots, 3, 16);
  uint8_t wire[17] = {0};
  for (uint32_t s = 0; s < 5; s++) CHECK(outpost_ring_push(&r, 1, s, wire, 1 + s, 100 * s) == OUTPOST_OK);
  CHECK(r.count == 3 && r.dropped == 2); /* seq 0, 1 dropped: oldest first */
  CHECK(outpost_ring_push(&r, 1, 9, wire, 17, 0) == OUTPOST_E_SPACE);
  outpost_frame_ack a = {1, 3, OUTPOST_ACK_OK};
  CHECK(outpost_ring_ack(&r, &a) == 1); /* middle one */
  CHECK(r.count == 3);
  CHECK(outpost_ring_ack(&r, &a) == 0); /* twice: stale */
  a.seq = 0;
  CHECK(outpost_ring_ack(&r, &a) == 0); /* dropped */
  resend_calls = 0;
  CHECK(outpost_ring_resend(&r, 1000, 500, count_write, NULL) == 2);
  CHECK(resend_first_seq == 3); /* seq 2 (len 3) first */
  CHECK(outpost_ring_resend(&r, 1200, 500, count_write, NULL) == 0);
  a.seq = 2;
  CHECK(outpost_ring_ack(&r, &a) == 1);
  CHECK(r.count == 1); /* head advanced past the freed middle slot */
  CHECK(outpost_ring_push(&r, 2, 0, wire, 4, 0) == OUTPOST_OK);
  CHECK(r.count == 2 && r.dropped == 2);
}

/* a body parser fed every prefix, and mutated bodies, answers with an error code, never a crash (ASan checks reads) */
TEST(downlink_parser_bounds) {
  outpost_command c;
  outpost_frame_ack a;
  for (size_t i = 0; i < VEC_COUNT(vec_commands); i++) {
    const vec_command *v = &vec_commands[i];
    for (size_t n = 0; n < v->body.n; n++) {
      uint8_t *copy = malloc(n ? n : 1); /* exact-size heap copy so ASan sees any over-read */
      memcpy(copy, v->body.p, n);
      CHECK(outpost_parse_downlink(copy, n, &c, &a) < 0);
      free(copy);
    }
  }
  struct { const char *name; const char *hex; int want; } cases[] = {
      {"duplicate key", "a40004010001010f00", OUTPOST_E_CBOR},
      {"frame-ack missing status", "a3000401000200", OUTPOST_E_BODY},
      {"frame-ack seq too big", "a40004010002" "1b0000000100000000" "0f00", OUTPOST_E_BODY},
      {"unknown type", "a10009", OUTPOST_E_BODY},
      {"not a map", "8100", OUTPOST_E_CBOR},
      {"indefinite map", "bf0004ff", OUTPOST_E_CBOR},
      {"trailing byte", "a4000401000200" "0f0000", OUTPOST_E_CBOR},
      {"unknown keys skipped", "a6000401000200" "0f00" "1863a1018201820203" "6178f6", OUTPOST_BODY_FRAME_ACK},
      {"deep nesting", "a500040100020010" "818181818181818100" "0f00", OUTPOST_E_CBOR},
      {"command id too short", "a7000208430102030961610a617a0b000c000d00", OUTPOST_E_BODY},
      {"command without expiry", "a600020844010203040961610a617a0b000d00", OUTPOST_E_BODY},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t b[64];
    size_t n = strlen(cases[i].hex) / 2;
    for (size_t j = 0; j < n; j++) {
      unsigned x;
      sscanf(cases[i].hex + 2 * j, "%2x", &x);
      b[j] = (uint8_t)x;
    }
    int rc = outpost_parse_downlink(b, n, &c, &a);
    CHECK(rc == cases[i].want);
    if (rc != cases[i].want) fprintf(stderr, "  %s: got %d\n", cases[i].name, rc);
  }
}

/* command values: safe integers, float64, bool, text; half/single floats (the gateway never
 * writes them), non-finite floats and integers beyond 2^53 - 1 are refused */
TEST(command_values) {
  outpost_command c;
  outpost_frame_ack a;
  struct { const char *value_hex; int ok; uint8_t kind; double f; } cases[] = {
      {"f93e00", 0, 0, 0}, {"fa3f400000", 0, 0, 0}, {"fb3ff8000000000000", 1, OUTPOST_VALUE_FLOAT, 1.5},
      {"fb8000000000000000", 1, OUTPOST_VALUE_FLOAT, -0.0}, {"f5", 1, OUTPOST_VALUE_BOOL, 0}, {"60", 1, OUTPOST_VALUE_TEXT, 0},
      {"f97c00", 0, 0, 0}, {"fa7fc00000", 0, 0, 0}, {"fb7ff0000000000000", 0, 0, 0},
      {"1b0020000000000000", 0, 0, 0}, {"3b001ffffffffffffe", 1, OUTPOST_VALUE_INT, 0}, {"3b001fffffffffffff", 0, 0, 0}, {"f6", 0, 0, 0},
      {"c11a00000000", 0, 0, 0}, {"40", 0, 0, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char hex[200];
    snprintf(hex, sizeof hex, "a7000208440102030409626964" "0a6161" "0b%s" "0c00" "0d00", cases[i].value_hex);
    uint8_t b[100];
    size_t n = strlen(hex) / 2;
    for (size_t j = 0; j < n; j++) {
      unsigned x;
      sscanf(hex + 2 * j, "%2x", &x);
      b[j] = (uint8_t)x;
    }
    int rc = outpost_parse_downlink(b, n, &c, &a);
    CHECK((rc == OUTPOST_BODY_COMMAND) == cases[i].ok);
    if ((rc == OUTPOST_BODY_COMMAND) != cases[i].ok) fprintf(stderr, "  value %s: rc %d\n", cases[i].value_hex, rc);
    if (cases[i].ok && rc == OUTPOST_BODY_COMMAND) {
      CHECK(c.value_kind == cases[i].kind);
      if (cases[i].kind == OUTPOST_VALUE_FLOAT) CHECK(c.value_float == cases[i].f);
      if (cases[i].kind == OUTPOST_VALUE_INT) CHECK(c.value_int == -9007199254740991ll);
    }
  }
}

TEST(fence_and_target) {
  outpost_device dev = make_device();
  outpost_command c;
  memset(&c, 0, sizeof c);
  c.target = VEC_DEVICE_ID;
  c.target_len = strlen(VEC_DEVICE_ID);
  c.expires_ms = 100;
  c.has_fence = true;
  c.fence = 5;
  CHECK(outpost_command_check(&dev, &c, 0) == OUTPOST_ACK_OK); /* clock unknown: not checked */
  CHECK(dev.fence == 5);
  c.fence = 4;
  CHECK(outpost_command_check(&dev, &c, 50) == OUTPOST_ACK_REPLAYED);
  c.fence = 5;
  CHECK(outpost_command_check(&dev, &c, 50) == OUTPOST_ACK_OK);
  c.target_len = 3;
  CHECK(outpost_command_check(&dev, &c, 50) == OUTPOST_ACK_REJECTED);
}

int main(void) {
  if (outpost_sodium_init(&dev_crypto, dev_sk, dev_pk, PTR(VEC_DEVICE_SEED)) != 0 ||
      outpost_sodium_init(&gw_crypto, gw_sk, gw_pk, PTR(VEC_GATEWAY_SEED)) != 0) {
    fprintf(stderr, "libsodium init failed\n");
    return 2;
  }
  cur = "keys [firmware-vectors.json public keys]";
  CHECK(memcmp(dev_pk, PTR(VEC_DEVICE_PK), 32) == 0 && memcmp(gw_pk, PTR(VEC_GATEWAY_PK), 32) == 0);
  RUN(crc_vectors, "RFC 3720 B.4, crc32c.json");
  RUN(cobs_vectors, "Cheshire-Baker COBS, cobs.json");
  RUN(wire_roundtrip_and_noise, "protocols/README serial framing: resync after 0x00");
  RUN(deframer_oversize_and_runt, "protocols/README serial framing: bounded deframer");
  RUN(cbor_numbers_match_ts, "RFC 8949 §4.2.1 shortest heads, as protocols/cbor.ts");
  RUN(reading_frames_byte_identical, "RFC 9052 §4.2/§4.4 + RFC 8428 §6, firmware-vectors.json readings");
  RUN(command_ack_frames_byte_identical, "frame.ts command-ack, firmware-vectors.json");
  RUN(commands_verify_and_parse, "RFC 9052 §4.4 verify, frame.ts command, firmware-vectors.json");
  RUN(signature_and_kid_checks, "RFC 8032 §5.1.7 verify, RFC 9052 §4.4");
  RUN(sign1_layouts, "RFC 9052 §4.2/§4.4, RFC 9053 §2.2, RFC 9864 alg -19; in-place headroom");
  RUN(frame_acks_and_ring, "frame.ts frame-ack, firmware-vectors.json");
  RUN(ring_overflow_out_of_order_acks, "unacked ring buffer: overflow, out-of-order acks");
  RUN(downlink_parser_bounds, "RFC 8949 §5.3 well-formedness, bounds checks");
  RUN(command_values, "RFC 8949 §3.3 floats, frame.ts command value");
  RUN(fence_and_target, "frame.ts command fence/expiry");
  printf("%d tests, %d checks, %d failed\n", tests, checks, failures);
  return failures ? 1 : 0;
}
