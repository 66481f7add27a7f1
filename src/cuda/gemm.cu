// Small GEMMs of our own (narrow outputs) and the bias + activation
// epilogue after a library GEMM or convolution.
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

// ------------------------------------------------------------ small-N GEMM
// C[m, n] = act(sum_k A[m, k] B[n, k] + bias[n]) for n < NMAX; A rows of
// stride lda, B [n][k] contiguous; one thread per row.
template <typename T, int NMAX>
__global__ void k_gemm_smalln(const T *A, int lda, const T *B, const T *bias, T *C, int ldc, int M, int N, int K,
                              int act) {
    MTK_PDL_WAIT();
    // B (at most 8 x K) as floats in shared memory: read from global once a
    // block instead of once per multiply-add (the depth head's 32 -> 1 conv
    // over 262144 pixels was bound by those loads)
    extern __shared__ float Bs[];  // [K][NMAX]
    for (int i = threadIdx.x; i < K * NMAX; i += blockDim.x) {
        const int k = i / NMAX, n = i % NMAX;
        Bs[i] = n < N ? (float)B[n * K + k] : 0.f;
    }
    __syncthreads();
    int m = blockIdx.x * blockDim.x + threadIdx.x;
    if (m >= M) return;
    float acc[NMAX];
#pragma unroll
    for (int n = 0; n < NMAX; n++) acc[n] = (n < N && bias) ? (float)bias[n] : 0.f;
    const T *a = A + (long long)m * lda;
    if (sizeof(T) == 2 && K % 8 == 0 && lda % 8 == 0 && ((uintptr_t)A % 16) == 0) {
        for (int k0 = 0; k0 < K; k0 += 8) {
            uint4 q = *(const uint4 *)(a + k0);
            const __half *hq = (const __half *)&q;
#pragma unroll
            for (int e = 0; e < 8; e++) {
                float av = __half2float(hq[e]);
#pragma unroll
                for (int n = 0; n < NMAX; n++) acc[n] = fmaf(av, Bs[(k0 + e) * NMAX + n], acc[n]);
            }
        }
    } else
        for (int k = 0; k < K; k++) {
            float av = (float)a[k];
#pragma unroll
            for (int n = 0; n < NMAX; n++) acc[n] = fmaf(av, Bs[k * NMAX + n], acc[n]);
        }
#pragma unroll
    for (int n = 0; n < NMAX; n++)
        if (n < N) C[(long long)m * ldc + n] = (T)mtk_act(acc[n], act);
}

// ------------------------------------------------------------- bias+act
template <typename T>
__global__ void k_bias_act(T *y, const T *b, unsigned n, int C, int act, int ldy) {
    MTK_PDL_WAIT();
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned c = i % (unsigned)C, r = i / (unsigned)C;
    size_t o = (size_t)r * ldy + c;
    float v = (float)y[o] + (b ? (float)b[c] : 0.f);
    y[o] = (T)mtk_act(v, act);
}

}  // namespace

extern "C" {

cudaError_t mtk_gemm_smalln(cudaStream_t s, const void *A, int lda, const void *B, const void *bias, void *C, int ldc,
                           int M, int N, int K, int act, int f16) {
    if (N > 8 || K > 1024) return cudaErrorInvalidValue;
    if (!M) return cudaSuccess;
    // N == 1 (a conv to one channel: the depth output) gets its own
    // instance: 1 accumulator instead of 8
    if (f16 && N == 1)
        mtk_launch(k_gemm_smalln<__half, 1>, blocks_for(M, 128), 128, (size_t)K * 1 * sizeof(float), s, (const __half *)A, lda,
                   (const __half *)B, (const __half *)bias, (__half *)C, ldc, M, N, K, act);
    else if (f16)
        mtk_launch(k_gemm_smalln<__half, 8>, blocks_for(M, 128), 128, (size_t)K * 8 * sizeof(float), s, (const __half *)A, lda,
                   (const __half *)B, (const __half *)bias, (__half *)C, ldc, M, N, K, act);
    else
        mtk_launch(k_gemm_smalln<float, 8>, blocks_for(M, 128), 128, (size_t)K * 8 * sizeof(float), s, (const float *)A, lda,
                   (const float *)B, (const float *)bias, (float *)C, ldc, M, N, K, act);
    return cudaGetLastError();
}

cudaError_t mtk_bias_act(cudaStream_t s, void *y, const void *b, int64_t rows, int C, int act, int f16) {
    return mtk_bias_act_ld(s, y, b, rows, C, act, f16, C);
}

cudaError_t mtk_bias_act_ld(cudaStream_t s, void *y, const void *b, int64_t rows, int C, int act, int f16, int ldy) {
    long long n = (long long)rows * C;
    if (!n) return cudaSuccess;
    if (f16) mtk_launch(k_bias_act<__half>, blocks_for(n, 256), 256, 0, s, (__half *)y, (const __half *)b, (unsigned)n, C, act, ldy);
    else mtk_launch(k_bias_act<float>, blocks_for(n, 256), 256, 0, s, (float *)y, (const float *)b, (unsigned)n, C, act, ldy);
    return cudaGetLastError();
}

}  // extern "C"
