/*
 * SHA-256 (FIPS 180-4), streaming, for the update receiver: written for this tree
 * (no third-party code), checked against the FIPS 180-4 / NIST CAVP examples and
 * libsodium in test/test_update.c. A firmware with a hash peripheral can keep its
 * own and feed the receiver the same way (see README, "Update receiver").
 */
#ifndef OUTPOST_SHA256_H
#define OUTPOST_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  uint32_t h[8];
  uint64_t len; /* bytes hashed so far */
  uint8_t buf[64];
} outpost_sha256;

void outpost_sha256_init(outpost_sha256 *s);
void outpost_sha256_update(outpost_sha256 *s, const uint8_t *data, size_t n);
/* Writes the digest; s is spent (init it again to reuse). */
void outpost_sha256_final(outpost_sha256 *s, uint8_t out[32]);

#ifdef __cplusplus
}
#endif
#endif
