// What the kernels of kernels.h share (included by each op family's .cu):
// 32-bit strided views for index arithmetic, element loads and stores in
// FP16 or FP32, and grid sizing.  Each translation unit gets its own copy
// (an anonymous namespace), as when they were all one file.
#ifndef MTK_KERNELS_COMMON_CUH
#define MTK_KERNELS_COMMON_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "kernels.h"

namespace {

struct IView {  // 32-bit strided view for index arithmetic
    int rank;
    int dims[MTK_RANK];
    int strides[MTK_RANK];
};

IView to_iview(const mtk_view *v) {
    IView r;
    r.rank = v->rank;
    for (int i = 0; i < MTK_RANK; i++) {
        r.dims[i] = i < v->rank ? (int)v->dims[i] : 1;
        r.strides[i] = i < v->rank ? (int)v->strides[i] : 0;
    }
    return r;
}

int64_t numel(const mtk_view *v) {
    int64_t n = 1;
    for (int i = 0; i < v->rank; i++) n *= v->dims[i];
    return n;
}

__device__ __forceinline__ float ld(const void *p, long long i, int f16) {
    return f16 ? __half2float(((const __half *)p)[i]) : ((const float *)p)[i];
}
__device__ __forceinline__ void st(void *p, long long i, float v, int f16) {
    if (f16) ((__half *)p)[i] = __float2half_rn(v);
    else ((float *)p)[i] = v;
}

// Offset of linear index `idx` (row-major over v's dims) through v's strides.
__device__ __forceinline__ long long offset_of(const IView &v, int idx) {
    long long off = 0;
#pragma unroll
    for (int d = MTK_RANK - 1; d >= 0; d--) {
        if (d < v.rank) {
            int q = idx / v.dims[d];
            int r = idx - q * v.dims[d];
            off += (long long)r * v.strides[d];
            idx = q;
        }
    }
    return off;
}

unsigned blocks_for(int64_t n, int t) {
    int64_t b = (n + t - 1) / t;
    return (unsigned)(b < 1 ? 1 : b);
}

}  // namespace

#endif
