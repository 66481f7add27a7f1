/* CPU kernels for the nn operator family: the table, normalizations and
 * pooling.  Convolutions are in nn_conv.c, GEMMs in nn_gemm.c, Resize in
 * nn_resize.c. */
#include <float.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu/kernels_nn.h"
#include "graph/nn_geom.h"
#include "graph/ops.h"

/* ------------------------------------------------------ LayerNormalization */
/* A parameter (Scale or B) broadcast to the normalized shape [cols]; when
 * it already has that many values it is used in place. */
static float *expand_param(const mt_tview *p, const mt_tview *x, int axis, int64_t cols, float **owned) {
    *owned = NULL;
    if (!p || !p->data) return NULL;
    if (mt_tview_numel(p) == cols) return p->data;
    float *e = malloc(sizeof(float) * (cols ? cols : 1));
    if (!e) return NULL;
    int nr = x->rank - axis;
    int64_t idx[MT_MAX_RANK] = {0};
    for (int64_t i = 0; i < cols; i++) {
        int64_t off = 0, st = 1;
        for (int d = nr - 1; d >= 0; d--) {
            int pd = d - (nr - p->rank);
            if (pd >= 0) {
                if (p->dims[pd] != 1) off += idx[d] * st;
                st *= p->dims[pd];
            }
        }
        e[i] = ((const float *)p->data)[off];
        for (int d = nr - 1; d >= 0; d--) {
            if (++idx[d] < x->dims[axis + d]) break;
            idx[d] = 0;
        }
    }
    *owned = e;
    return e;
}

static mtmi_status k_layernorm(const mt_graph *g, const mt_node *n, void *st, const mt_tview *in, int nin, mt_tview *out, int nout,
                               mt_cpu_ctx *ctx) {
    mtmi_status s = mt_nn_need_f32(g, n, in, nin < 3 ? nin : 3);
    if (s) return s;
    const mt_tview *x = &in[0];
    int axis = mt_norm_axis(mt_attr_int(n, "axis", -1), x->rank);
    if (axis < 0) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "axis out of range");
    float eps = mt_attr_float(n, "epsilon", 1e-5f);
    int64_t rows = 1, cols = 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < axis) rows *= x->dims[i];
        else cols *= x->dims[i];
    }
    float *own_s, *own_b;
    const float *scale = expand_param(&in[1], x, axis, cols, &own_s);
    const float *bias = nin > 2 ? expand_param(&in[2], x, axis, cols, &own_b) : (own_b = NULL, NULL);
    if (!scale || (nin > 2 && in[2].data && !bias)) {
        free(own_s);
        free(own_b);
        return mt_kernel_fail(g, n, MTMI_ERR_NOMEM, "out of memory");
    }
    const float *X = x->data;
    float *Y = out[0].data;
    float *Mean = nout > 1 ? out[1].data : NULL, *Inv = nout > 2 ? out[2].data : NULL;
    #pragma omp parallel for num_threads(ctx->nthreads) schedule(static) if (rows * cols > 16384)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = X + r * cols;
        float *yr = Y + r * cols;
        /* Two passes (mean, then centred squares) in double: robust for
         * rows with a large mean, and the rows here are short. */
        double sum = 0, sq = 0;
        int64_t i = 0;
#ifdef MT_NN_AVX2
        __m256 a0 = _mm256_setzero_ps();
        for (; i + 8 <= cols; i += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(xr + i));
        float t[8];
        _mm256_storeu_ps(t, a0);
        for (int k = 0; k < 8; k++) sum += t[k];
#endif
        for (; i < cols; i++) sum += xr[i];
        float mean = (float)(sum / (double)cols);
        i = 0;
#ifdef MT_NN_AVX2
        __m256 mv = _mm256_set1_ps(mean), a1 = _mm256_setzero_ps();
        for (; i + 8 <= cols; i += 8) {
            __m256 dv = _mm256_sub_ps(_mm256_loadu_ps(xr + i), mv);
            a1 = _mm256_fmadd_ps(dv, dv, a1);
        }
        _mm256_storeu_ps(t, a1);
        for (int k = 0; k < 8; k++) sq += t[k];
#endif
        for (; i < cols; i++) sq += (double)(xr[i] - mean) * (xr[i] - mean);
        float inv = (float)(1.0 / sqrt(sq / (double)cols + (double)eps));
        i = 0;
#ifdef MT_NN_AVX2
        __m256 iv = _mm256_set1_ps(inv);
        for (; i + 8 <= cols; i += 8) {
            __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + i), mv), iv);
            v = _mm256_mul_ps(v, _mm256_loadu_ps(scale + i));
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
            _mm256_storeu_ps(yr + i, v);
        }
#endif
        for (; i < cols; i++) yr[i] = (xr[i] - mean) * inv * scale[i] + (bias ? bias[i] : 0.0f);
        if (Mean) Mean[r] = mean;
        if (Inv) Inv[r] = inv;
    }
    free(own_s);
    free(own_b);
    return MTMI_OK;
}

/* ------------------------------------------------------ BatchNormalization */
static mtmi_status k_batchnorm(const mt_graph *g, const mt_node *n, void *st, const mt_tview *in, int nin, mt_tview *out, int nout,
                               mt_cpu_ctx *ctx) {
    mtmi_status s = mt_nn_need_f32(g, n, in, nin);
    if (s) return s;
    if (nin < 5) return mt_kernel_fail(g, n, MTMI_ERR_PARSE, "expects 5 inputs");
    const mt_tview *x = &in[0];
    float eps = mt_attr_float(n, "epsilon", 1e-5f);
    int64_t N = x->dims[0], C = x->dims[1], inner = 1;
    for (int i = 2; i < x->rank; i++) inner *= x->dims[i];
    const float *sc = in[1].data, *bi = in[2].data, *mu = in[3].data, *var = in[4].data;
    const float *X = x->data;
    float *Y = out[0].data;
    #pragma omp parallel for num_threads(ctx->nthreads) schedule(static) if (N * C * inner > 16384)
    for (int64_t p = 0; p < N * C; p++) {
        int64_t c = p % C;
        float a = sc[c] / sqrtf(var[c] + eps), b = bi[c] - mu[c] * a;
        const float *xp = X + p * inner;
        float *yp = Y + p * inner;
        for (int64_t i = 0; i < inner; i++) yp[i] = xp[i] * a + b;
    }
    /* Inference-mode extra outputs of old opsets pass the statistics on. */
    for (int k = 1; k < nout && k < 3; k++)
        if (out[k].data) memcpy(out[k].data, k == 1 ? mu : var, sizeof(float) * C);
    return MTMI_OK;
}

/* ------------------------------------------------------------- pooling */
/* Pools work on 3 spatial dims; lower ranks get leading dims of size 1. */
typedef struct pool3 {
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
} pool3;

static int pool_setup(const mt_node *n, const mt_tview *x, pool3 *p, char *err, size_t cap) {
    mt_geom geo;
    int nsp = x->rank - 2;
    if (nsp < 1 || nsp > 3) {
        snprintf(err, cap, "input rank %d is not supported", x->rank);
        return -1;
    }
    if (mt_geom_get(n, MT_GEOM_POOL, nsp, x->dims + 2, NULL, &geo, err, cap)) return -1;
    int o = 3 - nsp;
    for (int i = 0; i < 3; i++) {
        int j = i - o;
        p->in[i] = j >= 0 ? geo.in[j] : 1;
        p->out[i] = j >= 0 ? geo.out[j] : 1;
        p->k[i] = j >= 0 ? geo.k[j] : 1;
        p->s[i] = j >= 0 ? geo.stride[j] : 1;
        p->d[i] = j >= 0 ? geo.dil[j] : 1;
        p->pb[i] = j >= 0 ? geo.pb[j] : 0;
        p->pe[i] = j >= 0 ? geo.pe[j] : 0;
    }
    return 0;
}

static mtmi_status k_pool(const mt_graph *g, const mt_node *n, void *st, const mt_tview *in, int nin, mt_tview *out, int nout,
                          mt_cpu_ctx *ctx) {
    const int is_max = !strcmp(n->op, "MaxPool");
    const int dt = in[0].dtype;
    if (dt != MTMI_FLOAT && !(is_max && (dt == MTMI_INT8 || dt == MTMI_UINT8)))
        return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "input is %s, not supported", mt_dtype_name(dt));
    pool3 p;
    char err[256];
    if (pool_setup(n, &in[0], &p, err, sizeof err)) return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "%s", err);
    const int include_pad = (int)mt_attr_int(n, "count_include_pad", 0);
    const int col_major = (int)mt_attr_int(n, "storage_order", 0);
    const int64_t planes = in[0].dims[0] * in[0].dims[1];
    const int64_t isz = p.in[0] * p.in[1] * p.in[2], osz = p.out[0] * p.out[1] * p.out[2];
    const float *X = in[0].data;
    float *Y = out[0].data;
    /* 8-bit MaxPool: values widen to float exactly and narrow back. */
    const int8_t *Xs = in[0].data;
    const uint8_t *Xu = in[0].data;
    int64_t *I = nout > 1 && out[1].data ? out[1].data : NULL;
    #pragma omp parallel for num_threads(ctx->nthreads) schedule(static) if (planes * osz > 4096)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *x = dt == MTMI_FLOAT ? X + pl * isz : NULL;
        float *y = dt == MTMI_FLOAT ? Y + pl * osz : NULL;
        for (int64_t oz = 0; oz < p.out[0]; oz++)
            for (int64_t oy = 0; oy < p.out[1]; oy++)
                for (int64_t ox = 0; ox < p.out[2]; ox++) {
                    int64_t o[3] = {oz, oy, ox}, lo[3], hi[3], cnt_pad = 1;
                    /* Window positions lo + t*d, t < k; those before
                     * in + pad_end count for count_include_pad. */
                    for (int a = 0; a < 3; a++) {
                        int64_t start = o[a] * p.s[a] - p.pb[a];
                        int64_t npad = 0;
                        for (int64_t t = 0; t < p.k[a]; t++)
                            if (start + t * p.d[a] < p.in[a] + p.pe[a]) npad++;
                        cnt_pad *= npad;
                        lo[a] = start;
                        hi[a] = start + (p.k[a] - 1) * p.d[a];
                    }
                    float acc = is_max ? -FLT_MAX : 0.0f;
                    int64_t arg = -1, cnt = 0;
                    int any = 0;
                    for (int64_t z = lo[0]; z <= hi[0]; z += p.d[0]) {
                        if (z < 0 || z >= p.in[0]) continue;
                        for (int64_t yy = lo[1]; yy <= hi[1]; yy += p.d[1]) {
                            if (yy < 0 || yy >= p.in[1]) continue;
                            for (int64_t xx = lo[2]; xx <= hi[2]; xx += p.d[2]) {
                                if (xx < 0 || xx >= p.in[2]) continue;
                                int64_t xi = (z * p.in[1] + yy) * p.in[2] + xx;
                                float v = dt == MTMI_FLOAT ? x[xi] : dt == MTMI_INT8 ? (float)Xs[pl * isz + xi] : (float)Xu[pl * isz + xi];
                                if (is_max) {
                                    if (!any || v > acc) {
                                        acc = v;
                                        arg = col_major ? (xx * p.in[1] + yy) * p.in[0] + z : (z * p.in[1] + yy) * p.in[2] + xx;
                                    }
                                } else
                                    acc += v;
                                any = 1;
                                cnt++;
                            }
                        }
                    }
                    int64_t oi = (oz * p.out[1] + oy) * p.out[2] + ox;
                    if (is_max) {
                        if (dt == MTMI_FLOAT) y[oi] = acc;
                        else if (dt == MTMI_INT8) ((int8_t *)out[0].data)[pl * osz + oi] = (int8_t)acc;
                        else ((uint8_t *)out[0].data)[pl * osz + oi] = (uint8_t)acc;
                        if (I) I[pl * osz + oi] = arg < 0 ? -1 : pl * isz + arg;
                    } else {
                        int64_t div = include_pad ? cnt_pad : cnt;
                        y[oi] = div > 0 ? acc / (float)div : 0.0f;
                    }
                }
    }
    return MTMI_OK;
}

static mtmi_status k_global_pool(const mt_graph *g, const mt_node *n, void *st, const mt_tview *in, int nin, mt_tview *out, int nout,
                                 mt_cpu_ctx *ctx) {
    mtmi_status s = mt_nn_need_f32(g, n, in, 1);
    if (s) return s;
    const int is_max = !strcmp(n->op, "GlobalMaxPool");
    int64_t planes = in[0].dims[0] * in[0].dims[1], inner = 1;
    for (int i = 2; i < in[0].rank; i++) inner *= in[0].dims[i];
    const float *X = in[0].data;
    float *Y = out[0].data;
    #pragma omp parallel for num_threads(ctx->nthreads) schedule(static) if (planes * inner > 16384)
    for (int64_t p = 0; p < planes; p++) {
        const float *x = X + p * inner;
        if (is_max) {
            float m = inner ? x[0] : -FLT_MAX;
            for (int64_t i = 1; i < inner; i++) m = x[i] > m ? x[i] : m;
            Y[p] = m;
        } else {
            double acc = 0;
            for (int64_t i = 0; i < inner; i++) acc += x[i];
            Y[p] = inner ? (float)(acc / (double)inner) : 0.0f;
        }
    }
    return MTMI_OK;
}

/* Kernels that call sgemm make sure OpenBLAS runs its best kernels. */
static mtmi_status blas_prepare(const mt_graph *g, const mt_node *n, const mt_cpu_ctx *ctx, void **state) {
    mt_nn_blas_init(ctx->tuning);
    *state = NULL;
    return MTMI_OK;
}

const mt_cpu_kernel mt_kernels_nn[] = {
    {"Conv", "", mt_nn_conv, mt_nn_conv_scratch, mt_nn_conv_prepare, mt_nn_conv_release, 0},
    {"ConvTranspose", "", mt_nn_convt, mt_nn_convt_scratch, blas_prepare, NULL, 0},
    {"MatMul", "", mt_nn_matmul, NULL, blas_prepare, NULL, 0},
    {"Gemm", "", mt_nn_gemm, NULL, blas_prepare, NULL, 0},
    {"LayerNormalization", "", k_layernorm, NULL, NULL, NULL, 0},
    {"BatchNormalization", "", k_batchnorm, NULL, NULL, NULL, 0},
    {"Resize", "", mt_nn_resize, NULL, NULL, NULL, 0},
    {"Upsample", "", mt_nn_resize, NULL, NULL, NULL, 0},
    {"MaxPool", "", k_pool, NULL, NULL, NULL, 0},
    {"AveragePool", "", k_pool, NULL, NULL, NULL, 0},
    {"GlobalAveragePool", "", k_global_pool, NULL, NULL, NULL, 0},
    {"GlobalMaxPool", "", k_global_pool, NULL, NULL, NULL, 0},
    {"FusedConv", "mtmi", mt_nn_conv, mt_nn_conv_scratch, mt_nn_conv_prepare, mt_nn_conv_release, 0},
    {"Linear", "mtmi", mt_nn_linear, NULL, blas_prepare, NULL, 0},
    {NULL, NULL, NULL, NULL, NULL, NULL, 0},
};
