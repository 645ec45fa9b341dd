/* Writes the shared vectors (frames, wire bytes, bodies) as a libFuzzer seed corpus. */
#include <stdio.h>

#include "outpost.h"
#include "../test/vectors.h"

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

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  for (size_t i = 0; i < VEC_COUNT(vec_commands); i++) put(argv[1], vec_commands[i].frame), put(argv[1], vec_commands[i].wire), put(argv[1], vec_commands[i].body);
  for (size_t i = 0; i < VEC_COUNT(vec_frame_acks); i++) put(argv[1], vec_frame_acks[i].frame), put(argv[1], vec_frame_acks[i].wire), put(argv[1], vec_frame_acks[i].body);
  printf("%d seeds\n", n);
  return 0;
}
