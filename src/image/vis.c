/* The `mtmi run` visualization: input | class map | depth side by side, and
 * below them a legend strip naming the 19 Cityscapes classes by colour (so
 * a picture read without the docs still says what the colours mean).  The
 * names are drawn with a built-in 5x7 bitmap font: no font files, no
 * dependency. */
#include "image/image.h"

#include <stdlib.h>
#include <string.h>

const char *const mt_cityscapes_names[19] = {"road",  "sidewalk", "building", "wall",       "fence",        "pole",   "traffic light",
                                            "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car",
                                            "truck", "bus",      "train",    "motorcycle", "bicycle"};

/* a..z, 7 rows of 5 bits each (bit 4 = leftmost column). */
static const uint8_t g_font[26][7] = {
    {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}, {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E}, /* a b */
    {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E}, {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F}, /* c d */
    {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}, {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08}, /* e f */
    {0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E}, {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}, /* g h */
    {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E}, {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C}, /* i j */
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}, {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}, /* k l */
    {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11}, {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}, /* m n */
    {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E}, {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10}, /* o p */
    {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01}, {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}, /* q r */
    {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E}, {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06}, /* s t */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D}, {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04}, /* u v */
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A}, {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11}, /* w x */
    {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E}, {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F}, /* y z */
};

static void fill_rect(mt_image *im, int x0, int y0, int w, int h, const uint8_t rgb[3]) {
    for (int y = y0; y < y0 + h && y < im->h; y++)
        for (int x = x0; x < x0 + w && x < im->w; x++) memcpy(im->px + ((size_t)y * im->w + x) * 3, rgb, 3);
}

/* Draws lowercase text (other characters as spaces) at (x, y), each font
 * pixel a scale x scale square; stops at max_x. */
static void draw_text(mt_image *im, int x, int y, const char *s, int scale, int max_x, const uint8_t rgb[3]) {
    for (; *s && x + 5 * scale <= max_x; s++, x += 6 * scale) {
        if (*s < 'a' || *s > 'z') continue;
        const uint8_t *g = g_font[*s - 'a'];
        for (int r = 0; r < 7; r++)
            for (int c = 0; c < 5; c++)
                if (g[r] >> (4 - c) & 1) fill_rect(im, x + c * scale, y + r * scale, scale, scale, rgb);
    }
}

/* Two rows of ten entries (a swatch and the class name) across width w. */
static mtmi_status legend_strip(int w, mt_image *strip) {
    const int scale = w >= 2400 ? 2 : 1, row_h = 12 * scale, pad = 3 * scale;
    strip->w = w;
    strip->h = 2 * row_h;
    strip->c = 3;
    strip->px = malloc((size_t)strip->w * strip->h * 3);
    if (!strip->px) return mt_fail(MTMI_ERR_NOMEM, "out of memory for the vis legend");
    const uint8_t bg[3] = {24, 24, 24}, fg[3] = {235, 235, 235};
    fill_rect(strip, 0, 0, strip->w, strip->h, bg);
    const int per_row = 10, cell = w / per_row, sw = 7 * scale;
    for (int k = 0; k < 19; k++) {
        const int x = (k % per_row) * cell + pad, y = (k / per_row) * row_h + (row_h - 7 * scale) / 2;
        fill_rect(strip, x, y, sw, 7 * scale, mt_cityscapes_palette[k]);
        draw_text(strip, x + sw + 2 * scale, y, mt_cityscapes_names[k], scale, (k % per_row + 1) * cell - pad, fg);
    }
    return MTMI_OK;
}

/* A w x h RGB image of a map of mw x mh pixels (fitted when the sizes
 * differ); *tmp holds it when a new image was made. */
static mtmi_status at_input_size(mt_image *map, int w, int h, mt_image *tmp) {
    if (map->w == w && map->h == h) return MTMI_OK;
    mtmi_status s = mt_image_fit(map, w, h, tmp);
    if (!s) {
        mt_image_free(map);
        *map = *tmp;
        memset(tmp, 0, sizeof *tmp);
    }
    return s;
}

mtmi_status mt_vis_compose(const mt_image *input, const uint8_t *classes, int cw, int ch, const float *depth, int dw, int dh,
                           mt_image *out) {
    memset(out, 0, sizeof *out);
    mt_image parts[3] = {*input}, tmp = {0}, row = {0}, strip = {0};
    int n = 1;
    mtmi_status s = MTMI_OK;
    if (classes) {
        parts[n] = (mt_image){cw, ch, 3, malloc((size_t)cw * ch * 3)};
        if (!parts[n].px) goto oom;
        mt_colorize_classes(classes, cw, ch, parts[n].px);
        if ((s = at_input_size(&parts[n++], input->w, input->h, &tmp))) goto done;
    }
    if (depth) {
        parts[n] = (mt_image){dw, dh, 3, malloc((size_t)dw * dh * 3)};
        if (!parts[n].px) goto oom;
        mt_colorize_depth(depth, dw, dh, parts[n].px);
        if ((s = at_input_size(&parts[n++], input->w, input->h, &tmp))) goto done;
    }
    if ((s = mt_image_hconcat(parts, n, &row))) goto done;
    if (classes && (s = legend_strip(row.w, &strip))) goto done;
    if (!strip.px) {
        *out = row;
        memset(&row, 0, sizeof row);
        goto done;
    }
    *out = (mt_image){row.w, row.h + strip.h, 3, malloc((size_t)row.w * (row.h + strip.h) * 3)};
    if (!out->px) goto oom;
    memcpy(out->px, row.px, (size_t)row.w * row.h * 3);
    memcpy(out->px + (size_t)row.w * row.h * 3, strip.px, (size_t)strip.w * strip.h * 3);
    goto done;
oom:
    s = mt_fail(MTMI_ERR_NOMEM, "out of memory composing the vis");
done:
    for (int i = 1; i < 3; i++) mt_image_free(&parts[i]); /* parts[0] is the caller's */
    mt_image_free(&tmp);
    mt_image_free(&row);
    mt_image_free(&strip);
    return s;
}
