/* CPU kernels of mtmi.QConv and mtmi.QLinear: the exact INT8 reference
 * (arithmetic contract in graph/qops.h).
 *
 * Both are one int8 GEMM, C[m][col] = sum_k A[m][k] * B[k][col]:
 *   A = the int8 weights (rows = output channels), packed once per plan as
 *       pairs (a[2p], a[2p+1]) of int16 in an int32;
 *   B = the quantized input, im2col'ed per tile of columns into the same
 *       pair layout ([p][col][2] int16), so that AVX2's vpmaddwd forms
 *       a[2p]*b[2p] + a[2p+1]*b[2p+1] in int32 for 8 columns at once.
 * int8 products fit int16 and the int32 sums cannot overflow (|sum| <=
 * K * 16256 for K < 2^17), so the result is exact whatever the order:
 * any GPU kernel summing the same products gets the same acc.
 *
 * Where the CPU has AVX-512 VNNI the GEMM runs on vpdpbusd instead
 * (kernels_quant_vnni.c: 4 int8 products a lane per instruction, the
 * activations offset to unsigned and the offset taken back out exactly),
 * with A packed as 4 weights an int32 and B as 4 offset activations a
 * column; the same integer sums, so the same bits.  tuning.no_avx512
 * (MTMI_NO_AVX512=1) keeps the AVX2 path, to test and time it. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/kernels_quant.h"
#include "graph/qops.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

enum { TILE = 128 };

/* mt_quantize (graph/qops.h) in a branch-free form the compiler vectorizes:
 * clamping before rounding gives the same result since the bounds are
 * integers; NaN -> 0. */
static inline int32_t quantize_fast(float x, float s) {
    float v = x / s;
    v = v == v ? v : 0.0f;
    v = v > 127.0f ? 127.0f : v;
    v = v < -128.0f ? -128.0f : v;
    return (int32_t)__builtin_rintf(v);
} /* columns per packed B tile; a multiple of 16 */
enum { ACT_NONE, ACT_RELU, ACT_SIGMOID, ACT_GELU };

typedef struct qstate {
    int conv;
    int64_t groups, Mg, K, P; /* output channels per group, K per row, K pairs */
    int32_t *a;               /* [groups][Mg][P] packed pairs (the AVX2 path) */
    /* The VNNI path (vnni = 1): A as [groups][Mpad][Q] int32 of 4 weights
     * (rows padded to a multiple of 8 with zeros), and per output channel
     * the offset to take out, 128 * sum of its weights. */
    int vnni;
    int64_t Q, Mpad;
    int32_t *a4, *corr;
    int act;
    float ys;
} qstate;

static void qrelease(void *p) {
    qstate *s = p;
    if (!s) return;
    free(s->a);
    free(s->a4);
    free(s->corr);
    free(s);
}

static int act_code(const mt_node *n) {
    const char *a = mt_attr_string(n, "activation", "");
    if (!strcmp(a, "Relu")) return ACT_RELU;
    if (!strcmp(a, "Sigmoid")) return ACT_SIGMOID;
    if (!strcmp(a, "Gelu")) return ACT_GELU;
    return ACT_NONE;
}

/* The AVX2 layout of the weights: pairs of int16 in an int32 (see qstate). */
static mtmi_status pack_pairs(qstate *s, const int8_t *wq, int64_t M) {
    s->a = malloc(sizeof(int32_t) * (size_t)(M * s->P) + 4);
    if (!s->a) return MTMI_ERR_NOMEM;
    for (int64_t m = 0; m < M; m++)
        for (int64_t p = 0; p < s->P; p++) {
            int16_t lo = wq[m * s->K + 2 * p];
            int16_t hi = 2 * p + 1 < s->K ? wq[m * s->K + 2 * p + 1] : 0;
            s->a[m * s->P + p] = (int32_t)(((uint32_t)(uint16_t)hi << 16) | (uint16_t)lo);
        }
    return MTMI_OK;
}

/* The VNNI layouts of the weights (see qstate) and the offsets. */
static mtmi_status pack_vnni(qstate *s, const int8_t *wq) {
    s->Q = (s->K + 3) / 4;
    s->Mpad = (s->Mg + 7) / 8 * 8;
    const int64_t M = s->groups * s->Mg;
    s->a4 = calloc((size_t)(s->groups * s->Mpad * s->Q), sizeof(int32_t));
    s->corr = malloc(sizeof(int32_t) * (size_t)(M ? M : 1));
    if (!s->a4 || !s->corr) return MTMI_ERR_NOMEM;
    for (int64_t m = 0; m < M; m++) {
        const int8_t *w = wq + m * s->K;
        uint8_t *dst = (uint8_t *)(s->a4 + ((m / s->Mg) * s->Mpad + m % s->Mg) * s->Q);
        int32_t sum = 0;
        for (int64_t k = 0; k < s->K; k++) {
            dst[k] = (uint8_t)w[k]; /* byte k of the row: int32 q holds k = 4q .. 4q+3, little-endian */
            sum += w[k];
        }
        s->corr[m] = 128 * sum;
    }
    s->vnni = 1;
    return MTMI_OK;
}

static mtmi_status qprepare(const mt_graph *g, const mt_node *n, const mt_cpu_ctx *ctx, void **state) {
    const mt_value *w = &g->values[n->in[1]];
    if (w->dtype != MTMI_INT8 || !w->data) return mt_kernel_fail(g, n, MTMI_ERR_ARG, "weights must be constant int8");
    qstate *s = mt_alloc(sizeof *s);
    if (!s) return MTMI_ERR_NOMEM;
    s->conv = !strcmp(n->op, "QConv");
    s->groups = s->conv ? mt_attr_int(n, "group", 1) : 1;
    if (s->groups <= 0) s->groups = 1;
    int64_t M = w->dims[0];
    s->Mg = M / s->groups;
    s->K = mt_value_numel(w) / (M ? M : 1);
    s->P = (s->K + 1) / 2;
    s->act = act_code(n);
    s->ys = mt_attr_float(n, "y_scale", 0);
    const int8_t *wq = w->data;
    /* One packing, for the path the runs take. */
    const int vnni = !ctx->tuning->no_avx512 && s->K <= MT_QVNNI_MAX_K && mt_qvnni_available();
    if ((vnni ? pack_vnni(s, wq) : pack_pairs(s, wq, M)) != MTMI_OK) {
        qrelease(s);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory packing int8 weights");
    }
    *state = s;
    return MTMI_OK;
}

static size_t qscratch(const mt_graph *g, const mt_node *n, const mt_cpu_ctx *ctx) {
    const int nthreads = ctx->nthreads;
    const mt_value *x = &g->values[n->in[0]], *w = &g->values[n->in[1]];
    int64_t M = w->dims[0] ? w->dims[0] : 1;
    int64_t K = mt_value_numel(w) / M;
    size_t xq = ((size_t)mt_value_numel(x) + 63) & ~(size_t)63;
    size_t tile = (size_t)((K + 1) / 2) * TILE * 2 * sizeof(int16_t);
    return xq + (size_t)nthreads * ((tile + 63) & ~(size_t)63);
}

/* The float epilogue of n values of one output channel: int32
 * accumulators (bias included) -> output values.  Written as separate
 * simple loops so that they vectorize; every step is an IEEE operation
 * with one rounding (vcvtdq2ps, vmulps, vdivps, vroundps), so vector and
 * scalar forms give the same bits. */
static inline void epilogue_act(int n, int act, float ys, float *y) {
    switch (act) {
    case ACT_RELU:
        for (int t = 0; t < n; t++) y[t] = y[t] > 0 ? y[t] : 0.0f;
        break;
    case ACT_SIGMOID:
        for (int t = 0; t < n; t++) y[t] = 1.0f / (1.0f + expf(-y[t]));
        break;
    case ACT_GELU:
        for (int t = 0; t < n; t++) y[t] = 0.5f * y[t] * (1.0f + erff(y[t] * (float)M_SQRT1_2));
        break;
    default: break;
    }
    if (ys > 0)
        for (int t = 0; t < n; t++) y[t] = (float)quantize_fast(y[t], ys) * ys;
}
static inline void epilogue(const int32_t *acc, int n, float mult, int act, float ys, float *y) {
    for (int t = 0; t < n; t++) y[t] = (float)acc[t] * mult;
    epilogue_act(n, act, ys, y);
}

/* acc[r][c] for rows m0..m0+nr (nr <= 4), columns t0..t0+16 of the tile. */
static void micro(const int32_t *a, int64_t P, int nr, const int16_t *b, int t0, int32_t acc[4][16]) {
#ifdef __AVX2__
    __m256i c[4][2];
    for (int r = 0; r < 4; r++) c[r][0] = c[r][1] = _mm256_setzero_si256();
    for (int64_t p = 0; p < P; p++) {
        const int16_t *bp = b + ((size_t)p * TILE + t0) * 2;
        __m256i b0 = _mm256_loadu_si256((const __m256i *)bp);
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(bp + 16));
        for (int r = 0; r < nr; r++) {
            __m256i av = _mm256_set1_epi32(a[r * P + p]);
            c[r][0] = _mm256_add_epi32(c[r][0], _mm256_madd_epi16(av, b0));
            c[r][1] = _mm256_add_epi32(c[r][1], _mm256_madd_epi16(av, b1));
        }
    }
    for (int r = 0; r < nr; r++) {
        _mm256_storeu_si256((__m256i *)acc[r], c[r][0]);
        _mm256_storeu_si256((__m256i *)(acc[r] + 8), c[r][1]);
    }
#else
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < 16; t++) acc[r][t] = 0;
    for (int64_t p = 0; p < P; p++) {
        const int16_t *bp = b + ((size_t)p * TILE + t0) * 2;
        for (int r = 0; r < nr; r++) {
            int32_t av = a[r * P + p];
            int32_t lo = (int16_t)(av & 0xffff), hi = (int16_t)((uint32_t)av >> 16);
            for (int t = 0; t < 16; t++) acc[r][t] += lo * bp[2 * t] + hi * bp[2 * t + 1];
        }
    }
#endif
}

/* Quantizes a float tensor with scale s into int8 (parallel). */
static void quantize_all(const float *x, int8_t *q, int64_t n, float s, int nthreads) {
    int64_t chunk = 1 << 16, nch = (n + chunk - 1) / chunk;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t c = 0; c < nch; c++) {
        int64_t e = MT_MIN(n, (c + 1) * chunk);
        for (int64_t i = c * chunk; i < e; i++) q[i] = (int8_t)quantize_fast(x[i], s);
    }
}

/* An input already quantized (int8 NHWC [N,H,W,C], the encoder's handed-over
 * features: graph/qops.h) to the NCHW codes the tiles read (parallel). */
static void nhwc_to_nchw_i8(const int8_t *x, int8_t *q, int64_t N, int64_t C, int64_t H, int64_t W, int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(static) collapse(2)
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < H; h++) {
            const int8_t *src = x + ((n * H + h) * W) * C;
            int8_t *dst = q + n * C * H * W + h * W;
            for (int64_t w = 0; w < W; w++)
                for (int64_t c = 0; c < C; c++) dst[c * H * W + w] = src[w * C + c];
        }
}

/* One row of im2col for the VNNI path, contiguous: the activations + 128
 * of input channel plane xc at kernel offset (ky, kx) for the tile's
 * output pixels c0 .. c0+nc into dst[0 .. TILE); padding reads x = 0
 * (128), columns past nc too.  Stride-1 runs copy their in-bounds span in
 * one loop the compiler vectorizes. */
static void im2col_u8_row(const int8_t *xc, const mt_conv_geom *cg, int64_t ky, int64_t kx, int64_t c0, int nc, uint8_t *dst) {
    int64_t oy = c0 / cg->OW, ox = c0 % cg->OW;
    int t = 0;
    while (t < nc) {
        const int run = (int)MT_MIN((int64_t)(nc - t), cg->OW - ox);
        const int64_t iy = oy * cg->sh - cg->pt + ky * cg->dh;
        const int64_t ix0 = ox * cg->sw - cg->pl + kx * cg->dw;
        uint8_t *d = dst + t;
        if (iy < 0 || iy >= cg->H) {
            memset(d, 128, (size_t)run);
        } else if (cg->sw == 1) {
            const int8_t *row = xc + iy * cg->W;
            const int lo = (int)MT_MIN((int64_t)run, MT_MAX((int64_t)0, -ix0));
            const int hi = (int)MT_MAX((int64_t)lo, MT_MIN((int64_t)run, cg->W - ix0));
            memset(d, 128, (size_t)lo);
            for (int u = lo; u < hi; u++) d[u] = (uint8_t)(row[ix0 + u] ^ 0x80); /* x + 128 */
            memset(d + hi, 128, (size_t)(run - hi));
        } else {
            const int8_t *row = xc + iy * cg->W;
            for (int u = 0; u < run; u++) {
                const int64_t ix = ix0 + u * cg->sw;
                d[u] = (ix >= 0 && ix < cg->W) ? (uint8_t)(row[ix] ^ 0x80) : 128;
            }
        }
        t += run;
        ox = 0;
        oy++;
    }
    memset(dst + t, 128, (size_t)(TILE - t));
}

/* The GEMM of one tile on VNNI, 8 output channels by 32 columns at a time,
 * and the epilogue: out(m, col) = epilogue(acc + bq[m] - corr[m]) at
 * y[m * ystride_m + col * ystride_c] for the channels m of group grp. */
static void gemm_tile_vnni(const qstate *s, int64_t grp, const uint8_t *b, int nc, const int32_t *bq, const float *mult,
                           float *y, int64_t ystride_m, int64_t ystride_c) {
    int32_t acc[8][32];
    float v[32];
    for (int64_t m0 = 0; m0 < s->Mg; m0 += 8) {
        const int nr = (int)MT_MIN((int64_t)8, s->Mg - m0);
        const int32_t *a = s->a4 + (grp * s->Mpad + m0) * s->Q;
        for (int t0 = 0; t0 < nc; t0 += 32) {
            mt_qvnni_micro(a, s->Q, b, TILE, t0, acc);
            const int tn = (int)MT_MIN((int64_t)32, nc - t0);
            for (int r = 0; r < nr; r++) {
                const int64_t m = grp * s->Mg + m0 + r;
                const int32_t off = bq[m] - s->corr[m];
                for (int t = 0; t < 32; t++) acc[r][t] += off;
                if (ystride_c == 1) {
                    epilogue(acc[r], tn, mult[m], s->act, s->ys, y + m * ystride_m + t0);
                } else {
                    epilogue(acc[r], tn, mult[m], s->act, s->ys, v);
                    for (int t = 0; t < tn; t++) y[m * ystride_m + (t0 + t) * ystride_c] = v[t];
                }
            }
        }
    }
}

/* QConv on VNNI: per (image, group, tile of output pixels), im2col into
 * the [q][column][4] layout, then gemm_tile_vnni. */
static void run_qconv_vnni(const qstate *s, const mt_conv_geom *cg, const int8_t *xq, const int32_t *bq, const float *mult,
                           float *y, mt_cpu_ctx *ctx, size_t xqb, size_t tileb) {
    const int64_t cols = cg->OH * cg->OW, ntiles = (cols + TILE - 1) / TILE;
    const int64_t Cg = cg->C / cg->group, khw = cg->kh * cg->kw;
    const int64_t jobs = cg->N * cg->group * ntiles;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(dynamic)
    for (int64_t job = 0; job < jobs; job++) {
        uint8_t *b = (uint8_t *)ctx->scratch + xqb + tileb * (size_t)omp_get_thread_num();
        const int64_t tile = job % ntiles, grp = (job / ntiles) % cg->group, img = job / ntiles / cg->group;
        const int64_t c0 = tile * TILE;
        const int nc = (int)MT_MIN((int64_t)TILE, cols - c0);
        const int8_t *xg = xq + (img * cg->C + grp * Cg) * cg->H * cg->W;
        /* Four contiguous rows (k = 4q .. 4q+3), then interleaved. */
        uint8_t rows[4][TILE] __attribute__((aligned(64)));
        for (int64_t q = 0; q < s->Q; q++) {
            for (int j = 0; j < 4; j++) {
                const int64_t k = 4 * q + j;
                if (k >= s->K) { /* its weight is 0: any value; 128 keeps the bytes defined */
                    memset(rows[j], 128, TILE);
                    continue;
                }
                const int64_t c = k / khw, ky = (k / cg->kw) % cg->kh, kx = k % cg->kw;
                im2col_u8_row(xg + c * cg->H * cg->W, cg, ky, kx, c0, nc, rows[j]);
            }
            mt_qvnni_interleave4(rows[0], rows[1], rows[2], rows[3], b + (size_t)q * TILE * 4, TILE);
        }
        gemm_tile_vnni(s, grp, b, nc, bq, mult, y + img * cg->M * cols + c0, cols, 1);
    }
}

/* QConv: per (image, group, tile of output pixels): im2col the tile into
 * B, then GEMM + epilogue straight into the output. */
static mtmi_status run_qconv(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin,
                             mt_tview *out, int nout, mt_cpu_ctx *ctx) {
    qstate *s = state;
    mt_conv_geom cg;
    char err[128];
    int64_t xd[4];
    mt_qconv_input_dims(in[0].dtype, in[0].dims, xd);
    if (mt_conv_geometry(n, xd, in[1].dims, &cg, err, sizeof err)) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "%s", err);
    const float *x = in[0].data;
    const int32_t *bq = in[2].data;
    const float *mult = in[3].data;
    float *y = out[0].data;
    float xs = mt_attr_float(n, "x_scale", 0);
    if (!(xs > 0)) return mt_kernel_fail(g, n, MTMI_ERR_ARG, "x_scale must be positive");
    int64_t xn = mt_tview_numel(&in[0]);
    int8_t *xq = ctx->scratch;
    size_t xqb = ((size_t)xn + 63) & ~(size_t)63;
    size_t tileb = (((size_t)s->P * TILE * 2 * sizeof(int16_t)) + 63) & ~(size_t)63;
    if (in[0].dtype == MTMI_INT8) nhwc_to_nchw_i8(in[0].data, xq, cg.N, cg.C, cg.H, cg.W, ctx->nthreads);
    else if (in[0].dtype == MTMI_FLOAT) quantize_all(x, xq, xn, xs, ctx->nthreads);
    else return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "input is %s: float or int8 NHWC codes", mt_dtype_name(in[0].dtype));
    if (s->vnni) {
        run_qconv_vnni(s, &cg, xq, bq, mult, y, ctx, xqb, tileb);
        return MTMI_OK;
    }
    int64_t cols = cg.OH * cg.OW, ntiles = (cols + TILE - 1) / TILE;
    int64_t Cg = cg.C / cg.group, khw = cg.kh * cg.kw;
    int64_t jobs = cg.N * cg.group * ntiles;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(dynamic)
    for (int64_t job = 0; job < jobs; job++) {
        int16_t *b = (int16_t *)((uint8_t *)ctx->scratch + xqb + tileb * (size_t)omp_get_thread_num());
        int64_t tile = job % ntiles, grp = (job / ntiles) % cg.group, img = job / ntiles / cg.group;
        int64_t c0 = tile * TILE, nc = MT_MIN((int64_t)TILE, cols - c0);
        const int8_t *xg = xq + (img * cg.C + grp * Cg) * cg.H * cg.W;
        /* im2col: k = (c, ky, kx) in weight order; zero for padding, for
         * the odd k of the last pair and for columns past the end.  The
         * row comes from im2col_u8_row (x + 128, padding 128), widened. */
        uint8_t row[TILE];
        for (int64_t p = 0; p < s->P; p++)
            for (int h = 0; h < 2; h++) {
                int64_t k = 2 * p + h;
                int16_t *dst = b + (size_t)p * TILE * 2 + h;
                if (k >= s->K) {
                    for (int t = 0; t < TILE; t++) dst[2 * t] = 0;
                    continue;
                }
                int64_t c = k / khw, ky = (k / cg.kw) % cg.kh, kx = k % cg.kw;
                im2col_u8_row(xg + c * cg.H * cg.W, &cg, ky, kx, c0, (int)nc, row);
                for (int t = 0; t < TILE; t++) dst[2 * t] = (int16_t)(row[t] - 128);
            }
        int32_t acc[4][16];
        for (int64_t m0 = 0; m0 < s->Mg; m0 += 4) {
            int nr = (int)MT_MIN((int64_t)4, s->Mg - m0);
            const int32_t *a = s->a + (grp * s->Mg + m0) * s->P;
            for (int t0 = 0; t0 < nc; t0 += 16) {
                micro(a, s->P, nr, b, t0, acc);
                int tn = (int)MT_MIN((int64_t)16, nc - t0);
                for (int r = 0; r < nr; r++) {
                    int64_t m = grp * s->Mg + m0 + r;
                    for (int t = 0; t < 16; t++) acc[r][t] += bq[m];
                    epilogue(acc[r], tn, mult[m], s->act, s->ys, y + (img * cg.M + m) * cols + c0 + t0);
                }
            }
        }
    }
    return MTMI_OK;
}

/* QLinear: rows of X are the GEMM's columns. */
static mtmi_status run_qlinear(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin,
                               mt_tview *out, int nout, mt_cpu_ctx *ctx) {
    qstate *s = state;
    const float *x = in[0].data;
    const int32_t *bq = in[2].data;
    const float *mult = in[3].data;
    float *y = out[0].data;
    float xs = mt_attr_float(n, "x_scale", 0);
    if (!(xs > 0)) return mt_kernel_fail(g, n, MTMI_ERR_ARG, "x_scale must be positive");
    int64_t xn = mt_tview_numel(&in[0]), K = s->K, N = s->Mg;
    int64_t R = xn / (K ? K : 1);
    int8_t *xq = ctx->scratch;
    size_t xqb = ((size_t)xn + 63) & ~(size_t)63;
    size_t tileb = (((size_t)s->P * TILE * 2 * sizeof(int16_t)) + 63) & ~(size_t)63;
    quantize_all(x, xq, xn, xs, ctx->nthreads);
    int64_t ntiles = (R + TILE - 1) / TILE;
    if (s->vnni) {
#pragma omp parallel for num_threads(ctx->nthreads) schedule(dynamic)
        for (int64_t tile = 0; tile < ntiles; tile++) {
            uint8_t *b = (uint8_t *)ctx->scratch + xqb + tileb * (size_t)omp_get_thread_num();
            const int64_t r0 = tile * TILE;
            const int nc = (int)MT_MIN((int64_t)TILE, R - r0);
            /* Column t is row r0 + t of X: its 4 activations of k = 4q ..
             * 4q+3 are consecutive there, so each goes as one 32-bit word
             * (x + 128 for all four bytes by flipping their sign bits). */
            const int64_t Qfull = K / 4;
            for (int t = 0; t < TILE; t++) {
                const int8_t *row = xq + (t < nc ? r0 + t : 0) * K; /* read only for t < nc */
                uint8_t *dst = b + 4 * (size_t)t;
                int64_t q = 0;
                if (t < nc)
                    for (; q < Qfull; q++) {
                        uint32_t w4;
                        memcpy(&w4, row + 4 * q, 4);
                        w4 ^= 0x80808080u;
                        memcpy(dst + (size_t)q * TILE * 4, &w4, 4);
                    }
                for (; q < s->Q; q++) /* the tail of K, and columns past nc */
                    for (int j = 0; j < 4; j++) {
                        const int64_t k = 4 * q + j;
                        dst[(size_t)q * TILE * 4 + j] = t < nc && k < K ? (uint8_t)(row[k] ^ 0x80) : 128;
                    }
            }
            gemm_tile_vnni(s, 0, b, nc, bq, mult, y + r0 * N, 1, N);
        }
        return MTMI_OK;
    }
#pragma omp parallel for num_threads(ctx->nthreads) schedule(dynamic)
    for (int64_t tile = 0; tile < ntiles; tile++) {
        int16_t *b = (int16_t *)((uint8_t *)ctx->scratch + xqb + tileb * (size_t)omp_get_thread_num());
        int64_t r0 = tile * TILE, nc = MT_MIN((int64_t)TILE, R - r0);
        for (int64_t p = 0; p < s->P; p++) {
            int16_t *dst = b + (size_t)p * TILE * 2;
            int t = 0;
            for (; t < nc; t++) {
                const int8_t *row = xq + (r0 + t) * K;
                dst[2 * t] = row[2 * p];
                dst[2 * t + 1] = 2 * p + 1 < K ? row[2 * p + 1] : 0;
            }
            for (; t < TILE; t++) dst[2 * t] = dst[2 * t + 1] = 0;
        }
        int32_t acc[4][16];
        for (int64_t m0 = 0; m0 < N; m0 += 4) {
            int nr = (int)MT_MIN((int64_t)4, N - m0);
            for (int t0 = 0; t0 < nc; t0 += 16) {
                micro(s->a + m0 * s->P, s->P, nr, b, t0, acc);
                int tn = (int)MT_MIN((int64_t)16, nc - t0);
                for (int r = 0; r < nr; r++) {
                    int64_t m = m0 + r;
                    float v[16];
                    for (int t = 0; t < 16; t++) acc[r][t] += bq[m];
                    epilogue(acc[r], tn, mult[m], s->act, s->ys, v);
                    for (int t = 0; t < tn; t++) y[(r0 + t0 + t) * N + m] = v[t];
                }
            }
        }
    }
    return MTMI_OK;
}

/* mtmi.QuantizeNHWC: float [N,C,H,W] -> the int8 codes [N,H,W,C] with
 * the QConv's own quantize (the encoder's features handed to INT8 heads). */
static mtmi_status run_quantize_nhwc(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin,
                                     mt_tview *out, int nout, mt_cpu_ctx *ctx) {
    (void)state, (void)nin, (void)nout;
    const float s = mt_attr_float(n, "scale", 0);
    if (!(s > 0)) return mt_kernel_fail(g, n, MTMI_ERR_ARG, "scale must be positive");
    if (in[0].dtype != MTMI_FLOAT || in[0].rank != 4) return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "expects float NCHW input");
    const int64_t N = in[0].dims[0], C = in[0].dims[1], H = in[0].dims[2], W = in[0].dims[3];
    const float *x = in[0].data;
    int8_t *y = out[0].data;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static) collapse(2)
    for (int64_t b = 0; b < N; b++)
        for (int64_t h = 0; h < H; h++) {
            const float *src = x + b * C * H * W + h * W;
            int8_t *dst = y + ((b * H + h) * W) * C;
            for (int64_t c = 0; c < C; c++)
                for (int64_t w = 0; w < W; w++) dst[w * C + c] = (int8_t)quantize_fast(src[c * H * W + w], s);
        }
    return MTMI_OK;
}

/* mtmi.QUpsampleSum (graph/qops.h): the reassociated 1x1 QConv's exact
 * upsample-sum of its per-level integer sums.  Every term is an integer
 * below 2^40 here (|P| < 2^24, weights 16 x 16, 256 Bq < 2^39), so double
 * sums are exact and (float)acc is the contract's int64 -> float rounding.
 * Separable: per output row, each level's two source rows are blended at
 * the level's width, then the columns. */
typedef struct qup_axis {
    int64_t *i0, *i1;
    double *w0, *w1; /* x 16 */
} qup_axis;

static void qup_taps(int64_t o, int64_t in, int f, int64_t *i0, int64_t *i1, double *w0, double *w1) {
    int64_t num = 2 * o + 1 - f; /* the source coordinate (o + 0.5) / f - 0.5, in units of 1 / (2f) */
    if (num < 0) num = 0;
    if (num > (in - 1) * 2 * f) num = (in - 1) * 2 * f;
    *i0 = num / (2 * f);
    *i1 = *i0 + 1 < in ? *i0 + 1 : in - 1;
    const int64_t w = (num - *i0 * 2 * f) * 16 / (2 * f); /* exact: 2f divides 16 */
    *w1 = (double)w;
    *w0 = (double)(16 - w);
}

static mtmi_status run_qupsample_sum(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin,
                                     mt_tview *out, int nout, mt_cpu_ctx *ctx) {
    (void)state, (void)nout;
    const int L = nin - 2;
    const int64_t N = in[2].dims[0], M = in[2].dims[1], H = in[2].dims[2], W = in[2].dims[3];
    const int32_t *bq = in[0].data;
    const float *mult = in[1].data;
    const int act = act_code(n);
    const float ys = mt_attr_float(n, "y_scale", 0);
    if (L < 1 || L > MT_QUPSUM_MAX_LEVELS) return mt_kernel_fail(g, n, MTMI_ERR_ARG, "expects 1 to %d levels", MT_QUPSUM_MAX_LEVELS);
    /* the column taps of each level, once */
    qup_axis ax[MT_QUPSUM_MAX_LEVELS];
    int fy[MT_QUPSUM_MAX_LEVELS];
    void *mem = malloc((size_t)L * (size_t)W * (2 * sizeof(int64_t) + 2 * sizeof(double)) + 16);
    if (!mem) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    for (int l = 0; l < L; l++) {
        const int64_t wl = in[2 + l].dims[3];
        const int fx = mt_qupsample_factor(W, wl);
        fy[l] = mt_qupsample_factor(H, in[2 + l].dims[2]);
        if (!fx || !fy[l]) {
            free(mem);
            return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "level %d is not the first level's size over 1, 2, 4 or 8", l);
        }
        ax[l].i0 = (int64_t *)mem + (size_t)l * 2 * W;
        ax[l].i1 = ax[l].i0 + W;
        ax[l].w0 = (double *)((int64_t *)mem + (size_t)L * 2 * W) + (size_t)l * 2 * W;
        ax[l].w1 = ax[l].w0 + W;
        for (int64_t o = 0; o < W; o++) qup_taps(o, wl, fx, &ax[l].i0[o], &ax[l].i1[o], &ax[l].w0[o], &ax[l].w1[o]);
    }
    float *y = out[0].data;
    int failed = 0;
#pragma omp parallel num_threads(ctx->nthreads)
    {
        int64_t wmax = W;
        for (int l = 0; l < L; l++) wmax = in[2 + l].dims[3] > wmax ? in[2 + l].dims[3] : wmax;
        double *acc = malloc(sizeof(double) * (size_t)(W + wmax) + 16), *row = acc ? acc + W : NULL;
        if (!acc) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static) collapse(2)
        for (int64_t b = 0; b < N; b++)
            for (int64_t c = 0; c < M; c++) {
                if (!acc) continue;
                const float ms = ldexpf(mult[c], -8);
                float *yp = y + ((b * M + c) * H) * W;
                for (int64_t oy = 0; oy < H; oy++) {
                    for (int64_t x = 0; x < W; x++) acc[x] = 256.0 * (double)bq[c];
                    for (int l = 0; l < L; l++) {
                        const int64_t hl = in[2 + l].dims[2], wl = in[2 + l].dims[3];
                        const float *p = (const float *)in[2 + l].data + ((b * M + c) * hl) * wl;
                        int64_t r0, r1;
                        double wy0, wy1;
                        qup_taps(oy, hl, fy[l], &r0, &r1, &wy0, &wy1);
                        for (int64_t x = 0; x < wl; x++) row[x] = wy0 * (double)p[r0 * wl + x] + wy1 * (double)p[r1 * wl + x];
                        const qup_axis *a = &ax[l];
                        for (int64_t x = 0; x < W; x++) acc[x] += a->w0[x] * row[a->i0[x]] + a->w1[x] * row[a->i1[x]];
                    }
                    float *yr = yp + oy * W;
                    for (int64_t x = 0; x < W; x++) yr[x] = (float)acc[x] * ms;
                    epilogue_act((int)W, act, ys, yr);
                }
            }
        free(acc);
    }
    free(mem);
    if (failed) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    return MTMI_OK;
}

const mt_cpu_kernel mt_kernels_quant[] = {
    {"QuantizeNHWC", "mtmi", run_quantize_nhwc, NULL, NULL, NULL, 0},
    {"QUpsampleSum", "mtmi", run_qupsample_sum, NULL, NULL, NULL, 0},
    {"QConv", "mtmi", run_qconv, qscratch, qprepare, qrelease, 0},
    {"QLinear", "mtmi", run_qlinear, qscratch, qprepare, qrelease, 0},
    {NULL, NULL, NULL, NULL, NULL, NULL, 0},
};
