// mtmi.Preprocess: 8-bit RGB frames [N,H,W,3] normalized into the
// network input [N,3,H,W] on the device.
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

// ----------------------------------------------------------- preprocess
__global__ void k_preprocess(const uint8_t *img, int H, int W, void *y, long long s1, long long s2, long long s3,
                             float m0, float m1, float m2, float i0, float i1, float i2, int f16) {
    MTK_PDL_WAIT();
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)H * W) return;
    int h = (int)(i / W), w = (int)(i % W);
    const uint8_t *p = img + i * 3;
    long long o = h * s2 + w * s3;
    st(y, o, ((float)p[0] - m0) * i0, f16);
    st(y, o + s1, ((float)p[1] - m1) * i1, f16);
    st(y, o + 2 * s1, ((float)p[2] - m2) * i2, f16);
}

}  // namespace

extern "C" {

cudaError_t mtk_preprocess(cudaStream_t s, const uint8_t *img, int H, int W, void *y, const int64_t ys[4],
                           const float mean[3], const float stdv[3], int f16) {
    long long total = (long long)H * W;
    mtk_launch(k_preprocess, blocks_for(total, 256), 256, 0, s, img, H, W, y, ys[1], ys[2], ys[3], mean[0], mean[1], mean[2],
                                                         1.f / stdv[0], 1.f / stdv[1], 1.f / stdv[2], f16);
    return cudaGetLastError();
}

}  // extern "C"
