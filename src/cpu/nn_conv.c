/* Conv, mtmi.FusedConv and ConvTranspose (1-D and 2-D, NCHW; 3-D goes to
 * the direct loops of nn_conv3d.c).
 *
 * Paths for Conv, all on one thread pool (OpenMP threads share out tiles,
 * each calling a single-threaded sgemm; see conv_run):
 *  - 1x1, stride 1, no padding: a GEMM straight on the input,
 *    W[Cout, Cin] x X[Cin, HW], in column tiles so that bias+activation run
 *    on output that is still in cache;
 *  - depthwise (groups == channels): direct loops, an AVX2 one for 3x3
 *    stride 1 (the MiT FFN's DWConv), parallel over channel planes;
 *  - 3x3 stride 1, groups 1, constant weights: Winograd F(2x2, 3x3)
 *    (nn_winograd.c), weights transformed once in prepare;
 *  - everything else: im2col of a column tile into the thread's slice of
 *    the scratch buffer (about 1 MiB, so it stays in cache between im2col
 *    and GEMM) and sgemm on it.
 * Measured at 1024x1024, 2 threads, on the H100 host's Xeon: the depth
 * head's 3x3 convs 0.75-1.2x ONNX Runtime's time, its 1x1 convs 0.2-1.3x,
 * the dwconv+GELU 0.8-1.0x.
 */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu/kernels_nn.h"
#include "cpu/nn_winograd.h"
#include "graph/nn_geom.h"

/* Bytes of im2col columns per tile (each thread has its own): large
 * enough that sgemm runs near peak, small enough to stay in the core's L2
 * between im2col writing it and sgemm packing it. */
#ifndef MT_CONV_COL_BYTES
#define MT_CONV_COL_BYTES (1u << 20)
#endif
/* Input + output bytes per column tile of the direct 1x1 GEMM. */
#ifndef MT_CONV_1X1_BYTES
#define MT_CONV_1X1_BYTES (2u << 20)
#endif
/* Fewest columns per tile. */
#define MT_CONV_MIN_TILE 64

typedef struct conv_dims {
    int64_t N, C, H, W;       /* input                          */
    int64_t M, OH, OW;        /* output channels and size       */
    int64_t kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
    int64_t G;
} conv_dims;

static int conv_setup(const mt_node *n, int kind, const mt_tview *x, const mt_tview *w, conv_dims *d, char *err, size_t cap) {
    if (x->rank != 3 && x->rank != 4) {
        snprintf(err, cap, "input rank %d is not supported (1-D to 3-D convolutions)", x->rank);
        return -1;
    }
    if (w->rank != x->rank) {
        snprintf(err, cap, "weight rank %d differs from input rank %d", w->rank, x->rank);
        return -1;
    }
    mt_geom geo;
    int nsp = x->rank - 2;
    if (mt_geom_get(n, kind, nsp, x->dims + 2, w->dims + 2, &geo, err, cap)) return -1;
    d->N = x->dims[0];
    d->C = x->dims[1];
    d->G = geo.group;
    if (d->G < 1 || d->C % d->G) {
        snprintf(err, cap, "group %lld does not divide %lld channels", (long long)d->G, (long long)d->C);
        return -1;
    }
    if (kind == MT_GEOM_CONVT) {
        if (w->dims[0] != d->C) {
            snprintf(err, cap, "weight has %lld input channels, input has %lld", (long long)w->dims[0], (long long)d->C);
            return -1;
        }
        d->M = w->dims[1] * d->G;
    } else {
        d->M = w->dims[0];
        if (w->dims[1] * d->G != d->C || d->M % d->G) {
            snprintf(err, cap, "weight shape does not fit %lld channels in %lld groups", (long long)d->C, (long long)d->G);
            return -1;
        }
    }
    int o = nsp == 2 ? 0 : -1; /* 1-D maps onto 2-D with H = 1 */
    d->H = o == 0 ? x->dims[2] : 1;
    d->W = x->dims[x->rank - 1];
    d->OH = o == 0 ? geo.out[0] : 1;
    d->OW = geo.out[nsp - 1];
    d->kh = o == 0 ? geo.k[0] : 1;
    d->kw = geo.k[nsp - 1];
    d->sh = o == 0 ? geo.stride[0] : 1;
    d->sw = geo.stride[nsp - 1];
    d->dh = o == 0 ? geo.dil[0] : 1;
    d->dw = geo.dil[nsp - 1];
    d->pt = o == 0 ? geo.pb[0] : 0;
    d->pb = o == 0 ? geo.pe[0] : 0;
    d->pl = geo.pb[nsp - 1];
    d->pr = geo.pe[nsp - 1];
    return 0;
}

static int is_direct_1x1(const conv_dims *d) {
    return d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && d->pt == 0 && d->pl == 0 && d->pb == 0 && d->pr == 0;
}

static int is_depthwise(const conv_dims *d) { return d->G == d->C && d->G > 1; }

/* Columns per tile: the cache budget, but small enough that every thread
 * gets work (tiles are what the threads share out). */
static int64_t pick_tile(int64_t bytes_per_col, int64_t budget, int64_t ohw, int64_t items_per_tile, int nth) {
    int64_t t = budget / bytes_per_col;
    int64_t even = (ohw * items_per_tile + nth - 1) / nth; /* columns per thread */
    if (t > even) t = even;
    if (t < MT_CONV_MIN_TILE) t = MT_CONV_MIN_TILE;
    t = (t + 15) & ~(int64_t)15;
    if (t > ohw) t = ohw;
    return t;
}

/* Tile budgets; tuning.nn_col_kb / nn_1x1_kb (MTMI_NN_COL_KB /
 * MTMI_NN_1X1_KB) override them for tuning on a new machine (per plan:
 * its scratch sizes follow). */
static int64_t budget(int kb, int64_t def) { return kb > 0 ? (int64_t)kb << 10 : def; }

static int64_t col_tile(const mt_tuning *t, int64_t K, int64_t ohw, int64_t groups, int nth) {
    return pick_tile(K * (int64_t)sizeof(float), budget(t->nn_col_kb, MT_CONV_COL_BYTES), ohw, groups, nth);
}

static int64_t direct_tile(const mt_tuning *t, int64_t cin, int64_t cout, int64_t hw, int64_t groups, int nth) {
    return pick_tile((cin + cout) * (int64_t)sizeof(float), budget(t->nn_1x1_kb, MT_CONV_1X1_BYTES), hw, groups, nth);
}

/* The Winograd band budget (tuning.nn_wino_kb, MTMI_NN_WINO_KB; 0 =
 * nn_winograd.c's default). */
static int64_t wino_band(const mt_tuning *t) { return t->nn_wino_kb > 0 ? (int64_t)t->nn_wino_kb << 10 : 0; }

/* Conv geometry from the graph's (inferred) shapes; -1 if it does not fit. */
static int node_dims(const mt_graph *g, const mt_node *n, int kind, conv_dims *d) {
    if (n->nin < 2 || n->in[0] < 0 || n->in[1] < 0) return -1;
    const mt_value *xv = &g->values[n->in[0]], *wv = &g->values[n->in[1]];
    if (xv->rank < 0 || wv->rank < 0) return -1;
    mt_tview x = {NULL, xv->dtype, xv->rank, {0}}, w = {NULL, wv->dtype, wv->rank, {0}};
    memcpy(x.dims, xv->dims, sizeof x.dims);
    memcpy(w.dims, wv->dims, sizeof w.dims);
    char err[256];
    return conv_setup(n, kind, &x, &w, d, err, sizeof err);
}

/* Winograd pays off for 3x3 stride 1 with enough channels and pixels; the
 * weights must be constant (transformed once per plan).
 * tuning.no_winograd (MTMI_NN_WINOGRAD=0) turns it off (for comparisons). */
static int wino_ok(const mt_tuning *t, const mt_graph *g, const mt_node *n, const conv_dims *d) {
    if (t->no_winograd || g->values[n->in[1]].data == NULL || g->values[n->in[1]].dtype != MTMI_FLOAT) return 0;
    return d->G == 1 && d->kh == 3 && d->kw == 3 && d->sh == 1 && d->sw == 1 && d->dh == 1 && d->dw == 1 && d->H > 1 && d->C >= 8 &&
           d->M >= 8 && d->OH * d->OW >= 256;
}

typedef struct conv_state {
    mt_wino *wino;
} conv_state;

mtmi_status mt_nn_conv_prepare(const mt_graph *g, const mt_node *n, const mt_cpu_ctx *ctx, void **state) {
    *state = NULL;
    mt_nn_blas_init(ctx->tuning);
    conv_dims d;
    if (node_dims(g, n, MT_GEOM_CONV, &d) || !wino_ok(ctx->tuning, g, n, &d)) return MTMI_OK;
    conv_state *st = calloc(1, sizeof *st);
    if (!st || !(st->wino = mt_nn_wino_prepare(g->values[n->in[1]].data, d.M, d.C))) {
        free(st);
        return mt_kernel_fail(g, n, MTMI_ERR_NOMEM, "out of memory transforming weights");
    }
    *state = st;
    return MTMI_OK;
}

void mt_nn_conv_release(void *state) {
    conv_state *st = state;
    if (!st) return;
    mt_nn_wino_free(st->wino);
    free(st);
}

size_t mt_nn_conv_scratch(const mt_graph *g, const mt_node *n, const mt_cpu_ctx *ctx) {
    conv_dims d;
    if (node_dims(g, n, MT_GEOM_CONV, &d)) return 0;
    const int nthreads = ctx->nthreads < 1 ? 1 : ctx->nthreads;
    const mt_tuning *t = ctx->tuning;
    if (wino_ok(t, g, n, &d)) return mt_nn_wino_scratch(d.C, d.M, d.OH, d.OW, d.N, nthreads, wino_band(t));
    if (is_direct_1x1(&d) || is_depthwise(&d)) return 0;
    int64_t K = d.C / d.G * d.kh * d.kw;
    return (size_t)(K * col_tile(t, K, d.OH * d.OW, d.N * d.G, nthreads) * nthreads) * sizeof(float);
}

/* Columns [n0, n0 + tn) of the im2col matrix of one group's input
 * (Cg channels) into col[K, tn]. */
static void im2col_tile(const float *x, float *col, const conv_dims *d, int64_t Cg, int64_t n0, int64_t tn) {
    const int64_t kk = d->kh * d->kw, K = Cg * kk;
    for (int64_t r = 0; r < K; r++) {
        int64_t c = r / kk, rem = r % kk, ky = rem / d->kw, kx = rem % d->kw;
        const float *src = x + c * d->H * d->W;
        float *dst = col + r * tn;
        int64_t oy = n0 / d->OW, ox = n0 % d->OW, j = 0;
        while (j < tn) {
            int64_t cnt = MT_MIN(d->OW - ox, tn - j);
            int64_t iy = oy * d->sh - d->pt + ky * d->dh;
            if (iy < 0 || iy >= d->H) {
                memset(dst + j, 0, sizeof(float) * cnt);
            } else {
                const float *row = src + iy * d->W;
                int64_t ix0 = ox * d->sw - d->pl + kx * d->dw;
                if (d->sw == 1) {
                    int64_t lo = ix0 < 0 ? -ix0 : 0, hi = d->W - ix0;
                    if (lo > cnt) lo = cnt;
                    if (hi > cnt) hi = cnt;
                    if (hi < lo) hi = lo;
                    if (lo) memset(dst + j, 0, sizeof(float) * lo);
                    if (hi > lo) memcpy(dst + j + lo, row + ix0 + lo, sizeof(float) * (hi - lo));
                    if (cnt > hi) memset(dst + j + hi, 0, sizeof(float) * (cnt - hi));
                } else {
                    int64_t t = 0;
                    /* Leading pad, then (stride 2) 8 at a time while the
                     * 16-float window stays inside the row. */
                    for (; t < cnt && ix0 + t * d->sw < 0; t++) dst[j + t] = 0.0f;
#ifdef MT_NN_AVX2
                    if (d->sw == 2)
                        for (; t + 8 <= cnt && ix0 + 2 * t + 16 <= d->W; t += 8) {
                            const float *p = row + ix0 + 2 * t;
                            __m256 lo = _mm256_loadu_ps(p), hi = _mm256_loadu_ps(p + 8);
                            __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
                            _mm256_storeu_ps(dst + j + t, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0))));
                        }
                    if (d->sw > 2 && d->sw * 8 < INT32_MAX) {
                        const __m256i step = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)d->sw));
                        for (; t + 8 <= cnt && ix0 + (t + 7) * d->sw < d->W; t += 8)
                            _mm256_storeu_ps(dst + j + t, _mm256_i32gather_ps(row + ix0 + t * d->sw, step, 4));
                    }
#endif
                    for (; t < cnt; t++) {
                        int64_t ix = ix0 + t * d->sw;
                        dst[j + t] = ix >= 0 && ix < d->W ? row[ix] : 0.0f;
                    }
                }
            }
            j += cnt;
            ox = 0;
            oy++;
        }
    }
}

/* One output value of a depthwise conv, with bounds checks (borders and
 * the generic path). */
static inline float dw_point(const float *x, const float *w, const conv_dims *d, int64_t oy, int64_t ox) {
    float acc = 0.0f;
    for (int64_t ky = 0; ky < d->kh; ky++) {
        int64_t iy = oy * d->sh - d->pt + ky * d->dh;
        if (iy < 0 || iy >= d->H) continue;
        for (int64_t kx = 0; kx < d->kw; kx++) {
            int64_t ix = ox * d->sw - d->pl + kx * d->dw;
            if (ix < 0 || ix >= d->W) continue;
            acc += w[ky * d->kw + kx] * x[iy * d->W + ix];
        }
    }
    return acc;
}

static void depthwise(const float *X, const float *W, const float *B, float *Y, const conv_dims *d, int act, int nth) {
    const int64_t mult = d->M / d->C, planes = d->N * d->M;
    const int fast3 = d->kh == 3 && d->kw == 3 && d->sh == 1 && d->sw == 1 && d->dh == 1 && d->dw == 1 && d->pt == 1 && d->pl == 1 &&
                      d->pb == 1 && d->pr == 1;
    #pragma omp parallel for num_threads(nth) schedule(static)
    for (int64_t p = 0; p < planes; p++) {
        int64_t b = p / d->M, m = p % d->M, c = m / mult;
        const float *x = X + (b * d->C + c) * d->H * d->W;
        const float *w = W + m * d->kh * d->kw;
        float *y = Y + p * d->OH * d->OW;
        float bias = B ? B[m] : 0.0f;
        if (!fast3) {
            for (int64_t oy = 0; oy < d->OH; oy++) {
                for (int64_t ox = 0; ox < d->OW; ox++) y[oy * d->OW + ox] = dw_point(x, w, d, oy, ox) + bias;
                mt_nn_bias_act(y + oy * d->OW, d->OW, 0.0f, act);
            }
            continue;
        }
        const int64_t Wd = d->W;
#ifdef MT_NN_AVX2
        __m256 wv[9];
        for (int k = 0; k < 9; k++) wv[k] = _mm256_set1_ps(w[k]);
        __m256 bv = _mm256_set1_ps(bias);
#endif
        for (int64_t oy = 0; oy < d->OH; oy++) {
            float *yr = y + oy * Wd;
            const float *r[3];
            for (int k = 0; k < 3; k++) {
                int64_t iy = oy + k - 1;
                r[k] = iy >= 0 && iy < d->H ? x + iy * Wd : NULL;
            }
            int64_t ox = 1;
#ifdef MT_NN_AVX2
            for (; ox + 8 <= Wd - 1; ox += 8) {
                __m256 acc = bv;
                for (int k = 0; k < 3; k++) {
                    if (!r[k]) continue;
                    acc = _mm256_fmadd_ps(wv[3 * k], _mm256_loadu_ps(r[k] + ox - 1), acc);
                    acc = _mm256_fmadd_ps(wv[3 * k + 1], _mm256_loadu_ps(r[k] + ox), acc);
                    acc = _mm256_fmadd_ps(wv[3 * k + 2], _mm256_loadu_ps(r[k] + ox + 1), acc);
                }
                _mm256_storeu_ps(yr + ox, acc);
            }
#endif
            for (; ox < Wd - 1; ox++) {
                float acc = bias;
                for (int k = 0; k < 3; k++)
                    if (r[k]) acc += w[3 * k] * r[k][ox - 1] + w[3 * k + 1] * r[k][ox] + w[3 * k + 2] * r[k][ox + 1];
                yr[ox] = acc;
            }
            yr[0] = dw_point(x, w, d, oy, 0) + bias;
            if (Wd > 1) yr[Wd - 1] = dw_point(x, w, d, oy, Wd - 1) + bias;
            /* Activation over the whole row, vectorized (borders included:
             * scalar erf on them would cost more than the convolution). */
            mt_nn_bias_act(yr, Wd, 0.0f, act);
        }
    }
}

/* How Conv and ConvTranspose start: float inputs only; a rank-5 input runs
 * whole in mt_nn_conv3d (*done = 1), else conv_setup fills d. */
static mtmi_status conv_begin(const mt_graph *g, const mt_node *n, int kind, const mt_tview *in, int nin, mt_tview *out, int act,
                              mt_cpu_ctx *ctx, conv_dims *d, int *done) {
    *done = 0;
    mtmi_status s = mt_nn_need_f32(g, n, in, MT_MIN(nin, 3));
    if (s) return s;
    char err[256];
    if (in[0].rank == 5) {
        *done = 1;
        if (mt_nn_conv3d(n, kind, in, nin, out, act, ctx->nthreads, err, sizeof err))
            return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "%s", err);
        return MTMI_OK;
    }
    if (conv_setup(n, kind, &in[0], &in[1], d, err, sizeof err)) return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "%s", err);
    return MTMI_OK;
}

static mtmi_status conv_run(const mt_graph *g, const mt_node *n, const conv_state *st, const mt_tview *in, int nin, mt_tview *out, int act,
                            mt_cpu_ctx *ctx) {
    conv_dims d;
    int done;
    mtmi_status s = conv_begin(g, n, MT_GEOM_CONV, in, nin, out, act, ctx, &d, &done);
    if (s || done) return s;
    if (out[0].dims[1] != d.M || out[0].dims[out[0].rank - 1] != d.OW)
        return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "output shape does not match the convolution");
    const float *X = in[0].data, *W = in[1].data;
    const float *B = nin > 2 && in[2].data ? in[2].data : NULL;
    float *Y = out[0].data;
    const int nth = ctx->nthreads;
    if (is_depthwise(&d)) {
        depthwise(X, W, B, Y, &d, act, nth);
        return MTMI_OK;
    }
    if (st && st->wino && st->wino->M == d.M && st->wino->C == d.C && d.kh == 3 && d.kw == 3 && d.sh == 1 && d.sw == 1 && d.G == 1) {
        const int64_t band = wino_band(ctx->tuning);
        if (!ctx->scratch || ctx->scratch_size < mt_nn_wino_scratch(d.C, d.M, d.OH, d.OW, d.N, nth, band))
            return mt_kernel_fail(g, n, MTMI_ERR_INTERNAL, "scratch buffer too small");
        mt_nn_wino_run(st->wino, X, d.N, d.H, d.W, d.pt, d.pl, d.OH, d.OW, B, act, Y, ctx->scratch, nth, band);
        return MTMI_OK;
    }
    const int64_t Cg = d.C / d.G, Mg = d.M / d.G, HW = d.H * d.W, OHW = d.OH * d.OW;
    const int64_t K = Cg * d.kh * d.kw;
    const int direct = is_direct_1x1(&d);
    const int64_t tile = direct ? direct_tile(ctx->tuning, Cg, Mg, OHW, d.N * d.G, nth) : col_tile(ctx->tuning, K, OHW, d.N * d.G, nth);
    const int64_t ntiles = (OHW + tile - 1) / tile, items = d.N * d.G * ntiles;
    const int team = (int)MT_MIN((int64_t)nth, items);
    float *col = ctx->scratch;
    if (!direct && (!col || ctx->scratch_size < (size_t)(K * tile * team) * sizeof(float)))
        return mt_kernel_fail(g, n, MTMI_ERR_INTERNAL, "scratch buffer too small");
    const int epi = act != MT_ACT_NONE || B;
    /* One thread pool: our OpenMP threads share out the tiles and each runs
     * im2col, a single-threaded sgemm and the epilogue on its own tile, so
     * the data stays in that core's cache and OpenBLAS's pool (whose idle
     * threads spin) never competes with ours for the cores. */
    openblas_set_num_threads(1);
    #pragma omp parallel for num_threads(team) schedule(dynamic, 1)
    for (int64_t it = 0; it < items; it++) {
        int64_t b = it / (d.G * ntiles), gi = it / ntiles % d.G, n0 = it % ntiles * tile;
        int64_t tn = MT_MIN(tile, OHW - n0);
        const float *Xg = X + (b * d.C + gi * Cg) * HW;
        const float *Wg = W + gi * Mg * K;
        float *Yg = Y + (b * d.M + gi * Mg) * OHW;
        const float *Bm;
        int64_t ldb;
        if (direct) {
            Bm = Xg + n0;
            ldb = HW;
        } else {
            float *c = col + (size_t)omp_get_thread_num() * K * tile;
            im2col_tile(Xg, c, &d, Cg, n0, tn);
            Bm = c;
            ldb = tn;
        }
        if (K > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Mg, (int)tn, (int)K, 1.0f, Wg, (int)K, Bm, (int)ldb, 0.0f,
                        Yg + n0, (int)OHW);
        else
            for (int64_t m = 0; m < Mg; m++) memset(Yg + m * OHW + n0, 0, sizeof(float) * tn);
        if (epi)
            for (int64_t m = 0; m < Mg; m++) mt_nn_bias_act(Yg + m * OHW + n0, tn, B ? B[gi * Mg + m] : 0.0f, act);
    }
    openblas_set_num_threads(nth);
    return MTMI_OK;
}

mtmi_status mt_nn_conv(const mt_graph *g, const mt_node *n, void *st, const mt_tview *in, int nin, mt_tview *out, int nout,
                       mt_cpu_ctx *ctx) {
    int act = MT_ACT_NONE;
    if (n->domain && !strcmp(n->domain, "mtmi")) {
        act = mt_nn_act_of(n);
        if (act < 0) return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "unknown activation '%s'", mt_attr_string(n, "activation", ""));
    }
    return conv_run(g, n, st, in, nin, out, act, ctx);
}

/* ------------------------------------------------------- ConvTranspose */
/* Input rows per ConvTranspose chunk: the chunk's columns (R x rows x W
 * floats) stay within a few MiB of scratch whatever the input size. */
static int64_t convt_rows(const conv_dims *d) {
    int64_t R = d->M / d->G * d->kh * d->kw;
    int64_t rows = (int64_t)(4u << 20) / (R * d->W * (int64_t)sizeof(float));
    if (rows < 1) rows = 1;
    if (rows > d->H) rows = d->H;
    return rows;
}

size_t mt_nn_convt_scratch(const mt_graph *g, const mt_node *n, const mt_cpu_ctx *ctx) {
    conv_dims d;
    if (node_dims(g, n, MT_GEOM_CONVT, &d)) return 0;
    return (size_t)(d.M / d.G * d.kh * d.kw * convt_rows(&d) * d.W) * sizeof(float);
}

mtmi_status mt_nn_convt(const mt_graph *g, const mt_node *n, void *st, const mt_tview *in, int nin, mt_tview *out, int nout,
                        mt_cpu_ctx *ctx) {
    conv_dims d;
    int done;
    mtmi_status s = conv_begin(g, n, MT_GEOM_CONVT, in, nin, out, MT_ACT_NONE, ctx, &d, &done);
    if (s || done) return s;
    const float *X = in[0].data, *W = in[1].data;
    const float *B = nin > 2 && in[2].data ? in[2].data : NULL;
    float *Y = out[0].data, *col = ctx->scratch;
    const int64_t Cg = d.C / d.G, Mg = d.M / d.G, HW = d.H * d.W, OHW = d.OH * d.OW, kk = d.kh * d.kw;
    const int64_t R = Mg * kk, rows = convt_rows(&d), CW = rows * d.W;
    if (!col || ctx->scratch_size < (size_t)(R * CW) * sizeof(float)) return mt_kernel_fail(g, n, MTMI_ERR_INTERNAL, "scratch buffer too small");
    const int nth = ctx->nthreads;
    /* Per chunk of input rows: col[R, rows*W] = Wg^T [R, Cg] x Xg[:, chunk]
     * with the R rows shared out over the threads (single-threaded sgemm
     * each), then the scatter-add into the output planes, one thread per
     * plane so that no two threads write the same pixel. */
    openblas_set_num_threads(1);
    #pragma omp parallel num_threads(nth)
    for (int64_t b = 0; b < d.N; b++)
        for (int64_t gi = 0; gi < d.G; gi++) {
            const float *Xg = X + (b * d.C + gi * Cg) * HW;
            const float *Wg = W + gi * Cg * R;
            float *Yg = Y + (b * d.M + gi * Mg) * OHW;
            #pragma omp for schedule(static)
            for (int64_t m = 0; m < Mg; m++) {
                float bias = B ? B[gi * Mg + m] : 0.0f;
                for (int64_t i = 0; i < OHW; i++) Yg[m * OHW + i] = bias;
            }
            for (int64_t iy0 = 0; iy0 < d.H; iy0 += rows) {
                const int64_t nr = MT_MIN(rows, d.H - iy0), ncol = nr * d.W;
                const int nt = omp_get_num_threads(), me = omp_get_thread_num();
                int64_t per = (R + nt - 1) / nt, r0 = me * per, r1 = MT_MIN(R, r0 + per);
                if (r1 > r0)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(r1 - r0), (int)ncol, (int)Cg, 1.0f, Wg + r0, (int)R,
                                Xg + iy0 * d.W, (int)HW, 0.0f, col + r0 * ncol, (int)ncol);
                #pragma omp barrier
                #pragma omp for schedule(static)
                for (int64_t m = 0; m < Mg; m++) {
                    float *y = Yg + m * OHW;
                    for (int64_t ky = 0; ky < d.kh; ky++)
                        for (int64_t kx = 0; kx < d.kw; kx++) {
                            const float *c = col + ((m * d.kh + ky) * d.kw + kx) * ncol;
                            for (int64_t iy = iy0; iy < iy0 + nr; iy++) {
                                int64_t oy = iy * d.sh - d.pt + ky * d.dh;
                                if (oy < 0 || oy >= d.OH) continue;
                                const float *cr = c + (iy - iy0) * d.W;
                                for (int64_t ix = 0; ix < d.W; ix++) {
                                    int64_t ox = ix * d.sw - d.pl + kx * d.dw;
                                    if (ox >= 0 && ox < d.OW) y[oy * d.OW + ox] += cr[ix];
                                }
                            }
                        }
                }
                /* (the implicit barrier of omp for keeps col until all
                 * planes have read it) */
            }
        }
    openblas_set_num_threads(nth);
    return MTMI_OK;
}
