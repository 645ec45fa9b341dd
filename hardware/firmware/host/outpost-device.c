/*
 * outpost-device: a Linux "microcontroller" built on the C library, for talking
 * to a real gateway over a serial line (a USB adapter or a pty from socat).
 *
 *   outpost-device --tty PATH --id DEVICE_ID --seed HEX64 --gateway-key HEX64
 *                  [--gateway-id ID] [--boot N] [--frames N] [--interval-ms MS]
 *                  [--resend-ms MS] [--commands N] [--actuator NAME]... [--timeout-ms MS]
 *                  [--update-dir DIR --release-key HEX64 --model M [--version M.m.p]
 *                   [--chunk-size N] [--fail-trial 1] [--abandon-ms MS]]
 *
 * Sends --frames signed readings (kept in the unacked ring until a verified
 * frame-ack), verifies every gateway frame, answers each command with a signed
 * command-ack (kept until acked too), and exits 0 once all frames are acked and
 * --commands commands were answered; 1 on timeout. One JSON line per event on stdout.
 *
 * With --update-dir it also takes firmware updates on the same line (host/update.c:
 * offers and chunks are bare CBOR-map frames of the COBS stream, reports are signed
 * frames), and then exits 0 only once an update ended (confirmed, failed, rolled back).
 * "Resetting" into the trial boot re-executes this program with the same arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "outpost.h"
#include "outpost_sodium.h"
#include "update.h"

#define SLOTS 32
#define SLOT_SIZE OUTPOST_WIRE_MAX(400)
#define MAX_ACTUATORS 8

static int fd = -1;
static uint8_t ring_data[SLOTS * SLOT_SIZE];
static outpost_slot ring_slots[SLOTS];
static outpost_ring ring;
static outpost_deframer deframer;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
static uint32_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static void die(const char *msg) {
  fprintf(stderr, "outpost-device: %s\n", msg);
  exit(2);
}

static int hex(const char *s, uint8_t *out, size_t n) {
  if (strlen(s) != 2 * n) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned x;
    if (sscanf(s + 2 * i, "%2x", &x) != 1) return -1;
    out[i] = (uint8_t)x;
  }
  return 0;
}
static void print_hex(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
}

static void write_all(void *ctx, const uint8_t *p, size_t n) {
  (void)ctx;
  while (n > 0) {
    ssize_t k = write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd pf = {fd, POLLOUT, 0};
        poll(&pf, 1, 100);
        continue;
      }
      die("write failed");
    }
    p += k;
    n -= (size_t)k;
  }
}

/* Frames, keeps (until acked) and writes one uplink frame. */
static void send_frame(const uint8_t *frame, size_t n, uint32_t boot, uint32_t seq) {
  uint8_t wire[SLOT_SIZE];
  size_t w = outpost_wire_encode(frame, n, wire, sizeof wire);
  if (w == 0) die("frame too large");
  if (outpost_ring_push(&ring, boot, seq, wire, w, mono_ms()) != OUTPOST_OK) die("ring push failed");
  write_all(NULL, wire, w);
}

/* A reset: the same program again, from the state it persisted. */
static void reset(char **argv) {
  printf("{\"event\":\"reset\"}\n");
  fflush(stdout);
  close(fd);
  execv("/proc/self/exe", argv);
  die("re-exec failed");
}

int main(int argc, char **argv) {
  const char *tty = NULL, *id = NULL, *seed_hex = NULL, *gw_hex = NULL, *gw_id = NULL;
  const char *update_dir = NULL, *release_hex = NULL, *model = NULL, *version = "1.0.0";
  unsigned long chunk_size = 448, fail_trial = 0, abandon_ms = 60000;
  const char *actuators[MAX_ACTUATORS];
  size_t nact = 0;
  unsigned long frames = 3, interval = 50, resend = 500, want_cmds = 0, timeout = 20000, boot = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) die("missing value");
    i++;
    if (!strcmp(a, "--tty")) tty = v;
    else if (!strcmp(a, "--id")) id = v;
    else if (!strcmp(a, "--seed")) seed_hex = v;
    else if (!strcmp(a, "--gateway-key")) gw_hex = v;
    else if (!strcmp(a, "--gateway-id")) gw_id = v;
    else if (!strcmp(a, "--boot")) boot = strtoul(v, NULL, 10);
    else if (!strcmp(a, "--frames")) frames = strtoul(v, NULL, 10);
    else if (!strcmp(a, "--interval-ms")) interval = strtoul(v, NULL, 10);
    else if (!strcmp(a, "--resend-ms")) resend = strtoul(v, NULL, 10);
    else if (!strcmp(a, "--commands")) want_cmds = strtoul(v, NULL, 10);
    else if (!strcmp(a, "--timeout-ms")) timeout = strtoul(v, NULL, 10);
    else if (!strcmp(a, "--actuator") && nact < MAX_ACTUATORS) actuators[nact++] = v;
    else if (!strcmp(a, "--update-dir")) update_dir = v;
    else if (!strcmp(a, "--release-key")) release_hex = v;
    else if (!strcmp(a, "--model")) model = v;
    else if (!strcmp(a, "--version")) version = v;
    else if (!strcmp(a, "--chunk-size")) chunk_size = strtoul(v, NULL, 10);
    else if (!strcmp(a, "--fail-trial")) fail_trial = strtoul(v, NULL, 10);
    else if (!strcmp(a, "--abandon-ms")) abandon_ms = strtoul(v, NULL, 10);
    else die("unknown option (see the comment at the top of host/outpost-device.c)");
  }
  if (!tty || !id || !seed_hex || !gw_hex) die("--tty, --id, --seed and --gateway-key are required");
  if (nact == 0) actuators[nact++] = "relay";

  uint8_t seed[32], gw_pk[32], sk[64], pk[32];
  if (hex(seed_hex, seed, 32) || hex(gw_hex, gw_pk, 32)) die("seed and gateway key are 64 hex digits");
  outpost_crypto crypto;
  if (outpost_sodium_init(&crypto, sk, pk, seed)) die("libsodium init failed");
  outpost_device dev;
  memset(&dev, 0, sizeof dev);
  dev.crypto = &crypto;
  dev.kid = (const uint8_t *)id;
  dev.kid_len = strlen(id);
  dev.gateway_pk = gw_pk;
  if (gw_id) dev.gateway_kid = (const uint8_t *)gw_id, dev.gateway_kid_len = strlen(gw_id);
  dev.boot = (uint32_t)boot;

  fd = open(tty, O_RDWR | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) die("cannot open the tty");
  struct termios t;
  if (tcgetattr(fd, &t) == 0) {
    cfmakeraw(&t);
    cfsetspeed(&t, B115200);
    tcsetattr(fd, TCSANOW, &t);
  }
  outpost_ring_init(&ring, ring_data, ring_slots, SLOTS, SLOT_SIZE);
  outpost_deframer_init(&deframer);
  printf("{\"event\":\"start\",\"id\":\"%s\",\"publicKey\":\"", id);
  print_hex(pk, 32);
  printf("\"}\n");
  fflush(stdout);
  write_all(NULL, (const uint8_t *)"\0", 1); /* end whatever partial frame the gateway holds */
  uint8_t release_pk[32];
  if (update_dir) {
    if (!release_hex || hex(release_hex, release_pk, 32) || !model || chunk_size == 0 || chunk_size > OUTPOST_MAX_FRAME - 58)
      die("--update-dir needs --release-key (64 hex digits), --model, and a --chunk-size that fits a frame");
    host_update_init(update_dir, release_pk, model, version, (uint16_t)chunk_size, (uint32_t)abandon_ms, fail_trial != 0, &dev, write_all);
    if (host_update_trial_crash()) reset(argv); /* the new image dies before it confirms */
    host_update_connected();
  }

  unsigned long sent = 0, cmds = 0, acks = 0, bad = 0;
  uint32_t start = mono_ms(), next_send = start;
  uint8_t frame[512];
  for (;;) {
    uint32_t t_now = mono_ms();
    if (sent < frames && (int32_t)(t_now - next_send) >= 0) {
      outpost_senml_record recs[2];
      memset(recs, 0, sizeof recs);
      recs[0].has = OUTPOST_SENML_BN | OUTPOST_SENML_N | OUTPOST_SENML_U | OUTPOST_SENML_V;
      char bn[80];
      snprintf(bn, sizeof bn, "%s/", id);
      recs[0].bn = bn, recs[0].n = "temp", recs[0].u = "Cel", recs[0].v = 20.0 + (double)sent * 0.5;
      recs[1].has = OUTPOST_SENML_N | OUTPOST_SENML_U | OUTPOST_SENML_V;
      recs[1].n = "hum", recs[1].u = "%RH", recs[1].v = (double)(40 + sent);
      size_t n;
      uint32_t seq = dev.seq;
      if (outpost_frame_reading(&dev, now_ms(), recs, 2, frame, sizeof frame, &n) != OUTPOST_OK) die("reading frame failed");
      send_frame(frame, n, dev.boot, seq);
      printf("{\"event\":\"sent\",\"boot\":%u,\"seq\":%u,\"bytes\":%zu}\n", dev.boot, seq, n);
      fflush(stdout);
      sent++;
      next_send = t_now + (uint32_t)interval;
    }
    if (update_dir) host_update_tick(t_now);
    if (sent == frames && cmds >= want_cmds && ring.count == 0 && (!update_dir || host_update_ended())) {
      printf("{\"event\":\"done\",\"sent\":%lu,\"acks\":%lu,\"commands\":%lu,\"badDownlink\":%lu}\n", sent, acks, cmds, bad);
      return 0;
    }
    if (t_now - start > timeout) {
      printf("{\"event\":\"timeout\",\"sent\":%lu,\"acks\":%lu,\"commands\":%lu,\"pending\":%u}\n", sent, acks, cmds, ring.count);
      return 1;
    }
    outpost_ring_resend(&ring, t_now, (uint32_t)resend, write_all, NULL);

    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, 10) <= 0 || !(pf.revents & POLLIN)) continue;
    uint8_t in[256];
    ssize_t k = read(fd, in, sizeof in);
    if (k <= 0) continue;
    size_t off = 0;
    while (off < (size_t)k) {
      uint8_t *f;
      size_t fl;
      off += outpost_deframer_push(&deframer, in + off, (size_t)k - off, &f, &fl);
      if (!f) continue;
      if (update_dir && (f[0] & 0xe0) == 0xa0) { /* a firmware offer or chunk: a bare map, not a COSE_Sign1 */
        if (host_update_frame(f, fl, t_now)) reset(argv);
        continue;
      }
      outpost_sign1_view v;
      int rc = outpost_verify_sign1(&dev, f, fl, &v);
      outpost_command c;
      outpost_frame_ack a;
      int type = rc == OUTPOST_OK || rc == OUTPOST_E_SIGNATURE ? outpost_parse_downlink(v.payload, v.payload_len, &c, &a) : rc;
      if (type == OUTPOST_BODY_FRAME_ACK && rc == OUTPOST_OK) {
        int freed = outpost_ring_ack(&ring, &a);
        acks += (unsigned long)freed;
        printf("{\"event\":\"frame-ack\",\"boot\":%u,\"seq\":%u,\"status\":%u,\"freed\":%d}\n", a.boot, a.seq, a.status, freed);
      } else if (type == OUTPOST_BODY_COMMAND) {
        /* a forged command is answered (bad-signature) but never acted on */
        uint8_t status = OUTPOST_ACK_BAD_SIGNATURE;
        if (rc == OUTPOST_OK) {
          status = outpost_command_check(&dev, &c, now_ms());
          if (status == OUTPOST_ACK_OK) {
            status = OUTPOST_ACK_UNKNOWN_ACTUATOR;
            for (size_t i = 0; i < nact; i++)
              if (strlen(actuators[i]) == c.actuator_len && !memcmp(actuators[i], c.actuator, c.actuator_len)) status = OUTPOST_ACK_OK;
          }
        }
        printf("{\"event\":\"command\",\"id\":\"");
        print_hex(c.id, c.id_len);
        printf("\",\"actuator\":\"%.*s\",\"verified\":%s,\"status\":%u}\n", (int)c.actuator_len, c.actuator, rc == OUTPOST_OK ? "true" : "false", status);
        uint8_t cid[32];
        size_t cid_len = c.id_len;
        memcpy(cid, c.id, cid_len); /* the deframer buffer is reused below */
        size_t n;
        uint32_t seq = dev.seq;
        if (outpost_frame_command_ack(&dev, now_ms(), cid, cid_len, status, frame, sizeof frame, &n) != OUTPOST_OK) die("command-ack frame failed");
        send_frame(frame, n, dev.boot, seq);
        if (rc == OUTPOST_OK) cmds++;
      } else {
        bad++;
        printf("{\"event\":\"bad-downlink\",\"error\":%d}\n", rc != OUTPOST_OK ? rc : type);
      }
      fflush(stdout);
    }
  }
}
