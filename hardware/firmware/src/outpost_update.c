/*
 * Outpost firmware companion: update receiver (see outpost_update.h). The checks and
 * their order follow protocols/firmware-manifest.ts (decodeManifest, verifyManifest,
 * manifestRefusal) and firmware-sim/update.ts, so a refusal carries the same code.
 */
#include "outpost_update.h"

#include <string.h>

#define MAGIC 0x3257464fu    /* "OFW2": the persisted state's format version */
#define MAGIC_V1 0x3157464fu /* "OFW1": the same layout without phase ABANDONED */
#define STALL_MS 3000u
#define ABANDON_MS 60000u
#define SAFE_MAX 0x1fffffffffffffull
typedef outpost_cbor_reader rd;

static const char *const CODES[OUTPOST_FW_R_COUNT] = {
    "", "too-large", "bad-cose", "bad-kid", "not-canonical", "bad-payload", "not-manifest", "unknown-field",
    "bad-field", "bad-digest", "unknown-key", "bad-signature", "wrong-model", "downgrade", "too-old", "wrong-slot",
    "digest-mismatch", "test-boot-not-confirmed", "resume", "flash", "bad-message", "bad-offer", "bad-chunk", "bad-crc",
    "abandoned"};

const char *outpost_fw_reason_code(uint8_t reason) { return reason < OUTPOST_FW_R_COUNT ? CODES[reason] : ""; }

static outpost_fw_outcome outcome(uint8_t state, uint8_t reason) {
  outpost_fw_outcome o = {state, reason};
  return o;
}

static int save(outpost_fw *u) {
  u->st.crc = outpost_crc32c(0, (const uint8_t *)&u->st, offsetof(outpost_fw_state, crc));
  return u->cfg->persist(u->cfg->ctx, &u->st);
}

static uint32_t stall_ms(const outpost_fw *u) { return u->cfg->stall_ms ? u->cfg->stall_ms : STALL_MS; }

static void set_about(outpost_fw *u, const uint8_t *digest) {
  memcpy(u->about, digest, 32);
  u->has_about = 1;
}

/* "M.m.p", each 0 or 1..5 digits without a leading zero (firmware-manifest.ts VERSION). */
static int parse_version(const uint8_t *s, size_t n, uint32_t v[3]) {
  size_t i = 0;
  for (int k = 0; k < 3; k++) {
    size_t start = i;
    uint32_t x = 0;
    while (i < n && i - start < 5 && s[i] >= '0' && s[i] <= '9') x = x * 10 + (uint32_t)(s[i++] - '0');
    if (i == start || (i - start > 1 && s[start] == '0')) return 0;
    v[k] = x;
    if (k < 2 && (i >= n || s[i++] != '.')) return 0;
  }
  return i == n;
}

static int cmp_version(const uint32_t a[3], const uint32_t b[3]) {
  for (int k = 0; k < 3; k++)
    if (a[k] != b[k]) return a[k] < b[k] ? -1 : 1;
  return 0;
}

static int alnum(uint8_t c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); }

/* [A-Za-z0-9][A-Za-z0-9._-]{0,63} (firmware-manifest.ts MODEL) */
static int valid_model(const uint8_t *s, size_t n) {
  if (n == 0 || n > 64 || !alnum(s[0])) return 0;
  for (size_t i = 1; i < n; i++)
    if (!alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') return 0;
  return 1;
}

/* The head of the value at pos (a fresh reader, so item counts do not add up). */
static int value_at(const uint8_t *p, size_t n, size_t pos, rd *r, uint8_t *major, uint64_t *arg) {
  r->p = p, r->n = n, r->pos = pos, r->items = 0;
  return outpost_cbor_read_head(r, major, arg);
}

static uint8_t parse_payload(const uint8_t *p, size_t n, outpost_fw_manifest *m) {
  rd r = {p, n, 0, 0};
  uint8_t major;
  uint64_t count, key, arg, u[8];
  size_t at[8];
  unsigned seen = 0, unknown = 0;
  if (n > 512 || outpost_cbor_read_head(&r, &major, &count) || major != 5 || count > 16) return OUTPOST_FW_R_BAD_PAYLOAD;
  while (count--) {
    size_t k0 = r.pos;
    if (outpost_cbor_read_head(&r, &major, &key)) return OUTPOST_FW_R_BAD_PAYLOAD;
    if (major != 0 || key > 7) { /* not a field of ours: skip the whole key */
      unknown = 1;
      r.pos = k0;
      if (outpost_cbor_skip(&r, 1)) return OUTPOST_FW_R_BAD_PAYLOAD;
    } else {
      if (seen & (1u << key)) return OUTPOST_FW_R_BAD_PAYLOAD; /* duplicate */
      seen |= 1u << key;
      at[key] = r.pos;
    }
    if (outpost_cbor_skip(&r, 1)) return OUTPOST_FW_R_BAD_PAYLOAD;
  }
  if (r.pos != n) return OUTPOST_FW_R_BAD_PAYLOAD;
  /* Each field's head: major type in mt, argument in u (strings: their bytes in str). */
  uint8_t mt[8];
  const uint8_t *str[8] = {0};
  for (unsigned k = 0; k < 8; k++) {
    mt[k] = 0xff;
    if (!(seen & (1u << k)) || value_at(p, n, at[k], &r, &mt[k], &u[k])) continue;
    str[k] = p + r.pos;
  }
  if (mt[0] != 0 || u[0] != 16) return OUTPOST_FW_R_NOT_MANIFEST;
  if (unknown) return OUTPOST_FW_R_UNKNOWN_FIELD;
  if (mt[1] != 3 || mt[2] != 3 || mt[5] != 3) return OUTPOST_FW_R_BAD_FIELD;
  /* digest: [-16, bytes] */
  const uint8_t *digest;
  size_t dlen;
  if (mt[3] != 4 || u[3] != 2 || value_at(p, n, at[3], &r, &major, &arg) || outpost_cbor_read_head(&r, &major, &arg) ||
      major != 1 || arg != 15 ||
      outpost_cbor_read_str(&r, 2, &digest, &dlen))
    return OUTPOST_FW_R_BAD_DIGEST;
  if (mt[4] != 0 || mt[6] != 0 || mt[7] != 0) return OUTPOST_FW_R_BAD_FIELD;
  /* firmware-manifest.ts check(): every failure is bad-field */
  if (!valid_model(str[1], (size_t)u[1]) || !parse_version(str[2], (size_t)u[2], m->version) ||
      !parse_version(str[5], (size_t)u[5], m->min_version) || cmp_version(m->min_version, m->version) > 0 || dlen != 32 ||
      u[4] < 1 || u[4] > OUTPOST_FW_MAX_IMAGE || u[6] > 15 || u[7] > SAFE_MAX)
    return OUTPOST_FW_R_BAD_FIELD;
  m->model = (const char *)str[1];
  m->model_len = (size_t)u[1];
  m->digest = digest;
  m->size = (uint32_t)u[4];
  m->slot = (uint8_t)u[6];
  m->issued = u[7];
  return OUTPOST_FW_R_NONE;
}

uint8_t outpost_fw_check_manifest(outpost_fw *u, uint8_t *mf, size_t len, outpost_fw_manifest *m) {
  outpost_sign1_view v;
  u->has_about = 0;
  if (len > OUTPOST_FW_MAX_MANIFEST) return OUTPOST_FW_R_TOO_LARGE;
  if (outpost_parse_sign1(mf, len, &v) != OUTPOST_OK) return OUTPOST_FW_R_BAD_COSE;
  if (v.kid_len != OUTPOST_FW_KID_BYTES) return OUTPOST_FW_R_BAD_KID;
  /* The layout is fixed by now, so the shortest heads give exactly this length: any
   * longer head (the envelope is outside the signature) is refused. */
  size_t pl = v.payload_len, h = pl < 24 ? 1 : pl < 256 ? 2 : 3;
  if (len != 9 + OUTPOST_FW_KID_BYTES + h + pl + 2 + OUTPOST_SIG_BYTES) return OUTPOST_FW_R_NOT_CANONICAL;
  uint8_t r = parse_payload(v.payload, pl, m);
  if (r) return r;
  set_about(u, m->digest); /* a refusal from here on is about this (claimed) image */
  outpost_device d;
  memset(&d, 0, sizeof d);
  d.crypto = u->cfg->crypto;
  d.gateway_pk = u->cfg->release_pk;
  d.gateway_kid = u->kid;
  d.gateway_kid_len = OUTPOST_FW_KID_BYTES;
  /* 9 + 8 header bytes before the payload head = the 17 of the Sig_structure: in place, no headroom */
  int rc = outpost_verify_sign1(&d, mf, len, &v);
  if (rc == OUTPOST_E_KID) return OUTPOST_FW_R_UNKNOWN_KEY;
  return rc == OUTPOST_OK ? OUTPOST_FW_R_NONE : OUTPOST_FW_R_BAD_SIGNATURE;
}

int outpost_fw_init(outpost_fw *u, const outpost_fw_config *cfg, const outpost_fw_state *saved, const char *factory_version) {
  if (!u || !cfg || !cfg->crypto || !cfg->crypto->verify || !cfg->release_pk || !cfg->model || !cfg->write || !cfg->persist)
    return OUTPOST_E_ARG;
  memset(u, 0, sizeof *u);
  u->cfg = cfg;
  uint8_t d[32];
  outpost_sha256_init(&u->st.sha);
  outpost_sha256_update(&u->st.sha, cfg->release_pk, OUTPOST_PK_BYTES);
  outpost_sha256_final(&u->st.sha, d);
  memcpy(u->kid, d, OUTPOST_FW_KID_BYTES);
  /* a page that is ours and whole: magic, CRC, and fields a save can have written */
  uint8_t max_phase = saved && saved->magic == MAGIC_V1 ? OUTPOST_FW_PHASE_TRIAL_BOOTED : OUTPOST_FW_PHASE_ABANDONED;
  if (saved && (saved->magic == MAGIC || saved->magic == MAGIC_V1) && saved->phase <= max_phase && saved->offset <= saved->size &&
      saved->size <= OUTPOST_FW_MAX_IMAGE && saved->last_state <= OUTPOST_FW_FAILED && saved->last_reason < OUTPOST_FW_R_COUNT &&
      saved->crc == outpost_crc32c(0, (const uint8_t *)saved, offsetof(outpost_fw_state, crc))) {
    u->st = *saved;
    u->st.magic = MAGIC; /* written as the current version from the next save on */
    return OUTPOST_OK;
  }
  memset(&u->st, 0, sizeof u->st);
  u->st.magic = MAGIC;
  if (!factory_version || !parse_version((const uint8_t *)factory_version, strlen(factory_version), u->st.running))
    return OUTPOST_E_ARG;
  return OUTPOST_OK;
}

/* An update ends: remembered as the last one (reported again when offered the same image). */
static outpost_fw_outcome end(outpost_fw *u, uint8_t state, uint8_t reason) {
  outpost_fw_state *s = &u->st;
  set_about(u, s->digest);
  memcpy(s->last_digest, s->digest, 32);
  s->last_state = state;
  s->last_reason = reason;
  s->phase = OUTPOST_FW_PHASE_IDLE;
  s->offset = s->size = 0;
  (void)save(u); /* a lost save replays the same decision at the next boot */
  return outcome(state, reason);
}

/* SHA-256 of slot[0..size) read back from flash; 0 when it is the pending digest. */
static int slot_matches(outpost_fw *u) {
  if (!u->cfg->read) return 1; /* no read-back: the streamed hash is all there is */
  outpost_sha256 s;
  uint8_t buf[64], d[32];
  outpost_sha256_init(&s);
  for (uint32_t at = 0; at < u->st.size; at += sizeof buf) {
    size_t k = u->st.size - at < sizeof buf ? u->st.size - at : sizeof buf;
    if (u->cfg->read(u->cfg->ctx, at, buf, k)) return 0;
    outpost_sha256_update(&s, buf, k);
  }
  outpost_sha256_final(&s, d);
  return memcmp(d, u->st.digest, 32) == 0;
}

outpost_fw_outcome outpost_fw_boot(outpost_fw *u) {
  if (u->st.phase == OUTPOST_FW_PHASE_TRIAL_BOOTED) /* the trial reset before confirming: back to the old image */
    return end(u, OUTPOST_FW_ROLLED_BACK, OUTPOST_FW_R_NOT_CONFIRMED);
  if (u->st.phase == OUTPOST_FW_PHASE_TRIAL_PENDING) { /* the bootloader checks the slot again */
    if (!slot_matches(u)) return end(u, OUTPOST_FW_FAILED, OUTPOST_FW_R_DIGEST_MISMATCH);
    u->st.phase = OUTPOST_FW_PHASE_TRIAL_BOOTED;
    (void)save(u);
  }
  return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_NONE);
}

outpost_fw_outcome outpost_fw_confirm(outpost_fw *u) {
  outpost_fw_state *s = &u->st;
  if (s->phase != OUTPOST_FW_PHASE_TRIAL_BOOTED) return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_NONE);
  memcpy(s->running, s->version, sizeof s->running);
  memcpy(s->running_digest, s->digest, 32);
  s->has_running_digest = 1;
  return end(u, OUTPOST_FW_CONFIRMED, OUTPOST_FW_R_NONE);
}

outpost_fw_outcome outpost_fw_connected(outpost_fw *u) {
  u->has_about = 0;
  if (u->st.phase == OUTPOST_FW_PHASE_DOWNLOADING) {
    set_about(u, u->st.digest);
    return outcome(OUTPOST_FW_DOWNLOADING, OUTPOST_FW_R_RESUME);
  }
  if (u->st.last_state) {
    set_about(u, u->st.last_digest);
    return outcome(u->st.last_state, u->st.last_reason);
  }
  return outcome(OUTPOST_FW_IDLE, OUTPOST_FW_R_NONE);
}

static outpost_fw_outcome offer(outpost_fw *u, uint8_t *mf, size_t len) {
  outpost_fw_manifest m;
  outpost_fw_state *s = &u->st;
  uint8_t r = outpost_fw_check_manifest(u, mf, len, &m);
  if (r) return outcome(OUTPOST_FW_FAILED, r);
  if (s->phase != OUTPOST_FW_PHASE_IDLE && memcmp(s->digest, m.digest, 32) == 0) { /* offered again while at it */
    if (s->phase == OUTPOST_FW_PHASE_DOWNLOADING) return outcome(OUTPOST_FW_DOWNLOADING, OUTPOST_FW_R_RESUME);
    if (s->phase != OUTPOST_FW_PHASE_ABANDONED) return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_NONE);
    /* a download it gave up: taken up again from the bytes (and hash state) it holds */
    s->phase = OUTPOST_FW_PHASE_DOWNLOADING;
    u->chunk_at = u->progress_at = u->now;
    if (save(u)) return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_FLASH);
    return outcome(OUTPOST_FW_OFFERED, OUTPOST_FW_R_NONE);
  }
  if (s->has_running_digest && memcmp(s->running_digest, m.digest, 32) == 0) return outcome(OUTPOST_FW_CONFIRMED, OUTPOST_FW_R_NONE);
  if (s->last_state && memcmp(s->last_digest, m.digest, 32) == 0) return outcome(s->last_state, s->last_reason);
  /* One update at a time; but a download nobody serves any more (its rollout aborted) gives way. */
  if (s->phase == OUTPOST_FW_PHASE_DOWNLOADING && !(u->ticking && u->now - u->progress_at >= stall_ms(u)))
    return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_NONE);
  if (s->phase == OUTPOST_FW_PHASE_TRIAL_PENDING || s->phase == OUTPOST_FW_PHASE_TRIAL_BOOTED)
    return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_NONE);
  /* manifestRefusal, in its order */
  if (m.model_len != strlen(u->cfg->model) || memcmp(m.model, u->cfg->model, m.model_len) != 0) r = OUTPOST_FW_R_WRONG_MODEL;
  else if (cmp_version(m.version, s->running) <= 0) r = OUTPOST_FW_R_DOWNGRADE;
  else if (cmp_version(s->running, m.min_version) < 0) r = OUTPOST_FW_R_TOO_OLD;
  else if (m.slot != u->cfg->slot) r = OUTPOST_FW_R_WRONG_SLOT;
  if (r) return outcome(OUTPOST_FW_FAILED, r);
  memcpy(s->digest, m.digest, 32);
  memcpy(s->version, m.version, sizeof s->version);
  s->size = m.size;
  s->offset = 0;
  outpost_sha256_init(&s->sha);
  s->phase = OUTPOST_FW_PHASE_DOWNLOADING; /* a download given up or stalled is replaced: its bytes are not kept */
  u->chunk_at = u->progress_at = u->now;
  if (save(u)) return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_FLASH);
  return outcome(OUTPOST_FW_OFFERED, OUTPOST_FW_R_NONE);
}

outpost_fw_outcome outpost_fw_tick(outpost_fw *u, uint32_t now_ms) {
  if (!u->ticking) { /* the clock starts with the first tick (after a reset: counts from here) */
    u->ticking = 1;
    u->chunk_at = u->progress_at = now_ms;
  }
  u->now = now_ms;
  if (u->st.phase != OUTPOST_FW_PHASE_DOWNLOADING) return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_NONE);
  uint32_t abandon = u->cfg->abandon_ms ? u->cfg->abandon_ms : ABANDON_MS;
  if (now_ms - u->progress_at >= abandon) { /* given up: idle, the bytes kept (an offer of it resumes) */
    u->st.phase = OUTPOST_FW_PHASE_ABANDONED;
    set_about(u, u->st.digest);
    (void)save(u); /* lost: the next boot is still downloading, and gives up again */
    return outcome(OUTPOST_FW_IDLE, OUTPOST_FW_R_ABANDONED);
  }
  if (now_ms - u->chunk_at >= stall_ms(u)) {
    u->chunk_at = now_ms;
    set_about(u, u->st.digest);
    return outcome(OUTPOST_FW_DOWNLOADING, OUTPOST_FW_R_RESUME);
  }
  return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_NONE);
}

static outpost_fw_outcome chunk(outpost_fw *u, const uint8_t *digest, uint64_t offset, const uint8_t *data, size_t n) {
  outpost_fw_state *s = &u->st;
  /* not for this download, out of order or past the end: dropped (the sender rewinds on the next report) */
  if (s->phase != OUTPOST_FW_PHASE_DOWNLOADING || memcmp(digest, s->digest, 32) != 0 || offset != s->offset ||
      n > s->size - s->offset)
    return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_CHUNK);
  set_about(u, s->digest);
  if (u->cfg->write(u->cfg->ctx, s->offset, data, n)) return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_FLASH);
  outpost_sha256_update(&s->sha, data, n);
  s->offset += (uint32_t)n;
  u->chunk_at = u->progress_at = u->now;
  if (s->offset == s->size) {
    uint8_t d[32];
    outpost_sha256 h = s->sha;
    outpost_sha256_final(&h, d);
    if (memcmp(d, s->digest, 32) != 0 || !slot_matches(u)) return end(u, OUTPOST_FW_FAILED, OUTPOST_FW_R_DIGEST_MISMATCH);
    s->phase = OUTPOST_FW_PHASE_TRIAL_PENDING;
    (void)save(u); /* lost: the download is asked again from the last saved offset */
    return outcome(OUTPOST_FW_VERIFIED, OUTPOST_FW_R_NONE);
  }
  /* after the slot write it vouches for; a lost save only means re-receiving this chunk */
  return outcome(OUTPOST_FW_NONE, save(u) ? OUTPOST_FW_R_FLASH : OUTPOST_FW_R_NONE);
}

outpost_fw_outcome outpost_fw_down(outpost_fw *u, uint8_t *msg, size_t len) {
  rd r = {msg, len, 0, 0};
  uint8_t major, mt[5] = {0};
  uint64_t count, key, v[5] = {0};
  const uint8_t *str[5] = {0};
  unsigned seen = 0;
  if (outpost_cbor_read_head(&r, &major, &count) || major != 5 || count > 8) return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_MESSAGE);
  while (count--) { /* keys 0..4 kept (head and, for strings, the bytes); others skipped */
    size_t k0 = r.pos;
    if (outpost_cbor_read_head(&r, &major, &key)) return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_MESSAGE);
    if (major != 0 || key > 4) {
      r.pos = k0;
      if (outpost_cbor_skip(&r, 1) || outpost_cbor_skip(&r, 1)) return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_MESSAGE);
      continue;
    }
    if (seen & (1u << key)) return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_MESSAGE);
    seen |= 1u << key;
    size_t at = r.pos;
    if (outpost_cbor_read_head(&r, &mt[key], &v[key])) return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_MESSAGE);
    r.pos = at;
    if (outpost_cbor_skip(&r, 1)) return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_MESSAGE);
    str[key] = msg + r.pos - (mt[key] == 2 || mt[key] == 3 ? (size_t)v[key] : 0);
  }
  if (r.pos != len || !(seen & 1u) || mt[0] != 0) return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_MESSAGE);
  if (v[0] == 17) {
    if ((seen & 6u) != 6u || mt[1] != 2 || v[1] > OUTPOST_FW_MAX_MANIFEST || mt[2] != 3 || v[2] == 0 || v[2] > 64)
      return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_OFFER);
    return offer(u, msg + (str[1] - msg), (size_t)v[1]);
  }
  if (v[0] != 18) return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_MESSAGE);
  if ((seen & 0x1eu) != 0x1eu || mt[1] != 2 || v[1] != 32 || mt[2] != 0 || v[2] > SAFE_MAX || mt[3] != 2 || v[3] == 0 ||
      mt[4] != 0 || v[4] > 0xffffffffu)
    return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_CHUNK);
  if (outpost_crc32c(0, str[3], (size_t)v[3]) != v[4]) return outcome(OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_CRC);
  return chunk(u, str[1], v[2], str[3], (size_t)v[3]);
}

/* Decimal of v into p; returns the length. */
static size_t put_u32(char *p, uint32_t v) {
  char t[10];
  size_t n = 0, i = 0;
  do t[n++] = (char)('0' + v % 10); while (v /= 10);
  while (n) p[i++] = t[--n];
  return i;
}

int outpost_fw_report(outpost_fw *u, const outpost_device *dev, uint64_t time_ms, outpost_fw_outcome o, const char *detail,
                      uint8_t *out, size_t cap, size_t *frame_len) {
  if (!u || !dev || !out || !frame_len || o.state > OUTPOST_FW_FAILED || o.reason >= OUTPOST_FW_R_COUNT) return OUTPOST_E_ARG;
  size_t off = outpost_sign1_body_offset(dev->kid_len);
  if (off > cap) return OUTPOST_E_SPACE;
  u->st.reports++;
  if (save(u)) return OUTPOST_FW_E_PERSIST; /* kept before it is sent, or the gateway takes the next for a replay */
  char ver[32];
  size_t vl = 0;
  for (int k = 0; k < 3; k++) {
    vl += put_u32(ver + vl, u->st.running[k]);
    if (k < 2) ver[vl++] = '.';
  }
  outpost_cbor w;
  outpost_cbor_init(&w, out + off, cap - off);
  outpost_cbor_head(&w, 5, 10u + (o.reason != 0) + (detail != NULL));
  const uint64_t head[5] = {19, dev->boot, u->st.reports, time_ms, o.state};
  for (unsigned k = 0; k < 5; k++) outpost_cbor_uint(&w, k), outpost_cbor_uint(&w, head[k]);
  outpost_cbor_uint(&w, 5);
  if (u->has_about) outpost_cbor_bytes(&w, u->about, 32);
  else outpost_cbor_head(&w, 7, 22); /* null */
  const uint64_t tail[3] = {u->st.phase ? u->st.offset : 0, u->cfg->window, u->cfg->chunk_size};
  for (unsigned k = 0; k < 3; k++) outpost_cbor_uint(&w, 6 + k), outpost_cbor_uint(&w, tail[k]);
  outpost_cbor_uint(&w, 9);
  outpost_cbor_text(&w, ver, vl);
  if (o.reason) outpost_cbor_uint(&w, 10), outpost_cbor_text(&w, CODES[o.reason], strlen(CODES[o.reason]));
  if (detail) {
    size_t dl = strlen(detail);
    outpost_cbor_uint(&w, 11);
    outpost_cbor_text(&w, detail, dl > 200 ? 200 : dl); /* encodeReport keeps 200 (ASCII: characters = bytes) */
  }
  if (w.err) return w.err;
  return outpost_sign1(dev, out, cap, off, w.len, frame_len);
}
