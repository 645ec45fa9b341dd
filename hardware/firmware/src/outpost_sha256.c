/* SHA-256 after FIPS 180-4 §6.2; small rather than fast (no unrolling). */
#include "outpost_sha256.h"

#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
    0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
    0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
    0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
    0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
    0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror(uint32_t x, unsigned n) { return x >> n | x << (32 - n); }

/* The message schedule kept as a ring of 16 words (FIPS 180-4 §6.2.2 step 1 in place): 192
 * bytes less stack than w[64], which matters on the deepest path (a chunk's read-back). */
static void block(uint32_t h[8], const uint8_t *p) {
  uint32_t w[16], v[8];
  for (int t = 0; t < 16; t++) w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
  memcpy(v, h, sizeof v);
  for (int t = 0; t < 64; t++) { /* v = a b c d e f g h */
    int j = t & 15;
    if (t >= 16) {
      uint32_t x = w[(j + 1) & 15], y = w[(j + 14) & 15];
      w[j] += (ror(x, 7) ^ ror(x, 18) ^ (x >> 3)) + w[(j + 9) & 15] + (ror(y, 17) ^ ror(y, 19) ^ (y >> 10));
    }
    uint32_t t1 = v[7] + (ror(v[4], 6) ^ ror(v[4], 11) ^ ror(v[4], 25)) + ((v[4] & v[5]) ^ (~v[4] & v[6])) + K[t] + w[j];
    uint32_t t2 = (ror(v[0], 2) ^ ror(v[0], 13) ^ ror(v[0], 22)) + ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
    memmove(v + 1, v, 7 * sizeof v[0]);
    v[4] += t1;
    v[0] = t1 + t2;
  }
  for (int i = 0; i < 8; i++) h[i] += v[i];
}

void outpost_sha256_init(outpost_sha256 *s) {
  static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(s->h, H0, sizeof H0);
  s->len = 0;
}

void outpost_sha256_update(outpost_sha256 *s, const uint8_t *data, size_t n) {
  while (n) {
    size_t at = (size_t)(s->len & 63), k = 64 - at < n ? 64 - at : n;
    memcpy(s->buf + at, data, k);
    s->len += k;
    data += k;
    n -= k;
    if (at + k == 64) block(s->h, s->buf);
  }
}

void outpost_sha256_final(outpost_sha256 *s, uint8_t out[32]) {
  uint64_t bits = s->len * 8;
  size_t at = (size_t)(s->len & 63);
  s->buf[at++] = 0x80;
  if (at > 56) {
    memset(s->buf + at, 0, 64 - at);
    block(s->h, s->buf);
    at = 0;
  }
  memset(s->buf + at, 0, 56 - at);
  for (int i = 0; i < 8; i++) s->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
  block(s->h, s->buf);
  for (int i = 0; i < 32; i++) out[i] = (uint8_t)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}
