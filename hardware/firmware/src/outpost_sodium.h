/* libsodium adapter for outpost_crypto. */
#ifndef OUTPOST_SODIUM_H
#define OUTPOST_SODIUM_H
#include "outpost.h"
/* Derives the key pair from a 32-byte seed (RFC 8032 private key) into sk/pk and
 * points c at libsodium's Ed25519; sk must outlive c. Returns 0 on success. */
int outpost_sodium_init(outpost_crypto *c, uint8_t sk[64], uint8_t pk[32], const uint8_t seed[32]);
#endif
