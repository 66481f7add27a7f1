/* mtmi.QUpsampleSum's exact upsample of one level (graph/qops.h), shared
 * by its own kernel (qupsum.cu) and the level-0 GEMM's epilogue that
 * fuse_qupsum.c makes of it (qconv.cu).  The CPU reference is
 * run_qupsample_sum in src/cpu/kernels_quant.c: the same taps and weights
 * and the same exact integer sums (there in double, here in int64 over
 * int32 levels: no float -> double conversion a tap, which cost the first
 * version, float32 levels summed in double, 0.29 ms for the seg head on an
 * H100 against 0.20 without the rewrite). */
#ifndef MT_CUDA_QUPSUM_CUH
#define MT_CUDA_QUPSUM_CUH

#include "qkernels.h"

/* A level the kernels can read for an OH x OW output: its address, a
 * factor of 1, 2, 4 or 8 per side that tiles the output, sane strides
 * (the fused epilogue asks for more: qconv.cu's q_ups_ok) */
static inline bool qup_level_ok(const mtk_qups_level *l, int OH, int OW) {
    const bool fy = l->fy == 1 || l->fy == 2 || l->fy == 4 || l->fy == 8, fx = l->fx == 1 || l->fx == 2 || l->fx == 4 || l->fx == 8;
    return l->p && fy && fx && l->H >= 1 && l->W >= 1 && (int64_t)l->H * l->fy == OH && (int64_t)l->W * l->fx == OW && l->ldp >= 1 &&
           l->s0 >= 0;
}

/* The half_pixel bilinear taps of output o on an axis of `in` samples
 * upsampled by f = 2^lf (f in 1, 2, 4, 8): source rows i0, i1 (clamped)
 * and the second one's weight in 16ths.  The source coordinate (o + 0.5) /
 * f - 0.5 is (2o + 1 - f) / (2f): an integer numerator, so the fraction is
 * exact, and 2f divides 16. */
struct QupTap {
    int i0, i1, w1;
};
__device__ __forceinline__ QupTap qup_tap(int o, int in, int f) {
    const int lf = __ffs(f) - 1;
    int num = 2 * o + 1 - f;
    const int hi = (in - 1) * 2 * f;
    num = num < 0 ? 0 : (num > hi ? hi : num);
    QupTap t;
    t.i0 = num >> (lf + 1);
    t.i1 = t.i0 + 1 < in ? t.i0 + 1 : in - 1;
    t.w1 = ((num & (2 * f - 1)) << 3) >> lf; /* 16 (num - 2f i0) / 2f */
    return t;
}

/* One pixel's four taps in a level: element offsets (channel 0) and
 * weights in 256ths */
struct QupPix {
    int64_t o00, o01, o10, o11;
    int w00, w01, w10, w11;
};
__device__ __forceinline__ QupPix qup_pix(const mtk_qups_level &l, int n, int oy, int ox) {
    const QupTap ty = qup_tap(oy, l.H, l.fy), tx = qup_tap(ox, l.W, l.fx);
    const int64_t b = (int64_t)n * l.s0, r0 = b + (int64_t)ty.i0 * l.W * l.ldp, r1 = b + (int64_t)ty.i1 * l.W * l.ldp;
    QupPix p;
    p.o00 = r0 + (int64_t)tx.i0 * l.ldp;
    p.o01 = r0 + (int64_t)tx.i1 * l.ldp;
    p.o10 = r1 + (int64_t)tx.i0 * l.ldp;
    p.o11 = r1 + (int64_t)tx.i1 * l.ldp;
    const int wy1 = ty.w1, wy0 = 16 - ty.w1, wx1 = tx.w1, wx0 = 16 - tx.w1;
    p.w00 = wy0 * wx0, p.w01 = wy0 * wx1, p.w10 = wy1 * wx0, p.w11 = wy1 * wx1;
    return p;
}

/* w x P, exact: |P| < 2^31, w <= 256 (one wide multiply each) */
__device__ __forceinline__ long long qup_wmul(int w, int v) { return (long long)w * (long long)v; }

/* channel c of the level at the pixel: the sum of weight x sum */
__device__ __forceinline__ long long qup_at(const mtk_qups_level &l, const QupPix &p, int c) {
    const int32_t *x = l.p + c;
    return qup_wmul(p.w00, __ldg(x + p.o00)) + qup_wmul(p.w01, __ldg(x + p.o01)) + qup_wmul(p.w10, __ldg(x + p.o10)) +
           qup_wmul(p.w11, __ldg(x + p.o11));
}

/* the same for channels c, c + 1 (8-byte aligned: ldp and c even) */
__device__ __forceinline__ void qup_at2(const mtk_qups_level &l, const QupPix &p, int c, long long &a0, long long &a1) {
    const int32_t *x = l.p + c;
    const int2 v00 = __ldg((const int2 *)(x + p.o00)), v01 = __ldg((const int2 *)(x + p.o01));
    const int2 v10 = __ldg((const int2 *)(x + p.o10)), v11 = __ldg((const int2 *)(x + p.o11));
    a0 += qup_wmul(p.w00, v00.x) + qup_wmul(p.w01, v01.x) + qup_wmul(p.w10, v10.x) + qup_wmul(p.w11, v11.x);
    a1 += qup_wmul(p.w00, v00.y) + qup_wmul(p.w01, v01.y) + qup_wmul(p.w10, v10.y) + qup_wmul(p.w11, v11.y);
}

/* int64 -> float, round to nearest even (the CPU's (float) of its exact sum) */
__device__ __forceinline__ float q_l2f(long long a) {
    float r;
    asm("cvt.rn.f32.s64 %0, %1;" : "=f"(r) : "l"(a));
    return r;
}

#endif
