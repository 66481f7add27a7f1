/* Frame preprocessing (crop, resize, normalize), visualization colour maps and
 * synthetic street frames. */
#include "image/image.h"
#include "synth/synth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

mtmi_status mt_image_fit(const mt_image *src, int w, int h, mt_image *dst) {
    if (!src || !dst || !src->px || src->w <= 0 || src->h <= 0 || (src->c != 3 && src->c != 4))
        return mt_fail(MTMI_ERR_ARG, "mt_image_fit: bad source image");
    if (w <= 0 || h <= 0 || w > 65536 || h > 65536) return mt_fail(MTMI_ERR_ARG, "mt_image_fit: bad size %dx%d", w, h);
    memset(dst, 0, sizeof *dst);
    const int c = src->c;
    uint8_t *px = malloc((size_t)w * h * c);
    if (!px) return mt_fail(MTMI_ERR_NOMEM, "out of memory resizing to %dx%d", w, h);
    /* Centre crop to w:h, in exact integer arithmetic so that an image that
     * already has the aspect is not cropped at all. */
    int cw = src->w, ch = src->h;
    if ((int64_t)src->w * h > (int64_t)src->h * w) cw = (int)((int64_t)src->h * w / h);
    else ch = (int)((int64_t)src->w * h / w);
    if (cw < 1) cw = 1;
    if (ch < 1) ch = 1;
    const int x0 = (src->w - cw) / 2, y0 = (src->h - ch) / 2;
    if (cw == w && ch == h) { /* scale 1: the crop itself (what the bilinear below gives, without the arithmetic) */
        for (int y = 0; y < h; y++) memcpy(px + (size_t)y * w * c, src->px + ((size_t)(y0 + y) * src->w + x0) * c, (size_t)w * c);
        *dst = (mt_image){w, h, c, px};
        return MTMI_OK;
    }
    /* Bilinear with pixel centres at +0.5 (align_corners = False, like
     * PyTorch and OpenCV); at scale 1 every sample falls on a pixel, so a
     * same-size fit is an exact copy. */
    const double sx = (double)cw / w, sy = (double)ch / h;
    for (int y = 0; y < h; y++) {
        double fy = (y + 0.5) * sy - 0.5;
        if (fy < 0) fy = 0;
        int iy = (int)fy;
        if (iy > ch - 1) iy = ch - 1;
        int iy1 = iy + 1 < ch ? iy + 1 : ch - 1;
        float wy = (float)(fy - iy);
        if (wy > 1) wy = 1;
        const uint8_t *r0 = src->px + ((size_t)(y0 + iy) * src->w + x0) * c;
        const uint8_t *r1 = src->px + ((size_t)(y0 + iy1) * src->w + x0) * c;
        uint8_t *o = px + (size_t)y * w * c;
        for (int x = 0; x < w; x++) {
            double fx = (x + 0.5) * sx - 0.5;
            if (fx < 0) fx = 0;
            int ix = (int)fx;
            if (ix > cw - 1) ix = cw - 1;
            int ix1 = ix + 1 < cw ? ix + 1 : cw - 1;
            float wx = (float)(fx - ix);
            if (wx > 1) wx = 1;
            for (int k = 0; k < c; k++) {
                float a = r0[ix * c + k] + wx * (r0[ix1 * c + k] - r0[ix * c + k]);
                float b = r1[ix * c + k] + wx * (r1[ix1 * c + k] - r1[ix * c + k]);
                float v = a + wy * (b - a);
                o[x * c + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
            }
        }
    }
    dst->w = w;
    dst->h = h;
    dst->c = c;
    dst->px = px;
    return MTMI_OK;
}

const float mt_image_mean[3] = {123.675f, 116.28f, 103.53f};
const float mt_image_std[3] = {58.395f, 57.12f, 57.375f};

void mt_image_to_chw(const mt_image *img, float *chw) {
    const size_t n = (size_t)img->w * img->h;
    for (int k = 0; k < 3; k++) {
        const float m = mt_image_mean[k], inv = 1.0f / mt_image_std[k];
        float *o = chw + k * n;
        for (size_t i = 0; i < n; i++) o[i] = ((float)img->px[i * img->c + k] - m) * inv;
    }
}

/* ------------------------------------------------------------ colour maps */
const uint8_t mt_cityscapes_palette[19][3] = {
    {128, 64, 128},  /* road          */
    {244, 35, 232},  /* sidewalk      */
    {70, 70, 70},    /* building      */
    {102, 102, 156}, /* wall          */
    {190, 153, 153}, /* fence         */
    {153, 153, 153}, /* pole          */
    {250, 170, 30},  /* traffic light */
    {220, 220, 0},   /* traffic sign  */
    {107, 142, 35},  /* vegetation    */
    {152, 251, 152}, /* terrain       */
    {70, 130, 180},  /* sky           */
    {220, 20, 60},   /* person        */
    {255, 0, 0},     /* rider         */
    {0, 0, 142},     /* car           */
    {0, 0, 70},      /* truck         */
    {0, 60, 100},    /* bus           */
    {0, 80, 100},    /* train         */
    {0, 0, 230},     /* motorcycle    */
    {119, 11, 32},   /* bicycle       */
};

void mt_colorize_classes(const uint8_t *cls, int w, int h, uint8_t *rgb) {
    const size_t n = (size_t)w * h;
    for (size_t i = 0; i < n; i++) {
        if (cls[i] < 19) memcpy(rgb + 3 * i, mt_cityscapes_palette[cls[i]], 3);
        else memset(rgb + 3 * i, 0, 3);
    }
}

void mt_argmax_chw(const float *logits, int c, int w, int h, uint8_t *cls) {
    const size_t n = (size_t)w * h;
    for (size_t i = 0; i < n; i++) {
        int best = 0;
        float bv = logits[i];
        for (int k = 1; k < c; k++) {
            float v = logits[(size_t)k * n + i];
            /* NaN never wins, so a broken logit cannot pick a random class. */
            if (v > bv || (bv != bv && v == v)) {
                bv = v;
                best = k;
            }
        }
        cls[i] = (uint8_t)(best > 255 ? 255 : best);
    }
}

static uint8_t unit_byte(float v) {
    if (!(v > 0)) return 0;
    if (v >= 1) return 255;
    return (uint8_t)(v * 255.0f + 0.5f);
}

void mt_colorize_depth(const float *d, int w, int h, uint8_t *rgb) {
    const size_t n = (size_t)w * h;
    const double lnr = log(MT_DEPTH_FAR / MT_DEPTH_NEAR);
    for (size_t i = 0; i < n; i++) {
        /* jet over ln(metres) between the encoding's ends (synth.h): equal
         * colour steps are equal depth ratios */
        const float t = (float)(log(mt_depth_metres(d[i]) / MT_DEPTH_NEAR) / lnr);
        /* Jet: blue -> cyan -> yellow -> red as t goes 0 -> 1. */
        rgb[3 * i + 0] = unit_byte(1.5f - fabsf(4.0f * t - 3.0f));
        rgb[3 * i + 1] = unit_byte(1.5f - fabsf(4.0f * t - 2.0f));
        rgb[3 * i + 2] = unit_byte(1.5f - fabsf(4.0f * t - 1.0f));
    }
}

mtmi_status mt_image_hconcat(const mt_image *parts, int n, mt_image *dst) {
    if (!parts || n <= 0 || !dst) return mt_fail(MTMI_ERR_ARG, "mt_image_hconcat: bad arguments");
    memset(dst, 0, sizeof *dst);
    int w = 0, h = parts[0].h;
    for (int i = 0; i < n; i++) {
        if (parts[i].h != h || parts[i].c != 3 || !parts[i].px)
            return mt_fail(MTMI_ERR_ARG, "mt_image_hconcat: part %d is %dx%dx%d, expected height %d RGB", i, parts[i].w,
                           parts[i].h, parts[i].c, h);
        w += parts[i].w;
    }
    uint8_t *px = malloc((size_t)w * h * 3);
    if (!px) return mt_fail(MTMI_ERR_NOMEM, "out of memory for a %dx%d image", w, h);
    for (int y = 0; y < h; y++) {
        uint8_t *o = px + (size_t)y * w * 3;
        for (int i = 0; i < n; i++) {
            memcpy(o, parts[i].px + (size_t)y * parts[i].w * 3, (size_t)parts[i].w * 3);
            o += (size_t)parts[i].w * 3;
        }
    }
    dst->w = w;
    dst->h = h;
    dst->c = 3;
    dst->px = px;
    return MTMI_OK;
}

/* ------------------------------------------------------- synthetic frames */
/* The street scene of src/synth (the generator of `mtmi synth`): the
 * frames `run` and `bench` use without images are scenes with exact
 * ground truth, so the built-in model's results on them mean something. */
mtmi_status mt_image_synth_street(int w, int h, uint64_t seed, mt_image *dst) {
    if (!dst || w <= 0 || h <= 0 || w > 16384 || h > 16384)
        return mt_fail(MTMI_ERR_ARG, "mt_image_synth_street: bad size %dx%d", w, h);
    memset(dst, 0, sizeof *dst);
    mt_synth_scene *sc = NULL;
    mtmi_status s = mt_synth_scene_make(mt_synth_scene_seed(0, seed), w, h, &sc);
    if (s) return s;
    dst->px = malloc((size_t)w * h * 3);
    if (!dst->px) s = mt_fail(MTMI_ERR_NOMEM, "out of memory for a %dx%d frame", w, h);
    else s = mt_synth_render(sc, dst->px, NULL, NULL);
    mt_synth_scene_free(sc);
    if (s) mt_image_free(dst);
    else dst->w = w, dst->h = h, dst->c = 3;
    return s;
}
