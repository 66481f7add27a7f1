// Strided copies between views (layout changes, concat slices, type
// conversions) and Gather along one axis.
// (C entry points in kernels.h; storage FP16 or FP32, arithmetic FP32.)
#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

#include "concat.cuh"
#include "fastmath.cuh"
#include "kernels.h"
#include "kernels_common.cuh"
#include "launch.cuh"

namespace {

// ----------------------------------------------------------------- copy
__global__ void k_copy(void *dst, IView dv, int dt, const void *src, IView sv, int stt, int n) {
    MTK_PDL_WAIT();
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    long long so = offset_of(sv, i), dof = offset_of(dv, i);
    if (dt <= MTK_T_F16 && stt <= MTK_T_F16) {
        float v = ld(src, so, stt == MTK_T_F16);
        st(dst, dof, v, dt == MTK_T_F16);
        return;
    }
    switch (dt) {
    case MTK_T_RAW1: ((uint8_t *)dst)[dof] = ((const uint8_t *)src)[so]; break;
    case MTK_T_RAW2: ((uint16_t *)dst)[dof] = ((const uint16_t *)src)[so]; break;
    case MTK_T_RAW4: ((uint32_t *)dst)[dof] = ((const uint32_t *)src)[so]; break;
    default: ((uint64_t *)dst)[dof] = ((const uint64_t *)src)[so]; break;
    }
}

// --------------------------------------------------------------- gather
__global__ void k_gather(const uint8_t *x, uint8_t *y, const int64_t *idx, long long pre, long long L, long long nidx,
                         long long post, int es) {
    MTK_PDL_WAIT();
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long total = pre * nidx * post;
    if (i >= total) return;
    long long p = i % post, t = i / post;
    long long j = t % nidx, a = t / nidx;
    long long k = idx[j];
    if (k < 0) k += L;
    if (k < 0) k = 0;
    if (k >= L) k = L - 1;
    const uint8_t *s = x + ((a * L + k) * post + p) * es;
    uint8_t *d = y + i * es;
    for (int e = 0; e < es; e++) d[e] = s[e];
}

}  // namespace

extern "C" {

cudaError_t mtk_copy(cudaStream_t s, void *dst, const mtk_view *dv, int dt, const void *src, const mtk_view *sv,
                     int stt) {
    int64_t n = numel(dv);
    if (n == 0) return cudaSuccess;
    if (n >= (1ll << 31)) return cudaErrorInvalidValue;
    mtk_launch(k_copy, blocks_for(n, 256), 256, 0, s, dst, to_iview(dv), dt, src, to_iview(sv), stt, (int)n);
    return cudaGetLastError();
}

cudaError_t mtk_gather(cudaStream_t s, const void *x, void *y, const int64_t *idx, int64_t pre, int64_t axis_len,
                       int64_t nidx, int64_t post, int esize) {
    long long total = pre * nidx * post;
    if (!total) return cudaSuccess;
    mtk_launch(k_gather, blocks_for(total, 256), 256, 0, s, (const uint8_t *)x, (uint8_t *)y, idx, pre, axis_len, nidx, post,
                                                     esize);
    return cudaGetLastError();
}

}  // extern "C"
