/*
 * Outpost on an ESP32 (ESP-IDF v5): a reading every 10 s over UART1 to the
 * gateway's serial port, frame-acks and commands from the gateway verified
 * with its public key, commands acked. Only built where idf.py exists
 * (`make example`); see hardware/firmware/README.md.
 *
 * Set DEVICE_ID, DEVICE_SEED (from `firmware-sim keygen` or your provisioning)
 * and GATEWAY_PK (the gateway's public key, `gateway identity`) below, enrol the
 * device's public key on the gateway and bind the port to DEVICE_ID in its config.
 */
#include <string.h>

#include "driver/uart.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "nvs.h"
#include "nvs_flash.h"
#include "outpost.h"
#include "outpost_sodium.h"

#define UART UART_NUM_1
#define TX_PIN 17
#define RX_PIN 16
#define DEVICE_ID "esp32-1"
static const uint8_t DEVICE_SEED[32] = {0}; /* provision per device: never ship zeros */
static const uint8_t GATEWAY_PK[32] = {0};  /* the gateway's Ed25519 public key */

#define SLOTS 8
#define SLOT_SIZE OUTPOST_WIRE_MAX(200)
static uint8_t ring_data[SLOTS * SLOT_SIZE];
static outpost_slot ring_slots[SLOTS];
static outpost_ring ring;
static outpost_deframer deframer;
static uint8_t sk[64], pk[32];
static outpost_crypto crypto;
static outpost_device dev;

static uint32_t ms(void) { return (uint32_t)(esp_timer_get_time() / 1000); }
static void uart_write(void *ctx, const uint8_t *p, size_t n) {
  (void)ctx;
  uart_write_bytes(UART, p, n);
}

/* boot counter in NVS: incremented at every start, so (boot, seq) never repeats */
static uint32_t next_boot(void) {
  nvs_handle_t h;
  uint32_t boot = 0;
  nvs_flash_init();
  if (nvs_open("outpost", NVS_READWRITE, &h) == ESP_OK) {
    nvs_get_u32(h, "boot", &boot);
    nvs_set_u32(h, "boot", boot + 1);
    nvs_commit(h);
    nvs_close(h);
  }
  return boot + 1;
}

static void send(const uint8_t *frame, size_t n, uint32_t seq) {
  uint8_t wire[SLOT_SIZE];
  size_t w = outpost_wire_encode(frame, n, wire, sizeof wire);
  if (w && outpost_ring_push(&ring, dev.boot, seq, wire, w, ms()) == OUTPOST_OK) uart_write(NULL, wire, w);
}

static void on_frame(uint8_t *f, size_t n) {
  outpost_sign1_view v;
  outpost_command c;
  outpost_frame_ack a;
  if (outpost_verify_sign1(&dev, f, n, &v) != OUTPOST_OK) return; /* not from our gateway */
  int type = outpost_parse_downlink(v.payload, v.payload_len, &c, &a);
  if (type == OUTPOST_BODY_FRAME_ACK) {
    outpost_ring_ack(&ring, &a);
  } else if (type == OUTPOST_BODY_COMMAND) {
    uint8_t status = outpost_command_check(&dev, &c, 0 /* no wall clock: expiry not checked */);
    if (status == OUTPOST_ACK_OK) {
      if (c.actuator_len == 5 && !memcmp(c.actuator, "relay", 5) && c.value_kind == OUTPOST_VALUE_INT) {
        /* gpio_set_level(RELAY_GPIO, c.value_int != 0); */
      } else {
        status = OUTPOST_ACK_UNKNOWN_ACTUATOR;
      }
    }
    uint8_t cid[32], out[160];
    size_t cid_len = c.id_len, len;
    memcpy(cid, c.id, cid_len); /* c points into the deframer buffer */
    uint32_t seq = dev.seq;
    if (outpost_frame_command_ack(&dev, 0, cid, cid_len, status, out, sizeof out, &len) == OUTPOST_OK) send(out, len, seq);
  }
}

void app_main(void) {
  uart_config_t cfg = {.baud_rate = 115200, .data_bits = UART_DATA_8_BITS, .parity = UART_PARITY_DISABLE,
                       .stop_bits = UART_STOP_BITS_1, .flow_ctrl = UART_HW_FLOWCTRL_DISABLE, .source_clk = UART_SCLK_DEFAULT};
  uart_driver_install(UART, 1024, 1024, 0, NULL, 0);
  uart_param_config(UART, &cfg);
  uart_set_pin(UART, TX_PIN, RX_PIN, UART_PIN_NO_CHANGE, UART_PIN_NO_CHANGE);

  outpost_sodium_init(&crypto, sk, pk, DEVICE_SEED);
  dev.crypto = &crypto;
  dev.kid = (const uint8_t *)DEVICE_ID;
  dev.kid_len = strlen(DEVICE_ID);
  dev.gateway_pk = GATEWAY_PK;
  dev.boot = next_boot();
  outpost_ring_init(&ring, ring_data, ring_slots, SLOTS, SLOT_SIZE);
  outpost_deframer_init(&deframer);

  uint32_t next = 0;
  for (;;) {
    if ((int32_t)(ms() - next) >= 0) {
      outpost_senml_record r = {.has = OUTPOST_SENML_N | OUTPOST_SENML_U | OUTPOST_SENML_V, .n = "temp", .u = "Cel", .v = 21.5};
      uint8_t out[200];
      size_t len;
      uint32_t seq = dev.seq;
      if (outpost_frame_reading(&dev, 0, &r, 1, out, sizeof out, &len) == OUTPOST_OK) send(out, len, seq);
      next = ms() + 10000;
    }
    outpost_ring_resend(&ring, ms(), 2000, uart_write, NULL);
    uint8_t in[128];
    int k = uart_read_bytes(UART, in, sizeof in, pdMS_TO_TICKS(50));
    size_t off = 0;
    while (k > 0 && off < (size_t)k) {
      uint8_t *f;
      size_t n;
      off += outpost_deframer_push(&deframer, in + off, (size_t)k - off, &f, &n);
      if (f) on_frame(f, n);
    }
  }
}
