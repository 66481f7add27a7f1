/* PNG in through libspng; out through png_encode.c (libdeflate).
 *
 * Reading accepts every PNG colour type and bit depth and always yields RGB8:
 * libspng converts anything to RGBA8 (gray, gray+alpha, palette, 16-bit
 * included), and we drop the alpha channel, because the models take opaque
 * RGB frames.  Dimensions, chunk sizes and the decoded size are bounded
 * before any large allocation, so a hostile file cannot make us allocate
 * gigabytes; every failure is one line naming the file. */
#include "image/image.h"

#include <spng.h>
#include <stdlib.h>
#include <string.h>

/* Larger than any camera frame we expect, small enough that w*h*4 fits
 * comfortably in memory (16384^2*4 = 1 GiB is the worst case). */
#define MT_PNG_MAX_DIM 16384
/* Bounds on one chunk and on all cached ancillary chunks (text, ICC...). */
#define MT_PNG_MAX_CHUNK (64u << 20)
#define MT_PNG_MAX_CACHE (64u << 20)

void mt_image_free(mt_image *img) {
    if (!img) return;
    free(img->px);
    img->px = NULL;
    img->w = img->h = img->c = 0;
}

mtmi_status mt_png_read_buffer(const uint8_t *buf, size_t len, const char *what, mt_image *img) {
    if (!img) return mt_fail(MTMI_ERR_ARG, "mt_png_read_buffer: NULL image");
    memset(img, 0, sizeof *img);
    if (!what) what = "PNG data";
    if (!buf || len < 8) return mt_fail(MTMI_ERR_PARSE, "%s: not a PNG file (%zu bytes)", what, len);
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (memcmp(buf, sig, 8) != 0) return mt_fail(MTMI_ERR_PARSE, "%s: not a PNG file (bad signature)", what);

    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx) return mt_fail(MTMI_ERR_NOMEM, "%s: out of memory creating PNG decoder", what);
    mtmi_status st = MTMI_OK;
    uint8_t *rgb = NULL;
    int e;
    /* Limits are set before anything is parsed so that IHDR is checked too. */
    spng_set_image_limits(ctx, MT_PNG_MAX_DIM, MT_PNG_MAX_DIM);
    spng_set_chunk_limits(ctx, MT_PNG_MAX_CHUNK, MT_PNG_MAX_CACHE);
    if ((e = spng_set_png_buffer(ctx, buf, len)) != 0) {
        st = mt_fail(MTMI_ERR_PARSE, "%s: %s", what, spng_strerror(e));
        goto done;
    }
    struct spng_ihdr ih;
    if ((e = spng_get_ihdr(ctx, &ih)) != 0) {
        if (e == SPNG_EWIDTH || e == SPNG_EHEIGHT || e == SPNG_EUSER_WIDTH || e == SPNG_EUSER_HEIGHT)
            st = mt_fail(MTMI_ERR_PARSE, "%s: image dimensions invalid or larger than %dx%d", what, MT_PNG_MAX_DIM,
                         MT_PNG_MAX_DIM);
        else
            st = mt_fail(MTMI_ERR_PARSE, "%s: bad PNG header: %s", what, spng_strerror(e));
        goto done;
    }
    if (ih.width == 0 || ih.height == 0 || ih.width > MT_PNG_MAX_DIM || ih.height > MT_PNG_MAX_DIM) {
        st = mt_fail(MTMI_ERR_PARSE, "%s: image is %ux%u, limit is %dx%d", what, ih.width, ih.height, MT_PNG_MAX_DIM,
                     MT_PNG_MAX_DIM);
        goto done;
    }
    /* Straight to RGB8 (libspng converts every color type and bit depth;
     * alpha and tRNS transparency are dropped): no RGBA pass over the
     * pixels, a third less memory. */
    size_t out_len;
    if ((e = spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &out_len)) != 0) {
        st = mt_fail(MTMI_ERR_PARSE, "%s: %s", what, spng_strerror(e));
        goto done;
    }
    /* A PNG's compressed stream can expand at most ~1032x (deflate's ratio),
     * so an image much larger than that relative to the file is truncated or
     * a bomb; we still let libspng find the exact error, but refuse to
     * allocate more than that bound plus slack before decoding. */
    if (out_len / 1032 > len + (1u << 20)) {
        st = mt_fail(MTMI_ERR_PARSE, "%s: %ux%u image cannot fit in %zu bytes of PNG data (truncated?)", what,
                     ih.width, ih.height, len);
        goto done;
    }
    rgb = malloc(out_len);
    if (!rgb) {
        st = mt_fail(MTMI_ERR_NOMEM, "%s: out of memory for a %ux%u image", what, ih.width, ih.height);
        goto done;
    }
    if ((e = spng_decode_image(ctx, rgb, out_len, SPNG_FMT_RGB8, 0)) != 0) {
        st = mt_fail(MTMI_ERR_PARSE, "%s: corrupt PNG image data: %s", what, spng_strerror(e));
        goto done;
    }
    size_t n, need;
    if (mt_checked_mul(ih.width, ih.height, &n) || mt_checked_mul(n, 3, &need) || need > out_len) {
        st = mt_fail(MTMI_ERR_PARSE, "%s: %ux%u image does not match its decoded size", what, ih.width, ih.height);
        goto done;
    }
    img->px = rgb;
    rgb = NULL;
    img->w = (int)ih.width;
    img->h = (int)ih.height;
    img->c = 3;
done:
    free(rgb);
    spng_ctx_free(ctx);
    return st;
}

mtmi_status mt_png_read(const char *path, mt_image *img) {
    if (!path || !img) return mt_fail(MTMI_ERR_ARG, "mt_png_read: NULL argument");
    memset(img, 0, sizeof *img);
    uint8_t *data = NULL;
    size_t size = 0;
    mtmi_status s = mt_read_file(path, &data, &size);
    if (s) return s;
    s = mt_png_read_buffer(data, size, path, img);
    free(data);
    return s;
}

mtmi_status mt_png_write(const char *path, const mt_image *img) {
    if (!path || !img || !img->px) return mt_fail(MTMI_ERR_ARG, "mt_png_write: NULL argument");
    if (img->w <= 0 || img->h <= 0 || img->w > MT_PNG_MAX_DIM * 4 || img->h > MT_PNG_MAX_DIM * 4 ||
        (img->c != 1 && img->c != 3 && img->c != 4))
        return mt_fail(MTMI_ERR_ARG, "%s: cannot write a %dx%d image with %d channels", path, img->w, img->h, img->c);
    /* Encode into memory, then write atomically: a failure never leaves a
     * partial PNG under the final name.  Level 1: speed over size (`mtmi
     * run` writes a class map and a 3072x1072 vis per frame; png_encode.c
     * has the numbers). */
    uint8_t *png = NULL;
    size_t len = 0;
    mtmi_status st = mt_png_encode(img->px, img->w, img->h, img->c, 8, 1, path, &png, &len);
    if (st == MTMI_OK) st = mt_write_file_atomic(path, png, len);
    free(png);
    return st;
}
