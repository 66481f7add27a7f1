/* libFuzzer target for the PNG reader: any bytes must give an image or a
 * one-line error, never a crash, a leak or an unbounded allocation. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mt_image img;
    if (mt_png_read_buffer(data, size, "fuzz", &img) == MTMI_OK) {
        /* Touch every pixel so that a short buffer would be reported. */
        volatile unsigned sum = 0;
        for (size_t i = 0; i < (size_t)img.w * img.h * img.c; i++) sum += img.px[i];
        (void)sum;
        mt_image_free(&img);
    } else if (strchr(mtmi_last_error(), '\n')) {
        abort(); /* errors must be one line */
    }
    return 0;
}
