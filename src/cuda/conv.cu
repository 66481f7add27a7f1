// Convolutions of our own: depthwise, direct, and the im2col matrices
// that a cuBLASLt GEMM multiplies.
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

// --------------------------------------------------------- depthwise conv
// One thread per output (n, oh, ow) and two channels (NHWC); weights [KH][KW][C].
template <typename T>
__global__ void k_dwconv(const T *x, T *y, const T *w, const T *b, int N, int H, int W, int C, int OH, int OW,
                         int KH, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int act) {
    MTK_PDL_WAIT();
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned total = (unsigned)N * OH * OW * C;
    if (i >= total) return;
    int c = (int)(i % C);
    unsigned t = i / C;
    int ow = (int)(t % OW); t /= OW;
    int oh = (int)(t % OH);
    int n = (int)(t / OH);
    float acc = b ? (float)b[c] : 0.f;
    for (int kh = 0; kh < KH; kh++) {
        int ih = oh * sh - ph + kh * dh;
        if (ih < 0 || ih >= H) continue;
        for (int kw = 0; kw < KW; kw++) {
            int iw = ow * sw - pw + kw * dw;
            if (iw < 0 || iw >= W) continue;
            acc += (float)x[(((long long)n * H + ih) * W + iw) * C + c] * (float)w[(kh * KW + kw) * C + c];
        }
    }
    y[i] = (T)mtk_act(acc, act);
}

// 3x3 stride 1 pad 1 specialization, half2 over channel pairs, 4 outputs along W per thread.
__global__ void k_dw3x3_h2(const __half2 *x, __half2 *y, const __half2 *w, const __half2 *b, int N, int H, int W,
                           int C2, int act) {
    MTK_PDL_WAIT();
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    int WB = (W + 3) / 4;
    unsigned total = (unsigned)N * H * WB * C2;
    if (i >= total) return;
    int c = (int)(i % C2);
    unsigned t = i / C2;
    int wb = (int)(t % WB); t /= WB;
    int h = (int)(t % H);
    int n = (int)(t / H);
    int w0 = wb * 4;
    float2 acc[4];
    float2 bb = b ? __half22float2(b[c]) : make_float2(0.f, 0.f);
#pragma unroll
    for (int k = 0; k < 4; k++) acc[k] = bb;
#pragma unroll
    for (int kh = 0; kh < 3; kh++) {
        int ih = h - 1 + kh;
        if (ih < 0 || ih >= H) continue;
        const __half2 *row = x + ((long long)n * H + ih) * W * C2 + c;
        float2 in[6];
#pragma unroll
        for (int k = 0; k < 6; k++) {
            int iw = w0 - 1 + k;
            in[k] = (iw >= 0 && iw < W) ? __half22float2(row[(long long)iw * C2]) : make_float2(0.f, 0.f);
        }
#pragma unroll
        for (int kw = 0; kw < 3; kw++) {
            float2 wk = __half22float2(w[(kh * 3 + kw) * C2 + c]);
#pragma unroll
            for (int k = 0; k < 4; k++) {
                acc[k].x += in[k + kw].x * wk.x;
                acc[k].y += in[k + kw].y * wk.y;
            }
        }
    }
#pragma unroll
    for (int k = 0; k < 4; k++) {
        int ow = w0 + k;
        if (ow < W)
            y[(((long long)n * H + h) * W + ow) * C2 + c] =
                __floats2half2_rn(mtk_act_h(acc[k].x, act), mtk_act_h(acc[k].y, act));
    }
}

// 3x3 stride 1 pad 1, 8 FP16 channels (16-byte loads) x 4 outputs along W a thread.
__global__ void k_dw3x3_h8(const uint4 *x, uint4 *y, const uint4 *w, const uint4 *b, int N, int H, int W, int C8,
                           int act) {
    MTK_PDL_WAIT();
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    int WB = (W + 3) / 4;
    unsigned total = (unsigned)N * H * WB * C8;
    if (i >= total) return;
    int c = (int)(i % C8);
    unsigned t = i / C8;
    int wb = (int)(t % WB);
    t /= WB;
    int h = (int)(t % H), n = (int)(t / H);
    int w0 = wb * 4;
    float acc[4][8];
    float bb[8];
    if (b) {
        uint4 bq = b[c];
        const __half2 *hb = (const __half2 *)&bq;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float2 f = __half22float2(hb[k]);
            bb[2 * k] = f.x;
            bb[2 * k + 1] = f.y;
        }
    } else {
#pragma unroll
        for (int k = 0; k < 8; k++) bb[k] = 0.f;
    }
#pragma unroll
    for (int o = 0; o < 4; o++)
#pragma unroll
        for (int k = 0; k < 8; k++) acc[o][k] = bb[k];
#pragma unroll
    for (int kh = 0; kh < 3; kh++) {
        int ih = h - 1 + kh;
        if (ih < 0 || ih >= H) continue;
        const uint4 *row = x + ((unsigned)n * H + ih) * (unsigned)W * C8 + c;
        float wk[3][8];
#pragma unroll
        for (int kw = 0; kw < 3; kw++) {
            uint4 wq = w[(kh * 3 + kw) * C8 + c];
            const __half2 *hw = (const __half2 *)&wq;
#pragma unroll
            for (int k = 0; k < 4; k++) {
                float2 f = __half22float2(hw[k]);
                wk[kw][2 * k] = f.x;
                wk[kw][2 * k + 1] = f.y;
            }
        }
#pragma unroll
        for (int e = 0; e < 6; e++) {
            int iw = w0 - 1 + e;
            if (iw < 0 || iw >= W) continue;
            uint4 q = row[(unsigned)iw * C8];
            const __half2 *hq = (const __half2 *)&q;
            float in[8];
#pragma unroll
            for (int k = 0; k < 4; k++) {
                float2 f = __half22float2(hq[k]);
                in[2 * k] = f.x;
                in[2 * k + 1] = f.y;
            }
#pragma unroll
            for (int o = 0; o < 4; o++) {
                int kw = e - o;
                if (kw >= 0 && kw < 3)
#pragma unroll
                    for (int k = 0; k < 8; k++) acc[o][k] += in[k] * wk[kw][k];
            }
        }
    }
#pragma unroll
    for (int o = 0; o < 4; o++) {
        int ow = w0 + o;
        if (ow >= W) continue;
        uint4 r;
        __half2 *hr = (__half2 *)&r;
#pragma unroll
        for (int k = 0; k < 4; k++) hr[k] = __floats2half2_rn(mtk_act_h(acc[o][2 * k], act), mtk_act_h(acc[o][2 * k + 1], act));
        y[(((unsigned)n * H + h) * (unsigned)W + ow) * C8 + c] = r;
    }
}

// ------------------------------------------------------------ direct conv
template <typename T>
__global__ void k_conv_direct(const T *x, T *y, const T *w, const T *b, int N, int H, int W, int C, int OH, int OW,
                              int CO, int KH, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int groups,
                              int act, int ldy) {
    MTK_PDL_WAIT();
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned total = (unsigned)N * OH * OW * CO;
    if (i >= total) return;
    int co = (int)(i % CO);
    unsigned t = i / CO;
    int ow = (int)(t % OW); t /= OW;
    int oh = (int)(t % OH);
    int n = (int)(t / OH);
    int cig = C / groups, cog = CO / groups, g = co / cog;
    float acc = b ? (float)b[co] : 0.f;
    for (int kh = 0; kh < KH; kh++) {
        int ih = oh * sh - ph + kh * dh;
        if (ih < 0 || ih >= H) continue;
        for (int kw = 0; kw < KW; kw++) {
            int iw = ow * sw - pw + kw * dw;
            if (iw < 0 || iw >= W) continue;
            const T *xp = x + (((long long)n * H + ih) * W + iw) * C + g * cig;
            const T *wp = w + (((long long)co * KH + kh) * KW + kw) * cig;
            for (int ci = 0; ci < cig; ci++) acc += (float)xp[ci] * (float)wp[ci];
        }
    }
    y[(size_t)(i / CO) * ldy + co] = (T)mtk_act(acc, act);
}

// Table-driven im2col from any strided [N,C,H,W] view (NHWC or NCHW, FP32 or
// FP16) to a row-major [pixels, Kp] matrix: per block a run of pixels, the
// (kh, kw, c) of each column and the base of each pixel in shared memory,
// writes fully coalesced.  VEC: uint4 = 8 FP16 channels a column unit.
template <typename TI, typename TO>
__device__ __forceinline__ TO cvt(TI v) { return (TO)(float)v; }
template <> __device__ __forceinline__ uint4 cvt<uint4, uint4>(uint4 v) { return v; }
template <> __device__ __forceinline__ __half cvt<float, __half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __half cvt<__half, __half>(__half v) { return v; }
template <> __device__ __forceinline__ float cvt<float, float>(float v) { return v; }
template <typename T> __device__ __forceinline__ T zero_of() { return (T)0.f; }
template <> __device__ __forceinline__ uint4 zero_of<uint4>() { return make_uint4(0, 0, 0, 0); }
template <> __device__ __forceinline__ __half zero_of<__half>() { return __float2half_rn(0.f); }

template <typename TI, typename TO>
__global__ void k_im2col_tab(const TI *x, int xs0, int xs1, int xs2, int xs3, TO *y, int M, int H, int W, int C,
                             int OH, int OW, int KH, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int K,
                             int Kp, int ppb) {
    MTK_PDL_WAIT();
    extern __shared__ int4 tab[]; /* Kp column entries, then ppb pixel entries */
    int4 *pixt = tab + Kp;
    for (int j = threadIdx.x; j < Kp; j += blockDim.x) {
        if (j < K) {
            int c = j % C, t = j / C;
            int kw = t % KW, kh = t / KW;
            tab[j] = make_int4(kh * dh, kw * dw, c * xs1, 1);
        } else tab[j] = make_int4(0, 0, 0, 0);
    }
    int pix0 = blockIdx.x * ppb;
    for (int q = threadIdx.x; q < ppb; q += blockDim.x) {
        int pix = pix0 + q;
        int ow = pix % OW, r = pix / OW;
        int oh = r % OH, n = r / OH;
        pixt[q] = make_int4(n * xs0, oh * sh - ph, ow * sw - pw, pix < M);
    }
    __syncthreads();
    int npix = min(ppb, M - pix0);
    int tot = npix * Kp;
    TO *yb = y + (long long)pix0 * Kp;
    for (int e = threadIdx.x; e < tot; e += blockDim.x) {
        int q = e / Kp, j = e - q * Kp;
        int4 pt = pixt[q], ct = tab[j];
        int ih = pt.y + ct.x, iw = pt.z + ct.y;
        TO v = zero_of<TO>();
        if (ct.w && ih >= 0 && ih < H && iw >= 0 && iw < W) v = cvt<TI, TO>(x[pt.x + ih * xs2 + iw * xs3 + ct.z]);
        yb[e] = v;
    }
}

// ---------------------------------------------------------------- im2col
// NHWC x -> rows (n, oh, ow) x cols (kh, kw, c) padded to Kp with zeros; vec: 8 channels a thread.
template <typename V>
__global__ void k_im2col(const V *x, V *y, int N, int H, int W, int C, int OH, int OW, int KH, int KW, int sh, int sw,
                         int ph, int pw, int dh, int dw, int K, int Kp) {
    MTK_PDL_WAIT();
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned total = (unsigned)N * OH * OW * Kp;
    if (i >= total) return;
    int col = (int)(i % Kp);
    unsigned row = i / Kp;
    V v;
    memset(&v, 0, sizeof v);
    if (col < K) {
        int c = col % C, t = col / C;
        int kw = t % KW, kh = t / KW;
        int ow = (int)(row % OW), r2 = (int)(row / OW);
        int oh = r2 % OH, n = r2 / OH;
        int ih = oh * sh - ph + kh * dh, iw = ow * sw - pw + kw * dw;
        if (ih >= 0 && ih < H && iw >= 0 && iw < W) v = x[(((unsigned)n * H + ih) * W + iw) * C + c];
    }
    y[i] = v;
}

}  // namespace

extern "C" {

cudaError_t mtk_dwconv(cudaStream_t s, const void *x, void *y, const void *w, const void *b, int N, int H, int W,
                       int C, int OH, int OW, int KH, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int act,
                       int f16) {
    if (f16 && KH == 3 && KW == 3 && sh == 1 && sw == 1 && ph == 1 && pw == 1 && dh == 1 && dw == 1 && C % 2 == 0 &&
        OH == H && OW == W && ((uintptr_t)x % 4) == 0 && ((uintptr_t)y % 4) == 0) {
        if (C % 8 == 0 && ((uintptr_t)x | (uintptr_t)y | (uintptr_t)w | (uintptr_t)(b ? b : w)) % 16 == 0) {
            long long t8 = (long long)N * H * ((W + 3) / 4) * (C / 8);
            mtk_launch(k_dw3x3_h8, blocks_for(t8, 128), 128, 0, s, (const uint4 *)x, (uint4 *)y, (const uint4 *)w, (const uint4 *)b,
                                                           N, H, W, C / 8, act);
            return cudaGetLastError();
        }
        long long total = (long long)N * H * ((W + 3) / 4) * (C / 2);
        mtk_launch(k_dw3x3_h2, blocks_for(total, 256), 256, 0, s, (const __half2 *)x, (__half2 *)y, (const __half2 *)w,
                                                           (const __half2 *)b, N, H, W, C / 2, act);
        return cudaGetLastError();
    }
    long long total = (long long)N * OH * OW * C;
    if (f16)
        mtk_launch(k_dwconv<__half>, blocks_for(total, 256), 256, 0, s, (const __half *)x, (__half *)y, (const __half *)w,
                                                                 (const __half *)b, N, H, W, C, OH, OW, KH, KW, sh,
                                                                 sw, ph, pw, dh, dw, act);
    else
        mtk_launch(k_dwconv<float>, blocks_for(total, 256), 256, 0, s, (const float *)x, (float *)y, (const float *)w,
                                                                (const float *)b, N, H, W, C, OH, OW, KH, KW, sh, sw,
                                                                ph, pw, dh, dw, act);
    return cudaGetLastError();
}

cudaError_t mtk_conv_direct(cudaStream_t s, const void *x, void *y, const void *w, const void *b, int N, int H, int W,
                            int C, int OH, int OW, int CO, int KH, int KW, int sh, int sw, int ph, int pw, int dh,
                            int dw, int groups, int act, int f16) {
    return mtk_conv_direct_ld(s, x, y, w, b, N, H, W, C, OH, OW, CO, KH, KW, sh, sw, ph, pw, dh, dw, groups, act, f16, CO);
}

cudaError_t mtk_conv_direct_ld(cudaStream_t s, const void *x, void *y, const void *w, const void *b, int N, int H, int W,
                               int C, int OH, int OW, int CO, int KH, int KW, int sh, int sw, int ph, int pw, int dh,
                               int dw, int groups, int act, int f16, int ldy) {
    long long total = (long long)N * OH * OW * CO;
    if (!total) return cudaSuccess;
    if (f16)
        mtk_launch(k_conv_direct<__half>, blocks_for(total, 128), 128, 0, s, 
            (const __half *)x, (__half *)y, (const __half *)w, (const __half *)b, N, H, W, C, OH, OW, CO, KH, KW, sh,
            sw, ph, pw, dh, dw, groups, act, ldy);
    else
        mtk_launch(k_conv_direct<float>, blocks_for(total, 128), 128, 0, s, (const float *)x, (float *)y, (const float *)w,
                                                                     (const float *)b, N, H, W, C, OH, OW, CO, KH, KW,
                                                                     sh, sw, ph, pw, dh, dw, groups, act, ldy);
    return cudaGetLastError();
}

cudaError_t mtk_im2col_view(cudaStream_t s, const void *x, const int64_t xs[4], int xf16, void *y, int yf16, int N,
                            int H, int W, int C, int OH, int OW, int KH, int KW, int sh, int sw, int ph, int pw, int dh,
                            int dw, int Kp) {
    int M = N * OH * OW, K = KH * KW * C;
    if (!M) return cudaSuccess;
    int vec = xf16 && yf16 && C % 8 == 0 && Kp % 8 == 0 && xs[1] == 1 && xs[0] % 8 == 0 && xs[2] % 8 == 0 &&
              xs[3] % 8 == 0 && (uintptr_t)x % 16 == 0 && (uintptr_t)y % 16 == 0;
    int unit = vec ? 8 : 1;
    int Ku = K / unit, Kpu = Kp / unit;
    if (Kpu > 2048) return cudaErrorInvalidValue;
    int ppb = 4096 / Kpu;
    if (ppb < 1) ppb = 1;
    if (ppb > 512) ppb = 512;
    size_t smem = sizeof(int4) * (Kpu + ppb);
    unsigned grid = (unsigned)((M + ppb - 1) / ppb);
    int s0 = (int)(xs[0] / unit), s1 = (int)(vec ? 1 : xs[1]), s2 = (int)(xs[2] / unit), s3 = (int)(xs[3] / unit);
    int Cu = C / unit;
    if (vec)
        mtk_launch(k_im2col_tab<uint4, uint4>, grid, 256, smem, s, (const uint4 *)x, s0, s1, s2, s3, (uint4 *)y, M, H, W, Cu, OH,
                                                          OW, KH, KW, sh, sw, ph, pw, dh, dw, Ku, Kpu, ppb);
    else if (!xf16 && yf16)
        mtk_launch(k_im2col_tab<float, __half>, grid, 256, smem, s, (const float *)x, s0, s1, s2, s3, (__half *)y, M, H, W, Cu,
                                                            OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, Ku, Kpu, ppb);
    else if (xf16 && yf16)
        mtk_launch(k_im2col_tab<__half, __half>, grid, 256, smem, s, (const __half *)x, s0, s1, s2, s3, (__half *)y, M, H, W, Cu,
                                                             OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, Ku, Kpu, ppb);
    else if (!xf16 && !yf16)
        mtk_launch(k_im2col_tab<float, float>, grid, 256, smem, s, (const float *)x, s0, s1, s2, s3, (float *)y, M, H, W, Cu, OH,
                                                           OW, KH, KW, sh, sw, ph, pw, dh, dw, Ku, Kpu, ppb);
    else return cudaErrorInvalidValue;
    return cudaGetLastError();
}

cudaError_t mtk_im2col(cudaStream_t s, const void *x, void *y, int N, int H, int W, int C, int OH, int OW, int KH, int KW,
                       int sh, int sw, int ph, int pw, int dh, int dw, int Kp, int esize) {
    long long total = (long long)N * OH * OW * Kp;
    if (!total) return cudaSuccess;
    if (total >= (1ll << 31)) return cudaErrorInvalidValue;
    int K = KH * KW * C;
    if (esize == 2 && C % 8 == 0 && Kp % 8 == 0 && ((uintptr_t)x % 16) == 0 && ((uintptr_t)y % 16) == 0) {
        long long t8 = total / 8;
        mtk_launch(k_im2col<uint4>, blocks_for(t8, 256), 256, 0, s, (const uint4 *)x, (uint4 *)y, N, H, W, C / 8, OH, OW, KH, KW,
                                                            sh, sw, ph, pw, dh, dw, K / 8, Kp / 8);
    } else if (esize == 4 && C % 4 == 0 && Kp % 4 == 0 && ((uintptr_t)x % 16) == 0 && ((uintptr_t)y % 16) == 0) {
        long long t4 = total / 4;
        mtk_launch(k_im2col<uint4>, blocks_for(t4, 256), 256, 0, s, (const uint4 *)x, (uint4 *)y, N, H, W, C / 4, OH, OW, KH, KW,
                                                            sh, sw, ph, pw, dh, dw, K / 4, Kp / 4);
    } else if (esize == 2) {
        mtk_launch(k_im2col<uint16_t>, blocks_for(total, 256), 256, 0, s, (const uint16_t *)x, (uint16_t *)y, N, H, W, C, OH, OW,
                                                                  KH, KW, sh, sw, ph, pw, dh, dw, K, Kp);
    } else {
        mtk_launch(k_im2col<uint32_t>, blocks_for(total, 256), 256, 0, s, (const uint32_t *)x, (uint32_t *)y, N, H, W, C, OH, OW,
                                                                  KH, KW, sh, sw, ph, pw, dh, dw, K, Kp);
    }
    return cudaGetLastError();
}

}  // extern "C"
