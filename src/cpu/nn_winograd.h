/* Winograd F(2x2, 3x3) convolution (nn_winograd.c), private to the nn
 * CPU kernels. */
#ifndef MT_CPU_NN_WINOGRAD_H
#define MT_CPU_NN_WINOGRAD_H

#include <stddef.h>
#include <stdint.h>

typedef struct mt_wino {
    int64_t M, C;
    float *U; /* transformed weights [16][M][C] */
} mt_wino;

/* W [M, C, 3, 3]; NULL when out of memory. */
mt_wino *mt_nn_wino_prepare(const float *W, int64_t M, int64_t C);
void mt_nn_wino_free(mt_wino *w);
/* Scratch bytes for mt_nn_wino_run with the same arguments; band: the
 * per-thread band budget in bytes (0 = the default, MT_WINO_BAND_BYTES). */
size_t mt_nn_wino_scratch(int64_t C, int64_t M, int64_t OH, int64_t OW, int64_t N, int nth, int64_t band);
/* Y [N, M, OH, OW] = act(conv3x3(X [N, C, H, W], pads pt/pl, stride 1) + bias). */
void mt_nn_wino_run(const mt_wino *w, const float *X, int64_t N, int64_t H, int64_t W, int64_t pt, int64_t pl, int64_t OH,
                    int64_t OW, const float *bias, int act, float *Y, float *scratch, int nth, int64_t band);

#endif
