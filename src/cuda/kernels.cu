// Generic and fused CUDA kernels of the mtmi GPU backend (C entry points in
// kernels.h).  Storage is FP16 or FP32; arithmetic is FP32.
#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

#include "concat.cuh"
#include "fastmath.cuh"
#include "kernels.h"
#include "launch.cuh"

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

// ---------------------------------------------------------- elementwise
struct EwArgs {
    void *out;
    mtk_prog prog;
    int nin;
    const void *in[MTK_MAX_IN];
    IView iv[MTK_MAX_IN];
    int mode[MTK_MAX_IN];  // 0 same layout as out (flat), 1 scalar, 2 strided
    IView ov;
    int out_flat;
};

__device__ __forceinline__ float ew_op(int op, float a, float b, float imm, float imm2) {
    switch (op) {
    case MTK_OP_ADD: return a + b;
    case MTK_OP_SUB: return a - b;
    case MTK_OP_MUL: return a * b;
    case MTK_OP_DIV: return a / b;
    case MTK_OP_POW: return (b == 2.f) ? a * a : powf(a, b);
    case MTK_OP_MAX: return fmaxf(a, b);
    case MTK_OP_MIN: return fminf(a, b);
    case MTK_OP_RELU: return a > 0.f ? a : 0.f;
    case MTK_OP_SIGMOID: return 1.f / (1.f + __expf(-a));
    case MTK_OP_ERF: return erff(a);
    case MTK_OP_TANH: return tanhf(a);
    case MTK_OP_EXP: return __expf(a);
    case MTK_OP_LOG: return __logf(a);
    case MTK_OP_SQRT: return sqrtf(a);
    case MTK_OP_NEG: return -a;
    case MTK_OP_ABS: return fabsf(a);
    case MTK_OP_RECIP: return 1.f / a;
    case MTK_OP_GELU: return 0.5f * a * (1.f + erff(a * 0.70710678118654752f));
    case MTK_OP_CLIP: return fminf(fmaxf(a, imm), imm2);
    case MTK_OP_LEAKY: return a >= 0.f ? a : a * imm;
    case MTK_OP_HSIGMOID: return fmaxf(0.f, fminf(1.f, imm * a + imm2));
    case MTK_OP_FLOOR: return floorf(a);
    case MTK_OP_CEIL: return ceilf(a);
    case MTK_OP_SIN: return sinf(a);
    case MTK_OP_COS: return cosf(a);
    case MTK_OP_COPY: return a;
    default: return a;
    }
}

// Runs the program for element i: loads, immediates and operations into
// registers, then the result into `out` at the output view's offset.
__device__ __forceinline__ void ew_eval(const EwArgs &A, void *out, int i, int f16) {
    float r[MTK_MAX_REG];
    const int ni = A.prog.n;
    for (int k = 0; k < ni; k++) {
        const mtk_instr in = A.prog.ins[k];
        float v;
        if (in.op == MTK_OP_LOAD) {
            int m = A.mode[in.a];
            long long o = m == 0 ? i : m == 1 ? 0 : offset_of(A.iv[in.a], i);
            v = ld(A.in[in.a], o, f16);
        } else if (in.op == MTK_OP_IMM) {
            v = in.imm;
        } else {
            v = ew_op(in.op, r[in.a & (MTK_MAX_REG - 1)], r[in.b & (MTK_MAX_REG - 1)], in.imm, in.imm2);
        }
        r[in.dst & (MTK_MAX_REG - 1)] = v;
    }
    long long oo = A.out_flat ? i : offset_of(A.ov, i);
    st(out, oo, r[A.prog.result & (MTK_MAX_REG - 1)], f16);
}

__global__ void k_elementwise(EwArgs A, void *out, int n, int f16) {
    MTK_PDL_WAIT();
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    ew_eval(A, out, i, f16);
}

// The same with the arguments in device memory, staged in shared memory per
// block: the program indexes its inputs at run time, and a run-time index
// into a kernel parameter struct would copy the struct to local memory.
__global__ void k_elementwise_d(const EwArgs *__restrict__ Ag, int n, int f16) {
    MTK_PDL_WAIT();
    __shared__ EwArgs A;
    {
        const int *src = (const int *)Ag;
        int *dst = (int *)&A;
        for (int k = threadIdx.x; k < (int)(sizeof(EwArgs) / sizeof(int)); k += blockDim.x) dst[k] = src[k];
    }
    __syncthreads();
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    ew_eval(A, A.out, i, f16);
}

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

// A second LayerNorm applied to the first one's (FP16-rounded) output, in
// the same pass: the encoder's patch embedding ends with a LayerNorm that the
// first block's LayerNorm follows at once (y2 = LN2(LN1(x)); both are kept,
// y1 feeds the residual).  One launch and one re-read of the rows less.
struct Ln2 {
    uint4 *y;
    const uint4 *g, *b;
    float eps;
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
                              int64_t rows, int C8, float eps, LnCol cg, Ln2 l2) {
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
                        const void *beta, int64_t rows, int C, float eps, const LnCol &cg, const Ln2 &l2 = Ln2{}) {
    int C8 = C / 8;
    const uint4 *X = (const uint4 *)x, *R = (const uint4 *)res, *G = (const uint4 *)gamma, *B = (const uint4 *)beta;
    uint4 *S = (uint4 *)sum, *Y = (uint4 *)y;
    int L = C8 <= 1 ? 1 : C8 <= 2 ? 2 : C8 <= 4 ? 4 : C8 <= 8 ? 8 : C8 <= 16 ? 16 : 32;
    int64_t rows_per_block = 8 * (32 / L);
    unsigned grid = (unsigned)((rows + rows_per_block - 1) / rows_per_block);
    switch (L) {
    case 1: mtk_launch(k_layernorm_v<1, COL, LN2>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C8, eps, cg, l2); break;
    case 2: mtk_launch(k_layernorm_v<2, COL, LN2>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C8, eps, cg, l2); break;
    case 4: mtk_launch(k_layernorm_v<4, COL, LN2>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C8, eps, cg, l2); break;
    case 8: mtk_launch(k_layernorm_v<8, COL, LN2>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C8, eps, cg, l2); break;
    case 16: mtk_launch(k_layernorm_v<16, COL, LN2>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C8, eps, cg, l2); break;
    default: mtk_launch(k_layernorm_v<32, COL, LN2>, grid, 256, 0, s, X, R, S, Y, G, B, rows, C8, eps, cg, l2); break;
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

// --------------------------------------------------------------- resize
__device__ __forceinline__ float src_coord(int o, float scale, int in_len, int out_len, int coord) {
    switch (coord) {
    case 1: return out_len > 1 ? (o + 0.5f) / scale - 0.5f : 0.f;
    case 2: return out_len > 1 ? o * (float)(in_len - 1) / (float)(out_len - 1) : 0.f;
    case 3: return o / scale;
    default: return (o + 0.5f) / scale - 0.5f;
    }
}

__device__ __forceinline__ int nearest_idx(float x, int mode, int len) {
    int i;
    switch (mode) {
    case 1: i = (x - floorf(x) == 0.5f) ? (int)ceilf(x) : (int)roundf(x); break;
    case 2: i = (int)floorf(x); break;
    case 3: i = (int)ceilf(x); break;
    default: i = (x - floorf(x) == 0.5f) ? (int)floorf(x) : (int)roundf(x); break;
    }
    return i < 0 ? 0 : i >= len ? len - 1 : i;
}

__global__ void k_resize(const void *x, int xs0, int xs1, int xs2, int xs3, void *y, int ys0, int ys1, int ys2,
                         int ys3, int N, int C, int IH, int IW, int OH, int OW, float sh, float sw, int mode, int coord,
                         int nmode, int c_inner, int f16, int of16) {
    MTK_PDL_WAIT();
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned total = (unsigned)N * C * OH * OW;
    if (i >= total) return;
    int n, c, oh, ow;
    if (c_inner) {
        c = (int)(i % C); unsigned t = i / C;
        ow = (int)(t % OW); t /= OW;
        oh = (int)(t % OH); n = (int)(t / OH);
    } else {
        ow = (int)(i % OW); unsigned t = i / OW;
        oh = (int)(t % OH); t /= OH;
        c = (int)(t % C); n = (int)(t / C);
    }
    const int base = n * xs0 + c * xs1;
    float fy = src_coord(oh, sh, IH, OH, coord), fx = src_coord(ow, sw, IW, OW, coord);
    float v;
    if (mode == 0) {
        int iy = nearest_idx(fy, nmode, IH), ix = nearest_idx(fx, nmode, IW);
        v = ld(x, base + iy * xs2 + ix * xs3, f16);
    } else {
        fy = fminf(fmaxf(fy, 0.f), (float)(IH - 1));
        fx = fminf(fmaxf(fx, 0.f), (float)(IW - 1));
        int y0 = (int)fy, x0 = (int)fx;
        int y1 = min(y0 + 1, IH - 1), x1 = min(x0 + 1, IW - 1);
        float ay = fy - y0, ax = fx - x0;
        float a = ld(x, base + y0 * xs2 + x0 * xs3, f16), b = ld(x, base + y0 * xs2 + x1 * xs3, f16);
        float c0 = ld(x, base + y1 * xs2 + x0 * xs3, f16), d = ld(x, base + y1 * xs2 + x1 * xs3, f16);
        v = (a * (1.f - ax) + b * ax) * (1.f - ay) + (c0 * (1.f - ax) + d * ax) * ay;
    }
    st(y, n * ys0 + c * ys1 + oh * ys2 + ow * ys3, v, of16);
}

// Bilinear sampling of output pixel (oh, ow) for the channels-last resize
// kernels below: the four input taps (clamped) and their weights.
struct Bilin {
    int y0, y1, x0, x1;
    float w00, w01, w10, w11;
};
__device__ __forceinline__ Bilin bilin_at(int oh, int ow, float sh, float sw, int IH, int IW, int OH, int OW, int coord) {
    float fy = src_coord(oh, sh, IH, OH, coord), fx = src_coord(ow, sw, IW, OW, coord);
    fy = fminf(fmaxf(fy, 0.f), (float)(IH - 1));
    fx = fminf(fmaxf(fx, 0.f), (float)(IW - 1));
    Bilin t;
    t.y0 = (int)fy, t.x0 = (int)fx;
    t.y1 = min(t.y0 + 1, IH - 1), t.x1 = min(t.x0 + 1, IW - 1);
    const float ay = fy - t.y0, ax = fx - t.x0;
    t.w00 = (1.f - ay) * (1.f - ax), t.w01 = (1.f - ay) * ax, t.w10 = ay * (1.f - ax), t.w11 = ay * ax;
    return t;
}
// 8 FP16 channels at element b of a channels-last uint4 tensor, blended.
__device__ __forceinline__ uint4 bilin8(const uint4 *x, int b, int xs2, int xs3, const Bilin &t) {
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

// The sum of bilinear resizes of up to 4 channels-last FP16 maps (each its
// own size) to one output size, 8 channels a thread, summed in FP32 and
// rounded once.  Used where a 1x1 conv over a concat of upsampled maps is
// reassociated (fuse_catgemm.c): the maps are projected at their own, small
// resolution and only their sum is upsampled.
struct ResizeSrc {
    const uint4 *x[4];
    int xs0[4], xs2[4], xs3[4], ih[4], iw[4];
    float rh[4], rw[4];  // 1 / scale: a multiply instead of a division a coordinate (exact for the power-of-two scales)
};
__global__ void __launch_bounds__(256) k_resize_sum8(ResizeSrc src, int nsrc, uint4 *y, int ys0, int ys2, int ys3, int N, int C8, int OH, int OW,
                              int coord) {
    MTK_PDL_WAIT();
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned total = (unsigned)N * C8 * OH * OW;
    if (i >= total) return;
    int c = (int)(i % C8);
    unsigned t = i / C8;
    int ow = (int)(t % OW);
    t /= OW;
    int oh = (int)(t % OH), n = (int)(t / OH);
    float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    for (int k = 0; k < nsrc; k++) {
        // bilin_at with the coordinate's division turned into a multiply
        const int IH = src.ih[k], IW = src.iw[k];
        float fy = coord == 2 ? (OH > 1 ? oh * (float)(IH - 1) / (float)(OH - 1) : 0.f)
                 : coord == 3 ? oh * src.rh[k] : (coord == 1 && OH <= 1) ? 0.f : (oh + 0.5f) * src.rh[k] - 0.5f;
        float fx = coord == 2 ? (OW > 1 ? ow * (float)(IW - 1) / (float)(OW - 1) : 0.f)
                 : coord == 3 ? ow * src.rw[k] : (coord == 1 && OW <= 1) ? 0.f : (ow + 0.5f) * src.rw[k] - 0.5f;
        fy = fminf(fmaxf(fy, 0.f), (float)(IH - 1));
        fx = fminf(fmaxf(fx, 0.f), (float)(IW - 1));
        Bilin tp;
        tp.y0 = (int)fy, tp.x0 = (int)fx;
        tp.y1 = min(tp.y0 + 1, IH - 1), tp.x1 = min(tp.x0 + 1, IW - 1);
        const float ay = fy - tp.y0, ax = fx - tp.x0;
        tp.w00 = (1.f - ay) * (1.f - ax), tp.w01 = (1.f - ay) * ax, tp.w10 = ay * (1.f - ax), tp.w11 = ay * ax;
        const uint4 *x = src.x[k];
        const int b = n * src.xs0[k] + c, xs2 = src.xs2[k], xs3 = src.xs3[k];
        uint4 q[4] = {x[b + tp.y0 * xs2 + tp.x0 * xs3], x[b + tp.y0 * xs2 + tp.x1 * xs3], x[b + tp.y1 * xs2 + tp.x0 * xs3],
                      x[b + tp.y1 * xs2 + tp.x1 * xs3]};
        const float w[4] = {tp.w00, tp.w01, tp.w10, tp.w11};
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const __half2 *h = (const __half2 *)&q[u];
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float2 f = __half22float2(h[e]);
                acc[2 * e] = fmaf(f.x, w[u], acc[2 * e]);
                acc[2 * e + 1] = fmaf(f.y, w[u], acc[2 * e + 1]);
            }
        }
    }
    uint4 o;
    __half2 *ho = (__half2 *)&o;
#pragma unroll
    for (int e = 0; e < 4; e++) ho[e] = __floats2half2_rn(acc[2 * e], acc[2 * e + 1]);
    y[n * ys0 + c + oh * ys2 + ow * ys3] = o;
}

// Channels-last bilinear resize, 8 FP16 channels (16 bytes) a thread.
__global__ void k_resize_c8(const uint4 *x, int xs0, int xs2, int xs3, uint4 *y, int ys0, int ys2, int ys3, int N,
                            int C8, int IH, int IW, int OH, int OW, float sh, float sw, int coord) {
    MTK_PDL_WAIT();
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned total = (unsigned)N * C8 * OH * OW;
    if (i >= total) return;
    int c = (int)(i % C8);
    unsigned t = i / C8;
    int ow = (int)(t % OW);
    t /= OW;
    int oh = (int)(t % OH), n = (int)(t / OH);
    const Bilin tp = bilin_at(oh, ow, sh, sw, IH, IW, OH, OW, coord);
    y[n * ys0 + c + oh * ys2 + ow * ys3] = bilin8(x, n * xs0 + c, xs2, xs3, tp);
}

// The four taps of output pixel (n, oh, ow) and their weights, and the
// blend of channel offset cc: shared by k_resize_pix and k_resize_argmax so
// that both compute every value with the same operations.
struct PixTaps {
    int o00, o01, o10, o11;
    Bilin tp;
};
__device__ __forceinline__ PixTaps pix_taps(int n, int oh, int ow, int xs0, int xs2, int xs3, float sh, float sw, int IH,
                                            int IW, int OH, int OW, int coord) {
    PixTaps p;
    p.tp = bilin_at(oh, ow, sh, sw, IH, IW, OH, OW, coord);
    const int b = n * xs0;
    p.o00 = b + p.tp.y0 * xs2 + p.tp.x0 * xs3, p.o01 = b + p.tp.y0 * xs2 + p.tp.x1 * xs3;
    p.o10 = b + p.tp.y1 * xs2 + p.tp.x0 * xs3, p.o11 = b + p.tp.y1 * xs2 + p.tp.x1 * xs3;
    return p;
}
// Output pixel i of [N, OH, OW] as (n, oh, ow); false past the end.
__device__ __forceinline__ bool pixel_at(unsigned i, int N, int OH, int OW, int *n, int *oh, int *ow) {
    if (i >= (unsigned)N * OH * OW) return false;
    *ow = (int)(i % OW);
    const unsigned t = i / OW;
    *oh = (int)(t % OH), *n = (int)(t / OH);
    return true;
}
__device__ __forceinline__ float pix_value(const void *x, const PixTaps &p, int cc, int f16) {
    return ld(x, p.o00 + cc, f16) * p.tp.w00 + ld(x, p.o01 + cc, f16) * p.tp.w01 + ld(x, p.o10 + cc, f16) * p.tp.w10 +
           ld(x, p.o11 + cc, f16) * p.tp.w11;
}

// Bilinear resize with a plane-major output (NCHW, e.g. a graph output) from
// a channels-last input: one thread per output pixel loops over channels,
// so the index arithmetic is paid once per pixel and writes stay coalesced.
__global__ void k_resize_pix(const void *x, int xs0, int xs1, int xs2, int xs3, void *y, int ys0, int ys1, int ys2,
                             int ys3, int N, int C, int IH, int IW, int OH, int OW, float sh, float sw, int coord,
                             int f16, int of16) {
    MTK_PDL_WAIT();
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    int n, oh, ow;
    if (!pixel_at(i, N, OH, OW, &n, &oh, &ow)) return;
    const PixTaps px = pix_taps(n, oh, ow, xs0, xs2, xs3, sh, sw, IH, IW, OH, OW, coord);
    int oo = n * ys0 + oh * ys2 + ow * ys3;
    for (int c = 0; c < C; c++) st(y, oo + c * ys1, pix_value(x, px, c * xs1, f16), of16);
}

// k_resize_pix's values, reduced to the index of the largest per pixel
// (mtmi.ClassMap: the first of equal maxima, NaN never wins) instead of
// stored: a segmentation head's class map without its logits ever written.
// The values are k_resize_pix's own (pix_value), in FP32 as the plan keeps
// a resize that feeds a class map, so the map is the argmax of the logits
// the plan returns when asked for them.
__global__ void k_resize_argmax(const void *x, int xs0, int xs1, int xs2, int xs3, uint8_t *y, int N, int C, int IH, int IW,
                                int OH, int OW, float sh, float sw, int coord, int f16) {
    MTK_PDL_WAIT();
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    int n, oh, ow;
    if (!pixel_at(i, N, OH, OW, &n, &oh, &ow)) return;
    const PixTaps px = pix_taps(n, oh, ow, xs0, xs2, xs3, sh, sw, IH, IW, OH, OW, coord);
    float best = pix_value(x, px, 0, f16);
    int arg = 0;
    for (int c = 1; c < C; c++) {
        const float v = pix_value(x, px, c * xs1, f16);
        if (v > best || (best != best && v == v)) best = v, arg = c;
    }
    y[i] = (uint8_t)arg;
}

// The same over a channel concatenation of up to 4 channels-last FP16
// sources (the concat is never stored; concat.cuh).
__global__ void k_resize_cat8(CatSrc src, uint4 *y, int ys0, int ys2, int ys3, int N, int C8, int IH, int IW, int OH,
                              int OW, float sh, float sw, int coord) {
    MTK_PDL_WAIT();
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned total = (unsigned)N * C8 * OH * OW;
    if (i >= total) return;
    int c = (int)(i % C8);
    unsigned t = i / C8;
    int ow = (int)(t % OW);
    t /= OW;
    int oh = (int)(t % OH), n = (int)(t / OH);
    const CatAt at = cat_at(src, c);
    const Bilin tp = bilin_at(oh, ow, sh, sw, IH, IW, OH, OW, coord);
    y[n * ys0 + c + oh * ys2 + ow * ys3] = bilin8(at.x, n * at.s0 + at.c, at.s2, at.s3, tp);
}

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

cudaError_t mtk_copy(cudaStream_t s, void *dst, const mtk_view *dv, int dt, const void *src, const mtk_view *sv,
                     int stt) {
    int64_t n = numel(dv);
    if (n == 0) return cudaSuccess;
    if (n >= (1ll << 31)) return cudaErrorInvalidValue;
    mtk_launch(k_copy, blocks_for(n, 256), 256, 0, s, dst, to_iview(dv), dt, src, to_iview(sv), stt, (int)n);
    return cudaGetLastError();
}

static void ew_build(EwArgs &A, const mtk_prog *prog, void *out, const mtk_view *ov, int nin, const void *const *in,
                     const mtk_view *iv) {
    memset(&A, 0, sizeof A);
    A.out = out;
    A.prog = *prog;
    A.nin = nin;
    A.ov = to_iview(ov);
    int64_t cs[MTK_RANK], acc = 1;
    for (int d = ov->rank - 1; d >= 0; d--) {
        cs[d] = acc;
        acc *= ov->dims[d];
    }
    A.out_flat = 1;
    for (int d = 0; d < ov->rank; d++)
        if (ov->dims[d] > 1 && ov->strides[d] != cs[d]) A.out_flat = 0;
    for (int k = 0; k < nin; k++) {
        A.in[k] = in[k];
        A.iv[k] = to_iview(&iv[k]);
        int same = A.out_flat, scalar = 1;
        for (int d = 0; d < iv[k].rank; d++) {
            if (iv[k].dims[d] > 1 && iv[k].strides[d] != 0) scalar = 0;
            if (iv[k].dims[d] > 1 && iv[k].strides[d] != cs[d]) same = 0;
        }
        A.mode[k] = scalar ? 1 : same ? 0 : 2;
    }
}

cudaError_t mtk_elementwise_prepare(const mtk_prog *prog, void *out, const mtk_view *ov, int nin, const void *const *in,
                                    const mtk_view *iv, void **dev_args) {
    int64_t n = numel(ov);
    *dev_args = NULL;
    if (n >= (1ll << 31) || nin > MTK_MAX_IN) return cudaErrorInvalidValue;
    EwArgs A;
    ew_build(A, prog, out, ov, nin, in, iv);
    cudaError_t e = cudaMalloc(dev_args, sizeof A);
    if (e != cudaSuccess) return e;
    return cudaMemcpy(*dev_args, &A, sizeof A, cudaMemcpyHostToDevice);
}

cudaError_t mtk_elementwise_run(cudaStream_t s, const void *dev_args, int64_t n, int f16) {
    if (n == 0) return cudaSuccess;
    mtk_launch(k_elementwise_d, blocks_for(n, 256), 256, 0, s, (const EwArgs *)dev_args, (int)n, f16);
    return cudaGetLastError();
}

cudaError_t mtk_elementwise(cudaStream_t s, const mtk_prog *prog, void *out, const mtk_view *ov, int nin,
                            const void *const *in, const mtk_view *iv, int f16) {
    int64_t n = numel(ov);
    if (n == 0) return cudaSuccess;
    if (n >= (1ll << 31) || nin > MTK_MAX_IN) return cudaErrorInvalidValue;
    EwArgs A;
    ew_build(A, prog, out, ov, nin, in, iv);
    mtk_launch(k_elementwise, blocks_for(n, 256), 256, 0, s, A, out, (int)n, f16);
    return cudaGetLastError();
}

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
        LnCol cg;
        cg.col = (uint4 *)ic->col;
        cg.H = ic->H; cg.W = ic->W; cg.OH = ic->OH; cg.OW = ic->OW;
        cg.KH = ic->KH; cg.KW = ic->KW; cg.sh = ic->sh; cg.sw = ic->sw;
        cg.ph = ic->ph; cg.pw = ic->pw; cg.dh = ic->dh; cg.dw = ic->dw;
        cg.K8 = (int)(K / 8); cg.Kp8 = ic->Kp / 8;
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
        cg.col = (uint4 *)ic->col;
        cg.H = ic->H; cg.W = ic->W; cg.OH = ic->OH; cg.OW = ic->OW;
        cg.KH = ic->KH; cg.KW = ic->KW; cg.sh = ic->sh; cg.sw = ic->sw;
        cg.ph = ic->ph; cg.pw = ic->pw; cg.dh = ic->dh; cg.dw = ic->dw;
        cg.K8 = (int)(K / 8); cg.Kp8 = ic->Kp / 8;
        layernorm_v_launch<true, true>(s, x, res, sum, y, gamma, beta, rows, C, eps, cg, l2);
    } else {
        layernorm_v_launch<false, true>(s, x, res, sum, y, gamma, beta, rows, C, eps, cg, l2);
    }
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

cudaError_t mtk_resize_sum(cudaStream_t s, int nsrc, const void *const *x, const int64_t (*xs)[4], const int *ih,
                           const int *iw, void *y, const int64_t ys[4], int N, int C, int OH, int OW, int coord) {
    long long total = (long long)N * C * OH * OW;
    if (nsrc < 1 || nsrc > 4 || C % 8 || ys[1] != 1 || ys[0] % 8 || ys[2] % 8 || ys[3] % 8 || (uintptr_t)y % 16 ||
        total >= (1ll << 31))
        return cudaErrorInvalidValue;
    if (!total) return cudaSuccess;
    ResizeSrc src;
    memset(&src, 0, sizeof src);
    for (int k = 0; k < nsrc; k++) {
        if (xs[k][1] != 1 || xs[k][0] % 8 || xs[k][2] % 8 || xs[k][3] % 8 || (uintptr_t)x[k] % 16 || ih[k] < 1 || iw[k] < 1)
            return cudaErrorInvalidValue;
        src.x[k] = (const uint4 *)x[k];
        src.xs0[k] = (int)(xs[k][0] / 8), src.xs2[k] = (int)(xs[k][2] / 8), src.xs3[k] = (int)(xs[k][3] / 8);
        src.ih[k] = ih[k], src.iw[k] = iw[k];
        src.rh[k] = (float)ih[k] / (float)OH, src.rw[k] = (float)iw[k] / (float)OW;
    }
    mtk_launch(k_resize_sum8, blocks_for(total / 8, 256), 256, 0, s, src, nsrc, (uint4 *)y, (int)(ys[0] / 8), (int)(ys[2] / 8),
               (int)(ys[3] / 8), N, C / 8, OH, OW, coord);
    return cudaGetLastError();
}

cudaError_t mtk_resize(cudaStream_t s, const void *x, const int64_t xs[4], void *y, const int64_t ys[4], int N, int C,
                       int IH, int IW, int OH, int OW, float scale_h, float scale_w, int mode, int coord,
                       int nearest_mode, int c_inner, int f16, int out_f16) {
    long long total = (long long)N * C * OH * OW;
    if (!total) return cudaSuccess;
    if (total >= (1ll << 31)) return cudaErrorInvalidValue;
    if (mode == 1 && c_inner && f16 && out_f16 && C % 8 == 0 && xs[1] == 1 && ys[1] == 1 && xs[0] % 8 == 0 &&
        xs[2] % 8 == 0 && xs[3] % 8 == 0 && ys[0] % 8 == 0 && ys[2] % 8 == 0 && ys[3] % 8 == 0 &&
        (uintptr_t)x % 16 == 0 && (uintptr_t)y % 16 == 0) {
        mtk_launch(k_resize_c8, blocks_for(total / 8, 256), 256, 0, s, (const uint4 *)x, (int)xs[0] / 8, (int)xs[2] / 8,
                                                               (int)xs[3] / 8, (uint4 *)y, (int)ys[0] / 8, (int)ys[2] / 8,
                                                               (int)ys[3] / 8, N, C / 8, IH, IW, OH, OW, scale_h,
                                                               scale_w, coord);
        return cudaGetLastError();
    }
    if (mode == 1 && !c_inner && C <= 64) {
        long long pix = (long long)N * OH * OW;
        mtk_launch(k_resize_pix, blocks_for(pix, 256), 256, 0, s, x, (int)xs[0], (int)xs[1], (int)xs[2], (int)xs[3], y, (int)ys[0],
                                                           (int)ys[1], (int)ys[2], (int)ys[3], N, C, IH, IW, OH, OW,
                                                           scale_h, scale_w, coord, f16, out_f16);
        return cudaGetLastError();
    }
    mtk_launch(k_resize, blocks_for(total, 256), 256, 0, s, x, (int)xs[0], (int)xs[1], (int)xs[2], (int)xs[3], y, (int)ys[0],
                                                     (int)ys[1], (int)ys[2], (int)ys[3], N, C, IH, IW, OH, OW, scale_h,
                                                     scale_w, mode, coord, nearest_mode, c_inner, f16, out_f16);
    return cudaGetLastError();
}

int mtk_resize_argmax_supported(int mode, int C, int f16, int out_f16) { return mode == 1 && C >= 1 && C <= 256 && !out_f16; }

cudaError_t mtk_resize_argmax(cudaStream_t s, const void *x, const int64_t xs[4], uint8_t *y, int N, int C, int IH, int IW,
                              int OH, int OW, float scale_h, float scale_w, int coord, int f16) {
    long long pix = (long long)N * OH * OW;
    if (!pix) return cudaSuccess;
    if (pix >= (1ll << 31) || (long long)N * C * IH * IW >= (1ll << 31)) return cudaErrorInvalidValue;
    mtk_launch(k_resize_argmax, blocks_for(pix, 256), 256, 0, s, x, (int)xs[0], (int)xs[1], (int)xs[2], (int)xs[3], y, N, C, IH, IW,
               OH, OW, scale_h, scale_w, coord, f16);
    return cudaGetLastError();
}

cudaError_t mtk_resize_cat(cudaStream_t s, int nsrc, const void *const *x, const int64_t (*xs)[4], const int *cbegin,
                           void *y, const int64_t ys[4], int N, int C, int IH, int IW, int OH, int OW, float scale_h,
                           float scale_w, int coord) {
    if (C % 8 || ys[1] != 1 || (uintptr_t)y % 16) return cudaErrorInvalidValue;
    CatSrc src;
    const cudaError_t e = cat_src_fill(&src, nsrc, x, xs, cbegin);
    if (e != cudaSuccess) return e;
    long long total = (long long)N * (C / 8) * OH * OW;
    if (!total) return cudaSuccess;
    mtk_launch(k_resize_cat8, blocks_for(total, 256), 256, 0, s, src, (uint4 *)y, (int)(ys[0] / 8), (int)(ys[2] / 8),
                                                         (int)(ys[3] / 8), N, C / 8, IH, IW, OH, OW, scale_h, scale_w,
                                                         coord);
    return cudaGetLastError();
}

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

cudaError_t mtk_gather(cudaStream_t s, const void *x, void *y, const int64_t *idx, int64_t pre, int64_t axis_len,
                       int64_t nidx, int64_t post, int esize) {
    long long total = pre * nidx * post;
    if (!total) return cudaSuccess;
    mtk_launch(k_gather, blocks_for(total, 256), 256, 0, s, (const uint8_t *)x, (uint8_t *)y, idx, pre, axis_len, nidx, post,
                                                     esize);
    return cudaGetLastError();
}

cudaError_t mtk_preprocess(cudaStream_t s, const uint8_t *img, int H, int W, void *y, const int64_t ys[4],
                           const float mean[3], const float stdv[3], int f16) {
    long long total = (long long)H * W;
    mtk_launch(k_preprocess, blocks_for(total, 256), 256, 0, s, img, H, W, y, ys[1], ys[2], ys[3], mean[0], mean[1], mean[2],
                                                         1.f / stdv[0], 1.f / stdv[1], 1.f / stdv[2], f16);
    return cudaGetLastError();
}

}  // extern "C"

/* Test probe: block b writes the multiprocessor it ran on; each block stays
 * a few microseconds so that a grid larger than the GPU spreads over every
 * SM it is allowed to use (green-context partition checks). */
__global__ void k_smid_probe(int *out) {
    MTK_PDL_WAIT();
    if (threadIdx.x == 0) {
        unsigned id;
        asm volatile("mov.u32 %0, %%smid;" : "=r"(id));
        out[blockIdx.x] = (int)id;
        long long t0 = clock64();
        while (clock64() - t0 < 20000) {
        }
    }
}

extern "C" cudaError_t mtk_smid_probe(cudaStream_t s, int *out, int nblocks) {
    mtk_launch(k_smid_probe, nblocks, 32, 0, s, out);
    return cudaGetLastError();
}
