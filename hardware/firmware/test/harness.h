/* The unit tests' harness: CHECK counts and reports, RUN names a test and the clause it checks. */
#ifndef OUTPOST_TEST_HARNESS_H
#define OUTPOST_TEST_HARNESS_H
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int failures, checks, tests;
#define CHECK(c)                                                                   \
  do {                                                                             \
    checks++;                                                                      \
    if (!(c)) {                                                                    \
      failures++;                                                                  \
      fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, cur, #c); \
    }                                                                              \
  } while (0)
static const char *cur = "";
#define TEST(name) static void name(void)
#define RUN(name, clause)            \
  do {                               \
    cur = #name " [" clause "]";     \
    tests++;                         \
    name();                          \
  } while (0)

#define PTR(x) PTR_(x)
#define PTR_(p, n) (p)

static inline int same(const uint8_t *a, size_t na, const uint8_t *b, size_t nb) { return na == nb && memcmp(a, b, na) == 0; }
static inline void hexdump(const char *what, const uint8_t *p, size_t n) {
  fprintf(stderr, "  %s: ", what);
  for (size_t i = 0; i < n; i++) fprintf(stderr, "%02x", p[i]);
  fprintf(stderr, "\n");
}
#endif
