/* image: PNG in (libspng) and out (libdeflate), fitting frames to the model's input,
 * normalization into tensors, and the visualization colour maps. */
#ifndef MT_IMAGE_H
#define MT_IMAGE_H

#include "core/core.h"

/* 8-bit interleaved pixels, c = 3 (RGB) or 4 (RGBA); 1 (gray) for writing. */
typedef struct mt_image {
    int w, h, c;
    uint8_t *px;
} mt_image;

/* Reads any PNG (gray, gray+alpha, RGB, RGBA, palette, 16-bit) as RGB8. */
mtmi_status mt_png_read(const char *path, mt_image *img);
mtmi_status mt_png_read_buffer(const uint8_t *buf, size_t len, const char *what, mt_image *img);
/* Writes gray8/RGB8/RGBA8 atomically, at a fast compression level. */
mtmi_status mt_png_write(const char *path, const mt_image *img);
void mt_image_free(mt_image *img);
/* png_gray.c: one-channel PNGs with their values kept: 16-bit gray
 * written from host-order samples (depth maps, metres x 256); 8- or 16-bit
 * gray or 8-bit palette indices read into uint16 samples (*bits says
 * which), e.g. label maps. */
mtmi_status mt_png_write_gray16(const char *path, int w, int h, const uint16_t *px);
mtmi_status mt_png_read_gray(const char *path, int *w, int *h, int *bits, uint16_t **px);
/* png_encode.c: an image in memory as a PNG file's bytes (*png malloc'ed):
 * channels 1 (gray), 3 (RGB) or 4 (RGBA) of 8 or 16 bits (16: uint16 samples
 * in host order), deflate level 1 (fast) .. 12 (small); `what` names the
 * image in errors. */
mtmi_status mt_png_encode(const void *px, int w, int h, int channels, int bits, int level, const char *what, uint8_t **png,
                          size_t *png_len);

/* Centre-crops src to the aspect of w x h, then resizes (bilinear). */
mtmi_status mt_image_fit(const mt_image *src, int w, int h, mt_image *dst);
/* SPEC normalization: (px - mean) / std per RGB channel, CHW float,
 * computed as (px - mean) * (1 / std) (mtmi.Preprocess on the CPU and the
 * GPU computes exactly this). */
extern const float mt_image_mean[3], mt_image_std[3];
void mt_image_to_chw(const mt_image *img, float *chw);

/* ----------------------------------------------------- visualization (SPEC 6)
 * vis.png = input | class map | depth, side by side. */
/* The 19 Cityscapes training classes' colours (road, sidewalk, ... bicycle). */
extern const uint8_t mt_cityscapes_palette[19][3];
/* Class map (one byte per pixel) to RGB8; classes >= 19 are black. */
void mt_colorize_classes(const uint8_t *cls, int w, int h, uint8_t *rgb);
/* Argmax over the c channels of CHW float logits (first maximum wins). */
void mt_argmax_chw(const float *logits, int c, int w, int h, uint8_t *cls);
/* Depth head output d (sigmoid, 0..1) to RGB8 in a jet colour map of the
 * distance it encodes (mt_depth_metres, synth.h: 0.5 to 80 m, log scale):
 * blue near, red far. */
void mt_colorize_depth(const float *d, int w, int h, uint8_t *rgb);
/* Places n RGB8 images of one height side by side. */
mtmi_status mt_image_hconcat(const mt_image *parts, int n, mt_image *dst);

/* Their names, lowercase ("road", ..., "bicycle"). */
extern const char *const mt_cityscapes_names[19];
/* vis.c: input | class map (cw x ch classes, NULL = none) | depth (dw x dh
 * sigmoid outputs, NULL = none), the maps fitted to the input's size, with
 * a legend strip of the class colours below when there is a class map. */
mtmi_status mt_vis_compose(const mt_image *input, const uint8_t *classes, int cw, int ch, const float *depth, int dw, int dh,
                           mt_image *out);

/* A synthetic street scene (src/synth: scene mt_synth_scene_seed(0, seed),
 * as `mtmi synth --seed 0` makes it) as an RGB frame: for demos and
 * benchmarks without image files. */
mtmi_status mt_image_synth_street(int w, int h, uint64_t seed, mt_image *dst);

#endif
