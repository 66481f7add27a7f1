// LayerNorm (residual add, a second LayerNorm, the im2col matrix of the
// conv after it, or a small projection folded in) and Softmax.
// (C entry points in kernels.h; storage FP16 or FP32, arithmetic FP32.)
#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

#include "concat.cuh"
#include "fastmath.cuh"
#include "kernels.h"
#include "kernels_common.cuh"
#include "launch.cuh"
#include "qkernels.h"
#include "qquant.cuh"

namespace {

// ------------------------------------------------------------ layernorm
// One warp per row; C <= 32 * 32.
template <typename T, int PER>
__global__ void k_layernorm(const T *x, const T *res, T *sum, T *y, const T *g, const T *b, int64_t rows, int C,
                            float eps) {
    MTK_PDL_WAIT();
    int64_t row = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const T *xr = x + row * C;
    float v[PER];
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < PER; k++) {
        int c = lane + 32 * k;
        float t = 0.f;
        if (c < C) {
            t = (float)xr[c];
            if (res) t += (float)res[row * C + c];
        }
        v[k] = t;
        s += t;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    float mean = s / C;
    float q = 0.f;
#pragma unroll
    for (int k = 0; k < PER; k++) {
        int c = lane + 32 * k;
        float d = c < C ? v[k] - mean : 0.f;
        q += d * d;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) q += __shfl_xor_sync(0xffffffffu, q, o);
    float rstd = rsqrtf(q / C + eps);
#pragma unroll
    for (int k = 0; k < PER; k++) {
        int c = lane + 32 * k;
        if (c < C) {
            if (sum) sum[row * C + c] = (T)v[k];
            y[row * C + c] = (T)((v[k] - mean) * rstd * (float)g[c] + (b ? (float)b[c] : 0.f));
        }
    }
}

// The im2col matrix of a convolution over the LayerNorm output, written by
// the LayerNorm kernel itself (COL = true): the rows, read as an NHWC image
// [N, H, W, C], scattered to a row-major [N*OH*OW, Kp] matrix with columns
// (kh, kw, c), in units of 8 halves.  Saves the separate im2col launch and
// its re-read of the normalized tensor (SegFormer: the spatial-reduction and
// patch-embedding convs right after a LayerNorm).
struct LnCol {
    uint4 *col;
    int H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw;
    int K8, Kp8; // K = KH*KW*C and the padded row length, in uint4
};

__device__ __forceinline__ int floor_div(int a, int b) { return a >= 0 ? a / b : -((b - 1 - a) / b); }
__device__ __forceinline__ int ceil_div(int a, int b) { return -floor_div(-a, b); }
// dilation 1 everywhere but in atrous convs: skip the division then
__device__ __forceinline__ int floor_div_d(int a, int d) { return d == 1 ? a : floor_div(a, d); }
__device__ __forceinline__ int ceil_div_d(int a, int d) { return d == 1 ? a : ceil_div(a, d); }

// Writes the column-matrix entries owned by this thread's 8 channels (sub)
// of pixel pix.  Every entry (output pixel, tap) has one owner: the pixel its
// input position clamps to (clamp to [0, H-1] x [0, W-1]).  A tap inside the
// image gets the value, one outside gets zeros; and the owner of tap (KH-1,
// KW-1) of an output pixel also zeroes that row's columns K..Kp-1.  So the
// whole matrix is written (the arena buffer is never assumed zeroed), each
// element exactly once.  Per dimension the owned (o, k) pairs are those with
// o*s - p + k*d == h, plus, on the first / last row, the taps before / past
// the image; interior pixels own kernel/stride (rounded) taps a dimension.
__device__ __forceinline__ void ln_col_store(const LnCol &c, unsigned pix, int sub, int C8, uint4 v) {
    unsigned hw = (unsigned)c.H * (unsigned)c.W;
    unsigned n = pix / hw, r = pix - n * hw;
    int h = (int)(r / (unsigned)c.W), w = (int)r - h * c.W;
    bool h0 = h == 0, h1 = h == c.H - 1, w0 = w == 0, w1 = w == c.W - 1;
    int oh_lo = h0 ? 0 : max(0, ceil_div(h + c.ph - (c.KH - 1) * c.dh, c.sh));
    int oh_hi = min(c.OH - 1, h1 ? c.OH - 1 : floor_div(h + c.ph, c.sh));
    int ow_lo = w0 ? 0 : max(0, ceil_div(w + c.pw - (c.KW - 1) * c.dw, c.sw));
    int ow_hi = min(c.OW - 1, w1 ? c.OW - 1 : floor_div(w + c.pw, c.sw));
    const uint4 z = make_uint4(0, 0, 0, 0);
    for (int oh = oh_lo; oh <= oh_hi; oh++) {
        int bh = oh * c.sh - c.ph; // input row of tap 0
        int kh_lo = h0 ? 0 : max(0, ceil_div_d(h - bh, c.dh));
        int kh_hi = h1 ? c.KH - 1 : min(c.KH - 1, floor_div_d(h - bh, c.dh));
        for (int kh = kh_lo; kh <= kh_hi; kh++) {
            bool inh = bh + kh * c.dh == h;
            for (int ow = ow_lo; ow <= ow_hi; ow++) {
                int bw = ow * c.sw - c.pw;
                int kw_lo = w0 ? 0 : max(0, ceil_div_d(w - bw, c.dw));
                int kw_hi = w1 ? c.KW - 1 : min(c.KW - 1, floor_div_d(w - bw, c.dw));
                uint4 *dst = c.col + ((size_t)(n * c.OH + oh) * c.OW + ow) * c.Kp8;
                for (int kw = kw_lo; kw <= kw_hi; kw++) {
                    bool in = inh && bw + kw * c.dw == w;
                    dst[(kh * c.KW + kw) * C8 + sub] = in ? v : z;
                    if (kh == c.KH - 1 && kw == c.KW - 1)
                        for (int j = c.K8 + sub; j < c.Kp8; j += C8) dst[j] = z;
                }
            }
        }
    }
}

// The kernel's view of the column matrix ic (K = KH*KW*C of its columns).
LnCol ln_col_of(const mtk_ln_im2col *ic, int64_t K) {
    LnCol c;
    c.col = (uint4 *)ic->col;
    c.H = ic->H; c.W = ic->W; c.OH = ic->OH; c.OW = ic->OW;
    c.KH = ic->KH; c.KW = ic->KW; c.sh = ic->sh; c.sw = ic->sw;
    c.ph = ic->ph; c.pw = ic->pw; c.dh = ic->dh; c.dw = ic->dw;
    c.K8 = (int)(K / 8); c.Kp8 = ic->Kp / 8;
    return c;
}

// A second LayerNorm applied to the first one's (FP16-rounded) output, in
// the same pass: the encoder's patch embedding ends with a LayerNorm that the
// first block's LayerNorm follows at once (y2 = LN2(LN1(x)); both are kept,
// y1 feeds the residual).  One launch and one re-read of the rows less.
struct Ln2 {
    uint4 *y;
    const uint4 *g, *b;
    float eps;
};

// An int8 copy of the (FP16-rounded) output for the INT8 convolutions that
// read it (fuse_qln.c): q[row * C8 + sub] holds the codes of the lane's 8
// channels, quantize(y, s) by q_quant8, the quantize pass's own function,
// so the bytes are the ones that pass would make of the stored y.  q NULL:
// none (every other use of the kernel).
struct LnQ8 {
    uint2 *q;
    float s;
};

// 8 FP16 values (16 bytes) to floats and back (round to nearest).
__device__ __forceinline__ void h8_to_f(uint4 q, float *v) {
    const __half2 *h = (const __half2 *)&q;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        float2 f = __half22float2(h[k]);
        v[2 * k] = f.x;
        v[2 * k + 1] = f.y;
    }
}
__device__ __forceinline__ uint4 f_to_h8(const float *v) {
    uint4 q;
    __half2 *h = (__half2 *)&q;
#pragma unroll
    for (int k = 0; k < 4; k++) h[k] = __floats2half2_rn(v[2 * k], v[2 * k + 1]);
    return q;
}

// Mean and 1 / std of a row held by the L lanes of its group, 8 values a
// lane (lanes with !ok hold none and add nothing, but take part in the
// shuffles); two-pass variance, the same order in every LayerNorm kernel.
template <int L>
__device__ __forceinline__ void ln_stats(const float *v, bool ok, int C8, float eps, float &mean, float &rstd) {
    float s = 0.f;
    if (ok)
#pragma unroll
        for (int k = 0; k < 8; k++) s += v[k];
#pragma unroll
    for (int o = L / 2; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o, L);
    mean = s / (8 * C8);
    float q = 0.f;
    if (ok)
#pragma unroll
        for (int k = 0; k < 8; k++) q += (v[k] - mean) * (v[k] - mean);
#pragma unroll
    for (int o = L / 2; o > 0; o >>= 1) q += __shfl_xor_sync(0xffffffffu, q, o, L);
    rstd = rsqrtf(q / (8 * C8) + eps);
}

// (v - mean) * rstd * gamma + beta for this lane's 8 channels (beta may be NULL), FP16.
__device__ __forceinline__ uint4 ln_affine(const float *v, float mean, float rstd, const uint4 *g, const uint4 *b, int sub) {
    uint4 gg = g[sub], bb = b ? b[sub] : make_uint4(0, 0, 0, 0), o;
    const __half2 *hg = (const __half2 *)&gg, *hb = (const __half2 *)&bb;
    __half2 *ho = (__half2 *)&o;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        float2 gf = __half22float2(hg[k]), bf = __half22float2(hb[k]);
        ho[k] = __floats2half2_rn((v[2 * k] - mean) * rstd * gf.x + bf.x, (v[2 * k + 1] - mean) * rstd * gf.y + bf.y);
    }
    return o;
}

// FP16 rows of C = 8 * C8 elements (C8 <= 32): L lanes a row (L a power of
// two >= C8), 16-byte loads and stores; COL: also the im2col matrix (LnCol)
// of the last output; LN2: also a second LayerNorm of the output (Ln2).
template <int L, bool COL, bool LN2>
__global__ void k_layernorm_v(const uint4 *x, const uint4 *res, uint4 *sum, uint4 *y, const uint4 *g, const uint4 *b,
                              int64_t rows, int C8, float eps, LnCol cg, Ln2 l2, LnQ8 q8) {
    MTK_PDL_WAIT();
    constexpr int R = 32 / L;
    int lane = threadIdx.x & 31, sub = lane % L;
    int64_t row = ((int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32) * R + lane / L;
    bool ok = row < rows && sub < C8;
    float v[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    if (ok) {
        h8_to_f(x[row * C8 + sub], v);
        if (res) {
            float r[8];
            h8_to_f(res[row * C8 + sub], r);
#pragma unroll
            for (int k = 0; k < 8; k++) v[k] += r[k];
        }
    }
    float mean, rstd;
    ln_stats<L>(v, ok, C8, eps, mean, rstd);
    if (!LN2 && !ok) return;
    uint4 o = make_uint4(0, 0, 0, 0);
    if (ok) {
        if (sum) sum[row * C8 + sub] = f_to_h8(v);
        o = ln_affine(v, mean, rstd, g, b, sub);
        y[row * C8 + sub] = o;
        if (q8.q) q8.q[row * C8 + sub] = q_quant8(o, q8.s, q_div(1.0f, q8.s));
    }
    if (LN2) {
        // the second LayerNorm reads the stored (FP16) values, as the unfused
        // kernel would; every lane takes part in the reductions
        h8_to_f(o, v);
        ln_stats<L>(v, ok, C8, l2.eps, mean, rstd);
        if (!ok) return;
        o = ln_affine(v, mean, rstd, l2.g, l2.b, sub);
        l2.y[row * C8 + sub] = o;
    }
    if (COL) ln_col_store(cg, (unsigned)row, sub, C8, o);
}

// LayerNorm of x + r where r = a W + bias is a small projection (K <= 256)
// computed here, row by row: each lane of a row's group projects the whole
// input row onto its 8 channels (8 K FMAs, W rows as 16-byte loads that
// L1 serves to every row), rounds to FP16 as a separate GEMM would store it,
// and goes on as k_layernorm_v.  Replaces a GEMM launch whose output (the
// attention's output projection) only this LayerNorm reads.
template <int L>
__global__ void k_layernorm_proj(const uint4 *x, uint4 *sum, uint4 *y, const uint4 *g, const uint4 *b, int64_t rows,
                                 int C8, float eps, const __half *a, int lda, const uint4 *w, const __half *pb, int cin) {
    MTK_PDL_WAIT();
    constexpr int R = 32 / L;
    int lane = threadIdx.x & 31, sub = lane % L;
    int64_t row = ((int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32) * R + lane / L;
    bool ok = row < rows && sub < C8;
    float v[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    if (ok) {
        h8_to_f(x[row * C8 + sub], v);
        float acc[8];
#pragma unroll
        for (int j = 0; j < 8; j++) acc[j] = pb ? __half2float(pb[sub * 8 + j]) : 0.f;
        const uint4 *ar = (const uint4 *)(a + row * (int64_t)lda);
        for (int k8 = 0; k8 < cin / 8; k8++) {
            float av[8];
            h8_to_f(ar[k8], av);
#pragma unroll
            for (int e = 0; e < 8; e++) {
                float wf[8];
                h8_to_f(w[(int64_t)(k8 * 8 + e) * C8 + sub], wf);
#pragma unroll
                for (int j = 0; j < 8; j++) acc[j] = fmaf(av[e], wf[j], acc[j]);
            }
        }
#pragma unroll
        for (int j = 0; j < 8; j++) v[j] += __half2float(__float2half_rn(acc[j]));
    }
    float mean, rstd;
    ln_stats<L>(v, ok, C8, eps, mean, rstd);
    if (!ok) return;
    if (sum) sum[row * C8 + sub] = f_to_h8(v);
    y[row * C8 + sub] = ln_affine(v, mean, rstd, g, b, sub);
}

// Block per row for long rows.
template <typename T>
__global__ void k_layernorm_long(const T *x, const T *res, T *sum, T *y, const T *g, const T *b, int C, float eps) {
    MTK_PDL_WAIT();
    int64_t row = blockIdx.x;
    const T *xr = x + row * C;
    __shared__ float red[64];
    float s = 0.f, q = 0.f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float t = (float)xr[c] + (res ? (float)res[row * C + c] : 0.f);
        s += t;
        q += t * t;
    }
    for (int o = 16; o > 0; o >>= 1) {
        s += __shfl_xor_sync(0xffffffffu, s, o);
        q += __shfl_xor_sync(0xffffffffu, q, o);
    }
    int w = threadIdx.x / 32, nw = blockDim.x / 32;
    if ((threadIdx.x & 31) == 0) { red[w] = s; red[32 + w] = q; }
    __syncthreads();
    s = 0.f; q = 0.f;
    for (int i = 0; i < nw; i++) { s += red[i]; q += red[32 + i]; }
    float mean = s / C;
    float var = fmaxf(q / C - mean * mean, 0.f);
    float rstd = rsqrtf(var + eps);
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float t = (float)xr[c] + (res ? (float)res[row * C + c] : 0.f);
        if (sum) sum[row * C + c] = (T)t;
        y[row * C + c] = (T)((t - mean) * rstd * (float)g[c] + (b ? (float)b[c] : 0.f));
    }
}

template <typename T>
cudaError_t layernorm_t(cudaStream_t s, const void *x, const void *res, void *sum, void *y, const void *g,
                        const void *b, int64_t rows, int C, float eps) {
    const T *X = (const T *)x, *R = (const T *)res, *G = (const T *)g, *B = (const T *)b;
    T *S = (T *)sum, *Y = (T *)y;
    unsigned grid = blocks_for(rows, 8);
    if (C <= 32) mtk_launch(k_layernorm<T, 1>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C, eps);
    else if (C <= 64) mtk_launch(k_layernorm<T, 2>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C, eps);
    else if (C <= 128) mtk_launch(k_layernorm<T, 4>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C, eps);
    else if (C <= 256) mtk_launch(k_layernorm<T, 8>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C, eps);
    else if (C <= 512) mtk_launch(k_layernorm<T, 16>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C, eps);
    else mtk_launch(k_layernorm_long<T>, (unsigned)rows, 256, 0, s, X, R, S, Y, G, B, C, eps);
    return cudaGetLastError();
}

// the vectorized kernel applies (FP16, 16-byte aligned, C = 8k <= 256)
int layernorm_v_ok(const void *x, const void *res, const void *sum, const void *y, const void *gamma, const void *beta,
                   int C, int f16) {
    int al = ((uintptr_t)x | (uintptr_t)y | (uintptr_t)gamma | (uintptr_t)(res ? res : x) | (uintptr_t)(sum ? sum : y) |
              (uintptr_t)(beta ? beta : gamma)) % 16 == 0;
    return f16 && al && C % 8 == 0 && C <= 256;
}

template <bool COL, bool LN2 = false>
void layernorm_v_launch(cudaStream_t s, const void *x, const void *res, void *sum, void *y, const void *gamma,
                        const void *beta, int64_t rows, int C, float eps, const LnCol &cg, const Ln2 &l2 = Ln2{},
                        const LnQ8 &q8 = LnQ8{}) {
    int C8 = C / 8;
    const uint4 *X = (const uint4 *)x, *R = (const uint4 *)res, *G = (const uint4 *)gamma, *B = (const uint4 *)beta;
    uint4 *S = (uint4 *)sum, *Y = (uint4 *)y;
    int L = C8 <= 1 ? 1 : C8 <= 2 ? 2 : C8 <= 4 ? 4 : C8 <= 8 ? 8 : C8 <= 16 ? 16 : 32;
    int64_t rows_per_block = 8 * (32 / L);
    unsigned grid = (unsigned)((rows + rows_per_block - 1) / rows_per_block);
    switch (L) {
    case 1: mtk_launch(k_layernorm_v<1, COL, LN2>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C8, eps, cg, l2, q8); break;
    case 2: mtk_launch(k_layernorm_v<2, COL, LN2>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C8, eps, cg, l2, q8); break;
    case 4: mtk_launch(k_layernorm_v<4, COL, LN2>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C8, eps, cg, l2, q8); break;
    case 8: mtk_launch(k_layernorm_v<8, COL, LN2>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C8, eps, cg, l2, q8); break;
    case 16: mtk_launch(k_layernorm_v<16, COL, LN2>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C8, eps, cg, l2, q8); break;
    default: mtk_launch(k_layernorm_v<32, COL, LN2>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C8, eps, cg, l2, q8); break;
    }
}

// -------------------------------------------------------------- softmax
template <typename T>
__global__ void k_softmax(const T *x, T *y, int64_t rows, int C) {
    MTK_PDL_WAIT();
    int64_t row = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const T *xr = x + row * C;
    T *yr = y + row * C;
    float m = -INFINITY;
    for (int c = lane; c < C; c += 32) m = fmaxf(m, (float)xr[c]);
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    float s = 0.f;
    for (int c = lane; c < C; c += 32) s += __expf((float)xr[c] - m);
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    float inv = 1.f / s;
    for (int c = lane; c < C; c += 32) yr[c] = (T)(__expf((float)xr[c] - m) * inv);
}

}  // namespace

extern "C" {

cudaError_t mtk_layernorm(cudaStream_t s, const void *x, const void *res, void *sum, void *y, const void *gamma,
                          const void *beta, int64_t rows, int C, float eps, int f16) {
    if (rows == 0) return cudaSuccess;
    if (layernorm_v_ok(x, res, sum, y, gamma, beta, C, f16)) {
        LnCol none;
        memset(&none, 0, sizeof none);
        layernorm_v_launch<false>(s, x, res, sum, y, gamma, beta, rows, C, eps, none);
        return cudaGetLastError();
    }
    return f16 ? layernorm_t<__half>(s, x, res, sum, y, gamma, beta, rows, C, eps)
               : layernorm_t<float>(s, x, res, sum, y, gamma, beta, rows, C, eps);
}

cudaError_t mtk_layernorm_im2col(cudaStream_t s, const void *x, const void *res, void *sum, void *y, const void *gamma,
                                 const void *beta, int64_t rows, int C, float eps, int f16, const mtk_ln_im2col *ic) {
    int64_t K = (int64_t)ic->KH * ic->KW * C, M = (int64_t)ic->N * ic->OH * ic->OW;
    if ((int64_t)ic->N * ic->H * ic->W != rows || ic->Kp < K || ic->H < 1 || ic->W < 1 || ic->sh < 1 || ic->sw < 1 ||
        ic->dh < 1 || ic->dw < 1)
        return cudaErrorInvalidValue;
    if (rows == 0 || M == 0) return mtk_layernorm(s, x, res, sum, y, gamma, beta, rows, C, eps, f16);
    if (layernorm_v_ok(x, res, sum, y, gamma, beta, C, f16) && ic->Kp % 8 == 0 && (uintptr_t)ic->col % 16 == 0 &&
        rows < (1ll << 31) && M < (1ll << 31)) { /* 32-bit pixel indices in the kernel */
        const LnCol cg = ln_col_of(ic, K);
        layernorm_v_launch<true>(s, x, res, sum, y, gamma, beta, rows, C, eps, cg);
        return cudaGetLastError();
    }
    /* other layouts / FP32: the two kernels */
    cudaError_t e = mtk_layernorm(s, x, res, sum, y, gamma, beta, rows, C, eps, f16);
    if (e != cudaSuccess) return e;
    int64_t xs[4] = {(int64_t)ic->H * ic->W * C, 1, (int64_t)ic->W * C, C};
    return mtk_im2col_view(s, y, xs, f16, ic->col, f16, ic->N, ic->H, ic->W, C, ic->OH, ic->OW, ic->KH, ic->KW, ic->sh,
                           ic->sw, ic->ph, ic->pw, ic->dh, ic->dw, ic->Kp);
}

cudaError_t mtk_layernorm_pair(cudaStream_t s, const void *x, const void *res, void *sum, void *y, const void *gamma,
                               const void *beta, int64_t rows, int C, float eps, int f16, const mtk_ln_second *second,
                               const mtk_ln_im2col *ic) {
    int64_t K = ic ? (int64_t)ic->KH * ic->KW * C : 0, M = ic ? (int64_t)ic->N * ic->OH * ic->OW : 0;
    int vec = layernorm_v_ok(x, res, sum, y, gamma, beta, C, f16) &&
              layernorm_v_ok(y, NULL, NULL, second->y, second->gamma, second->beta, C, f16) && rows > 0 && rows < (1ll << 31);
    if (ic)
        vec = vec && (int64_t)ic->N * ic->H * ic->W == rows && ic->Kp >= K && ic->Kp % 8 == 0 && (uintptr_t)ic->col % 16 == 0 &&
              M > 0 && M < (1ll << 31) && ic->H > 0 && ic->W > 0 && ic->sh > 0 && ic->sw > 0 && ic->dh > 0 && ic->dw > 0;
    if (!vec) { /* other layouts / FP32: the unfused kernels */
        cudaError_t e = mtk_layernorm(s, x, res, sum, y, gamma, beta, rows, C, eps, f16);
        if (e != cudaSuccess) return e;
        return ic ? mtk_layernorm_im2col(s, y, NULL, NULL, second->y, second->gamma, second->beta, rows, C, second->eps, f16, ic)
                  : mtk_layernorm(s, y, NULL, NULL, second->y, second->gamma, second->beta, rows, C, second->eps, f16);
    }
    Ln2 l2 = {(uint4 *)second->y, (const uint4 *)second->gamma, (const uint4 *)second->beta, second->eps};
    LnCol cg;
    memset(&cg, 0, sizeof cg);
    if (ic) {
        cg = ln_col_of(ic, K);
        layernorm_v_launch<true, true>(s, x, res, sum, y, gamma, beta, rows, C, eps, cg, l2);
    } else {
        layernorm_v_launch<false, true>(s, x, res, sum, y, gamma, beta, rows, C, eps, cg, l2);
    }
    return cudaGetLastError();
}

cudaError_t mtk_layernorm_q8(cudaStream_t s, const void *x, const void *res, void *sum, void *y, const void *gamma,
                             const void *beta, int64_t rows, int C, float eps, int f16, const mtk_ln_im2col *ic, int8_t *q,
                             float scale) {
    if (!q || !(scale > 0.0f)) return cudaErrorInvalidValue;
    if (rows == 0) return cudaSuccess;
    int vec = layernorm_v_ok(x, res, sum, y, gamma, beta, C, f16) && (uintptr_t)q % 8 == 0;
    LnCol cg;
    memset(&cg, 0, sizeof cg);
    if (ic) {
        int64_t K = (int64_t)ic->KH * ic->KW * C, M = (int64_t)ic->N * ic->OH * ic->OW;
        if ((int64_t)ic->N * ic->H * ic->W != rows || ic->Kp < K || ic->H < 1 || ic->W < 1 || ic->sh < 1 || ic->sw < 1 ||
            ic->dh < 1 || ic->dw < 1)
            return cudaErrorInvalidValue;
        vec = vec && M > 0 && ic->Kp % 8 == 0 && (uintptr_t)ic->col % 16 == 0 && rows < (1ll << 31) && M < (1ll << 31);
        cg = ln_col_of(ic, K);
    }
    if (!vec) { /* other layouts / FP32: the LayerNorm, then the quantize pass over its output */
        if (rows > INT32_MAX) return cudaErrorInvalidValue;
        cudaError_t e = ic ? mtk_layernorm_im2col(s, x, res, sum, y, gamma, beta, rows, C, eps, f16, ic)
                           : mtk_layernorm(s, x, res, sum, y, gamma, beta, rows, C, eps, f16);
        if (e != cudaSuccess) return e;
        const int64_t ys[4] = {rows * C, 1, C, C}; /* rows as the H of one image of width 1 */
        return mtk_qconv_quantize(s, y, ys, f16, q, 1, C, (int)rows, 1, C, scale);
    }
    const LnQ8 q8 = {(uint2 *)q, scale};
    if (ic) layernorm_v_launch<true>(s, x, res, sum, y, gamma, beta, rows, C, eps, cg, Ln2{}, q8);
    else layernorm_v_launch<false>(s, x, res, sum, y, gamma, beta, rows, C, eps, cg, Ln2{}, q8);
    return cudaGetLastError();
}

cudaError_t mtk_layernorm_proj(cudaStream_t s, const void *x, void *sum, void *y, const void *gamma, const void *beta,
                               int64_t rows, int C, float eps, const void *a, int lda, const void *w, const void *bias, int cin) {
    if (!layernorm_v_ok(x, NULL, sum, y, gamma, beta, C, 1) || cin < 8 || cin % 8 || cin > 1024 || lda % 8 ||
        ((uintptr_t)a | (uintptr_t)w) % 16 || (bias && (uintptr_t)bias % 2))
        return cudaErrorInvalidValue;
    if (rows == 0) return cudaSuccess;
    const int C8 = C / 8;
    const int L = C8 <= 1 ? 1 : C8 <= 2 ? 2 : C8 <= 4 ? 4 : C8 <= 8 ? 8 : C8 <= 16 ? 16 : 32;
    const int64_t per_block = 8 * (32 / L);
    const unsigned grid = (unsigned)((rows + per_block - 1) / per_block);
    const uint4 *X = (const uint4 *)x, *G = (const uint4 *)gamma, *B = (const uint4 *)beta, *W = (const uint4 *)w;
    uint4 *S = (uint4 *)sum, *Y = (uint4 *)y;
    const __half *A = (const __half *)a, *PB = (const __half *)bias;
    switch (L) {
    case 1: mtk_launch(k_layernorm_proj<1>, grid, 256, 0, s, X, S, Y, G, B, rows, C8, eps, A, lda, W, PB, cin); break;
    case 2: mtk_launch(k_layernorm_proj<2>, grid, 256, 0, s, X, S, Y, G, B, rows, C8, eps, A, lda, W, PB, cin); break;
    case 4: mtk_launch(k_layernorm_proj<4>, grid, 256, 0, s, X, S, Y, G, B, rows, C8, eps, A, lda, W, PB, cin); break;
    case 8: mtk_launch(k_layernorm_proj<8>, grid, 256, 0, s, X, S, Y, G, B, rows, C8, eps, A, lda, W, PB, cin); break;
    case 16: mtk_launch(k_layernorm_proj<16>, grid, 256, 0, s, X, S, Y, G, B, rows, C8, eps, A, lda, W, PB, cin); break;
    default: mtk_launch(k_layernorm_proj<32>, grid, 256, 0, s, X, S, Y, G, B, rows, C8, eps, A, lda, W, PB, cin); break;
    }
    return cudaGetLastError();
}

cudaError_t mtk_softmax(cudaStream_t s, const void *x, void *y, int64_t rows, int C, int f16) {
    if (rows == 0) return cudaSuccess;
    if (f16) mtk_launch(k_softmax<__half>, blocks_for(rows, 8), 256, 0, s, (const __half *)x, (__half *)y, rows, C);
    else mtk_launch(k_softmax<float>, blocks_for(rows, 8), 256, 0, s, (const float *)x, (float *)y, rows, C);
    return cudaGetLastError();
}

}  // extern "C"
