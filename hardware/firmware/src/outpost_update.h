/*
 * Outpost firmware companion: update receiver. The device side of
 * protocols/firmware-manifest.ts and protocols/firmware-transfer.ts, behaving like
 * firmware-sim/update.ts (two slots, resume from the persisted offset, SHA-256 before
 * install and at the trial boot, confirm or roll back):
 *
 *   offer    {0: 17, 1: manifest (COSE_Sign1), 2: rollout id}
 *   manifest 18([h'a10127', {4: kid (8 bytes)}, payload, sig]) by the release key;
 *            payload {0: 16, 1: model, 2: "M.m.p", 3: [-16, SHA-256], 4: size,
 *                     5: min version, 6: slot, 7: issued ms}
 *   chunk    {0: 18, 1: image digest, 2: offset, 3: data, 4: CRC-32C of data}
 *   report   {0: 19, 1: boot, 2: n, 3: time, 4: state, 5: digest | null, 6: offset,
 *             7: window, 8: chunk size, 9: running "M.m.p", 10?: reason, 11?: detail},
 *            signed by the device (outpost_sign1)
 *
 * No malloc, no global state. Flash and the persisted state are the caller's,
 * through callbacks; Ed25519 is the codec's verify callback; SHA-256 is
 * outpost_sha256.c (in this tree).
 */
#ifndef OUTPOST_UPDATE_H
#define OUTPOST_UPDATE_H

#include "outpost.h"
#include "outpost_sha256.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OUTPOST_FW_MAX_MANIFEST 1024
#define OUTPOST_FW_MAX_CHUNK 32768 /* protocols/firmware-transfer.ts MAX_CHUNK_BYTES */
#define OUTPOST_FW_MAX_IMAGE (16u * 1024 * 1024)
#define OUTPOST_FW_KID_BYTES 8 /* first 8 bytes of SHA-256(release public key) */

/* Report states: the index in protocols/firmware-transfer.ts UPDATE_STATES. */
enum {
  OUTPOST_FW_IDLE = 0,
  OUTPOST_FW_OFFERED,
  OUTPOST_FW_DOWNLOADING,
  OUTPOST_FW_VERIFIED,
  OUTPOST_FW_INSTALLING,
  OUTPOST_FW_CONFIRMED,
  OUTPOST_FW_ROLLED_BACK,
  OUTPOST_FW_FAILED,
  OUTPOST_FW_NONE = 0xff /* nothing to report */
};

/* Reasons; outpost_fw_reason_code gives the text a report carries, the same codes as
 * verifyManifest (without "firmware/"), manifestRefusal and firmware-sim/update.ts. */
enum {
  OUTPOST_FW_R_NONE = 0,
  OUTPOST_FW_R_TOO_LARGE,     /* "too-large": manifest over 1024 bytes */
  OUTPOST_FW_R_BAD_COSE,      /* "bad-cose": not the COSE_Sign1 layout encodeManifest writes (TS: cose/... or bad-header) */
  OUTPOST_FW_R_BAD_KID,       /* "bad-kid": kid is not 8 bytes */
  OUTPOST_FW_R_NOT_CANONICAL, /* "not-canonical": envelope heads not in preferred encoding */
  OUTPOST_FW_R_BAD_PAYLOAD,   /* "bad-payload": payload not a well-formed map (definite lengths only) */
  OUTPOST_FW_R_NOT_MANIFEST,  /* "not-manifest" */
  OUTPOST_FW_R_UNKNOWN_FIELD, /* "unknown-field" */
  OUTPOST_FW_R_BAD_FIELD,     /* "bad-field" */
  OUTPOST_FW_R_BAD_DIGEST,    /* "bad-digest" */
  OUTPOST_FW_R_UNKNOWN_KEY,   /* "unknown-key": kid is not the release key's */
  OUTPOST_FW_R_BAD_SIGNATURE, /* "bad-signature" */
  OUTPOST_FW_R_WRONG_MODEL,   /* "wrong-model" */
  OUTPOST_FW_R_DOWNGRADE,     /* "downgrade": not newer than the running version */
  OUTPOST_FW_R_TOO_OLD,       /* "too-old": running version below the minimum */
  OUTPOST_FW_R_WRONG_SLOT,    /* "wrong-slot" */
  OUTPOST_FW_R_DIGEST_MISMATCH, /* "digest-mismatch": the slot's SHA-256 is not the manifest's */
  OUTPOST_FW_R_NOT_CONFIRMED, /* "test-boot-not-confirmed": reset during the trial: rolled back */
  OUTPOST_FW_R_RESUME,        /* "resume": a download report asking from the persisted offset */
  OUTPOST_FW_R_FLASH,         /* "flash": a write/read/persist callback failed */
  OUTPOST_FW_R_BAD_MESSAGE,   /* "bad-message": not an offer or a chunk */
  OUTPOST_FW_R_BAD_OFFER,     /* "bad-offer" */
  OUTPOST_FW_R_BAD_CHUNK,     /* "bad-chunk": malformed, or not the next chunk of the download */
  OUTPOST_FW_R_BAD_CRC,       /* "bad-crc" */
  OUTPOST_FW_R_ABANDONED,     /* "abandoned": a download no chunk came for in abandon_ms, given up (idle) */
  OUTPOST_FW_R_COUNT
};
const char *outpost_fw_reason_code(uint8_t reason);

/* Where the update stands (firmware-sim/update-store.ts UpdatePhase). */
enum {
  OUTPOST_FW_PHASE_IDLE = 0,
  OUTPOST_FW_PHASE_DOWNLOADING,
  OUTPOST_FW_PHASE_TRIAL_PENDING,
  OUTPOST_FW_PHASE_TRIAL_BOOTED,
  OUTPOST_FW_PHASE_ABANDONED /* idle, holding a download it gave up (digest, size, offset, hash state kept) */
};

/* What the device keeps across resets (its update.json): the persist callback writes
 * it whole after every change, and outpost_fw_init takes it back. Plain bytes, CRC-32C
 * protected; the caller stores it (a flash page, two for wear/tearing, NVS, a file).
 * Versioned by magic: "OFW2" (this one: adds phase ABANDONED); an "OFW1" page (same
 * layout, phases 0..3) is taken and rewritten as OFW2 at the next save. */
typedef struct {
  outpost_sha256 sha; /* SHA-256 of slot[0..offset): a resume goes on hashing from here */
  uint32_t magic;
  uint32_t reports;   /* reports sent (report n), so a reset never reuses one */
  uint32_t running[3], version[3]; /* running version; the pending image's version */
  uint8_t phase, has_running_digest, last_state, last_reason;
  uint8_t running_digest[32], last_digest[32], digest[32]; /* running, last ended, pending */
  uint32_t size, offset; /* pending image: bytes in all, bytes in the slot */
  uint32_t crc;          /* CRC-32C of everything above (the layout has no padding) */
} outpost_fw_state;

/* outpost_fw_report: the persist callback failed (the report counter could not be kept). */
#define OUTPOST_FW_E_PERSIST (-9)

/* Callbacks return 0 on success. write/read address the download slot from 0. */
typedef int (*outpost_fw_write_fn)(void *ctx, uint32_t offset, const uint8_t *data, size_t len);
typedef int (*outpost_fw_read_fn)(void *ctx, uint32_t offset, uint8_t *data, size_t len);
/* Must be durable when it returns (it is called after the slot write it vouches for). */
typedef int (*outpost_fw_persist_fn)(void *ctx, const outpost_fw_state *st);

typedef struct {
  const outpost_crypto *crypto; /* only verify is used */
  const uint8_t *release_pk;    /* 32-byte Ed25519 key of the release key */
  const char *model;            /* this device's model, NUL-terminated */
  uint8_t slot;                 /* the slot images are written to (firmware-sim: 1) */
  uint16_t window, chunk_size;  /* what reports ask for */
  /* Only with outpost_fw_tick: a download with no chunk for stall_ms asks again (resume) and
   * gives way to another release's offer; after abandon_ms without a chunk it is given up.
   * 0: 3000 and 60000 (firmware-sim/update.ts). */
  uint32_t stall_ms, abandon_ms;
  outpost_fw_write_fn write;
  outpost_fw_read_fn read;      /* optional: re-hash the slot from flash before install and at the trial boot */
  outpost_fw_persist_fn persist;
  void *ctx;                    /* passed to write, read and persist */
} outpost_fw_config;

typedef struct {
  const outpost_fw_config *cfg;
  outpost_fw_state st;
  uint8_t kid[OUTPOST_FW_KID_BYTES]; /* the release key id */
  uint8_t about[32];                 /* digest the last outcome is about (report field 5) */
  uint8_t has_about;
  uint8_t ticking;        /* outpost_fw_tick was called: the stall clock runs */
  uint32_t now;           /* the last tick's time (ms) */
  uint32_t chunk_at;      /* when a chunk last came (or chunks were asked for again) */
  uint32_t progress_at;   /* when the download last moved: a chunk stored, the offer taken, the clock started */
} outpost_fw;

/* What to report: state OUTPOST_FW_NONE when nothing (a chunk stored, or dropped with a reason). */
typedef struct {
  uint8_t state, reason;
} outpost_fw_outcome;

/* A decoded, checked manifest (pointers into the payload). */
typedef struct {
  const char *model;
  size_t model_len;
  uint32_t version[3], min_version[3];
  const uint8_t *digest;
  uint32_t size;
  uint8_t slot;
  uint64_t issued;
} outpost_fw_manifest;

/* Takes the saved state (NULL, or one whose magic/CRC does not check: a fresh device
 * running factory_version "M.m.p"). Returns OUTPOST_OK or OUTPOST_E_ARG. */
int outpost_fw_init(outpost_fw *u, const outpost_fw_config *cfg, const outpost_fw_state *saved, const char *factory_version);

/* Decodes and verifies a manifest as verifyManifest does (kid = the release key id,
 * Ed25519 through cfg->crypto->verify); returns OUTPOST_FW_R_NONE or the reason.
 * The header bytes of manifest are overwritten (the Sig_structure is rebuilt in place;
 * no headroom needed for the 8-byte kid); the payload stays intact. */
uint8_t outpost_fw_check_manifest(outpost_fw *u, uint8_t *manifest, size_t len, outpost_fw_manifest *m);

/* Power-on: the bootloader's decision about a trial image. ROLLED_BACK when the trial
 * was not confirmed; FAILED when the slot no longer hashes to the manifest; else NONE
 * (a trial now runs: outpost_fw_confirm once its self-test passes). */
outpost_fw_outcome outpost_fw_boot(outpost_fw *u);
/* (Re)connected: DOWNLOADING "resume" while downloading, else the last ended state, else IDLE. */
outpost_fw_outcome outpost_fw_connected(outpost_fw *u);
/* A gateway message (offer or chunk); msg is modified (see outpost_fw_check_manifest).
 * Offer: OFFERED (report offered, then downloading), DOWNLOADING "resume" (offered again
 * while at it), CONFIRMED (runs it), the last ended state for that image, FAILED with a
 * reason (refused), NONE (another update is under way: with outpost_fw_tick, a download
 * that had no chunk for stall_ms gives way to another release's offer). Chunk: NONE (stored; or dropped,
 * with a reason), VERIFIED (the whole image hashes right: report verified, installing,
 * then reset into the trial boot), FAILED "digest-mismatch". */
outpost_fw_outcome outpost_fw_down(outpost_fw *u, uint8_t *msg, size_t len);
/* The firmware's clock (ms, any origin, wrapping): call it from the main loop (every
 * ~100 ms or more often); chunks and offers are timed by the last tick. While downloading:
 * DOWNLOADING "resume" when no chunk came for stall_ms (ask again; once per stall_ms),
 * IDLE "abandoned" when none came for abandon_ms (the download is given up and persisted as
 * such; its bytes and hash state are kept, so an offer of the same image resumes from its
 * offset and an offer of another is taken); else NONE. Without ticks a download is never
 * given up and never gives way (one update at a time). */
outpost_fw_outcome outpost_fw_tick(outpost_fw *u, uint32_t now_ms);
/* The trial image passed its self-test: it becomes the running version (CONFIRMED). */
outpost_fw_outcome outpost_fw_confirm(outpost_fw *u);

/* Signs a report for an outcome (dev->kid, dev->boot; the report counter is taken and
 * persisted first). reason OUTPOST_FW_R_NONE and detail NULL leave those fields out. */
int outpost_fw_report(outpost_fw *u, const outpost_device *dev, uint64_t time_ms, outpost_fw_outcome o, const char *detail,
                      uint8_t *out, size_t cap, size_t *frame_len);

#ifdef __cplusplus
}
#endif
#endif
