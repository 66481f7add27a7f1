/* test_cuda_int8 MODEL CACHE [--size HxW] [--full HxW] [--seed S] [--bench]
 *
 * The INT8 GPU kernels (src/cuda/qconv.cu) against the CPU INT8 reference
 * (src/cpu/kernels_quant.c), with the real int8 weights, int32 biases, float
 * multipliers and calibrated scales of MODEL's heads (test_cuda_int8.sh:
 * the built-in network with spread weights; a graph-only MODEL gets
 * seeded random values, seed S, as `mtmi calibrate --random-weights S`):
 *
 *  1. per quantized node (QConv / QLinear of the rewritten graph at --size,
 *     default the model's size): the node alone as a CPU plan and as an FP32 CUDA
 *     plan on the same float input (random int8 grid values x = q * s_x,
 *     off-grid values, out-of-range values, a few NaNs): outputs must be
 *     bit-identical (Sigmoid: at most 2 ulp, Gelu: 4, libm-dependent; see
 *     docs/ACCURACY.md); and, calling the kernels directly, the int32
 *     accumulators (bias included) must equal an exact host computation at
 *     sampled output elements; and on an FP16 NHWC copy of the input, the
 *     one-kernel path of 1x1 convolutions (quantize while loading) must
 *     equal the quantize pass + GEMM bit for bit in every tile
 *     configuration.  --bench also times quantize and each configuration.
 *  2. the whole model at --full (default the model's size): the GPU plan
 *     "cuda:0"/int8 (encoder FP16, heads INT8) against the CPU plan
 *     "cpu"/int8 (encoder FP32, heads INT8): seg class-map agreement and
 *     depth error; with GPU FP16 vs CPU FP32 alongside for scale.
 * Exit 1 on failure, 77 when no GPU is visible. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "api/api.h"
#include "cpu/cpu.h"
#include "cuda/cuda_backend.h"
#include "cuda/kernels.h"
#include "cuda/qkernels.h"
#include "quant/quant.h"

#include "cuda/cuda_ck.h"
#include "oracle.h"

static int g_fail = 0;
static int g_dry = 0; /* --dry: CPU side only (machines without a GPU) */
static int g_bench = 0; /* --bench: time quantize and every GEMM tile configuration per node */
static int64_t g_ichk = 0, g_ibad = 0; /* int8 outputs (y_int8) checked / differing */

#define OK(x)                                                                                          \
    do {                                                                                               \
        if ((x) != MTMI_OK) {                                                                          \
            printf("error at %s:%d: %s\n", __FILE__, __LINE__, mtmi_last_error());                     \
            exit(1);                                                                                   \
        }                                                                                              \
    } while (0)

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
/* distance in ulps between two floats of the same sign (large otherwise) */
static int64_t ulps(float a, float b) {
    if (fbits(a) == fbits(b)) return 0;
    if (isnan(a) || isnan(b) || (a < 0) != (b < 0)) return 1 << 30;
    int64_t d = (int64_t)fbits(a) - (int64_t)fbits(b);
    return d < 0 ? -d : d;
}

/* Test input for scale s: mostly exact grid points q*s (the values a
 * requantized producer leaves), plus ties, off-grid, clipped and NaN. */
static void fill_input(float *x, int64_t n, float s, mt_rng *r) {
    for (int64_t i = 0; i < n; i++) {
        float u = mt_rng_uniform(r);
        int q = (int)(mt_rng_uniform(r) * 256.0f) - 128;
        if (u < 0.6f) x[i] = (float)q * s;
        else if (u < 0.7f) x[i] = ((float)q + 0.5f) * s;            /* near ties */
        else if (u < 0.9f) x[i] = mt_rng_normal(r) * 40.0f * s;       /* off grid */
        else if (u < 0.999f) x[i] = (mt_rng_uniform(r) - 0.5f) * 600.0f * s; /* clipped */
        else x[i] = NAN;
    }
}

/* float -> IEEE half bits (round to nearest even; tiny values flush to 0):
 * FP16 test inputs for the --bench timings */
static uint16_t f2h(float f) {
    uint32_t u = fbits(f), sgn = (u >> 16) & 0x8000u;
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7e00;
    int e = (int)((u >> 23) & 0xff) - 127 + 15;
    uint32_t m = u & 0x7fffffu;
    if (e >= 31) return (uint16_t)(sgn | 0x7c00);
    if (e <= 0) return (uint16_t)sgn;
    uint32_t h = ((uint32_t)e << 10) | (m >> 13), rest = m & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sgn | h);
}

/* The resizes that write int8 for the next QConv (fuse_qresize.c):
 * mtk_resize_q8 into a channel slice of a wider int8 tensor and
 * mtk_resize_cat_q8 over a concat of two sources must store, byte for
 * byte, what mtk_resize / mtk_resize_cat (FP16) followed by the quantize
 * pass make, and leave the other channels alone (a garbage-filled
 * buffer).  Values spread over the clipped range, with a share on exact
 * ties; both half_pixel and align_corners coordinates.  Returns the bytes
 * that differ. */
static int64_t resize_q8_case(int coord, int cat, mt_rng *r) {
    const int N = 1, IH = 9, IW = 12, OH = 18, OW = 24, CT = 40, c0 = cat ? 0 : 8, C = cat ? 40 : 24;
    const float s = 0.0137f;
    const int64_t nin = (int64_t)N * IH * IW * 40, nout = (int64_t)N * OH * OW * CT;
    uint16_t *xh = malloc(2 * nin);
    for (int64_t i = 0; i < nin; i++) {
        float u = mt_rng_uniform(r);
        float v = u < 0.3f ? ((float)((int)(mt_rng_uniform(r) * 300.0f) - 150) + 0.5f) * s : mt_rng_normal(r) * 60.0f * s;
        xh[i] = f2h(v);
    }
    void *dx, *dyh, *dref, *dq;
    CK(cudaMalloc(&dx, 2 * nin));
    CK(cudaMalloc(&dyh, 2 * nout));
    CK(cudaMalloc(&dref, nout));
    CK(cudaMalloc(&dq, nout));
    CK(cudaMemcpy(dx, xh, 2 * nin, cudaMemcpyHostToDevice));
    CK(cudaMemset(dyh, 0, 2 * nout));
    CK(cudaMemset(dq, 0x5a, nout));
    const int64_t ys[4] = {(int64_t)OH * OW * CT, 1, (int64_t)OW * CT, CT};
    const float sh = (float)OH / IH, sw = (float)OW / IW;
    if (!cat) { /* one 24-channel source into channels 8..31 of 40 */
        const int64_t xs[4] = {(int64_t)IH * IW * C, 1, (int64_t)IW * C, C};
        CK(mtk_resize(0, dx, xs, (uint16_t *)dyh + c0, ys, N, C, IH, IW, OH, OW, sh, sw, 1, coord, 0, 1, 1, 1));
        CK(mtk_resize_q8(0, dx, xs, (int8_t *)dq + c0, ys, N, C, IH, IW, OH, OW, sh, sw, coord, s));
    } else { /* a concat of 16 + 24 channels over the whole output */
        const void *src[2] = {dx, (const uint16_t *)dx + (int64_t)N * IH * IW * 16};
        const int64_t xs[2][4] = {{(int64_t)IH * IW * 16, 1, (int64_t)IW * 16, 16}, {(int64_t)IH * IW * 24, 1, (int64_t)IW * 24, 24}};
        const int cb[2] = {0, 16};
        CK(mtk_resize_cat(0, 2, src, xs, cb, dyh, ys, N, C, IH, IW, OH, OW, sh, sw, coord));
        CK(mtk_resize_cat_q8(0, 2, src, xs, cb, (int8_t *)dq, ys, N, C, IH, IW, OH, OW, sh, sw, coord, s));
    }
    CK(mtk_qconv_quantize(0, dyh, ys, 1, dref, N, CT, OH, OW, CT, s));
    int8_t *ref = malloc(nout), *got = malloc(nout);
    CK(cudaMemcpy(ref, dref, nout, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(got, dq, nout, cudaMemcpyDeviceToHost));
    int64_t bad = 0, clipped = 0;
    for (int64_t i = 0; i < nout; i++) {
        const int ch = (int)(i % CT);
        const int in = ch >= c0 && ch < c0 + C;
        bad += in ? got[i] != ref[i] : got[i] != 0x5a;
        clipped += in && (ref[i] == 127 || ref[i] == -128);
    }
    if (!clipped) bad++; /* the case must reach the clamp */
    free(xh);
    free(ref);
    free(got);
    cudaFree(dx);
    cudaFree(dyh);
    cudaFree(dref);
    cudaFree(dq);
    return bad;
}

static void resize_q8_check(mt_rng *r) {
    int64_t bad = 0;
    int runs = 0;
    for (int coord = 0; coord <= 2; coord += 2)
        for (int cat = 0; cat < 2; cat++, runs++) bad += resize_q8_case(coord, cat, r);
    printf("INT8 resize for the next QConv (fuse_qresize.c) vs FP16 resize + quantize pass: %d runs, %lld bytes differ\n", runs,
           (long long)bad);
    if (bad) g_fail = 1;
}

/* The LayerNorm that also writes the int8 codes of its output for the
 * QConvs reading it (mtk_layernorm_q8, fuse_qln.c) against the LayerNorm
 * alone (mtk_layernorm / mtk_layernorm_im2col) followed by the quantize
 * pass over its output: y, the residual sum, the im2col matrix and the
 * codes must all be the same bytes.  The vectorized kernel (with and
 * without the im2col matrix, C from 24 to 256) and the fallback (FP32);
 * scale 2^-6 makes FP16 outputs land on exact ties (q_quant8's slow path
 * and round-half-even), and every case must reach the clamp.  Returns the
 * bytes that differ. */
static int64_t ln_q8_case(int C, int res, int beta, int im2col, int f16, float s, mt_rng *r) {
    const int N = 2, H = 6, W = 10, OH = 3, OW = 5, KH = 3, KW = 3;
    const int64_t rows = (int64_t)N * H * W, n = rows * C, K = (int64_t)KH * KW * C, Kp = (K + 31) & ~31,
                  ncol = (int64_t)N * OH * OW * Kp;
    const size_t es = f16 ? 2 : 4;
    unsigned char *hx = malloc(es * n), *hr = malloc(es * n), *hg = malloc(es * C), *hb = malloc(es * C);
    for (int64_t i = 0; i < n; i++) {
        const float a = mt_rng_normal(r) * 2.0f + 0.3f, b = mt_rng_normal(r);
        if (f16) ((uint16_t *)hx)[i] = f2h(a), ((uint16_t *)hr)[i] = f2h(b);
        else ((float *)hx)[i] = a, ((float *)hr)[i] = b;
    }
    for (int c = 0; c < C; c++) { /* gains up to ~3: |y| / s well past 128 for some values */
        const float g = 0.2f + 2.8f * mt_rng_uniform(r), b = 0.5f * mt_rng_normal(r);
        if (f16) ((uint16_t *)hg)[c] = f2h(g), ((uint16_t *)hb)[c] = f2h(b);
        else ((float *)hg)[c] = g, ((float *)hb)[c] = b;
    }
    void *dx, *dr, *dg, *db, *dy0, *dy1, *ds0, *ds1, *dc0, *dc1, *dq0, *dq1;
    CK(cudaMalloc(&dx, es * n)); CK(cudaMalloc(&dr, es * n)); CK(cudaMalloc(&dg, es * C)); CK(cudaMalloc(&db, es * C));
    CK(cudaMalloc(&dy0, es * n)); CK(cudaMalloc(&dy1, es * n)); CK(cudaMalloc(&ds0, es * n)); CK(cudaMalloc(&ds1, es * n));
    CK(cudaMalloc(&dc0, es * ncol)); CK(cudaMalloc(&dc1, es * ncol)); CK(cudaMalloc(&dq0, n)); CK(cudaMalloc(&dq1, n));
    CK(cudaMemcpy(dx, hx, es * n, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dr, hr, es * n, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dg, hg, es * C, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(db, hb, es * C, cudaMemcpyHostToDevice));
    /* garbage everywhere the kernels must write */
    CK(cudaMemset(dy1, 0x5a, es * n)); CK(cudaMemset(ds1, 0x5a, es * n)); CK(cudaMemset(dc1, 0x5a, es * ncol));
    CK(cudaMemset(dq1, 0x5a, n)); CK(cudaMemset(dc0, 0, es * ncol)); CK(cudaMemset(ds0, 0, es * n));
    const mtk_ln_im2col ic = {NULL, N, H, W, OH, OW, KH, KW, 2, 2, 1, 1, 1, 1, (int)Kp};
    mtk_ln_im2col ic0 = ic, ic1 = ic;
    ic0.col = dc0;
    ic1.col = dc1;
    const void *R = res ? dr : NULL, *B = beta ? db : NULL;
    void *S0 = res ? ds0 : NULL, *S1 = res ? ds1 : NULL;
    if (im2col) CK(mtk_layernorm_im2col(0, dx, R, S0, dy0, dg, B, rows, C, 1e-5f, f16, &ic0));
    else CK(mtk_layernorm(0, dx, R, S0, dy0, dg, B, rows, C, 1e-5f, f16));
    const int64_t ys[4] = {rows * C, 1, C, C};
    CK(mtk_qconv_quantize(0, dy0, ys, f16, dq0, 1, C, (int)rows, 1, C, s));
    CK(mtk_layernorm_q8(0, dx, R, S1, dy1, dg, B, rows, C, 1e-5f, f16, im2col ? &ic1 : NULL, dq1, s));
    CK(cudaDeviceSynchronize());
    unsigned char *a = malloc(es * ncol), *b = malloc(es * ncol);
    int64_t bad = 0, clipped = 0, zero = 0;
#define CMP(d0, d1, bytes)                                                        \
    do {                                                                          \
        CK(cudaMemcpy(a, d0, bytes, cudaMemcpyDeviceToHost));                     \
        CK(cudaMemcpy(b, d1, bytes, cudaMemcpyDeviceToHost));                     \
        for (size_t k = 0; k < (size_t)(bytes); k++) bad += a[k] != b[k];         \
    } while (0)
    CMP(dy0, dy1, es * n);
    if (res) CMP(ds0, ds1, es * n);
    if (im2col) CMP(dc0, dc1, es * ncol);
    CMP(dq0, dq1, (size_t)n);
#undef CMP
    for (int64_t i = 0; i < n; i++) { /* a holds the reference codes */
        const int8_t q = (int8_t)a[i];
        clipped += q == 127 || q == -128;
        zero += q == 0;
    }
    if (!clipped || clipped == n || zero == n) bad++; /* the clamp reached, the codes not all one value */
    free(hx); free(hr); free(hg); free(hb); free(a); free(b);
    cudaFree(dx); cudaFree(dr); cudaFree(dg); cudaFree(db); cudaFree(dy0); cudaFree(dy1); cudaFree(ds0); cudaFree(ds1);
    cudaFree(dc0); cudaFree(dc1); cudaFree(dq0); cudaFree(dq1);
    return bad;
}

static void ln_q8_check(mt_rng *r) {
    const float tie = 0.015625f; /* 2^-6 */
    int64_t bad = 0;
    int runs = 0;
    bad += ln_q8_case(32, 1, 1, 0, 1, tie, r), runs++;
    bad += ln_q8_case(64, 1, 1, 1, 1, 0.0173f, r), runs++;
    bad += ln_q8_case(160, 0, 1, 1, 1, tie, r), runs++;
    bad += ln_q8_case(256, 1, 0, 0, 1, 0.0119f, r), runs++;
    bad += ln_q8_case(24, 0, 1, 0, 1, 0.021f, r), runs++;
    bad += ln_q8_case(64, 1, 1, 0, 0, 0.0173f, r), runs++; /* FP32: the two-kernel fallback */
    bad += ln_q8_case(32, 0, 0, 1, 0, tie, r), runs++;
    printf("INT8 features from the LayerNorm (mtk_layernorm_q8, fuse_qln.c) vs LayerNorm + quantize pass: %d runs, %lld bytes "
           "differ\n", runs, (long long)bad);
    if (bad) g_fail = 1;
}

/* fuse_qln.c must fire on the MTMI network: each of the four features is
 * read by one QConv in each head, all eight then read the encoder
 * LayerNorms' int8 copies */
static void qln_fired(const mt_graph *g) {
    mt_cuda_plan_opts po = {.fp16 = 1};
    mt_cuda_plan *p = NULL;
    if (mt_cuda_plan_create_ex(g, 0, &po, &p)) {
        printf("  FAIL: INT8 plan: %s\n", mtmi_last_error());
        g_fail = 1;
        return;
    }
    const int made = mt_cuda_plan_fusions(p, "qln");
    printf("INT8 features from the encoder (fuse_qln.c): %d QConv inputs written by a LayerNorm (must be 8)\n", made);
    if (made != 8) g_fail = 1;
    mt_cuda_plan_free(p);
}

/* The 3x3 QConv that makes its own upsampled input (fuse_qupconv.c):
 * mtk_qconv_upconv over a concat of two FP16 sources must give, bit for
 * bit, the float output and the int32 sums of mtk_resize_cat_q8 followed
 * by the GEMM (the tiled and the halo configurations, which agree with
 * each other by the checks above), for both halo widths, two images, a
 * last row of tiles half outside the image, padding output channels and
 * both half_pixel and align_corners coordinates.  Returns the elements
 * that differ. */
static int64_t upconv_q8_case(int coord, int cfg, mt_rng *r) {
    const int N = 2, IH = 5, IW = 16, H = 10, W = 32, C0 = 40, C = 64, CO = 40, COp = 64;
    const float s = 0.0211f;
    const int64_t nin = (int64_t)N * IH * IW * C, nx = (int64_t)N * H * W * C, P = (int64_t)N * H * W;
    uint16_t *xh = malloc(2 * nin);
    for (int64_t i = 0; i < nin; i++) {
        const float u = mt_rng_uniform(r);
        xh[i] = f2h(u < 0.3f ? ((float)((int)(mt_rng_uniform(r) * 300.0f) - 150) + 0.5f) * s : mt_rng_normal(r) * 50.0f * s);
    }
    int8_t *w = malloc((size_t)COp * 9 * C);
    for (int64_t i = 0; i < (int64_t)COp * 9 * C; i++) w[i] = (int8_t)((int)(mt_rng_uniform(r) * 255.0f) - 127);
    int32_t bias[64];
    float mult[64];
    for (int c = 0; c < COp; c++) {
        bias[c] = (int32_t)((mt_rng_uniform(r) - 0.5f) * 20000.0f);
        mult[c] = 1e-4f * (0.5f + mt_rng_uniform(r));
    }
    void *dx, *dxq, *dw, *db, *dm, *dy0, *dy1, *da0, *da1;
    CK(cudaMalloc(&dx, 2 * nin));
    CK(cudaMalloc(&dxq, nx));
    CK(cudaMalloc(&dw, (size_t)COp * 9 * C));
    CK(cudaMalloc(&db, sizeof bias));
    CK(cudaMalloc(&dm, sizeof mult));
    CK(cudaMalloc(&dy0, 4 * P * CO));
    CK(cudaMalloc(&dy1, 4 * P * CO));
    CK(cudaMalloc(&da0, 4 * P * CO));
    CK(cudaMalloc(&da1, 4 * P * CO));
    CK(cudaMemcpy(dx, xh, 2 * nin, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dw, w, (size_t)COp * 9 * C, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(db, bias, sizeof bias, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dm, mult, sizeof mult, cudaMemcpyHostToDevice));
    const void *src[2] = {dx, (const uint16_t *)dx + (int64_t)N * IH * IW * C0};
    const int64_t xs[2][4] = {{(int64_t)IH * IW * C0, 1, (int64_t)IW * C0, C0},
                              {(int64_t)IH * IW * (C - C0), 1, (int64_t)IW * (C - C0), C - C0}};
    const int cb[2] = {0, C0};
    const int64_t ys[4] = {(int64_t)H * W * C, 1, (int64_t)W * C, C};
    mtk_qconv q = {.N = N, .H = H, .W = W, .C = C, .Cp = C, .OH = H, .OW = W, .CO = CO, .COp = COp, .KH = 3, .KW = 3,
                   .sh = 1, .sw = 1, .ph = 1, .pw = 1, .dh = 1, .dw = 1, .x_scale = s, .y_scale = 0.05f, .act = 1,
                   .ldy = CO, .ys0 = (int64_t)H * W * CO, .x_int8 = 1};
    CK(mtk_resize_cat_q8(0, 2, src, xs, cb, (int8_t *)dxq, ys, N, C, IH, IW, H, W, 2.0f, 2.0f, coord, s));
    CK(mtk_qconv_gemm_cfg(0, &q, dxq, dw, db, dm, dy0, 0, da0, 1)); /* the im2col tiles */
    CK(cudaMemset(dy1, 0x5a, 4 * P * CO));
    CK(mtk_qconv_upconv(0, &q, 2, src, xs, cb, IH, IW, 2.0f, 2.0f, coord, dw, db, dm, dy1, 0, da1, cfg));
    float *y0 = malloc(4 * P * CO), *y1 = malloc(4 * P * CO);
    int32_t *a0 = malloc(4 * P * CO), *a1 = malloc(4 * P * CO);
    CK(cudaMemcpy(y0, dy0, 4 * P * CO, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(y1, dy1, 4 * P * CO, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(a0, da0, 4 * P * CO, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(a1, da1, 4 * P * CO, cudaMemcpyDeviceToHost));
    int64_t bad = 0, zeros = 0;
    for (int64_t i = 0; i < P * CO; i++) {
        bad += fbits(y0[i]) != fbits(y1[i]) || a0[i] != a1[i];
        zeros += y0[i] == 0.0f;
    }
    if (zeros == 0 || zeros == P * CO) bad++; /* the Relu must cut some outputs and pass others */
    free(xh); free(w); free(y0); free(y1); free(a0); free(a1);
    cudaFree(dx); cudaFree(dxq); cudaFree(dw); cudaFree(db); cudaFree(dm);
    cudaFree(dy0); cudaFree(dy1); cudaFree(da0); cudaFree(da1);
    return bad;
}

static void upconv_q8_check(mt_rng *r) {
    int64_t bad = 0;
    int runs = 0;
    const int cfgs[3] = {-1, 18, 19};
    for (int coord = 0; coord <= 2; coord += 2)
        for (int k = 0; k < 3; k++, runs++) bad += upconv_q8_case(coord, cfgs[k], r);
    printf("INT8 3x3 over its own upsample (fuse_qupconv.c) vs int8 resize + GEMM: %d runs, %lld elements differ\n", runs,
           (long long)bad);
    if (bad) g_fail = 1;
}

/* Every tile configuration of q8 (an int8 output of nq bytes) against
 * ref, each written over garbage (so unwritten padding shows); got: host
 * scratch of nq bytes. */
static void int8_sweep(const mtk_qconv *q8, const void *dxq, const void *dw, const void *db, const void *dm, void *dout,
                       const int8_t *ref, int8_t *got, const char *name, const char *what, const char *oracle) {
    const int64_t nq = (int64_t)q8->N * q8->OH * q8->OW * q8->COp;
    for (int c = -1; c <= mtk_qconv_ncfg(); c++) {
        CK(cudaMemset(dout, 0x5a, nq));
        CK(mtk_qconv_gemm_cfg(0, q8, dxq, dw, db, dm, dout, 1, NULL, c));
        CK(cudaMemcpy(got, dout, nq, cudaMemcpyDeviceToHost));
        g_ichk++;
        if (memcmp(got, ref, nq)) {
            g_ibad++;
            printf("  FAIL: %s: %s, tiles %s, differs from quantizing %s\n", name, what, mtk_qconv_cfg_name(c), oracle);
            g_fail = 1;
        }
    }
}

/* y_int8 (what fuse_qchain.c asks of a producer): the kernel's int8 output
 * for the next QConv, [N][OH][OW][COp] with zero padding channels, must be
 * byte for byte the quantize pass over its float output yf ([P][CO], from
 * the same xq), in every tile configuration, written over a buffer filled
 * with garbage first (so unwritten padding shows). */
static void int8_output(const mtk_qconv *q, const void *dxh, const int64_t xst[4], void *dxq, const void *dw, const void *db,
                        const void *dm, const float *yf, const char *name) {
    const int64_t P = (int64_t)q->N * q->OH * q->OW, no = P * q->CO, nq = P * q->COp;
    void *dyf, *dref, *dout;
    CK(cudaMalloc(&dyf, 4 * no));
    CK(cudaMalloc(&dref, nq));
    CK(cudaMalloc(&dout, nq));
    CK(cudaMemcpy(dyf, yf, 4 * no, cudaMemcpyHostToDevice));
    const int64_t ys[4] = {(int64_t)q->OH * q->OW * q->CO, 1, (int64_t)q->OW * q->CO, q->CO};
    CK(mtk_qconv_quantize(0, dyf, ys, 0, dref, q->N, q->CO, q->OH, q->OW, q->COp, q->y_scale));
    int8_t *ref = malloc(nq), *got = malloc(nq);
    CK(cudaMemcpy(ref, dref, nq, cudaMemcpyDeviceToHost));
    mtk_qconv q8 = *q;
    q8.y_int8 = 1;
    q8.ldy = q->COp;
    q8.ys0 = (int64_t)q->OH * q->OW * q->COp;
    CK(mtk_qconv_quantize(0, dxh, xst, 1, dxq, q->N, q->C, q->H, q->W, q->Cp, q->x_scale));
    int8_sweep(&q8, dxq, dw, db, dm, dout, ref, got, name, "int8 output (y_int8)", "the float output");
    /* y2_scale (fuse_qresize.c, a slice of an input with another scale):
     * the int8 output must be the quantize pass over the FP16 output with
     * that scale, in every configuration */
    void *dyh;
    CK(cudaMalloc(&dyh, 2 * no));
    CK(mtk_qconv_gemm(0, q, dxq, dw, db, dm, dyh, 1, NULL));
    const float s2 = q->y_scale * 1.37f;
    CK(mtk_qconv_quantize(0, dyh, ys, 1, dref, q->N, q->CO, q->OH, q->OW, q->COp, s2));
    CK(cudaMemcpy(ref, dref, nq, cudaMemcpyDeviceToHost));
    q8.y2_scale = s2;
    int8_sweep(&q8, dxq, dw, db, dm, dout, ref, got, name, "int8 output with its own scale (y2_scale)", "the FP16 output");
    cudaFree(dyh);
    free(ref);
    free(got);
    cudaFree(dyf);
    cudaFree(dref);
    cudaFree(dout);
}

/* The node on an FP16 NHWC copy of x (the plan's layout): the one-kernel
 * path of mtk_qconv_run (1x1: quantize while loading) must equal the
 * quantize pass + GEMM bit for bit, in every tile configuration (FP32
 * output and int32 accumulators).  --bench: quantize and GEMM times per
 * configuration (FP16 output), and every configuration's output on the
 * FP32 input against the automatic choice's (yref, accref). */
static void fp16_node(const mtk_qconv *q, const float *x, int64_t xn, const void *dw, const void *db, const void *dm,
                      const float *yref, const int32_t *accref, const char *name, int64_t *fchk, int64_t *fbad) {
    int64_t P = (int64_t)q->N * q->OH * q->OW, HW = (int64_t)q->H * q->W, no = P * q->CO;
    uint16_t *xh = malloc(2 * xn);
    for (int64_t n = 0; n < q->N; n++)
        for (int64_t c = 0; c < q->C; c++)
            for (int64_t i = 0; i < HW; i++) xh[(n * HW + i) * q->C + c] = f2h(x[(n * q->C + c) * HW + i]);
    void *dxh, *dxq, *dyh, *dyf, *dacc;
    CK(cudaMalloc(&dxh, 2 * xn));
    CK(cudaMalloc(&dxq, (size_t)q->N * HW * q->Cp));
    CK(cudaMalloc(&dyh, 2 * no));
    CK(cudaMalloc(&dyf, 4 * no));
    CK(cudaMalloc(&dacc, 4 * no));
    CK(cudaMemcpy(dxh, xh, 2 * xn, cudaMemcpyHostToDevice));
    int64_t xst[4] = {HW * q->C, 1, (int64_t)q->W * q->C, q->C};
    float *yf = malloc(4 * no), *y16 = malloc(4 * no);
    int32_t *ac = malloc(4 * no), *a16 = malloc(4 * no);
    /* reference on the FP16 input: quantize pass + GEMM (automatic tiles) */
    CK(mtk_qconv_quantize(0, dxh, xst, 1, dxq, q->N, q->C, q->H, q->W, q->Cp, q->x_scale));
    CK(mtk_qconv_gemm(0, q, dxq, dw, db, dm, dyf, 0, dacc));
    CK(cudaMemcpy(y16, dyf, 4 * no, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(a16, dacc, 4 * no, cudaMemcpyDeviceToHost));
    int fuse = mtk_qconv_can_fuse(q, dxh, xst, 1);
    if (fuse)
        for (int c = -1; c <= mtk_qconv_ncfg(); c++) {
            if (c == 0) continue;
            CK(mtk_qconv_run(0, q, dxh, xst, 1, dxq, dw, db, dm, dyf, 0, dacc, c, 1));
            CK(cudaMemcpy(yf, dyf, 4 * no, cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(ac, dacc, 4 * no, cudaMemcpyDeviceToHost));
            (*fchk)++;
            if (memcmp(yf, y16, 4 * no) || memcmp(ac, a16, 4 * no)) {
                (*fbad)++;
                printf("  FAIL: %s: fused quantize, tiles %s, differs from quantize + GEMM\n", name, mtk_qconv_cfg_name(c));
                g_fail = 1;
            }
        }
    if (q->y_scale > 0.0f) int8_output(q, dxh, xst, dxq, dw, db, dm, y16, name);
    if (g_bench) {
        cudaEvent_t e0, e1;
        CK(cudaEventCreate(&e0));
        CK(cudaEventCreate(&e1));
        const int it = 20;
        float ms;
        CK(cudaEventRecord(e0, 0));
        for (int k = 0; k < it; k++) CK(mtk_qconv_quantize(0, dxh, xst, 1, dxq, q->N, q->C, q->H, q->W, q->Cp, q->x_scale));
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&ms, e0, e1));
        printf("  bench %-16s P %7lld K %5d CO %3d: quantize %6.1f us; gemm", name, (long long)P, q->KH * q->KW * q->Cp, q->CO,
               1000.0 * ms / it);
        /* the same x quantized from FP32 NCHW for the comparison with yref */
        void *dx;
        CK(cudaMalloc(&dx, 4 * xn));
        CK(cudaMemcpy(dx, x, 4 * xn, cudaMemcpyHostToDevice));
        int64_t xs32[4] = {(int64_t)q->C * HW, HW, q->W, 1};
        CK(mtk_qconv_quantize(0, dx, xs32, 0, dxq, q->N, q->C, q->H, q->W, q->Cp, q->x_scale));
        double best = 1e30;
        int bestc = -1;
        for (int pass = 0; pass < 1 + fuse; pass++) {
            if (pass) printf("; fused");
            for (int c = -1; c <= mtk_qconv_ncfg(); c++) {
                if (pass && c == 0) continue;
                if (!pass) {
                    CK(mtk_qconv_gemm_cfg(0, q, dxq, dw, db, dm, dyf, 0, dacc, c));
                    CK(cudaMemcpy(yf, dyf, 4 * no, cudaMemcpyDeviceToHost));
                    CK(cudaMemcpy(ac, dacc, 4 * no, cudaMemcpyDeviceToHost));
                    if (memcmp(yf, yref, 4 * no) || memcmp(ac, accref, 4 * no)) {
                        printf(" DIFFERS");
                        g_fail = 1;
                    }
                }
                CK(cudaEventRecord(e0, 0));
                for (int k = 0; k < it; k++) {
                    if (pass) CK(mtk_qconv_run(0, q, dxh, xst, 1, dxq, dw, db, dm, dyh, 1, NULL, c, 1));
                    else CK(mtk_qconv_gemm_cfg(0, q, dxq, dw, db, dm, dyh, 1, NULL, c));
                }
                CK(cudaEventRecord(e1, 0));
                CK(cudaEventSynchronize(e1));
                CK(cudaEventElapsedTime(&ms, e0, e1));
                double us = 1000.0 * ms / it;
                printf(" [%d] %.1f", c, us);
                if (c > 0 && us < best) best = us, bestc = c + 100 * pass;
            }
        }
        printf("; best %s[%d] %s %.1f us (%.0f TOPS)\n", bestc >= 100 ? "fused " : "", bestc % 100,
               mtk_qconv_cfg_name(bestc % 100), best, 2.0 * P * q->CO * q->KH * q->KW * q->C / (best * 1e6));
        cudaFree(dx);
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
    }
    free(xh); free(yf); free(y16); free(ac); free(a16);
    cudaFree(dxh); cudaFree(dxq); cudaFree(dyh); cudaFree(dyf); cudaFree(dacc);
}

/* Every wgmma configuration that fits the node (the 3x3 ones, sm_90a
 * builds) against the automatic choice's float output yref and int32 sums
 * accref, bit for bit (dy, dacc: device scratch of their sizes).  The
 * persistent ones ("wgmma resident") also with an SM budget of 1 and 3
 * (mtk_set_sm_limit): at test sizes the whole GPU gives each warpgroup at
 * most one tile, and the budgets make them run many tiles through their
 * halo rings, and a last round that not every warpgroup has. */
static int64_t g_wg_runs = 0, g_wg_bad = 0;
static void wgmma_node(const mtk_qconv *q, const void *dxq, const void *dw, const void *db, const void *dm, void *dy, void *dacc,
                       const float *yref, const int32_t *accref, const char *name) {
    const int64_t no = (int64_t)q->N * q->OH * q->OW * q->CO;
    float *yf = NULL;
    int32_t *ac = NULL;
    static const int budgets[3] = {0, 1, 3};
    for (int c = 1; c <= mtk_qconv_ncfg(); c++) {
        if (strncmp(mtk_qconv_cfg_name(c), "wgmma", 5) || !mtk_qconv_cfg_fits(q, c)) continue;
        const int nb = strncmp(mtk_qconv_cfg_name(c), "wgmma resident", 14) ? 1 : 3;
        for (int b = 0; b < nb; b++) {
            if (!yf) yf = malloc(4 * no), ac = malloc(4 * no);
            CK(cudaMemset(dy, 0x5a, 4 * no));
            CK(cudaMemset(dacc, 0x5a, 4 * no));
            mtk_set_sm_limit(budgets[b]);
            CK(mtk_qconv_gemm_cfg(0, q, dxq, dw, db, dm, dy, 0, dacc, c));
            mtk_set_sm_limit(0);
            CK(cudaMemcpy(yf, dy, 4 * no, cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(ac, dacc, 4 * no, cudaMemcpyDeviceToHost));
            g_wg_runs++;
            if (memcmp(yf, yref, 4 * no) || memcmp(ac, accref, 4 * no)) {
                g_wg_bad++;
                int64_t d = 0;
                for (int64_t i = 0; i < no; i++) d += ac[i] != accref[i];
                printf("  FAIL: %s: %s (SM budget %d) differs from the automatic choice (%lld of %lld int32 sums)\n", name,
                       mtk_qconv_cfg_name(c), budgets[b], (long long)d, (long long)no);
                g_fail = 1;
            }
        }
    }
    free(yf);
    free(ac);
}

/* ------------------------------------------------------------ part 1 */
static void check_node(const mt_graph *g, int ni, mt_rng *rng, int *nodes, int64_t *elems, int64_t *mism, int64_t *maxulp,
                       int64_t *acc_checked, int64_t *acc_bad, int64_t *fchk, int64_t *fbad) {
    const mt_node *n = &g->nodes[ni];
    int lin = !strcmp(n->op, "QLinear");
    char *in_name = g->values[n->in[0]].name, *out_name = g->values[n->out[0]].name;
    mt_graph *g1;
    OK(mt_graph_extract(g, &in_name, 1, &out_name, 1, &g1));
    const mt_value *xv = &g1->values[g1->inputs[0]], *yv = &g1->values[g1->outputs[0]];
    int64_t xn = mt_value_numel(xv), yn = mt_value_numel(yv);
    float xs = mt_attr_float(n, "x_scale", 0), ys = mt_attr_float(n, "y_scale", 0);
    const char *act = mt_attr_string(n, "activation", "");
    int exact_act = !strcmp(act, "") || !strcmp(act, "Relu");
    float *x = malloc(sizeof(float) * xn), *ycpu = malloc(sizeof(float) * yn), *ygpu = malloc(sizeof(float) * yn);
    fill_input(x, xn, xs, rng);
    mt_tview in = {.data = x, .dtype = MTMI_FLOAT, .rank = xv->rank};
    memcpy(in.dims, xv->dims, sizeof(int64_t) * xv->rank);
    mt_tview oc = {.data = ycpu}, og = {.data = ygpu};
    mt_cpu_plan *cp;
    OK(mt_cpu_plan_create(g1, 0, &cp));
    OK(mt_cpu_plan_run(cp, &in, 1, &oc, 1));
    mt_cuda_plan *gp = NULL;
    if (g_dry) memcpy(ygpu, ycpu, sizeof(float) * yn);
    else {
        OK(mt_cuda_plan_create(g1, 0, 0, &gp)); /* FP32 storage: the kernel's float output as is */
        OK(mt_cuda_plan_run(gp, &in, 1, &og, 1));
    }
    int64_t bad = 0, mu = 0;
    for (int64_t i = 0; i < yn; i++) {
        int64_t d = ulps(ycpu[i], ygpu[i]);
        if (d) bad++;
        if (d > mu) mu = d;
    }
    /* int32 accumulators: the kernels called directly, checked at sampled
     * outputs against an exact host sum of mt_quantize(x) * Wq + Bq */
    int64_t achk = 0, abad = 0;
    if (!lin && !g_dry) {
        const mt_value *wv = &g->values[n->in[1]], *bv = &g->values[n->in[2]], *mv = &g->values[n->in[3]];
        mt_conv_geom cg;
        char err[128];
        if (mt_conv_geometry(n, xv->dims, wv->dims, &cg, err, sizeof err) == 0 && cg.group == 1) {
            mtk_qconv q;
            memset(&q, 0, sizeof q);
            q.N = (int)cg.N; q.C = (int)cg.C; q.H = (int)cg.H; q.W = (int)cg.W; q.CO = (int)cg.M;
            q.OH = (int)cg.OH; q.OW = (int)cg.OW; q.KH = (int)cg.kh; q.KW = (int)cg.kw; q.sh = (int)cg.sh;
            q.sw = (int)cg.sw; q.dh = (int)cg.dh; q.dw = (int)cg.dw; q.ph = (int)cg.pt; q.pw = (int)cg.pl;
            q.x_scale = xs; q.y_scale = ys;
            q.act = !strcmp(act, "Relu") ? 1 : !strcmp(act, "Sigmoid") ? 2 : !strcmp(act, "Gelu") ? 3 : 0;
            q.Cp = (q.C + 31) & ~31; q.COp = (q.CO + 31) & ~31;
            q.ldy = q.CO; q.ys0 = (int64_t)q.OH * q.OW * q.CO;
            int khw = q.KH * q.KW;
            size_t wb = (size_t)q.COp * khw * q.Cp;
            int8_t *wp = calloc(wb, 1);
            int32_t *bp = calloc(q.COp, 4);
            float *mp = calloc(q.COp, 4);
            const int8_t *w = wv->data;
            for (int co = 0; co < q.CO; co++)
                for (int c = 0; c < q.C; c++)
                    for (int k = 0; k < khw; k++) wp[((size_t)co * khw + k) * q.Cp + c] = w[((size_t)co * q.C + c) * khw + k];
            memcpy(bp, bv->data, 4 * q.CO);
            memcpy(mp, mv->data, 4 * q.CO);
            int64_t P = (int64_t)q.N * q.OH * q.OW;
            void *dx, *dxq, *dw, *db, *dm, *dy, *dacc;
            CK(cudaMalloc(&dx, 4 * xn));
            CK(cudaMalloc(&dxq, (size_t)q.N * q.H * q.W * q.Cp));
            CK(cudaMalloc(&dw, wb));
            CK(cudaMalloc(&db, 4 * q.COp));
            CK(cudaMalloc(&dm, 4 * q.COp));
            CK(cudaMalloc(&dy, 4 * P * q.CO));
            CK(cudaMalloc(&dacc, 4 * P * q.CO));
            CK(cudaMemcpy(dx, x, 4 * xn, cudaMemcpyHostToDevice));
            CK(cudaMemcpy(dw, wp, wb, cudaMemcpyHostToDevice));
            CK(cudaMemcpy(db, bp, 4 * q.COp, cudaMemcpyHostToDevice));
            CK(cudaMemcpy(dm, mp, 4 * q.COp, cudaMemcpyHostToDevice));
            int64_t xst[4] = {(int64_t)q.C * q.H * q.W, (int64_t)q.H * q.W, q.W, 1}; /* NCHW */
            CK(mtk_qconv_quantize(0, dx, xst, 0, dxq, q.N, q.C, q.H, q.W, q.Cp, xs));
            CK(mtk_qconv_gemm(0, &q, dxq, dw, db, dm, dy, 0, dacc));
            CK(cudaDeviceSynchronize());
            int32_t *acc = malloc(4 * P * q.CO);
            float *yd = malloc(4 * P * q.CO);
            CK(cudaMemcpy(acc, dacc, 4 * P * q.CO, cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(yd, dy, 4 * P * q.CO, cudaMemcpyDeviceToHost));
            /* direct call's output (NHWC) vs the CPU plan's (NCHW) */
            for (int64_t pix = 0; pix < P; pix++)
                for (int co = 0; co < q.CO; co++) {
                    int64_t img = pix / ((int64_t)q.OH * q.OW), rem = pix % ((int64_t)q.OH * q.OW);
                    float c = ycpu[(img * q.CO + co) * q.OH * q.OW + rem];
                    int64_t d = ulps(c, yd[pix * q.CO + co]);
                    if (d) bad++;
                    if (d > mu) mu = d;
                }
            int ns = 4096;
            for (int sidx = 0; sidx < ns; sidx++) {
                int64_t pix = (int64_t)(mt_rng_uniform(rng) * P);
                int co = (int)(mt_rng_uniform(rng) * q.CO);
                if (pix >= P) pix = P - 1;
                if (co >= q.CO) co = q.CO - 1;
                int64_t img = pix / ((int64_t)q.OH * q.OW), rem = pix % ((int64_t)q.OH * q.OW);
                int oy = (int)(rem / q.OW), ox = (int)(rem % q.OW);
                int64_t s = 0;
                for (int c = 0; c < q.C; c++)
                    for (int ky = 0; ky < q.KH; ky++)
                        for (int kx = 0; kx < q.KW; kx++) {
                            int iy = oy * q.sh - q.ph + ky * q.dh, ix = ox * q.sw - q.pw + kx * q.dw;
                            if (iy < 0 || iy >= q.H || ix < 0 || ix >= q.W) continue;
                            int xq = mt_quantize(x[((img * q.C + c) * q.H + iy) * q.W + ix], xs);
                            s += (int64_t)xq * w[(((int64_t)co * q.C + c) * q.KH + ky) * q.KW + kx];
                        }
                s += bp[co];
                achk++;
                if (s != acc[pix * q.CO + co]) abad++;
            }
            wgmma_node(&q, dxq, dw, db, dm, dy, dacc, yd, acc, n->name ? n->name : "?");
            fp16_node(&q, x, xn, dw, db, dm, yd, acc, n->name ? n->name : "?", fchk, fbad);
            free(acc); free(yd); free(wp); free(bp); free(mp);
            cudaFree(dx); cudaFree(dxq); cudaFree(dw); cudaFree(db); cudaFree(dm); cudaFree(dy); cudaFree(dacc);
        }
    }
    char sh[64];
    mt_shape_str(xv->rank, xv->dims, sh, sizeof sh);
    /* Relu / none: every step is one IEEE rounding, so bit-identical.
     * Sigmoid / Gelu: the CPU's libm expf / erff (glibc: <= 0.502 ulp /
     * ~1 ulp) against the GPU's double exp / erf rounded once; one ulp in
     * e becomes at most 2 after 1 + e and the division (H100, 00:31 UTC:
     * 142 of 262144 Sigmoid outputs differ, max 2 ulp).  Allowed: 2 ulp for
     * Sigmoid, 4 for Gelu (no Gelu in the reference heads; not measured). */
    int64_t allow = exact_act ? 0 : !strcmp(act, "Sigmoid") ? 2 : 4;
    int fail = abad || mu > allow;
    printf("  %-7s %-40.40s x %-18s act %-7s y_scale %s: %lld outputs, %lld differ (max %lld ulp), acc %lld/%lld exact  %s\n",
           n->op, n->name ? n->name : "?", sh, act[0] ? act : "none", ys > 0 ? "yes" : "no ", (long long)yn, (long long)bad,
           (long long)mu, (long long)(achk - abad), (long long)achk, fail ? "FAIL" : "ok");
    if (fail) g_fail = 1;
    (*nodes)++;
    *elems += yn;
    *mism += bad;
    if (mu > *maxulp) *maxulp = mu;
    *acc_checked += achk;
    *acc_bad += abad;
    mt_cuda_plan_free(gp);
    mt_cpu_plan_free(cp);
    mt_graph_free(g1);
    free(x); free(ycpu); free(ygpu);
}

/* ------------------------------------------------------------ part 2 */
typedef struct run_out {
    float *o[2];
    int64_t dims[2][MTMI_MAX_RANK];
    int rank[2];
    double ms;
} run_out;

static void run_plan_tuned(mtmi_model *m, const char *dev, const char *prec, const char *cache, const char *tuning,
                           const mtmi_tensor *in, run_out *r) {
    mtmi_plan_options po = {0};
    po.tuning = tuning;
    po.device = dev;
    po.precision = prec;
    po.calibration_cache = cache;
    po.input_shapes = in;
    po.num_input_shapes = 1;
    mtmi_plan *p;
    OK(mtmi_plan_create(m, &po, &p));
    mtmi_tensor out[2];
    memset(out, 0, sizeof out);
    for (int i = 0; i < 2; i++) {
        OK(mtmi_plan_output_shape(p, i, &r->rank[i], r->dims[i]));
        r->o[i] = malloc(sizeof(float) * mt_numel(r->rank[i], r->dims[i]));
        out[i].data = r->o[i];
    }
    double t0 = mt_now_ms();
    OK(mtmi_plan_run(p, in, 1, out, 2));
    r->ms = mt_now_ms() - t0;
    mtmi_plan_free(p);
}

static void run_plan(mtmi_model *m, const char *dev, const char *prec, const char *cache, const mtmi_tensor *in, run_out *r) {
    run_plan_tuned(m, dev, prec, cache, NULL, in, r);
}

/* outputs of two runs equal bit for bit: the count of differing elements */
static int64_t bit_diffs(const run_out *a, const run_out *b) {
    int64_t bad = 0;
    for (int i = 0; i < 2; i++) {
        int64_t n = mt_numel(a->rank[i], a->dims[i]);
        if (n != mt_numel(b->rank[i], b->dims[i])) return -1;
        if (memcmp(a->o[i], b->o[i], sizeof(float) * (size_t)n))
            for (int64_t k = 0; k < n; k++) bad += memcmp(&a->o[i][k], &b->o[i][k], sizeof(float)) != 0;
    }
    return bad;
}

/* the GPU INT8 plan with `tuning` must give ref's outputs bit for bit */
static void fusion_same_bits(mtmi_model *m, const char *cache, const mtmi_tensor *in, const run_out *ref, const char *tuning,
                             const char *what) {
    run_out r;
    memset(&r, 0, sizeof r);
    run_plan_tuned(m, "cuda:0", "int8", cache, tuning, in, &r);
    const int64_t d = bit_diffs(ref, &r);
    printf("  GPU int8 with / without %s: %lld elements differ (must be 0)\n", what, (long long)d);
    if (d != 0) g_fail = 1;
    free(r.o[0]);
    free(r.o[1]);
}

static void compare(const char *what, run_out *a, run_out *b, double *agree_out, double *dmax_out) {
    int seg = a->dims[0][1] > 1 ? 0 : 1, dep = 1 - seg;
    int64_t C = a->dims[seg][1], HW = a->dims[seg][2] * a->dims[seg][3], same = 0;
    for (int64_t i = 0; i < HW; i++) {
        int ca = 0, cb = 0;
        for (int64_t c = 1; c < C; c++) {
            if (a->o[seg][c * HW + i] > a->o[seg][ca * HW + i]) ca = (int)c;
            if (b->o[seg][c * HW + i] > b->o[seg][cb * HW + i]) cb = (int)c;
        }
        same += ca == cb;
    }
    int64_t dn = mt_numel(a->rank[dep], a->dims[dep]);
    double dmax = 0, dsum = 0;
    for (int64_t i = 0; i < dn; i++) {
        double d = fabs((double)a->o[dep][i] - b->o[dep][i]);
        if (!(d <= dmax)) dmax = d;
        dsum += d;
    }
    *agree_out = (double)same / HW;
    *dmax_out = dmax;
    printf("  %-32s seg class agreement %.5f (%lld of %lld pixels differ), depth max |err| %.3g, mean %.3g\n", what,
           (double)same / HW, (long long)(HW - same), (long long)HW, dmax, dsum / dn);
}

int main(int argc, char **argv) {
    const char *model = NULL, *cache = NULL;
    long H = 0, W = 0, FH = 0, FW = 0, seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc) sscanf(argv[++i], "%ldx%ld", &H, &W);
        else if (!strcmp(argv[i], "--full") && i + 1 < argc) sscanf(argv[++i], "%ldx%ld", &FH, &FW);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = atol(argv[++i]);
        else if (!strcmp(argv[i], "--dry")) g_dry = 1;
        else if (!strcmp(argv[i], "--bench")) g_bench = 1;
        else if (!model) model = argv[i];
        else cache = argv[i];
    }
    if (!model || !cache) {
        fprintf(stderr, "usage: test_cuda_int8 MODEL CACHE [--size HxW] [--full HxW] [--seed S] [--bench]\n");
        return 2;
    }
    if (!g_dry && mt_cuda_check_device(0)) {
        printf("skipped: %s\n", mtmi_last_error());
        return 77;
    }
    mtmi_load_options lo = {.fill_missing_weights = 1, .seed = (uint64_t)seed};
    mtmi_model *m;
    OK(mtmi_model_load(model, &lo, &m));
    mtmi_tensor shape = {0};
    OK(mtmi_model_input_shape(m, 0, &shape.rank, shape.dims));
    shape.dtype = MTMI_FLOAT;
    if (shape.dims[0] <= 0) shape.dims[0] = 1;
    if (H) { /* else the model's own size */
        shape.dims[2] = H;
        shape.dims[3] = W;
    }
    for (int d = 2; d < 4; d++)
        if (shape.dims[d] <= 0) shape.dims[d] = 1024;

    printf("== INT8 kernels vs the CPU reference (%lldx%lld, cache %s)\n", (long long)shape.dims[2], (long long)shape.dims[3], cache);
    mt_graph *g;
    OK(mt_model_specialize(m, &shape, 1, 1, &g));
    mt_quant_report rep;
    OK(mt_quant_plan_graph(m->graph, g, cache, &rep));
    printf("  rewrite: %d nodes quantized, %d left in float\n", rep.quantized, rep.skipped);
    mt_rng rng;
    mt_rng_seed(&rng, oracle_seed(12345));
    int nodes = 0;
    int64_t elems = 0, mism = 0, maxulp = 0, achk = 0, abad = 0, fchk = 0, fbad = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        if (n->dead || !n->domain || strcmp(n->domain, "mtmi") || (strcmp(n->op, "QConv") && strcmp(n->op, "QLinear"))) continue;
        check_node(g, i, &rng, &nodes, &elems, &mism, &maxulp, &achk, &abad, &fchk, &fbad);
    }
    if (!nodes) {
        printf("  FAIL: no quantized node\n");
        g_fail = 1;
    }
    printf("INT8 kernels: %d nodes, %lld outputs, %lld not bit-identical (max %lld ulp), int32 accumulators %lld/%lld identical\n",
           nodes, (long long)elems, (long long)mism, (long long)maxulp, (long long)(achk - abad), (long long)achk);
    printf("INT8 fused quantize (1x1, FP16 NHWC input) vs quantize pass + GEMM: %lld runs, %lld differ\n", (long long)fchk,
           (long long)fbad);
    printf("INT8 output for the next QConv (y_int8, fuse_qchain.c) vs quantizing the float output: %lld runs, %lld differ\n",
           (long long)g_ichk, (long long)g_ibad);
    if (!g_ichk) {
        printf("  FAIL: no node with an output scale: y_int8 untested\n");
        g_fail = 1;
    }
    printf("INT8 wgmma 3x3 configurations vs the automatic choice: %lld runs, %lld differ\n", (long long)g_wg_runs,
           (long long)g_wg_bad);
    if (mtk_qconv_wgmma_built() && !g_wg_runs && !g_dry) {
        printf("  FAIL: wgmma kernels built but no node ran them\n");
        g_fail = 1;
    }
    if (!g_dry) resize_q8_check(&rng);
    if (!g_dry) ln_q8_check(&rng);
    if (!g_dry) qln_fired(g);
    if (!g_dry) upconv_q8_check(&rng);
    mt_graph_free(g);

    /* part 2: the whole model */
    mtmi_tensor full = {0};
    OK(mtmi_model_input_shape(m, 0, &full.rank, full.dims));
    full.dtype = MTMI_FLOAT;
    if (full.dims[0] <= 0) full.dims[0] = 1;
    if (FH) {
        full.dims[2] = FH;
        full.dims[3] = FW;
    }
    for (int d = 2; d < 4; d++)
        if (full.dims[d] <= 0) full.dims[d] = 1024;
    printf("== whole model %lldx%lld: GPU (encoder FP16, heads INT8) vs CPU INT8 reference\n", (long long)full.dims[2],
           (long long)full.dims[3]);
    int64_t n = mt_numel(full.rank, full.dims);
    float *x = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) x[i] = mt_rng_normal(&rng);
    full.data = x;
    run_out ci8, gi8, cf32, gf16;
    if (g_dry) {
        run_plan(m, "cpu", "int8", cache, &full, &ci8);
        run_plan(m, "cpu", "fp32", NULL, &full, &cf32);
        double a, d;
        compare("CPU int8 vs CPU fp32 (INT8 loss):", &ci8, &cf32, &a, &d);
        printf("dry run: CPU side only\n");
        return g_fail;
    }
    run_plan(m, "cpu", "int8", cache, &full, &ci8);
    run_plan(m, "cuda:0", "int8", cache, &full, &gi8);
    /* Each fusion pass of the INT8 heads must give the same bits as the
     * plan without it (the default plan against the one with the pass
     * switched off, or with an opt-in one switched on):
     *  - fuse_qchain.c (on by default: a QConv writes the next one's int8
     *    input), against the float round trip it replaces;
     *  - fuse_qresize.c (on by default: the resizes and QConvs that make a
     *    QConv's input write its int8 codes);
     *  - its rescaling writer (on by default, qrescale: a QConv writing a
     *    slice of an input with another scale);
     *  - fuse_qupconv.c (opt-in: the 3x3 QConvs upsample their own input);
     *  - fuse_qln.c (on by default: the encoder's LayerNorms write the
     *    features' int8 codes, the heads' QConvs skip their quantize). */
    fusion_same_bits(m, cache, &full, &gi8, "cuda_no_fuse=qchain", "the qchain fusion");
    fusion_same_bits(m, cache, &full, &gi8, "cuda_no_fuse=qresize", "the qresize fusion");
    fusion_same_bits(m, cache, &full, &gi8, "cuda_no_fuse=qrescale", "the qrescale writer");
    fusion_same_bits(m, cache, &full, &gi8, "cuda_fuse_opt=qupconv", "the qupconv fusion");
    fusion_same_bits(m, cache, &full, &gi8, "cuda_no_fuse=qln", "the encoder's int8 features (qln)");
    /* the 3x3 QConvs on the wgmma kernel (sm_90a builds) and off it */
    if (mtk_qconv_wgmma_built()) {
        fusion_same_bits(m, cache, &full, &gi8, "qconv_wgmma=1", "the wgmma 3x3 kernel");
        fusion_same_bits(m, cache, &full, &gi8, "qconv_wgmma=0", "the 3x3 convs off the wgmma kernel");
    } else {
        printf("  wgmma kernels not built (CMAKE_CUDA_ARCHITECTURES is not 90a): their checks skipped\n");
    }
    /* The seg head's fuse conv reassociated (int8_reassoc; mtmi.QUpsampleSum,
     * src/quant/reassoc.c): the GPU's level-0 GEMM with the upsample-sum in
     * its epilogue (fuse_qupsum.c) against QUpsampleSum's own kernel, bit
     * for bit, and both against the CPU running the same graph. */
    run_out ri8, rg8;
    run_plan_tuned(m, "cpu", "int8", cache, "int8_reassoc=1", &full, &ri8);
    run_plan_tuned(m, "cuda:0", "int8", cache, "int8_reassoc=1", &full, &rg8);
    fusion_same_bits(m, cache, &full, &rg8, "int8_reassoc=1;cuda_no_fuse=qupsum", "the reassociated fuse conv's qupsum fusion");
    double ar, dr, ar2, dr2;
    compare("GPU int8 reassoc vs CPU int8 reassoc:", &rg8, &ri8, &ar, &dr);
    compare("GPU int8 reassoc vs GPU int8:", &rg8, &gi8, &ar2, &dr2);
    if (!(ar >= 0.965) || !(dr < 0.071) || !(ar2 >= 0.95)) {
        printf("  FAIL: the reassociated GPU INT8 plan too far from the CPU's (agreement %.4f >= 0.965, depth max %.4f < 0.071) "
               "or from the Q/DQ-order GPU plan (agreement %.4f >= 0.95)\n", ar, dr, ar2);
        g_fail = 1;
    }
    free(ri8.o[0]), free(ri8.o[1]), free(rg8.o[0]), free(rg8.o[1]);
    run_plan(m, "cpu", "fp32", NULL, &full, &cf32);
    run_plan(m, "cuda:0", "fp16", NULL, &full, &gf16);
    double a1, d1, a2, d2, a3, d3;
    compare("GPU int8 vs CPU int8:", &gi8, &ci8, &a1, &d1);
    compare("GPU fp16 vs CPU fp32 (scale):", &gf16, &cf32, &a2, &d2);
    compare("CPU int8 vs CPU fp32 (INT8 loss):", &ci8, &cf32, &a3, &d3);
    /* The FP32 reference must be discriminative (else agreement says
     * nothing).  The GPU's INT8 heads see FP16 encoder features, the CPU's
     * FP32 ones: its disagreement with the CPU INT8 plan should be of the
     * order of the FP16-vs-FP32 one, far below a broken kernel's.  Bounds
     * ~1.5x the first GPU run's disagreement and error (H100, 2026-12-06:
     * agreement 0.9766, depth max 0.0472; INT8 loss 0.9669). */
    {
        int seg = cf32.dims[0][1] > 1 ? 0 : 1;
        int64_t HW = cf32.dims[seg][2] * cf32.dims[seg][3];
        if (!oracle_nondegenerate("CPU fp32 reference", cf32.o[seg], cf32.o[1 - seg], 1, HW)) {
            printf("  FAIL: degenerate reference output\n");
            g_fail = 1;
        }
    }
    if (!(a1 >= 0.965) || !(d1 < 0.071) || !(a3 >= 0.95)) {
        printf("  FAIL: GPU INT8 too far from the CPU INT8 reference (agreement %.4f >= 0.965, depth max %.4f < 0.071), or INT8 "
               "too far from FP32 (agreement %.4f >= 0.95)\n", a1, d1, a3);
        g_fail = 1;
    }
    printf("SUMMARY int8_kernels nodes=%d outputs=%lld mismatches=%lld max_ulp=%lld acc_checked=%lld acc_bad=%lld "
           "gpu_int8_vs_cpu_int8_agree=%.5f gpu_int8_vs_cpu_int8_depth_max=%.3g gpu_fp16_vs_cpu_fp32_agree=%.5f "
           "gpu_fp16_vs_cpu_fp32_depth_max=%.3g cpu_int8_vs_fp32_agree=%.5f cpu_int8_vs_fp32_depth_max=%.3g\n",
           nodes, (long long)elems, (long long)mism, (long long)maxulp, (long long)achk, (long long)abad, a1, d1, a2, d2, a3, d3);
    printf(g_fail ? "FAILED\n" : "all INT8 GPU checks passed\n");
    mtmi_model_free(m);
    free(x);
    return g_fail;
}
