/* The image functions of libmtmi on .npy files, for tests/image/test_fit.py
 * (which checks them against an independent NumPy implementation):
 *   image_tool png IN.png OUT.npy           PNG -> uint8 [H, W, 3]
 *   image_tool fit IN.npy W H OUT.npy       mt_image_fit (uint8 [H, W, C], C = 3 or 4)
 *   image_tool chw IN.npy OUT.npy           mt_image_to_chw -> float32 [3, H, W]
 * Exit status 0 on success, 1 with a one-line error otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"
#include "image/image.h"

static int fail(const char *what) {
    fprintf(stderr, "image_tool: %s: %s\n", what, mtmi_last_error());
    return 1;
}

static int read_image(const char *path, mt_image *img) {
    mtmi_tensor t;
    if (mt_npy_read(path, &t)) return fail(path);
    if (t.dtype != MTMI_UINT8 || t.rank != 3 || (t.dims[2] != 3 && t.dims[2] != 4)) {
        fprintf(stderr, "image_tool: %s: need uint8 [H, W, 3 or 4]\n", path);
        free(t.data);
        return 1;
    }
    img->h = (int)t.dims[0];
    img->w = (int)t.dims[1];
    img->c = (int)t.dims[2];
    img->px = t.data;
    return 0;
}

static int write_image(const char *path, const mt_image *img) {
    mtmi_tensor t = {.dtype = MTMI_UINT8, .rank = 3, .dims = {img->h, img->w, img->c}, .data = img->px};
    return mt_npy_write(path, &t) ? fail(path) : 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "png")) {
        mt_image img;
        if (mt_png_read(argv[2], &img)) return fail(argv[2]);
        int rc = write_image(argv[3], &img);
        mt_image_free(&img);
        return rc;
    }
    if (argc == 6 && !strcmp(argv[1], "fit")) {
        mt_image src, dst;
        if (read_image(argv[2], &src)) return 1;
        int rc = mt_image_fit(&src, atoi(argv[3]), atoi(argv[4]), &dst) ? fail("mt_image_fit") : write_image(argv[5], &dst);
        mt_image_free(&src);
        if (!rc) mt_image_free(&dst);
        return rc;
    }
    if (argc == 4 && !strcmp(argv[1], "chw")) {
        mt_image src;
        if (read_image(argv[2], &src)) return 1;
        float *chw = malloc(sizeof(float) * 3 * (size_t)src.w * src.h);
        mtmi_tensor t = {.dtype = MTMI_FLOAT, .rank = 3, .dims = {3, src.h, src.w}, .data = chw};
        int rc = 1;
        if (chw) {
            mt_image_to_chw(&src, chw);
            rc = mt_npy_write(argv[3], &t) ? fail(argv[3]) : 0;
        }
        free(chw);
        mt_image_free(&src);
        return rc;
    }
    fprintf(stderr, "usage: image_tool png IN.png OUT.npy | fit IN.npy W H OUT.npy | chw IN.npy OUT.npy\n");
    return 1;
}
