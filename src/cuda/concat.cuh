// A channel concatenation of up to 4 channels-last FP16 sources that is
// never stored (the decoders' cat -> Resize, and cat -> Resize -> Conv in the
// upconv kernel), read 8 channels (16 bytes) at a time.  Shared by
// k_resize_cat8 (resize.cu) and k_upconv3x3 (upconv.cu).
#ifndef MT_CUDA_CONCAT_CUH
#define MT_CUDA_CONCAT_CUH

#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

#define CAT_MAXSRC 4

// Each source's base, image / row / pixel strides and first channel in the
// concat, all in 16-byte chunks of 8 channels.
struct CatSrc {
    const uint4 *p[CAT_MAXSRC];
    int s0[CAT_MAXSRC], s2[CAT_MAXSRC], s3[CAT_MAXSRC], begin[CAT_MAXSRC];
    int n;
};

// Concat chunk c: its source's base and strides, and c's chunk in it.
struct CatAt {
    const uint4 *x;
    int s0, s2, s3, c;
};

// Static indices only: a dynamic index would put the parameter struct in
// local memory.
__device__ __forceinline__ CatAt cat_at(const CatSrc &src, int c) {
    CatAt r = {src.p[0], src.s0[0], src.s2[0], src.s3[0], c};
#pragma unroll
    for (int k = 1; k < CAT_MAXSRC; k++)
        if (k < src.n && c >= src.begin[k]) r = CatAt{src.p[k], src.s0[k], src.s2[k], src.s3[k], c - src.begin[k]};
    return r;
}

// src from nsrc sources x[k] with element strides xs[k] (channels
// contiguous) starting at concat channel cbegin[k]; cudaErrorInvalidValue
// unless every base is 16-byte aligned and every stride and start a
// multiple of 8 channels.
static inline cudaError_t cat_src_fill(CatSrc *src, int nsrc, const void *const *x, const int64_t (*xs)[4], const int *cbegin) {
    if (nsrc < 1 || nsrc > CAT_MAXSRC) return cudaErrorInvalidValue;
    memset(src, 0, sizeof *src);
    src->n = nsrc;
    for (int k = 0; k < nsrc; k++) {
        if ((uintptr_t)x[k] % 16 || xs[k][1] != 1 || xs[k][0] % 8 || xs[k][2] % 8 || xs[k][3] % 8 || cbegin[k] % 8)
            return cudaErrorInvalidValue;
        src->p[k] = (const uint4 *)x[k];
        src->s0[k] = (int)(xs[k][0] / 8);
        src->s2[k] = (int)(xs[k][2] / 8);
        src->s3[k] = (int)(xs[k][3] / 8);
        src->begin[k] = cbegin[k] / 8;
    }
    return cudaSuccess;
}

#endif
