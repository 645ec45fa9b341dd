/*
 * Differential check of the update receiver against protocols/firmware-manifest.ts:
 *
 *   fw-check RELEASE_PK_HEX MODEL RUNNING_VERSION SLOT < manifests (hex, one a line)
 *
 * For each manifest prints the answer a fresh device (libsodium verify) gives its offer:
 * "ok" (taken) or the refusal code. test/integration/firmware-c-manifest.test.ts feeds it
 * fast-check manifests and compares with verifyManifest + manifestRefusal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outpost_sodium.h"
#include "outpost_update.h"

static int nop_write(void *ctx, uint32_t off, const uint8_t *d, size_t n) { return (void)ctx, (void)off, (void)d, (void)n, 0; }
static int nop_persist(void *ctx, const outpost_fw_state *st) { return (void)ctx, (void)st, 0; }

static size_t unhex(const char *s, uint8_t *out, size_t cap) {
  size_t n = strlen(s) / 2;
  if (n > cap) return (size_t)-1;
  for (size_t i = 0; i < n; i++) {
    unsigned x;
    if (sscanf(s + 2 * i, "%2x", &x) != 1) return (size_t)-1;
    out[i] = (uint8_t)x;
  }
  return n;
}

int main(int argc, char **argv) {
  uint8_t pk[32], sk[64], spk[32], seed[32] = {0};
  outpost_crypto crypto;
  if (argc != 5 || unhex(argv[1], pk, 32) != 32 || outpost_sodium_init(&crypto, sk, spk, seed)) return 2;
  outpost_fw_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.crypto = &crypto;
  cfg.release_pk = pk;
  cfg.model = argv[2];
  cfg.slot = (uint8_t)atoi(argv[4]);
  cfg.write = nop_write;
  cfg.persist = nop_persist;
  static char line[8192];
  static uint8_t m[4096], msg[4200];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\r\n")] = 0;
    size_t n = unhex(line, m, sizeof m);
    outpost_fw fw;
    outpost_fw_manifest mf;
    if (n == (size_t)-1 || outpost_fw_init(&fw, &cfg, NULL, argv[3]) != OUTPOST_OK) return 2;
    uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan catches an over-read */
    memcpy(copy, m, n);
    uint8_t r = outpost_fw_check_manifest(&fw, copy, n, &mf);
    free(copy);
    if (r) {
      printf("%s\n", outpost_fw_reason_code(r));
      continue;
    }
    outpost_cbor w; /* taken by the check: now as an offer, for the device's refusals */
    outpost_cbor_init(&w, msg, sizeof msg);
    outpost_cbor_head(&w, 5, 3);
    outpost_cbor_uint(&w, 0), outpost_cbor_uint(&w, 17);
    outpost_cbor_uint(&w, 1), outpost_cbor_bytes(&w, m, n);
    outpost_cbor_uint(&w, 2), outpost_cbor_text(&w, "r", 1);
    outpost_fw_outcome o = outpost_fw_down(&fw, msg, w.len);
    printf("%s\n", o.state == OUTPOST_FW_OFFERED ? "ok" : o.state == OUTPOST_FW_FAILED ? outpost_fw_reason_code(o.reason) : "?");
  }
  return 0;
}
