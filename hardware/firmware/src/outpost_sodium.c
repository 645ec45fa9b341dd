/*
 * Ed25519 through libsodium (Linux hosts, ESP-IDF's libsodium component).
 * The ctx is a 64-byte libsodium secret key (seed ‖ public key), as made by
 * outpost_sodium_keypair; verify does not need it.
 */
#include "outpost_sodium.h"

#include <sodium.h>

static int sodium_sign(void *ctx, uint8_t sig[OUTPOST_SIG_BYTES], const uint8_t *msg, size_t len) {
  return crypto_sign_detached(sig, NULL, msg, len, (const unsigned char *)ctx);
}

static int sodium_verify(void *ctx, const uint8_t sig[OUTPOST_SIG_BYTES], const uint8_t *msg, size_t len,
                         const uint8_t pk[OUTPOST_PK_BYTES]) {
  (void)ctx;
  return crypto_sign_verify_detached(sig, msg, len, pk);
}

int outpost_sodium_init(outpost_crypto *c, uint8_t sk[64], uint8_t pk[32], const uint8_t seed[32]) {
  if (sodium_init() < 0) return -1;
  if (crypto_sign_seed_keypair(pk, sk, seed) != 0) return -1;
  c->sign = sodium_sign;
  c->verify = sodium_verify;
  c->ctx = sk;
  return 0;
}
