/* CUDA kernels of the mtmi GPU backend: C entry points, defined one file per
 * op family (layout.cu, elementwise.cu, norm.cu, resize.cu, conv.cu,
 * gemm.cu, preprocess.cu, attention.cu, launch.cu; the fused kernels'
 * own headers are beside them).  Float tensors are stored as FP16 (f16 = 1)
 * or FP32 (f16 = 0); arithmetic is FP32.  Views are strided: dims and
 * strides in elements, at most MTK_RANK dimensions (the planner collapses
 * dimensions before a launch). */
#ifndef MT_CUDA_KERNELS_H
#define MT_CUDA_KERNELS_H

#include <stdint.h>
#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MTK_RANK 6

typedef struct mtk_view {
    int rank;
    int64_t dims[MTK_RANK];
    int64_t strides[MTK_RANK];
} mtk_view;

/* Element kinds of copies. */
enum { MTK_T_F32 = 0, MTK_T_F16 = 1, MTK_T_RAW1 = 2, MTK_T_RAW2 = 3, MTK_T_RAW4 = 4, MTK_T_RAW8 = 5 };

/* dst[i] = src[i] over the logical shape dst->dims (src->dims equal, or
 * broadcast with stride 0), converting between F32 and F16. */
cudaError_t mtk_copy(cudaStream_t s, void *dst, const mtk_view *dv, int dt, const void *src, const mtk_view *sv, int st);

/* ------------------------------------------------------- elementwise program
 * A fused chain of elementwise operators evaluated per output element in
 * FP32 registers.  Instructions: dst = op(a, b) over registers; MTK_OP_LOAD
 * reads input a; MTK_OP_IMM sets dst to imm.  The result is register
 * `result`.  Inputs are views over the output's logical shape (stride 0 for
 * broadcast dimensions). */
enum {
    MTK_OP_LOAD = 0, MTK_OP_IMM, MTK_OP_ADD, MTK_OP_SUB, MTK_OP_MUL, MTK_OP_DIV, MTK_OP_POW, MTK_OP_MAX, MTK_OP_MIN,
    MTK_OP_RELU, MTK_OP_SIGMOID, MTK_OP_ERF, MTK_OP_TANH, MTK_OP_EXP, MTK_OP_LOG, MTK_OP_SQRT, MTK_OP_NEG,
    MTK_OP_ABS, MTK_OP_RECIP, MTK_OP_GELU, MTK_OP_CLIP, MTK_OP_LEAKY, MTK_OP_COPY, MTK_OP_HSIGMOID, MTK_OP_FLOOR,
    MTK_OP_CEIL, MTK_OP_SIN, MTK_OP_COS
};
#define MTK_MAX_INSTR 32
#define MTK_MAX_IN 8
#define MTK_MAX_REG 16
typedef struct mtk_instr {
    uint8_t op, dst, a, b;
    float imm, imm2;
} mtk_instr;
typedef struct mtk_prog {
    int n;
    int result;
    mtk_instr ins[MTK_MAX_INSTR];
} mtk_prog;

cudaError_t mtk_elementwise(cudaStream_t s, const mtk_prog *prog, void *out, const mtk_view *ov, int nin,
                            const void *const *in, const mtk_view *iv, int f16);
/* The same in two parts: the arguments built once into device memory
 * (cudaFree them), then launches that read them (faster: see elementwise.cu). */
cudaError_t mtk_elementwise_prepare(const mtk_prog *prog, void *out, const mtk_view *ov, int nin, const void *const *in,
                                    const mtk_view *iv, void **dev_args);
cudaError_t mtk_elementwise_run(cudaStream_t s, const void *dev_args, int64_t n, int f16);

/* LayerNorm over the last C elements of `rows` contiguous rows.  With res
 * != NULL, x + res is normalized and (if sum != NULL) written to sum. */
cudaError_t mtk_layernorm(cudaStream_t s, const void *x, const void *res, void *sum, void *y, const void *gamma,
                          const void *beta, int64_t rows, int C, float eps, int f16);
/* The same, also writing the normalized rows, read as an NHWC image
 * [N, H, W, C] (rows = N*H*W), as the im2col matrix of a convolution over
 * it: exactly what mtk_im2col_view writes from that view (row-major
 * [N*OH*OW, Kp], columns (kh, kw, c), zeros for taps outside the image and
 * for columns K..Kp-1; every element written).  One kernel in the FP16
 * vectorized case (C % 8 == 0, C <= 256, Kp % 8 == 0, 16-byte aligned), else
 * mtk_layernorm then mtk_im2col_view. */
typedef struct mtk_ln_im2col {
    void *col; /* storage type as y */
    int N, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, Kp;
} mtk_ln_im2col;
cudaError_t mtk_layernorm_im2col(cudaStream_t s, const void *x, const void *res, void *sum, void *y, const void *gamma,
                                 const void *beta, int64_t rows, int C, float eps, int f16, const mtk_ln_im2col *col);

/* Two LayerNorms in one pass: y = LN(x [+ res]) as mtk_layernorm, then
 * second->y = LN'(y) over the FP16-rounded y with second's gamma / beta /
 * eps; with ic != NULL the im2col matrix (see mtk_layernorm_im2col) is of
 * second->y.  One kernel in the FP16 vectorized case, else the unfused
 * kernels. */
typedef struct mtk_ln_second {
    void *y;
    const void *gamma, *beta; /* beta may be NULL */
    float eps;
} mtk_ln_second;
cudaError_t mtk_layernorm_pair(cudaStream_t s, const void *x, const void *res, void *sum, void *y, const void *gamma,
                               const void *beta, int64_t rows, int C, float eps, int f16, const mtk_ln_second *second,
                               const mtk_ln_im2col *ic);

/* mtk_layernorm (ic NULL) or mtk_layernorm_im2col that also writes an int8
 * copy of y for the INT8 convolutions reading it (fuse_qln.c): q[row * C +
 * c] = quantize(y[row][c], scale) of the stored (FP16 or FP32) y, the bytes
 * mtk_qconv_quantize makes of y read as NHWC with Cp = C.  One kernel in the
 * FP16 vectorized case (as mtk_layernorm_im2col's, q 8-byte aligned), else
 * the LayerNorm then that quantize pass.  scale > 0. */
cudaError_t mtk_layernorm_q8(cudaStream_t s, const void *x, const void *res, void *sum, void *y, const void *gamma,
                             const void *beta, int64_t rows, int C, float eps, int f16, const mtk_ln_im2col *ic, int8_t *q,
                             float scale);

/* y = sum over k < nsrc (<= 4) of the bilinear resize of x[k] (channels-last
 * FP16 [N, C, ih[k], iw[k]] with strides xs[k], each scaled by OH / ih[k])
 * to [N, C, OH, OW] (channels-last, strides ys); summed in FP32, rounded
 * once.  coord as mtk_resize.  C % 8 == 0, 16-byte aligned. */
cudaError_t mtk_resize_sum(cudaStream_t s, int nsrc, const void *const *x, const int64_t (*xs)[4], const int *ih,
                           const int *iw, void *y, const int64_t ys[4], int N, int C, int OH, int OW, int coord);

/* FP16 LayerNorm of x + r, r = a @ w + bias computed in the kernel (a: rows
 * of cin halves, row stride lda; w: [cin][C] row-major; bias [C] or NULL),
 * r rounded to FP16 before the add as a separate GEMM would store it; sum
 * (x + r) written when non-NULL.  Needs the vectorized LayerNorm's layout
 * (C % 8 == 0, C <= 256, 16-byte aligned), cin % 8 == 0, lda % 8 == 0. */
cudaError_t mtk_layernorm_proj(cudaStream_t s, const void *x, void *sum, void *y, const void *gamma, const void *beta,
                               int64_t rows, int C, float eps, const void *a, int lda, const void *w, const void *bias, int cin);

/* Three chained per-pixel GEMMs (chain.cu), FP16, FP32 accumulation, the
 * intermediates rounded to FP16:  h1 = act1(x w1 + b1), h2 = act2(h1 w2 + r +
 * b2), y = act3(h2 w3 + b3); x [m, k1] (k1 32 or 64, row stride ldx), h1 and
 * h2 128 wide, r [m, 128] (row stride ldr), y [m, n3] (n3 even, <= 32, row
 * stride ldy).  Each w is stored [k][n] (wt 0) or [n][k] (wt 1) with row
 * stride ldw; biases may be NULL; acts 0 none, 1 relu. */
typedef struct mtk_chain {
    const void *x, *r, *w1, *w2, *w3, *b1, *b2, *b3;
    void *y;
    int64_t m;
    int k1, n3, ldx, ldr, ldy, ldw1, ldw2, ldw3, wt1, wt2, wt3, act1, act2, act3;
} mtk_chain;
int mtk_chain3_supported(int k1, int n1, int n2, int n3);
cudaError_t mtk_chain3(cudaStream_t s, const mtk_chain *c);

/* Softmax over contiguous rows of length C. */
cudaError_t mtk_softmax(cudaStream_t s, const void *x, void *y, int64_t rows, int C, int f16);

/* Bilinear / nearest resize of a 4-D tensor [N,C,H,W] with arbitrary strides
 * (NHWC or NCHW).  mode: 0 nearest, 1 linear.  coord: 0 half_pixel,
 * 1 pytorch_half_pixel, 2 align_corners, 3 asymmetric.  nearest_mode: 0
 * round_prefer_floor, 1 round_prefer_ceil, 2 floor, 3 ceil.  Output element
 * order follows channel-innermost when c_inner. */
cudaError_t mtk_resize(cudaStream_t s, const void *x, const int64_t xs[4], void *y, const int64_t ys[4], int N, int C,
                       int IH, int IW, int OH, int OW, float scale_h, float scale_w, int mode, int coord,
                       int nearest_mode, int c_inner, int f16, int out_f16);

/* mtk_resize's bilinear values (FP32, as the unfused path keeps them
 * before mtmi.ClassMap) reduced to their argmax over C per output pixel:
 * y uint8 [N, OH, OW]; the first of equal maxima, NaN never wins. */
int mtk_resize_argmax_supported(int mode, int C, int f16, int out_f16);
cudaError_t mtk_resize_argmax(cudaStream_t s, const void *x, const int64_t xs[4], uint8_t *y, int N, int C, int IH, int IW,
                              int OH, int OW, float scale_h, float scale_w, int coord, int f16);

/* ------------------------------------------------------------ result forms
 * (outputs.cu) What an application asks of a head instead of its float
 * output, made on the GPU so that only it crosses the bus. */
/* mtmi.ClassMap: x [N, C, H, W] (strides xs, FP16 or FP32) -> y uint8
 * [N, H, W] contiguous, the index of the largest of the C values (the first
 * of equal maxima; NaN never wins).  C <= 256. */
cudaError_t mtk_classmap(cudaStream_t s, const void *x, const int64_t xs[4], int f16, int N, int C, int H, int W, uint8_t *y);
/* mtmi.SymQuant over x [N, C, H, W] (strides xs, FP16 or FP32): per batch
 * element m = max |x| (NaN ignored), scale = m / 127 (1 if m is 0 or
 * infinite), q = round-half-even(clamp(x / scale, +-127)) in double, NaN ->
 * 0: q int8 [N, C, H, W] contiguous, scales float [N].  work: N uint32s of
 * device scratch. */
cudaError_t mtk_symquant(cudaStream_t s, const void *x, const int64_t xs[4], int f16, int N, int C, int H, int W, int8_t *q,
                         float *scales, unsigned *work);

/* Bilinear resize of a channel concatenation of nsrc (<= 4) channels-last
 * FP16 sources (source k holds channels cbegin[k]..), 16-byte aligned, to a
 * channels-last FP16 output: the concatenation is never stored. */
cudaError_t mtk_resize_cat(cudaStream_t s, int nsrc, const void *const *x, const int64_t (*xs)[4], const int *cbegin,
                           void *y, const int64_t ys[4], int N, int C, int IH, int IW, int OH, int OW, float scale_h,
                           float scale_w, int coord);

/* The two bilinear resizes above with the output quantized for the next
 * QConv (fuse_qresize.c): each FP16 value the FP16 kernel would store,
 * quantize(v, qscale) of the INT8 contract as an int8 in a channels-last
 * tensor of the same element strides (8-byte aligned) instead; the same
 * bytes as mtk_resize(_cat) followed by mtk_qconv_quantize.
 * mtk_resize_q8 takes the inputs for which mtk_resize uses its 8-channel
 * FP16 kernel (mtk_resize_q8_supported: bilinear, FP16 channels-last input
 * and output strides in multiples of 8, 16-byte aligned input). */
int mtk_resize_q8_supported(const void *x, const int64_t xs[4], const int64_t ys[4], int C, int mode, int f16);
cudaError_t mtk_resize_q8(cudaStream_t s, const void *x, const int64_t xs[4], int8_t *y, const int64_t ys[4], int N, int C,
                          int IH, int IW, int OH, int OW, float scale_h, float scale_w, int coord, float qscale);
cudaError_t mtk_resize_cat_q8(cudaStream_t s, int nsrc, const void *const *x, const int64_t (*xs)[4], const int *cbegin,
                              int8_t *y, const int64_t ys[4], int N, int C, int IH, int IW, int OH, int OW, float scale_h,
                              float scale_w, int coord, float qscale);

/* Depthwise convolution on NHWC tensors, weights packed [KH][KW][C] in the
 * storage type, bias [C] (or NULL), then act (0 none, 1 relu, 2 sigmoid,
 * 3 gelu). */
cudaError_t mtk_dwconv(cudaStream_t s, const void *x, void *y, const void *w, const void *b, int N, int H, int W,
                       int C, int OH, int OW, int KH, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int act,
                       int f16);

/* Direct convolution, NHWC in and out, weights packed [Cout][KH][KW][Cin/g];
 * a generic fallback (small Cin, e.g. the 3-channel stem, or fp32). */
cudaError_t mtk_conv_direct(cudaStream_t s, const void *x, void *y, const void *w, const void *b, int N, int H, int W,
                            int C, int OH, int OW, int CO, int KH, int KW, int sh, int sw, int ph, int pw, int dh,
                            int dw, int groups, int act, int f16);
/* the same with output pixels ldy elements apart (a slice of a concat) */
cudaError_t mtk_conv_direct_ld(cudaStream_t s, const void *x, void *y, const void *w, const void *b, int N, int H, int W,
                               int C, int OH, int OW, int CO, int KH, int KW, int sh, int sw, int ph, int pw, int dh,
                               int dw, int groups, int act, int f16, int ldy);

/* im2col from any strided [N,C,H,W] view xs (elements) of FP32/FP16 into
 * a row-major [N*OH*OW, Kp] matrix (columns (kh, kw, c), zero padded). */
cudaError_t mtk_im2col_view(cudaStream_t s, const void *x, const int64_t xs[4], int xf16, void *y, int yf16, int N,
                            int H, int W, int C, int OH, int OW, int KH, int KW, int sh, int sw, int ph, int pw, int dh,
                            int dw, int Kp);

/* C[m, n] = act(sum_k A[m, k] B[n, k] + bias[n]) for N <= 8 (1x1 convs to
 * few channels, where cuBLASLt falls back to slow GEMV kernels). */
cudaError_t mtk_gemm_smalln(cudaStream_t s, const void *A, int lda, const void *B, const void *bias, void *C, int ldc,
                            int M, int N, int K, int act, int f16);

/* im2col of an NHWC tensor: rows (n, oh, ow), columns (kh, kw, c) padded
 * with zeros to Kp; esize 2 or 4 bytes. */
cudaError_t mtk_im2col(cudaStream_t s, const void *x, void *y, int N, int H, int W, int C, int OH, int OW, int KH, int KW,
                       int sh, int sw, int ph, int pw, int dh, int dw, int Kp, int esize);

/* y = act(x + bias[c]) in place over rows x C contiguous (channels last);
 * _ld: rows ldy elements apart. */
cudaError_t mtk_bias_act(cudaStream_t s, void *y, const void *b, int64_t rows, int C, int act, int f16);
cudaError_t mtk_bias_act_ld(cudaStream_t s, void *y, const void *b, int64_t rows, int C, int act, int f16, int ldy);

/* Gather along one axis: out[pre, i, post] = x[pre, idx[i], post], idx
 * int64 (negatives wrap), x and out contiguous. */
cudaError_t mtk_gather(cudaStream_t s, const void *x, void *y, const int64_t *idx, int64_t pre, int64_t axis_len,
                       int64_t nidx, int64_t post, int esize);

/* uint8 HWC RGB image -> normalized ((x - mean) / std) tensor with strides
 * ys over [N=1, C=3, H, W]. */
cudaError_t mtk_preprocess(cudaStream_t s, const uint8_t *img, int H, int W, void *y, const int64_t ys[4],
                           const float mean[3], const float stdv[3], int f16);

/* Attention softmax(Q K^T * scale) V for Q [B,H,N,D], K/V [B,H,M,D] given by
 * strides (elements) over (b, h, row) with the D axis contiguous; O gets
 * the same kind of strides.  FP16 on tensor cores for D in {16,32,64,128};
 * FP32 path otherwise or when f16 == 0. */
typedef struct mtk_attn {
    const void *q, *k, *v;
    void *o;
    int B, H, N, M, D;
    int64_t qs[3], ks[3], vs[3], os[3];
    float scale;
    /* tuning.attn_cfg (MTMI_ATTN_CFG): when force is set, this kernel and
     * key split instead of the heuristic choice (one that does not exist,
     * e.g. 0,0, falls back to the simple kernel). */
    int force, force_kernel, force_ksplit;
} mtk_attn;
cudaError_t mtk_attention(cudaStream_t s, const mtk_attn *a, int f16);
/* Programmatic dependent launch for this thread's next launches (tuning.pdl;
 * launch.cu): the plan sets it before each step. */
void mtk_set_pdl(int on);
/* the multiprocessors of the plan about to launch (launch.cuh
 * mtk_sm_budget; 0 = the whole GPU), per thread like mtk_set_pdl */
void mtk_set_sm_limit(int sms);
/* One FP16 tensor-core configuration, for benchmarks and tests: K and V
 * streamed through shared memory (MTK_ATTN_STREAM) or a head's whole K and
 * V kept there (MTK_ATTN_RESIDENT; D = 32, up to 1280 keys), with ksplit
 * (1, 2, 4) warps sharing a query group's keys.  cudaErrorInvalidValue for
 * a configuration that does not exist; mtk_attention picks one. */
enum { MTK_ATTN_STREAM = 1, MTK_ATTN_RESIDENT = 2 };
cudaError_t mtk_attention_config(cudaStream_t s, const mtk_attn *a, int kernel, int ksplit);

/* The encoder MLP in one kernel (mlp.cu), FP16:
 *   y[n,h,w,:] = fc2(act(dw3x3(fc1(x))))  with
 *   fc1: x [N,H,W,C] (pixel stride C) @ w1 [C][Ch] + b1 -> [N,H,W,Ch] (FP16-rounded)
 *   dw3x3: depthwise 3x3, stride 1, zero pad 1, weights wdw [9][Ch] (tap-major), + bdw, then act
 *          (0 none, 1 relu, 2 sigmoid, 3 gelu-erf), FP16-rounded
 *   fc2: @ w2 [Ch][C] + b2 -> y (pixel stride ldy >= C).
 * Biases may be NULL.  Needs mtk_mlp_supported(C, Ch); x, w1, w2 16-byte
 * aligned. */
typedef struct mtk_mlp {
    const void *x, *w1, *b1, *wdw, *bdw, *w2, *b2;
    void *y;
    int N, H, W, C, Ch, act, ldy;
    /* ln != 0: x is not the MLP input but the first addend of a residual
     * LayerNorm computed first: input = LN(x + res) (gamma, beta (may be
     * NULL), eps), and x + res (FP16) is written to sum when non-NULL, as the
     * unfused LayerNorm step does.  x, res dense [N,H,W,C]. */
    int ln;
    const void *res, *gamma, *beta;
    void *sum;
    float eps;
} mtk_mlp;
int mtk_mlp_supported(int C, int Ch);
cudaError_t mtk_mlp_dw(cudaStream_t s, const mtk_mlp *m);

/* Tests: block b of an nblocks grid writes its multiprocessor id to out[b]. */
cudaError_t mtk_smid_probe(cudaStream_t s, int *out, int nblocks);

/* Fused bilinear 2x upsample -> 3x3 convolution (upconv.cu):
 *   y = act(conv3x3(resize2x(cat(x[0], .., x[nsrc-1]))) + bias)
 * with the resize ONNX linear / half_pixel at scale 2 (taps clamped at the
 * border, each upsampled value rounded to FP16 as mtk_resize_cat does), the
 * conv stride 1, pad 1 (zeros around the upsampled image), groups 1.
 *   x[k]: source k, FP16 channels-last [N, csrc[k], IH, IW] given by strides
 *         xs[k] over (n, c, h, w) in elements: xs[k][1] == 1, the others
 *         multiples of 8, 16-byte aligned; csrc[k] a multiple of 8;
 *   w:    FP16 [CO][3][3][C] (C = sum of csrc), 16-byte aligned;
 *   bias: FP16 [CO] or NULL;  act: 0 none, 1 relu, 2 sigmoid, 3 gelu;
 *   y:    FP16 [N, CO, 2 IH, 2 IW] given by strides ys (ys[1] == 1, the
 *         others even: may be a channel slice of a wider tensor); CO a
 *         multiple of 8.
 * cudaErrorInvalidValue when the shapes are not supported (check first with
 * mtk_upconv3x3_supported). */
int mtk_upconv3x3_supported(int nsrc, const int *csrc, int CO, int act);
cudaError_t mtk_upconv3x3(cudaStream_t s, int nsrc, const void *const *x, const int64_t (*xs)[4], const int *csrc,
                          const void *w, const void *bias, void *y, const int64_t ys[4], int N, int IH, int IW, int CO,
                          int act);
/* Benchmarks: the same with a given tile variant (0 .. nvariants-1; -1 the
 * one mtk_upconv3x3 picks). */
int mtk_upconv3x3_nvariants(void);
const char *mtk_upconv3x3_variant_name(int v);
cudaError_t mtk_upconv3x3_variant(cudaStream_t s, int variant, int nsrc, const void *const *x, const int64_t (*xs)[4],
                                  const int *csrc, const void *w, const void *bias, void *y, const int64_t ys[4], int N,
                                  int IH, int IW, int CO, int act);

/* The FP16 3x3 convolution (stride 1, padding 1, dilation 1, one group) on
 * Hopper's wgmma with the weights resident in shared memory (hconv.cu,
 * wgconv.cuh; sm_90a builds only: mtk_hconv_built), for the opt-in pass
 * "wgconv" (fuse_wgconv.c), FP32 sums:
 *   x:    FP16 [N][H][W][C], image n at x + n xs0, pixel (iy, ix) at
 *         (iy W + ix) xpix (elements; channels contiguous, C % 16 == 0,
 *         xs0 and xpix multiples of 8, 16-byte aligned);
 *   w:    FP16 [CO][3][3][C] (cuDNN's layout in the plan), 16-byte aligned;
 *   bias: [CO], FP16 (bias_f16) or FP32, or NULL;  act: 0 none, 1 relu;
 *   y:    FP16, output (n, oy, ox, co) at y + n ys0 + (oy W + ox) ldy + co
 *         (ldy >= CO and ys0 even, 4-byte aligned);
 *   scratch: FP32 [N H W][CO] (16-byte aligned), needed only where the
 *         configuration runs K in parts (mtk_hconv_parts > 1: the weights
 *         of the whole K do not fit in shared memory; one launch a part,
 *         their sums added through it), else ignored (may be NULL).
 * Configurations 1..mtk_hconv_ncfg() (BN output channels a block, tiles,
 * warpgroups, stages; mtk_hconv_cfg_name); mtk_hconv_parts says in how many
 * K parts (1..4) one runs on h (0: it does not fit; shapes and shared
 * memory, the pointers' alignment is checked at the launch),
 * mtk_hconv_pick the automatic choice (0: none fits).  mtk_hconv3x3 with
 * cfg -1 runs the automatic choice; cudaErrorInvalidValue where the
 * configuration does not fit or needs the scratch it lacks. */
typedef struct mtk_hconv {
    const void *x;
    int64_t xs0, xpix;
    const void *w;
    const void *bias;
    int bias_f16;
    void *y;
    int64_t ys0, ldy;
    float *scratch;
    int N, H, W, C, CO, act;
} mtk_hconv;
int mtk_hconv_built(void);
int mtk_hconv_ncfg(void);
const char *mtk_hconv_cfg_name(int cfg);
int mtk_hconv_parts(const mtk_hconv *h, int cfg);
int mtk_hconv_pick(const mtk_hconv *h);
cudaError_t mtk_hconv3x3(cudaStream_t s, const mtk_hconv *h, int cfg);

/* Bilinear 2x upsample -> 3x3 convolution at the low resolution, four
 * output phases (polyphase; polyconv.cu, fuse_poly.c), in three parts:
 *   mtk_poly_compose_weights (host): w FP16 [CO][3][3][C] -> wc FP16
 *     [4 CO][3][3][C], output channel (py * 2 + px) * CO + co the phase
 *     (py, px) of output channel co;
 *   mtk_poly_pad: xpad FP16 [N][IH + 2][IW + 2][C] (dense, 16-byte
 *     aligned), the concat of the sources (as mtk_upconv3x3's x, xs, csrc)
 *     with a replicated border;
 *   then the caller's convolution pconv = conv3x3(xpad, wc), no padding, no
 *     bias or activation: FP16 [N][IH][IW][4 CO] dense;
 *   mtk_poly_finish: y = act(conv3x3(resize2x(cat(x))) + bias) as
 *     mtk_upconv3x3 (same arguments and output layout; y 16-byte aligned,
 *     strides multiples of 8) from pconv, correcting the output's one-pixel
 *     ring (zeros beyond the upsampled image) from x and w.
 * mtk_poly_supported: the shapes mtk_poly_finish takes. */
int mtk_poly_supported(int nsrc, const int *csrc, int CO, int act);
int mtk_poly_compose_weights(const uint16_t *w, int CO, int C, uint16_t *wc); /* -1: out of memory */
cudaError_t mtk_poly_pad(cudaStream_t s, int nsrc, const void *const *x, const int64_t (*xs)[4], const int *csrc, void *xpad,
                         int N, int IH, int IW);
cudaError_t mtk_poly_finish(cudaStream_t s, const void *pconv, int nsrc, const void *const *x, const int64_t (*xs)[4],
                            const int *csrc, const void *w, const void *bias, void *y, const int64_t ys[4], int N, int IH,
                            int IW, int CO, int act);

/* A small-K convolution (the network's 7x7/4 stem over the RGB input) as one
 * tensor-core kernel (stem.cu): the im2col matrix never reaches memory.
 *   y[row, co] = act(sum_k A[row, k] w[co * ldw + k] + bias[co]),
 *   row = (n * OH + oh) * OW + ow,  k = (kh * KW + kw) * C + c  (K = KH KW C),
 *   A[row, k] = FP16(x[n, c, oh*sh - ph + kh, ow*sw - pw + kw]) (round to
 *               nearest), 0 outside the image: exactly what mtk_im2col_view
 *               writes for the GEMM that follows it; dilation 1, groups 1.
 *   x:    [N, C, H, W] FP32 (xf16 0) or FP16 (xf16 1), strides xs over
 *         (n, c, h, w) in elements (any: NCHW, NHWC, a view);
 *   w:    FP16 [CO][ldw], ldw >= K (the columns from K on are not read);
 *   bias: FP16 [CO] or NULL;  act: 0 none, 1 relu, 2 sigmoid, 3 gelu (erf);
 *   y:    FP16 rows of CO channels, ldy >= CO apart (elements).
 * FP32 accumulation, one FP16 rounding of the result.  Supported when
 * mtk_conv_smallk_supported (K <= 256, CO 16, 32 or 64, the tile fits in
 * shared memory); cudaErrorInvalidValue otherwise. */
typedef struct mtk_smallk {
    const void *x;
    int64_t xs[4];
    int xf16;
    const void *w;
    int ldw;
    const void *bias;
    void *y;
    int64_t ldy;
    int N, C, H, W, CO, OH, OW, KH, KW, sh, sw, ph, pw, act;
} mtk_smallk;
int mtk_conv_smallk_supported(int C, int KH, int KW, int sh, int sw, int CO, int xf16, int act);
cudaError_t mtk_conv_smallk(cudaStream_t s, const mtk_smallk *a);

#ifdef __cplusplus
}
#endif
#endif
