/* INT8 convolution / linear kernels (mtmi.QConv, mtmi.QLinear) on integer
 * tensor cores.  The arithmetic follows graph/qops.h step by step so that
 * outputs are bit-identical with the CPU reference (src/cpu/kernels_quant.c):
 *   xq  = clamp(rne(x / s_x), -128, 127), NaN -> 0     (IEEE division)
 *   acc = sum xq * wq (exact int32, any order) + bq
 *   y   = (float)acc * mult[c]                         (rne, one multiply)
 *   act (Relu exact; Sigmoid / Gelu see below), then optionally
 *   y   = (float)quantize(y, s_y) * s_y.
 *
 * This file is compiled with the target's --use_fast_math, which would make
 * '/' an approximate division, contract multiplies into FMAs and flush
 * denormals.  Every float step of the contract is therefore written as
 * inline PTX with an explicit rounding mode and no .ftz, which those flags
 * cannot touch. */
#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bilinear.cuh"
#include "concat.cuh"
#include "qkernels.h"
#include "qquant.cuh"
#include "qupsum.cuh"
#include "wgconv.cuh"
#include "wgmma.cuh"
#include "launch.cuh"

/* ------------------------------------------------------------ quantize
 * One thread per (pixel, group of 8 channels): 8 quantized bytes, one 8-byte
 * store.  Index order: with channels contiguous (NHWC, s1 == 1) the channel
 * group runs fastest, and FP16 inputs with 8-aligned strides are read as one
 * 16-byte load; otherwise (NCHW) the pixel's w runs fastest so that each of
 * the 8 channel reads is coalesced across the warp.  32-bit index math
 * where the sizes allow it. */
template <typename I>
__global__ void k_qquant8(const void *__restrict__ x, int64_t s0, int64_t s1, int64_t s2, int64_t s3, int f16, int vec,
                          int cfast, uint2 *__restrict__ xq, I N, I C, I H, I W, I Cp8, float s, I total) {
    MTK_PDL_WAIT();
    const float r = q_div(1.0f, s);
    for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (I)gridDim.x * blockDim.x) {
        I c8, w, h, n;
        if (cfast) {
            c8 = idx % Cp8;
            I pix = idx / Cp8;
            w = pix % W;
            I r = pix / W;
            h = r % H;
            n = r / H;
        } else {
            w = idx % W;
            I r = idx / W;
            c8 = r % Cp8;
            r /= Cp8;
            h = r % H;
            n = r / H;
        }
        const int64_t base = (int64_t)n * s0 + (int64_t)h * s2 + (int64_t)w * s3;
        const int c0 = (int)c8 * 8;
        unsigned lo = 0, hi = 0;
        if (vec && c0 + 8 <= (int)C) {
            const uint2 q8 = q_quant8(__ldg((const uint4 *)((const __half *)x + base + c0)), s, r);
            lo = q8.x;
            hi = q8.y;
        } else {
#pragma unroll
            for (int j = 0; j < 8; j++) {
                int c = c0 + j, q = 0;
                if (c < (int)C) {
                    int64_t off = base + (int64_t)c * s1;
                    float f = f16 ? __half2float(((const __half *)x)[off]) : ((const float *)x)[off];
                    q = q_quant_r(f, s, r);
                }
                if (j < 4) lo |= ((unsigned)q & 0xffu) << (8 * j);
                else hi |= ((unsigned)q & 0xffu) << (8 * (j - 4));
            }
        }
        int64_t o = (((int64_t)n * H + h) * W + w) * Cp8 + c8;
        xq[o] = make_uint2(lo, hi);
    }
}

extern "C" cudaError_t mtk_qconv_quantize(cudaStream_t st, const void *x, const int64_t xs[4], int x_f16, int8_t *xq, int N,
                                          int C, int H, int W, int Cp, float scale) {
    if (Cp % 8) return cudaErrorInvalidValue;
    int64_t total = (int64_t)N * H * W * (Cp / 8);
    if (total <= 0) return cudaSuccess;
    int cfast = xs[1] == 1 || W == 1;
    int vec = x_f16 && xs[1] == 1 && xs[0] % 8 == 0 && xs[2] % 8 == 0 && xs[3] % 8 == 0 && ((uintptr_t)x & 15) == 0;
    int64_t blocks = (total + 255) / 256;
    if (blocks > 131072) blocks = 131072;
    if (total < ((int64_t)1 << 31) - (int64_t)blocks * 256)
        mtk_launch(k_qquant8<int>, (unsigned)blocks, 256, 0, st, x, xs[0], xs[1], xs[2], xs[3], x_f16, vec, cfast, (uint2 *)xq, N, C, H, W,
                                                       Cp / 8, scale, (int)total);
    else
        mtk_launch(k_qquant8<int64_t>, (unsigned)blocks, 256, 0, st, x, xs[0], xs[1], xs[2], xs[3], x_f16, vec, cfast, (uint2 *)xq, N, C,
                                                           H, W, Cp / 8, scale, total);
    return cudaGetLastError();
}

/* ---------------------------------------------------------------- GEMM
 * mma.sync.m16n8k32 s8 fragments (PTX ISA, "Matrix Fragments for
 * mma.m16n8k32"), g = lane / 4, t = lane % 4:
 *   A 16x32 row-major: a0 row g k 4t..4t+3, a1 row g+8, a2 row g k 16+4t..,
 *                      a3 row g+8 k 16+4t..
 *   B 32x8 col-major:  b0 col g k 4t..4t+3, b1 col g k 16+4t..
 *   C 16x8:            c0 c1 row g cols 2t, 2t+1; c2 c3 row g+8.
 * A rows are output pixels (4 consecutive bytes of the quantized NHWC input
 * at the tap's source pixel: one 32-bit load), B columns are output
 * channels (4 consecutive bytes of the repacked weights).  A warp owns 32
 * pixels x 32 channels (2 x 4 mma tiles); a block is 4 warps along the
 * pixels.  Operands come straight from global memory (L1/L2-resident for
 * these layer sizes): the simplest correct tensor-core kernel. */
/* The CPU's float steps after the int32 sum (bias included), in its order,
 * up to the requantization: dequantize, activation. */
__device__ __forceinline__ float q_dequant_act(const mtk_qconv &q, int av, float m) {
    float v = q_mul(q_i2f(av), m);
    if (q.act == 1) v = v > 0.0f ? v : 0.0f;
    else if (q.act >= 2) v = q_act_slow(v, q.act);
    return v;
}

/* ... then, where the output has a scale, quantize and dequantize (ry =
 * fl(1 / y_scale), q_quant_r). */
__device__ __forceinline__ float q_epilogue(const mtk_qconv &q, int av, float m, float ry) {
    float v = q_dequant_act(q, av, m);
    if (q.y_scale > 0.0f) v = q_mul(q_i2f(q_quant_r(v, q.y_scale, ry)), q.y_scale);
    return v;
}

/* ... or, for y_int8, the quantized q itself: the int8 that the next
 * QConv's quantize pass would have made of q * s_y (|q| <= 128, so
 * q * s_y / s_y rounds back to q). */
__device__ __forceinline__ int q_requant2(const mtk_qconv &q, int k, float r2) {
    return q_quant_r(__half2float(__float2half_rn(q_mul(q_i2f(k), q.y_scale))), q.y2_scale, r2);
}
__device__ __forceinline__ int q_epilogue_q(const mtk_qconv &q, int av, float m, float ry) {
    const int k = q_quant_r(q_dequant_act(q, av, m), q.y_scale, ry);
    return q.y2_scale > 0.0f ? q_requant2(q, k, q_div(1.0f, q.y2_scale)) : k;
}

/* fl(1 / y_scale) for q_quant_r, once per thread (0 without a scale) */
__device__ __forceinline__ float q_y_rcp(const mtk_qconv &q) { return q.y_scale > 0.0f ? q_div(1.0f, q.y_scale) : 0.0f; }

#define QG_WARPS 4

__device__ __forceinline__ void q_mma(int c[4], const unsigned a[4], const unsigned b[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    /* built for sm_80+ only (CMAKE_CUDA_ARCHITECTURES 90); never reached */
    (void)c; (void)a; (void)b;
    __trap();
#endif
}

__device__ __forceinline__ unsigned q_ld(const int8_t *p, int off) {
    return p ? (unsigned)__ldg((const int *)(p + off)) : 0u;
}

__global__ void __launch_bounds__(QG_WARPS * 32)
    k_qgemm(mtk_qconv q, const int8_t *__restrict__ xq, const int8_t *__restrict__ wq, const int32_t *__restrict__ bq,
            const float *__restrict__ mult, void *__restrict__ y, int y_f16, int32_t *__restrict__ acc_out) {
    MTK_PDL_WAIT();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int64_t P = (int64_t)q.N * q.OH * q.OW;
    const int64_t pbase = ((int64_t)blockIdx.x * QG_WARPS + warp) * 32;
    const int cob = blockIdx.y * 32;
    /* this lane's four pixels: rows g + 8r of the warp's 32 */
    int pn[4], poy[4], pox[4];
    bool pv[4];
#pragma unroll
    for (int r = 0; r < 4; r++) {
        int64_t pix = pbase + g + 8 * r;
        pv[r] = pix < P;
        if (!pv[r]) pix = 0;
        pox[r] = (int)(pix % q.OW);
        poy[r] = (int)((pix / q.OW) % q.OH);
        pn[r] = (int)(pix / ((int64_t)q.OW * q.OH));
    }
    int acc[2][4][4];
#pragma unroll
    for (int mi = 0; mi < 2; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[mi][ni][i] = 0;
    const int KHW = q.KH * q.KW;
    const int64_t wrow = (int64_t)KHW * q.Cp;
    for (int tap = 0; tap < KHW; tap++) {
        const int ky = tap / q.KW, kx = tap % q.KW;
        const int8_t *src[4];
#pragma unroll
        for (int r = 0; r < 4; r++) {
            int iy = poy[r] * q.sh - q.ph + ky * q.dh, ix = pox[r] * q.sw - q.pw + kx * q.dw;
            bool ok = pv[r] && iy >= 0 && iy < q.H && ix >= 0 && ix < q.W;
            /* padding reads as 0 = quantize(0), as in the CPU im2col */
            src[r] = ok ? xq + (((int64_t)pn[r] * q.H + iy) * q.W + ix) * q.Cp + t * 4 : nullptr;
        }
        const int8_t *wt[4];
#pragma unroll
        for (int ni = 0; ni < 4; ni++) wt[ni] = wq + (int64_t)(cob + ni * 8 + g) * wrow + (int64_t)tap * q.Cp + t * 4;
        for (int c0 = 0; c0 < q.Cp; c0 += 32) {
            unsigned a[2][4], b[4][2];
#pragma unroll
            for (int mi = 0; mi < 2; mi++) {
                a[mi][0] = q_ld(src[2 * mi], c0);
                a[mi][1] = q_ld(src[2 * mi + 1], c0);
                a[mi][2] = q_ld(src[2 * mi], c0 + 16);
                a[mi][3] = q_ld(src[2 * mi + 1], c0 + 16);
            }
#pragma unroll
            for (int ni = 0; ni < 4; ni++) {
                b[ni][0] = (unsigned)__ldg((const int *)(wt[ni] + c0));
                b[ni][1] = (unsigned)__ldg((const int *)(wt[ni] + c0 + 16));
            }
#pragma unroll
            for (int mi = 0; mi < 2; mi++)
#pragma unroll
                for (int ni = 0; ni < 4; ni++) q_mma(acc[mi][ni], a[mi], b[ni]);
        }
    }
    /* epilogue: the CPU's float steps in the same order */
    const float ry = q_y_rcp(q);
#pragma unroll
    for (int mi = 0; mi < 2; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int r = 2 * mi + (i >> 1);
                const int col = cob + ni * 8 + t * 2 + (i & 1);
                if (!pv[r] || col >= (q.y_int8 ? q.COp : q.CO)) continue;
                const int64_t off = (int64_t)pn[r] * q.ys0 + ((int64_t)poy[r] * q.OW + pox[r]) * q.ldy + col;
                if (col >= q.CO) { /* y_int8: the next QConv's zero padding */
                    ((int8_t *)y)[off] = 0;
                    continue;
                }
                const int av = acc[mi][ni][i] + bq[col]; /* cannot overflow: |bq| <= 2^31-1 - K*16256 */
                if (acc_out) acc_out[(pbase + g + 8 * r) * q.CO + col] = av;
                if (q.y_int8) {
                    ((int8_t *)y)[off] = (int8_t)q_epilogue_q(q, av, mult[col], ry);
                    continue;
                }
                const float v = q_epilogue(q, av, mult[col], ry);
                if (y_f16) ((__half *)y)[off] = __float2half_rn(v);
                else ((float *)y)[off] = v;
            }
}

extern "C" cudaError_t mtk_qconv_gemm_simple(cudaStream_t st, const mtk_qconv *q, const int8_t *xq, const int8_t *wq, const int32_t *bq,
                                      const float *mult, void *y, int y_f16, int32_t *acc) {
    int64_t P = (int64_t)q->N * q->OH * q->OW;
    if (P <= 0 || q->CO <= 0) return cudaSuccess;
    if (q->Cp % 32 || q->COp % 32 || q->COp < q->CO || q->ups_n || q->y_i32) return cudaErrorInvalidValue; /* the tiled kernels' */
    dim3 grid((unsigned)((P + QG_WARPS * 32 - 1) / (QG_WARPS * 32)), (unsigned)(q->COp / 32));
    mtk_launch(k_qgemm, grid, QG_WARPS * 32, 0, st, *q, xq, wq, bq, mult, y, y_f16, acc);
    return cudaGetLastError();
}

/* ------------------------------------------------------- tiled GEMM
 * The fast kernel: a block computes BM output pixels x BN output channels.
 * The k loop runs over chunks of 32 int8 (chunk kc: tap kc / (Cp/32),
 * channels 32 * (kc % (Cp/32)); the repacked weights are [COp][KH*KW*Cp],
 * so a weight chunk is simply bytes 32 kc of its row).  A pipeline stage
 * holds two chunks of A ([BM][32] bytes each: the tap's source pixels,
 * zero-filled by cp.async src-size 0 outside the image, as the CPU's
 * im2col pads with quantize(0) = 0) and B ([BN][32]), loaded with 16-byte
 * cp.async into a STAGES-deep ring.  Rows of 32 bytes are two 16-byte
 * halves, swapped on rows 4..7 of every 8 so that ldmatrix (8 rows x 16
 * bytes per phase) hits 32 distinct banks.  ldmatrix.x4 yields the s8
 * m16n8k32 fragments directly: an int8 16x32 tile is a b16 16x16 tile.
 * Warps tile the block as (BM / WM) x (BN / WN), each WM x WN of
 * m16n8k32 mma.sync.  The epilogue is q_epilogue on the exact int32 sums,
 * so the result does not depend on the tiling. */
__device__ __forceinline__ unsigned q_smem(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void q_cp16(unsigned dst, const void *src, bool ok) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(ok ? 16 : 0));
#endif
}
__device__ __forceinline__ void q_cp16g(unsigned dst, const void *src, bool ok) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(ok ? 16 : 0));
#endif
}
__device__ __forceinline__ void q_cp_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;");
#endif
}
template <int N> __device__ __forceinline__ void q_cp_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;" ::"n"(N));
#endif
}
__device__ __forceinline__ void q_ldsm4(unsigned r[4], unsigned addr) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
#endif
}
/* the B fragments of two n8 tiles (output channels 0-7 and 8-15 of a
 * 16-row block, k 0-31) in one ldmatrix x4: the lanes' rows as b_r / b_h
 * in the kernels give n 0-7 h0, 0-7 h1, 8-15 h0, 8-15 h1 */
__device__ __forceinline__ void q_ldsm_b2(unsigned b0[2], unsigned b1[2], unsigned addr) {
    unsigned v[4];
    q_ldsm4(v, addr);
    b0[0] = v[0];
    b0[1] = v[1];
    b1[0] = v[2];
    b1[1] = v[3];
}
/* byte offset of (row r, 16-byte half h) in a [rows][32] chunk */
__device__ __forceinline__ int q_sw(int r, int h) { return r * 32 + ((h ^ ((r >> 2) & 1)) << 4); }

/* FQ (fused quantize, 1x1 convolutions): A is read straight from the FP16
 * NHWC input (x[n*s0 + iy*s2 + ix*s3 + c], channels contiguous, C % 16 == 0,
 * 16-byte aligned), quantized in registers and stored to shared memory,
 * instead of a separate quantize pass and its int8 copy.  The loads of a
 * stage are issued before the previous stage's MMAs and stored after them. */
struct q_fx {
    const __half *x;
    int64_t s0, s2, s3;
};

/* 16 FP16 values (two 16-byte loads) -> 16 quantized bytes */
__device__ __noinline__ uint4 q_quant16(uint4 a, uint4 b, float s, float r) {
    const uint2 lo = q_quant8(a, s, r), hi = q_quant8(b, s, r);
    return make_uint4(lo.x, lo.y, hi.x, hi.y);
}

/* Stores of a pair of outputs (pix, col), (pix, col + 1) at element off:
 * int8 codes as one char2 where aligned (col is even and COp a multiple
 * of 32, so col + 1 < COp), floats as one half2 / float2 where aligned
 * and both exist (two). */
__device__ __forceinline__ void q_put2q(int8_t *yq, int q0, int q1) {
    if ((((uintptr_t)yq) & 1) == 0) {
        *(char2 *)yq = make_char2((signed char)q0, (signed char)q1);
    } else {
        yq[0] = (int8_t)q0;
        yq[1] = (int8_t)q1;
    }
}
/* ... and int32 sums (y_i32) as one int2 where aligned and both exist */
__device__ __forceinline__ void q_put2i(int32_t *y, int64_t off, bool two, int v0, int v1) {
    if (two && (off & 1) == 0) {
        *(int2 *)(y + off) = make_int2(v0, v1);
    } else {
        y[off] = v0;
        if (two) y[off + 1] = v1;
    }
}
__device__ __forceinline__ void q_put2f(void *__restrict__ y, int y_f16, int64_t off, bool two, float v0, float v1) {
    if (y_f16) {
        __half *yh = (__half *)y;
        if (two && (off & 1) == 0) {
            *(__half2 *)(yh + off) = __halves2half2(__float2half_rn(v0), __float2half_rn(v1));
        } else {
            yh[off] = __float2half_rn(v0);
            if (two) yh[off + 1] = __float2half_rn(v1);
        }
    } else {
        float *yf = (float *)y;
        if (two && (off & 1) == 0) {
            *(float2 *)(yf + off) = make_float2(v0, v1);
        } else {
            yf[off] = v0;
            if (two) yf[off + 1] = v1;
        }
    }
}

/* outputs (pix, col) and (pix, col + 1) from their int32 sums av0, av1
 * (bias included) and the columns' multipliers m0, m1: q_epilogue, store (a
 * pair as one char2 / half2 / float2 where aligned), for the narrow
 * kernel; the tiled kernel's q_epilogue_tile does the same in phases.
 * Inline, the column constants loaded by the caller; the slow paths (exact
 * division, Sigmoid / Gelu) out of line. */
__device__ __forceinline__ void q_out2(const mtk_qconv &q, float ry, int av0, int av1, float m0, float m1, int col, int pix,
                                       int64_t obase, void *__restrict__ y, int y_f16, int32_t *__restrict__ acc_out) {
    if (q.y_int8) { /* int8 for the next QConv, 0 in its padding channels */
        if (col >= q.COp) return;
        const bool ok0 = col < q.CO, ok1 = col + 1 < q.CO;
        if (acc_out) {
            if (ok0) acc_out[(int64_t)pix * q.CO + col] = av0;
            if (ok1) acc_out[(int64_t)pix * q.CO + col + 1] = av1;
        }
        q_put2q((int8_t *)y + obase + col, ok0 ? q_epilogue_q(q, av0, m0, ry) : 0, ok1 ? q_epilogue_q(q, av1, m1, ry) : 0);
        return;
    }
    if (col >= q.CO) return;
    const bool two = col + 1 < q.CO;
    if (acc_out) {
        acc_out[(int64_t)pix * q.CO + col] = av0;
        if (two) acc_out[(int64_t)pix * q.CO + col + 1] = av1;
    }
    q_put2f(y, y_f16, obase + col, two, q_epilogue(q, av0, m0, ry), two ? q_epilogue(q, av1, m1, ry) : 0.0f);
}

/* The dequantize of q_epilogue_tile for the reassociated fuse conv's
 * level 0 (q.ups_n > 0, fuse_qupsum.c): each output's exact sum
 * 256 (acc + Bq) + the lower levels' upsampled int32 sums, in int64,
 * rounded once to float and multiplied by ldexpf(Mult, -8):
 * mtmi.QUpsampleSum's value with this GEMM's sums as its level 0.  Rows
 * pix0 and pix0 + 8, columns c0 + ni * 8 + 2t (+ 1); the levels' float2
 * loads need even channel strides (mtk_qconv_gemm_cfg checks). */
template <int NI>
__device__ __forceinline__ void q_ups_dequant(const mtk_qconv &q, const int (&av)[NI][4], const float (&cmul)[NI][2], int pix0,
                                              int c0, int t, int P, float (&v)[NI][4]) {
    long long u[NI][4];
#pragma unroll
    for (int ni = 0; ni < NI; ni++)
#pragma unroll
        for (int i = 0; i < 4; i++) u[ni][i] = 256ll * av[ni][i];
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        const int pix = pix0 + 8 * hr;
        if (pix >= P) continue;
        const int ox = pix % q.OW, rr = pix / q.OW, oy = rr % q.OH, n = rr / q.OH;
        /* unrolled: a constant index reads q.ups from the parameter space
         * (a variable one made the compiler copy q to local memory) */
#pragma unroll
        for (int l = 0; l < MTK_QUPS_MAX; l++) {
            if (l >= q.ups_n) break;
            const QupPix tp = qup_pix(q.ups[l], n, oy, ox);
#pragma unroll
            for (int ni = 0; ni < NI; ni++) {
                const int col = c0 + ni * 8 + t * 2;
                if (col + 1 < q.CO) qup_at2(q.ups[l], tp, col, u[ni][2 * hr], u[ni][2 * hr + 1]);
                else if (col < q.CO) u[ni][2 * hr] += qup_at(q.ups[l], tp, col);
            }
        }
    }
#pragma unroll
    for (int ni = 0; ni < NI; ni++)
#pragma unroll
        for (int i = 0; i < 4; i++) v[ni][i] = q_mul(q_l2f(u[ni][i]), cmul[ni][i & 1]);
}

/* The tiled kernel's epilogue: a thread's MI x NI mma tiles (rows r0 + mi
 * * 16 + g (+ hs: 8, or the image width for the wgmma kernel's 8-pixel-wide
 * tiles), columns c0 + ni * 8 + 2t (+ 1)), each output as q_out2
 * makes it, but in phases over the 4 * NI outputs of one mi at a time:
 * dequantize and activation; the requantization's fast path (q_quant_r's,
 * branch-free) with a bit per output where it cannot decide; one branch
 * for those (about 1 in 4000 values); the stores.  Uniform conditions
 * (act, output kind, acc_out) are tested once, outside the loops.  The
 * seg head's first 1x1 (K = 32, nearly all epilogue; H100, 2026-12-07):
 * 43.4 us with the old out-of-line per-pair epilogue, 34.5 with q_out2
 * inline per pair (ncu: 62 thread instructions an output; a branch, its
 * reconvergence and a call site per output), 24.1 in phases (43 an
 * output, loads and the K loop included). */
template <int MI, int NI, bool EXT = false>
__device__ __forceinline__ void q_epilogue_tile(const mtk_qconv &q, int (&acc)[MI][NI][4], int P, int r0, int c0, int g, int t,
                                                const int32_t *__restrict__ bq, const float *__restrict__ mult,
                                                void *__restrict__ y, int y_f16, int32_t *__restrict__ acc_out, int hs = 8) {
    const float ry = q_y_rcp(q);
    const bool has_ys = q.y_scale > 0.0f;
    int cbias[NI][2];
    float cmul[NI][2];
#pragma unroll
    for (int ni = 0; ni < NI; ni++)
#pragma unroll
        for (int j = 0; j < 2; j++) {
            const int col = c0 + ni * 8 + t * 2 + j;
            const bool ok = col < q.CO;
            cbias[ni][j] = ok ? __ldg(bq + col) : 0; /* the sums cannot overflow: |bq| <= 2^31-1 - K*16256 */
            cmul[ni][j] = ok ? __ldg(mult + col) : 0.0f;
        }
    /* a dense NHWC output (ys0 = OH*OW*ldy) needs no division per row */
    const bool dense = q.ys0 == (int64_t)q.OH * q.OW * q.ldy;
#pragma unroll
    for (int mi = 0; mi < MI; mi++) {
        int64_t obase[2];
        bool rok[2];
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            const int pix = r0 + mi * 16 + g + hs * hr;
            rok[hr] = pix < P;
            if (dense) {
                obase[hr] = (int64_t)pix * q.ldy;
            } else {
                const int ox = pix % q.OW, rr = pix / q.OW;
                const int oy = rr % q.OH, n = rr / q.OH;
                obase[hr] = (int64_t)n * q.ys0 + ((int64_t)oy * q.OW + ox) * q.ldy;
            }
        }
        int av[NI][4];
#pragma unroll
        for (int ni = 0; ni < NI; ni++)
#pragma unroll
            for (int i = 0; i < 4; i++) av[ni][i] = acc[mi][ni][i] + cbias[ni][i & 1];
        if (acc_out) {
#pragma unroll
            for (int ni = 0; ni < NI; ni++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const int pix = r0 + mi * 16 + g + hs * (i >> 1), col = c0 + ni * 8 + t * 2 + (i & 1);
                    if (rok[i >> 1] && col < q.CO) acc_out[(int64_t)pix * q.CO + col] = av[ni][i];
                }
        }
        if (EXT && q.y_i32) { /* the sums themselves (a QUpsampleSum level) */
#pragma unroll
            for (int hr = 0; hr < 2; hr++) {
                if (!rok[hr]) continue;
#pragma unroll
                for (int ni = 0; ni < NI; ni++) {
                    const int col = c0 + ni * 8 + t * 2;
                    if (col < q.CO) q_put2i((int32_t *)y, obase[hr] + col, col + 1 < q.CO, av[ni][2 * hr], av[ni][2 * hr + 1]);
                }
            }
            continue;
        }
        /* dequantize, activation (q_dequant_act) */
        float v[NI][4];
        if (EXT && q.ups_n) {
            q_ups_dequant<NI>(q, av, cmul, r0 + mi * 16 + g, c0, t, P, v);
        } else {
#pragma unroll
            for (int ni = 0; ni < NI; ni++)
#pragma unroll
                for (int i = 0; i < 4; i++) v[ni][i] = q_mul(q_i2f(av[ni][i]), cmul[ni][i & 1]);
        }
        if (q.act == 1) {
#pragma unroll
            for (int ni = 0; ni < NI; ni++)
#pragma unroll
                for (int i = 0; i < 4; i++) v[ni][i] = v[ni][i] > 0.0f ? v[ni][i] : 0.0f;
        } else if (q.act >= 2) {
#pragma unroll
            for (int ni = 0; ni < NI; ni++)
#pragma unroll
                for (int i = 0; i < 4; i++) v[ni][i] = q_act_slow(v[ni][i], q.act);
        }
        int qv[NI][4];
        if (has_ys) { /* quantize(v, y_scale): q_quant_r's steps */
            unsigned slow = 0;
#pragma unroll
            for (int ni = 0; ni < NI; ni++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const float u = q_mul(v[ni][i], ry);
                    const float frac = q_add(u, -floorf(u));
                    const bool ok = fabsf(u) < 256.0f && fabsf(q_add(frac, -0.5f)) > 0x1p-13f; /* false for NaN */
                    const int k = q_f2i(u);
                    qv[ni][i] = k > 127 ? 127 : (k < -128 ? -128 : k);
                    slow |= (ok ? 0u : 1u) << (ni * 4 + i);
                }
            if (slow) {
#pragma unroll
                for (int ni = 0; ni < NI; ni++)
#pragma unroll
                    for (int i = 0; i < 4; i++)
                        if ((slow >> (ni * 4 + i)) & 1u) qv[ni][i] = q_quant_slow(v[ni][i], q.y_scale);
            }
        }
        if (q.y_int8) { /* int8 for the next QConv, 0 in its padding channels */
            if (q.y2_scale > 0.0f) { /* ... quantized with its own scale (q_requant2) */
                const float r2 = q_div(1.0f, q.y2_scale);
#pragma unroll
                for (int ni = 0; ni < NI; ni++)
#pragma unroll
                    for (int i = 0; i < 4; i++) qv[ni][i] = q_requant2(q, qv[ni][i], r2);
            }
#pragma unroll
            for (int hr = 0; hr < 2; hr++) {
                if (!rok[hr]) continue;
#pragma unroll
                for (int ni = 0; ni < NI; ni++) {
                    const int col = c0 + ni * 8 + t * 2;
                    if (col >= q.COp) continue;
                    q_put2q((int8_t *)y + obase[hr] + col, col < q.CO ? qv[ni][2 * hr] : 0, col + 1 < q.CO ? qv[ni][2 * hr + 1] : 0);
                }
            }
            continue;
        }
        if (has_ys) { /* ... and dequantize again (q_epilogue) */
#pragma unroll
            for (int ni = 0; ni < NI; ni++)
#pragma unroll
                for (int i = 0; i < 4; i++) v[ni][i] = q_mul(q_i2f(qv[ni][i]), q.y_scale);
        }
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            if (!rok[hr]) continue;
#pragma unroll
            for (int ni = 0; ni < NI; ni++) {
                const int col = c0 + ni * 8 + t * 2;
                if (col < q.CO) q_put2f(y, y_f16, obase[hr] + col, col + 1 < q.CO, v[ni][2 * hr], v[ni][2 * hr + 1]);
            }
        }
    }
}

template <int BM, int BN, int WM, int WN, int STAGES, int CH> struct QT {
    static constexpr int WARPS_M = BM / WM, WARPS_N = BN / WN, NT = 32 * WARPS_M * WARPS_N;
    static constexpr int MI = WM / 16, NI = WN / 8;
    static constexpr int A_IT = (BM * 2 + NT - 1) / NT, B_IT = (BN * 2 + NT - 1) / NT;
    static constexpr int STAGE_BYTES = CH * (BM + BN) * 32;
    static constexpr int SMEM = STAGES * STAGE_BYTES;
    /* 8-warp blocks: at most 128 registers, two blocks an SM (the 64-output
     * warp tiles took 147 with the phased epilogue and fell to one block:
     * the depth head's 3x3 at 256x256, 54.5 -> 60.9 us on an H100) */
    static constexpr int MINB = NT <= 256 ? 2 : 1;
};

/* MB: the blocks an SM __launch_bounds__ asks for (0: QT::MINB) */
/* EXT: the epilogue also knows y_i32 and ups_n (one instantiation,
 * q_launch_ext; in every kernel the extra paths cost registers and spills:
 * the 128x128 tile went from 128 registers and none spilled to 712 bytes
 * of spill stores) */
template <int BM, int BN, int WM, int WN, int STAGES, int CH, int MB, bool FQ, bool EXT = false>
__global__ void __launch_bounds__(QT<BM, BN, WM, WN, STAGES, CH>::NT, MB > 0 ? MB : QT<BM, BN, WM, WN, STAGES, CH>::MINB)
    k_qgemm_tiled(mtk_qconv q, const int8_t *__restrict__ xq, const int8_t *__restrict__ wq, const int32_t *__restrict__ bq,
                  const float *__restrict__ mult, void *__restrict__ y, int y_f16, int32_t *__restrict__ acc_out, q_fx fx) {
    MTK_PDL_WAIT();
    typedef QT<BM, BN, WM, WN, STAGES, CH> T;
    extern __shared__ __align__(128) unsigned char q_sm[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp % T::WARPS_M, wn = warp / T::WARPS_M;
    const int g = lane >> 2, t = lane & 3;
    const int P = q.N * q.OH * q.OW; /* < 2^31: checked by the launcher */
    const int p0 = blockIdx.x * BM;
    const int n0 = blockIdx.y * BN;
    const int KT = q.KH * q.KW * (q.Cp >> 5), NS = (KT + CH - 1) / CH;
    const int64_t wrow = (int64_t)q.KH * q.KW * q.Cp;

    /* this thread's A pieces (pixel rows, 16-byte halves) and B pieces */
    const int8_t *abase[T::A_IT];
    const int8_t *asrc[T::A_IT];
    int aiy[T::A_IT], aix[T::A_IT], aoff[T::A_IT];
    bool aok[T::A_IT], aval[T::A_IT];
#pragma unroll
    for (int i = 0; i < T::A_IT; i++) {
        const int piece = tid + i * T::NT, r = piece >> 1;
        aok[i] = piece < BM * 2 && p0 + r < P;
        const int pix = aok[i] ? p0 + r : 0;
        const int ox = pix % q.OW, rr = pix / q.OW;
        const int oy = rr % q.OH, n = rr / q.OH;
        abase[i] = FQ ? (const int8_t *)(fx.x + (int64_t)n * fx.s0 + (piece & 1) * 16)
                      : xq + (int64_t)n * q.H * q.W * q.Cp + (piece & 1) * 16;
        aiy[i] = oy * q.sh - q.ph;
        aix[i] = ox * q.sw - q.pw;
        aoff[i] = q_sw(r, piece & 1);
        asrc[i] = xq;
        aval[i] = false;
    }
    const int8_t *bsrc[T::B_IT];
    int boff[T::B_IT];
    bool bok[T::B_IT];
#pragma unroll
    for (int i = 0; i < T::B_IT; i++) {
        const int piece = tid + i * T::NT, r = piece >> 1;
        bok[i] = piece < BN * 2 && n0 + r < q.COp;
        bsrc[i] = bok[i] ? wq + (int64_t)(n0 + r) * wrow + (piece & 1) * 16 : wq;
        boff[i] = q_sw(r, piece & 1);
    }
    const unsigned sm0 = q_smem(q_sm);

    /* the loader walks the chunks in order: (ky, kx) tap and channel offset
     * c0 advance incrementally; the source pixels are recomputed per tap */
    int l_ky = 0, l_kx = 0, l_c0 = 0, l_kc = 0;
    auto set_tap = [&]() {
#pragma unroll
        for (int i = 0; i < T::A_IT; i++) {
            const int iy = aiy[i] + l_ky * q.dh, ix = aix[i] + l_kx * q.dw;
            aval[i] = aok[i] && iy >= 0 && iy < q.H && ix >= 0 && ix < q.W;
            if (FQ) asrc[i] = aval[i] ? (const int8_t *)((const __half *)abase[i] + (int64_t)iy * fx.s2 + (int64_t)ix * fx.s3) : xq;
            else asrc[i] = aval[i] ? abase[i] + ((int64_t)iy * q.W + ix) * q.Cp : xq;
        }
    };
    set_tap();
    /* FQ: the raw FP16 A pieces of one stage, in registers between the
     * load (before the MMAs) and the quantize + store (after them) */
    uint4 fr[FQ ? CH : 1][FQ ? T::A_IT : 1][2];
    bool fv[FQ ? CH : 1][FQ ? T::A_IT : 1];
    const float xs = q.x_scale, xr = q_div(1.0f, xs);
    /* issue the loads of stage s (cp.async for B, and for A without FQ) */
    auto load_stage = [&](int s) {
        const unsigned sa = sm0 + (s % STAGES) * T::STAGE_BYTES, sb = sa + CH * BM * 32;
#pragma unroll
        for (int c = 0; c < CH; c++) {
            if (l_kc >= KT) {
                if (FQ) {
#pragma unroll
                    for (int i = 0; i < T::A_IT; i++) fv[FQ ? c : 0][i] = false;
                }
                continue;
            }
#pragma unroll
            for (int i = 0; i < T::A_IT; i++)
                if (T::A_IT * T::NT == BM * 2 || tid + i * T::NT < BM * 2) {
                    if (FQ) {
                        const bool ok = aval[i] && l_c0 + ((tid + i * T::NT) & 1) * 16 < q.C;
                        fv[FQ ? c : 0][i] = ok;
                        if (ok) {
                            const uint4 *src = (const uint4 *)((const __half *)asrc[i] + l_c0);
                            fr[FQ ? c : 0][i][0] = __ldg(src);
                            fr[FQ ? c : 0][i][1] = __ldg(src + 1);
                        }
                    } else {
                        q_cp16(sa + c * BM * 32 + aoff[i], aval[i] ? asrc[i] + l_c0 : xq, aval[i]);
                    }
                }
#pragma unroll
            for (int i = 0; i < T::B_IT; i++)
                if (T::B_IT * T::NT == BN * 2 || tid + i * T::NT < BN * 2)
                    q_cp16g(sb + c * BN * 32 + boff[i], bok[i] ? bsrc[i] + l_kc * 32 : wq, bok[i]);
            l_kc++;
            l_c0 += 32;
            if (l_c0 == q.Cp && l_kc < KT) {
                l_c0 = 0;
                if (++l_kx == q.KW) {
                    l_kx = 0;
                    l_ky++;
                }
                set_tap();
            }
        }
    };
    /* FQ: quantize the registers of stage s into its shared-memory slot */
    auto store_stage = [&](int s) {
        if (!FQ) return;
        unsigned char *sa = q_sm + (s % STAGES) * T::STAGE_BYTES;
#pragma unroll
        for (int c = 0; c < CH; c++)
#pragma unroll
            for (int i = 0; i < T::A_IT; i++)
                if (T::A_IT * T::NT == BM * 2 || tid + i * T::NT < BM * 2) {
                    const uint4 o = fv[FQ ? c : 0][i] ? q_quant16(fr[FQ ? c : 0][i][0], fr[FQ ? c : 0][i][1], xs, xr)
                                                      : make_uint4(0, 0, 0, 0);
                    *(uint4 *)(sa + c * BM * 32 + aoff[i]) = o;
                }
    };

    int acc[T::MI][T::NI][4];
#pragma unroll
    for (int mi = 0; mi < T::MI; mi++)
#pragma unroll
        for (int ni = 0; ni < T::NI; ni++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[mi][ni][i] = 0;

#pragma unroll 1
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < NS) {
            load_stage(s);
            store_stage(s);
        }
        q_cp_commit();
    }
    /* ldmatrix row / half of this lane: A x4 = rows 0-7 h0, 8-15 h0, 0-7 h1,
     * 8-15 h1 (a0..a3); B x4 = n 0-7 h0, 0-7 h1, 8-15 h0, 8-15 h1 */
    const int a_r = lane & 15, a_h = lane >> 4;
    const int b_r = (lane & 7) + ((lane >> 4) << 3), b_h = (lane >> 3) & 1;
    for (int s = 0; s < NS; s++) {
        q_cp_wait<STAGES - 2>();
        __syncthreads();
        const bool more = s + STAGES - 1 < NS;
        if (more) load_stage(s + STAGES - 1);
        q_cp_commit();
        const unsigned sa = sm0 + (s % STAGES) * T::STAGE_BYTES, sb = sa + CH * BM * 32;
#pragma unroll
        for (int c = 0; c < CH; c++) {
            if (s * CH + c >= KT) break;
            unsigned a[T::MI][4], b[T::NI][2];
#pragma unroll
            for (int mi = 0; mi < T::MI; mi++) {
                const int r = wm * WM + mi * 16 + a_r;
                q_ldsm4(a[mi], sa + c * BM * 32 + q_sw(r, a_h));
            }
#pragma unroll
            for (int nj = 0; nj < T::NI / 2; nj++) {
                const int r = wn * WN + nj * 16 + b_r;
                q_ldsm_b2(b[2 * nj], b[2 * nj + 1], sb + c * BN * 32 + q_sw(r, b_h));
            }
#pragma unroll
            for (int mi = 0; mi < T::MI; mi++)
#pragma unroll
                for (int ni = 0; ni < T::NI; ni++) q_mma(acc[mi][ni], a[mi], b[ni]);
        }
        if (FQ && more) store_stage(s + STAGES - 1);
    }
    q_cp_wait<0>();

    q_epilogue_tile<T::MI, T::NI, EXT>(q, acc, P, p0 + wm * WM, n0 + wn * WN, g, t, bq, mult, y, y_f16, acc_out);
}

template <int BM, int BN, int WM, int WN, int STAGES, int CH, int MB, bool FQ, bool EXT = false>
static cudaError_t q_launch(cudaStream_t st, const mtk_qconv *q, int64_t P, const int8_t *xq, const int8_t *wq,
                            const int32_t *bq, const float *mult, void *y, int y_f16, int32_t *acc, const q_fx &fx) {
    typedef QT<BM, BN, WM, WN, STAGES, CH> T;
    auto kern = k_qgemm_tiled<BM, BN, WM, WN, STAGES, CH, MB, FQ, EXT>;
    static unsigned long long done; /* this kernel's devices */
    const cudaError_t e = mtk_smem_optin(kern, T::SMEM, &done);
    if (e != cudaSuccess) return e;
    dim3 grid((unsigned)((P + BM - 1) / BM), (unsigned)((q->COp + BN - 1) / BN));
    mtk_launch(kern, grid, T::NT, T::SMEM, st, *q, xq, wq, bq, mult, y, y_f16, acc, fx);
    return cudaGetLastError();
}

/* Narrow 1x1 convolutions (CO <= NCO), configurations Q_CFG_NARROW (NCO
 * 4: the depth head's 32 -> 1 classifier) and Q_CFG_NARROW32 (NCO 32: the
 * seg head's 128 -> 19 one, say).  A tensor-core tile of 32 output
 * channels wastes 31 of them on the first, and the tiled kernel's time
 * (26.6 us over 262144 pixels on an H100, 2026-12-07, ncu) went to loads
 * and the epilogue, not the products (now 8.0 us).  Here a thread owns one
 * pixel: its Cp int8 inputs in 16-byte loads, dp4a against the weights
 * (shared memory, read by every thread at once: broadcasts), the same
 * int32 sums as the tensor cores (integer arithmetic is exact in any
 * order), then q_out2's epilogue per pair of channels.  COp is 32 for both
 * (CO <= 32). */
#define Q_NARROW_CP 256
template <int NCO>
__global__ void __launch_bounds__(256)
    k_qconv_narrow(mtk_qconv q, const int8_t *__restrict__ xq, const int8_t *__restrict__ wq, const int32_t *__restrict__ bq,
                   const float *__restrict__ mult, void *__restrict__ y, int y_f16, int32_t *__restrict__ acc_out) {
    MTK_PDL_WAIT();
    __shared__ __align__(16) int8_t ws[NCO * Q_NARROW_CP];
    for (int i = threadIdx.x; i < q.CO * q.Cp / 16; i += blockDim.x) {
        const int co = i / (q.Cp / 16), c = (i % (q.Cp / 16)) * 16;
        *(uint4 *)(ws + co * q.Cp + c) = __ldg((const uint4 *)(wq + (int64_t)co * q.Cp + c));
    }
    __syncthreads();
    const int64_t P = (int64_t)q.N * q.OH * q.OW;
    const int64_t pix = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (pix >= P) return;
    int acc[NCO];
#pragma unroll
    for (int co = 0; co < NCO; co++) acc[co] = 0;
    const int8_t *x = xq + pix * q.Cp; /* 1x1, stride 1, no padding: pixel pix of the input */
    for (int c = 0; c < q.Cp; c += 16) {
        const uint4 v = __ldg((const uint4 *)(x + c));
#pragma unroll
        for (int co = 0; co < NCO; co++) {
            if (co >= q.CO) break;
            const uint4 w = *(const uint4 *)(ws + co * q.Cp + c);
            acc[co] = __dp4a((int)v.x, (int)w.x, acc[co]);
            acc[co] = __dp4a((int)v.y, (int)w.y, acc[co]);
            acc[co] = __dp4a((int)v.z, (int)w.z, acc[co]);
            acc[co] = __dp4a((int)v.w, (int)w.w, acc[co]);
        }
    }
    const float ry = q_y_rcp(q);
    const int ox = (int)(pix % q.OW);
    const int64_t rr = pix / q.OW;
    const int oy = (int)(rr % q.OH), n = (int)(rr / q.OH);
    const int64_t obase = (int64_t)n * q.ys0 + ((int64_t)oy * q.OW + ox) * q.ldy;
    /* y_int8: every channel up to COp (= 32), 0 in the padding ones; else
     * the CO real ones */
    const int ncol = q.y_int8 ? q.COp : q.CO;
#pragma unroll
    for (int col = 0; col < 32; col += 2) {
        if (col >= ncol) break;
        const bool ok0 = col < NCO && col < q.CO, ok1 = col + 1 < NCO && col + 1 < q.CO;
        q_out2(q, ry, ok0 ? acc[col < NCO ? col : 0] + bq[col] : 0, ok1 ? acc[col + 1 < NCO ? col + 1 : 0] + bq[col + 1] : 0,
               ok0 ? mult[col] : 0.0f, ok1 ? mult[col + 1] : 0.0f, col, (int)pix, obase, y, y_f16, acc_out);
    }
}

static bool q_narrow_ok(const mtk_qconv *q, int nco) {
    return q->KH == 1 && q->KW == 1 && q->sh == 1 && q->sw == 1 && q->ph == 0 && q->pw == 0 && q->H == q->OH && q->W == q->OW &&
           q->CO <= nco && q->COp == 32 && q->Cp <= Q_NARROW_CP && q->Cp % 16 == 0;
}

template <int NCO>
static cudaError_t q_launch_narrow(cudaStream_t st, const mtk_qconv *q, int64_t P, const int8_t *xq, const int8_t *wq,
                                   const int32_t *bq, const float *mult, void *y, int y_f16, int32_t *acc) {
    mtk_launch(k_qconv_narrow<NCO>, dim3((unsigned)((P + 255) / 256)), 256, 0, st, *q, xq, wq, bq, mult, y, y_f16, acc);
    return cudaGetLastError();
}

/* Halo-tiled 3x3 convolutions (stride 1, padding 1, no dilation: the depth
 * head's four fuse convs), configurations Q_CFG_HALO32 / Q_CFG_HALO64.
 * The im2col tiles of k_qgemm_tiled load every input pixel nine times (one
 * a tap) through address arithmetic per piece and per tap: ncu on the
 * 512x512 one (H100, 2026-12-07) counted 35 M warp instructions for its
 * 1.77 M MMAs, twenty an MMA, with fixed-latency ("wait") stalls leading,
 * and 226 MB of L2 reads for a 25 MB input.  Here a block owns 8 output
 * rows of 16 pixels; per 32-channel chunk it copies the (8+2) x (16+2)
 * input halo once (cp.async, zero outside the image) and the nine taps'
 * weights of its BN output channels, and each warp runs its two rows'
 * m16 tiles over the nine taps straight from that halo: one ldmatrix a
 * row a tap, no address arithmetic in the loop, about two instructions an
 * MMA.  The products and sums are the same integers, so the epilogue
 * (q_epilogue_tile, one row at a time) gives the same bits as every other
 * configuration.  Needs OW % 16 == 0 (a tile row is one m16 tile of
 * consecutive pixels). */
/* UP (configurations as above, through mtk_qconv_upconv): the input is
 * not read from xq but made in the halo, as the fused resize would have
 * stored it (fuse_qresize.c): the bilinear upsample of a channel concat of
 * FP16 maps (bilin8, bit for bit the resize kernels' values), quantized
 * with the conv's x_scale (q_quant8).  fuse_qupconv.c: the depth head's
 * 25 MB int8 tensor at 512x512 and its launch go away. */
struct q_up {
    CatSrc src;
    int IH, IW, coord;
    float sh, sw;
};

/* one 32-channel chunk c of the (TY+2) x (TX+2) halo whose corner is input
 * pixel (y0, x0) of image n, 8 channels an item, zero outside the image */
template <int HX, int HP, int NT>
__device__ __forceinline__ void q_halo_upsample(const q_up &up, const mtk_qconv &q, int n, int y0, int x0, int c,
                                                  unsigned char *dst, float xs, float xr) {
#pragma unroll 2
    for (int it = threadIdx.x; it < HP * 4; it += NT) {
        const int hp = it >> 2, g8 = it & 3;
        const int iy = y0 + hp / HX, ix = x0 + hp % HX;
        uint2 v = make_uint2(0u, 0u);
        if (iy >= 0 && iy < q.H && ix >= 0 && ix < q.W) {
            const CatAt at = cat_at(up.src, c * 4 + g8);
            const Bilin tp = bilin_at(iy, ix, up.sh, up.sw, up.IH, up.IW, q.H, q.W, up.coord);
            v = q_quant8(bilin8(at.x, n * at.s0 + at.c, at.s2, at.s3, tp), xs, xr);
        }
        *(uint2 *)(dst + q_sw(hp, g8 >> 1) + (g8 & 1) * 8) = v;
    }
}

/* MI tile rows a warp (TY = 4 MI): 2, or 4 (configuration 20: half the B
 * fragment loads an MMA, 64 accumulators a thread with 32 channels) */
template <int BN, int S, int MI_ = 2> struct QH {
    static constexpr int TX = 16, TY = 4 * MI_, NT = 128, MI = MI_, NI = BN / 8;
    static constexpr int HX = TX + 2, HY = TY + 2, HP = HX * HY;
    static constexpr int HALO_BYTES = HP * 32;
    static constexpr int STAGE_BYTES = HALO_BYTES + 9 * BN * 32;
    static constexpr int SMEM = S * STAGE_BYTES;
    static constexpr int H_IT = (HP * 2 + NT - 1) / NT, W_IT = (9 * BN * 2 + NT - 1) / NT;
};

/* __launch_bounds__: four blocks an SM with 32 channels (127 registers),
 * three with 64 or with four rows a warp (64 accumulators a thread spilled
 * at 128) */
template <int BN, int S, bool UP, int MI = 2>
__global__ void __launch_bounds__(128, BN <= 32 && MI <= 2 ? 4 : 3)
    k_qconv_halo(mtk_qconv q, const int8_t *__restrict__ xq, const int8_t *__restrict__ wq, const int32_t *__restrict__ bq,
                 const float *__restrict__ mult, void *__restrict__ y, int y_f16, int32_t *__restrict__ acc_out, q_up up) {
    MTK_PDL_WAIT();
    typedef QH<BN, S, MI> T;
    extern __shared__ __align__(128) unsigned char q_sm[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int tiles_x = q.OW / T::TX, tiles_y = (q.OH + T::TY - 1) / T::TY;
    const int bx = blockIdx.x % tiles_x, rest = blockIdx.x / tiles_x;
    const int by = rest % tiles_y, n = rest / tiles_y;
    const int ox0 = bx * T::TX, oy0 = by * T::TY, n0 = blockIdx.y * BN;
    const int P = q.N * q.OH * q.OW; /* < 2^31: checked by the launcher */

    /* this thread's halo pieces (pixel, 16-byte half) and weight pieces:
     * sources without the chunk offset, which each stage adds */
    const int8_t *hsrc[T::H_IT];
    int hoff[T::H_IT];
    bool hok[T::H_IT];
#pragma unroll
    for (int i = 0; i < T::H_IT; i++) {
        const int piece = tid + i * T::NT, hp = piece >> 1, hh = piece & 1;
        const int iy = oy0 - 1 + hp / T::HX, ix = ox0 - 1 + hp % T::HX;
        hok[i] = piece < T::HP * 2 && iy >= 0 && iy < q.H && ix >= 0 && ix < q.W;
        hsrc[i] = !UP && hok[i] ? xq + (((int64_t)n * q.H + iy) * q.W + ix) * q.Cp + hh * 16 : xq;
        hoff[i] = piece < T::HP * 2 ? q_sw(hp, hh) : -1;
    }
    /* weight pieces: piece tid + i * NT is tap i * TPI + tid / (2 * BN),
     * channel row (tid % (2 * BN)) / 2, so one source and one offset serve
     * every i (2 * BN divides NT) */
    static_assert(T::NT % (2 * BN) == 0, "2 * BN must divide the block");
    constexpr int TPI = T::NT / (2 * BN);
    const int wr = (tid % (2 * BN)) >> 1, wh = tid & 1, wtap = tid / (2 * BN);
    const bool wok = n0 + wr < q.COp;
    const int wsrc = wok ? (n0 + wr) * 9 * q.Cp + wtap * q.Cp + wh * 16 : 0;
    const int woff = T::HALO_BYTES + q_sw(wtap * BN + wr, wh);
    const unsigned sm0 = q_smem(q_sm);
    auto load_stage = [&](int c) {
        const unsigned base = sm0 + (c % S) * T::STAGE_BYTES;
        const int c0 = c * 32;
        if (!UP) {
#pragma unroll
            for (int i = 0; i < T::H_IT; i++)
                if (T::H_IT * T::NT == T::HP * 2 || hoff[i] >= 0) q_cp16g(base + hoff[i], hsrc[i] + c0, hok[i]);
        }
#pragma unroll
        for (int i = 0; i < T::W_IT; i++)
            if (i * TPI + wtap < 9)
                q_cp16g(base + woff + i * TPI * BN * 32, wq + wsrc + i * TPI * q.Cp + c0, wok);
    };

    int acc[T::MI][T::NI][4];
#pragma unroll
    for (int mi = 0; mi < T::MI; mi++)
#pragma unroll
        for (int ni = 0; ni < T::NI; ni++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[mi][ni][i] = 0;
    const int NC = q.Cp >> 5;
#pragma unroll 1
    for (int s = 0; s < S - 1; s++) {
        if (s < NC) load_stage(s);
        q_cp_commit();
    }
    /* ldmatrix rows as in k_qgemm_tiled: A's row is the tile row's pixel */
    const int a_r = lane & 15, a_h = lane >> 4;
    const int b_r = (lane & 7) + ((lane >> 4) << 3), b_h = (lane >> 3) & 1;
    const float xs = q.x_scale, xr = q_div(1.0f, xs);
#pragma unroll 1
    for (int c = 0; c < NC; c++) {
        /* UP: this chunk's halo, upsampled and quantized here (slot c % S
         * was last read by chunk c - S, before the previous barrier) */
        if (UP) q_halo_upsample<T::HX, T::HP, T::NT>(up, q, n, oy0 - 1, ox0 - 1, c, q_sm + (c % S) * T::STAGE_BYTES, xs, xr);
        q_cp_wait<S - 2>();
        __syncthreads();
        if (c + S - 1 < NC) load_stage(c + S - 1);
        q_cp_commit();
        const unsigned base = sm0 + (c % S) * T::STAGE_BYTES;
#pragma unroll
        for (int ky = 0; ky < 3; ky++)
#pragma unroll
            for (int kx = 0; kx < 3; kx++) {
                unsigned a[T::MI][4], b[T::NI][2];
#pragma unroll
                for (int mi = 0; mi < T::MI; mi++)
                    q_ldsm4(a[mi], base + q_sw((warp * T::MI + mi + ky) * T::HX + a_r + kx, a_h));
#pragma unroll
                for (int nj = 0; nj < T::NI / 2; nj++) {
                    q_ldsm_b2(b[2 * nj], b[2 * nj + 1], base + T::HALO_BYTES + q_sw((ky * 3 + kx) * BN + nj * 16 + b_r, b_h));
                }
#pragma unroll
                for (int mi = 0; mi < T::MI; mi++)
#pragma unroll
                    for (int ni = 0; ni < T::NI; ni++) q_mma(acc[mi][ni], a[mi], b[ni]);
            }
    }
    q_cp_wait<0>();
    /* one tile row (16 consecutive pixels) at a time; rows below OH are
     * the last tile's overhang and store nothing */
#pragma unroll
    for (int mi = 0; mi < T::MI; mi++) {
        const int oy = oy0 + warp * T::MI + mi;
        int(&row)[1][T::NI][4] = *reinterpret_cast<int(*)[1][T::NI][4]>(&acc[mi]);
        q_epilogue_tile<1, T::NI>(q, row, oy < q.OH ? P : 0, (n * q.OH + oy) * q.OW + ox0, n0, g, t, bq, mult, y, y_f16,
                                  acc_out);
    }
}

static bool q_halo_ok(const mtk_qconv *q) {
    return q->KH == 3 && q->KW == 3 && q->sh == 1 && q->sw == 1 && q->ph == 1 && q->pw == 1 && q->dh == 1 && q->dw == 1 &&
           q->H == q->OH && q->W == q->OW && q->OW % 16 == 0 && (int64_t)q->COp * 9 * q->Cp < ((int64_t)1 << 31);
}

template <int BN, int S, bool UP, int MI = 2>
static cudaError_t q_launch_halo(cudaStream_t st, const mtk_qconv *q, const int8_t *xq, const int8_t *wq, const int32_t *bq,
                                 const float *mult, void *y, int y_f16, int32_t *acc, const q_up &up) {
    typedef QH<BN, S, MI> T;
    auto kern = k_qconv_halo<BN, S, UP, MI>;
    static unsigned long long done; /* this kernel's devices */
    const cudaError_t e = mtk_smem_optin(kern, T::SMEM, &done);
    if (e != cudaSuccess) return e;
    const int64_t blocks = (int64_t)q->N * ((q->OH + T::TY - 1) / T::TY) * (q->OW / T::TX);
    dim3 grid((unsigned)blocks, (unsigned)((q->COp + BN - 1) / BN));
    mtk_launch(kern, grid, T::NT, T::SMEM, st, *q, xq, wq, bq, mult, y, y_f16, acc, up);
    return cudaGetLastError();
}

/* ------------------------------------------------ 3x3 on wgmma (sm_90a)
 * The halo kernel's scheme on Hopper's warpgroup MMA: one warpgroup a
 * block, MT m64 tiles of 8 x 8 output pixels stacked in y (a tile of TY =
 * 8 MT rows x 8 columns), BN output channels.  Each 32-channel chunk of the
 * (TY + 2) x 10 input halo and the nine taps' weights go to shared memory
 * with 16-byte cp.async (zero-filled outside the image), in layouts that
 * the tensor cores read through descriptors, without swizzling (core
 * matrices of 8 rows x 16 bytes):
 *   halo   [k half][halo pixel][16 bytes]: the 8 pixels of a tile row at a
 *          tap are 8 consecutive halo pixels (one core matrix, any 16-byte
 *          start), the next tile row HX pixels on (sbo = 160), the other
 *          k half HHALF bytes on (lbo);
 *   weights [tap][k half][BN channels][16 bytes] (sbo 128, lbo WHALF).
 * The halves' distances are 64 modulo 128, so a warp's 16-byte stores of
 * (pixel, half) pairs fill all 32 banks.  A chunk is 9 x MT wgmma
 * m64nBNk32, one batch, waited for before the next chunk's barrier, while
 * the cp.async of the next S - 1 chunks are in flight.  The int32 sums
 * are the other kernels' (integer sums in any order), and the epilogue is
 * q_epilogue_tile's with rows g and g + 8 an image row apart, so every
 * configuration gives the same bits.  Needs OH % TY == 0 and OW % 8 == 0
 * (q_wg_ok). */
template <int BN, int MT, int S> struct QW {
    static constexpr int TX = 8, TY = 8 * MT, NT = 128, NI = BN / 8;
    static constexpr int HX = TX + 2, HY = TY + 2, HP = HX * HY;
    static constexpr int HHALF = (HP * 16 + 127) / 128 * 128 + 64;
    static constexpr int HALO_BYTES = 2 * HHALF;
    static constexpr int WHALF = BN * 16 + 64, WTAP = 2 * WHALF;
    static constexpr int STAGE_BYTES = HALO_BYTES + 9 * WTAP;
    static constexpr int SMEM = S * STAGE_BYTES;
    static constexpr int H_IT = (HP * 2 + NT - 1) / NT, W_PIECES = 9 * BN * 2, W_IT = (W_PIECES + NT - 1) / NT;
};

template <int BN, int MT, int S>
__global__ void __launch_bounds__(128, 1)
    k_qconv_wg(mtk_qconv q, const int8_t *__restrict__ xq, const int8_t *__restrict__ wq, const int32_t *__restrict__ bq,
               const float *__restrict__ mult, void *__restrict__ y, int y_f16, int32_t *__restrict__ acc_out) {
#if MT_WGMMA
    MTK_PDL_WAIT();
    typedef QW<BN, MT, S> T;
    extern __shared__ __align__(128) unsigned char q_sm[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int tiles_x = q.OW / T::TX, tiles_y = q.OH / T::TY;
    const int bx = blockIdx.x % tiles_x, rest = blockIdx.x / tiles_x;
    const int by = rest % tiles_y, n = rest / tiles_y;
    const int ox0 = bx * T::TX, oy0 = by * T::TY, n0 = blockIdx.y * BN;
    const int P = q.N * q.OH * q.OW; /* < 2^31: checked by the launcher */

    /* this thread's halo pieces (pixel, 16-byte half), without the chunk
     * offset that each stage adds */
    const int8_t *hsrc[T::H_IT];
    int hoff[T::H_IT];
    bool hok[T::H_IT];
#pragma unroll
    for (int i = 0; i < T::H_IT; i++) {
        const int piece = tid + i * T::NT, hp = piece >> 1, hh = piece & 1;
        const int iy = oy0 - 1 + hp / T::HX, ix = ox0 - 1 + hp % T::HX;
        hok[i] = piece < T::HP * 2 && iy >= 0 && iy < q.H && ix >= 0 && ix < q.W;
        hsrc[i] = hok[i] ? xq + (((int64_t)n * q.H + iy) * q.W + ix) * q.Cp + hh * 16 : xq;
        hoff[i] = piece < T::HP * 2 ? hh * T::HHALF + hp * 16 : -1;
    }
    const int64_t wrow = (int64_t)9 * q.Cp;
    const unsigned sm0 = q_smem(q_sm);
    auto load_stage = [&](int c) {
        const unsigned base = sm0 + (c % S) * T::STAGE_BYTES;
        const int c0 = c * 32;
#pragma unroll
        for (int i = 0; i < T::H_IT; i++)
            if (T::H_IT * T::NT == T::HP * 2 || hoff[i] >= 0) q_cp16g(base + hoff[i], hsrc[i] + c0, hok[i]);
        /* weight piece p: (tap, channel row r, half h), p = (tap BN + r) 2 + h */
#pragma unroll
        for (int i = 0; i < T::W_IT; i++) {
            const int p = tid + i * T::NT;
            if (T::W_IT * T::NT == T::W_PIECES || p < T::W_PIECES) {
                const int h = p & 1, rt = p >> 1, tap = rt / BN, r = rt - tap * BN;
                const bool ok = n0 + r < q.COp;
                q_cp16g(base + T::HALO_BYTES + tap * T::WTAP + h * T::WHALF + r * 16,
                        ok ? wq + (n0 + r) * wrow + tap * q.Cp + h * 16 + c0 : wq, ok);
            }
        }
    };

    int acc[MT][BN / 2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int i = 0; i < BN / 2; i++) acc[mt][i] = 0;
    const int NC = q.Cp >> 5;
#pragma unroll 1
    for (int s = 0; s < S - 1; s++) {
        if (s < NC) load_stage(s);
        q_cp_commit();
    }
#pragma unroll 1
    for (int c = 0; c < NC; c++) {
        q_cp_wait<S - 2>();
        wg_proxy_fence();
        __syncthreads();
        if (c + S - 1 < NC) load_stage(c + S - 1);
        q_cp_commit();
        const unsigned base = sm0 + (c % S) * T::STAGE_BYTES;
        wg_fence();
#pragma unroll
        for (int ky = 0; ky < 3; ky++)
#pragma unroll
            for (int kx = 0; kx < 3; kx++) {
                const uint64_t db = wg_desc(base + T::HALO_BYTES + (ky * 3 + kx) * T::WTAP, T::WHALF, 128);
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
                    wg_s8<BN>::mma(acc[mt], wg_desc(base + ((mt * 8 + ky) * T::HX + kx) * 16, T::HHALF, T::HX * 16), db);
            }
        wg_commit();
        wg_wait<0>();
    }
    q_cp_wait<0>();
    /* warp w's rows 16w + g and 16w + g + 8 of tile mt: image rows oy0 + 8
     * mt + 2w and the next, column ox0 + g */
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        const int oy = oy0 + mt * 8 + 2 * warp;
        int(&row)[1][T::NI][4] = *reinterpret_cast<int(*)[1][T::NI][4]>(&acc[mt][0]);
        q_epilogue_tile<1, T::NI>(q, row, P, (n * q.OH + oy) * q.OW + ox0, n0, g, t, bq, mult, y, y_f16, acc_out, q.OW);
    }
#else
    __trap(); /* never launched: q_wg_ok is false without sm_90a */
#endif
}

static bool q_wg_ok(const mtk_qconv *q, int ty) {
#if MTMI_CUDA_WGMMA
    return q->KH == 3 && q->KW == 3 && q->sh == 1 && q->sw == 1 && q->ph == 1 && q->pw == 1 && q->dh == 1 && q->dw == 1 &&
           q->H == q->OH && q->W == q->OW && q->OW % 8 == 0 && q->OH % ty == 0 &&
           (int64_t)q->COp * 9 * q->Cp < ((int64_t)1 << 31);
#else
    (void)q;
    (void)ty;
    return false;
#endif
}

template <int BN, int MT, int S>
static cudaError_t q_launch_wg(cudaStream_t st, const mtk_qconv *q, const int8_t *xq, const int8_t *wq, const int32_t *bq,
                               const float *mult, void *y, int y_f16, int32_t *acc) {
    typedef QW<BN, MT, S> T;
    auto kern = k_qconv_wg<BN, MT, S>;
    static unsigned long long done; /* this kernel's devices */
    const cudaError_t e = mtk_smem_optin(kern, T::SMEM, &done);
    if (e != cudaSuccess) return e;
    const int64_t blocks = (int64_t)q->N * (q->OH / T::TY) * (q->OW / T::TX);
    dim3 grid((unsigned)blocks, (unsigned)((q->COp + BN - 1) / BN));
    mtk_launch(kern, grid, T::NT, T::SMEM, st, *q, xq, wq, bq, mult, y, y_f16, acc);
    return cudaGetLastError();
}

/* ------------------------------ 3x3 on wgmma, weights resident (sm_90a)
 * k_qconv_wg's scheme made persistent, with the block's weights resident
 * in shared memory and NWG warpgroups that each run their own tiles
 * (wgconv.cuh says why and how; the FP16 kernel k_hconv_wr shares that
 * main loop).  The halo and weight layouts and the descriptors are
 * k_qconv_wg's, the sums the same integers, the epilogue the same code:
 * the same bits as every other configuration. */
template <int BN, int MT, int NWG, int S>
__global__ void __launch_bounds__(WR<BN, MT, NWG, S>::NT, 1)
    k_qconv_wr(mtk_qconv q, const int8_t *__restrict__ xq, const int8_t *__restrict__ wq, const int32_t *__restrict__ bq,
               const float *__restrict__ mult, void *__restrict__ y, int y_f16, int32_t *__restrict__ acc_out) {
#if MT_WGMMA
    MTK_PDL_WAIT();
    extern __shared__ __align__(128) unsigned char q_sm[];
    const wr_geom gm = {(const unsigned char *)xq, (int64_t)q.H * q.W * q.Cp, q.Cp, (const unsigned char *)wq, (int64_t)9 * q.Cp,
                        q.Cp, q.COp, q.N, q.H, q.W, 0, q.Cp};
    const int P = q.N * q.OH * q.OW; /* < 2^31: checked by the launcher */
    const int lane = threadIdx.x & 31, warp = (threadIdx.x & 127) >> 5;
    const int g = lane >> 2, t = lane & 3, n0 = blockIdx.y * BN;
    /* a tile's epilogue, as k_qconv_wg's: warp w's rows are image rows oy0
     * + 8 mt + 2w and the next, column ox0 + g */
    auto epi = [&](int (&acc)[MT][BN / 2], int n, int oy0, int ox0) {
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            const int oy = oy0 + mt * 8 + 2 * warp;
            int(&row)[1][BN / 8][4] = *reinterpret_cast<int(*)[1][BN / 8][4]>(&acc[mt][0]);
            q_epilogue_tile<1, BN / 8>(q, row, P, (n * q.OH + oy) * q.OW + ox0, n0, g, t, bq, mult, y, y_f16, acc_out, q.OW);
        }
    };
    wr_conv<BN, MT, NWG, S, wg_s8<BN>, int>(gm, q_sm, epi);
#else
    __trap(); /* never launched: q_wr_ok is false without sm_90a */
#endif
}

template <int BN, int MT, int NWG, int S> static bool q_wr_ok(const mtk_qconv *q) {
    return q_wg_ok(q, 8 * MT) && wr_smem<BN, MT, NWG, S>(q->Cp) <= WR_SMEM_MAX;
}

template <int BN, int MT, int NWG, int S>
static cudaError_t q_launch_wr(cudaStream_t st, const mtk_qconv *q, const int8_t *xq, const int8_t *wq, const int32_t *bq,
                               const float *mult, void *y, int y_f16, int32_t *acc) {
    typedef WR<BN, MT, NWG, S> T;
    auto kern = k_qconv_wr<BN, MT, NWG, S>;
    static unsigned long long done; /* this kernel's devices: opted in to the most, once */
    const cudaError_t e = mtk_smem_optin(kern, WR_SMEM_MAX, &done);
    if (e != cudaSuccess) return e;
    const int64_t ntiles = (int64_t)q->N * (q->OH / T::TY) * (q->OW / T::TX);
    const dim3 grid = wr_grid(ntiles, (q->COp + BN - 1) / BN, NWG);
    mtk_launch(kern, grid, T::NT, (size_t)wr_smem<BN, MT, NWG, S>(q->Cp), st, *q, xq, wq, bq, mult, y, y_f16, acc);
    return cudaGetLastError();
}

/* tile configurations: BM pixels x BN channels, warp tile WM x WN, STAGES
 * deep, CH 32-byte chunks of k per stage.  11 and 12 (two warps a block):
 * for the small layers whose kernels take ~18 us whatever their size,
 * four times the blocks of the smallest tile so far, to test the
 * explanation that one block an SM leaves them latency-bound
 * (docs/PERFORMANCE.md); measured on an H200 (2026-12-07): no faster
 * than the others, so not picked.  Every configuration so far gives a
 * thread 32 or 64 outputs, and the floor stayed; 13 and 14 (16x16 warp
 * tiles: 8 outputs a thread, a quarter of the epilogue chain) test
 * whether that chain is the floor: on an H100 (2026-12-07) they halved the
 * small 1x1 layers (P <= 4096: 13.7-14.4 -> 7.0-10.4 us) and lost on the
 * large ones, so the floor is too few warps in flight, not the chain;
 * q_pick takes them for layers of <= 1M outputs.  The last column asks
 * __launch_bounds__ for that many blocks an SM (0: QT::MINB).  16 is 1
 * with five blocks instead of four (ptxas: 96 registers and 36 bytes of
 * spill instead of 112): for the 3x3 layers that 1 runs at 25 % occupancy
 * with "wait" stalls leading (the depth head's 512x512 conv, 83.6 us);
 * measured on an H100 (2026-12-07): 102.8 us against 1's 81.9, so the
 * stalls were not occupancy; kept in the sweep, not picked.  The 3x3
 * layers went to the halo kernel instead (18, 19). */
#define Q_CFGS(X)                       \
    X(1, 128, 32, 32, 32, 4, 2, 0)      \
    X(2, 256, 32, 64, 32, 3, 2, 0)      \
    X(3, 128, 32, 32, 32, 3, 4, 0)      \
    X(4, 128, 64, 32, 32, 4, 2, 0)      \
    X(5, 128, 64, 64, 32, 4, 2, 0)      \
    X(6, 256, 64, 64, 32, 3, 2, 0)      \
    X(7, 128, 128, 64, 32, 4, 2, 0)     \
    X(8, 64, 128, 32, 32, 4, 2, 0)      \
    X(9, 128, 160, 64, 32, 4, 2, 0)     \
    X(10, 64, 160, 32, 32, 4, 2, 0)     \
    X(11, 64, 32, 32, 32, 4, 2, 0)      \
    X(12, 32, 64, 32, 32, 4, 2, 0)      \
    X(13, 64, 32, 16, 16, 4, 2, 0)      \
    X(14, 32, 32, 16, 16, 4, 2, 0)      \
    X(16, 128, 32, 32, 32, 4, 2, 5)
#define Q_CFG_NARROW 15   /* k_qconv_narrow<4> */
#define Q_CFG_NARROW32 17 /* k_qconv_narrow<32>: swept, not picked (H100, 2026-12-07: the seg
                           * classifier 23.6 us against 13.9 tiled: 19 dot products a pixel
                           * on CUDA cores cost more than the padded tensor-core tile) */
#define Q_CFG_HALO32 18   /* k_qconv_halo<32, 3> */
#define Q_CFG_HALO64 19   /* k_qconv_halo<64, 3> */
#define Q_CFG_HALO32R4 20 /* k_qconv_halo<32, 3, false, 4>: 16x16 pixels, four rows a warp; swept,
                           * not picked (H100, 2026-12-07: fuse.0 64.2 us against 66.2, fuse.2
                           * 45.4 against 46.2, fuse.1 51.1 against 49.4, fuse.3 21.5 against
                           * 18.5: 168 registers, three blocks an SM, cost what the halved B
                           * loads saved) */
/* 21-25: k_qconv_wg (wgmma, sm_90a), 3x3 stride 1 only: (BN, MT, S).
 * Swept on an H100 (2026-12-08, test_cuda_int8 --bench, us; halo kernel
 * in brackets): fuse.0 512x512 CO 32: 99.7 / 81.0 (MT 4) [64.6-68.9];
 * fuse.1 256x256 CO 64: 55.3 [49.5]; fuse.2 128x128 CO 160: 60.5 (BN 80),
 * 86.5 (BN 160), 49.0 (BN 32, MT 4) [45.0-49.0]; fuse.3 32x32 CO 256:
 * 18.8 [17.1].  Not picked by default (MTMI_QCONV_WGMMA=1 picks them):
 * docs/PERFORMANCE.md says why.  Variants with the core-matrix rows
 * padded off the 128-byte grid (no shared-memory bank sharing whatever
 * order the tensor cores read them in) measured the same and were
 * dropped. */
#define Q_WG_CFGS(X) \
    X(21, 32, 2, 3)  \
    X(22, 32, 4, 3)  \
    X(23, 64, 2, 3)  \
    X(24, 80, 2, 3)  \
    X(25, 160, 1, 3)
#define Q_CFG_WG_FIRST 21
#define Q_CFG_AUTO_WG (-2) /* the automatic choice with the wgmma 3x3 configurations (MTK_QCONV_AUTO_WG) */
#define Q_CFG_WG_LAST 25
/* 26-30: k_qconv_wr (wgmma, weights resident, persistent), 3x3 stride 1
 * only: (BN, MT, NWG, S).  Built 2026-12-08 without a GPU (eighth
 * session); not yet measured.  Predicted from the byte and instruction
 * counts (docs/PERFORMANCE.md): the depth head's 3x3 convs 1.5-2x faster
 * than the halo kernel, so the automatic choice with wgmma
 * (MTMI_QCONV_WGMMA=1) takes them where they fit; the default does not
 * until they are measured.  ptxas (sm_90a): 26 138 registers, 28 and 29
 * 168, none spilling; 27 (64 x 2 tiles under three warpgroups' cap of 168)
 * spills 68 bytes, 30 is the same tile with two warpgroups (232). */
#define Q_WR_CFGS(X)    \
    X(26, 32, 2, 3, 3)  \
    X(27, 64, 2, 3, 3)  \
    X(28, 32, 4, 2, 3)  \
    X(29, 64, 1, 3, 4)  \
    X(30, 64, 2, 2, 4)
#define Q_CFG_WR_FIRST 26
#define Q_CFG_WR_LAST 30
#define Q_NCFG 30
#define Q_IS_HALO(c) ((c) == Q_CFG_HALO32 || (c) == Q_CFG_HALO64 || (c) == Q_CFG_HALO32R4)
/* the 3x3-only wgmma kernels, k_qconv_wg's and k_qconv_wr's */
#define Q_IS_WG(c) ((c) >= Q_CFG_WG_FIRST && (c) <= Q_CFG_WR_LAST)

/* the tile height (8 MT) of wgmma configuration c */
static int q_wg_ty(int c) {
    switch (c) {
#define X(id, BN, MT, S) \
    case id: return 8 * MT;
        Q_WG_CFGS(X)
#undef X
    default: return 8;
    }
}

static const char *q_cfg_name(int c) {
    switch (c) {
#define X(id, BM, BN, WM, WN, S, CH, MB) \
    case id: return MB ? #BM "x" #BN " w" #WM "x" #WN " s" #S " k" #CH " b" #MB : #BM "x" #BN " w" #WM "x" #WN " s" #S " k" #CH;
        Q_CFGS(X)
#undef X
    case 0: return "simple";
    case Q_CFG_NARROW: return "narrow (dp4a, a pixel a thread, CO <= 4)";
    case Q_CFG_NARROW32: return "narrow (dp4a, a pixel a thread, CO <= 32)";
    case Q_CFG_HALO32: return "halo 3x3 (8x16 pixels x 32, s3)";
    case Q_CFG_HALO64: return "halo 3x3 (8x16 pixels x 64, s3)";
    case Q_CFG_HALO32R4: return "halo 3x3 (16x16 pixels x 32, 4 rows a warp, s3)";
#define X(id, BN, MT, S) \
    case id: return "wgmma 3x3 (" #MT "x8x8 pixels x " #BN ", s" #S ")";
        Q_WG_CFGS(X)
#undef X
#define X(id, BN, MT, NWG, S) \
    case id: return "wgmma resident 3x3 (" #MT "x8x8 pixels x " #BN ", " #NWG " warpgroups, s" #S ")";
        Q_WR_CFGS(X)
#undef X
    default: return "auto";
    }
}

static cudaError_t q_run_cfg(int c, bool fq, cudaStream_t st, const mtk_qconv *q, int64_t P, const int8_t *xq,
                             const int8_t *wq, const int32_t *bq, const float *mult, void *y, int y_f16, int32_t *acc,
                             const q_fx &fx) {
    switch (c) {
#define X(id, BM, BN, WM, WN, S, CH, MB)                                                                      \
    case id:                                                                                                  \
        return fq ? q_launch<BM, BN, WM, WN, S, CH, MB, true>(st, q, P, xq, wq, bq, mult, y, y_f16, acc, fx) \
                  : q_launch<BM, BN, WM, WN, S, CH, MB, false>(st, q, P, xq, wq, bq, mult, y, y_f16, acc, fx);
        Q_CFGS(X)
#undef X
    case Q_CFG_NARROW: /* no fused-quantize variant: the callers map fq to a tiled one */
        return q_launch_narrow<4>(st, q, P, xq, wq, bq, mult, y, y_f16, acc);
    case Q_CFG_NARROW32:
        return q_launch_narrow<32>(st, q, P, xq, wq, bq, mult, y, y_f16, acc);
    case Q_CFG_HALO32: /* no fused-quantize variant either (3x3 inputs are int8 already) */
        return q_launch_halo<32, 3, false>(st, q, xq, wq, bq, mult, y, y_f16, acc, q_up{});
    case Q_CFG_HALO64:
        return q_launch_halo<64, 3, false>(st, q, xq, wq, bq, mult, y, y_f16, acc, q_up{});
    case Q_CFG_HALO32R4:
        return q_launch_halo<32, 3, false, 4>(st, q, xq, wq, bq, mult, y, y_f16, acc, q_up{});
#define X(id, BN, MT, S) \
    case id: return q_launch_wg<BN, MT, S>(st, q, xq, wq, bq, mult, y, y_f16, acc);
        Q_WG_CFGS(X)
#undef X
#define X(id, BN, MT, NWG, S) \
    case id: return q_launch_wr<BN, MT, NWG, S>(st, q, xq, wq, bq, mult, y, y_f16, acc);
        Q_WR_CFGS(X)
#undef X
    default: return mtk_qconv_gemm_simple(st, q, xq, wq, bq, mult, y, y_f16, acc);
    }
}

/* the configuration for a layer, from the H100 sweep of test_cuda_int8
 * --bench over the reference heads (docs/PERFORMANCE.md); every
 * configuration gives the same bits */
static int q_pick(const mtk_qconv *q, int64_t P, bool wg) {
    const int64_t pb128 = (P + 127) / 128;
    if (q_narrow_ok(q, 4)) return Q_CFG_NARROW;
    /* wg (cfg Q_CFG_AUTO_WG): the 3x3 convs on wgmma where a configuration
     * fits their output channels */
    if (wg) {
        /* weights resident where they fit (64 channels a block where the
         * channels come in 64s: wgmma's n64 reads as many bytes of shared
         * memory as it has clocks of MMAs, n32 half again more) */
        if (q->COp % 64 == 0 && q_wr_ok<64, 1, 3, 4>(q)) return 29;
        if (q_wr_ok<32, 2, 3, 3>(q)) return 26;
        const int c = q->COp == 32 ? 22 : q->COp == 64 ? 23 : q->COp % 80 == 0 ? 24 : 0;
        if (c && q_wg_ok(q, q_wg_ty(c))) return c;
    }
    /* small 1x1 layers (<= 1M outputs) are latency-bound: the most warps,
     * 16x16 warp tiles (H100 sweep, 2026-12-07: 13.7-14.4 -> 7.0-10.4 us) */
    if (q->KH * q->KW == 1 && P * q->COp <= ((int64_t)1 << 20)) return P <= 1024 && q->COp <= 128 ? 14 : 13;
    /* 3x3, stride 1: the halo tiles; 64 channels a block where that still
     * fills two waves of SMs */
    if (q_halo_ok(q)) {
        return q->COp > 128 && q->COp % 64 ? Q_CFG_HALO64 : Q_CFG_HALO32;
    }
    if (q->COp == 32) return 1;
    if (q->COp == 64) return q->KH * q->KW > 1 && pb128 >= 264 ? 6 : 4;
    if (q->COp == 160) return pb128 >= 120 ? 9 : 10;
    /* 128x128 tiles for the seg head's K = 512 fuse conv over 65536 pixels
     * (H100 sweep, 2026-12-07: 53.6 us against 64.2 for 64x128) */
    if (q->COp % 128 == 0) return q->KH * q->KW == 1 && q->Cp <= 64 ? 4 : (pb128 >= 256 ? 7 : 8);
    if (q->COp % 64 == 0) return 4;
    return 1;
}

extern "C" int mtk_qconv_ncfg(void) { return Q_NCFG; }
extern "C" int mtk_qconv_wgmma_built(void) { return MTMI_CUDA_WGMMA; }
/* configuration cfg (0..Q_NCFG) runs as itself on q; one that does not
 * fit runs configuration 1 (mtk_qconv_gemm_cfg) */
static bool q_cfg_fits(const mtk_qconv *q, int cfg) {
    if (cfg == Q_CFG_NARROW) return q_narrow_ok(q, 4);
    if (cfg == Q_CFG_NARROW32) return q_narrow_ok(q, 32);
    if (Q_IS_HALO(cfg)) return q_halo_ok(q);
    switch (cfg) {
#define X(id, BN, MT, NWG, S) \
    case id: return q_wr_ok<BN, MT, NWG, S>(q);
        Q_WR_CFGS(X)
#undef X
    }
    if (Q_IS_WG(cfg)) return q_wg_ok(q, q_wg_ty(cfg));
    return cfg >= 0 && cfg <= Q_NCFG;
}
extern "C" int mtk_qconv_cfg_fits(const mtk_qconv *q, int cfg) { return q_cfg_fits(q, cfg); }
extern "C" const char *mtk_qconv_cfg_name(int cfg) { return q_cfg_name(cfg); }

/* The one kernel whose epilogue takes y_i32 and ups_n (the reassociated
 * seg fuse conv's levels, fuse_qupsum.c): 64x64 tiles of 32x32 warp tiles,
 * four warps, so each thread's upsample taps serve 8 outputs and it may
 * use up to 255 registers. */
static cudaError_t q_launch_ext(cudaStream_t st, const mtk_qconv *q, int64_t P, const int8_t *xq, const int8_t *wq,
                                const int32_t *bq, const float *mult, void *y, int y_f16, int32_t *acc, const q_fx &fx) {
    return q_launch<64, 64, 32, 32, 4, 2, 0, false, true>(st, q, P, xq, wq, bq, mult, y, y_f16, acc, fx);
}

/* a level-0 GEMM with upsampled levels (fuse_qupsum.c): 1x1, and levels
 * that tile the output with float2-aligned channels */
static bool q_ups_ok(const mtk_qconv *q) {
    if (q->ups_n < 1 || q->ups_n > MTK_QUPS_MAX || q->KH != 1 || q->KW != 1 || q->sh != 1 || q->sw != 1 || q->ph || q->pw)
        return false;
    for (int l = 0; l < q->ups_n; l++) {
        const mtk_qups_level *v = &q->ups[l];
        /* and channel pairs as float2-sized loads: even strides, 8-byte aligned */
        if (!qup_level_ok(v, q->OH, q->OW) || v->ldp < q->CO || v->ldp % 2 || v->s0 % 2 || (uintptr_t)v->p % 8) return false;
    }
    return true;
}

/* y_i32: no requantization, int8 output or upsampled levels */
static bool q_i32_ok(const mtk_qconv *q) { return !q->y_i32 || (!q->y_int8 && !q->ups_n && q->ldy >= q->CO); }

static bool q_geom_ok(const mtk_qconv *q, int64_t P) {
    return P > 0 && P <= ((int64_t)1 << 30) && (int64_t)q->N * q->H * q->W <= ((int64_t)1 << 30);
}

extern "C" cudaError_t mtk_qconv_gemm_cfg(cudaStream_t st, const mtk_qconv *q, const int8_t *xq, const int8_t *wq,
                                          const int32_t *bq, const float *mult, void *y, int y_f16, int32_t *acc, int cfg) {
    int64_t P = (int64_t)q->N * q->OH * q->OW;
    if (P <= 0 || q->CO <= 0) return cudaSuccess;
    if (q->Cp % 32 || q->COp % 32 || q->COp < q->CO) return cudaErrorInvalidValue;
    if (q->y_int8 && !(q->y_scale > 0.0f)) return cudaErrorInvalidValue;
    if (q->y2_scale > 0.0f && !q->y_int8) return cudaErrorInvalidValue;
    if (cfg < 0) cfg = q_pick(q, P, cfg == Q_CFG_AUTO_WG);
    if (cfg <= Q_NCFG && !q_cfg_fits(q, cfg)) cfg = 1;
    if (q->ups_n || q->y_i32) { /* the upsampled levels, the int32 stores: the EXT kernel */
        if ((q->ups_n && !q_ups_ok(q)) || !q_i32_ok(q) || !q_geom_ok(q, P)) return cudaErrorInvalidValue;
        q_fx none = {nullptr, 0, 0, 0};
        return q_launch_ext(st, q, P, xq, wq, bq, mult, y, y_f16, acc, none);
    }
    if (cfg > Q_NCFG || !q_geom_ok(q, P)) cfg = 0;
    q_fx fx = {nullptr, 0, 0, 0};
    return q_run_cfg(cfg, false, st, q, P, xq, wq, bq, mult, y, y_f16, acc, fx);
}

extern "C" cudaError_t mtk_qconv_gemm(cudaStream_t st, const mtk_qconv *q, const int8_t *xq, const int8_t *wq, const int32_t *bq,
                                      const float *mult, void *y, int y_f16, int32_t *acc) {
    return mtk_qconv_gemm_cfg(st, q, xq, wq, bq, mult, y, y_f16, acc, -1);
}

extern "C" int mtk_qconv_can_fuse(const mtk_qconv *q, const void *x, const int64_t xs[4], int x_f16) {
    int64_t P = (int64_t)q->N * q->OH * q->OW;
    return x_f16 && q->KH * q->KW == 1 && q->C % 16 == 0 && xs[1] == 1 && xs[0] % 8 == 0 && xs[2] % 8 == 0 &&
           xs[3] % 8 == 0 && ((uintptr_t)x & 15) == 0 && q_geom_ok(q, P);
}

extern "C" cudaError_t mtk_qconv_run(cudaStream_t st, const mtk_qconv *q, const void *x, const int64_t xs[4], int x_f16,
                                     int8_t *xq, const int8_t *wq, const int32_t *bq, const float *mult, void *y, int y_f16,
                                     int32_t *acc, int cfg, int fuse) {
    int64_t P = (int64_t)q->N * q->OH * q->OW;
    if (P <= 0 || q->CO <= 0) return cudaSuccess;
    if (q->Cp % 32 || q->COp % 32 || q->COp < q->CO) return cudaErrorInvalidValue;
    /* fuse < 0: off, measured slower than the two launches on H100
     * (docs/PERFORMANCE.md); the plan passes tuning.qconv_fuse. */
    if (fuse < 0) fuse = 0;
    if ((q->ups_n && !q_ups_ok(q)) || !q_i32_ok(q)) return cudaErrorInvalidValue;
    if (q->x_int8) /* xq was written by the previous QConv (fuse_qchain.c) */
        return mtk_qconv_gemm_cfg(st, q, xq, wq, bq, mult, y, y_f16, acc, cfg);
    if (fuse && cfg != 0 && !q->ups_n && !q->y_i32 && mtk_qconv_can_fuse(q, x, xs, x_f16)) {
        if (cfg < 0 || cfg > Q_NCFG) cfg = q_pick(q, P, false);
        if (cfg == Q_CFG_NARROW || cfg == Q_CFG_NARROW32 || Q_IS_HALO(cfg) || Q_IS_WG(cfg))
            cfg = 1; /* no fused-quantize variant */
        q_fx fx = {(const __half *)x, xs[0], xs[2], xs[3]};
        return q_run_cfg(cfg, true, st, q, P, xq, wq, bq, mult, y, y_f16, acc, fx);
    }
    cudaError_t e = mtk_qconv_quantize(st, x, xs, x_f16, xq, q->N, q->C, q->H, q->W, q->Cp, q->x_scale);
    if (e != cudaSuccess) return e;
    return mtk_qconv_gemm_cfg(st, q, xq, wq, bq, mult, y, y_f16, acc, cfg);
}

extern "C" int mtk_qconv_upconv_supported(const mtk_qconv *q) {
    const int64_t P = (int64_t)q->N * q->OH * q->OW;
    return !q->ups_n && !q->y_i32 && q_halo_ok(q) && q_geom_ok(q, P) && q->C == q->Cp && q->C % 8 == 0 && q->x_scale > 0.0f &&
           q->COp % 32 == 0 && q->COp >= q->CO && (!q->y_int8 || q->y_scale > 0.0f);
}

extern "C" cudaError_t mtk_qconv_upconv(cudaStream_t st, const mtk_qconv *q, int nsrc, const void *const *x,
                                        const int64_t (*xs)[4], const int *cbegin, int IH, int IW, float scale_h,
                                        float scale_w, int coord, const int8_t *wq, const int32_t *bq, const float *mult,
                                        void *y, int y_f16, int32_t *acc, int cfg) {
    if (!mtk_qconv_upconv_supported(q) || IH < 1 || IW < 1) return cudaErrorInvalidValue;
    q_up up;
    memset(&up, 0, sizeof up);
    const cudaError_t e = cat_src_fill(&up.src, nsrc, x, xs, cbegin);
    if (e != cudaSuccess) return e;
    /* in concat order from channel 0 (the caller checks that they tile C) */
    if (cbegin[0] != 0) return cudaErrorInvalidValue;
    for (int k = 1; k < nsrc; k++)
        if (cbegin[k] <= cbegin[k - 1] || cbegin[k] >= q->C) return cudaErrorInvalidValue;
    up.IH = IH, up.IW = IW, up.coord = coord, up.sh = scale_h, up.sw = scale_w;
    const int64_t P = (int64_t)q->N * q->OH * q->OW;
    if (cfg != Q_CFG_HALO32 && cfg != Q_CFG_HALO64) cfg = q_pick(q, P, false);
    return cfg == Q_CFG_HALO64 ? q_launch_halo<64, 3, true>(st, q, nullptr, wq, bq, mult, y, y_f16, acc, up)
                               : q_launch_halo<32, 3, true>(st, q, nullptr, wq, bq, mult, y, y_f16, acc, up);
}
