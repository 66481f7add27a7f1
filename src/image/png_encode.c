/* PNG out: the chunks written here, the deflate stream by libdeflate.
 *
 * Why not libspng's encoder (which reads still use): it deflates through
 * zlib, and `mtmi run --save vis` spends most of a frame's CPU there.  On
 * a 3072x1072 vis of the trained model (this project's dev machine,
 * 2026-12-06) zlib level 1 with Z_RLE took 76-78 ms for 2.8 MB and
 * libspng's whole encode 96 ms; libdeflate level 1 takes 46 ms for 2.4 MB.
 * libdeflate compresses a whole buffer at once (no streaming), which suits
 * us: the image is in memory and the file is written atomically anyway.
 *
 * The format is the minimal one every reader takes: signature, IHDR, one
 * IDAT (a chunk holds up to 2^31 - 1 bytes; our images are bounded far
 * below that), IEND; no interlacing; filter type 2 (Up) on every row,
 * which suits both photos and flat maps and costs one subtraction a byte.
 * 16-bit samples are written big-endian, as PNG requires. */
#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"

#define PNG_MAX_DIM 65535 /* far above any frame; keeps every size below in range */

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes one chunk (length, type, data, CRC over type and data) at p;
 * returns the bytes written.  data may already be at p + 8. */
static size_t put_chunk(uint8_t *p, const char type[4], const uint8_t *data, uint32_t len) {
    put_be32(p, len);
    memcpy(p + 4, type, 4);
    if (data && data != p + 8) memcpy(p + 8, data, len);
    put_be32(p + 8 + len, libdeflate_crc32(0, p + 4, (size_t)len + 4));
    return (size_t)len + 12;
}

/* Row y of the image as PNG bytes (big-endian samples) into row. */
static void row_bytes(const void *px, int depth16, size_t row_samples, int y, uint8_t *row) {
    if (!depth16) {
        memcpy(row, (const uint8_t *)px + (size_t)y * row_samples, row_samples);
        return;
    }
    const uint16_t *s = (const uint16_t *)px + (size_t)y * row_samples;
    for (size_t i = 0; i < row_samples; i++) {
        row[2 * i] = (uint8_t)(s[i] >> 8);
        row[2 * i + 1] = (uint8_t)s[i];
    }
}

/* The filtered scanlines: per row a filter byte (2 = Up) and each byte
 * minus the byte above it (the first row has nothing above: Up of zeros). */
static void filter_up(const void *px, int depth16, int w, int h, int channels, uint8_t *out) {
    const size_t row_samples = (size_t)w * channels, stride = row_samples * (depth16 ? 2 : 1);
    if (!depth16) { /* one pass straight from the image: the common case */
        const uint8_t *src = px;
        for (int y = 0; y < h; y++) {
            uint8_t *o = out + (size_t)y * (stride + 1);
            const uint8_t *r = src + (size_t)y * stride;
            o[0] = 2;
            if (y == 0) {
                memcpy(o + 1, r, stride);
                continue;
            }
            const uint8_t *above = r - stride;
            for (size_t x = 0; x < stride; x++) o[1 + x] = (uint8_t)(r[x] - above[x]);
        }
        return;
    }
    for (int y = 0; y < h; y++) {
        uint8_t *o = out + (size_t)y * (stride + 1);
        o[0] = 2;
        row_bytes(px, depth16, row_samples, y, o + 1);
    }
    /* Bottom-up, in place: each row still holds its raw bytes when the row
     * below it is filtered. */
    for (int y = h - 1; y > 0; y--) {
        uint8_t *o = out + (size_t)y * (stride + 1) + 1;
        const uint8_t *above = o - (stride + 1);
        for (size_t x = 0; x < stride; x++) o[x] = (uint8_t)(o[x] - above[x]);
    }
}

mtmi_status mt_png_encode(const void *px, int w, int h, int channels, int bits, int level, const char *what, uint8_t **png,
                          size_t *png_len) {
    *png = NULL;
    *png_len = 0;
    if (!what) what = "PNG";
    if (!px || w <= 0 || h <= 0 || w > PNG_MAX_DIM || h > PNG_MAX_DIM || (bits != 8 && bits != 16) ||
        (channels != 1 && channels != 3 && channels != 4))
        return mt_fail(MTMI_ERR_ARG, "%s: cannot write a %dx%d image with %d channels of %d bits", what, w, h, channels, bits);
    const int depth16 = bits == 16;
    const size_t stride = (size_t)w * channels * (depth16 ? 2 : 1), raw_len = (size_t)h * (stride + 1);
    uint8_t *raw = malloc(raw_len);
    struct libdeflate_compressor *z = libdeflate_alloc_compressor(level);
    if (!raw || !z) {
        free(raw);
        libdeflate_free_compressor(z);
        return mt_fail(MTMI_ERR_NOMEM, "%s: out of memory encoding a %dx%d PNG", what, w, h);
    }
    filter_up(px, depth16, w, h, channels, raw);
    const size_t bound = libdeflate_zlib_compress_bound(z, raw_len);
    /* signature 8 + IHDR 25 + IDAT 12 + data + IEND 12 */
    uint8_t *out = malloc(57 + bound);
    size_t zlen = out ? libdeflate_zlib_compress(z, raw, raw_len, out + 8 + 25 + 8, bound) : 0;
    free(raw);
    libdeflate_free_compressor(z);
    if (!out || zlen == 0 || zlen > 0x7fffffffu) {
        free(out);
        return out ? mt_fail(MTMI_ERR_IO, "%s: PNG encoding failed (deflate)", what)
                   : mt_fail(MTMI_ERR_NOMEM, "%s: out of memory encoding a %dx%d PNG", what, w, h);
    }
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t color_type[5] = {0, 0 /* gray */, 0, 2 /* RGB */, 6 /* RGBA */};
    uint8_t ihdr[13];
    put_be32(ihdr, (uint32_t)w);
    put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = (uint8_t)bits;
    ihdr[9] = color_type[channels];
    ihdr[10] = ihdr[11] = ihdr[12] = 0; /* deflate, adaptive filtering, no interlace */
    memcpy(out, sig, 8);
    size_t n = 8;
    n += put_chunk(out + n, "IHDR", ihdr, 13);
    n += put_chunk(out + n, "IDAT", out + n + 8, (uint32_t)zlen);
    n += put_chunk(out + n, "IEND", NULL, 0);
    *png = out;
    *png_len = n;
    return MTMI_OK;
}
