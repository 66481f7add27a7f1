/* mtmi.QUpsampleSum on its own (qkernels.h, graph/qops.h): the
 * reassociated INT8 fuse conv's exact upsample-sum of its per-level
 * integer sums, then the QConv epilogue.  The plan folds it into level 0's
 * GEMM where it can (fuse_qupsum.c); this kernel is the unfused form and
 * the reference the fused one is tested against.  A thread makes QUP_RUN
 * consecutive channels of one output pixel: the taps once, loads that
 * adjacent threads coalesce. */
#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

#include "launch.cuh"
#include "qkernels.h"
#include "qquant.cuh"
#include "qupsum.cuh"

#define QUP_RUN 4

struct QupArgs {
    int L;
    mtk_qups_level lv[MTK_QUPS_MAX];
};

__global__ void __launch_bounds__(256) k_qupsample_sum(QupArgs a, const int32_t *__restrict__ bq, const float *__restrict__ ms,
                                                       int act, float y_scale, void *__restrict__ y, int y_f16, int64_t ldy,
                                                       int64_t ys0, int N, int OH, int OW, int C) {
    MTK_PDL_WAIT();
    const int groups = (C + QUP_RUN - 1) / QUP_RUN;
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)N * OH * OW * groups) return;
    const int c0 = (int)(i % groups) * QUP_RUN;
    int64_t pix = i / groups;
    const int ox = (int)(pix % OW);
    pix /= OW;
    const int oy = (int)(pix % OH), n = (int)(pix / OH);
    long long acc[QUP_RUN];
#pragma unroll
    for (int k = 0; k < QUP_RUN; k++) acc[k] = c0 + k < C ? 256ll * __ldg(bq + c0 + k) : 0ll;
#pragma unroll
    for (int l = 0; l < MTK_QUPS_MAX; l++) { /* a constant index: a.lv stays in the parameter space */
        if (l >= a.L) break;
        const QupPix p = qup_pix(a.lv[l], n, oy, ox);
#pragma unroll
        for (int k = 0; k < QUP_RUN; k++)
            if (c0 + k < C) acc[k] += qup_at(a.lv[l], p, c0 + k);
    }
    const float ry = y_scale > 0.0f ? q_div(1.0f, y_scale) : 0.0f;
    const int64_t o = (int64_t)n * ys0 + ((int64_t)oy * OW + ox) * ldy;
#pragma unroll
    for (int k = 0; k < QUP_RUN; k++) {
        const int c = c0 + k;
        if (c >= C) break;
        /* the CPU's steps: (float)acc * ms, the activation, the requantization */
        float v = q_mul(q_l2f(acc[k]), __ldg(ms + c));
        if (act == 1) v = v > 0.0f ? v : 0.0f;
        else if (act >= 2) v = q_act_slow(v, act);
        if (y_scale > 0.0f) v = q_mul(q_i2f(q_quant_r(v, y_scale, ry)), y_scale);
        if (y_f16) ((__half *)y)[o + c] = __float2half_rn(v);
        else ((float *)y)[o + c] = v;
    }
}

extern "C" cudaError_t mtk_qupsample_sum(cudaStream_t st, int L, const mtk_qups_level *lv, const int32_t *bq, const float *ms,
                                         int act, float y_scale, void *y, int y_f16, int64_t ldy, int64_t ys0, int N, int OH,
                                         int OW, int C) {
    if (L < 1 || L > MTK_QUPS_MAX || !bq || !ms || !y || N < 0 || OH < 0 || OW < 0 || C < 0 || act < 0 || act > 3)
        return cudaErrorInvalidValue;
    const int64_t threads = (int64_t)N * OH * OW * ((C + QUP_RUN - 1) / QUP_RUN);
    if (!threads) return cudaSuccess;
    if (threads >= ((int64_t)1 << 38)) return cudaErrorInvalidValue; /* blocks within the grid limit */
    QupArgs a;
    memset(&a, 0, sizeof a);
    a.L = L;
    for (int l = 0; l < L; l++) {
        if (!qup_level_ok(&lv[l], OH, OW)) return cudaErrorInvalidValue;
        a.lv[l] = lv[l];
    }
    mtk_launch(k_qupsample_sum, (unsigned)((threads + 255) / 256), 256, 0, st, a, bq, ms, act, y_scale, y, y_f16, ldy, ys0, N, OH,
               OW, C);
    return cudaGetLastError();
}
