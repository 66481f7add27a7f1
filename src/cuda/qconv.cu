/* INT8 convolution / linear kernels (mtmi.QConv, mtmi.QLinear) on integer
 * tensor cores.  The arithmetic follows quant/quant.h step by step so that
 * outputs are bit-identical with the CPU reference (src/quant/qkernels.c):
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

#include "qkernels.h"

__device__ __forceinline__ float q_div(float a, float b) {
    float r;
    asm("div.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}
__device__ __forceinline__ float q_mul(float a, float b) {
    float r;
    asm("mul.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}
__device__ __forceinline__ float q_add(float a, float b) {
    float r;
    asm("add.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}
__device__ __forceinline__ float q_i2f(int a) {
    float r;
    asm("cvt.rn.f32.s32 %0, %1;" : "=f"(r) : "r"(a));
    return r;
}
__device__ __forceinline__ int q_f2i(float a) { /* round half to even */
    int r;
    asm("cvt.rni.s32.f32 %0, %1;" : "=r"(r) : "f"(a));
    return r;
}
/* float -> double through PTX: the compiler cannot see that the double
 * came from a float, so fast-math cannot shrink exp / erf of it to the
 * approximate float versions. */
__device__ __forceinline__ double q_f2d(float a) {
    double r;
    asm("cvt.f64.f32 %0, %1;" : "=d"(r) : "f"(a));
    return r;
}
__device__ __forceinline__ float q_d2f(double a) {
    float r;
    asm("cvt.rn.f32.f64 %0, %1;" : "=f"(r) : "d"(a));
    return r;
}

/* quantize(x, s) of the contract.  NaN is tested on the bits: fast-math
 * may fold a v != v test away. */
__device__ __forceinline__ int q_quant(float x, float s) {
    float v = q_div(x, s);
    if ((__float_as_uint(v) & 0x7fffffffu) > 0x7f800000u) return 0;
    if (v >= 127.0f) return 127;
    if (v <= -128.0f) return -128;
    return q_f2i(v);
}

/* ------------------------------------------------------------ quantize */
__global__ void k_qquant(const void *__restrict__ x, int64_t s0, int64_t s1, int64_t s2, int64_t s3, int f16,
                         int *__restrict__ xq, int N, int C, int H, int W, int Cp4, float s, int64_t total) {
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (int64_t)gridDim.x * blockDim.x) {
        int c4 = (int)(idx % Cp4);
        int64_t pix = idx / Cp4;
        int w = (int)(pix % W), h = (int)((pix / W) % H);
        int64_t n = pix / ((int64_t)W * H);
        unsigned packed = 0;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int c = c4 * 4 + j, q = 0;
            if (c < C) {
                int64_t off = n * s0 + (int64_t)c * s1 + (int64_t)h * s2 + (int64_t)w * s3;
                float f = f16 ? __half2float(((const __half *)x)[off]) : ((const float *)x)[off];
                q = q_quant(f, s);
            }
            packed |= ((unsigned)q & 0xffu) << (8 * j);
        }
        xq[idx] = (int)packed;
    }
}

extern "C" cudaError_t mtk_qconv_quantize(cudaStream_t st, const void *x, const int64_t xs[4], int x_f16, int8_t *xq, int N,
                                          int C, int H, int W, int Cp, float scale) {
    int64_t total = (int64_t)N * H * W * (Cp / 4);
    if (total <= 0) return cudaSuccess;
    int64_t blocks = (total + 255) / 256;
    if (blocks > 65536) blocks = 65536;
    k_qquant<<<(unsigned)blocks, 256, 0, st>>>(x, xs[0], xs[1], xs[2], xs[3], x_f16, (int *)xq, N, C, H, W, Cp / 4, scale,
                                              total);
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
#pragma unroll
    for (int mi = 0; mi < 2; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int r = 2 * mi + (i >> 1);
                const int col = cob + ni * 8 + t * 2 + (i & 1);
                if (!pv[r] || col >= q.CO) continue;
                const int av = acc[mi][ni][i] + bq[col]; /* cannot overflow: |bq| <= 2^31-1 - K*16256 */
                if (acc_out) acc_out[(pbase + g + 8 * r) * q.CO + col] = av;
                float v = q_mul(q_i2f(av), mult[col]);
                if (q.act == 1) {
                    v = v > 0.0f ? v : 0.0f;
                } else if (q.act == 2) {
                    /* CPU: 1 / (1 + expf(-y)).  exp in double, rounded once
                     * to float, is (nearly always) the correctly rounded
                     * expf; glibc's expf is within 0.502 ulp of it, so e
                     * may differ by 1 ulp and the output by up to 2 (H100:
                     * 142 of 262144 outputs, max 2 ulp).  Not bit-exact
                     * across math libraries, as quant.h says. */
                    float e = q_d2f(exp(-q_f2d(v)));
                    v = q_div(1.0f, q_add(1.0f, e));
                } else if (q.act == 3) {
                    float e = q_d2f(erf(q_f2d(q_mul(v, 0.70710677f))));
                    v = q_mul(q_mul(0.5f, v), q_add(1.0f, e));
                }
                if (q.y_scale > 0.0f) v = q_mul(q_i2f(q_quant(v, q.y_scale)), q.y_scale);
                const int64_t off = (int64_t)pn[r] * q.ys0 + ((int64_t)poy[r] * q.OW + pox[r]) * q.ldy + col;
                if (y_f16) ((__half *)y)[off] = __float2half_rn(v);
                else ((float *)y)[off] = v;
            }
}

extern "C" cudaError_t mtk_qconv_gemm(cudaStream_t st, const mtk_qconv *q, const int8_t *xq, const int8_t *wq, const int32_t *bq,
                                      const float *mult, void *y, int y_f16, int32_t *acc) {
    int64_t P = (int64_t)q->N * q->OH * q->OW;
    if (P <= 0 || q->CO <= 0) return cudaSuccess;
    if (q->Cp % 32 || q->COp % 32 || q->COp < q->CO) return cudaErrorInvalidValue;
    dim3 grid((unsigned)((P + QG_WARPS * 32 - 1) / (QG_WARPS * 32)), (unsigned)(q->COp / 32));
    k_qgemm<<<grid, QG_WARPS * 32, 0, st>>>(*q, xq, wq, bq, mult, y, y_f16, acc);
    return cudaGetLastError();
}
