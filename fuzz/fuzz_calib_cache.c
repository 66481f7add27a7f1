/* libFuzzer target for the calibration-cache reader (TensorRT text format):
 * any bytes must give a cache of unique names with positive finite scales,
 * or a one-line error; never a crash, a leak or quadratic time (libFuzzer's
 * -timeout reports slow inputs). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mt_calib_cache c;
    if (mt_calib_cache_parse((const char *)data, size, "fuzz", &c) == MTMI_OK) {
        for (int i = 0; i < c.n; i++) {
            float s = mt_calib_cache_get(&c, c.e[i].name);
            if (!(s > 0) || !isfinite(s) || s != c.e[i].scale) abort(); /* a duplicate would shadow an entry */
        }
        /* An override replaces an entry's scale in place. */
        if (c.n && strlen(c.e[0].name) < 200) {
            char spec[300];
            float want;
            snprintf(spec, sizeof spec, "%s=0x3cb9c64a", c.e[0].name);
            mt_scale_from_hex("3cb9c64a", &want);
            if (mt_calib_cache_override(&c, spec) != MTMI_OK || mt_calib_cache_get(&c, c.e[0].name) != want) abort();
        }
        mt_calib_cache_override(&c, "fresh=-1");
        mt_calib_cache_free(&c);
    } else if (strchr(mtmi_last_error(), '\n')) {
        abort();
    }
    return 0;
}
