/* CPU kernels for the fused operator family: mtmi.Gelu, mtmi.Attention and
 * mtmi.Preprocess
 * (FusedConv and Linear are in kernels_nn.c).
 *
 * Attention is flash-style: each task takes a block of queries of one
 * (batch, head), walks the keys in blocks, keeps a running row max and row
 * sum (online softmax) and rescales its output accumulator, so only a
 * BQ x BK block of scores ever exists.  Both products use AVX2 register
 * tiles of 4 rows x 16 columns, or AVX-512 ones of 8 x 32 where the CPU has
 * it; builds without AVX2 (other architectures) get plain loops of the same
 * algorithm. */
#include "cpu/cpu.h"
#include "cpu/vmath.h"

#ifdef __AVX2__
#include <immintrin.h>
#define MT_FUSED_AVX2 1
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MT_FUSED_AVX512 1
#endif
#endif
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>


/* ----------------------------------------------------------------- Gelu */
static mtmi_status run_gelu(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin,
                            mt_tview *out, int nout, mt_cpu_ctx *ctx) {
    const float *x = in[0].data;
    float *y = out[0].data;
    int64_t cnt = mt_tview_numel(&in[0]);
    const int64_t chunk = 16384;
    int64_t nchunks = (cnt + chunk - 1) / chunk;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static) if (nchunks > 1)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t i = c * chunk, end = MT_MIN(cnt, i + chunk);
#ifdef MT_FUSED_AVX2
        const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f), r2 = _mm256_set1_ps(0.70710678118654752f);
        for (; i + 8 <= end; i += 8) {
            __m256 v = _mm256_loadu_ps(x + i);
            __m256 e = mt_verf8(_mm256_mul_ps(v, r2));
            _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, e)));
        }
#endif
        for (; i < end; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
    }
    return MTMI_OK;
}

/* ------------------------------------------------------------ Attention */
#ifndef MT_ATTN_BQ
#define MT_ATTN_BQ 64
#endif
#ifndef MT_ATTN_BK
#define MT_ATTN_BK 256
#endif
enum { BQ = MT_ATTN_BQ, BK = MT_ATTN_BK }; /* query rows and keys per block */

typedef struct attn_dims {
    int64_t B, H, N, M, d, dv, dvp, dvp16;
} attn_dims;

static void attn_dims_of(const mt_graph *g, const mt_node *n, attn_dims *a) {
    const mt_value *q = &g->values[n->in[0]], *k = &g->values[n->in[1]], *v = &g->values[n->in[2]];
    a->B = q->dims[0];
    a->H = q->dims[1];
    a->N = q->dims[2];
    a->d = q->dims[3];
    a->M = k->dims[2];
    a->dv = v->dims[3];
    a->dvp = (a->dv + 7) & ~(int64_t)7;
    a->dvp16 = (a->dv + 15) & ~(int64_t)15;
}

/* floats of one thread's working set, rounded to a cache line */
static size_t attn_thread_floats(const attn_dims *a) {
    size_t f = (size_t)BQ * a->d      /* scaled query block        */
               + (size_t)BK * a->d    /* key block, packed by 8    */
               + (size_t)BQ * BK      /* scores / probabilities    */
               + (size_t)BQ * a->dvp16  /* output accumulator      */
               + (size_t)BK * a->dvp16  /* value block (padded dv) */
               + 3 * (size_t)BQ;      /* row max, row sum, rescale */
    return (f + 15) & ~(size_t)15;
}

/* floats of the keys of all heads, transposed into panels (shared by the
 * query-block tasks of a head instead of packed by each of them) */
static size_t attn_kpack_floats(const attn_dims *a) {
    size_t f = (size_t)(a->B * a->H) * (size_t)((a->M + 15) & ~(int64_t)15) * (size_t)a->d;
    return (f + 15) & ~(size_t)15;
}

static size_t scratch_attention(const mt_graph *g, const mt_node *n, const mt_cpu_ctx *ctx) {
    const int nthreads = ctx->nthreads;
    attn_dims a;
    attn_dims_of(g, n, &a);
    return (attn_kpack_floats(&a) + attn_thread_floats(&a) * (size_t)(nthreads > 0 ? nthreads : 1)) * sizeof(float);
}

/* K [M][d] -> panels of w keys: dst[p][c][lane], zero keys up to M rounded
 * to 16. */
static void pack_keys(const float *K, int64_t M, int64_t d, int w, float *dst) {
    const int64_t mp = (M + 15) & ~(int64_t)15;
    for (int64_t j = 0; j < mp; j++) {
        float *o = dst + (j / w) * d * w + (j % w);
        if (j < M) {
            const float *src = K + j * d;
            for (int64_t c = 0; c < d; c++) o[c * w] = src[c];
        } else
            for (int64_t c = 0; c < d; c++) o[c * w] = 0.0f;
    }
}

#ifdef MT_FUSED_AVX2
/* S[r][0..kp) = Qb[r] . Kp[j] for 4 rows; Kp holds kp/8 panels of [d][8]. */
static inline void scores_4x(const float *qb, int64_t d, const float *kp, int64_t npanel, float *s) {
    int64_t p = 0;
    for (; p + 2 <= npanel; p += 2) {
        const float *k0 = kp + p * d * 8, *k1 = k0 + d * 8;
        __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        for (int64_t c = 0; c < d; c++) {
            __m256 v0 = _mm256_loadu_ps(k0 + c * 8), v1 = _mm256_loadu_ps(k1 + c * 8);
            __m256 q0 = _mm256_broadcast_ss(qb + c), q1 = _mm256_broadcast_ss(qb + d + c);
            __m256 q2 = _mm256_broadcast_ss(qb + 2 * d + c), q3 = _mm256_broadcast_ss(qb + 3 * d + c);
            a00 = _mm256_fmadd_ps(q0, v0, a00);
            a01 = _mm256_fmadd_ps(q0, v1, a01);
            a10 = _mm256_fmadd_ps(q1, v0, a10);
            a11 = _mm256_fmadd_ps(q1, v1, a11);
            a20 = _mm256_fmadd_ps(q2, v0, a20);
            a21 = _mm256_fmadd_ps(q2, v1, a21);
            a30 = _mm256_fmadd_ps(q3, v0, a30);
            a31 = _mm256_fmadd_ps(q3, v1, a31);
        }
        float *o = s + p * 8;
        _mm256_storeu_ps(o, a00);
        _mm256_storeu_ps(o + 8, a01);
        _mm256_storeu_ps(o + BK, a10);
        _mm256_storeu_ps(o + BK + 8, a11);
        _mm256_storeu_ps(o + 2 * BK, a20);
        _mm256_storeu_ps(o + 2 * BK + 8, a21);
        _mm256_storeu_ps(o + 3 * BK, a30);
        _mm256_storeu_ps(o + 3 * BK + 8, a31);
    }
    for (; p < npanel; p++) {
        const float *k0 = kp + p * d * 8;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t c = 0; c < d; c++) {
            __m256 v0 = _mm256_loadu_ps(k0 + c * 8);
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(qb + c), v0, a0);
            a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(qb + d + c), v0, a1);
            a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(qb + 2 * d + c), v0, a2);
            a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(qb + 3 * d + c), v0, a3);
        }
        float *o = s + p * 8;
        _mm256_storeu_ps(o, a0);
        _mm256_storeu_ps(o + BK, a1);
        _mm256_storeu_ps(o + 2 * BK, a2);
        _mm256_storeu_ps(o + 3 * BK, a3);
    }
}

/* O[r][c..] = O[r][c..] * corr[r] + sum_j P[r][j] V[j][c..] for 4 rows and
 * 8 or 16 columns starting at c. */
static inline void pv_4x(const float *P, const float *V, int64_t ldv, int64_t kn, float *O, int64_t ldo,
                         const float *corr, int64_t c, int wide) {
    __m256 k0 = _mm256_broadcast_ss(corr), k1 = _mm256_broadcast_ss(corr + 1);
    __m256 k2 = _mm256_broadcast_ss(corr + 2), k3 = _mm256_broadcast_ss(corr + 3);
    float *o0 = O + c, *o1 = o0 + ldo, *o2 = o1 + ldo, *o3 = o2 + ldo;
    if (wide) {
        __m256 a00 = _mm256_mul_ps(k0, _mm256_loadu_ps(o0)), a01 = _mm256_mul_ps(k0, _mm256_loadu_ps(o0 + 8));
        __m256 a10 = _mm256_mul_ps(k1, _mm256_loadu_ps(o1)), a11 = _mm256_mul_ps(k1, _mm256_loadu_ps(o1 + 8));
        __m256 a20 = _mm256_mul_ps(k2, _mm256_loadu_ps(o2)), a21 = _mm256_mul_ps(k2, _mm256_loadu_ps(o2 + 8));
        __m256 a30 = _mm256_mul_ps(k3, _mm256_loadu_ps(o3)), a31 = _mm256_mul_ps(k3, _mm256_loadu_ps(o3 + 8));
        const float *v = V + c;
        for (int64_t j = 0; j < kn; j++, v += ldv) {
            __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8);
            __m256 p0 = _mm256_broadcast_ss(P + j), p1 = _mm256_broadcast_ss(P + BK + j);
            __m256 p2 = _mm256_broadcast_ss(P + 2 * BK + j), p3 = _mm256_broadcast_ss(P + 3 * BK + j);
            a00 = _mm256_fmadd_ps(p0, v0, a00);
            a01 = _mm256_fmadd_ps(p0, v1, a01);
            a10 = _mm256_fmadd_ps(p1, v0, a10);
            a11 = _mm256_fmadd_ps(p1, v1, a11);
            a20 = _mm256_fmadd_ps(p2, v0, a20);
            a21 = _mm256_fmadd_ps(p2, v1, a21);
            a30 = _mm256_fmadd_ps(p3, v0, a30);
            a31 = _mm256_fmadd_ps(p3, v1, a31);
        }
        _mm256_storeu_ps(o0, a00);
        _mm256_storeu_ps(o0 + 8, a01);
        _mm256_storeu_ps(o1, a10);
        _mm256_storeu_ps(o1 + 8, a11);
        _mm256_storeu_ps(o2, a20);
        _mm256_storeu_ps(o2 + 8, a21);
        _mm256_storeu_ps(o3, a30);
        _mm256_storeu_ps(o3 + 8, a31);
    } else {
        __m256 a0 = _mm256_mul_ps(k0, _mm256_loadu_ps(o0)), a1 = _mm256_mul_ps(k1, _mm256_loadu_ps(o1));
        __m256 a2 = _mm256_mul_ps(k2, _mm256_loadu_ps(o2)), a3 = _mm256_mul_ps(k3, _mm256_loadu_ps(o3));
        const float *v = V + c;
        for (int64_t j = 0; j < kn; j++, v += ldv) {
            __m256 v0 = _mm256_loadu_ps(v);
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(P + j), v0, a0);
            a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(P + BK + j), v0, a1);
            a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(P + 2 * BK + j), v0, a2);
            a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(P + 3 * BK + j), v0, a3);
        }
        _mm256_storeu_ps(o0, a0);
        _mm256_storeu_ps(o1, a1);
        _mm256_storeu_ps(o2, a2);
        _mm256_storeu_ps(o3, a3);
    }
}

/* One (batch, head, query block) task. */
static void attn_block(const attn_dims *a, float scale, const float *Q, const float *kpack, const float *V, float *Y,
                       int64_t q0, int64_t qn, float *ws) {
    const int64_t d = a->d, dv = a->dv, dvp = a->dvp;
    float *qb = ws, *S = qb + BQ * d + BK * d, *O = S + BQ * BK, *vp = O + BQ * dvp;
    float *mx = vp + BK * dvp, *sum = mx + BQ, *corr = sum + BQ;
    const int64_t qr = (qn + 3) & ~(int64_t)3; /* rows rounded to the 4-row tile */
    /* scaled queries, zero rows past the end */
    for (int64_t r = 0; r < qr; r++)
        for (int64_t c = 0; c < d; c++) qb[r * d + c] = r < qn ? Q[(q0 + r) * d + c] * scale : 0.0f;
    memset(O, 0, sizeof(float) * qr * dvp);
    for (int64_t r = 0; r < qr; r++) {
        mx[r] = -INFINITY;
        sum[r] = 0.0f;
    }
    for (int64_t k0 = 0; k0 < a->M; k0 += BK) {
        const int64_t kn = MT_MIN((int64_t)BK, a->M - k0), kpad = (kn + 7) & ~(int64_t)7, np = kpad / 8;
        const float *kp = kpack + (k0 / 8) * d * 8; /* keys packed once per head */
        const float *vb = V + k0 * dv;
        int64_t ldv = dv;
        if (dv != dvp) { /* pad value rows so the 8-wide tiles stay inside */
            for (int64_t j = 0; j < kn; j++) {
                memcpy(vp + j * dvp, vb + j * dv, sizeof(float) * dv);
                memset(vp + j * dvp + dv, 0, sizeof(float) * (dvp - dv));
            }
            vb = vp;
            ldv = dvp;
        }
        for (int64_t r = 0; r < qr; r += 4) scores_4x(qb + r * d, d, kp, np, S + r * BK);
        /* online softmax: new row max, rescale factor, probabilities */
        for (int64_t r = 0; r < qr; r++) {
            float *s = S + r * BK;
            int64_t j = 0;
            __m256 vm = _mm256_set1_ps(-INFINITY);
            for (; j + 8 <= kn; j += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(s + j));
            float t[8];
            _mm256_storeu_ps(t, vm);
            float m = mx[r];
            for (int i = 0; i < 8; i++) m = t[i] > m ? t[i] : m;
            for (; j < kn; j++) m = s[j] > m ? s[j] : m;
            corr[r] = mx[r] == -INFINITY ? 0.0f : expf(mx[r] - m);
            mx[r] = m;
            __m256 vmx = _mm256_set1_ps(m), vs = _mm256_setzero_ps();
            for (j = 0; j + 8 <= kn; j += 8) {
                __m256 e = mt_vexp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), vmx));
                _mm256_storeu_ps(s + j, e);
                vs = _mm256_add_ps(vs, e);
            }
            _mm256_storeu_ps(t, vs);
            float l = 0.0f;
            for (int i = 0; i < 8; i++) l += t[i];
            for (; j < kn; j++) {
                s[j] = expf(s[j] - m);
                l += s[j];
            }
            sum[r] = sum[r] * corr[r] + l;
        }
        for (int64_t r = 0; r < qr; r += 4) {
            int64_t c = 0;
            for (; c + 16 <= dvp; c += 16) pv_4x(S + r * BK, vb, ldv, kn, O + r * dvp, dvp, corr + r, c, 1);
            for (; c < dvp; c += 8) pv_4x(S + r * BK, vb, ldv, kn, O + r * dvp, dvp, corr + r, c, 0);
        }
    }
    for (int64_t r = 0; r < qn; r++) {
        float inv = 1.0f / sum[r];
        float *y = Y + (q0 + r) * dv;
        for (int64_t c = 0; c < dv; c++) y[c] = O[r * dvp + c] * inv;
    }
}

#else /* no AVX2: the same blocks with plain loops */
static void attn_block(const attn_dims *a, float scale, const float *Q, const float *kpack, const float *V, float *Y,
                       int64_t q0, int64_t qn, float *ws) {
    const int64_t d = a->d, dv = a->dv;
    float *qb = ws, *S = qb + BQ * d + BK * d, *O = S + BQ * BK;
    float *mx = O + BQ * a->dvp16 + BK * a->dvp16, *sum = mx + BQ;
    for (int64_t r = 0; r < qn; r++) {
        for (int64_t c = 0; c < d; c++) qb[r * d + c] = Q[(q0 + r) * d + c] * scale;
        for (int64_t c = 0; c < dv; c++) O[r * dv + c] = 0.0f;
        mx[r] = -INFINITY;
        sum[r] = 0.0f;
    }
    for (int64_t k0 = 0; k0 < a->M; k0 += BK) {
        const int64_t kn = MT_MIN((int64_t)BK, a->M - k0);
        const float *kp = kpack + (k0 / 8) * d * 8;
        for (int64_t r = 0; r < qn; r++) {
            float *s = S + r * BK, m = mx[r];
            for (int64_t j = 0; j < kn; j++) {
                const float *kj = kp + (j / 8) * d * 8 + (j % 8);
                float acc = 0.0f;
                for (int64_t c = 0; c < d; c++) acc += qb[r * d + c] * kj[c * 8];
                s[j] = acc;
                m = acc > m ? acc : m;
            }
            float corr = mx[r] == -INFINITY ? 0.0f : expf(mx[r] - m), l = 0.0f;
            mx[r] = m;
            for (int64_t j = 0; j < kn; j++) l += (s[j] = expf(s[j] - m));
            sum[r] = sum[r] * corr + l;
            float *o = O + r * dv;
            for (int64_t c = 0; c < dv; c++) o[c] *= corr;
            for (int64_t j = 0; j < kn; j++) {
                const float *v = V + (k0 + j) * dv;
                for (int64_t c = 0; c < dv; c++) o[c] += s[j] * v[c];
            }
        }
    }
    for (int64_t r = 0; r < qn; r++)
        for (int64_t c = 0; c < dv; c++) Y[(q0 + r) * dv + c] = O[r * dv + c] / sum[r];
}
#endif /* MT_FUSED_AVX2 */

#ifdef MT_FUSED_AVX512
/* ------------------------------------------------ Attention, AVX-512 path
 * The same algorithm with 16-wide vectors and 8-row tiles (16 accumulators
 * of the 32 zmm registers): about twice the AVX2 path's speed where the CPU
 * has AVX-512 (Xeon since Skylake-SP, EPYC since Zen 4). */
#ifdef __clang__ /* clang ignores GCC's target pragma */
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx2,fma")
#endif

static inline __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-88.3762626647949f)), _mm512_set1_ps(88.3762626647949f));
    __m512 fx = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
                                     _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 z = _mm512_mul_ps(x, x);
    __m512 y = _mm512_set1_ps(1.9875691500E-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894E-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459E-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201E-1f));
    y = _mm512_fmadd_ps(y, z, x);
    y = _mm512_add_ps(y, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, fx); /* y * 2^fx */
}

/* S[r][p*16 ..] for 8 rows and 2 panels (32 keys); kp panels are [d][16]. */
static inline void scores512_8x32(const float *qb, int64_t d, const float *k0, const float *k1, float *s) {
    __m512 a[8][2];
    for (int r = 0; r < 8; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
    for (int64_t c = 0; c < d; c++) {
        __m512 v0 = _mm512_loadu_ps(k0 + c * 16), v1 = _mm512_loadu_ps(k1 + c * 16);
        for (int r = 0; r < 8; r++) {
            __m512 q = _mm512_set1_ps(qb[r * d + c]);
            a[r][0] = _mm512_fmadd_ps(q, v0, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(q, v1, a[r][1]);
        }
    }
    for (int r = 0; r < 8; r++) {
        _mm512_storeu_ps(s + r * BK, a[r][0]);
        _mm512_storeu_ps(s + r * BK + 16, a[r][1]);
    }
}

static inline void scores512_8x16(const float *qb, int64_t d, const float *k0, float *s) {
    __m512 a[8];
    for (int r = 0; r < 8; r++) a[r] = _mm512_setzero_ps();
    for (int64_t c = 0; c < d; c++) {
        __m512 v0 = _mm512_loadu_ps(k0 + c * 16);
        for (int r = 0; r < 8; r++) a[r] = _mm512_fmadd_ps(_mm512_set1_ps(qb[r * d + c]), v0, a[r]);
    }
    for (int r = 0; r < 8; r++) _mm512_storeu_ps(s + r * BK, a[r]);
}

/* O[r][c..c+16*w) = O * corr[r] + P[r] V for 8 rows, w = 1 or 2 vectors. */
static inline void pv512_8x(const float *P, const float *V, int64_t ldv, int64_t kn, float *O, int64_t ldo,
                            const float *corr, int64_t c, int w) {
    __m512 a[8][2];
    for (int r = 0; r < 8; r++) {
        __m512 k = _mm512_set1_ps(corr[r]);
        a[r][0] = _mm512_mul_ps(k, _mm512_loadu_ps(O + r * ldo + c));
        a[r][1] = w == 2 ? _mm512_mul_ps(k, _mm512_loadu_ps(O + r * ldo + c + 16)) : _mm512_setzero_ps();
    }
    const float *v = V + c;
    if (w == 2) {
        for (int64_t j = 0; j < kn; j++, v += ldv) {
            __m512 v0 = _mm512_loadu_ps(v), v1 = _mm512_loadu_ps(v + 16);
            for (int r = 0; r < 8; r++) {
                __m512 p = _mm512_set1_ps(P[r * BK + j]);
                a[r][0] = _mm512_fmadd_ps(p, v0, a[r][0]);
                a[r][1] = _mm512_fmadd_ps(p, v1, a[r][1]);
            }
        }
    } else {
        for (int64_t j = 0; j < kn; j++, v += ldv) {
            __m512 v0 = _mm512_loadu_ps(v);
            for (int r = 0; r < 8; r++) a[r][0] = _mm512_fmadd_ps(_mm512_set1_ps(P[r * BK + j]), v0, a[r][0]);
        }
    }
    for (int r = 0; r < 8; r++) {
        _mm512_storeu_ps(O + r * ldo + c, a[r][0]);
        if (w == 2) _mm512_storeu_ps(O + r * ldo + c + 16, a[r][1]);
    }
}

static void attn_block512(const attn_dims *a, float scale, const float *Q, const float *kpack, const float *V, float *Y,
                          int64_t q0, int64_t qn, float *ws) {
    const int64_t d = a->d, dv = a->dv, dvp = a->dvp16;
    float *qb = ws, *S = qb + BQ * d + BK * d, *O = S + BQ * BK, *vp = O + BQ * dvp;
    float *mx = vp + BK * dvp, *sum = mx + BQ, *corr = sum + BQ;
    const int64_t qr = (qn + 7) & ~(int64_t)7;
    for (int64_t r = 0; r < qr; r++)
        for (int64_t c = 0; c < d; c++) qb[r * d + c] = r < qn ? Q[(q0 + r) * d + c] * scale : 0.0f;
    memset(O, 0, sizeof(float) * qr * dvp);
    for (int64_t r = 0; r < qr; r++) {
        mx[r] = -INFINITY;
        sum[r] = 0.0f;
    }
    for (int64_t k0 = 0; k0 < a->M; k0 += BK) {
        const int64_t kn = MT_MIN((int64_t)BK, a->M - k0), kpad = (kn + 15) & ~(int64_t)15, np = kpad / 16;
        const float *kp = kpack + (k0 / 16) * d * 16; /* keys packed once per head */
        const float *vb = V + k0 * dv;
        int64_t ldv = dv;
        if (dv != dvp) {
            for (int64_t j = 0; j < kn; j++) {
                memcpy(vp + j * dvp, vb + j * dv, sizeof(float) * dv);
                memset(vp + j * dvp + dv, 0, sizeof(float) * (dvp - dv));
            }
            vb = vp;
            ldv = dvp;
        }
        for (int64_t r = 0; r < qr; r += 8) {
            int64_t p = 0;
            for (; p + 2 <= np; p += 2) scores512_8x32(qb + r * d, d, kp + p * d * 16, kp + (p + 1) * d * 16, S + r * BK + p * 16);
            for (; p < np; p++) scores512_8x16(qb + r * d, d, kp + p * d * 16, S + r * BK + p * 16);
        }
        const int64_t kfull = kn & ~(int64_t)15;
        const __mmask16 tail = (__mmask16)((1u << (kn - kfull)) - 1);
        for (int64_t r = 0; r < qr; r++) {
            float *s = S + r * BK;
            __m512 vm = _mm512_set1_ps(-INFINITY);
            int64_t j = 0;
            for (; j < kfull; j += 16) vm = _mm512_max_ps(vm, _mm512_loadu_ps(s + j));
            if (tail) vm = _mm512_mask_max_ps(vm, tail, vm, _mm512_maskz_loadu_ps(tail, s + j));
            float m = _mm512_reduce_max_ps(vm);
            if (mx[r] > m) m = mx[r];
            corr[r] = mx[r] == -INFINITY ? 0.0f : expf(mx[r] - m);
            mx[r] = m;
            __m512 vmx = _mm512_set1_ps(m), vs = _mm512_setzero_ps();
            for (j = 0; j < kfull; j += 16) {
                __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(s + j), vmx));
                _mm512_storeu_ps(s + j, e);
                vs = _mm512_add_ps(vs, e);
            }
            if (tail) {
                __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, s + j), vmx));
                e = _mm512_maskz_mov_ps(tail, e);
                _mm512_mask_storeu_ps(s + j, tail, e);
                vs = _mm512_add_ps(vs, e);
            }
            sum[r] = sum[r] * corr[r] + _mm512_reduce_add_ps(vs);
        }
        for (int64_t r = 0; r < qr; r += 8) {
            int64_t c = 0;
            for (; c + 32 <= dvp; c += 32) pv512_8x(S + r * BK, vb, ldv, kn, O + r * dvp, dvp, corr + r, c, 2);
            for (; c < dvp; c += 16) pv512_8x(S + r * BK, vb, ldv, kn, O + r * dvp, dvp, corr + r, c, 1);
        }
    }
    for (int64_t r = 0; r < qn; r++) {
        float inv = 1.0f / sum[r];
        float *y = Y + (q0 + r) * dv;
        for (int64_t c = 0; c < dv; c++) y[c] = O[r * dvp + c] * inv;
    }
}
#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif /* MT_FUSED_AVX512 */

/* AVX-512 when the CPU has it, unless tuning.no_avx512 (MTMI_NO_AVX512)
 * asks for the AVX2 path (to test and time it on the same machine). */
static int use_avx512(const mt_tuning *t) {
#ifdef MT_FUSED_AVX512
    if (t->no_avx512) return 0;
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
#else
    (void)t;
    return 0;
#endif
}

static mtmi_status run_attention(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin,
                                 mt_tview *out, int nout, mt_cpu_ctx *ctx) {
    attn_dims a;
    attn_dims_of(g, n, &a);
    if (a.M <= 0) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "no keys (M = 0)");
    float scale = mt_attr_float(n, "scale", 1.0f / sqrtf((float)a.d));
    size_t per = attn_thread_floats(&a), kpf = attn_kpack_floats(&a);
    int nth = ctx->nthreads > 0 ? ctx->nthreads : 1;
    if (!ctx->scratch || ctx->scratch_size < (kpf + per * (size_t)nth) * sizeof(float))
        return mt_kernel_fail(g, n, MTMI_ERR_INTERNAL, "scratch too small");
    const float *Q = in[0].data, *K = in[1].data, *V = in[2].data;
    float *Y = out[0].data, *kpack = ctx->scratch, *scratch = kpack + kpf;
    const int64_t nqb = (a.N + BQ - 1) / BQ, ntask = a.B * a.H * nqb;
    const int wide = use_avx512(ctx->tuning);
    const int64_t mp = (a.M + 15) & ~(int64_t)15;
#pragma omp parallel for num_threads(nth) schedule(static) if (a.B * a.H > 1)
    for (int64_t bh = 0; bh < a.B * a.H; bh++) pack_keys(K + bh * a.M * a.d, a.M, a.d, wide ? 16 : 8, kpack + bh * mp * a.d);
#pragma omp parallel for num_threads(nth) schedule(dynamic, 4) if (ntask > 1)
    for (int64_t t = 0; t < ntask; t++) {
        int64_t bh = t / nqb, qb = t % nqb;
        int64_t q0 = qb * BQ, qn = MT_MIN((int64_t)BQ, a.N - q0);
        float *ws = scratch + per * (size_t)omp_get_thread_num();
#ifdef MT_FUSED_AVX512
        if (wide) {
            attn_block512(&a, scale, Q + bh * a.N * a.d, kpack + bh * mp * a.d, V + bh * a.M * a.dv, Y + bh * a.N * a.dv, q0, qn, ws);
            continue;
        }
#endif
        attn_block(&a, scale, Q + bh * a.N * a.d, kpack + bh * mp * a.d, V + bh * a.M * a.dv, Y + bh * a.N * a.dv, q0, qn, ws);
    }
    return MTMI_OK;
}

/* ----------------------------------------------------------- Preprocess */
/* The same arithmetic as mt_image_to_chw (image.c), so that normalizing in
 * the graph gives the host path's floats bit for bit. */
static mtmi_status run_preprocess(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin,
                                  mt_tview *out, int nout, mt_cpu_ctx *ctx) {
    const mt_attr *m = mt_node_attr(n, "mean"), *d = mt_node_attr(n, "std");
    const uint8_t *x = in[0].data;
    float *y = out[0].data;
    const int64_t N = in[0].dims[0], hw = in[0].dims[1] * in[0].dims[2];
#pragma omp parallel for collapse(2) num_threads(ctx->nthreads) schedule(static) if (N * hw > 65536)
    for (int64_t b = 0; b < N; b++)
        for (int k = 0; k < 3; k++) {
            const float mk = m->floats[k], inv = 1.0f / d->floats[k];
            const uint8_t *src = x + b * hw * 3 + k;
            float *o = y + (b * 3 + k) * hw;
            for (int64_t i = 0; i < hw; i++) o[i] = ((float)src[i * 3] - mk) * inv;
        }
    return MTMI_OK;
}

/* ------------------------------------------------------ result forms */
/* mtmi.ClassMap: the first of equal maxima over axis 1; NaN never wins (a
 * broken logit cannot pick a class), as mt_argmax_chw for the vis. */
static mtmi_status run_classmap(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                                int nout, mt_cpu_ctx *ctx) {
    const float *x = in[0].data;
    uint8_t *y = out[0].data;
    const int64_t N = in[0].dims[0], C = in[0].dims[1], hw = N * C > 0 ? mt_tview_numel(&in[0]) / (N * C) : 0;
#pragma omp parallel for collapse(2) num_threads(ctx->nthreads) schedule(static) if (N * hw > 65536)
    for (int64_t b = 0; b < N; b++)
        for (int64_t i = 0; i < hw; i++) {
            const float *p = x + b * C * hw + i;
            float bv = p[0];
            int best = 0;
            for (int64_t k = 1; k < C; k++) {
                const float v = p[k * hw];
                if (v > bv || (bv != bv && v == v)) bv = v, best = (int)k;
            }
            y[b * hw + i] = (uint8_t)best;
        }
    return MTMI_OK;
}

/* mtmi.SymQuant: per batch element, scale = max |x| / 127 (1 if that is 0
 * or not finite), q = round-half-even(clamp(x / scale)) in double: the
 * bytes `mtmi run` has always written as <stem>_seg.bin. */
static mtmi_status run_symquant(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                                int nout, mt_cpu_ctx *ctx) {
    const float *x = in[0].data;
    int8_t *q = out[0].data;
    float *scales = out[1].data;
    const int64_t N = in[0].dims[0], per = N ? mt_tview_numel(&in[0]) / N : 0;
    for (int64_t b = 0; b < N; b++) {
        const float *xb = x + b * per;
        float mx = 0;
#pragma omp parallel for num_threads(ctx->nthreads) reduction(max : mx) if (per > 65536)
        for (int64_t i = 0; i < per; i++) {
            const float a = fabsf(xb[i]);
            if (a > mx) mx = a;
        }
        const double scale = mt_symquant_scale(mx);
        scales[b] = (float)scale;
#pragma omp parallel for num_threads(ctx->nthreads) if (per > 65536)
        for (int64_t i = 0; i < per; i++) q[b * per + i] = mt_symquant_value(xb[i], scale);
    }
    return MTMI_OK;
}

/* mtmi.HalfNHWC / mtmi.FromHalfNHWC (graph/shapes_fused.c): layout and
 * precision of a GPU pipeline's cut tensors, run here when a stage graph
 * holding them lands on the CPU */
static mtmi_status run_half_nhwc(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                                 int nout, mt_cpu_ctx *ctx) {
    (void)state, (void)nin, (void)nout;
    if (in[0].dtype != MTMI_FLOAT || in[0].rank != 4) return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "expects float NCHW input");
    const int64_t N = in[0].dims[0], C = in[0].dims[1], H = in[0].dims[2], W = in[0].dims[3];
    const float *x = in[0].data;
    uint16_t *y = out[0].data;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static) collapse(2)
    for (int64_t b = 0; b < N; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t w = 0; w < W; w++)
                for (int64_t c = 0; c < C; c++) y[((b * H + h) * W + w) * C + c] = mt_float_to_half(x[((b * C + c) * H + h) * W + w]);
    return MTMI_OK;
}

static mtmi_status run_from_half_nhwc(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin,
                                      mt_tview *out, int nout, mt_cpu_ctx *ctx) {
    (void)state, (void)nin, (void)nout;
    if (in[0].dtype != MTMI_FLOAT16 || in[0].rank != 4) return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "expects float16 NHWC input");
    const int64_t N = in[0].dims[0], H = in[0].dims[1], W = in[0].dims[2], C = in[0].dims[3];
    const uint16_t *x = in[0].data;
    float *y = out[0].data;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static) collapse(2)
    for (int64_t b = 0; b < N; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++) y[((b * C + c) * H + h) * W + w] = mt_half_to_float(x[((b * H + h) * W + w) * C + c]);
    return MTMI_OK;
}

const mt_cpu_kernel mt_kernels_fused[] = {
    {"HalfNHWC", "mtmi", run_half_nhwc, NULL, NULL, NULL, 0},
    {"FromHalfNHWC", "mtmi", run_from_half_nhwc, NULL, NULL, NULL, 0},
    {"Gelu", "mtmi", run_gelu, NULL, NULL, NULL, 0},
    {"Attention", "mtmi", run_attention, scratch_attention, NULL, NULL, 0},
    {"Preprocess", "mtmi", run_preprocess, NULL, NULL, NULL, 0},
    {"ClassMap", "mtmi", run_classmap, NULL, NULL, NULL, 0},
    {"SymQuant", "mtmi", run_symquant, NULL, NULL, NULL, 0},
    {NULL, NULL, NULL, NULL, NULL, NULL, 0},
};
