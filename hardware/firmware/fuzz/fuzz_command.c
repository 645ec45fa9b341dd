/*
 * libFuzzer target for everything a gateway (or an attacker on the wire) can
 * send a device: the input is a byte stream fed to the deframer; each frame it
 * yields goes through COSE_Sign1 parsing, the in-place Sig_structure rebuild
 * (with a verify callback that accepts everything, so the body parser behind it
 * is reached), and the downlink body parser. The raw input is also given to the
 * body parser and the COSE parser directly. ASan/UBSan turn any out-of-bounds
 * access or undefined behaviour into a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outpost.h"

static int accept_all(void *ctx, const uint8_t sig[OUTPOST_SIG_BYTES], const uint8_t *msg, size_t len, const uint8_t pk[OUTPOST_PK_BYTES]) {
  (void)ctx, (void)pk;
  volatile uint8_t x = sig[0] ^ sig[OUTPOST_SIG_BYTES - 1]; /* the signature and message must be readable */
  for (size_t i = 0; i < len; i++) x ^= msg[i];
  (void)x;
  return 0;
}

static void downlink(const uint8_t *payload, size_t len) {
  outpost_command c;
  outpost_frame_ack a;
  int t = outpost_parse_downlink(payload, len, &c, &a);
  if (t == OUTPOST_BODY_COMMAND) {
    static const uint8_t kid[] = "fw-dev-1";
    outpost_device dev;
    memset(&dev, 0, sizeof dev);
    dev.kid = kid;
    dev.kid_len = sizeof kid - 1;
    volatile uint8_t x = c.id[c.id_len - 1] ^ (uint8_t)c.target[c.target_len - 1] ^ (uint8_t)c.actuator[c.actuator_len - 1];
    if (c.value_kind == OUTPOST_VALUE_TEXT && c.value_text_len) x ^= (uint8_t)c.value_text[c.value_text_len - 1];
    (void)x;
    (void)outpost_command_check(&dev, &c, 1);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static outpost_deframer d;
  static const uint8_t pk[OUTPOST_PK_BYTES];
  static const outpost_crypto crypto = {NULL, accept_all, NULL};
  outpost_device dev;
  memset(&dev, 0, sizeof dev);
  dev.crypto = &crypto;
  dev.gateway_pk = pk;

  /* direct: exact-size heap copies so any over-read is caught */
  uint8_t *copy = malloc(size ? size : 1);
  memcpy(copy, data, size);
  downlink(copy, size);
  outpost_sign1_view v;
  if (outpost_parse_sign1(copy, size, &v) == OUTPOST_OK) downlink(v.payload, v.payload_len);
  free(copy);

  /* in place, with exactly the documented headroom */
  if (size <= OUTPOST_MAX_FRAME) {
    uint8_t *buf = malloc(OUTPOST_VERIFY_HEADROOM + size + 1);
    memcpy(buf + OUTPOST_VERIFY_HEADROOM, data, size);
    if (outpost_verify_sign1(&dev, buf + OUTPOST_VERIFY_HEADROOM, size, &v) == OUTPOST_OK) downlink(v.payload, v.payload_len);
    free(buf);
  }

  /* as a serial stream */
  outpost_deframer_init(&d);
  size_t off = 0;
  while (off < size) {
    uint8_t *f;
    size_t fl;
    off += outpost_deframer_push(&d, data + off, size - off, &f, &fl);
    if (f && outpost_verify_sign1(&dev, f, fl, &v) == OUTPOST_OK) downlink(v.payload, v.payload_len);
  }
  return 0;
}
