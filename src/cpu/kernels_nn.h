/* Private header of the nn CPU kernels (kernels_nn.c, nn_*.c): activation
 * epilogues with vectorized exp/erf (vmath.h), and the run/prepare functions that the
 * table in kernels_nn.c lists. */
#ifndef MT_CPU_KERNELS_NN_H
#define MT_CPU_KERNELS_NN_H

#include <math.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/vmath.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define MT_NN_AVX2 1
#endif

enum { MT_ACT_NONE = 0, MT_ACT_RELU = 1, MT_ACT_SIGMOID = 2, MT_ACT_GELU = 3 };

/* The "activation" attribute of mtmi.FusedConv / mtmi.Linear; -1 if unknown. */
static inline int mt_nn_act_of(const mt_node *n) {
    const char *a = mt_attr_string(n, "activation", "");
    if (!a[0]) return MT_ACT_NONE;
    if (!strcmp(a, "Relu")) return MT_ACT_RELU;
    if (!strcmp(a, "Sigmoid")) return MT_ACT_SIGMOID;
    if (!strcmp(a, "Gelu")) return MT_ACT_GELU;
    return -1;
}

/* MTMI_ERR_UNSUPPORTED (reported) unless each present one of in[0..nin) is
 * float. */
static inline mtmi_status mt_nn_need_f32(const mt_graph *g, const mt_node *n, const mt_tview *in, int nin) {
    for (int i = 0; i < nin; i++)
        if (in[i].data && in[i].dtype != MTMI_FLOAT)
            return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "input %d is %s, only float is supported", i, mt_dtype_name(in[i].dtype));
    return MTMI_OK;
}

static inline float mt_nn_act1(float v, int act) {
    switch (act) {
    case MT_ACT_RELU: return v > 0 ? v : 0;
    case MT_ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case MT_ACT_GELU: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    default: return v;
    }
}

#ifdef MT_NN_AVX2
/* 1/x: the 12-bit estimate and one Newton step (~23 bits), several times
 * cheaper than a division. */
static inline __m256 mt_nn_rcp8(__m256 x) {
    __m256 r = _mm256_rcp_ps(x);
    return _mm256_mul_ps(r, _mm256_fnmadd_ps(x, r, _mm256_set1_ps(2.0f)));
}

static inline __m256 mt_nn_act8(__m256 v, int act) {
    switch (act) {
    case MT_ACT_RELU: return _mm256_max_ps(v, _mm256_setzero_ps());
    case MT_ACT_SIGMOID: {
        __m256 e = mt_vexp8(_mm256_sub_ps(_mm256_setzero_ps(), v));
        return mt_nn_rcp8(_mm256_add_ps(_mm256_set1_ps(1.0f), e));
    }
    case MT_ACT_GELU: {
        __m256 h = _mm256_mul_ps(v, _mm256_set1_ps(0.5f));
        __m256 e = mt_verf8(_mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f)));
        return _mm256_fmadd_ps(h, e, h);
    }
    default: return v;
    }
}
#endif

/* y[i] = act(y[i] + bias) over a contiguous run. */
static inline void mt_nn_bias_act(float *y, int64_t n, float bias, int act) {
    int64_t i = 0;
    if (act == MT_ACT_NONE && bias == 0.0f) return;
#ifdef MT_NN_AVX2
    __m256 b = _mm256_set1_ps(bias);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, mt_nn_act8(_mm256_add_ps(_mm256_loadu_ps(y + i), b), act));
#endif
    for (; i < n; i++) y[i] = mt_nn_act1(y[i] + bias, act);
}

/* y[i] = act(y[i] + bias[i]) over a row (bias may be NULL). */
static inline void mt_nn_bias_vec_act(float *y, int64_t n, const float *bias, int act) {
    if (!bias) {
        mt_nn_bias_act(y, n, 0.0f, act);
        return;
    }
    int64_t i = 0;
#ifdef MT_NN_AVX2
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, mt_nn_act8(_mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(bias + i)), act));
#endif
    for (; i < n; i++) y[i] = mt_nn_act1(y[i] + bias[i], act);
}

/* Picks OpenBLAS's AVX-512 kernels where the library fell back to AVX2
 * (nn_blas.c); idempotent, called from the GEMM kernels' prepare. */
void mt_nn_blas_init(const mt_tuning *t);

/* GEMM family (nn_gemm.c). */
mtmi_status mt_nn_matmul(const mt_graph *g, const mt_node *n, void *st, const mt_tview *in, int nin, mt_tview *out, int nout,
                         mt_cpu_ctx *ctx);
mtmi_status mt_nn_gemm(const mt_graph *g, const mt_node *n, void *st, const mt_tview *in, int nin, mt_tview *out, int nout,
                       mt_cpu_ctx *ctx);
mtmi_status mt_nn_linear(const mt_graph *g, const mt_node *n, void *st, const mt_tview *in, int nin, mt_tview *out, int nout,
                         mt_cpu_ctx *ctx);

/* Convolutions (nn_conv.c). */
mtmi_status mt_nn_conv(const mt_graph *g, const mt_node *n, void *st, const mt_tview *in, int nin, mt_tview *out, int nout,
                       mt_cpu_ctx *ctx);
size_t mt_nn_conv_scratch(const mt_graph *g, const mt_node *n, const mt_cpu_ctx *ctx);
mtmi_status mt_nn_conv_prepare(const mt_graph *g, const mt_node *n, const mt_cpu_ctx *ctx, void **state);
void mt_nn_conv_release(void *state);
mtmi_status mt_nn_convt(const mt_graph *g, const mt_node *n, void *st, const mt_tview *in, int nin, mt_tview *out, int nout,
                        mt_cpu_ctx *ctx);
size_t mt_nn_convt_scratch(const mt_graph *g, const mt_node *n, const mt_cpu_ctx *ctx);

/* 3-D Conv (kind MT_GEOM_CONV) / ConvTranspose (MT_GEOM_CONVT), direct
 * loops (nn_conv3d.c); -1 with err on bad shapes or attributes. */
int mt_nn_conv3d(const mt_node *n, int kind, const mt_tview *in, int nin, mt_tview *out, int act, int nth, char *err, size_t cap);

/* Resize / Upsample (nn_resize.c). */
mtmi_status mt_nn_resize(const mt_graph *g, const mt_node *n, void *st, const mt_tview *in, int nin, mt_tview *out, int nout,
                         mt_cpu_ctx *ctx);

#endif
