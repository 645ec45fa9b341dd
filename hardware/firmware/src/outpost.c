/*
 * Outpost firmware companion: codec. See outpost.h for the wire formats.
 * No malloc, no static state, no floating-point arithmetic (numbers are
 * converted bit by bit, so a Cortex-M4 build pulls in no soft-float library).
 */
#include "outpost.h"

#include <string.h>

/* ---- CRC-32C (RFC 3720 B.4), reflected polynomial 0x82F63B78 ------------------------
 * Bit by bit, without a table: 8 shifts a byte (a 150-byte frame is about 1200
 * iterations, microseconds on a Cortex-M4) for 64 bytes less flash than a nibble table. */
uint32_t outpost_crc32c(uint32_t crc, const uint8_t *data, size_t len) {
  crc = ~crc;
  while (len--) {
    crc ^= *data++;
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

/* ---- COBS (Cheshire & Baker), same block rules as protocols/cobs.ts ------------ */
/* Encodes a ‖ b (b may be empty); returns the length or 0 if cap is too small. */
static size_t cobs2(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint8_t *out, size_t cap) {
  size_t total = na + nb;
  if (cap < total + total / 254 + 1) return 0;
  size_t code_at = 0, o = 1;
  uint8_t code = 1;
  for (size_t i = 0; i < total; i++) {
    uint8_t c = i < na ? a[i] : b[i - na];
    if (c == 0) {
      out[code_at] = code;
      code_at = o++;
      code = 1;
    } else {
      out[o++] = c;
      if (++code == 0xff) {
        out[code_at] = code;
        code = 1;
        if (i + 1 == total) return o;
        code_at = o++;
      }
    }
  }
  out[code_at] = code;
  return o;
}

size_t outpost_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap) { return cobs2(in, n, NULL, 0, out, cap); }

size_t outpost_wire_encode(const uint8_t *frame, size_t n, uint8_t *out, size_t cap) {
  uint32_t crc = outpost_crc32c(0, frame, n);
  uint8_t le[4] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16), (uint8_t)(crc >> 24)};
  if (cap == 0) return 0;
  size_t k = cobs2(frame, n, le, 4, out, cap - 1);
  if (k == 0) return 0;
  out[k] = 0;
  return k + 1;
}

/* ---- streaming deframer ------------------------------------------------------------ */
void outpost_deframer_init(outpost_deframer *d) { memset(d, 0, sizeof *d); }

size_t outpost_deframer_push(outpost_deframer *d, const uint8_t *in, size_t n, uint8_t **frame, size_t *len) {
  uint8_t *f = d->buf + OUTPOST_VERIFY_HEADROOM;
  *frame = NULL;
  *len = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t b = in[i];
    size_t got = d->len;
    if (b == 0) { /* delimiter: the frame so far ends here */
      uint32_t *bad = NULL;
      if (d->skip || !d->started) {
        /* dropped already, or an empty frame (ignored) */
      } else if (d->left) {
        bad = &d->stats.bad_cobs; /* a block cut short */
      } else if (got < 4) {
        bad = &d->stats.runt;
      } else {
        uint32_t want = (uint32_t)f[got - 4] | (uint32_t)f[got - 3] << 8 | (uint32_t)f[got - 2] << 16 | (uint32_t)f[got - 1] << 24;
        bad = &d->stats.bad_crc;
        if (outpost_crc32c(0, f, got - 4) == want) bad = NULL, *frame = f, *len = got - 4, d->stats.frames++;
      }
      if (bad) (*bad)++, d->stats.discarded_bytes += (uint32_t)got;
      d->len = d->left = d->zero = d->started = d->skip = 0;
      if (*frame) return i + 1;
      continue;
    }
    if (d->skip) {
      d->stats.discarded_bytes++;
      continue;
    }
    if (d->left) { /* a data byte */
      d->left--;
    } else { /* a code byte: the block before it ended with a 0x00, unless it was a full 0xFF block */
      uint8_t pending = d->zero;
      d->left = (uint8_t)(b - 1);
      d->zero = b != 0xff;
      d->started = 1;
      if (!pending) continue;
      b = 0;
    }
    if (got >= OUTPOST_MAX_FRAME + 4) { /* too long: drop until the next delimiter */
      d->stats.oversize++;
      d->stats.discarded_bytes += (uint32_t)got + 1;
      d->skip = 1;
      continue;
    }
    f[d->len++] = b;
  }
  return n;
}

/* ---- CBOR writer ------------------------------------------------------------------------- */
void outpost_cbor_init(outpost_cbor *w, uint8_t *buf, size_t cap) {
  w->buf = buf;
  w->cap = cap;
  w->len = 0;
  w->err = 0;
}

static void put(outpost_cbor *w, const uint8_t *b, size_t n) {
  if (w->err) return;
  if (n > w->cap - w->len) {
    w->err = OUTPOST_E_SPACE;
    return;
  }
  if (n) memcpy(w->buf + w->len, b, n);
  w->len += n;
}

static size_t head_len(uint64_t arg) {
  return arg < 24 ? 1 : arg <= 0xff ? 2 : arg <= 0xffff ? 3 : arg <= 0xffffffffu ? 5 : 9;
}

static size_t write_head(uint8_t *p, uint8_t major, uint64_t arg) {
  size_t n = head_len(arg);
  uint8_t ai = n == 1 ? (uint8_t)arg : n == 2 ? 24 : n == 3 ? 25 : n == 5 ? 26 : 27;
  p[0] = (uint8_t)(major << 5 | ai);
  for (size_t i = 1; i < n; i++) p[i] = (uint8_t)(arg >> (8 * (n - 1 - i)));
  return n;
}

void outpost_cbor_head(outpost_cbor *w, uint8_t major, uint64_t arg) {
  uint8_t h[9];
  put(w, h, write_head(h, major, arg));
}
void outpost_cbor_uint(outpost_cbor *w, uint64_t v) { outpost_cbor_head(w, 0, v); }
void outpost_cbor_int(outpost_cbor *w, int64_t v) {
  if (v < 0) outpost_cbor_head(w, 1, (uint64_t)(-(v + 1)));
  else outpost_cbor_head(w, 0, (uint64_t)v);
}
void outpost_cbor_bytes(outpost_cbor *w, const uint8_t *b, size_t n) {
  outpost_cbor_head(w, 2, n);
  put(w, b, n);
}
void outpost_cbor_text(outpost_cbor *w, const char *s, size_t n) {
  outpost_cbor_head(w, 3, n);
  put(w, (const uint8_t *)s, n);
}
void outpost_cbor_bool(outpost_cbor *w, bool b) {
  uint8_t v = b ? 0xf5 : 0xf4;
  put(w, &v, 1);
}

void outpost_cbor_number(outpost_cbor *w, double v) {
  uint64_t bits;
  memcpy(&bits, &v, 8);
  unsigned exp = (unsigned)(bits >> 52) & 0x7ffu;
  uint64_t mant = bits & 0xfffffffffffffull;
  int neg = (int)(bits >> 63);
  if (exp == 0x7ff) {
    if (!w->err) w->err = OUTPOST_E_ARG;
    return;
  }
  if (exp == 0 && mant == 0) { /* +0 and -0 */
    outpost_cbor_head(w, 0, 0);
    return;
  }
  if (exp >= 1023 && exp <= 1023 + 52) { /* 1 <= |v| < 2^53: integral? */
    unsigned frac = 52 - (exp - 1023);
    uint64_t m = mant | (1ull << 52);
    if ((m & ((1ull << frac) - 1)) == 0) {
      uint64_t mag = m >> frac;
      if (neg) outpost_cbor_head(w, 1, mag - 1);
      else outpost_cbor_head(w, 0, mag);
      return;
    }
  }
  uint8_t f[9];
  f[0] = 0xfb;
  for (int i = 0; i < 8; i++) f[1 + i] = (uint8_t)(bits >> (56 - 8 * i));
  put(w, f, 9);
}

static void cbor_cstr(outpost_cbor *w, const char *s) {
  if (!s) {
    if (!w->err) w->err = OUTPOST_E_ARG;
    return;
  }
  outpost_cbor_text(w, s, strlen(s));
}

/* ---- COSE_Sign1 signing ------------------------------------------------------------------- */
/* ["Signature1", h'a10127', h'', ... (RFC 9052 §4.4): array head, context, protected bstr({1: -8}), empty aad */
static const uint8_t SIG1_PREFIX[17] = {0x84, 0x6a, 'S', 'i', 'g', 'n', 'a', 't', 'u', 'r', 'e', '1', 0x43, 0xa1, 0x01, 0x27, 0x40};
#define PROTECTED (SIG1_PREFIX + 12)
/* 18([h'a10127', {4: ... (RFC 9052 §4.2) */
static const uint8_t FRAME_PREFIX[8] = {0xd2, 0x84, 0x43, 0xa1, 0x01, 0x27, 0xa1, 0x04};

size_t outpost_sign1_body_offset(size_t kid_len) {
  size_t frame_prefix = 8 + head_len(kid_len) + kid_len; /* d2 84 43a10127 a1 04 kid */
  size_t sig_prefix = 12 + 4 + 1;                        /* context, protected, h'' */
  return (frame_prefix > sig_prefix ? frame_prefix : sig_prefix) + 3;
}

int outpost_sign1(const outpost_device *dev, uint8_t *out, size_t cap, size_t body_off, size_t body_len, size_t *frame_len) {
  if (!dev || !dev->crypto || !dev->crypto->sign || !dev->kid || dev->kid_len == 0 || dev->kid_len > OUTPOST_MAX_KID ||
      body_off < outpost_sign1_body_offset(dev->kid_len) || body_len > 0xffff)
    return OUTPOST_E_ARG;
  if (body_off > cap || body_len > cap - body_off) return OUTPOST_E_SPACE;
  size_t h = head_len(body_len);
  /* Sig_structure = ["Signature1", h'a10127', h'', body], right before the body. */
  size_t s = body_off - 17 - h;
  memcpy(out + s, SIG1_PREFIX, 17);
  write_head(out + s + 17, 2, body_len);
  uint8_t sig[OUTPOST_SIG_BYTES];
  if (dev->crypto->sign(dev->crypto->ctx, sig, out + s, 17 + h + body_len) != 0) return OUTPOST_E_CRYPTO;
  /* 18([h'a10127', {4: kid}, body, sig]) */
  size_t pre = 8 + head_len(dev->kid_len) + dev->kid_len + h;
  size_t total = pre + body_len + 2 + OUTPOST_SIG_BYTES;
  if (total > cap) return OUTPOST_E_SPACE;
  size_t f = body_off - pre;
  uint8_t *p = out + f;
  memcpy(p, FRAME_PREFIX, 8);
  p += 8 + write_head(p + 8, 2, dev->kid_len);
  memcpy(p, dev->kid, dev->kid_len);
  write_head(p + dev->kid_len, 2, body_len);
  memmove(out, out + f, pre + body_len);
  out[pre + body_len] = 0x58;
  out[pre + body_len + 1] = 0x40;
  memcpy(out + pre + body_len + 2, sig, OUTPOST_SIG_BYTES);
  *frame_len = total;
  return OUTPOST_OK;
}

static int finish_uplink(outpost_device *dev, outpost_cbor *w, uint8_t *out, size_t cap, size_t off, size_t *frame_len) {
  if (w->err) return w->err;
  int rc = outpost_sign1(dev, out, cap, off, w->len, frame_len);
  if (rc == OUTPOST_OK) dev->seq++;
  return rc;
}

static void uplink_head(outpost_cbor *w, const outpost_device *dev, unsigned type, uint64_t time_ms, size_t fields) {
  const uint64_t v[4] = {type, dev->boot, dev->seq, time_ms};
  unsigned n = time_ms ? 4 : 3;
  outpost_cbor_head(w, 5, fields + n - 3);
  for (unsigned k = 0; k < n; k++) { /* {0: type, 1: boot, 2: seq, 3?: time} */
    outpost_cbor_uint(w, k);
    outpost_cbor_uint(w, v[k]);
  }
}

/* SenML fields in OUTPOST_SENML_* bit order (= ascending CBOR label, RFC 8428 Table 6). */
static const struct {
  int8_t label;
  char kind; /* 's' text, 'n' number, 'b' boolean */
  uint8_t offset;
} SENML_FIELDS[] = {
    {-4, 's', offsetof(outpost_senml_record, bu)}, {-3, 'n', offsetof(outpost_senml_record, bt)},
    {-2, 's', offsetof(outpost_senml_record, bn)}, {0, 's', offsetof(outpost_senml_record, n)},
    {1, 's', offsetof(outpost_senml_record, u)},   {2, 'n', offsetof(outpost_senml_record, v)},
    {3, 's', offsetof(outpost_senml_record, vs)},  {4, 'b', offsetof(outpost_senml_record, vb)},
    {5, 'n', offsetof(outpost_senml_record, s)},   {6, 'n', offsetof(outpost_senml_record, t)}};

int outpost_frame_reading(outpost_device *dev, uint64_t time_ms, const outpost_senml_record *recs, size_t nrecs,
                          uint8_t *out, size_t cap, size_t *frame_len) {
  if (!dev || !out || !frame_len || !recs || nrecs == 0 || nrecs > 256) return OUTPOST_E_ARG;
  size_t off = outpost_sign1_body_offset(dev->kid_len);
  if (off > cap) return OUTPOST_E_SPACE;
  outpost_cbor w;
  outpost_cbor_init(&w, out + off, cap - off);
  uplink_head(&w, dev, 1, time_ms, 4);
  outpost_cbor_uint(&w, 4);
  outpost_cbor_head(&w, 4, nrecs);
  for (size_t i = 0; i < nrecs; i++) {
    const outpost_senml_record *r = &recs[i];
    size_t k = 0;
    for (uint16_t m = r->has & 0x3ffu; m; m &= (uint16_t)(m - 1)) k++;
    outpost_cbor_head(&w, 5, k);
    /* label order as protocols/senml.ts packToCbor writes it: ascending */
    for (unsigned f = 0; f < sizeof SENML_FIELDS / sizeof SENML_FIELDS[0]; f++) {
      if (!(r->has & (1u << f))) continue;
      const char *field = (const char *)r + SENML_FIELDS[f].offset;
      outpost_cbor_int(&w, SENML_FIELDS[f].label);
      if (SENML_FIELDS[f].kind == 's') {
        const char *str;
        memcpy(&str, field, sizeof str);
        cbor_cstr(&w, str);
      } else if (SENML_FIELDS[f].kind == 'n') {
        double d;
        memcpy(&d, field, sizeof d);
        outpost_cbor_number(&w, d);
      } else {
        outpost_cbor_bool(&w, r->vb);
      }
    }
  }
  return finish_uplink(dev, &w, out, cap, off, frame_len);
}

int outpost_frame_command_ack(outpost_device *dev, uint64_t time_ms, const uint8_t *cid, size_t cid_len, uint8_t status,
                              uint8_t *out, size_t cap, size_t *frame_len) {
  if (!dev || !out || !frame_len || !cid || cid_len < 4 || cid_len > 32) return OUTPOST_E_ARG;
  size_t off = outpost_sign1_body_offset(dev->kid_len);
  if (off > cap) return OUTPOST_E_SPACE;
  outpost_cbor w;
  outpost_cbor_init(&w, out + off, cap - off);
  uplink_head(&w, dev, 3, time_ms, 5);
  outpost_cbor_uint(&w, 8);
  outpost_cbor_bytes(&w, cid, cid_len);
  outpost_cbor_uint(&w, 15);
  outpost_cbor_uint(&w, status);
  return finish_uplink(dev, &w, out, cap, off, frame_len);
}

/* ---- bounded CBOR reader ------------------------------------------------------------------ */
typedef outpost_cbor_reader rd;

#define MAX_ITEMS OUTPOST_CBOR_MAX_ITEMS
#define MAX_DEPTH 4

/* Reads a head: definite lengths only, no reserved additional info. */
#define rd_head outpost_cbor_read_head
int rd_head(rd *r, uint8_t *major, uint64_t *arg) {
  if (r->pos >= r->n || ++r->items > MAX_ITEMS) return OUTPOST_E_CBOR;
  uint8_t ib = r->p[r->pos++];
  uint8_t ai = ib & 0x1f;
  *major = ib >> 5;
  if (ai < 24) {
    *arg = ai;
    return 0;
  }
  if (ai > 27) return OUTPOST_E_CBOR;
  size_t k = (size_t)1 << (ai - 24);
  if (k > r->n - r->pos) return OUTPOST_E_CBOR;
  uint64_t v = 0;
  for (size_t i = 0; i < k; i++) v = v << 8 | r->p[r->pos++];
  *arg = v;
  return 0;
}

/* A byte or text string of the given major type; *s points into the input. */
#define rd_str outpost_cbor_read_str
int rd_str(rd *r, uint8_t want, const uint8_t **s, size_t *len) {
  uint8_t major;
  uint64_t arg;
  if (rd_head(r, &major, &arg) || major != want || arg > r->n - r->pos) return OUTPOST_E_CBOR;
  *s = r->p + r->pos;
  *len = (size_t)arg;
  r->pos += (size_t)arg;
  return 0;
}

/* Skips one item (nesting up to MAX_DEPTH). */
#define rd_skip outpost_cbor_skip
int rd_skip(rd *r, int depth) {
  uint8_t major;
  uint64_t arg;
  if (depth > MAX_DEPTH || rd_head(r, &major, &arg)) return OUTPOST_E_CBOR;
  switch (major) {
  case 2:
  case 3:
    if (arg > r->n - r->pos) return OUTPOST_E_CBOR;
    r->pos += (size_t)arg;
    return 0;
  case 4:
  case 5: {
    if (arg > MAX_ITEMS) return OUTPOST_E_CBOR;
    uint64_t k = major == 5 ? 2 * arg : arg;
    for (uint64_t i = 0; i < k; i++)
      if (rd_skip(r, depth + 1)) return OUTPOST_E_CBOR;
    return 0;
  }
  case 6:
    return rd_skip(r, depth + 1);
  default:
    return 0; /* integers and simple values / floats: the head is the item */
  }
}

/* ---- COSE_Sign1 reading -------------------------------------------------------------------- */

/*
 * A device only has to read what its gateway writes (protocols/cose.ts encodeSign1):
 * the protected header must be exactly bstr({1: -8}) or bstr({1: -19}) (RFC 9053
 * §2.2, RFC 9864) and the unprotected header exactly {4: kid}. Anything else is
 * refused (OUTPOST_E_COSE): less code, and less for an attacker to play with.
 */
static int parse_sign1(const uint8_t *frame, size_t len, outpost_sign1_view *v) {
  if (!frame || !v || len > 0xffff) return OUTPOST_E_ARG;
  /* 18([h'a10127' or h'a10132', {4: ... */
  if (len < 8 || memcmp(frame, FRAME_PREFIX, 5) != 0 || (frame[5] != 0x27 && frame[5] != 0x32) || frame[6] != 0xa1 || frame[7] != 0x04)
    return OUTPOST_E_COSE;
  rd r = {frame, len, 8, 0};
  const uint8_t *kid;
  size_t kid_len;
  if (rd_str(&r, 2, &kid, &kid_len) || kid_len == 0 || kid_len > OUTPOST_MAX_KID) return OUTPOST_E_COSE;
  if (rd_str(&r, 2, &v->payload, &v->payload_len)) return OUTPOST_E_COSE;
  size_t sig_len;
  if (rd_str(&r, 2, &v->signature, &sig_len) || sig_len != OUTPOST_SIG_BYTES || r.pos != len) return OUTPOST_E_COSE;
  v->kid = kid;
  v->kid_len = kid_len;
  return OUTPOST_OK;
}

int outpost_parse_sign1(const uint8_t *frame, size_t len, outpost_sign1_view *v) {
  return parse_sign1(frame, len, v);
}

int outpost_verify_sign1(const outpost_device *dev, uint8_t *frame, size_t len, outpost_sign1_view *v) {
  if (!dev || !dev->crypto || !dev->crypto->verify || !dev->gateway_pk) return OUTPOST_E_ARG;
  int rc = parse_sign1(frame, len, v);
  if (rc) return rc;
  if (dev->gateway_kid && (v->kid_len != dev->gateway_kid_len || memcmp(v->kid, dev->gateway_kid, v->kid_len) != 0))
    return OUTPOST_E_KID;
  /* Rebuild ["Signature1", protected as received, h'', payload] so that it ends
   * where the payload starts: 17 + h bytes in place of the 9 + kid head + kid +
   * payload head bytes before the payload, so at most 11 bytes before the frame. */
  size_t h = head_len(v->payload_len);
  uint8_t *end = frame + (v->payload - frame), alg = frame[5];
  uint8_t *msg = end - h - 17;
  memcpy(msg, SIG1_PREFIX, 17);
  msg[15] = alg; /* -8 or -19, as received */
  write_head(end - h, 2, v->payload_len);
  v->kid = NULL; /* overwritten */
  if (dev->crypto->verify(dev->crypto->ctx, v->signature, msg, (size_t)(end + v->payload_len - msg), dev->gateway_pk) != 0)
    return OUTPOST_E_SIGNATURE;
  return OUTPOST_OK;
}

/* ---- downlink bodies ------------------------------------------------------------------------ */
#define SAFE_MAX 0x1fffffffffffffull

/* Expected major type per body key: 0 uint, 2 bytes, 3 text, 7 the command value
 * (integer, float64, bool or text), 9 not ours (skipped). Upper bounds for uints. */
static const uint8_t KEY_MAJOR[16] = {0, 0, 0, 9, 9, 9, 9, 9, 2, 3, 3, 7, 0, 0, 0, 0};

int outpost_parse_downlink(const uint8_t *body, size_t len, outpost_command *cmd, outpost_frame_ack *ack) {
  if (!body || !cmd || !ack) return OUTPOST_E_ARG;
  rd r = {body, len, 0, 0};
  uint8_t major;
  uint64_t n, key, arg, u[16];
  const uint8_t *str[16];
  uint32_t seen = 0;
  memset(cmd, 0, sizeof *cmd);
  if (rd_head(&r, &major, &n) || major != 5 || n > 32) return OUTPOST_E_CBOR;
  /* One pass: each known key's value is checked for its type and kept as a
   * number (u) or a string (str, with its length in u). */
  while (n--) {
    size_t at = r.pos;
    if (rd_head(&r, &major, &key)) return OUTPOST_E_CBOR;
    if (major != 0 || key > 15 || KEY_MAJOR[key] == 9) { /* another label: skip it (a text one whole) and its value */
      if (major > 1) {
        r.pos = at;
        if (rd_skip(&r, 1)) return OUTPOST_E_CBOR;
      }
      if (rd_skip(&r, 1)) return OUTPOST_E_CBOR;
      continue;
    }
    if (seen & (1u << key)) return OUTPOST_E_CBOR; /* duplicate key */
    seen |= 1u << key;
    at = r.pos;
    if (rd_head(&r, &major, &arg)) return OUTPOST_E_CBOR;
    uint8_t want = KEY_MAJOR[key];
    u[key] = arg;
    if (major == 2 || major == 3) {
      if (arg > r.n - r.pos) return OUTPOST_E_CBOR;
      str[key] = body + r.pos;
      r.pos += (size_t)arg;
      if (arg > 256) return OUTPOST_E_BODY;
    }
    if (want == 7) { /* the command value */
      uint8_t ai = body[at] & 0x1f;
      cmd->value_kind = OUTPOST_VALUE_INT;
      if (major == 0 || major == 1) {
        if (major == 0 ? arg > SAFE_MAX : arg >= SAFE_MAX) return OUTPOST_E_BODY; /* safe integers only */
        cmd->value_int = major == 0 ? (int64_t)arg : -1 - (int64_t)arg;
      } else if (major == 3) {
        cmd->value_kind = OUTPOST_VALUE_TEXT;
        cmd->value_text = (const char *)str[key];
        cmd->value_text_len = (size_t)arg;
      } else if (major == 7 && (ai == 20 || ai == 21)) {
        cmd->value_kind = OUTPOST_VALUE_BOOL;
        cmd->value_bool = ai == 21;
      } else if (major == 7 && ai == 27 && (arg >> 52 & 0x7ff) != 0x7ff) {
        /* The gateway writes non-integral numbers as float64 (protocols/cbor.ts);
         * half and single floats are refused, and so are NaN and infinities. */
        cmd->value_kind = OUTPOST_VALUE_FLOAT;
        memcpy(&cmd->value_float, &arg, 8);
      } else {
        return OUTPOST_E_BODY;
      }
    } else if (major != want || (want != 0 && arg == 0)) {
      return OUTPOST_E_BODY;
    }
  }
  if (r.pos != len) return OUTPOST_E_CBOR;
  uint32_t need = 1u << 1 | 1u << 2 | 1u << 15;
  if (!(seen & 1u)) return OUTPOST_E_BODY;
  if (u[0] == 2) need = 0x3f00u; /* keys 8..13 */
  else if (u[0] != 4) return OUTPOST_E_BODY;
  if ((seen & need) != need) return OUTPOST_E_BODY;
  if (u[0] == 4) {
    if ((u[1] | u[2]) > 0xffffffffu || u[15] > 255) return OUTPOST_E_BODY;
    ack->boot = (uint32_t)u[1];
    ack->seq = (uint32_t)u[2];
    ack->status = (uint8_t)u[15];
    return OUTPOST_BODY_FRAME_ACK;
  }
  if (u[8] < 4 || u[8] > 32) return OUTPOST_E_BODY;
  cmd->id = str[8];
  cmd->id_len = (size_t)u[8];
  cmd->target = (const char *)str[9];
  cmd->target_len = (size_t)u[9];
  cmd->actuator = (const char *)str[10];
  cmd->actuator_len = (size_t)u[10];
  cmd->expires_ms = u[12];
  cmd->issued_ms = u[13];
  cmd->has_fence = (seen >> 14) & 1u;
  cmd->fence = cmd->has_fence ? u[14] : 0;
  return OUTPOST_BODY_COMMAND;
}

uint8_t outpost_command_check(outpost_device *dev, const outpost_command *cmd, uint64_t now_ms) {
  if (cmd->target_len != dev->kid_len || memcmp(cmd->target, dev->kid, dev->kid_len) != 0) return OUTPOST_ACK_REJECTED;
  if (now_ms != 0 && now_ms > cmd->expires_ms) return OUTPOST_ACK_EXPIRED;
  if (cmd->has_fence) {
    if (cmd->fence < dev->fence) return OUTPOST_ACK_REPLAYED;
    dev->fence = cmd->fence;
  }
  return OUTPOST_ACK_OK;
}

/* ---- unacked ring --------------------------------------------------------------------------- */
void outpost_ring_init(outpost_ring *r, uint8_t *data, outpost_slot *slots, uint16_t nslots, uint16_t slot_size) {
  r->data = data;
  r->slots = slots;
  r->nslots = nslots;
  r->slot_size = slot_size;
  r->head = 0;
  r->count = 0;
  r->dropped = 0;
  for (uint16_t i = 0; i < nslots; i++) slots[i].len = 0;
}

static void ring_trim(outpost_ring *r) {
  while (r->count > 0 && r->slots[r->head].len == 0) {
    r->head = (uint16_t)((r->head + 1) % r->nslots);
    r->count--;
  }
}

int outpost_ring_push(outpost_ring *r, uint32_t boot, uint32_t seq, const uint8_t *wire, size_t len, uint32_t now_ms) {
  if (r->nslots == 0 || len == 0 || len > r->slot_size) return OUTPOST_E_SPACE;
  if (r->count == r->nslots) {
    r->slots[r->head].len = 0;
    r->dropped++;
    ring_trim(r);
    if (r->count == r->nslots) return OUTPOST_E_SPACE; /* unreachable */
  }
  uint16_t i = (uint16_t)((r->head + r->count) % r->nslots);
  memcpy(r->data + (size_t)i * r->slot_size, wire, len);
  r->slots[i].boot = boot;
  r->slots[i].seq = seq;
  r->slots[i].sent_ms = now_ms;
  r->slots[i].len = (uint16_t)len;
  r->count++;
  return OUTPOST_OK;
}

int outpost_ring_ack(outpost_ring *r, const outpost_frame_ack *ack) {
  if (ack->status == OUTPOST_ACK_FAILED) return 0;
  for (uint16_t k = 0; k < r->count; k++) {
    outpost_slot *s = &r->slots[(r->head + k) % r->nslots];
    if (s->len && s->boot == ack->boot && s->seq == ack->seq) {
      s->len = 0;
      ring_trim(r);
      return 1;
    }
  }
  return 0;
}

size_t outpost_ring_resend(outpost_ring *r, uint32_t now_ms, uint32_t after_ms, outpost_write_fn write, void *ctx) {
  size_t n = 0;
  for (uint16_t k = 0; k < r->count; k++) {
    uint16_t i = (uint16_t)((r->head + k) % r->nslots);
    outpost_slot *s = &r->slots[i];
    if (s->len && (uint32_t)(now_ms - s->sent_ms) >= after_ms) {
      write(ctx, r->data + (size_t)i * r->slot_size, s->len);
      s->sent_ms = now_ms;
      n++;
    }
  }
  return n;
}
