/* 3-D Conv and ConvTranspose: direct loops, parallel over output channel
 * volumes.  Not on the network's path (its convolutions are 2-D); here so
 * that 3-D models run at all, correctly. */
#include <omp.h>

#include "cpu/kernels_nn.h"
#include "graph/nn_geom.h"

int mt_nn_conv3d(const mt_node *n, int kind, const mt_tview *in, int nin, mt_tview *out, int act, int nth, char *err, size_t cap) {
    const mt_tview *x = &in[0], *w = &in[1];
    if (x->rank != 5 || w->rank != 5) {
        snprintf(err, cap, "3-D convolution needs rank-5 input and weight");
        return -1;
    }
    mt_geom geo;
    if (mt_geom_get(n, kind, 3, x->dims + 2, w->dims + 2, &geo, err, cap)) return -1;
    const int64_t N = x->dims[0], C = x->dims[1], G = geo.group;
    if (G < 1 || C % G) {
        snprintf(err, cap, "group %lld does not divide %lld channels", (long long)G, (long long)C);
        return -1;
    }
    const int64_t M = kind == MT_GEOM_CONVT ? w->dims[1] * G : w->dims[0];
    const int64_t Cg = C / G, Mg = M / G;
    if (kind == MT_GEOM_CONV ? (w->dims[1] != Cg || M % G) : w->dims[0] != C) {
        snprintf(err, cap, "weight shape does not fit %lld channels in %lld groups", (long long)C, (long long)G);
        return -1;
    }
    const int64_t *I = geo.in, *O = geo.out, *K = geo.k, *S = geo.stride, *D = geo.dil, *P = geo.pb;
    const int64_t isz = I[0] * I[1] * I[2], osz = O[0] * O[1] * O[2], ksz = K[0] * K[1] * K[2];
    const float *X = x->data, *Wt = w->data;
    const float *B = nin > 2 && in[2].data ? in[2].data : NULL;
    float *Y = out[0].data;
    #pragma omp parallel for num_threads(nth) schedule(dynamic, 1)
    for (int64_t p = 0; p < N * M; p++) {
        const int64_t b = p / M, m = p % M, gi = m / Mg;
        float *y = Y + p * osz;
        const float bias = B ? B[m] : 0.0f;
        if (kind == MT_GEOM_CONV) {
            for (int64_t o0 = 0; o0 < O[0]; o0++)
                for (int64_t o1 = 0; o1 < O[1]; o1++)
                    for (int64_t o2 = 0; o2 < O[2]; o2++) {
                        float acc = bias;
                        for (int64_t c = 0; c < Cg; c++) {
                            const float *xc = X + (b * C + gi * Cg + c) * isz;
                            const float *wc = Wt + (m * Cg + c) * ksz;
                            for (int64_t k0 = 0; k0 < K[0]; k0++) {
                                int64_t i0 = o0 * S[0] - P[0] + k0 * D[0];
                                if (i0 < 0 || i0 >= I[0]) continue;
                                for (int64_t k1 = 0; k1 < K[1]; k1++) {
                                    int64_t i1 = o1 * S[1] - P[1] + k1 * D[1];
                                    if (i1 < 0 || i1 >= I[1]) continue;
                                    for (int64_t k2 = 0; k2 < K[2]; k2++) {
                                        int64_t i2 = o2 * S[2] - P[2] + k2 * D[2];
                                        if (i2 < 0 || i2 >= I[2]) continue;
                                        acc += xc[(i0 * I[1] + i1) * I[2] + i2] * wc[(k0 * K[1] + k1) * K[2] + k2];
                                    }
                                }
                            }
                        }
                        y[(o0 * O[1] + o1) * O[2] + o2] = mt_nn_act1(acc, act);
                    }
        } else {
            for (int64_t i = 0; i < osz; i++) y[i] = bias;
            for (int64_t c = 0; c < Cg; c++) {
                const float *xc = X + (b * C + gi * Cg + c) * isz;
                const float *wc = Wt + ((gi * Cg + c) * Mg + (m - gi * Mg)) * ksz;
                for (int64_t i0 = 0; i0 < I[0]; i0++)
                    for (int64_t i1 = 0; i1 < I[1]; i1++)
                        for (int64_t i2 = 0; i2 < I[2]; i2++) {
                            float v = xc[(i0 * I[1] + i1) * I[2] + i2];
                            for (int64_t k0 = 0; k0 < K[0]; k0++) {
                                int64_t o0 = i0 * S[0] - P[0] + k0 * D[0];
                                if (o0 < 0 || o0 >= O[0]) continue;
                                for (int64_t k1 = 0; k1 < K[1]; k1++) {
                                    int64_t o1 = i1 * S[1] - P[1] + k1 * D[1];
                                    if (o1 < 0 || o1 >= O[1]) continue;
                                    for (int64_t k2 = 0; k2 < K[2]; k2++) {
                                        int64_t o2 = i2 * S[2] - P[2] + k2 * D[2];
                                        if (o2 < 0 || o2 >= O[2]) continue;
                                        y[(o0 * O[1] + o1) * O[2] + o2] += v * wc[(k0 * K[1] + k1) * K[2] + k2];
                                    }
                                }
                            }
                        }
            }
        }
    }
    return 0;
}
