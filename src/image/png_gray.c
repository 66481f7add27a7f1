/* Single-channel PNGs with their sample values kept (no conversion to
 * RGB): 8-bit label maps (Cityscapes train IDs) and 16-bit depth maps
 * (KITTI: metres x 256), for `mtmi synth` and `mtmi eval`.  The same
 * limits as png.c: bounded dimensions and chunks, decoded size checked
 * against the file before allocating, one-line errors naming the file. */
#include "image/image.h"

#include <spng.h>
#include <stdlib.h>
#include <string.h>

#define GRAY_MAX_DIM 16384
#define GRAY_MAX_CHUNK (64u << 20)

mtmi_status mt_png_write_gray16(const char *path, int w, int h, const uint16_t *px) {
    if (!path || !px || w <= 0 || h <= 0 || w > GRAY_MAX_DIM || h > GRAY_MAX_DIM)
        return mt_fail(MTMI_ERR_ARG, "%s: cannot write a %dx%d 16-bit image", path ? path : "(null)", w, h);
    /* Depth maps are smooth: the Up filter (png_encode.c) and a middle
     * level suit them. */
    uint8_t *png = NULL;
    size_t len = 0;
    mtmi_status st = mt_png_encode(px, w, h, 1, 16, 3, path, &png, &len);
    if (st == MTMI_OK) st = mt_write_file_atomic(path, png, len);
    free(png);
    return st;
}

/* Checks the header: one channel (gray, or palette indices), 8 or 16 bits. */
static mtmi_status gray_header(spng_ctx *ctx, const char *path, struct spng_ihdr *ih) {
    int e = spng_get_ihdr(ctx, ih);
    if (e) return mt_fail(MTMI_ERR_PARSE, "%s: bad PNG header: %s", path, spng_strerror(e));
    if (ih->width == 0 || ih->height == 0 || ih->width > GRAY_MAX_DIM || ih->height > GRAY_MAX_DIM)
        return mt_fail(MTMI_ERR_PARSE, "%s: image is %ux%u, limit is %dx%d", path, ih->width, ih->height, GRAY_MAX_DIM, GRAY_MAX_DIM);
    const int gray = ih->color_type == SPNG_COLOR_TYPE_GRAYSCALE && (ih->bit_depth == 8 || ih->bit_depth == 16);
    const int pal = ih->color_type == SPNG_COLOR_TYPE_INDEXED && ih->bit_depth == 8;
    if (!gray && !pal)
        return mt_fail(MTMI_ERR_PARSE, "%s: expected a one-channel PNG (8- or 16-bit gray, or 8-bit palette indices), got colour type %d, %d bits",
                       path, ih->color_type, ih->bit_depth);
    return MTMI_OK;
}

mtmi_status mt_png_read_gray(const char *path, int *w, int *h, int *bits, uint16_t **px) {
    *px = NULL;
    *w = *h = *bits = 0;
    uint8_t *data = NULL, *raw = NULL;
    size_t size = 0, out_len = 0;
    mtmi_status st = mt_read_file(path, &data, &size);
    if (st) return st;
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx) {
        free(data);
        return mt_fail(MTMI_ERR_NOMEM, "%s: out of memory creating PNG decoder", path);
    }
    spng_set_image_limits(ctx, GRAY_MAX_DIM, GRAY_MAX_DIM);
    spng_set_chunk_limits(ctx, GRAY_MAX_CHUNK, GRAY_MAX_CHUNK);
    struct spng_ihdr ih;
    int e = spng_set_png_buffer(ctx, data, size);
    if (e) st = mt_fail(MTMI_ERR_PARSE, "%s: %s", path, spng_strerror(e));
    if (!st) st = gray_header(ctx, path, &ih);
    if (!st && (e = spng_decoded_image_size(ctx, SPNG_FMT_PNG, &out_len)))
        st = mt_fail(MTMI_ERR_PARSE, "%s: %s", path, spng_strerror(e));
    /* deflate expands at most ~1032x: a larger image is truncated or a bomb */
    if (!st && out_len / 1032 > size + (1u << 20))
        st = mt_fail(MTMI_ERR_PARSE, "%s: %ux%u image cannot fit in %zu bytes of PNG data", path, ih.width, ih.height, size);
    const size_t n = st ? 0 : (size_t)ih.width * ih.height;
    if (!st && out_len != n * (ih.bit_depth / 8)) st = mt_fail(MTMI_ERR_PARSE, "%s: unexpected decoded size", path);
    if (!st && (!(raw = malloc(out_len)) || !(*px = malloc(n * sizeof(uint16_t)))))
        st = mt_fail(MTMI_ERR_NOMEM, "%s: out of memory for a %ux%u image", path, ih.width, ih.height);
    if (!st && (e = spng_decode_image(ctx, raw, out_len, SPNG_FMT_PNG, 0)))
        st = mt_fail(MTMI_ERR_PARSE, "%s: corrupt PNG image data: %s", path, spng_strerror(e));
    if (!st) {
        if (ih.bit_depth == 16) memcpy(*px, raw, n * 2); /* host byte order */
        else
            for (size_t i = 0; i < n; i++) (*px)[i] = raw[i];
        *w = (int)ih.width, *h = (int)ih.height, *bits = ih.bit_depth;
    } else {
        free(*px);
        *px = NULL;
    }
    free(raw);
    free(data);
    spng_ctx_free(ctx);
    return st;
}
