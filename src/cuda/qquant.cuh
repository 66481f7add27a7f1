/* The exact float steps of the INT8 contract (graph/qops.h) as inline PTX
 * with explicit rounding and no .ftz, which the targets' --use_fast_math
 * cannot touch, and quantize(x, s) with and without the division: shared
 * by the INT8 GEMMs (qconv.cu) and the resizes that write int8 for them
 * (resize.cu), so that both make the same integers. */
#ifndef MT_CUDA_QQUANT_CUH
#define MT_CUDA_QQUANT_CUH

#include <cuda_fp16.h>
#include <cuda_runtime.h>

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

/* q_quant out of line: the rare exact path of q_quant_r, kept out of the
 * unrolled epilogues (inline, each output's copy of the division made the
 * GEMM kernels long enough to be instruction-fetch bound) */
static __device__ __noinline__ int q_quant_slow(float x, float s) { return q_quant(x, s); }

/* The same integer without the division where it cannot differ: r =
 * fl(1/s) (q_div, once per thread), v = fl(x * r).  v and the contract's
 * fl(x / s) each differ from x / s by at most 1.0000001 * 2^-24 relative
 * (r's and v's roundings, the division's), so |v - fl(x / s)| <= 3 * 2^-24
 * * |x / s| < 4.6e-5 while |v| < 256.  Rounding to an integer can then
 * differ only when v lies within that of a half-integer: v farther than
 * 2^-13 (1.2e-4) from every k + 0.5 rounds like fl(x / s), and the clamp to
 * [-128, 127] after rounding is the contract's.  Everything else (NaN,
 * |v| >= 256, an infinite r from a tiny s, v near a tie: ~1 value in
 * 4000) takes the exact division.  v - floor(v) is exact for |v| < 256,
 * and so is its distance to 0.5 near 0.5, where it matters. */
__device__ __forceinline__ int q_quant_r(float x, float s, float r) {
    const float v = q_mul(x, r);
    if (fabsf(v) < 256.0f) { /* false for NaN */
        const float frac = q_add(v, -floorf(v));
        if (fabsf(q_add(frac, -0.5f)) > 0x1p-13f) {
            const int k = q_f2i(v);
            return k > 127 ? 127 : (k < -128 ? -128 : k);
        }
    }
    return q_quant_slow(x, s);
}

/* Sigmoid (2) / Gelu (3) of the epilogue, out of line: inlined, the double
 * exp / erf code, unrolled over every accumulator of a thread, made the
 * GEMM kernels tens of kilobytes long and instruction-fetch bound. */
static __device__ __noinline__ float q_act_slow(float v, int act) {
    if (act == 2) {
        /* CPU: 1 / (1 + expf(-y)).  exp in double, rounded once to float, is
         * (nearly always) the correctly rounded expf; glibc's expf is within
         * 0.502 ulp of it, so e may differ by 1 ulp and the output by up to
         * 2 (H100: 142 of 262144 outputs, max 2 ulp).  Not bit-exact across
         * math libraries, as graph/qops.h says. */
        float e = q_d2f(exp(-q_f2d(v)));
        return q_div(1.0f, q_add(1.0f, e));
    }
    float e = q_d2f(erf(q_f2d(q_mul(v, 0.70710677f))));
    return q_mul(q_mul(0.5f, v), q_add(1.0f, e));
}

/* 8 FP16 values (one 16-byte load) -> their 8 int8 codes, byte k of the
 * result the code of half k: the quantize pass's packing, shared by the
 * pass, the fused-quantize loads and the resizes that write int8.
 * q_quant_r's steps in two phases, as q_epilogue_tile does: the fast path
 * of all eight with a bit for each one it cannot decide, then one branch
 * for those (~1 value in 4000), instead of a branch and a call site a
 * value. */
__device__ __forceinline__ uint2 q_quant8(uint4 halves, float s, float r) {
    const __half2 *h = (const __half2 *)&halves;
    float f[8];
    int k[8];
    unsigned slow = 0;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const float2 v = __half22float2(h[j]);
        f[2 * j] = v.x, f[2 * j + 1] = v.y;
    }
#pragma unroll
    for (int j = 0; j < 8; j++) {
        const float v = q_mul(f[j], r);
        const float frac = q_add(v, -floorf(v));
        const bool ok = fabsf(v) < 256.0f && fabsf(q_add(frac, -0.5f)) > 0x1p-13f; /* false for NaN */
        const int kk = q_f2i(v);
        k[j] = kk > 127 ? 127 : (kk < -128 ? -128 : kk);
        slow |= (ok ? 0u : 1u) << j;
    }
    if (slow) {
#pragma unroll
        for (int j = 0; j < 8; j++)
            if ((slow >> j) & 1u) k[j] = q_quant_slow(f[j], s);
    }
    unsigned w[2];
#pragma unroll
    for (int j = 0; j < 2; j++)
        w[j] = ((unsigned)k[4 * j] & 0xffu) | (((unsigned)k[4 * j + 1] & 0xffu) << 8) | (((unsigned)k[4 * j + 2] & 0xffu) << 16) |
               ((unsigned)k[4 * j + 3] << 24);
    return make_uint2(w[0], w[1]);
}

#endif
