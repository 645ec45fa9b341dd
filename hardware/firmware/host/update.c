/*
 * The host device program's update receiver (see host/update.h): "flash" is files in a
 * directory. slot1.bin is written with pwrite + fsync before the state that vouches for
 * it; state.bin is written to a temp file, flushed and renamed, so a kill at any point
 * leaves the last complete state (firmware-sim/update-store.ts does the same).
 * One JSON line per report on stdout: {"event":"update","state":...}.
 */
#include "update.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "outpost_update.h"

static const char *const STATES[] = {"idle", "offered", "downloading", "verified", "installing", "confirmed", "rolled-back", "failed"};
#define STALL_MS 1000

static char slot0[512], slot1[512], state_path[512], state_tmp[512];
static int slot_fd = -1, ended, fail_trial;
static unsigned since_report;
static outpost_fw fw;
static outpost_fw_config cfg;
static outpost_device *device;
static outpost_write_fn write_wire;

static int slot_write(void *ctx, uint32_t off, const uint8_t *d, size_t n) {
  (void)ctx;
  return pwrite(slot_fd, d, n, off) == (ssize_t)n && fsync(slot_fd) == 0 ? 0 : -1;
}
static int slot_read(void *ctx, uint32_t off, uint8_t *d, size_t n) {
  (void)ctx;
  return pread(slot_fd, d, n, off) == (ssize_t)n ? 0 : -1;
}
static int persist(void *ctx, const outpost_fw_state *st) {
  (void)ctx;
  int f = open(state_tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (f < 0) return -1;
  int ok = write(f, st, sizeof *st) == (ssize_t)sizeof *st && fsync(f) == 0;
  close(f);
  return ok && rename(state_tmp, state_path) == 0 ? 0 : -1;
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void report(outpost_fw_outcome o) {
  uint8_t frame[400], wire[OUTPOST_WIRE_MAX(400)];
  size_t n;
  if (o.state == OUTPOST_FW_NONE) return;
  if (o.state == OUTPOST_FW_DOWNLOADING) since_report = 0;
  if (outpost_fw_report(&fw, device, wall_ms(), o, NULL, frame, sizeof frame, &n) != OUTPOST_OK) {
    fprintf(stderr, "outpost-device: update report failed\n");
    exit(2);
  }
  size_t w = outpost_wire_encode(frame, n, wire, sizeof wire);
  write_wire(NULL, wire, w);
  const uint32_t *v = fw.st.running;
  printf("{\"event\":\"update\",\"state\":\"%s\",\"reason\":\"%s\",\"offset\":%u,\"n\":%u,\"running\":\"%u.%u.%u\"}\n",
         STATES[o.state], outpost_fw_reason_code(o.reason), fw.st.phase ? fw.st.offset : 0, fw.st.reports, v[0], v[1], v[2]);
  fflush(stdout);
}

/* A final outcome of an update that was under way (not an offer refused at the door). */
static void outcome(outpost_fw_outcome o, uint8_t phase_before) {
  if (phase_before != OUTPOST_FW_PHASE_IDLE &&
      (o.state == OUTPOST_FW_CONFIRMED || o.state == OUTPOST_FW_FAILED || o.state == OUTPOST_FW_ROLLED_BACK))
    ended = 1;
  report(o);
}

void host_update_init(const char *dir, const uint8_t release_pk[32], const char *model, const char *factory_version,
                      uint16_t chunk_size, uint32_t abandon_ms, int fail, outpost_device *dev, outpost_write_fn write) {
  snprintf(slot0, sizeof slot0, "%s/slot0.bin", dir);
  snprintf(slot1, sizeof slot1, "%s/slot1.bin", dir);
  snprintf(state_path, sizeof state_path, "%s/state.bin", dir);
  snprintf(state_tmp, sizeof state_tmp, "%s/state.bin.tmp", dir);
  device = dev;
  write_wire = write;
  fail_trial = fail;
  if (access(slot0, F_OK) != 0) { /* a factory image */
    FILE *f = fopen(slot0, "w");
    if (f) fprintf(f, "factory image %s\n", factory_version), fclose(f);
  }
  slot_fd = open(slot1, O_RDWR | O_CREAT, 0644);
  static outpost_crypto verify_only;
  verify_only = *dev->crypto;
  cfg.crypto = &verify_only;
  cfg.release_pk = release_pk;
  cfg.model = model;
  cfg.slot = 1;
  cfg.window = 8;
  cfg.chunk_size = chunk_size;
  cfg.stall_ms = STALL_MS;
  cfg.abandon_ms = abandon_ms;
  cfg.write = slot_write;
  cfg.read = slot_read;
  cfg.persist = persist;
  outpost_fw_state saved;
  int f = open(state_path, O_RDONLY);
  int have = f >= 0 && read(f, &saved, sizeof saved) == (ssize_t)sizeof saved;
  if (f >= 0) close(f);
  if (slot_fd < 0 || outpost_fw_init(&fw, &cfg, have ? &saved : NULL, factory_version) != OUTPOST_OK) {
    fprintf(stderr, "outpost-device: cannot start the update receiver in %s\n", dir);
    exit(2);
  }
  if (!have) (void)persist(NULL, &fw.st);
  /* power-on: the bootloader's decision; a trial image runs its self-test here */
  uint8_t before = fw.st.phase;
  outcome(outpost_fw_boot(&fw), before);
  if (fw.st.phase == OUTPOST_FW_PHASE_TRIAL_BOOTED) {
    printf("{\"event\":\"trial\",\"fails\":%s}\n", fail_trial ? "true" : "false");
    fflush(stdout);
    if (fail_trial) return; /* main resets before confirming */
    /* the swap made permanent: the download slot is the running image */
    if (rename(slot1, slot0) != 0) exit(2);
    outcome(outpost_fw_confirm(&fw), OUTPOST_FW_PHASE_TRIAL_BOOTED);
  }
}

int host_update_trial_crash(void) { return fw.st.phase == OUTPOST_FW_PHASE_TRIAL_BOOTED && fail_trial; }

void host_update_connected(void) { report(outpost_fw_connected(&fw)); }

int host_update_frame(uint8_t *frame, size_t len, uint32_t now) {
  report(outpost_fw_tick(&fw, now)); /* the clock the chunk or offer is timed by (a download given up is reported first) */
  uint8_t before = fw.st.phase;
  uint32_t offset = fw.st.offset;
  outpost_fw_outcome o = outpost_fw_down(&fw, frame, len);
  if (o.state == OUTPOST_FW_NONE) {
    if (o.reason) {
      printf("{\"event\":\"update-dropped\",\"reason\":\"%s\"}\n", outpost_fw_reason_code(o.reason));
      fflush(stdout);
    } else if (fw.st.offset != offset) {
      if (++since_report >= cfg.window / 2) report((outpost_fw_outcome){OUTPOST_FW_DOWNLOADING, OUTPOST_FW_R_NONE});
    }
    return 0;
  }
  outcome(o, before);
  if (o.state == OUTPOST_FW_OFFERED) {
    report((outpost_fw_outcome){OUTPOST_FW_DOWNLOADING, OUTPOST_FW_R_NONE}); /* the request for chunks */
  } else if (o.state == OUTPOST_FW_VERIFIED) {
    report((outpost_fw_outcome){OUTPOST_FW_INSTALLING, OUTPOST_FW_R_NONE});
    return 1;
  }
  return 0;
}

void host_update_tick(uint32_t now) { report(outpost_fw_tick(&fw, now)); /* a stall: resume; no chunk for --abandon-ms: given up */ }

int host_update_ended(void) { return ended; }
