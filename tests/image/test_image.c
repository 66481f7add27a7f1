/* PNG reading and writing (round trip, every colour type, corrupt and
 * truncated files), fitting, normalization and the colour maps. */
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/image.h"

#include "check.h"

/* Encodes raw pixels in the given PNG format with libspng directly, so that
 * the reader is tested on files that our writer never produces. */
static uint8_t *encode(int w, int h, int color_type, int depth, const void *px, size_t len, const uint8_t *plte,
                       int nplte, size_t *out_len) {
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    struct spng_ihdr ih = {.width = w, .height = h, .bit_depth = depth, .color_type = color_type};
    spng_set_ihdr(ctx, &ih);
    if (plte) {
        struct spng_plte p = {.n_entries = nplte};
        for (int i = 0; i < nplte; i++) {
            p.entries[i].red = plte[3 * i];
            p.entries[i].green = plte[3 * i + 1];
            p.entries[i].blue = plte[3 * i + 2];
            p.entries[i].alpha = 255;
        }
        spng_set_plte(ctx, &p);
    }
    int e = spng_encode_image(ctx, px, len, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    uint8_t *buf = e ? NULL : spng_get_png_buffer(ctx, out_len, &e);
    if (e) printf("encode: %s\n", spng_strerror(e));
    spng_ctx_free(ctx);
    return buf;
}

/* PNG chunk CRC (ISO 3309), to forge headers that pass the CRC check. */
static uint32_t crc32_png(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static void set_ihdr_size(uint8_t *png, uint32_t w, uint32_t h) {
    for (int i = 0; i < 4; i++) png[16 + i] = (uint8_t)(w >> (24 - 8 * i)), png[20 + i] = (uint8_t)(h >> (24 - 8 * i));
    uint32_t c = crc32_png(png + 12, 17); /* "IHDR" + 13 data bytes */
    for (int i = 0; i < 4; i++) png[29 + i] = (uint8_t)(c >> (24 - 8 * i));
}

static uint8_t pat(int x, int y, int k) { return (uint8_t)(x * 7 + y * 13 + k * 71); }

static void test_round_trip(const char *dir) {
    mt_image img = {.w = 37, .h = 23, .c = 3};
    img.px = malloc(37 * 23 * 3);
    for (int y = 0; y < 23; y++)
        for (int x = 0; x < 37; x++)
            for (int k = 0; k < 3; k++) img.px[(y * 37 + x) * 3 + k] = pat(x, y, k);
    char path[512];
    snprintf(path, sizeof path, "%s/rt.png", dir);
    CHECK(mt_png_write(path, &img) == MTMI_OK, "write: %s", mtmi_last_error());
    mt_image back;
    CHECK(mt_png_read(path, &back) == MTMI_OK, "read: %s", mtmi_last_error());
    CHECK(back.w == 37 && back.h == 23 && back.c == 3, "round trip size %dx%dx%d", back.w, back.h, back.c);
    CHECK(back.px && !memcmp(back.px, img.px, 37 * 23 * 3), "round trip pixels differ");
    mt_image_free(&back);
    /* No temporary left behind. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp > /dev/null", dir);
    CHECK(system(cmd) != 0, "temporary file left in %s", dir);
    /* RGBA writes too; reading drops alpha. */
    mt_image rgba = {.w = 5, .h = 4, .c = 4};
    rgba.px = malloc(5 * 4 * 4);
    for (int i = 0; i < 20; i++) for (int k = 0; k < 4; k++) rgba.px[i * 4 + k] = (uint8_t)(i * 10 + k);
    CHECK(mt_png_write(path, &rgba) == MTMI_OK, "write rgba: %s", mtmi_last_error());
    CHECK(mt_png_read(path, &back) == MTMI_OK, "read rgba: %s", mtmi_last_error());
    int ok = back.c == 3;
    for (int i = 0; i < 20 && ok; i++) ok = !memcmp(back.px + 3 * i, rgba.px + 4 * i, 3);
    CHECK(ok, "rgba -> rgb pixels");
    mt_image_free(&back);
    mt_image_free(&rgba);
    /* Writing into a missing folder fails cleanly. */
    CHECK(mt_png_write("/nonexistent/dir/x.png", &img) == MTMI_ERR_IO, "write to missing dir");
    CHECK(strstr(mtmi_last_error(), "x.png") != NULL, "error names the file: %s", mtmi_last_error());
    mt_image_free(&img);
}

/* png_encode.c against libspng's decoder: every channel count and bit
 * depth, odd sizes (1 pixel, one row, one column), random and flat
 * content; the decoded samples must equal the written ones exactly. */
static uint32_t xorshift(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static int decode_native(const uint8_t *png, size_t len, int w, int h, int bytes_per_px, uint8_t *out) {
    spng_ctx *ctx = spng_ctx_new(0);
    size_t want = (size_t)w * h * bytes_per_px, got = 0;
    struct spng_ihdr ih;
    int ok = ctx && !spng_set_png_buffer(ctx, png, len) && !spng_get_ihdr(ctx, &ih) && (int)ih.width == w &&
             (int)ih.height == h && !spng_decoded_image_size(ctx, SPNG_FMT_PNG, &got) && got == want &&
             !spng_decode_image(ctx, out, want, SPNG_FMT_PNG, 0);
    spng_ctx_free(ctx);
    return ok;
}

static void test_encode_round_trip(void) {
    static const int sizes[][2] = {{1, 1}, {7, 1}, {1, 9}, {33, 17}, {300, 5}};
    uint32_t seed = 12345;
    int cases = 0, bad = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
        for (int ch = 1; ch <= 4; ch++)
            for (int bits = 8; bits <= 16; bits += 8)
                for (int flat = 0; flat < 2; flat++) {
                    if (ch == 2 || (bits == 16 && ch != 1)) continue; /* what the writers make */
                    const int w = sizes[si][0], h = sizes[si][1], bpp = ch * bits / 8;
                    const size_t n = (size_t)w * h * bpp;
                    uint8_t *px = malloc(n), *back = malloc(n), *png = NULL;
                    size_t len = 0;
                    for (size_t i = 0; i < n; i++) px[i] = flat ? (uint8_t)(0x5a + i % bpp) : (uint8_t)xorshift(&seed);
                    cases++;
                    int ok = mt_png_encode(px, w, h, ch, bits, 1 + (int)(si % 3) * 4, "rt", &png, &len) == MTMI_OK;
                    /* SPNG_FMT_PNG gives 16-bit samples in host order, as we pass them. */
                    ok = ok && decode_native(png, len, w, h, bpp, back) && !memcmp(back, px, n);
                    if (!ok) {
                        bad++;
                        printf("  encode round trip failed: %dx%d, %d channels, %d bits, %s\n", w, h, ch, bits, flat ? "flat" : "random");
                    }
                    free(px);
                    free(back);
                    free(png);
                }
    CHECK(!bad && cases == 40, "PNG encoder round trip: %d of %d cases wrong", bad, cases);
    uint8_t *png = NULL;
    size_t len = 0;
    uint8_t one = 0;
    CHECK(mt_png_encode(&one, 1, 1, 2, 8, 1, "two.png", &png, &len) == MTMI_ERR_ARG && !png, "2 channels refused");
    CHECK(mt_png_encode(&one, 1, 1, 1, 12, 1, "b.png", &png, &len) == MTMI_ERR_ARG && strstr(mtmi_last_error(), "b.png"),
          "12 bits refused, naming the image: %s", mtmi_last_error());
    CHECK(mt_png_encode(&one, 0, 1, 1, 8, 1, "z.png", &png, &len) == MTMI_ERR_ARG, "zero width refused");
}

static void test_color_types(void) {
    const int w = 9, h = 6;
    size_t len;
    mt_image im;
    /* 8-bit gray */
    uint8_t g8[9 * 6];
    for (int i = 0; i < w * h; i++) g8[i] = (uint8_t)(i * 4);
    uint8_t *png = encode(w, h, SPNG_COLOR_TYPE_GRAYSCALE, 8, g8, sizeof g8, NULL, 0, &len);
    CHECK(png && mt_png_read_buffer(png, len, "gray8", &im) == MTMI_OK, "gray8: %s", mtmi_last_error());
    int ok = im.c == 3 && im.w == w && im.h == h;
    for (int i = 0; i < w * h && ok; i++) ok = im.px[3 * i] == g8[i] && im.px[3 * i + 1] == g8[i] && im.px[3 * i + 2] == g8[i];
    CHECK(ok, "gray8 pixels");
    mt_image_free(&im);
    free(png);
    /* gray + alpha */
    uint8_t ga[9 * 6 * 2];
    for (int i = 0; i < w * h; i++) ga[2 * i] = (uint8_t)(i * 3), ga[2 * i + 1] = 17;
    png = encode(w, h, SPNG_COLOR_TYPE_GRAYSCALE_ALPHA, 8, ga, sizeof ga, NULL, 0, &len);
    CHECK(png && mt_png_read_buffer(png, len, "ga8", &im) == MTMI_OK, "ga8: %s", mtmi_last_error());
    ok = im.c == 3;
    for (int i = 0; i < w * h && ok; i++) ok = im.px[3 * i] == ga[2 * i] && im.px[3 * i + 2] == ga[2 * i];
    CHECK(ok, "ga8 pixels");
    mt_image_free(&im);
    free(png);
    /* RGBA 8 */
    uint8_t rgba[9 * 6 * 4];
    for (int i = 0; i < w * h * 4; i++) rgba[i] = (uint8_t)(i * 5);
    png = encode(w, h, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 8, rgba, sizeof rgba, NULL, 0, &len);
    CHECK(png && mt_png_read_buffer(png, len, "rgba8", &im) == MTMI_OK, "rgba8: %s", mtmi_last_error());
    ok = im.c == 3;
    for (int i = 0; i < w * h && ok; i++) ok = !memcmp(im.px + 3 * i, rgba + 4 * i, 3);
    CHECK(ok, "rgba8 pixels");
    mt_image_free(&im);
    free(png);
    /* palette, 8-bit indices */
    uint8_t plte[4 * 3] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30};
    uint8_t idx[9 * 6];
    for (int i = 0; i < w * h; i++) idx[i] = (uint8_t)(i % 4);
    png = encode(w, h, SPNG_COLOR_TYPE_INDEXED, 8, idx, sizeof idx, plte, 4, &len);
    CHECK(png && mt_png_read_buffer(png, len, "palette", &im) == MTMI_OK, "palette: %s", mtmi_last_error());
    ok = im.c == 3;
    for (int i = 0; i < w * h && ok; i++) ok = !memcmp(im.px + 3 * i, plte + 3 * idx[i], 3);
    CHECK(ok, "palette pixels");
    mt_image_free(&im);
    free(png);
    /* 16-bit RGB (host-endian in spng's PNG format): v*257 reads back as v */
    uint16_t rgb16[9 * 6 * 3];
    for (int i = 0; i < w * h * 3; i++) rgb16[i] = (uint16_t)((i * 3 % 256) * 257);
    png = encode(w, h, SPNG_COLOR_TYPE_TRUECOLOR, 16, rgb16, sizeof rgb16, NULL, 0, &len);
    CHECK(png && mt_png_read_buffer(png, len, "rgb16", &im) == MTMI_OK, "rgb16: %s", mtmi_last_error());
    ok = im.c == 3;
    for (int i = 0; i < w * h * 3 && ok; i++) ok = im.px[i] == (uint8_t)(i * 3 % 256);
    CHECK(ok, "rgb16 pixels");
    mt_image_free(&im);
    free(png);
    /* 16-bit gray */
    uint16_t g16[9 * 6];
    for (int i = 0; i < w * h; i++) g16[i] = (uint16_t)(i * 257);
    png = encode(w, h, SPNG_COLOR_TYPE_GRAYSCALE, 16, g16, sizeof g16, NULL, 0, &len);
    CHECK(png && mt_png_read_buffer(png, len, "gray16", &im) == MTMI_OK, "gray16: %s", mtmi_last_error());
    ok = im.c == 3;
    for (int i = 0; i < w * h && ok; i++) ok = im.px[3 * i] == i && im.px[3 * i + 1] == i;
    CHECK(ok, "gray16 pixels");
    mt_image_free(&im);
    free(png);
}

static void expect_error(const uint8_t *buf, size_t len, const char *what) {
    mt_image im;
    mtmi_status s = mt_png_read_buffer(buf, len, what, &im);
    CHECK(s != MTMI_OK, "%s: accepted", what);
    CHECK(im.px == NULL, "%s: pixels left on error", what);
    const char *e = mtmi_last_error();
    CHECK(strstr(e, what) != NULL && strchr(e, '\n') == NULL, "%s: error '%s'", what, e);
    mt_image_free(&im);
}

static void test_corrupt(void) {
    const int w = 64, h = 64;
    uint8_t *px = malloc(w * h * 3);
    for (int i = 0; i < w * h * 3; i++) px[i] = (uint8_t)(i * 31 + (i >> 7));
    size_t len;
    uint8_t *png = encode(w, h, SPNG_COLOR_TYPE_TRUECOLOR, 8, px, w * h * 3, NULL, 0, &len);
    CHECK(png != NULL, "encode");
    expect_error(png, 0, "empty");
    expect_error(png, 7, "short");
    expect_error((const uint8_t *)"GIF89a..........", 16, "notpng");
    /* Every truncation point must fail (the IEND chunk is the last 12 bytes). */
    int bad = 0;
    for (size_t cut = 8; cut < len - 12; cut += 1 + cut / 16) {
        mt_image im;
        if (mt_png_read_buffer(png, cut, "trunc", &im) == MTMI_OK) {
            bad++;
            mt_image_free(&im);
        }
    }
    CHECK(bad == 0, "%d truncated files accepted", bad);
    expect_error(png, len / 2, "truncated");
    /* A flipped byte in the image data breaks the CRC. */
    uint8_t *c = malloc(len);
    memcpy(c, png, len);
    c[len / 2] ^= 0x55;
    expect_error(c, len, "crc");
    /* Huge declared dimensions (IHDR with a fixed CRC) are refused early. */
    memcpy(c, png, len);
    set_ihdr_size(c, 64, 64);
    mt_image im;
    CHECK(mt_png_read_buffer(c, len, "forged", &im) == MTMI_OK, "re-forged header broke the file: %s", mtmi_last_error());
    mt_image_free(&im);
    set_ihdr_size(c, 65536, 64);
    expect_error(c, len, "huge");
    CHECK(strstr(mtmi_last_error(), "16384") != NULL, "huge: error '%s'", mtmi_last_error());
    set_ihdr_size(c, 16000, 16000); /* within limits but not in this data */
    expect_error(c, len, "bomb");
    free(c);
    free(png);
    free(px);
    CHECK(mt_png_read("/nonexistent/none.png", &(mt_image){0}) == MTMI_ERR_IO, "missing file");
}

static void test_fit_and_chw(void) {
    mt_image src = {.w = 8, .h = 4, .c = 3};
    src.px = malloc(8 * 4 * 3);
    for (int i = 0; i < 8 * 4 * 3; i++) src.px[i] = (uint8_t)(i * 3);
    mt_image dst;
    /* Same size: an exact copy. */
    CHECK(mt_image_fit(&src, 8, 4, &dst) == MTMI_OK && !memcmp(dst.px, src.px, 8 * 4 * 3), "identity fit");
    mt_image_free(&dst);
    /* 8x4 to 4x4 crops the centre 4x4 (columns 2..5) exactly. */
    CHECK(mt_image_fit(&src, 4, 4, &dst) == MTMI_OK, "fit");
    int ok = dst.w == 4 && dst.h == 4;
    for (int y = 0; y < 4 && ok; y++) ok = !memcmp(dst.px + y * 12, src.px + (y * 8 + 2) * 3, 12);
    CHECK(ok, "centre crop");
    mt_image_free(&dst);
    /* Downscale by 2 of a constant image stays constant; upscale is smooth. */
    CHECK(mt_image_fit(&src, 16, 8, &dst) == MTMI_OK && dst.w == 16 && dst.h == 8, "upscale");
    mt_image_free(&dst);
    CHECK(mt_image_fit(&src, 0, 8, &dst) != MTMI_OK, "zero size accepted");
    float chw[3 * 32];
    mt_image_to_chw(&src, chw);
    CHECK(chw[0] == (0 - 123.675f) / 58.395f || (chw[0] - (0 - 123.675f) / 58.395f) < 1e-6f, "chw[0] %g", chw[0]);
    float v = chw[32 + 5], want = (src.px[5 * 3 + 1] - 116.28f) / 57.12f;
    CHECK(v - want < 1e-5f && want - v < 1e-5f, "chw G %g vs %g", v, want);
    mt_image_free(&src);
}

static void test_colormaps(void) {
    uint8_t cls[4] = {0, 10, 13, 200}, rgb[12];
    mt_colorize_classes(cls, 4, 1, rgb);
    CHECK(rgb[0] == 128 && rgb[1] == 64 && rgb[2] == 128, "road colour");
    CHECK(rgb[3] == 70 && rgb[4] == 130 && rgb[5] == 180, "sky colour");
    CHECK(rgb[6] == 0 && rgb[7] == 0 && rgb[8] == 142, "car colour");
    CHECK(rgb[9] == 0 && rgb[10] == 0 && rgb[11] == 0, "out-of-range class black");
    float logits[3 * 2] = {1, 5, 3, 2, 3, 9}; /* c=3, 2 pixels */
    uint8_t am[2];
    mt_argmax_chw(logits, 3, 2, 1, am);
    CHECK(am[0] == 1 && am[1] == 2, "argmax %d %d", am[0], am[1]);
    float d[3] = {1.0f, 0.0f, 0.5f};
    uint8_t j[9];
    mt_colorize_depth(d, 3, 1, j);
    CHECK(j[2] > 100 && j[0] == 0, "near is blue (%d %d %d)", j[0], j[1], j[2]);
    CHECK(j[3] > 100 && j[5] == 0, "far is red (%d %d %d)", j[3], j[4], j[5]);
    CHECK(j[7] == 255, "middle is green-ish (%d %d %d)", j[6], j[7], j[8]);
    mt_image a, b, cat;
    CHECK(mt_image_synth_street(32, 16, 1, &a) == MTMI_OK, "synth");
    CHECK(mt_image_synth_street(32, 16, 2, &b) == MTMI_OK, "synth 2");
    CHECK(memcmp(a.px, b.px, 32 * 16 * 3) != 0, "synthetic frames vary with the seed");
    mt_image parts[2] = {a, b};
    CHECK(mt_image_hconcat(parts, 2, &cat) == MTMI_OK && cat.w == 64 && cat.h == 16, "hconcat");
    CHECK(!memcmp(cat.px + 32 * 3, b.px, 32 * 3), "hconcat layout");
    mt_image_free(&a);
    mt_image_free(&b);
    mt_image_free(&cat);
}

int main(void) {
    char dir[200];
    if (!mkdtemp(test_tmp_template(dir, sizeof dir, "mtmi_image_"))) return 1;
    test_round_trip(dir);
    test_encode_round_trip();
    test_color_types();
    test_corrupt();
    test_fit_and_chw();
    test_colormaps();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) {}
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
