/* image: PNG in and out (libspng), fitting frames to the model's input,
 * normalization into tensors, and the visualization colour maps. */
#ifndef MT_IMAGE_H
#define MT_IMAGE_H

#include "core/core.h"

/* 8-bit interleaved pixels, c = 3 (RGB) or 4 (RGBA). */
typedef struct mt_image {
    int w, h, c;
    uint8_t *px;
} mt_image;

/* Reads any PNG (gray, gray+alpha, RGB, RGBA, palette, 16-bit) as RGB8. */
mtmi_status mt_png_read(const char *path, mt_image *img);
mtmi_status mt_png_read_buffer(const uint8_t *buf, size_t len, const char *what, mt_image *img);
/* Writes RGB8/RGBA8 atomically. */
mtmi_status mt_png_write(const char *path, const mt_image *img);
void mt_image_free(mt_image *img);

/* Centre-crops src to the aspect of w x h, then resizes (bilinear). */
mtmi_status mt_image_fit(const mt_image *src, int w, int h, mt_image *dst);
/* SPEC normalization: (px - mean) / std per RGB channel, CHW float. */
void mt_image_to_chw(const mt_image *img, float *chw);

#endif
