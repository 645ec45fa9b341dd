/*
 * `make size` compiles this for the target and reads the symbol sizes with nm:
 * each array is as long as one of the structs a firmware allocates, so the
 * figures are the target ABI's (no need to run anything on the target).
 */
#include "outpost.h"
#include "outpost_update.h"

const char sizeof_outpost_deframer[sizeof(outpost_deframer)] = {0};
const char sizeof_outpost_device[sizeof(outpost_device)] = {0};
const char sizeof_outpost_ring[sizeof(outpost_ring)] = {0};
const char sizeof_outpost_slot[sizeof(outpost_slot)] = {0};
const char sizeof_outpost_command[sizeof(outpost_command)] = {0};
const char sizeof_outpost_fw[sizeof(outpost_fw)] = {0};
const char sizeof_outpost_fw_state[sizeof(outpost_fw_state)] = {0};
