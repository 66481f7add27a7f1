/* qops: the INT8 operators of the graph (mtmi.QConv, mtmi.QLinear, made by
 * src/quant's rewrite) and the arithmetic every backend follows for them.
 * An internal header of src/graph: the CPU kernels (src/cpu/kernels_quant.c,
 * the exact reference) and the CUDA ones (src/cuda/qconv.cu) read it, and
 * neither depends on src/quant.
 *
 * ------------------------------------------------------------------------
 * INT8 ARITHMETIC CONTRACT (the CPU kernels are the exact reference; a GPU
 * kernel that follows these steps produces the same bits):
 *
 *  quantize(x, s)  = clamp(rne(x / s), -128, 127)       x, s float32;
 *                    x / s is IEEE float32 division (correctly rounded,
 *                    __fdiv_rn on CUDA; not --use_fast_math), rne = round
 *                    half to even (rintf / __float2int_rn); NaN -> 0.
 *  dequantize(q,s) = (float)q * s                        one float32 multiply.
 *
 *  Activation scale s_x of a tensor: from the calibration cache
 *      (symmetric, per tensor; s = amax / 127).
 *  Weight scale per output channel c:
 *      s_w[c] = max_k |w[c,k]| / 127.0f (float32; 1.0f if all zero), or
 *               a Q/DQ model's own weight scale (src/quant/quant.h)
 *      wq[c,k] = clamp(rne(w[c,k] / s_w[c]), -127, 127)  (int8)
 *  Bias:  bq[c] = clamp(rne((double)b[c] / ((double)s_x * (double)s_w[c])),
 *                       -L, L)  with L = 2^31 - 1 - K * 16256, K = weights
 *                       per output channel (int32; bias + sum never
 *                       overflows)
 *  Multiplier: m[c] = s_x * s_w[c]                      (float32 multiply)
 *  These are computed once by the rewrite (mt_quant_rewrite) and stored as
 *  constants of the QConv/QLinear node, so every backend reads the same
 *  int8 weights, int32 biases and float multipliers.
 *
 *  Per output element:
 *      acc = bq[c] + sum_k xq[k] * wq[c,k]        exact int32 (no overflow:
 *                                                 |sum| <= K * 16256)
 *      y   = (float)acc * m[c]                    int32->float rne, then
 *                                                 one float32 multiply
 *      y   = act(y)      Relu: y > 0 ? y : 0.0f (exact);
 *                        Sigmoid: 1 / (1 + expf(-y)), Gelu: erf form
 *                        (libm-accurate, NOT bit-exact across libraries)
 *      if the output tensor has a scale s_y in the cache and does not
 *      reach a graph output through float ops only (attribute y_scale > 0;
 *      the logits and the depth map stay float as in TensorRT, unless the
 *      scales are a Q/DQ model's that quantizes them):
 *          y = dequantize(quantize(y, s_y), s_y)
 *  Outputs stay float tensors; with y_scale set they hold exactly q * s_y,
 *  so a GPU may store int8 q and s_y instead and is still bit-identical.
 *  Padding of convolutions pads xq with 0 (= quantize(0)).
 *
 *  Already-quantized inputs (the encoder's features handed to INT8 heads
 *  as int8, src/quant/handover.c):
 *      mtmi.QuantizeNHWC(X float [N,C,H,W]) -> int8 [N,H,W,C],
 *          y[n,h,w,c] = quantize(x[n,c,h,w], scale)   attribute "scale"
 *      mtmi.QConv whose input 0 is int8 takes it as those codes, NHWC
 *          [N,H,W,C], made with its x_scale: xq = the input, no quantize.
 *  The same integers as quantizing inside the QConv, so the same outputs.
 *  Resize, Concat, Relu, Sigmoid and every other op between quantized
 *  nodes run in float on these (dequantized) values.
 *
 *  The 1x1 QConv over a concat of bilinear-upsampled maps, reassociated
 *  (opt-in, tuning.int8_reassoc; src/quant/reassoc.c): the concat's
 *  quantize moves before the resizes and the conv before the upsampling,
 *  as the FP16 seg head runs it, in exact integers:
 *      per level l: P_l = a QConv 1x1 of the map y_l with the concat's
 *          x_scale, the weights' columns of that level, bias 0, multiplier
 *          1.0f, no activation, no y_scale: float values that ARE the
 *          int32 sums (|P| < 2^24, so exact in float32; a backend keeps
 *          them exact);
 *      mtmi.QUpsampleSum(Bq int32 [M], Mult float [M], P_0, .., P_L-1)
 *          -> float [N,M,H,W] (H, W: P_0's; each P_l's H_l, W_l with
 *          H = f H_l, W = g W_l, f and g in {1, 2, 4, 8}):
 *          acc = 256 Bq[c] + sum_l sum_taps wy wx P_l[tap]     exact int64
 *          with the half_pixel bilinear taps (clamped) of output (oy, ox)
 *          in level l and their weights times 16 per axis (integers: the
 *          fractions are multiples of 1/16 for f <= 8; wy0 + wy1 = 16);
 *          y = (float)acc * ldexpf(Mult[c], -8)   int64->float rne, one
 *          multiply; then the activation and y_scale as a QConv's.
 *  = the QConv of the concat of exact (unrounded) upsamples of the codes
 *  quantize(y_l, x_scale); with every factor 1 it is the QConv's own bits.
 * ------------------------------------------------------------------------ */
#ifndef MT_GRAPH_QOPS_H
#define MT_GRAPH_QOPS_H

#include "graph/graph.h"

static inline int8_t mt_quantize(float x, float s) {
    float v = x / s;
    if (!(v == v)) return 0;
    if (v >= 127.0f) return 127;
    if (v <= -128.0f) return -128;
    return (int8_t)__builtin_rintf(v); /* default rounding mode: half to even */
}
static inline float mt_dequantize(int q, float s) { return (float)q * s; }

/* Geometry of a 2-D convolution node (Conv attributes; auto_pad
 * resolved) for input dims xd [N,C,H,W] and weight dims wd [M,C/g,kh,kw].
 * Returns 0, or -1 with a reason in err. */
typedef struct mt_conv_geom {
    int64_t N, C, H, W, M, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, OH, OW, group;
} mt_conv_geom;
int mt_conv_geometry(const mt_node *n, const int64_t *xd, const int64_t *wd, mt_conv_geom *o, char *err, size_t cap);
/* mtmi.QUpsampleSum: at most this many levels; a level's factor on one
 * side (out = f in, f in {1, 2, 4, 8}), 0 when none fits. */
#define MT_QUPSUM_MAX_LEVELS 8
int mt_qupsample_factor(int64_t out, int64_t in);
/* A QConv's input dims as [N,C,H,W]: an int8 input is [N,H,W,C] */
static inline void mt_qconv_input_dims(int dtype, const int64_t *d, int64_t *nchw) {
    const int nhwc = dtype == MTMI_INT8;
    nchw[0] = d[0], nchw[1] = d[nhwc ? 3 : 1], nchw[2] = d[nhwc ? 1 : 2], nchw[3] = d[nhwc ? 2 : 3];
}

#endif
