/* GPU check of the FP16 3x3 convolution on wgmma with resident weights
 * (mtk_hconv3x3, src/cuda/hconv.cu and wgconv.cuh) against a CPU reference
 * in double over the same FP16 inputs; they differ by the FP32 sums' order
 * and the output's FP16 rounding, so each element must be within 2e-3 +
 * 4e-3 |ref| (FP16's half-ulp is 4.9e-4 relative).  Every configuration
 * that fits each case runs, with the whole GPU and with SM budgets of 1 and
 * 3 (mtk_set_sm_limit: the persistent blocks then run many tiles each, and
 * a last round that not every warpgroup has), and in as many K parts as
 * its weights need (mtk_hconv_parts: the partial sums through an FP32
 * scratch; some case must run so).  Cases: the depth head's
 * four layers at reduced resolution, two images with padding between them
 * (xs0 > H W xpix), a strided input (pixel stride > C), an output slice of
 * a wider tensor (the channels around it must keep their guard values), CO
 * that is not a multiple of the block (odd, too), FP16 / FP32 / no bias,
 * ReLU and none.  A configuration that fits no case, or a build with the
 * kernels in which none ran, fails.  Exit 1 on failure, 77 when no GPU or
 * when the kernels are not built (an sm_90 build: said so, not hidden).
 * --bench: the depth head's four layers at 1024x1024, median of 50
 * launches per configuration, us and TFLOP/s.  --quick: only the three
 * small cases at budgets 0 and 1 (what compute-sanitizer runs). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/kernels.h"

#include "cuda/cuda_ck.h"
#include "cuda/cuda_testutil.h"
#include "oracle.h"

static int g_fail = 0;
static mt_rng g_rng;

typedef struct hcase {
    const char *name;
    int N, H, W, C, CO, act;
    int bias;      /* 0 none, 1 FP16, 2 FP32 */
    int xpad;      /* extra channels of input pixel stride */
    int ximg;      /* extra elements between input images */
    int ypix, yoff; /* output pixel stride and first channel (a slice); ypix 0: CO */
} hcase;

typedef struct hbufs {
    uint16_t *hx, *hw, *hy0;
    float *hbf;         /* the bias as floats (FP16-rounded for an FP16 bias) */
    void *dx, *dw, *db, *dy, *dscratch;
    int64_t xs0, xpix, ys0, ldy, nx, ny;
} hbufs;

static void make_bufs(const hcase *c, hbufs *b) {
    memset(b, 0, sizeof *b);
    b->xpix = c->C + c->xpad;
    b->xs0 = (int64_t)c->H * c->W * b->xpix + c->ximg;
    b->nx = c->N * b->xs0;
    b->hx = rnd_half(&g_rng, b->nx, 1.f);
    b->dx = dev_copy(b->hx, b->nx * 2);
    const int64_t nw = (int64_t)c->CO * 9 * c->C;
    b->hw = rnd_half(&g_rng, nw, 1.f / sqrtf(9.f * c->C));
    b->dw = dev_copy(b->hw, nw * 2);
    b->hbf = calloc(c->CO, sizeof(float));
    if (c->bias == 1) {
        uint16_t *hb = rnd_half(&g_rng, c->CO, 0.3f);
        for (int k = 0; k < c->CO; k++) b->hbf[k] = mt_half_to_float(hb[k]);
        b->db = dev_copy(hb, c->CO * 2);
        free(hb);
    } else if (c->bias == 2) {
        for (int k = 0; k < c->CO; k++) b->hbf[k] = (float)mt_rng_normal(&g_rng) * 0.3f;
        b->db = dev_copy(b->hbf, c->CO * 4);
    }
    b->ldy = c->ypix ? c->ypix : c->CO;
    b->ys0 = (int64_t)c->H * c->W * b->ldy;
    b->ny = c->N * b->ys0;
    /* guard values: every element the kernel must not write keeps them */
    b->hy0 = malloc(b->ny * 2);
    for (int64_t i = 0; i < b->ny; i++) b->hy0[i] = mt_float_to_half(-77.f);
    b->dy = dev_copy(b->hy0, b->ny * 2);
    /* the partial sums of configurations that run K in parts */
    CK(cudaMalloc(&b->dscratch, sizeof(float) * c->N * c->H * c->W * c->CO));
}

static void free_bufs(hbufs *b) {
    cudaFree(b->dx), cudaFree(b->dw), cudaFree(b->db), cudaFree(b->dy), cudaFree(b->dscratch);
    free(b->hx), free(b->hw), free(b->hy0), free(b->hbf);
}

static mtk_hconv params(const hcase *c, const hbufs *b) {
    mtk_hconv h;
    memset(&h, 0, sizeof h);
    h.x = b->dx, h.xs0 = b->xs0, h.xpix = b->xpix;
    h.w = b->dw;
    h.bias = c->bias ? b->db : NULL, h.bias_f16 = c->bias == 1;
    h.y = (uint16_t *)b->dy + c->yoff, h.ys0 = b->ys0, h.ldy = b->ldy;
    h.scratch = b->dscratch;
    h.N = c->N, h.H = c->H, h.W = c->W, h.C = c->C, h.CO = c->CO, h.act = c->act;
    return h;
}

/* CPU reference [N][H][W][CO] in double */
static double *reference(const hcase *c, const hbufs *b) {
    const int64_t P = (int64_t)c->N * c->H * c->W;
    double *ref = malloc(sizeof(double) * P * c->CO);
    float *xf = malloc(sizeof(float) * b->nx), *wf = malloc(sizeof(float) * (int64_t)c->CO * 9 * c->C);
    for (int64_t i = 0; i < b->nx; i++) xf[i] = mt_half_to_float(b->hx[i]);
    for (int64_t i = 0; i < (int64_t)c->CO * 9 * c->C; i++) wf[i] = mt_half_to_float(b->hw[i]);
    for (int n = 0; n < c->N; n++)
        for (int oy = 0; oy < c->H; oy++)
            for (int ox = 0; ox < c->W; ox++)
                for (int co = 0; co < c->CO; co++) {
                    double s = b->hbf[co];
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            const int iy = oy + ky - 1, ix = ox + kx - 1;
                            if (iy < 0 || iy >= c->H || ix < 0 || ix >= c->W) continue;
                            const float *xp = xf + n * b->xs0 + ((int64_t)iy * c->W + ix) * b->xpix;
                            const float *wp = wf + ((int64_t)co * 9 + ky * 3 + kx) * c->C;
                            for (int ci = 0; ci < c->C; ci++) s += (double)xp[ci] * wp[ci];
                        }
                    ref[(((int64_t)n * c->H + oy) * c->W + ox) * c->CO + co] = act_ref(s, c->act);
                }
    free(xf);
    free(wf);
    return ref;
}

static int g_runs = 0;

/* configuration cfg at SM budget sms against ref; the guard values outside
 * the output's channels must survive */
static void check_cfg(const hcase *c, hbufs *b, const double *ref, int cfg, int sms) {
    const mtk_hconv h = params(c, b);
    CK(cudaMemcpy(b->dy, b->hy0, b->ny * 2, cudaMemcpyHostToDevice));
    mtk_set_sm_limit(sms);
    const cudaError_t e = mtk_hconv3x3(0, &h, cfg);
    mtk_set_sm_limit(0);
    if (e != cudaSuccess) {
        printf("  FAIL: %s: %s (SM budget %d): launch: %s\n", c->name, mtk_hconv_cfg_name(cfg), sms, cudaGetErrorString(e));
        g_fail = 1;
        return;
    }
    CK(cudaDeviceSynchronize());
    uint16_t *got = malloc(b->ny * 2);
    CK(cudaMemcpy(got, b->dy, b->ny * 2, cudaMemcpyDeviceToHost));
    double maxerr = 0, maxref = 0;
    int64_t bad = 0, guard = 0;
    for (int64_t pix = 0; pix < (int64_t)c->N * c->H * c->W; pix++) {
        const int64_t n = pix / ((int64_t)c->H * c->W), rest = pix % ((int64_t)c->H * c->W);
        const uint16_t *row = got + n * b->ys0 + rest * b->ldy;
        for (int64_t k = 0; k < b->ldy; k++) {
            const int co = (int)(k - c->yoff);
            if (co < 0 || co >= c->CO) {
                guard += row[k] != b->hy0[0];
                continue;
            }
            const double r = ref[pix * c->CO + co], g = mt_half_to_float(row[k]), d = fabs(g - r);
            if (!(d <= 2e-3 + 4e-3 * fabs(r))) bad++;
            if (d > maxerr || d != d) maxerr = d;
            if (fabs(r) > maxref) maxref = fabs(r);
        }
    }
    g_runs++;
    printf("  %-28s %-62s K in %d, SM budget %3d: max abs err %.3g (|ref| up to %.3g), %lld out of tolerance, %lld guards "
           "written\n",
           c->name, mtk_hconv_cfg_name(cfg), mtk_hconv_parts(&h, cfg), sms, maxerr, maxref, (long long)bad, (long long)guard);
    if (bad || guard) g_fail = 1;
    free(got);
}

static int g_quick = 0; /* --quick: the small cases, budgets 0 and 1 (for compute-sanitizer) */

static void run_checks(void) {
    static const hcase cases[] = {
        /* the depth head's layers at 256x256 input (fuse.0 .. fuse.3) */
        {"fuse.0 128x128 96->32", 1, 128, 128, 96, 32, 1, 1, 0, 0, 0, 0},
        {"fuse.1 64x64 224->64", 1, 64, 64, 224, 64, 1, 1, 0, 0, 0, 0},
        {"fuse.2 32x32 416->160", 1, 32, 32, 416, 160, 1, 1, 0, 0, 0, 0},
        {"fuse.3 16x16 256->256", 1, 16, 16, 256, 256, 1, 1, 0, 0, 0, 0},
        /* two images with padding between them, FP32 bias, no activation */
        {"2 images, fp32 bias", 2, 24, 40, 64, 48, 0, 2, 0, 24, 0, 0},
        /* strided input, odd CO, no bias, into a channel slice */
        {"strided in, slice out", 1, 16, 24, 48, 37, 1, 0, 16, 0, 50, 6},
        {"CO 200 of 64s", 1, 32, 16, 32, 200, 1, 1, 0, 0, 0, 0},
    };
    const int budgets[3] = {0, 1, 3};
    int fit_any[16] = {0}, split_any = 0;
    const size_t first = g_quick ? 4 : 0; /* quick: from "2 images" on */
    for (size_t i = first; i < sizeof cases / sizeof cases[0]; i++) {
        const hcase *c = &cases[i];
        hbufs b;
        make_bufs(c, &b);
        double *ref = reference(c, &b);
        const mtk_hconv h = params(c, &b);
        for (int cfg = 1; cfg <= mtk_hconv_ncfg(); cfg++) {
            const int parts = mtk_hconv_parts(&h, cfg);
            if (!parts) continue;
            fit_any[cfg] = 1;
            split_any |= parts > 1;
            for (int k = 0; k < (g_quick ? 2 : 3); k++) check_cfg(c, &b, ref, cfg, budgets[k]);
        }
        if (!mtk_hconv_pick(&h)) {
            printf("  FAIL: %s: no configuration fits\n", c->name);
            g_fail = 1;
        }
        free(ref);
        free_bufs(&b);
    }
    for (int cfg = 1; cfg <= mtk_hconv_ncfg() && !g_quick; cfg++)
        if (!fit_any[cfg]) {
            printf("  FAIL: %s fits no case\n", mtk_hconv_cfg_name(cfg));
            g_fail = 1;
        }
    if (!split_any && !g_quick) {
        printf("  FAIL: no case ran K in parts\n");
        g_fail = 1;
    }
    printf("%d runs\n", g_runs);
}

static void run_bench(void) {
    static const hcase cases[] = {
        {"fuse.0 512x512 96->32", 1, 512, 512, 96, 32, 1, 1, 0, 0, 0, 0},
        {"fuse.1 256x256 224->64", 1, 256, 256, 224, 64, 1, 1, 0, 0, 0, 0},
        {"fuse.2 128x128 416->160", 1, 128, 128, 416, 160, 1, 1, 0, 0, 0, 0},
        {"fuse.3 64x64 256->256", 1, 64, 64, 256, 256, 1, 1, 0, 0, 0, 0},
    };
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    printf("bench (median of 50 launches):\n");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const hcase *c = &cases[i];
        hbufs b;
        make_bufs(c, &b);
        const mtk_hconv h = params(c, &b);
        const double flop = 2.0 * c->N * c->H * c->W * c->CO * 9.0 * c->C;
        for (int cfg = 1; cfg <= mtk_hconv_ncfg(); cfg++) {
            if (!mtk_hconv_parts(&h, cfg)) continue;
            float t[50];
            for (int r = 0; r < 3; r++) CK(mtk_hconv3x3(0, &h, cfg));
            for (int r = 0; r < 50; r++) {
                CK(cudaEventRecord(e0, 0));
                CK(mtk_hconv3x3(0, &h, cfg));
                CK(cudaEventRecord(e1, 0));
                CK(cudaEventSynchronize(e1));
                CK(cudaEventElapsedTime(&t[r], e0, e1));
            }
            const float ms = median_of(t, 50);
            printf("  bench %-26s %-62s K in %d %8.1f us %7.1f TFLOP/s\n", c->name, mtk_hconv_cfg_name(cfg),
                   mtk_hconv_parts(&h, cfg), ms * 1e3, flop / (ms * 1e9));
        }
        free_bufs(&b);
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
}

int main(int argc, char **argv) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        printf("skipped: no GPU\n");
        return 77;
    }
    if (!mtk_hconv_built()) {
        printf("skipped: the wgmma kernels are not built (CMAKE_CUDA_ARCHITECTURES is not 90a)\n");
        return 77;
    }
    int major = 0;
    CK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0));
    if (major != 9) {
        printf("skipped: sm_90a kernels need a Hopper GPU (this one is sm_%d*)\n", major);
        return 77;
    }
    mt_rng_seed(&g_rng, oracle_seed(1) ^ 0x5851f42d4c957f2dull); /* printed; MTMI_TEST_SEED sets it */
    int bench = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--bench")) bench = 1;
        else if (!strcmp(argv[i], "--quick")) g_quick = 1;
        else {
            fprintf(stderr, "usage: test_cuda_hconv [--quick] [--bench]\n");
            return 2;
        }
    }
    printf("FP16 3x3 conv on wgmma (resident weights) vs CPU reference%s:\n", g_quick ? " (quick)" : "");
    run_checks();
    if (bench) run_bench();
    printf("%s\n", g_fail ? "FAILED" : "all ok");
    return g_fail;
}
