// Result forms on the GPU (mtmi.ClassMap, mtmi.SymQuant): what an
// application takes of a head instead of its float output, made where the
// head ran so that only it crosses the bus (a 1024x1024 class map is 1 MB;
// the float logits it comes from are 80 MB).
//
// Both read a 4-D [N, C, H, W] view with arbitrary strides (the plan's
// layout of the head output) in FP16 or FP32 and write contiguous results.
// Their arithmetic is the CPU kernels' (kernels_fused.c) exactly: the class
// map is an exact comparison, the int8 codes are computed in double with
// the rounding of graph.h's mt_symquant_value, so the GPU's bytes equal
// the CPU's and those `mtmi run` always wrote.
#include <cuda_fp16.h>
#include <float.h>
#include <stdint.h>

#include "kernels.h"
#include "launch.cuh"

namespace {

struct View4 {
    const void *x;
    long long s0, s1, s2, s3;
    int C, H, W, f16;
};

__device__ __forceinline__ float load4(const View4 &v, int n, int c, int h, int w) {
    const long long i = n * v.s0 + c * v.s1 + h * v.s2 + w * v.s3;
    return v.f16 ? __half2float(((const __half *)v.x)[i]) : ((const float *)v.x)[i];
}

// One thread per pixel: the first of equal maxima; NaN never wins.
__global__ void k_classmap(View4 v, int N, uint8_t *y) {
    MTK_PDL_WAIT();
    const long long hw = (long long)v.H * v.W, total = N * hw;
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    const int n = (int)(i / hw), r = (int)(i % hw), h = r / v.W, w = r % v.W;
    float best = load4(v, n, 0, h, w);
    int arg = 0;
    for (int c = 1; c < v.C; c++) {
        const float x = load4(v, n, c, h, w);
        if (x > best || (best != best && x == x)) best = x, arg = c;
    }
    y[i] = (uint8_t)arg;
}

// The value at flat index i of batch element n in [C, H, W] order.
__device__ __forceinline__ float load_flat(const View4 &v, int n, long long i) {
    const long long hw = (long long)v.H * v.W;
    const int c = (int)(i / hw), r = (int)(i % hw);
    return load4(v, n, c, r / v.W, r % v.W);
}

// max |x| of batch element blockIdx.y into work[n] (float bits: as the
// values are non-negative, their unsigned order is their float order).
// NaN is skipped by the comparison; inf is kept (scale 1 then).
__global__ void k_absmax(View4 v, long long per, unsigned *work) {
    MTK_PDL_WAIT();
    const int n = blockIdx.y;
    float m = 0.f;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < per; i += (long long)gridDim.x * blockDim.x) {
        const float a = fabsf(load_flat(v, n, i));
        if (a > m) m = a;
    }
    for (int o = 16; o; o >>= 1) {
        const float other = __shfl_xor_sync(0xffffffffu, m, o);
        if (other > m) m = other;
    }
    if ((threadIdx.x & 31) == 0 && m > 0.f) atomicMax(&work[n], __float_as_uint(m));
}

__device__ __forceinline__ double symquant_scale(float m) { return m > 0.f && m <= FLT_MAX ? m / 127.0 : 1.0; }

// q = round-half-even(clamp(x / scale)) in double, NaN -> 0 (graph.h's
// mt_symquant_value).
__global__ void k_symquant(View4 v, long long per, const unsigned *work, int8_t *q, float *scales) {
    MTK_PDL_WAIT();
    const int n = blockIdx.y;
    const double scale = symquant_scale(__uint_as_float(work[n]));
    if (blockIdx.x == 0 && threadIdx.x == 0) scales[n] = (float)scale;
    int8_t *qn = q + n * per;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < per; i += (long long)gridDim.x * blockDim.x) {
        double d = (double)load_flat(v, n, i) / scale;
        d = d > 127.0 ? 127.0 : d < -127.0 ? -127.0 : d;
        qn[i] = (int8_t)(d == d ? __double2int_rn(d) : 0);
    }
}

View4 view4(const void *x, const int64_t xs[4], int f16, int C, int H, int W) {
    View4 v;
    v.x = x;
    v.s0 = xs[0], v.s1 = xs[1], v.s2 = xs[2], v.s3 = xs[3];
    v.C = C, v.H = H, v.W = W, v.f16 = f16;
    return v;
}

}  // namespace

extern "C" cudaError_t mtk_classmap(cudaStream_t s, const void *x, const int64_t xs[4], int f16, int N, int C, int H, int W,
                                    uint8_t *y) {
    const long long total = (long long)N * H * W;
    if (!total) return cudaSuccess;
    if (C < 1 || C > 256) return cudaErrorInvalidValue;
    mtk_launch(k_classmap, (unsigned)((total + 255) / 256), 256, 0, s, view4(x, xs, f16, C, H, W), N, y);
    return cudaGetLastError();
}

extern "C" cudaError_t mtk_symquant(cudaStream_t s, const void *x, const int64_t xs[4], int f16, int N, int C, int H, int W,
                                    int8_t *q, float *scales, unsigned *work) {
    const long long per = (long long)C * H * W;
    if (!N || !per) return cudaSuccess;
    if (N > 65535) return cudaErrorInvalidValue;
    cudaError_t e = cudaMemsetAsync(work, 0, sizeof(unsigned) * N, s);
    if (e != cudaSuccess) return e;
    // Enough blocks to fill the GPU a few times over; each grid-strides.
    const long long want = (per + 255) / 256;
    const dim3 grid((unsigned)(want < 1024 ? want : 1024), (unsigned)N);
    const View4 v = view4(x, xs, f16, C, H, W);
    mtk_launch(k_absmax, grid, 256, 0, s, v, per, work);
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
    mtk_launch(k_symquant, grid, 256, 0, s, v, per, (const unsigned *)work, q, scales);
    return cudaGetLastError();
}
