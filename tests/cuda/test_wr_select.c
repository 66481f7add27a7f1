/* Which wgmma configuration the resident-weight 3x3 kernels (wgconv.cuh)
 * take for the depth head's layers, and in how many K parts: host logic
 * only (shapes and shared-memory sizes), so it runs without a GPU, in CI.
 * The expectations are the ones docs/PERFORMANCE.md predicts from (eighth
 * session): a change to the layouts' sizes, the 227 KB limit or the
 * preference order that moves a layer to another configuration fails
 * here before a GPU session measures the wrong kernel.  Exit 77 where the
 * wgmma kernels are not built (CMAKE_CUDA_ARCHITECTURES is not 90a). */
#include <stdio.h>
#include <string.h>

#include "cuda/kernels.h"
#include "cuda/qkernels.h"

#include "check.h"

/* an FP16 conv of the depth head at 1024x1024: H x W, C -> CO */
static mtk_hconv hconv(int H, int W, int C, int CO) {
    mtk_hconv h;
    memset(&h, 0, sizeof h);
    h.N = 1, h.H = H, h.W = W, h.C = C, h.CO = CO, h.act = 1;
    h.xpix = C, h.xs0 = (int64_t)H * W * C, h.ldy = CO, h.ys0 = (int64_t)H * W * CO;
    return h;
}

/* the same as an INT8 QConv (channels padded to 32) */
static mtk_qconv qconv(int H, int W, int C, int CO) {
    mtk_qconv q;
    memset(&q, 0, sizeof q);
    q.N = 1, q.H = q.OH = H, q.W = q.OW = W, q.C = C, q.Cp = (C + 31) / 32 * 32, q.CO = CO, q.COp = (CO + 31) / 32 * 32;
    q.KH = q.KW = 3, q.sh = q.sw = 1, q.ph = q.pw = 1, q.dh = q.dw = 1;
    q.x_scale = q.y_scale = 0.05f, q.act = 1, q.y_int8 = 1, q.ldy = q.COp, q.ys0 = (int64_t)H * W * q.COp;
    return q;
}

static int find_cfg(const char *prefix, int bn, int mt) {
    char want[96];
    snprintf(want, sizeof want, "%s (%dx8x8 pixels x %d,", prefix, mt, bn);
    for (int c = 1; c <= mtk_qconv_ncfg(); c++)
        if (!strncmp(mtk_qconv_cfg_name(c), want, strlen(want))) return c;
    return 0;
}

int main(void) {
    if (!mtk_hconv_built() || !mtk_qconv_wgmma_built()) {
        printf("skipped: the wgmma kernels are not built (CMAKE_CUDA_ARCHITECTURES is not 90a)\n");
        return 77;
    }
    static const struct {
        const char *name;
        int H, W, C, CO;
        int cfg, parts; /* FP16: the automatic choice and its K parts */
    } L[] = {
        {"fuse.0 512x512 96->32", 512, 512, 96, 32, 2, 1},
        {"fuse.1 256x256 224->64", 256, 256, 224, 64, 2, 1},  /* n64 needs two parts: n32 whole first */
        {"fuse.2 128x128 416->160", 128, 128, 416, 160, 2, 2}, /* n32 in two parts before n16 whole */
        {"fuse.3 64x64 256->256", 64, 64, 256, 256, 2, 1},
    };
    for (size_t i = 0; i < sizeof L / sizeof *L; i++) {
        const mtk_hconv h = hconv(L[i].H, L[i].W, L[i].C, L[i].CO);
        const int cfg = mtk_hconv_pick(&h), parts = mtk_hconv_parts(&h, cfg);
        printf("FP16 %-26s %s, K in %d\n", L[i].name, mtk_hconv_cfg_name(cfg), parts);
        CHECK(cfg == L[i].cfg && parts == L[i].parts, "%s: configuration %d in %d parts, expected %d in %d", L[i].name, cfg,
              parts, L[i].cfg, L[i].parts);
        /* n16 takes the 416-channel layer whole (2.5x its MMA time in
         * shared-memory reads: the pick prefers n32 in parts) */
        if (L[i].C == 416) CHECK(mtk_hconv_parts(&h, 3) == 1, "%s: n16 does not take it whole", L[i].name);
    }
    /* what none takes: a height no tile divides, C not in 16s, K too large
     * for four parts */
    mtk_hconv bad = hconv(12, 64, 64, 64);
    CHECK(mtk_hconv_pick(&bad) == 0, "H 12 was taken");
    bad = hconv(64, 64, 40, 64);
    CHECK(mtk_hconv_pick(&bad) == 0, "C 40 was taken");
    bad = hconv(64, 64, 2048, 32);
    CHECK(mtk_hconv_pick(&bad) == 0, "C 2048 was taken");
    bad = hconv(64, 64, 64, 64);
    bad.act = 2;
    CHECK(mtk_hconv_pick(&bad) == 0, "a sigmoid was taken");

    /* INT8: the resident configurations the automatic choice with wgmma
     * takes (q_pick: n64 x 1 row where COp is in 64s and it fits, else n32
     * x 2 rows) fit the layers they are meant for, and n64 does not fit the
     * 416-channel one (240 KB of weights) */
    const int n64 = find_cfg("wgmma resident 3x3", 64, 1), n32 = find_cfg("wgmma resident 3x3", 32, 2);
    CHECK(n64 > 0 && n32 > 0, "resident configurations not found (%d, %d)", n64, n32);
    for (size_t i = 0; i < sizeof L / sizeof *L; i++) {
        const mtk_qconv q = qconv(L[i].H, L[i].W, L[i].C, L[i].CO);
        const int want64 = q.COp % 64 == 0 && L[i].C != 416;
        printf("INT8 %-26s n64: %s, n32: %s\n", L[i].name, mtk_qconv_cfg_fits(&q, n64) ? "fits" : "no",
               mtk_qconv_cfg_fits(&q, n32) ? "fits" : "no");
        CHECK(mtk_qconv_cfg_fits(&q, n32), "%s: n32 does not fit", L[i].name);
        if (q.COp % 64 == 0) CHECK(mtk_qconv_cfg_fits(&q, n64) == want64, "%s: n64 fits %d, expected %d", L[i].name,
                                   mtk_qconv_cfg_fits(&q, n64), want64);
    }
    mtk_qconv q1 = qconv(60, 64, 64, 64); /* 60 rows: no 8-row tile divides them */
    CHECK(!mtk_qconv_cfg_fits(&q1, n32) && !mtk_qconv_cfg_fits(&q1, n64), "60 rows were taken");
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
