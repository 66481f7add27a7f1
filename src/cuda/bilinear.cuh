// Bilinear sampling of channels-last FP16 maps, shared by the resize
// kernels (resize.cu) and the INT8 3x3 conv that builds its upsampled input
// in shared memory (qconv.cu): one definition, so that both round alike and
// the fused kernel stores the very bytes the resize would have.
#ifndef MT_CUDA_BILINEAR_CUH
#define MT_CUDA_BILINEAR_CUH

#include <cuda_fp16.h>

// source coordinate of output index o (coordinate transformation modes: kernels.h)
static __device__ __forceinline__ float src_coord(int o, float scale, int in_len, int out_len, int coord) {
    switch (coord) {
    case 1: return out_len > 1 ? (o + 0.5f) / scale - 0.5f : 0.f;
    case 2: return out_len > 1 ? o * (float)(in_len - 1) / (float)(out_len - 1) : 0.f;
    case 3: return o / scale;
    default: return (o + 0.5f) / scale - 0.5f;
    }
}

// Bilinear sampling of output pixel (oh, ow) for the channels-last resize
// kernels: the four input taps (clamped) and their weights.
struct Bilin {
    int y0, y1, x0, x1;
    float w00, w01, w10, w11;
};
// the taps and weights of source coordinates (fy, fx), clamped to the map
static __device__ __forceinline__ Bilin bilin_from(float fy, float fx, int IH, int IW) {
    fy = fminf(fmaxf(fy, 0.f), (float)(IH - 1));
    fx = fminf(fmaxf(fx, 0.f), (float)(IW - 1));
    Bilin t;
    t.y0 = (int)fy, t.x0 = (int)fx;
    t.y1 = min(t.y0 + 1, IH - 1), t.x1 = min(t.x0 + 1, IW - 1);
    const float ay = fy - t.y0, ax = fx - t.x0;
    t.w00 = (1.f - ay) * (1.f - ax), t.w01 = (1.f - ay) * ax, t.w10 = ay * (1.f - ax), t.w11 = ay * ax;
    return t;
}
static __device__ __forceinline__ Bilin bilin_at(int oh, int ow, float sh, float sw, int IH, int IW, int OH, int OW, int coord) {
    return bilin_from(src_coord(oh, sh, IH, OH, coord), src_coord(ow, sw, IW, OW, coord), IH, IW);
}
// 8 FP16 channels at element b of a channels-last uint4 tensor, blended.
static __device__ __forceinline__ uint4 bilin8(const uint4 *x, int b, int xs2, int xs3, const Bilin &t) {
    uint4 a = x[b + t.y0 * xs2 + t.x0 * xs3], bq = x[b + t.y0 * xs2 + t.x1 * xs3];
    uint4 cq = x[b + t.y1 * xs2 + t.x0 * xs3], d = x[b + t.y1 * xs2 + t.x1 * xs3];
    const __half2 *ha = (const __half2 *)&a, *hb = (const __half2 *)&bq, *hc = (const __half2 *)&cq, *hd = (const __half2 *)&d;
    uint4 o;
    __half2 *ho = (__half2 *)&o;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        float2 fa = __half22float2(ha[k]), fb = __half22float2(hb[k]), fc = __half22float2(hc[k]), fd = __half22float2(hd[k]);
        ho[k] = __floats2half2_rn(fa.x * t.w00 + fb.x * t.w01 + fc.x * t.w10 + fd.x * t.w11,
                                  fa.y * t.w00 + fb.y * t.w01 + fc.y * t.w10 + fd.y * t.w11);
    }
    return o;
}

#endif
