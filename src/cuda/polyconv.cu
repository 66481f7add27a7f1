// Bilinear 2x upsample -> 3x3 convolution computed at the LOW resolution
// (polyphase): the depth head's cat -> Resize -> Conv + BN + ReLU.
//
// Why: an output pixel (2i + py, 2j + px) of conv3x3(upsample2x(x)) reads
// upsampled rows 2i + py - 1 .. 2i + py + 1, and each upsampled row is a
// fixed blend of input rows i - 1 .. i + 1 (half_pixel, scale 2: weights
// 1/4 and 3/4).  So the four output phases (py, px) are four 3x3
// convolutions of the low-resolution input with composed weights
//   Wc[py,px][co][dy][dx][ci] = sum_ky,kx R[py][dy][ky] R[px][dx][kx] W[co][ky][kx][ci]
// i.e. ONE ordinary 3x3 convolution C -> 4 CO at IH x IW, which cuDNN runs
// on tensor cores without the bilinear blend in its inner loop (the fused
// upconv kernel spends as many instructions on the blend as on its MMAs)
// and without the 4x larger upsampled tensor.  Same FLOPs.
//
// Exactness at the border.  The bilinear taps are clamped, which equals
// the blend of a replicate-padded input; so the composed convolution over
// the input padded by one replicated pixel (mtk_poly_pad) gives the exact
// pre-activation everywhere except on the one-pixel ring of the output,
// where the real conv reads zeros beyond the upsampled image and the
// composed one reads the replicated border.  mtk_poly_finish subtracts
// those taps' terms there (W at that tap times the upsampled value at the
// clamped position), then adds the bias and applies the activation, and
// scatters the phases to the high-resolution channels-last output.
//
// Rounding differs from resize + conv only at FP16 level: the upsampled
// values are not rounded to FP16 (the composed weights are, once).
#include <cuda_fp16.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bilinear.cuh"
#include "concat.cuh"
#include "fastmath.cuh"
#include "kernels.h"
#include "kernels_common.cuh"
#include "launch.cuh"

namespace {

// The replicate-padded concat [N][IH + 2][IW + 2][C], 8 channels a thread.
__global__ void k_poly_pad(CatSrc src, uint4 *x, int N, int C8, int IH, int IW) {
    MTK_PDL_WAIT();
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const int PW = IW + 2, PH = IH + 2;
    if (i >= (long long)N * PH * PW * C8) return;
    const int c = (int)(i % C8);
    long long t = i / C8;
    const int px = (int)(t % PW);
    t /= PW;
    const int py = (int)(t % PH);
    const int n = (int)(t / PH);
    const int sy = min(max(py - 1, 0), IH - 1), sx = min(max(px - 1, 0), IW - 1);
    const CatAt a = cat_at(src, c);
    x[i] = a.x[(long long)n * a.s0 + (long long)sy * a.s2 + (long long)sx * a.s3 + a.c];
}

struct PolyArgs {
    const uint4 *p;    // [N][IH][IW][4 CO] conv of the padded input (phase-major channels), 8 channels a chunk
    const __half *w;   // the original weights [CO][3][3][C]
    const __half *b;   // [CO] or NULL
    __half *y;         // output, channels contiguous
    long long ys0;     // image stride
    int ys2, ys3;      // row, pixel strides (elements)
    CatSrc src;        // the low-resolution concat (for the ring's upsampled values)
    int C, IH, IW, CO, act;
    unsigned ring_blocks;
};

// Interior pixels: bias + activation of the phase result, 8 channels a thread.
__device__ void poly_shuffle(const PolyArgs &a, long long i, int N) {
    const int OH = 2 * a.IH, OW = 2 * a.IW, C8 = a.CO / 8;
    if (i >= (long long)N * OH * OW * C8) return;
    const int c = (int)(i % C8);
    long long t = i / C8;
    const int ox = (int)(t % OW);
    t /= OW;
    const int oy = (int)(t % OH);
    const int n = (int)(t / OH);
    if (oy == 0 || ox == 0 || oy == OH - 1 || ox == OW - 1) return; /* the ring: poly_ring */
    const int ph = (oy & 1) * 2 + (ox & 1);
    const long long pi = (((long long)n * a.IH + (oy >> 1)) * a.IW + (ox >> 1)) * (4 * C8) + ph * C8 + c;
    const uint4 v = a.p[pi];
    const __half2 *hv = (const __half2 *)&v;
    uint4 o;
    __half2 *ho = (__half2 *)&o;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        float2 f = __half22float2(hv[k]);
        if (a.b) {
            const float2 bb = __half22float2(((const __half2 *)a.b)[c * 4 + k]);
            f.x += bb.x;
            f.y += bb.y;
        }
        ho[k] = __floats2half2_rn(mtk_act(f.x, a.act), mtk_act(f.y, a.act));
    }
    *(uint4 *)(a.y + n * a.ys0 + (long long)oy * a.ys2 + (long long)ox * a.ys3 + c * 8) = o;
}

// The upsampled value of concat channel ci at (oy, ox) (half_pixel, scale
// 2), rounded to FP16 as the resize writes it (bilinear.cuh's taps and
// expression order).
__device__ __forceinline__ float poly_up(const CatSrc &src, int n, int ci, int oy, int ox, int IH, int IW) {
    const Bilin t = bilin_at(oy, ox, 2.f, 2.f, IH, IW, 2 * IH, 2 * IW, 0);
    const CatAt at = cat_at(src, ci >> 3);
    const __half *base = (const __half *)(at.x + (long long)n * at.s0 + at.c) + (ci & 7);
    const long long s2 = 8ll * at.s2, s3 = 8ll * at.s3;
    const float fa = __half2float(base[t.y0 * s2 + t.x0 * s3]), fb = __half2float(base[t.y0 * s2 + t.x1 * s3]);
    const float fc = __half2float(base[t.y1 * s2 + t.x0 * s3]), fd = __half2float(base[t.y1 * s2 + t.x1 * s3]);
    return __half2float(__float2half_rn(fa * t.w00 + fb * t.w01 + fc * t.w10 + fd * t.w11));
}

// Ring pixel r of an image (top row, bottom row, then the left and right
// columns without the corners) as (oy, ox).
__device__ __forceinline__ void ring_at(int r, int OH, int OW, int *oy, int *ox) {
    if (r < OW) { *oy = 0; *ox = r; return; }
    r -= OW;
    if (r < OW) { *oy = OH - 1; *ox = r; return; }
    r -= OW;
    if (r < OH - 2) { *oy = 1 + r; *ox = 0; return; }
    *oy = 1 + (r - (OH - 2));
    *ox = OW - 1;
}

// One warp a (ring pixel, 32 output channels): the lanes split the input
// channels; each lane's partial correction is summed over the warp.
__device__ void poly_ring(const PolyArgs &a, int warp, int N) {
    const int OH = 2 * a.IH, OW = 2 * a.IW, lane = threadIdx.x & 31;
    const int nring = 2 * OW + 2 * (OH - 2), ncob = (a.CO + 31) / 32;
    if (warp >= N * nring * ncob) return;
    const int co0 = (warp % ncob) * 32, pix = warp / ncob;
    const int n = pix / nring;
    int oy, ox;
    ring_at(pix - n * nring, OH, OW, &oy, &ox);
    float acc[32];
#pragma unroll
    for (int j = 0; j < 32; j++) acc[j] = 0.f;
    for (int tap = 0; tap < 9; tap++) {
        const int yy = oy + tap / 3 - 1, xx = ox + tap % 3 - 1;
        if (yy >= 0 && yy < OH && xx >= 0 && xx < OW) continue; /* inside: the composed conv has it right */
        const int cy = min(max(yy, 0), OH - 1), cx = min(max(xx, 0), OW - 1);
        for (int ci = lane; ci < a.C; ci += 32) {
            const float u = poly_up(a.src, n, ci, cy, cx, a.IH, a.IW);
            const __half *wp = a.w + (long long)co0 * 9 * a.C + tap * a.C + ci;
#pragma unroll
            for (int j = 0; j < 32; j++)
                if (co0 + j < a.CO) acc[j] += u * __half2float(wp[(long long)j * 9 * a.C]);
        }
    }
    float mine = 0.f;
#pragma unroll
    for (int j = 0; j < 32; j++) {
        float v = acc[j];
#pragma unroll
        for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == j) mine = v;
    }
    const int co = co0 + lane, ph = (oy & 1) * 2 + (ox & 1);
    if (co < a.CO) {
        const __half *prow = (const __half *)(a.p + (((long long)n * a.IH + (oy >> 1)) * a.IW + (ox >> 1)) * (a.CO / 2));
        float v = __half2float(prow[ph * a.CO + co]) - mine;
        if (a.b) v += __half2float(a.b[co]);
        a.y[n * a.ys0 + (long long)oy * a.ys2 + (long long)ox * a.ys3 + co] = __float2half_rn(mtk_act(v, a.act));
    }
}

// Blocks [0, ring_blocks): the ring, 8 warps a block, first so that their
// longer warps overlap the interior's; the rest: the interior.
__global__ void __launch_bounds__(256) k_poly_finish(PolyArgs a, int N) {
    MTK_PDL_WAIT();
    if (blockIdx.x < a.ring_blocks) poly_ring(a, (int)blockIdx.x * 8 + (int)(threadIdx.x >> 5), N);
    else poly_shuffle(a, (long long)(blockIdx.x - a.ring_blocks) * blockDim.x + threadIdx.x, N);
}

}  // namespace

extern "C" {

/* the operand rules of the upconv kernel (8-channel sources, CO % 8) */
int mtk_poly_supported(int nsrc, const int *csrc, int CO, int act) { return mtk_upconv3x3_supported(nsrc, csrc, CO, act); }

/* Part of every plan build (fuse_poly.c), so organized for speed: per
 * output channel, each original weight row (C values) is converted once
 * and added, scaled, into the 16 composed rows it feeds (R has 4 non-zero
 * (phase, row) pairs per tap row), in a float block of the channel's 36
 * composed rows that is then rounded to FP16 once.  (The plain
 * 4 x 9 x 9 loop took 98 ms for the depth head's 416 -> 160 conv on the
 * dev box, this 7-15 ms.) */
int mtk_poly_compose_weights(const uint16_t *w, int CO, int C, uint16_t *wc) {
    static const float R[2][3][3] = {
        {{0.75f, 0.25f, 0.f}, {0.25f, 0.75f, 0.75f}, {0.f, 0.f, 0.25f}},
        {{0.25f, 0.f, 0.f}, {0.75f, 0.75f, 0.25f}, {0.f, 0.25f, 0.75f}},
    };
    const size_t row = (size_t)C;
    float *acc = (float *)malloc(sizeof(float) * 37 * row); /* 36 composed rows, then the source row */
    if (!acc) return -1;
    for (int co = 0; co < CO; co++) {
        memset(acc, 0, sizeof(float) * 36 * row);
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
                const uint16_t *wr = w + ((size_t)co * 9 + ky * 3 + kx) * row;
                float *src = acc + 36 * row;
                for (size_t ci = 0; ci < row; ci++) src[ci] = __half2float(__ushort_as_half(wr[ci]));
                for (int ph = 0; ph < 4; ph++)
                    for (int tap = 0; tap < 9; tap++) {
                        const float r = R[ph >> 1][tap / 3][ky] * R[ph & 1][tap % 3][kx];
                        if (r == 0.f) continue;
                        float *dst = acc + ((size_t)ph * 9 + tap) * row;
                        for (size_t ci = 0; ci < row; ci++) dst[ci] += r * src[ci];
                    }
            }
        for (int ph = 0; ph < 4; ph++)
            for (int tap = 0; tap < 9; tap++) {
                const float *a = acc + ((size_t)ph * 9 + tap) * row;
                uint16_t *dst = wc + (((size_t)ph * CO + co) * 9 + tap) * row;
                for (size_t ci = 0; ci < row; ci++) dst[ci] = __half_as_ushort(__float2half_rn(a[ci]));
            }
    }
    free(acc);
    return 0;
}

cudaError_t mtk_poly_pad(cudaStream_t s, int nsrc, const void *const *x, const int64_t (*xs)[4], const int *csrc, void *xpad,
                         int N, int IH, int IW) {
    int cbegin[CAT_MAXSRC], C = 0;
    if (nsrc < 1 || nsrc > CAT_MAXSRC) return cudaErrorInvalidValue;
    for (int k = 0; k < nsrc; k++) cbegin[k] = C, C += csrc[k];
    CatSrc src;
    cudaError_t e = cat_src_fill(&src, nsrc, x, xs, cbegin);
    if (e != cudaSuccess) return e;
    if ((uintptr_t)xpad % 16 || C % 8) return cudaErrorInvalidValue;
    const long long total = (long long)N * (IH + 2) * (IW + 2) * (C / 8);
    if (total <= 0) return cudaSuccess;
    mtk_launch(k_poly_pad, blocks_for(total, 256), 256, 0, s, src, (uint4 *)xpad, N, C / 8, IH, IW);
    return cudaGetLastError();
}

cudaError_t mtk_poly_finish(cudaStream_t s, const void *pconv, int nsrc, const void *const *x, const int64_t (*xs)[4],
                            const int *csrc, const void *w, const void *bias, void *y, const int64_t ys[4], int N, int IH,
                            int IW, int CO, int act) {
    if (!mtk_poly_supported(nsrc, csrc, CO, act)) return cudaErrorInvalidValue;
    PolyArgs a;
    memset(&a, 0, sizeof a);
    int cbegin[CAT_MAXSRC], C = 0;
    for (int k = 0; k < nsrc; k++) cbegin[k] = C, C += csrc[k];
    cudaError_t e = cat_src_fill(&a.src, nsrc, x, xs, cbegin);
    if (e != cudaSuccess) return e;
    if ((uintptr_t)pconv % 16 || (uintptr_t)w % 2 || (bias && (uintptr_t)bias % 4) || (uintptr_t)y % 16 || ys[1] != 1 ||
        ys[0] % 8 || ys[2] % 8 || ys[3] % 8)
        return cudaErrorInvalidValue;
    if (N <= 0 || IH <= 0 || IW <= 0) return cudaSuccess;
    a.p = (const uint4 *)pconv;
    a.w = (const __half *)w;
    a.b = (const __half *)bias;
    a.y = (__half *)y;
    a.ys0 = ys[0];
    a.ys2 = (int)ys[2];
    a.ys3 = (int)ys[3];
    a.C = C;
    a.IH = IH;
    a.IW = IW;
    a.CO = CO;
    a.act = act;
    const long long nshuf = (long long)N * 4 * IH * IW * (CO / 8);
    if (nshuf >= (1ll << 31)) return cudaErrorInvalidValue;
    const long long nring_warps = (long long)N * (4 * IW + 4 * IH - 4) * ((CO + 31) / 32);
    a.ring_blocks = (unsigned)((nring_warps + 7) / 8);
    mtk_launch(k_poly_finish, a.ring_blocks + blocks_for(nshuf, 256), 256, 0, s, a, N);
    return cudaGetLastError();
}

}  // extern "C"
