/* Prints the RAM a firmware allocates for the library's state structs. */
#include <stdio.h>

#include "outpost.h"

int main(void) {
  printf("caller-allocated state (host ABI, OUTPOST_MAX_FRAME=%d): outpost_deframer %zu B, outpost_device %zu B, "
         "outpost_ring %zu B + slots of %zu B each\n",
         OUTPOST_MAX_FRAME, sizeof(outpost_deframer), sizeof(outpost_device), sizeof(outpost_ring), sizeof(outpost_slot));
  return 0;
}
