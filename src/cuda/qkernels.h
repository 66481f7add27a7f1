/* INT8 kernels of the CUDA backend (qconv.cu): mtmi.QConv / mtmi.QLinear
 * on integer tensor cores, bit-exact with the CPU reference of
 * src/cpu/kernels_quant.c (arithmetic contract in graph/qops.h).
 *
 * Two launches per node (mtk_qconv_run; optionally one for 1x1
 * convolutions of FP16 NHWC inputs):
 *  1. mtk_qconv_quantize: float activations (FP16 or FP32, any 4-D strides)
 *     -> int8 NHWC with channels padded to Cp (a multiple of 32) by zeros,
 *     q = clamp(rne(x / s), -128, 127), NaN -> 0;
 *  2. mtk_qconv_gemm: implicit GEMM, rows = output pixels, k = (ky, kx, c),
 *     int8 x int8 -> int32 with mma.sync m16n8k32, + int32 bias, then the
 *     CPU's float epilogue, written as FP16 or FP32 to a strided NHWC view.
 * Weights are repacked by the planner to [COp][KH*KW][Cp] int8 (zero
 * padding), bias int32 [COp], multipliers float32 [COp]; COp = CO rounded up
 * to 32. */
#ifndef MT_CUDA_QKERNELS_H
#define MT_CUDA_QKERNELS_H

#include <stdint.h>
#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One upsampled level of mtmi.QUpsampleSum: its exact int32 sums (the
 * level's QConv stores them as int32, y_i32), element (n, y, x, c) at p[n
 * s0 + (y W + x) ldp + c]; the output is fy H x fx W, fy and fx in {1, 2,
 * 4, 8}. */
#define MTK_QUPS_MAX 8
typedef struct mtk_qups_level {
    const int32_t *p;
    int H, W, fy, fx, ldp;
    int64_t s0;
} mtk_qups_level;

typedef struct mtk_qconv {
    int N, H, W, C, Cp;      /* input (Cp = padded channels of xq) */
    int OH, OW, CO, COp;     /* output */
    int KH, KW, sh, sw, ph, pw, dh, dw;
    float x_scale, y_scale;  /* y_scale 0: no requantization */
    int act;                 /* 0 none, 1 Relu, 2 Sigmoid, 3 Gelu */
    int64_t ldy, ys0;        /* output: pixels ldy elements apart, images ys0 apart */
    /* INT8 between two QConvs (fuse_qchain.c): x_int8, the input is
     * already the int8 NHWC xq (the producer wrote it): no quantize pass;
     * y_int8 (needs y_scale > 0), the output is that int8 tensor of the next
     * QConv, quantize(y, y_scale) per element and 0 in the padding channels
     * CO..COp-1 (y_f16 ignored).  The same bits as storing q * y_scale and
     * quantizing it again, which is what the float path does. */
    int x_int8, y_int8;
    /* y_int8 with y2_scale > 0 (fuse_qresize.c: a QConv writing a channel
     * slice of the next QConv's FP16 input, whose scale is not its own): the
     * int8 output is quantize(fp16(q * y_scale), y2_scale), what the FP16
     * store and the next QConv's quantize pass made of it, bit for bit */
    float y2_scale;
    /* The reassociated fuse conv's level 0 (fuse_qupsum.c, graph/qops.h's
     * mtmi.QUpsampleSum): ups_n > 0 lower levels whose exact sums are
     * added, upsampled, before the epilogue.  Then the bias is QUpsampleSum's
     * Bq, the multipliers ldexpf(Mult, -8), and each output is
     *   fl32(256 (acc + Bq) + sum_l sum_taps wy wx P_l[tap]) * mult
     * (the sum exact in int64), then the activation and y_scale as usual:
     * QUpsampleSum's bits with this GEMM's sums as its P_0.  The tiled
     * kernels only (the others refuse it). */
    int ups_n;
    mtk_qups_level ups[MTK_QUPS_MAX];
    /* y_i32: the output is the int32 sums themselves (acc + bias, no
     * epilogue), int32 NHWC at y like a float output: a QUpsampleSum level
     * (bias 0, multiplier 1, so the same numbers as the float output the
     * graph says; the tiled kernels only) */
    int y_i32;
} mtk_qconv;

/* x: logical [N, C, H, W] with element strides xs (f16 or f32) ->
 * xq [N][H][W][Cp]. */
cudaError_t mtk_qconv_quantize(cudaStream_t st, const void *x, const int64_t xs[4], int x_f16, int8_t *xq, int N,
                               int C, int H, int W, int Cp, float scale);

/* y (f16 or f32) at y + n*ys0 + (oy*OW + ox)*ldy + co; acc (optional,
 * for tests): int32 accumulators incl. bias, [N*OH*OW][CO]. */
cudaError_t mtk_qconv_gemm(cudaStream_t st, const mtk_qconv *q, const int8_t *xq, const int8_t *wq, const int32_t *bq,
                           const float *mult, void *y, int y_f16, int32_t *acc);
/* mtk_qconv_gemm with tile configuration cfg: -1 the automatic choice,
 * MTK_QCONV_AUTO_WG (-2) the same with the 3x3 convolutions on the wgmma
 * kernel where one fits (sm_90a builds: mtk_qconv_wgmma_built), 0 the
 * simple kernel, 1..mtk_qconv_ncfg() the configurations (named by
 * mtk_qconv_cfg_name; for tests and tuning; a configuration that does not
 * fit the layer runs configuration 1). */
#define MTK_QCONV_AUTO_WG (-2)
cudaError_t mtk_qconv_gemm_cfg(cudaStream_t st, const mtk_qconv *q, const int8_t *xq, const int8_t *wq, const int32_t *bq,
                               const float *mult, void *y, int y_f16, int32_t *acc, int cfg);
int mtk_qconv_ncfg(void);
/* 1 where the wgmma kernels were built (CMAKE_CUDA_ARCHITECTURES 90a) */
int mtk_qconv_wgmma_built(void);
/* 1 if configuration cfg runs as itself on q (0: it would fall back to
 * configuration 1) */
int mtk_qconv_cfg_fits(const mtk_qconv *q, int cfg);

/* The 3x3 QConv over the bilinear upsample of a channel concat (fuse_qupconv.c):
 * its input, never stored, is what mtk_resize_cat_q8 (x, xs, cbegin as
 * there: nsrc FP16 channels-last sources at IH x IW, scales, coord) would
 * store with q->x_scale, and the output what mtk_qconv_gemm gives on it.
 * Supported (mtk_qconv_upconv_supported): 3x3, stride 1, padding 1,
 * OW % 16 == 0, C == Cp, C % 8 == 0.  cfg: -1 automatic, or the halo
 * configurations (mtk_qconv_cfg_name). */
int mtk_qconv_upconv_supported(const mtk_qconv *q);
cudaError_t mtk_qconv_upconv(cudaStream_t st, const mtk_qconv *q, int nsrc, const void *const *x, const int64_t (*xs)[4],
                             const int *cbegin, int IH, int IW, float scale_h, float scale_w, int coord, const int8_t *wq,
                             const int32_t *bq, const float *mult, void *y, int y_f16, int32_t *acc, int cfg);
const char *mtk_qconv_cfg_name(int cfg);
/* One node: mtk_qconv_quantize, then the GEMM (tile configuration cfg as
 * above).  fuse 1, for 1x1 convolutions of FP16 NHWC inputs (channels
 * contiguous, C % 16 == 0, 16-byte aligned: mtk_qconv_can_fuse): one
 * kernel that quantizes A while loading it and leaves xq untouched, the
 * same bits (slower on H100 so far: the plan asks for it with
 * tuning.qconv_fuse, MTMI_QCONV_FUSE=1); 0 or -1: never.  The plan passes
 * cfg 0 for tuning.qconv_simple (MTMI_QCONV_SIMPLE=1). */
int mtk_qconv_can_fuse(const mtk_qconv *q, const void *x, const int64_t xs[4], int x_f16);
cudaError_t mtk_qconv_run(cudaStream_t st, const mtk_qconv *q, const void *x, const int64_t xs[4], int x_f16, int8_t *xq,
                          const int8_t *wq, const int32_t *bq, const float *mult, void *y, int y_f16, int32_t *acc, int cfg,
                          int fuse);
/* mtmi.QUpsampleSum on its own (graph/qops.h; the form fuse_qupsum.c
 * folds into level 0's GEMM): y at y + n ys0 + (oy OW + ox) ldy + c, f16 or
 * f32, for N x OH x OW pixels and C channels, from the L levels (level 0
 * too: factor 1), bias bq [C] int32 and ms [C] = ldexpf(Mult, -8); act and
 * y_scale as a QConv's.  Every value exact as the CPU reference's. */
cudaError_t mtk_qupsample_sum(cudaStream_t st, int L, const mtk_qups_level *lv, const int32_t *bq, const float *ms, int act,
                              float y_scale, void *y, int y_f16, int64_t ldy, int64_t ys0, int N, int OH, int OW, int C);
/* the same with the first, simple kernel (no shared-memory tiling), kept
 * for comparisons (cfg 0 above). */
cudaError_t mtk_qconv_gemm_simple(cudaStream_t st, const mtk_qconv *q, const int8_t *xq, const int8_t *wq, const int32_t *bq,
                                  const float *mult, void *y, int y_f16, int32_t *acc);

#ifdef __cplusplus
}
#endif
#endif
