/* libFuzzer target for the .npy reader: any bytes must give a tensor whose
 * data holds exactly what its header claims, or a one-line error; never a
 * crash, an overflow of the size computation or an out-of-bounds read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mtmi_tensor t;
    if (mt_npy_read_buffer(data, size, "fuzz", &t) == MTMI_OK) {
        size_t bytes;
        if (mt_checked_bytes(t.rank, t.dims, mt_dtype_size(t.dtype), &bytes) || bytes > size) abort();
        /* Touch every byte so that a short buffer would be reported. */
        volatile unsigned sum = 0;
        for (size_t i = 0; i < bytes; i++) sum += ((const uint8_t *)t.data)[i];
        (void)sum;
        free(t.data);
    } else if (strchr(mtmi_last_error(), '\n')) {
        abort(); /* errors must be one line */
    }
    return 0;
}
