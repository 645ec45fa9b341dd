/*
 * Unit tests for the update receiver (src/outpost_update.c, src/outpost_sha256.c), built
 * with -fsanitize=address,undefined. The manifests, offer, chunks and reports are the
 * TypeScript side's (update_vectors.h, from test/vectors/firmware-update-vectors.ts);
 * each refusal must carry the code verifyManifest / manifestRefusal give for it.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/outpost.h"
#include "../src/outpost_sodium.h"
#include "../src/outpost_update.h"
#include "harness.h"
#include "update_vectors.h"

/* ---- a device: its slot in RAM, its persisted state in a "page" ----------------------- */
static uint8_t dev_sk[64], dev_pk[32], rel_sk[64], rel_pk[32], other_sk[64], other_pk[32];
static outpost_crypto dev_crypto, rel_crypto, other_crypto;

typedef struct {
  uint8_t slot[4096];
  outpost_fw_state page; /* what survives a reset */
  int has_page, fail_persist, fail_write, writes, persists;
} flash;

static int flash_write(void *ctx, uint32_t off, const uint8_t *d, size_t n) {
  flash *f = ctx;
  if (f->fail_write || off + n > sizeof f->slot) return -1;
  memcpy(f->slot + off, d, n);
  f->writes++;
  return 0;
}
static int flash_read(void *ctx, uint32_t off, uint8_t *d, size_t n) {
  flash *f = ctx;
  if (off + n > sizeof f->slot) return -1;
  memcpy(d, f->slot + off, n);
  return 0;
}
static int flash_persist(void *ctx, const outpost_fw_state *st) {
  flash *f = ctx;
  if (f->fail_persist) return -1;
  f->page = *st;
  f->has_page = 1;
  f->persists++;
  return 0;
}

static flash fl;
static outpost_fw_config cfg;

/* A fresh device (running VEC_FW_RUNNING) or, with resume, the same one after a reset. */
static void power_on(outpost_fw *u, int resume) {
  memset(&cfg, 0, sizeof cfg);
  cfg.crypto = &dev_crypto; /* only verify is used: libsodium's, no key needed */
  cfg.release_pk = rel_pk;
  cfg.model = VEC_FW_MODEL;
  cfg.slot = VEC_FW_SLOT;
  cfg.window = 8;
  cfg.chunk_size = VEC_FW_CHUNK_SIZE;
  cfg.write = flash_write;
  cfg.read = flash_read;
  cfg.persist = flash_persist;
  cfg.ctx = &fl;
  if (!resume) memset(&fl, 0, sizeof fl);
  CHECK(outpost_fw_init(u, &cfg, fl.has_page ? &fl.page : NULL, VEC_FW_RUNNING) == OUTPOST_OK);
}

/* The message, as an exact-size heap copy (ASan catches any over-read), through outpost_fw_down. */
static outpost_fw_outcome down(outpost_fw *u, const uint8_t *msg, size_t n) {
  uint8_t *copy = malloc(n ? n : 1);
  memcpy(copy, msg, n);
  outpost_fw_outcome o = outpost_fw_down(u, copy, n);
  free(copy);
  return o;
}
#define DOWN(u, v) DOWN_(u, v) /* v: a "pointer, length" vector macro */
#define DOWN_(u, p, n) down(u, p, n)
#define PTR_N(x) PTR_N_(x)
#define PTR_N_(p, n) (n)

/* An offer message {0: 17, 1: manifest, 2: "r-1"} around manifest bytes. */
static outpost_fw_outcome offer_manifest(outpost_fw *u, const uint8_t *m, size_t n) {
  uint8_t buf[1200];
  outpost_cbor w;
  outpost_cbor_init(&w, buf, sizeof buf);
  outpost_cbor_head(&w, 5, 3);
  outpost_cbor_uint(&w, 0), outpost_cbor_uint(&w, 17);
  outpost_cbor_uint(&w, 1), outpost_cbor_bytes(&w, m, n);
  outpost_cbor_uint(&w, 2), outpost_cbor_text(&w, "r-1", 3);
  CHECK(w.err == 0);
  return down(u, buf, w.len);
}

static int is(outpost_fw_outcome o, uint8_t state, uint8_t reason) { return o.state == state && o.reason == reason; }

/* ---- tests -------------------------------------------------------------------------------- */
TEST(sha256_vectors) {
  static const struct { const char *msg, *hex; } v[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"}};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    outpost_sha256 s;
    uint8_t d[32];
    char hex[65];
    outpost_sha256_init(&s);
    outpost_sha256_update(&s, (const uint8_t *)v[i].msg, strlen(v[i].msg));
    outpost_sha256_final(&s, d);
    for (int k = 0; k < 32; k++) snprintf(hex + 2 * k, 3, "%02x", d[k]);
    CHECK(strcmp(hex, v[i].hex) == 0);
  }
  /* every length 0..300 (padding edges at 55/56/64), fed in uneven pieces, against libsodium */
  uint8_t buf[300];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 7 + 3);
  for (size_t n = 0; n <= sizeof buf; n++) {
    outpost_sha256 s;
    uint8_t a[32], b[32];
    outpost_sha256_init(&s);
    for (size_t at = 0, step = 1; at < n; at += step, step = step * 3 % 71 + 1)
      outpost_sha256_update(&s, buf + at, step < n - at ? step : n - at);
    outpost_sha256_final(&s, a);
    crypto_hash_sha256(b, buf, n);
    CHECK(memcmp(a, b, 32) == 0);
  }
  /* the image's digest is the manifest's */
  uint8_t d[32];
  crypto_hash_sha256(d, PTR(VEC_FW_IMAGE), PTR_N(VEC_FW_IMAGE));
  CHECK(memcmp(d, PTR(VEC_FW_DIGEST), 32) == 0);
}

TEST(release_key_id) {
  outpost_fw u;
  power_on(&u, 0);
  CHECK(memcmp(u.kid, PTR(VEC_FW_RELEASE_KID), OUTPOST_FW_KID_BYTES) == 0);
  CHECK(sizeof(outpost_fw_state) == 248); /* no padding: the CRC covers defined bytes only */
}

TEST(manifests_refused_with_ts_codes) {
  for (size_t i = 0; i < VEC_COUNT(vec_fw_manifests); i++) {
    const vec_fw_manifest *v = &vec_fw_manifests[i];
    outpost_fw u;
    power_on(&u, 0);
    outpost_fw_outcome o = offer_manifest(&u, v->manifest.p, v->manifest.n);
    int ok = strcmp(v->reason, "ok") == 0 ? is(o, OUTPOST_FW_OFFERED, 0)
                                          : o.state == OUTPOST_FW_FAILED && strcmp(outpost_fw_reason_code(o.reason), v->reason) == 0;
    CHECK(ok);
    if (!ok) fprintf(stderr, "  %s: want %s, got state %d reason %s\n", v->name, v->reason, o.state, outpost_fw_reason_code(o.reason));
    CHECK(u.st.phase == (strcmp(v->reason, "ok") == 0 ? OUTPOST_FW_PHASE_DOWNLOADING : OUTPOST_FW_PHASE_IDLE));
  }
}

TEST(wrong_release_key_and_every_bit_flip) {
  /* a device trusting another release key: the valid manifest names an unknown key */
  outpost_fw u;
  power_on(&u, 0);
  cfg.release_pk = other_pk;
  CHECK(outpost_fw_init(&u, &cfg, NULL, VEC_FW_RUNNING) == OUTPOST_OK);
  const vec_bytes *valid = &vec_fw_manifests[0].manifest;
  CHECK(is(offer_manifest(&u, valid->p, valid->n), OUTPOST_FW_FAILED, OUTPOST_FW_R_UNKNOWN_KEY));
  /* no single bit of the manifest can change and still be taken */
  uint8_t m[OUTPOST_FW_MAX_MANIFEST];
  size_t taken = 0;
  for (size_t bit = 0; bit < valid->n * 8; bit++) {
    power_on(&u, 0);
    memcpy(m, valid->p, valid->n);
    m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    if (offer_manifest(&u, m, valid->n).state != OUTPOST_FW_FAILED) taken++;
  }
  CHECK(taken == 0);
  for (size_t n = 0; n < valid->n; n++) { /* truncations */
    power_on(&u, 0);
    CHECK(offer_manifest(&u, valid->p, n).state == OUTPOST_FW_FAILED);
  }
}

static void expect_report_ok(outpost_fw *u, outpost_fw_outcome o) {
  outpost_device dev;
  memset(&dev, 0, sizeof dev);
  dev.crypto = &dev_crypto;
  dev.kid = (const uint8_t *)VEC_DEVICE_ID;
  dev.kid_len = strlen(VEC_DEVICE_ID);
  uint8_t out[400];
  size_t n;
  uint32_t before = u->st.reports;
  CHECK(outpost_fw_report(u, &dev, 1, o, NULL, out, sizeof out, &n) == OUTPOST_OK);
  CHECK(u->st.reports == before + 1 && fl.page.reports == before + 1); /* persisted */
}

TEST(download_interrupted_and_resumed) {
  outpost_fw u;
  power_on(&u, 0);
  outpost_fw_outcome o = DOWN(&u, VEC_FW_OFFER);
  CHECK(is(o, OUTPOST_FW_OFFERED, 0));
  expect_report_ok(&u, o);
  CHECK(is(DOWN(&u, VEC_FW_OFFER), OUTPOST_FW_DOWNLOADING, OUTPOST_FW_R_RESUME)); /* offered again while at it */
  CHECK(is(down(&u, vec_fw_chunks[0].p, vec_fw_chunks[0].n), OUTPOST_FW_NONE, 0));
  CHECK(is(down(&u, vec_fw_chunks[2].p, vec_fw_chunks[2].n), OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_CHUNK)); /* ahead */
  CHECK(is(down(&u, vec_fw_chunks[1].p, vec_fw_chunks[1].n), OUTPOST_FW_NONE, 0));
  CHECK(u.st.offset == 2 * VEC_FW_CHUNK_SIZE && fl.page.offset == 2 * VEC_FW_CHUNK_SIZE);
  /* the third chunk is written but its offset never persisted (power lost in between) */
  fl.fail_persist = 1;
  CHECK(is(down(&u, vec_fw_chunks[2].p, vec_fw_chunks[2].n), OUTPOST_FW_NONE, OUTPOST_FW_R_FLASH));
  fl.fail_persist = 0;
  memset(fl.slot + 2 * VEC_FW_CHUNK_SIZE, 0xa5, 700); /* and the slot past the saved offset is torn */

  outpost_fw again; /* reset: everything comes back from the page */
  power_on(&again, 1);
  CHECK(again.st.phase == OUTPOST_FW_PHASE_DOWNLOADING && again.st.offset == 2 * VEC_FW_CHUNK_SIZE);
  o = outpost_fw_connected(&again);
  CHECK(is(o, OUTPOST_FW_DOWNLOADING, OUTPOST_FW_R_RESUME));
  expect_report_ok(&again, o);
  CHECK(is(down(&again, vec_fw_chunks[1].p, vec_fw_chunks[1].n), OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_CHUNK)); /* behind */
  CHECK(is(DOWN(&again, VEC_FW_BAD_CRC_CHUNK), OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_CRC));
  for (size_t i = 2; i < VEC_COUNT(vec_fw_chunks); i++) {
    o = down(&again, vec_fw_chunks[i].p, vec_fw_chunks[i].n);
    CHECK(i + 1 < VEC_COUNT(vec_fw_chunks) ? is(o, OUTPOST_FW_NONE, 0) : is(o, OUTPOST_FW_VERIFIED, 0));
  }
  CHECK(memcmp(fl.slot, PTR(VEC_FW_IMAGE), PTR_N(VEC_FW_IMAGE)) == 0);
  CHECK(again.st.phase == OUTPOST_FW_PHASE_TRIAL_PENDING && fl.page.phase == OUTPOST_FW_PHASE_TRIAL_PENDING);
  CHECK(is(down(&again, vec_fw_chunks[0].p, vec_fw_chunks[0].n), OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_CHUNK));

  outpost_fw trial; /* reset into the trial boot: the slot is hashed again, then confirmed */
  power_on(&trial, 1);
  CHECK(is(outpost_fw_boot(&trial), OUTPOST_FW_NONE, 0));
  CHECK(trial.st.phase == OUTPOST_FW_PHASE_TRIAL_BOOTED);
  o = outpost_fw_confirm(&trial);
  CHECK(is(o, OUTPOST_FW_CONFIRMED, 0));
  CHECK(trial.st.running[0] == 1 && trial.st.running[1] == 3 && trial.st.running[2] == 0 && fl.page.running[1] == 3);
  expect_report_ok(&trial, o);
  /* offered the image it runs: says so, downloads nothing */
  CHECK(is(DOWN(&trial, VEC_FW_OFFER), OUTPOST_FW_CONFIRMED, 0));
  CHECK(trial.st.phase == OUTPOST_FW_PHASE_IDLE);
  CHECK(is(outpost_fw_connected(&trial), OUTPOST_FW_CONFIRMED, 0));
}

static void download_all(outpost_fw *u, size_t tampered_index) {
  CHECK(is(DOWN(u, VEC_FW_OFFER), OUTPOST_FW_OFFERED, 0));
  for (size_t i = 0; i + 1 < VEC_COUNT(vec_fw_chunks); i++) {
    if (i == tampered_index) CHECK(is(DOWN(u, VEC_FW_TAMPERED_CHUNK), OUTPOST_FW_NONE, 0)); /* CRC fine, bytes not */
    else CHECK(is(down(u, vec_fw_chunks[i].p, vec_fw_chunks[i].n), OUTPOST_FW_NONE, 0));
  }
}
#define LAST_CHUNK vec_fw_chunks[VEC_COUNT(vec_fw_chunks) - 1]

TEST(tampered_chunk_refused) {
  outpost_fw u;
  power_on(&u, 0);
  download_all(&u, VEC_FW_TAMPERED_INDEX);
  outpost_fw_outcome o = down(&u, LAST_CHUNK.p, LAST_CHUNK.n);
  CHECK(is(o, OUTPOST_FW_FAILED, OUTPOST_FW_R_DIGEST_MISMATCH));
  CHECK(u.st.phase == OUTPOST_FW_PHASE_IDLE && u.st.running[1] == 2 && fl.page.last_state == OUTPOST_FW_FAILED);
  expect_report_ok(&u, o);
  /* the same image again: the last outcome, not a second download (firmware-sim/update.ts) */
  CHECK(is(DOWN(&u, VEC_FW_OFFER), OUTPOST_FW_FAILED, OUTPOST_FW_R_DIGEST_MISMATCH));
  CHECK(is(down(&u, vec_fw_chunks[0].p, vec_fw_chunks[0].n), OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_CHUNK));

  /* without a read-back callback the streamed SHA-256 alone refuses it */
  power_on(&u, 0);
  cfg.read = NULL;
  download_all(&u, VEC_FW_TAMPERED_INDEX);
  CHECK(is(down(&u, LAST_CHUNK.p, LAST_CHUNK.n), OUTPOST_FW_FAILED, OUTPOST_FW_R_DIGEST_MISMATCH));

  /* a slot that reads back wrong (a bad flash write) fails before install, though every chunk was right */
  power_on(&u, 0);
  download_all(&u, (size_t)-1);
  fl.slot[7] ^= 1;
  CHECK(is(down(&u, LAST_CHUNK.p, LAST_CHUNK.n), OUTPOST_FW_FAILED, OUTPOST_FW_R_DIGEST_MISMATCH));
}

TEST(trial_boot_rollback_and_recheck) {
  outpost_fw u;
  power_on(&u, 0);
  download_all(&u, (size_t)-1);
  CHECK(is(down(&u, LAST_CHUNK.p, LAST_CHUNK.n), OUTPOST_FW_VERIFIED, 0));
  power_on(&u, 1);
  CHECK(is(outpost_fw_boot(&u), OUTPOST_FW_NONE, 0)); /* trial runs ... */
  power_on(&u, 1);                                    /* ... and resets before confirming */
  CHECK(is(outpost_fw_boot(&u), OUTPOST_FW_ROLLED_BACK, OUTPOST_FW_R_NOT_CONFIRMED));
  CHECK(u.st.running[1] == 2 && !u.st.has_running_digest);
  CHECK(is(outpost_fw_confirm(&u), OUTPOST_FW_NONE, 0)); /* nothing on trial */
  CHECK(is(outpost_fw_connected(&u), OUTPOST_FW_ROLLED_BACK, OUTPOST_FW_R_NOT_CONFIRMED));

  /* the slot changed between install and the trial boot: never runs */
  power_on(&u, 0);
  download_all(&u, (size_t)-1);
  CHECK(is(down(&u, LAST_CHUNK.p, LAST_CHUNK.n), OUTPOST_FW_VERIFIED, 0));
  fl.slot[2000] ^= 0x80;
  power_on(&u, 1);
  CHECK(is(outpost_fw_boot(&u), OUTPOST_FW_FAILED, OUTPOST_FW_R_DIGEST_MISMATCH));

  /* a page that does not check (torn, erased) is a factory state */
  fl.page.offset ^= 1;
  power_on(&u, 1);
  CHECK(u.st.phase == OUTPOST_FW_PHASE_IDLE && u.st.reports == 0 && u.st.last_state == 0);
  CHECK(outpost_fw_init(&u, &cfg, NULL, "1.02.0") == OUTPOST_E_ARG);
  /* whole (CRC right) but not a state a save writes: an offset past the size is refused too */
  outpost_fw_state odd = u.st;
  odd.phase = OUTPOST_FW_PHASE_DOWNLOADING, odd.size = 10, odd.offset = 11;
  odd.crc = outpost_crc32c(0, (const uint8_t *)&odd, offsetof(outpost_fw_state, crc));
  CHECK(outpost_fw_init(&u, &cfg, &odd, VEC_FW_RUNNING) == OUTPOST_OK && u.st.phase == OUTPOST_FW_PHASE_IDLE);
  odd.offset = 10;
  odd.crc = outpost_crc32c(0, (const uint8_t *)&odd, offsetof(outpost_fw_state, crc));
  CHECK(outpost_fw_init(&u, &cfg, &odd, VEC_FW_RUNNING) == OUTPOST_OK && u.st.phase == OUTPOST_FW_PHASE_DOWNLOADING);
}

TEST(reports_byte_identical) {
  for (size_t i = 0; i < VEC_COUNT(vec_fw_reports); i++) {
    const vec_fw_report *v = &vec_fw_reports[i];
    outpost_fw u;
    power_on(&u, 0);
    CHECK(outpost_fw_init(&u, &cfg, NULL, v->running) == OUTPOST_OK);
    cfg.window = v->window;
    cfg.chunk_size = v->chunk_size;
    u.st.reports = v->n - 1;
    u.has_about = v->has_digest;
    memcpy(u.about, PTR(VEC_FW_DIGEST), 32);
    if (v->offset) u.st.phase = OUTPOST_FW_PHASE_DOWNLOADING, u.st.offset = v->offset;
    outpost_fw_outcome o = {v->state, 0};
    for (uint8_t r = 1; v->reason && r < OUTPOST_FW_R_COUNT; r++)
      if (strcmp(outpost_fw_reason_code(r), v->reason) == 0) o.reason = r;
    CHECK(!v->reason || o.reason != 0);
    outpost_device dev;
    memset(&dev, 0, sizeof dev);
    dev.crypto = &dev_crypto;
    dev.kid = (const uint8_t *)VEC_DEVICE_ID;
    dev.kid_len = strlen(VEC_DEVICE_ID);
    dev.boot = v->boot;
    uint8_t out[512];
    size_t n = 0;
    CHECK(outpost_fw_report(&u, &dev, v->time, o, v->detail, out, sizeof out, &n) == OUTPOST_OK);
    CHECK(same(out, n, v->frame.p, v->frame.n));
    if (!same(out, n, v->frame.p, v->frame.n)) hexdump(v->name, out, n), hexdump("want", v->frame.p, v->frame.n);
    CHECK(outpost_fw_report(&u, &dev, v->time, o, v->detail, out, 60, &n) == OUTPOST_E_SPACE);
  }
}

TEST(message_bounds) {
  /* every truncation of an offer and a chunk is refused without reading past it */
  outpost_fw u;
  power_on(&u, 0);
  for (size_t n = 0; n < PTR_N(VEC_FW_OFFER); n++) CHECK(down(&u, PTR(VEC_FW_OFFER), n).state != OUTPOST_FW_OFFERED);
  CHECK(u.st.phase == OUTPOST_FW_PHASE_IDLE);
  CHECK(is(DOWN(&u, VEC_FW_OFFER), OUTPOST_FW_OFFERED, 0));
  for (size_t n = 0; n < vec_fw_chunks[0].n; n++) CHECK(down(&u, vec_fw_chunks[0].p, n).reason != OUTPOST_FW_R_NONE);
  CHECK(u.st.offset == 0);
  static const uint8_t other_type[] = {0xa1, 0x00, 0x13}, dup[] = {0xa2, 0x00, 0x12, 0x00, 0x12}, not_map[] = {0x80};
  CHECK(is(down(&u, other_type, sizeof other_type), OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_MESSAGE));
  CHECK(is(down(&u, dup, sizeof dup), OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_MESSAGE));
  CHECK(is(down(&u, not_map, sizeof not_map), OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_MESSAGE));
  /* a write that fails drops the chunk; the offset stays */
  fl.fail_write = 1;
  CHECK(is(down(&u, vec_fw_chunks[0].p, vec_fw_chunks[0].n), OUTPOST_FW_NONE, OUTPOST_FW_R_FLASH));
  fl.fail_write = 0;
  CHECK(u.st.offset == 0);
  CHECK(is(down(&u, vec_fw_chunks[0].p, vec_fw_chunks[0].n), OUTPOST_FW_NONE, 0));
}

/* ---- a second release (image B), signed here with the release key ----------------------- */
static uint8_t img_b[1024], digest_b[32], manifest_b[300];
static size_t manifest_b_len;

static void make_release_b(void) {
  for (size_t i = 0; i < sizeof img_b; i++) img_b[i] = (uint8_t)(i * 13 + 1);
  crypto_hash_sha256(digest_b, img_b, sizeof img_b);
  outpost_device rel;
  memset(&rel, 0, sizeof rel);
  rel.crypto = &rel_crypto;
  rel.kid = PTR(VEC_FW_RELEASE_KID);
  rel.kid_len = OUTPOST_FW_KID_BYTES;
  size_t off = outpost_sign1_body_offset(rel.kid_len);
  outpost_cbor w; /* {0: 16, 1: model, 2: "1.4.0", 3: [-16, digest], 4: size, 5: "1.0.0", 6: slot, 7: issued} */
  outpost_cbor_init(&w, manifest_b + off, sizeof manifest_b - off);
  outpost_cbor_head(&w, 5, 8);
  outpost_cbor_uint(&w, 0), outpost_cbor_uint(&w, 16);
  outpost_cbor_uint(&w, 1), outpost_cbor_text(&w, VEC_FW_MODEL, strlen(VEC_FW_MODEL));
  outpost_cbor_uint(&w, 2), outpost_cbor_text(&w, "1.4.0", 5);
  outpost_cbor_uint(&w, 3), outpost_cbor_head(&w, 4, 2), outpost_cbor_head(&w, 1, 15), outpost_cbor_bytes(&w, digest_b, 32);
  outpost_cbor_uint(&w, 4), outpost_cbor_uint(&w, sizeof img_b);
  outpost_cbor_uint(&w, 5), outpost_cbor_text(&w, "1.0.0", 5);
  outpost_cbor_uint(&w, 6), outpost_cbor_uint(&w, VEC_FW_SLOT);
  outpost_cbor_uint(&w, 7), outpost_cbor_uint(&w, 1700000000000ull);
  CHECK(w.err == 0);
  CHECK(outpost_sign1(&rel, manifest_b, sizeof manifest_b, off, w.len, &manifest_b_len) == OUTPOST_OK);
}

/* Chunk i (512 bytes) of image B: {0: 18, 1: digest, 2: offset, 3: data, 4: CRC-32C}. */
static outpost_fw_outcome chunk_b(outpost_fw *u, size_t i) {
  uint8_t buf[700];
  outpost_cbor w;
  outpost_cbor_init(&w, buf, sizeof buf);
  outpost_cbor_head(&w, 5, 5);
  outpost_cbor_uint(&w, 0), outpost_cbor_uint(&w, 18);
  outpost_cbor_uint(&w, 1), outpost_cbor_bytes(&w, digest_b, 32);
  outpost_cbor_uint(&w, 2), outpost_cbor_uint(&w, i * 512);
  outpost_cbor_uint(&w, 3), outpost_cbor_bytes(&w, img_b + i * 512, 512);
  outpost_cbor_uint(&w, 4), outpost_cbor_uint(&w, outpost_crc32c(0, img_b + i * 512, 512));
  CHECK(w.err == 0);
  return down(u, buf, w.len);
}

TEST(stalled_download_gives_way) {
  make_release_b();
  outpost_fw u;
  power_on(&u, 0); /* no clock (no outpost_fw_tick): one update at a time, never given up */
  CHECK(is(DOWN(&u, VEC_FW_OFFER), OUTPOST_FW_OFFERED, 0));
  CHECK(is(offer_manifest(&u, manifest_b, manifest_b_len), OUTPOST_FW_NONE, 0));

  power_on(&u, 0);
  CHECK(is(outpost_fw_tick(&u, 1000), OUTPOST_FW_NONE, 0)); /* the clock starts */
  CHECK(is(DOWN(&u, VEC_FW_OFFER), OUTPOST_FW_OFFERED, 0));
  CHECK(is(down(&u, vec_fw_chunks[0].p, vec_fw_chunks[0].n), OUTPOST_FW_NONE, 0));
  CHECK(is(outpost_fw_tick(&u, 3999), OUTPOST_FW_NONE, 0));
  CHECK(is(offer_manifest(&u, manifest_b, manifest_b_len), OUTPOST_FW_NONE, 0)); /* still served: kept */
  CHECK(is(outpost_fw_tick(&u, 4000), OUTPOST_FW_DOWNLOADING, OUTPOST_FW_R_RESUME)); /* 3 s without a chunk */
  CHECK(is(outpost_fw_tick(&u, 4001), OUTPOST_FW_NONE, 0)); /* asked once per stall */
  /* its rollout aborted: another release's offer is taken, from byte 0 */
  CHECK(is(offer_manifest(&u, manifest_b, manifest_b_len), OUTPOST_FW_OFFERED, 0));
  CHECK(u.st.phase == OUTPOST_FW_PHASE_DOWNLOADING && u.st.offset == 0 && memcmp(fl.page.digest, digest_b, 32) == 0);
  CHECK(is(down(&u, vec_fw_chunks[1].p, vec_fw_chunks[1].n), OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_CHUNK)); /* A's: dropped */
  CHECK(is(chunk_b(&u, 0), OUTPOST_FW_NONE, 0));
  CHECK(is(chunk_b(&u, 1), OUTPOST_FW_VERIFIED, 0));
  CHECK(memcmp(fl.slot, img_b, sizeof img_b) == 0);
  power_on(&u, 1);
  CHECK(is(outpost_fw_boot(&u), OUTPOST_FW_NONE, 0) && is(outpost_fw_confirm(&u), OUTPOST_FW_CONFIRMED, 0));
  CHECK(u.st.running[1] == 4);
}

TEST(abandoned_download_resumes_or_is_replaced) {
  make_release_b();
  outpost_fw u;
  power_on(&u, 0);
  cfg.abandon_ms = 20000;
  CHECK(is(outpost_fw_tick(&u, 0xfffff000u), OUTPOST_FW_NONE, 0)); /* the clock wraps on the way: still counts */
  CHECK(is(DOWN(&u, VEC_FW_OFFER), OUTPOST_FW_OFFERED, 0));
  CHECK(is(down(&u, vec_fw_chunks[0].p, vec_fw_chunks[0].n), OUTPOST_FW_NONE, 0));
  CHECK(is(down(&u, vec_fw_chunks[1].p, vec_fw_chunks[1].n), OUTPOST_FW_NONE, 0));
  unsigned resumes = 0;
  outpost_fw_outcome o = {OUTPOST_FW_NONE, 0};
  uint32_t t = 0xfffff000u;
  while (o.state != OUTPOST_FW_IDLE && resumes < 100) {
    t += 500;
    o = outpost_fw_tick(&u, t);
    if (is(o, OUTPOST_FW_DOWNLOADING, OUTPOST_FW_R_RESUME)) resumes++;
  }
  CHECK(is(o, OUTPOST_FW_IDLE, OUTPOST_FW_R_ABANDONED) && t - 0xfffff000u == 20000 && resumes == 6);
  CHECK(u.has_about && memcmp(u.about, PTR(VEC_FW_DIGEST), 32) == 0); /* the report names the download given up */
  expect_report_ok(&u, o);
  CHECK(fl.page.phase == OUTPOST_FW_PHASE_ABANDONED && fl.page.offset == 2 * VEC_FW_CHUNK_SIZE);
  CHECK(is(outpost_fw_tick(&u, t + 60000), OUTPOST_FW_NONE, 0)); /* idle now: nothing more */

  outpost_fw again; /* reset: still given up; its chunks are dropped until it is offered again */
  power_on(&again, 1);
  CHECK(again.st.phase == OUTPOST_FW_PHASE_ABANDONED && again.st.magic == 0x3257464fu);
  CHECK(is(outpost_fw_connected(&again), OUTPOST_FW_IDLE, 0));
  CHECK(is(down(&again, vec_fw_chunks[2].p, vec_fw_chunks[2].n), OUTPOST_FW_NONE, OUTPOST_FW_R_BAD_CHUNK));
  /* offered the same release again: resumes from the bytes (and hash state) it kept */
  CHECK(is(DOWN(&again, VEC_FW_OFFER), OUTPOST_FW_OFFERED, 0));
  CHECK(again.st.phase == OUTPOST_FW_PHASE_DOWNLOADING && again.st.offset == 2 * VEC_FW_CHUNK_SIZE);
  for (size_t i = 2; i < VEC_COUNT(vec_fw_chunks); i++) {
    o = down(&again, vec_fw_chunks[i].p, vec_fw_chunks[i].n);
    CHECK(i + 1 < VEC_COUNT(vec_fw_chunks) ? is(o, OUTPOST_FW_NONE, 0) : is(o, OUTPOST_FW_VERIFIED, 0));
  }
  CHECK(memcmp(fl.slot, PTR(VEC_FW_IMAGE), PTR_N(VEC_FW_IMAGE)) == 0);

  /* given up, then another release is offered: taken at once (nothing is under way) */
  power_on(&u, 0);
  cfg.abandon_ms = 5000;
  outpost_fw_tick(&u, 0);
  CHECK(is(DOWN(&u, VEC_FW_OFFER), OUTPOST_FW_OFFERED, 0));
  CHECK(is(outpost_fw_tick(&u, 5000), OUTPOST_FW_IDLE, OUTPOST_FW_R_ABANDONED));
  CHECK(is(offer_manifest(&u, manifest_b, manifest_b_len), OUTPOST_FW_OFFERED, 0));
  CHECK(u.st.offset == 0 && memcmp(u.st.digest, digest_b, 32) == 0);
}

TEST(state_format_versions) {
  outpost_fw u;
  power_on(&u, 0);
  CHECK(is(DOWN(&u, VEC_FW_OFFER), OUTPOST_FW_OFFERED, 0));
  CHECK(is(down(&u, vec_fw_chunks[0].p, vec_fw_chunks[0].n), OUTPOST_FW_NONE, 0));
  CHECK(fl.page.magic == 0x3257464fu); /* "OFW2" */
  /* a page an earlier receiver wrote ("OFW1", the same layout): taken, written as OFW2 from then on */
  outpost_fw_state v1 = fl.page;
  v1.magic = 0x3157464fu;
  v1.crc = outpost_crc32c(0, (const uint8_t *)&v1, offsetof(outpost_fw_state, crc));
  CHECK(outpost_fw_init(&u, &cfg, &v1, VEC_FW_RUNNING) == OUTPOST_OK);
  CHECK(u.st.phase == OUTPOST_FW_PHASE_DOWNLOADING && u.st.offset == VEC_FW_CHUNK_SIZE);
  CHECK(is(down(&u, vec_fw_chunks[1].p, vec_fw_chunks[1].n), OUTPOST_FW_NONE, 0));
  CHECK(fl.page.magic == 0x3257464fu);
  /* OFW1 had no phase ABANDONED: such a page is not one it wrote (factory state) */
  v1.phase = OUTPOST_FW_PHASE_ABANDONED;
  v1.crc = outpost_crc32c(0, (const uint8_t *)&v1, offsetof(outpost_fw_state, crc));
  CHECK(outpost_fw_init(&u, &cfg, &v1, VEC_FW_RUNNING) == OUTPOST_OK && u.st.phase == OUTPOST_FW_PHASE_IDLE);
  CHECK(outpost_fw_reason_code(OUTPOST_FW_R_ABANDONED)[0] == 'a' && strcmp(outpost_fw_reason_code(OUTPOST_FW_R_ABANDONED), "abandoned") == 0);
}

int main(void) {
  if (outpost_sodium_init(&dev_crypto, dev_sk, dev_pk, PTR(VEC_DEVICE_SEED)) != 0 ||
      outpost_sodium_init(&rel_crypto, rel_sk, rel_pk, PTR(VEC_FW_RELEASE_SEED)) != 0 ||
      outpost_sodium_init(&other_crypto, other_sk, other_pk, PTR(VEC_FW_OTHER_SEED)) != 0) {
    fprintf(stderr, "libsodium init failed\n");
    return 2;
  }
  cur = "keys [firmware-vectors.json update.release]";
  CHECK(memcmp(rel_pk, PTR(VEC_FW_RELEASE_PK), 32) == 0);
  RUN(sha256_vectors, "FIPS 180-4 examples, libsodium crypto_hash_sha256");
  RUN(release_key_id, "firmware-manifest.ts releaseKeyId: SHA-256(pk)[0..8)");
  RUN(manifests_refused_with_ts_codes, "firmware-manifest.ts verifyManifest + manifestRefusal codes");
  RUN(wrong_release_key_and_every_bit_flip, "RFC 9052 §4.4, preferred-encoding envelope");
  RUN(download_interrupted_and_resumed, "firmware-sim/update.ts: resume from the persisted offset, trial boot, confirm");
  RUN(tampered_chunk_refused, "firmware-transfer.ts CRC-32C; SHA-256 before install");
  RUN(trial_boot_rollback_and_recheck, "firmware-sim/update.ts: MCUboot-like revert, digest at trial boot");
  RUN(reports_byte_identical, "firmware-transfer.ts encodeReport in a device COSE_Sign1");
  RUN(message_bounds, "firmware-transfer.ts decodeDown, bounds checks");
  RUN(stalled_download_gives_way, "firmware-sim/update.ts: a download without chunks for stallMs gives way to another offer");
  RUN(abandoned_download_resumes_or_is_replaced, "firmware-sim/update.ts: given up after abandonMs, resumed when offered again");
  RUN(state_format_versions, "persisted state: OFW2, an OFW1 page taken");
  printf("%d tests, %d checks, %d failed\n", tests, checks, failures);
  return failures ? 1 : 0;
}
