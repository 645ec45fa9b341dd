/* The host device program's update receiver: outpost_update.c with files for flash. */
#ifndef OUTPOST_HOST_UPDATE_H
#define OUTPOST_HOST_UPDATE_H

#include "outpost.h"

/* Opens DIR (slot0.bin: the running image, slot1.bin: the download slot, state.bin: the
 * persisted state) and takes the boot decision; reports go out through write. */
void host_update_init(const char *dir, const uint8_t release_pk[32], const char *model, const char *factory_version,
                      uint16_t chunk_size, uint32_t abandon_ms, int fail_trial, outpost_device *dev, outpost_write_fn write);
/* A trial image whose self-test fails (--fail-trial): the device must reset before confirming. */
int host_update_trial_crash(void);
/* Says where the update stands (after the boot decision, or on a (re)connect). */
void host_update_connected(void);
/* A frame of the serial stream that is a firmware offer or chunk (a bare CBOR map);
 * returns 1 when the device must reset now (into the trial boot). */
int host_update_frame(uint8_t *frame, size_t len, uint32_t now);
/* The update receiver's clock (outpost_fw_tick): no chunk for 1 s during a download asks again
 * from the offset; none for abandon_ms gives the download up (and lets another release in). */
void host_update_tick(uint32_t now);
/* An update ended in this run (confirmed, failed or rolled back). */
int host_update_ended(void);

#endif
