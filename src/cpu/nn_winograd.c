/* Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (groups 1), the
 * depth head's fuse convs: 16 GEMMs of [M, C] x [C, tiles] replace the 9x
 * larger im2col GEMM, 2.25x fewer multiply-adds.  F(2x2) keeps the
 * transforms to adds and halves, so the result stays within ~1e-6 of the
 * direct sum (the tests hold it to 1e-5 against ONNX Runtime).
 *
 * Work is split in bands of tile rows; each thread transforms its band's
 * input (8 tiles per AVX2 vector), runs 16 single-threaded sgemms on it
 * and transforms the products back into the output with bias and
 * activation, all in its own slice of the scratch buffer. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu/kernels_nn.h"
#include "cpu/nn_winograd.h"

#ifndef MT_WINO_BAND_BYTES
#define MT_WINO_BAND_BYTES (3u << 20)
#endif

mt_wino *mt_nn_wino_prepare(const float *W, int64_t M, int64_t C) {
    mt_wino *w = malloc(sizeof *w);
    float *U = mt_alloc_aligned(sizeof(float) * 16 * M * C);
    if (!w || !U) {
        free(w);
        free(U);
        return NULL;
    }
    w->M = M;
    w->C = C;
    w->U = U;
    for (int64_t m = 0; m < M; m++)
        for (int64_t c = 0; c < C; c++) {
            const float *g = W + (m * C + c) * 9;
            float Gg[4][3];
            for (int k = 0; k < 3; k++) {
                Gg[0][k] = g[k];
                Gg[1][k] = 0.5f * (g[k] + g[3 + k] + g[6 + k]);
                Gg[2][k] = 0.5f * (g[k] - g[3 + k] + g[6 + k]);
                Gg[3][k] = g[6 + k];
            }
            for (int i = 0; i < 4; i++) {
                float a = Gg[i][0], b = Gg[i][1], cc = Gg[i][2];
                float u[4] = {a, 0.5f * (a + b + cc), 0.5f * (a - b + cc), cc};
                for (int j = 0; j < 4; j++) U[((i * 4 + j) * M + m) * C + c] = u[j];
            }
        }
    return w;
}

void mt_nn_wino_free(mt_wino *w) {
    if (!w) return;
    free(w->U);
    free(w);
}

typedef struct wgeom {
    int64_t TH, TW, TW8, R, nb, PW;
    size_t per_thread; /* floats */
} wgeom;

static void wino_geom(int64_t C, int64_t M, int64_t OH, int64_t OW, int64_t N, int nth, int64_t band, wgeom *g) {
    g->TH = (OH + 1) / 2;
    g->TW = (OW + 1) / 2;
    g->TW8 = (g->TW + 7) & ~(int64_t)7;
    /* band (tuning.nn_wino_kb) overrides the per-thread band budget. */
    const int64_t budget = band > 0 ? band : (int64_t)MT_WINO_BAND_BYTES;
    int64_t R = budget / (16 * (C + M) * (int64_t)sizeof(float) * g->TW8);
    if (R < 1) R = 1;
    /* At least two bands per thread so that dynamic scheduling evens out. */
    int64_t fair = (N * g->TH + 2 * nth - 1) / (2 * nth);
    if (R > fair) R = fair;
    if (R < 1) R = 1;
    if (R > g->TH) R = g->TH;
    g->R = R;
    g->nb = (g->TH + R - 1) / R;
    g->PW = 2 * g->TW8 + 2;
    g->per_thread = (size_t)(16 * (C + M) * R * g->TW8 + 4 * (g->PW + 16) + 64);
}

size_t mt_nn_wino_scratch(int64_t C, int64_t M, int64_t OH, int64_t OW, int64_t N, int nth, int64_t band) {
    wgeom g;
    if (nth < 1) nth = 1;
    wino_geom(C, M, OH, OW, N, nth, band, &g);
    return g.per_thread * sizeof(float) * (size_t)nth;
}

#ifdef MT_NN_AVX2
/* d0..d3 of 8 consecutive tiles: columns 2j, 2j+1, 2j+2, 2j+3 of row. */
static inline void deint(const float *row, __m256 *d0, __m256 *d1) {
    __m256 lo = _mm256_loadu_ps(row), hi = _mm256_loadu_ps(row + 8);
    __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    __m256 od = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    *d0 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0)));
    *d1 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), _MM_SHUFFLE(3, 1, 2, 0)));
}
#endif

/* Input transform of 8 tiles (columns tx0..tx0+7) from 4 padded rows into
 * V[xi * vstride + t], t = first tile's index. */
static inline void in_transform8(const float *const rows[4], int64_t tx0, float *V, int64_t vstride) {
#ifdef MT_NN_AVX2
    __m256 t[4][4];
    for (int r = 0; r < 4; r++) {
        __m256 d0, d1, d2, d3;
        deint(rows[r] + 2 * tx0, &d0, &d1);
        deint(rows[r] + 2 * tx0 + 2, &d2, &d3);
        t[r][0] = _mm256_sub_ps(d0, d2);
        t[r][1] = _mm256_add_ps(d1, d2);
        t[r][2] = _mm256_sub_ps(d2, d1);
        t[r][3] = _mm256_sub_ps(d1, d3);
    }
    for (int j = 0; j < 4; j++) {
        _mm256_storeu_ps(V + (0 * 4 + j) * vstride, _mm256_sub_ps(t[0][j], t[2][j]));
        _mm256_storeu_ps(V + (1 * 4 + j) * vstride, _mm256_add_ps(t[1][j], t[2][j]));
        _mm256_storeu_ps(V + (2 * 4 + j) * vstride, _mm256_sub_ps(t[2][j], t[1][j]));
        _mm256_storeu_ps(V + (3 * 4 + j) * vstride, _mm256_sub_ps(t[1][j], t[3][j]));
    }
#else
    for (int l = 0; l < 8; l++) {
        float t[4][4];
        for (int r = 0; r < 4; r++) {
            const float *d = rows[r] + 2 * (tx0 + l);
            t[r][0] = d[0] - d[2];
            t[r][1] = d[1] + d[2];
            t[r][2] = d[2] - d[1];
            t[r][3] = d[1] - d[3];
        }
        for (int j = 0; j < 4; j++) {
            V[(0 * 4 + j) * vstride + l] = t[0][j] - t[2][j];
            V[(1 * 4 + j) * vstride + l] = t[1][j] + t[2][j];
            V[(2 * 4 + j) * vstride + l] = t[2][j] - t[1][j];
            V[(3 * 4 + j) * vstride + l] = t[1][j] - t[3][j];
        }
    }
#endif
}

/* Output transform of 8 tiles: Mo[xi * mstride + t] -> two output rows of
 * 16 values each (y0 for row 2ty, y1 for 2ty+1), bias and activation
 * applied. */
static inline void out_transform8(const float *Mo, int64_t mstride, float bias, int act, float *y0, float *y1) {
#ifdef MT_NN_AVX2
    __m256 s0[4], s1[4];
    for (int r = 0; r < 4; r++) {
        __m256 m0 = _mm256_loadu_ps(Mo + (r * 4 + 0) * mstride), m1 = _mm256_loadu_ps(Mo + (r * 4 + 1) * mstride);
        __m256 m2 = _mm256_loadu_ps(Mo + (r * 4 + 2) * mstride), m3 = _mm256_loadu_ps(Mo + (r * 4 + 3) * mstride);
        s0[r] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        s1[r] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
    }
    __m256 b = _mm256_set1_ps(bias);
    __m256 o00 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s0[0], s0[1]), s0[2]), b);
    __m256 o01 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s1[0], s1[1]), s1[2]), b);
    __m256 o10 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s0[1], s0[2]), s0[3]), b);
    __m256 o11 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s1[1], s1[2]), s1[3]), b);
    o00 = mt_nn_act8(o00, act);
    o01 = mt_nn_act8(o01, act);
    o10 = mt_nn_act8(o10, act);
    o11 = mt_nn_act8(o11, act);
    __m256 lo = _mm256_unpacklo_ps(o00, o01), hi = _mm256_unpackhi_ps(o00, o01);
    _mm256_storeu_ps(y0, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(y0 + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    lo = _mm256_unpacklo_ps(o10, o11);
    hi = _mm256_unpackhi_ps(o10, o11);
    _mm256_storeu_ps(y1, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(y1 + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
#else
    for (int l = 0; l < 8; l++) {
        float s0[4], s1[4];
        for (int r = 0; r < 4; r++) {
            const float *m = Mo + r * 4 * mstride + l;
            s0[r] = m[0] + m[mstride] + m[2 * mstride];
            s1[r] = m[mstride] - m[2 * mstride] - m[3 * mstride];
        }
        y0[2 * l] = mt_nn_act1(s0[0] + s0[1] + s0[2] + bias, act);
        y0[2 * l + 1] = mt_nn_act1(s1[0] + s1[1] + s1[2] + bias, act);
        y1[2 * l] = mt_nn_act1(s0[1] - s0[2] - s0[3] + bias, act);
        y1[2 * l + 1] = mt_nn_act1(s1[1] - s1[2] - s1[3] + bias, act);
    }
#endif
}

void mt_nn_wino_run(const mt_wino *w, const float *X, int64_t N, int64_t H, int64_t Wd, int64_t pt, int64_t pl, int64_t OH,
                    int64_t OW, const float *bias, int act, float *Y, float *scratch, int nth, int64_t band) {
    const int64_t C = w->C, M = w->M;
    wgeom g;
    wino_geom(C, M, OH, OW, N, nth, band, &g);
    const int64_t items = N * g.nb;
    const int team = (int)MT_MIN((int64_t)nth, items);
    openblas_set_num_threads(1);
    #pragma omp parallel for num_threads(team) schedule(dynamic, 1)
    for (int64_t it = 0; it < items; it++) {
        const int64_t b = it / g.nb, ty0 = it % g.nb * g.R, ty1 = MT_MIN(ty0 + g.R, g.TH);
        const int64_t T = (ty1 - ty0) * g.TW8;
        float *V = scratch + (size_t)omp_get_thread_num() * g.per_thread;
        float *Mo = V + 16 * C * T;
        float *rowbuf = Mo + 16 * M * T;
        /* Input transform, channel by channel.  A group of 8 tiles reads
         * input columns [2 tx0 - pl, 2 tx0 - pl + 18) of 4 rows: straight
         * from the input when all of that is inside it, else from a small
         * zero-padded copy. */
        float *edge = rowbuf;
        for (int64_t c = 0; c < C; c++) {
            const float *xc = X + (b * C + c) * H * Wd;
            for (int64_t ty = ty0; ty < ty1; ty++) {
                const float *src[4];
                int rows_in = 1;
                for (int r = 0; r < 4; r++) {
                    int64_t iy = 2 * ty - pt + r;
                    src[r] = iy >= 0 && iy < H ? xc + iy * Wd : NULL;
                    if (!src[r]) rows_in = 0;
                }
                float *Vt = V + c * T + (ty - ty0) * g.TW8;
                for (int64_t tx0 = 0; tx0 < g.TW8; tx0 += 8) {
                    int64_t x0 = 2 * tx0 - pl;
                    const float *rows[4];
                    if (rows_in && x0 >= 0 && x0 + 18 <= Wd) {
                        for (int r = 0; r < 4; r++) rows[r] = src[r] + x0;
                    } else {
                        for (int r = 0; r < 4; r++) {
                            float *e = edge + r * 24;
                            for (int k = 0; k < 18; k++) {
                                int64_t ix = x0 + k;
                                e[k] = src[r] && ix >= 0 && ix < Wd ? src[r][ix] : 0.0f;
                            }
                            rows[r] = e;
                        }
                    }
                    in_transform8(rows, 0, Vt + tx0, C * T);
                }
            }
        }
        for (int xi = 0; xi < 16; xi++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)T, (int)C, 1.0f, w->U + (size_t)xi * M * C, (int)C,
                        V + (size_t)xi * C * T, (int)T, 0.0f, Mo + (size_t)xi * M * T, (int)T);
        /* Output transform with bias and activation. */
        float tmp[2][16];
        for (int64_t m = 0; m < M; m++) {
            float bv = bias ? bias[m] : 0.0f;
            float *ym = Y + (b * M + m) * OH * OW;
            for (int64_t ty = ty0; ty < ty1; ty++) {
                int64_t oy = 2 * ty;
                int two = oy + 1 < OH;
                for (int64_t tx0 = 0; tx0 < g.TW8; tx0 += 8) {
                    int64_t ox = 2 * tx0;
                    if (ox >= OW) break;
                    const float *mo = Mo + m * T + (ty - ty0) * g.TW8 + tx0;
                    if (ox + 16 <= OW && two) {
                        out_transform8(mo, M * T, bv, act, ym + oy * OW + ox, ym + (oy + 1) * OW + ox);
                    } else {
                        out_transform8(mo, M * T, bv, act, tmp[0], tmp[1]);
                        int64_t cnt = MT_MIN((int64_t)16, OW - ox);
                        memcpy(ym + oy * OW + ox, tmp[0], sizeof(float) * cnt);
                        if (two) memcpy(ym + (oy + 1) * OW + ox, tmp[1], sizeof(float) * cnt);
                    }
                }
            }
        }
    }
    openblas_set_num_threads(nth);
}
