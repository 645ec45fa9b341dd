/*
 * libFuzzer target for the update receiver: everything a gateway (or an attacker on
 * the link) can send it. The first input byte picks options (bit 0: reset and reload
 * the persisted state after each message; bit 1: no read-back callback; bit 2: boot,
 * confirm and connect at the end; bit 3: outpost_fw_tick before each message, the clock
 * advancing 7 ms per byte, so stalls, give-ways and give-ups happen); the rest is messages, each a 2-byte big-endian
 * length and the bytes, given to outpost_fw_down as exact-size heap copies. The raw
 * input also goes to outpost_fw_check_manifest and outpost_fw_down. The verify
 * callback accepts every signature, so a manifest with the release key id reaches the
 * download; every outcome is encoded as a report. ASan/UBSan turn any out-of-bounds
 * access or undefined behaviour into a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outpost_update.h"
#include "../test/update_vectors.h"

static int accept_all(void *ctx, const uint8_t sig[OUTPOST_SIG_BYTES], const uint8_t *msg, size_t len, const uint8_t pk[OUTPOST_PK_BYTES]) {
  (void)ctx, (void)pk;
  volatile uint8_t x = sig[0] ^ sig[OUTPOST_SIG_BYTES - 1]; /* the signature and message must be readable */
  for (size_t i = 0; i < len; i++) x ^= msg[i];
  (void)x;
  return 0;
}
static int zero_sign(void *ctx, uint8_t sig[OUTPOST_SIG_BYTES], const uint8_t *msg, size_t len) {
  (void)ctx, (void)msg, (void)len;
  memset(sig, 0, OUTPOST_SIG_BYTES);
  return 0;
}

static uint8_t slot[8192];
static outpost_fw_state page;
static int has_page;
static int slot_write(void *ctx, uint32_t off, const uint8_t *d, size_t n) {
  (void)ctx;
  if (off > sizeof slot || n > sizeof slot - off) return -1;
  memcpy(slot + off, d, n);
  return 0;
}
static int slot_read(void *ctx, uint32_t off, uint8_t *d, size_t n) {
  (void)ctx;
  if (off > sizeof slot || n > sizeof slot - off) return -1;
  memcpy(d, slot + off, n);
  return 0;
}
static int persist(void *ctx, const outpost_fw_state *st) {
  (void)ctx;
  page = *st;
  has_page = 1;
  return 0;
}

static const outpost_crypto crypto = {zero_sign, accept_all, NULL};
#define PK_(p, n) (p)
#define PK(v) PK_(v)

static void report(outpost_fw *u, outpost_fw_outcome o) {
  static const uint8_t kid[] = "fw-dev-1";
  outpost_device dev;
  uint8_t out[400];
  size_t n;
  if (o.state == OUTPOST_FW_NONE) return;
  memset(&dev, 0, sizeof dev);
  dev.crypto = &crypto;
  dev.kid = kid;
  dev.kid_len = sizeof kid - 1;
  (void)outpost_fw_report(u, &dev, 1, o, o.reason ? "detail" : NULL, out, sizeof out, &n);
}

static outpost_fw_outcome down(outpost_fw *u, const uint8_t *data, size_t n) {
  uint8_t *copy = malloc(n ? n : 1);
  memcpy(copy, data, n);
  outpost_fw_outcome o = outpost_fw_down(u, copy, n);
  free(copy);
  report(u, o);
  return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  outpost_fw_config cfg;
  outpost_fw u;
  memset(&cfg, 0, sizeof cfg);
  cfg.crypto = &crypto;
  cfg.release_pk = PK(VEC_FW_RELEASE_PK);
  cfg.model = VEC_FW_MODEL;
  cfg.slot = VEC_FW_SLOT;
  cfg.window = 8;
  cfg.chunk_size = 512;
  cfg.write = slot_write;
  cfg.read = size && (data[0] & 2) ? NULL : slot_read;
  cfg.persist = persist;
  has_page = 0;
  if (outpost_fw_init(&u, &cfg, NULL, VEC_FW_RUNNING) != OUTPOST_OK) abort();

  /* raw: a manifest, and a message */
  uint8_t *copy = malloc(size ? size : 1);
  memcpy(copy, data, size);
  outpost_fw_manifest m;
  if (outpost_fw_check_manifest(&u, copy, size, &m) == OUTPOST_FW_R_NONE) {
    volatile uint8_t x = m.digest[31] ^ (uint8_t)m.model[m.model_len - 1];
    (void)x;
  }
  free(copy);
  (void)down(&u, data, size);

  /* a sequence of messages on a fresh device */
  if (size == 0) return 0;
  uint8_t opt = data[0];
  /* opt & 8: a clock ticks before each message (a stall every 100 ms, given up after 1 s) */
  cfg.stall_ms = opt & 8 ? 100 : 0;
  cfg.abandon_ms = opt & 8 ? 1000 : 0;
  uint32_t t = 0;
  has_page = 0;
  if (outpost_fw_init(&u, &cfg, NULL, VEC_FW_RUNNING) != OUTPOST_OK) abort();
  for (size_t at = 1; at + 2 <= size;) {
    size_t n = (size_t)data[at] << 8 | data[at + 1];
    at += 2;
    if (n > size - at) n = size - at;
    if (opt & 8) report(&u, outpost_fw_tick(&u, t += (uint32_t)n * 7u));
    (void)down(&u, data + at, n);
    at += n;
    if ((opt & 1) && outpost_fw_init(&u, &cfg, has_page ? &page : NULL, VEC_FW_RUNNING) != OUTPOST_OK) abort();
  }
  if (opt & 4) {
    report(&u, outpost_fw_boot(&u));
    report(&u, outpost_fw_confirm(&u));
    report(&u, outpost_fw_connected(&u));
  }
  return 0;
}
