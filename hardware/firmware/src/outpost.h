/*
 * Outpost firmware companion: speaks the Outpost wire format from a microcontroller.
 *
 *   frame   = COSE_Sign1 (RFC 9052 §4.2), tag 18, protected {1:-8} (EdDSA), unprotected {4: kid}
 *   reading = {0:1, 1:boot, 2:seq, 3?:time_ms, 4:[SenML records, RFC 8428 §6 integer labels]}
 *   cmd-ack = {0:3, 1:boot, 2:seq, 3?:time_ms, 8:command id, 15:status}
 *   command = {0:2, 8:id, 9:target, 10:actuator, 11:value, 12:expires_ms, 13:issued_ms, 14?:fence}
 *   f-ack   = {0:4, 1:boot, 2:seq, 15:status}
 *   serial  = COBS(frame || CRC-32C(frame) little-endian) 0x00
 *
 * C99, no malloc, no global state: every buffer is the caller's. The only
 * dependency is an Ed25519 implementation plugged in through outpost_crypto
 * (outpost_sodium.c adapts libsodium; ESP-IDF ships libsodium too).
 * Every function that reads bytes from the wire is bounds-checked and returns
 * an error code instead of reading past its input.
 */
#ifndef OUTPOST_H
#define OUTPOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- limits (override with -D) ------------------------------------------ */
#ifndef OUTPOST_MAX_FRAME
#define OUTPOST_MAX_FRAME 512 /* largest COSE_Sign1 the deframer takes */
#endif
#define OUTPOST_MAX_KID 64
#define OUTPOST_SIG_BYTES 64
#define OUTPOST_PK_BYTES 32
/* Writable bytes a frame needs in front of it for outpost_verify_sign1 (it
 * rebuilds the Sig_structure in place, reaching at most 7 bytes before the
 * frame); the deframer reserves them. */
#define OUTPOST_VERIFY_HEADROOM 8
/* Wire bytes for a frame of n bytes: COBS(n + 4 CRC bytes) + delimiter. */
#define OUTPOST_WIRE_MAX(n) ((n) + 4 + ((n) + 4) / 254 + 2)

/* ---- errors --------------------------------------------------------------- */
typedef enum {
  OUTPOST_OK = 0,
  OUTPOST_E_SPACE = -1,     /* output buffer too small */
  OUTPOST_E_ARG = -2,       /* caller misuse (NULL, bad length, non-finite number) */
  OUTPOST_E_CBOR = -3,      /* malformed or truncated CBOR, or beyond a limit */
  OUTPOST_E_COSE = -4,      /* not a COSE_Sign1 we accept (tag, alg, kid, sizes) */
  OUTPOST_E_SIGNATURE = -5, /* Ed25519 verification failed */
  OUTPOST_E_BODY = -6,      /* body fields missing, wrong type or out of range */
  OUTPOST_E_CRYPTO = -7,    /* the sign callback failed */
  OUTPOST_E_KID = -8        /* signed by someone other than the expected gateway */
} outpost_err;

/* Ack status codes (protocols/frame.ts AckStatus). */
enum {
  OUTPOST_ACK_OK = 0,
  OUTPOST_ACK_DUPLICATE = 1,
  OUTPOST_ACK_REJECTED = 2,
  OUTPOST_ACK_BAD_SIGNATURE = 3,
  OUTPOST_ACK_EXPIRED = 4,
  OUTPOST_ACK_REPLAYED = 5,
  OUTPOST_ACK_FAILED = 6, /* frame-ack: not final, keep the frame and resend */
  OUTPOST_ACK_UNKNOWN_ACTUATOR = 7
};

/* ---- crypto callbacks ------------------------------------------------------ */
/* Ed25519 (RFC 8032, pure): sign msg with the device key; return 0 on success. */
typedef int (*outpost_sign_fn)(void *ctx, uint8_t sig[OUTPOST_SIG_BYTES], const uint8_t *msg, size_t len);
/* Ed25519 verify under pk; return 0 when the signature is valid. */
typedef int (*outpost_verify_fn)(void *ctx, const uint8_t sig[OUTPOST_SIG_BYTES], const uint8_t *msg, size_t len,
                                 const uint8_t pk[OUTPOST_PK_BYTES]);
typedef struct {
  outpost_sign_fn sign;
  outpost_verify_fn verify;
  void *ctx; /* passed to both: the device secret key, a hardware handle, ... */
} outpost_crypto;

/* ---- CRC-32C and COBS -------------------------------------------------------- */
/* CRC-32C (Castagnoli, RFC 3720 B.4); start with crc = 0, chain by passing the last value. */
uint32_t outpost_crc32c(uint32_t crc, const uint8_t *data, size_t len);
/* COBS-encodes in[0..n) into out (no delimiter); returns the length or 0 if cap is too small. */
size_t outpost_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);
/* Serial wire bytes: COBS(frame || CRC-32C LE) 0x00. Returns the length, 0 if cap is too small. */
size_t outpost_wire_encode(const uint8_t *frame, size_t n, uint8_t *out, size_t cap);

/* Streaming deframer: COBS-decodes into one fixed buffer, checks the CRC. */
typedef struct {
  uint32_t frames, bad_crc, bad_cobs, runt, oversize, discarded_bytes;
} outpost_deframer_stats;
typedef struct {
  uint8_t buf[OUTPOST_VERIFY_HEADROOM + OUTPOST_MAX_FRAME + 4];
  uint16_t len;    /* decoded bytes after the headroom */
  uint8_t left;    /* data bytes left in the current COBS block */
  uint8_t zero;    /* a 0x00 is due before the next block */
  uint8_t skip;    /* dropping until the next delimiter */
  uint8_t started; /* a code byte has been seen */
  outpost_deframer_stats stats;
} outpost_deframer;
void outpost_deframer_init(outpost_deframer *d);
/* Feeds bytes. Returns the number of bytes consumed; when it stops at the end of
 * a good frame it sets *frame / *len (the frame stays valid until the next call,
 * with OUTPOST_VERIFY_HEADROOM writable bytes before it). Call again with the
 * rest of the input. *frame is NULL when all input was consumed without a frame. */
size_t outpost_deframer_push(outpost_deframer *d, const uint8_t *in, size_t n, uint8_t **frame, size_t *len);

/* ---- CBOR writer (the heads Outpost needs; RFC 8949 shortest form) ----------- */
typedef struct {
  uint8_t *buf;
  size_t cap, len;
  int err; /* sticky: OUTPOST_E_SPACE or OUTPOST_E_ARG */
} outpost_cbor;
void outpost_cbor_init(outpost_cbor *w, uint8_t *buf, size_t cap);
void outpost_cbor_head(outpost_cbor *w, uint8_t major, uint64_t arg);
void outpost_cbor_uint(outpost_cbor *w, uint64_t v);
void outpost_cbor_int(outpost_cbor *w, int64_t v);
void outpost_cbor_bytes(outpost_cbor *w, const uint8_t *b, size_t n);
void outpost_cbor_text(outpost_cbor *w, const char *s, size_t n);
void outpost_cbor_bool(outpost_cbor *w, bool b);
/* A number as the TypeScript side writes it: an integer head when the value is
 * integral and |v| <= 2^53 - 1 (so -0 is 0), else a float64. NaN/inf set E_ARG. */
void outpost_cbor_number(outpost_cbor *w, double v);

/* ---- CBOR reader (bounded; what the codec and the update receiver parse with) ---- */
#define OUTPOST_CBOR_MAX_ITEMS 128u
typedef struct {
  const uint8_t *p;
  size_t n, pos;
  unsigned items; /* heads read so far; more than OUTPOST_CBOR_MAX_ITEMS is an error */
} outpost_cbor_reader;
/* Each returns 0 or OUTPOST_E_CBOR and never reads past p[n). Definite lengths only. */
int outpost_cbor_read_head(outpost_cbor_reader *r, uint8_t *major, uint64_t *arg);
/* A byte (want 2) or text (want 3) string; *s points into the input. */
int outpost_cbor_read_str(outpost_cbor_reader *r, uint8_t want, const uint8_t **s, size_t *len);
/* Skips one item; depth is the nesting level it sits at (beyond 4: an error). */
int outpost_cbor_skip(outpost_cbor_reader *r, int depth);

/* ---- SenML records (RFC 8428 §6 CBOR labels) ---------------------------------- */
enum {
  OUTPOST_SENML_BU = 1u << 0, /* -4 base unit */
  OUTPOST_SENML_BT = 1u << 1, /* -3 base time */
  OUTPOST_SENML_BN = 1u << 2, /* -2 base name */
  OUTPOST_SENML_N = 1u << 3,  /*  0 name */
  OUTPOST_SENML_U = 1u << 4,  /*  1 unit */
  OUTPOST_SENML_V = 1u << 5,  /*  2 value */
  OUTPOST_SENML_VS = 1u << 6, /*  3 string value */
  OUTPOST_SENML_VB = 1u << 7, /*  4 boolean value */
  OUTPOST_SENML_S = 1u << 8,  /*  5 sum */
  OUTPOST_SENML_T = 1u << 9   /*  6 time */
};
typedef struct {
  uint16_t has; /* OUTPOST_SENML_* bits: which fields are present */
  const char *bn, *bu, *n, *u, *vs; /* NUL-terminated UTF-8 */
  double bt, v, s, t;
  bool vb;
} outpost_senml_record;

/* ---- device and frames ------------------------------------------------------------- */
typedef struct {
  const outpost_crypto *crypto;
  const uint8_t *kid; /* device id as UTF-8 (the COSE kid) */
  size_t kid_len;
  const uint8_t *gateway_pk;  /* 32-byte Ed25519 key of the trusted gateway */
  const uint8_t *gateway_kid; /* optional: only frames with this kid are accepted */
  size_t gateway_kid_len;
  uint32_t boot; /* restarts: persist and increment at every boot */
  uint32_t seq;  /* next frame's seq in this boot */
  uint64_t fence; /* highest command fence seen */
} outpost_device;

/* Wraps body[..] (already written at out + body_off) into a signed COSE_Sign1
 * starting at out[0]. body_off must be >= outpost_sign1_body_offset(kid_len). */
size_t outpost_sign1_body_offset(size_t kid_len);
int outpost_sign1(const outpost_device *dev, uint8_t *out, size_t cap, size_t body_off, size_t body_len, size_t *frame_len);

/* Reading frame: takes the next seq (dev->seq++ on success). time_ms = 0: no time. */
int outpost_frame_reading(outpost_device *dev, uint64_t time_ms, const outpost_senml_record *recs, size_t nrecs,
                          uint8_t *out, size_t cap, size_t *frame_len);
/* Command-ack frame for command id cid; also takes the next seq. */
int outpost_frame_command_ack(outpost_device *dev, uint64_t time_ms, const uint8_t *cid, size_t cid_len, uint8_t status,
                              uint8_t *out, size_t cap, size_t *frame_len);

/* ---- reading gateway frames ------------------------------------------------------------ */
typedef struct {
  const uint8_t *kid, *payload, *signature;
  size_t kid_len, payload_len;
} outpost_sign1_view;
/* Parses a COSE_Sign1 (bounded) without checking its signature. Only the layout
 * the gateway writes is accepted: tag 18, protected exactly bstr({1: -8}) or
 * bstr({1: -19}), unprotected exactly {4: kid}, a 64-byte signature. */
int outpost_parse_sign1(const uint8_t *frame, size_t len, outpost_sign1_view *v);
/* Parses and verifies frame[0..len) under dev->gateway_pk. The OUTPOST_VERIFY_HEADROOM
 * bytes before frame must be writable: the Sig_structure is rebuilt in place, so the
 * frame's header bytes are overwritten (the payload and signature stay intact). */
int outpost_verify_sign1(const outpost_device *dev, uint8_t *frame, size_t len, outpost_sign1_view *v);

enum { OUTPOST_VALUE_INT = 1, OUTPOST_VALUE_FLOAT, OUTPOST_VALUE_BOOL, OUTPOST_VALUE_TEXT };
typedef struct {
  const uint8_t *id; size_t id_len;             /* 4..32 bytes */
  const char *target; size_t target_len;        /* not NUL-terminated; 1..256 bytes */
  const char *actuator; size_t actuator_len;
  uint8_t value_kind;                           /* OUTPOST_VALUE_* */
  int64_t value_int; double value_float; bool value_bool;
  const char *value_text; size_t value_text_len;
  uint64_t expires_ms, issued_ms, fence;
  bool has_fence;
} outpost_command;
typedef struct { uint32_t boot, seq; uint8_t status; } outpost_frame_ack;

enum { OUTPOST_BODY_COMMAND = 2, OUTPOST_BODY_FRAME_ACK = 4 };
/* Parses a downlink body (command or frame-ack): bounded, no duplicate keys,
 * unknown keys skipped. Returns OUTPOST_BODY_* or a negative outpost_err. */
int outpost_parse_downlink(const uint8_t *body, size_t len, outpost_command *cmd, outpost_frame_ack *ack);

/* Decides a verified command: target must be this device, not expired at now_ms
 * (0 = clock unknown: not checked), fence not below the last one (then recorded).
 * Returns the OUTPOST_ACK_* status to answer with. */
uint8_t outpost_command_check(outpost_device *dev, const outpost_command *cmd, uint64_t now_ms);

/* ---- unacked ring ------------------------------------------------------------------------ */
typedef struct {
  uint32_t boot, seq, sent_ms;
  uint16_t len; /* 0 = free */
} outpost_slot;
typedef struct {
  uint8_t *data;      /* nslots * slot_size bytes of wire frames */
  outpost_slot *slots;
  uint16_t nslots, slot_size, head, count;
  uint32_t dropped;   /* oldest frames overwritten because the ring was full */
} outpost_ring;
void outpost_ring_init(outpost_ring *r, uint8_t *data, outpost_slot *slots, uint16_t nslots, uint16_t slot_size);
/* Keeps a wire frame until acked; when full the oldest is dropped. Returns OUTPOST_OK or E_SPACE (too long). */
int outpost_ring_push(outpost_ring *r, uint32_t boot, uint32_t seq, const uint8_t *wire, size_t len, uint32_t now_ms);
/* Applies a frame-ack: frees the frame unless the status is OUTPOST_ACK_FAILED. Returns 1 if one was freed. */
int outpost_ring_ack(outpost_ring *r, const outpost_frame_ack *ack);
typedef void (*outpost_write_fn)(void *ctx, const uint8_t *wire, size_t len);
/* Rewrites every frame sent at least after_ms ago (oldest first); returns how many. */
size_t outpost_ring_resend(outpost_ring *r, uint32_t now_ms, uint32_t after_ms, outpost_write_fn write, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
