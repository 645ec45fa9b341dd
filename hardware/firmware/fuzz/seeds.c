/* Writes the shared vectors as libFuzzer seed corpora: `seeds DIR` for the command
 * target (frames, wire bytes, bodies), `seeds DIR update` for the update target
 * (offers, chunks, manifests, and whole transfers in its length-prefixed format). */
#include <stdio.h>
#include <string.h>

#include "outpost.h"
#include "../test/update_vectors.h"

static int n;
static void put(const char *dir, vec_bytes b) {
  char path[512];
  snprintf(path, sizeof path, "%s/seed-%03d", dir, n++);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(b.p, 1, b.n, f) != b.n) {
    perror(path);
  }
  if (f) fclose(f);
}

static uint8_t seq[8192];
static size_t seq_len;
static void add(vec_bytes b) {
  if (seq_len + 2 + b.n > sizeof seq) return;
  seq[seq_len++] = (uint8_t)(b.n >> 8);
  seq[seq_len++] = (uint8_t)b.n;
  memcpy(seq + seq_len, b.p, b.n);
  seq_len += b.n;
}
#define VB_(p, len) ((vec_bytes){p, len})
#define VB(v) VB_(v)

/* A whole transfer: options byte, the offer, the chunks (one of them tampered, or none). */
static void transfer(const char *dir, uint8_t opt, size_t tampered) {
  seq[0] = opt;
  seq_len = 1;
  add(VB(VEC_FW_OFFER));
  for (size_t i = 0; i < VEC_COUNT(vec_fw_chunks); i++) add(i == tampered ? VB(VEC_FW_TAMPERED_CHUNK) : vec_fw_chunks[i]);
  put(dir, (vec_bytes){seq, seq_len});
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[2], "update") == 0) {
    transfer(argv[1], 4, (size_t)-1);
    transfer(argv[1], 5, (size_t)-1);
    transfer(argv[1], 6, VEC_FW_TAMPERED_INDEX);
    put(argv[1], VB(VEC_FW_OFFER));
    put(argv[1], VB(VEC_FW_BAD_CRC_CHUNK));
    for (size_t i = 0; i < VEC_COUNT(vec_fw_chunks); i++) put(argv[1], vec_fw_chunks[i]);
    for (size_t i = 0; i < VEC_COUNT(vec_fw_manifests); i++) put(argv[1], vec_fw_manifests[i].manifest);
  } else if (argc == 2) {
    for (size_t i = 0; i < VEC_COUNT(vec_commands); i++) put(argv[1], vec_commands[i].frame), put(argv[1], vec_commands[i].wire), put(argv[1], vec_commands[i].body);
    for (size_t i = 0; i < VEC_COUNT(vec_frame_acks); i++) put(argv[1], vec_frame_acks[i].frame), put(argv[1], vec_frame_acks[i].wire), put(argv[1], vec_frame_acks[i].body);
  } else {
    return 2;
  }
  printf("%d seeds\n", n);
  return 0;
}
