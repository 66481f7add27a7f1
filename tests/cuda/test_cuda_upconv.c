/* GPU check of the fused upsample -> 3x3 conv kernel (mtk_upconv3x3,
 * src/cuda/upconv.cu) against a CPU reference: the bilinear 2x upsample
 * (half_pixel, clamped taps) of the channel concat computed in FP32 with
 * the GPU's expression order and rounded to FP16, then the conv in double.
 * The two differ only by the conv's accumulation order and the output's FP16
 * rounding.  Covers the depth head's three shapes at reduced resolution, odd
 * sizes that do not divide the tiles, one and two sources, CO 24 / 32 / 40 /
 * 64 / 160, each activation, output into a channel slice (the channels
 * around it must stay untouched), and every tile variant.  Prints max abs
 * and relative L2 error per case; exit 1 on failure, 77 when no GPU.
 * --bench: the three full-size shapes, median of 50 launches (CUDA events),
 * µs and TFLOP/s for each tile variant, and the unfused path it replaces
 * (mtk_resize_cat + cuDNN's fastest convolution with bias and ReLU).
 *
 * With cuDNN, the same cases also check the polyphase path (polyconv.cu,
 * fuse_poly.c): the replicate-padded concat, cuDNN's convolution of it with
 * the composed weights (four output phases at the low resolution), and the
 * finishing kernel (bias, activation, the border ring corrected), against
 * the same reference.  It skips the upsampled values' FP16 rounding and
 * rounds the composed weights instead, so its per-element tolerance is
 * wider (a few 1e-3 of the output's RMS); a wrong ring, phase or tap is
 * off by the output's own size.  --bench times it beside the others. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef MTMI_HAVE_CUDNN
#include <cudnn.h>
#endif

#include "core/core.h"
#include "cuda/kernels.h"

#include "cuda/cuda_ck.h"
#include "cuda/cuda_testutil.h"
#include "oracle.h"

static int g_fail = 0;
static mt_rng g_rng;

typedef struct ucase {
    const char *name;
    int N, IH, IW, nsrc, cs[2], CO, act;
    int xpad;       /* extra channels of pixel stride in each source (a strided view) */
    int ypix, yoff; /* output pixel stride and first channel (a slice); ypix 0: CO */
} ucase;

/* one axis of the half_pixel scale-2 bilinear taps, as k_resize_cat8 */
static void tap_at(int o, int len, int *i0, int *i1, float *a) {
    float f = (o + 0.5f) / 2.f - 0.5f;
    f = fminf(fmaxf(f, 0.f), (float)(len - 1));
    *i0 = (int)f;
    *i1 = *i0 + 1 < len ? *i0 + 1 : len - 1;
    *a = f - *i0;
}

/* Sources, weights, bias and an output buffer for a case; ref != NULL:
 * also the CPU reference of the output channels [N][OH][OW][CO]. */
typedef struct ubufs {
    void *dx[2], *dw, *db, *dy;
    int64_t xs[2][4], ys[4];
    int C, OH, OW, ypix;
    size_t ybytes;
    uint16_t *hx[2], *hw, *hb;
} ubufs;

static void make_bufs(const ucase *c, ubufs *b) {
    memset(b, 0, sizeof *b);
    b->C = 0;
    for (int k = 0; k < c->nsrc; k++) b->C += c->cs[k];
    b->OH = 2 * c->IH;
    b->OW = 2 * c->IW;
    for (int k = 0; k < c->nsrc; k++) {
        int px = c->cs[k] + c->xpad;
        int64_t n = (int64_t)c->N * c->IH * c->IW * px;
        b->hx[k] = rnd_half(&g_rng, n, 1.f);
        b->dx[k] = dev_copy(b->hx[k], n * 2);
        b->xs[k][1] = 1;
        b->xs[k][3] = px;
        b->xs[k][2] = (int64_t)c->IW * px;
        b->xs[k][0] = (int64_t)c->IH * c->IW * px;
    }
    int64_t nw = (int64_t)c->CO * 9 * b->C;
    b->hw = rnd_half(&g_rng, nw, 1.f / sqrtf(9.f * b->C));
    b->dw = dev_copy(b->hw, nw * 2);
    b->hb = rnd_half(&g_rng, c->CO, 0.2f);
    b->db = dev_copy(b->hb, c->CO * 2);
    b->ypix = c->ypix ? c->ypix : c->CO;
    b->ys[1] = 1;
    b->ys[3] = b->ypix;
    b->ys[2] = (int64_t)b->OW * b->ypix;
    b->ys[0] = (int64_t)b->OH * b->OW * b->ypix;
    b->ybytes = (size_t)c->N * b->OH * b->OW * b->ypix * 2;
    CK(cudaMalloc(&b->dy, b->ybytes));
}

static void free_bufs(const ucase *c, ubufs *b) {
    for (int k = 0; k < c->nsrc; k++) {
        cudaFree(b->dx[k]);
        free(b->hx[k]);
    }
    cudaFree(b->dw);
    cudaFree(b->db);
    cudaFree(b->dy);
    free(b->hw);
    free(b->hb);
}

static cudaError_t launch(const ucase *c, ubufs *b, int variant, cudaStream_t st) {
    const void *xp[2] = {b->dx[0], b->dx[1]};
    return mtk_upconv3x3_variant(st, variant, c->nsrc, xp, (const int64_t(*)[4])b->xs, c->cs, b->dw, b->db,
                                 (uint16_t *)b->dy + c->yoff, b->ys, c->N, c->IH, c->IW, c->CO, c->act);
}

/* CPU reference [N][OH][OW][CO] */
static double *reference(const ucase *c, const ubufs *b) {
    const int N = c->N, IH = c->IH, IW = c->IW, OH = b->OH, OW = b->OW, C = b->C, CO = c->CO;
    /* the upsampled concat, rounded to FP16 (kept as float) */
    float *u = malloc(sizeof(float) * (size_t)N * OH * OW * C);
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                int y0, y1, x0, x1;
                float ay, ax;
                tap_at(oy, IH, &y0, &y1, &ay);
                tap_at(ox, IW, &x0, &x1, &ax);
                const float w00 = (1.f - ay) * (1.f - ax), w01 = (1.f - ay) * ax, w10 = ay * (1.f - ax), w11 = ay * ax;
                int cc = 0;
                for (int k = 0; k < c->nsrc; k++) {
                    const int64_t *s = b->xs[k];
                    const uint16_t *x = b->hx[k] + n * s[0];
                    for (int ch = 0; ch < c->cs[k]; ch++, cc++) {
                        float fa = mt_half_to_float(x[y0 * s[2] + x0 * s[3] + ch]);
                        float fb = mt_half_to_float(x[y0 * s[2] + x1 * s[3] + ch]);
                        float fc = mt_half_to_float(x[y1 * s[2] + x0 * s[3] + ch]);
                        float fd = mt_half_to_float(x[y1 * s[2] + x1 * s[3] + ch]);
                        float v = fa * w00 + fb * w01 + fc * w10 + fd * w11;
                        u[(((size_t)n * OH + oy) * OW + ox) * C + cc] = mt_half_to_float(mt_float_to_half(v));
                    }
                }
            }
    float *w = malloc(sizeof(float) * (size_t)CO * 9 * C);
    for (int64_t i = 0; i < (int64_t)CO * 9 * C; i++) w[i] = mt_half_to_float(b->hw[i]);
    double *ref = malloc(sizeof(double) * (size_t)N * OH * OW * CO);
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++)
                for (int co = 0; co < CO; co++) {
                    double acc = mt_half_to_float(b->hb[co]);
                    for (int ky = 0; ky < 3; ky++) {
                        int iy = oy - 1 + ky;
                        if (iy < 0 || iy >= OH) continue;
                        for (int kx = 0; kx < 3; kx++) {
                            int ix = ox - 1 + kx;
                            if (ix < 0 || ix >= OW) continue;
                            const float *up = u + (((size_t)n * OH + iy) * OW + ix) * C;
                            const float *wp = w + ((size_t)co * 9 + ky * 3 + kx) * C;
                            for (int ch = 0; ch < C; ch++) acc += (double)up[ch] * wp[ch];
                        }
                    }
                    ref[(((size_t)n * OH + oy) * OW + ox) * CO + co] = act_ref(acc, c->act);
                }
    free(u);
    free(w);
    return ref;
}

#ifdef MTMI_HAVE_CUDNN
#define DNN(x)                                                                                     \
    do {                                                                                           \
        cudnnStatus_t s_ = (x);                                                                    \
        if (s_ != CUDNN_STATUS_SUCCESS) {                                                          \
            printf("cuDNN error %s at %s:%d: %s\n", cudnnGetErrorString(s_), __FILE__, __LINE__, #x); \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* The polyphase path's buffers and cuDNN objects for one case. */
typedef struct poly_ctx {
    cudnnHandle_t h;
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnConvolutionFwdAlgo_t algo;
    void *xpad, *ph, *wc, *ws;
    size_t wsb;
} poly_ctx;

static void poly_setup(const ucase *c, const ubufs *b, cudaStream_t st, poly_ctx *q) {
    const int N = c->N, IH = c->IH, IW = c->IW, C = b->C, CO4 = 4 * c->CO;
    memset(q, 0, sizeof *q);
    uint16_t *wc = malloc(sizeof(uint16_t) * (size_t)CO4 * 9 * C);
    if (mtk_poly_compose_weights(b->hw, c->CO, C, wc)) {
        printf("FAIL: polyphase: out of memory composing the weights\n");
        exit(1);
    }
    q->wc = dev_copy(wc, sizeof(uint16_t) * (size_t)CO4 * 9 * C);
    free(wc);
    CK(cudaMalloc(&q->xpad, (size_t)N * (IH + 2) * (IW + 2) * C * 2));
    CK(cudaMalloc(&q->ph, (size_t)N * IH * IW * CO4 * 2));
    q->wsb = (size_t)256 << 20;
    CK(cudaMalloc(&q->ws, q->wsb));
    DNN(cudnnCreate(&q->h));
    DNN(cudnnSetStream(q->h, st));
    DNN(cudnnCreateTensorDescriptor(&q->xd));
    DNN(cudnnCreateTensorDescriptor(&q->yd));
    DNN(cudnnCreateFilterDescriptor(&q->wd));
    DNN(cudnnCreateConvolutionDescriptor(&q->cd));
    DNN(cudnnSetTensor4dDescriptor(q->xd, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, N, C, IH + 2, IW + 2));
    DNN(cudnnSetTensor4dDescriptor(q->yd, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, N, CO4, IH, IW));
    DNN(cudnnSetFilter4dDescriptor(q->wd, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC, CO4, C, 3, 3));
    DNN(cudnnSetConvolution2dDescriptor(q->cd, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    DNN(cudnnSetConvolutionMathType(q->cd, CUDNN_TENSOR_OP_MATH));
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int np = 0, best = -1;
    DNN(cudnnFindConvolutionForwardAlgorithmEx(q->h, q->xd, q->xpad, q->wd, q->wc, q->cd, q->yd, q->ph,
                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &np, perf, q->ws, q->wsb));
    for (int i = 0; i < np && best < 0; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS) best = i;
    if (best < 0) {
        printf("FAIL: polyphase: no cuDNN algorithm\n");
        exit(1);
    }
    q->algo = perf[best].algo;
}

static void poly_free(poly_ctx *q) {
    cudnnDestroyTensorDescriptor(q->xd);
    cudnnDestroyTensorDescriptor(q->yd);
    cudnnDestroyFilterDescriptor(q->wd);
    cudnnDestroyConvolutionDescriptor(q->cd);
    cudnnDestroy(q->h);
    cudaFree(q->xpad);
    cudaFree(q->ph);
    cudaFree(q->wc);
    cudaFree(q->ws);
}

/* parts: bit 0 the padded concat, bit 1 the convolution, bit 2 the finish */
static cudaError_t poly_launch(const ucase *c, ubufs *b, poly_ctx *q, cudaStream_t st, int parts) {
    const void *xp[2] = {b->dx[0], b->dx[1]};
    if (parts & 1) {
        cudaError_t e = mtk_poly_pad(st, c->nsrc, xp, (const int64_t(*)[4])b->xs, c->cs, q->xpad, c->N, c->IH, c->IW);
        if (e != cudaSuccess) return e;
    }
    if (parts & 2) {
        const float one = 1.f, zero = 0.f;
        DNN(cudnnConvolutionForward(q->h, &one, q->xd, q->xpad, q->wd, q->wc, q->cd, q->algo, q->ws, q->wsb, &zero, q->yd, q->ph));
    }
    if (parts & 4)
        return mtk_poly_finish(st, q->ph, c->nsrc, xp, (const int64_t(*)[4])b->xs, c->cs, b->dw, b->db,
                               (uint16_t *)b->dy + c->yoff, b->ys, c->N, c->IH, c->IW, c->CO, c->act);
    return cudaGetLastError();
}
#endif

#define SENTINEL 0x7bd2 /* an FP16 value (62016) no output takes */

#define POLY_VARIANT (-2)

/* Runs variant v (-1 the default, POLY_VARIANT the polyphase path, q its
 * context) and compares with ref. */
static void check_case(const ucase *c, ubufs *b, const double *ref, int v, void *q) {
    uint16_t *hy = malloc(b->ybytes);
    for (size_t i = 0; i < b->ybytes / 2; i++) hy[i] = SENTINEL;
    CK(cudaMemcpy(b->dy, hy, b->ybytes, cudaMemcpyHostToDevice));
#ifdef MTMI_HAVE_CUDNN
    if (v == POLY_VARIANT) CK(poly_launch(c, b, q, 0, 7));
    else
#endif
        CK(launch(c, b, v, 0));
    (void)q;
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(hy, b->dy, b->ybytes, cudaMemcpyDeviceToHost));
    const int64_t npix = (int64_t)c->N * b->OH * b->OW;
    double mx = 0, num = 0, den = 0, ss = 0;
    int64_t n = npix * c->CO, nbad = 0, ntouched = 0;
    for (int64_t i = 0; i < n; i++) ss += ref[i] * ref[i];
    const double rms = sqrt(ss / (n ? n : 1));
    int nonfinite = 0;
    for (int64_t p = 0; p < npix; p++)
        for (int ch = 0; ch < b->ypix; ch++) {
            uint16_t h = hy[p * b->ypix + ch];
            int co = ch - c->yoff;
            if (co < 0 || co >= c->CO) {
                if (h != SENTINEL) ntouched++;
                continue;
            }
            double r = ref[p * c->CO + co], g = mt_half_to_float(h);
            if (!isfinite(g)) nonfinite = 1;
            double d = fabs(g - r);
            /* FP16 output rounding (2^-11 relative) plus FP32 accumulation;
             * the polyphase path: plus the composed weights' rounding */
            if (!(d <= ldexp(fabs(r), -10) + (v == POLY_VARIANT ? 4e-3 : 2e-4) * rms)) nbad++;
            if (d > mx) mx = d;
            num += d * d;
            den += r * r;
        }
    double rel = den > 0 ? sqrt(num / den) : mx;
    int ok = !nonfinite && !nbad && !ntouched && rel <= 1e-3;
    char vname[64];
    snprintf(vname, sizeof vname, "%s", v == POLY_VARIANT ? "polyphase" : v < 0 ? "default" : mtk_upconv3x3_variant_name(v));
    printf("  %-34s %-26s max abs %.3e  rel L2 %.3e  %s", c->name, vname, mx, rel, ok ? "ok" : "FAIL");
    if (nonfinite) printf(" (non-finite)");
    if (nbad) printf(" (%lld beyond tolerance)", (long long)nbad);
    if (ntouched) printf(" (%lld channels outside the slice written)", (long long)ntouched);
    printf("\n");
    if (!ok) g_fail = 1;
    free(hy);
}

static void run_checks(void) {
    static const ucase cases[] = {
        /* the depth head's shapes at reduced resolution */
        {"a: 64+32ch 24x40 CO32 relu", 1, 24, 40, 2, {64, 32}, 32, 1, 0, 0, 0},
        {"b: 160+64ch 16x24 CO64 relu N2", 2, 16, 24, 2, {160, 64}, 64, 1, 0, 0, 0},
        {"c: 256+160ch 16x16 CO160 relu", 1, 16, 16, 2, {256, 160}, 160, 1, 0, 0, 0},
        /* odd sizes, one source, slices, activations */
        {"odd 1src 40ch 7x13 CO24 slice", 1, 7, 13, 1, {40, 0}, 24, 0, 8, 56, 16},
        {"odd 2src 24+16 9x11 CO40 slice", 2, 9, 11, 2, {24, 16}, 40, 1, 0, 48, 8},
        {"tiny 1x5 1src 16ch CO32", 1, 1, 5, 1, {16, 0}, 32, 1, 0, 0, 0},
        {"tall 13x3 2src 8+8 CO64 sigmoid", 1, 13, 3, 2, {8, 8}, 64, 2, 0, 0, 0},
        {"17x19 2src 32+48 CO160 gelu", 1, 17, 19, 2, {32, 48}, 160, 3, 16, 168, 8},
        {"10x34 1src 96ch CO32 none N3", 3, 10, 34, 1, {96, 0}, 32, 0, 0, 0, 0},
    };
    const int nc = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < nc; i++) {
        const ucase *c = &cases[i];
        ubufs b;
        make_bufs(c, &b);
        double *ref = reference(c, &b);
        check_case(c, &b, ref, -1, NULL);
        /* every tile variant (the bench times them all) */
        for (int v = 0; v < mtk_upconv3x3_nvariants(); v++) check_case(c, &b, ref, v, NULL);
#ifdef MTMI_HAVE_CUDNN
        {
            poly_ctx q;
            poly_setup(c, &b, 0, &q);
            check_case(c, &b, ref, POLY_VARIANT, &q);
            poly_free(&q);
        }
#endif
        free(ref);
        free_bufs(c, &b);
    }
    /* unsupported shapes are refused, not run */
    {
        int cs[2] = {12, 8};
        printf("  unsupported (12-channel source): %s\n", mtk_upconv3x3_supported(2, cs, 32, 1) ? "accepted (FAIL)" : "refused ok");
        if (mtk_upconv3x3_supported(2, cs, 32, 1)) g_fail = 1;
    }
}

#define NREP 50


#ifdef MTMI_HAVE_CUDNN
/* The unfused path: the upsampled concat written by mtk_resize_cat, then
 * cuDNN's fastest (measured) algorithm with bias + ReLU fused, as the plan
 * runs MC_RESIZE_CAT + MC_CUDNN.  Prints resize, conv and total medians. */
static void bench_unfused(const ucase *c, ubufs *b, cudaStream_t st, cudaEvent_t *ev, int nrep) {
    const int N = c->N, C = b->C, OH = b->OH, OW = b->OW, CO = c->CO;
    void *up, *ws, *y;
    size_t wsb = (size_t)256 << 20;
    CK(cudaMalloc(&up, (size_t)N * OH * OW * C * 2));
    CK(cudaMalloc(&ws, wsb));
    CK(cudaMalloc(&y, (size_t)N * OH * OW * CO * 2));
    cudnnHandle_t h;
    DNN(cudnnCreate(&h));
    DNN(cudnnSetStream(h, st));
    cudnnTensorDescriptor_t xd, yd, bd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnActivationDescriptor_t ad;
    DNN(cudnnCreateTensorDescriptor(&xd));
    DNN(cudnnCreateTensorDescriptor(&yd));
    DNN(cudnnCreateTensorDescriptor(&bd));
    DNN(cudnnCreateFilterDescriptor(&wd));
    DNN(cudnnCreateConvolutionDescriptor(&cd));
    DNN(cudnnCreateActivationDescriptor(&ad));
    DNN(cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, N, C, OH, OW));
    DNN(cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, N, CO, OH, OW));
    DNN(cudnnSetTensor4dDescriptor(bd, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, 1, CO, 1, 1));
    DNN(cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC, CO, C, 3, 3));
    DNN(cudnnSetConvolution2dDescriptor(cd, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    DNN(cudnnSetConvolutionMathType(cd, CUDNN_TENSOR_OP_MATH));
    DNN(cudnnSetActivationDescriptor(ad, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int np = 0;
    DNN(cudnnFindConvolutionForwardAlgorithmEx(h, xd, up, wd, b->dw, cd, yd, y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &np, perf,
                                               ws, wsb));
    int best = -1;
    for (int i = 0; i < np && best < 0; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS) best = i;
    if (best < 0) {
        printf("   unfused: no cuDNN algorithm\n");
    } else {
        const int64_t ysu[4] = {(int64_t)OH * OW * C, 1, (int64_t)OW * C, C};
        const void *xp[2] = {b->dx[0], b->dx[1]};
        int cb[2] = {0, c->cs[0]};
        const float one = 1.f, zero = 0.f;
        float t[3][64];
        for (int part = 0; part < 3; part++) { /* 0 resize, 1 conv, 2 both */
            for (int r = -5; r < nrep; r++) {
                if (r == 0) CK(cudaEventRecord(ev[0], st));
                if (part != 1)
                    CK(mtk_resize_cat(st, c->nsrc, xp, (const int64_t(*)[4])b->xs, cb, up, ysu, N, C, c->IH, c->IW, OH, OW,
                                      2.f, 2.f, 0));
                if (part != 0)
                    DNN(cudnnConvolutionBiasActivationForward(h, &one, xd, up, wd, b->dw, cd, perf[best].algo, ws, wsb, &zero,
                                                              yd, y, bd, b->db, ad, yd, y));
                if (r >= 0) CK(cudaEventRecord(ev[r + 1], st));
            }
            CK(cudaEventSynchronize(ev[nrep]));
            for (int r = 0; r < nrep; r++) CK(cudaEventElapsedTime(&t[part][r], ev[r], ev[r + 1]));
            median_of(t[part], nrep); /* sorts: t[part][nrep / 2] is the median */
        }
        printf("   %-28s %8.1f us  (resize-cat %.1f + cuDNN algo %d %.1f)\n", "unfused", t[2][nrep / 2] * 1e3,
               t[0][nrep / 2] * 1e3, (int)perf[best].algo, t[1][nrep / 2] * 1e3);
    }
    cudnnDestroyTensorDescriptor(xd);
    cudnnDestroyTensorDescriptor(yd);
    cudnnDestroyTensorDescriptor(bd);
    cudnnDestroyFilterDescriptor(wd);
    cudnnDestroyConvolutionDescriptor(cd);
    cudnnDestroyActivationDescriptor(ad);
    cudnnDestroy(h);
    cudaFree(up);
    cudaFree(ws);
    cudaFree(y);
}
#endif

#ifdef MTMI_HAVE_CUDNN
/* The polyphase path: pad, cuDNN's convolution of four phases, finish;
 * each part's median and the three together. */
static void bench_poly(const ucase *c, ubufs *b, cudaStream_t st, cudaEvent_t *ev, int nrep, double flop) {
    poly_ctx q;
    poly_setup(c, b, st, &q);
    static const int parts[4] = {1, 2, 4, 7};
    float t[4][64];
    for (int k = 0; k < 4; k++) {
        for (int r = -5; r < nrep; r++) {
            if (r == 0) CK(cudaEventRecord(ev[0], st));
            CK(poly_launch(c, b, &q, st, parts[k]));
            if (r >= 0) CK(cudaEventRecord(ev[r + 1], st));
        }
        CK(cudaEventSynchronize(ev[nrep]));
        for (int r = 0; r < nrep; r++) CK(cudaEventElapsedTime(&t[k][r], ev[r], ev[r + 1]));
        median_of(t[k], nrep);
    }
    const double us = t[3][nrep / 2] * 1e3;
    printf("   %-28s %8.1f us  %6.1f TFLOP/s  (pad %.1f + cuDNN algo %d %.1f + finish %.1f)\n", "polyphase", us,
           flop / (us * 1e-6) * 1e-12, t[0][nrep / 2] * 1e3, (int)q.algo, t[1][nrep / 2] * 1e3, t[2][nrep / 2] * 1e3);
    poly_free(&q);
}
#endif

static void run_bench(void) {
    static const ucase cases[] = {
        {"a: 64+32ch 256x256->512x512 CO32", 1, 256, 256, 2, {64, 32}, 32, 1, 0, 0, 0},
        {"b: 160+64ch 128x128->256x256 CO64", 1, 128, 128, 2, {160, 64}, 64, 1, 0, 0, 0},
        {"c: 256+160ch 64x64->128x128 CO160", 1, 64, 64, 2, {256, 160}, 160, 1, 0, 0, 0},
    };
    cudaStream_t st;
    CK(cudaStreamCreate(&st));
    cudaEvent_t ev[NREP + 1];
    for (int r = 0; r <= NREP; r++) CK(cudaEventCreate(&ev[r]));
    printf("bench (median of %d launches):\n", NREP);
    for (int i = 0; i < 3; i++) {
        const ucase *c = &cases[i];
        ubufs b;
        make_bufs(c, &b);
        double flop = 2.0 * c->N * b.OH * b.OW * c->CO * 9.0 * b.C;
        printf(" %s (%.1f GFLOP)\n", c->name, flop * 1e-9);
        for (int v = -1; v < mtk_upconv3x3_nvariants(); v++) {
            /* events between back-to-back launches, all queued ahead: each
             * interval is one kernel, not the host's launch latency */
            float t[NREP];
            for (int w = 0; w < 5; w++) CK(launch(c, &b, v, st));
            CK(cudaEventRecord(ev[0], st));
            for (int r = 0; r < NREP; r++) {
                CK(launch(c, &b, v, st));
                CK(cudaEventRecord(ev[r + 1], st));
            }
            CK(cudaEventSynchronize(ev[NREP]));
            for (int r = 0; r < NREP; r++) CK(cudaEventElapsedTime(&t[r], ev[r], ev[r + 1]));
            double us = median_of(t, NREP) * 1e3;
            printf("   %-28s %8.1f us  %6.1f TFLOP/s\n", v < 0 ? "default" : mtk_upconv3x3_variant_name(v), us,
                   flop / (us * 1e-6) * 1e-12);
        }
#ifdef MTMI_HAVE_CUDNN
        bench_unfused(c, &b, st, ev, NREP);
        bench_poly(c, &b, st, ev, NREP, flop);
#endif
        free_bufs(c, &b);
    }
    for (int r = 0; r <= NREP; r++) cudaEventDestroy(ev[r]);
    cudaStreamDestroy(st);
}

int main(int argc, char **argv) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        printf("skipped: no GPU\n");
        return 77;
    }
    mt_rng_seed(&g_rng, oracle_seed(1) ^ 0x9e3779b97f4a7c15ull); /* printed; MTMI_TEST_SEED sets it */
    int bench = argc > 1 && !strcmp(argv[1], "--bench");
    printf("fused upsample -> conv3x3 vs CPU reference:\n");
    run_checks();
    if (bench) run_bench();
    printf("%s\n", g_fail ? "FAILED" : "all ok");
    return g_fail;
}
