/* test_backend_ops: every CUDA step kind against the CPU kernels, in the
 * style of ggml's test-backend-ops.
 *
 * Each case is a small graph made to produce one step kind (or, for the
 * fused kinds, the built-in network whose patterns the step fusions look
 * for), at several random shapes.  The graph runs on the CPU backend (FP32:
 * the reference) and as a CUDA plan in FP32 and FP16; every output is
 * compared per element, |gpu - cpu| <= abs + amax max|cpu| + rel |cpu|,
 * with the tolerances of one table (g_tols) by the case's class.  Class
 * maps are compared on the pixels whose reference top-two margin decides
 * them; INT8 codes may differ by one step where the float logits already
 * round differently.
 *
 * Coverage is checked, not assumed: each case names the step kinds its
 * plan must contain (per precision), and every step kind the planner has
 * must have appeared in some case, except those listed in g_not_emitted
 * (with the reason).  A missing GPU is the only skip (exit 77).
 *
 * Each comparison prints its largest error and the share of its tolerance
 * used.  The tolerances come from docs/TESTING.md's GPU bounds, widened
 * where the first GPU run (H100, 2026-12-06) needed it: FP16 moves of
 * subnormal values (one FP16 step, 6e-8, at |x| ~2.4e-5: 114 % of a purely
 * relative bound) and FP16 INT8 convolutions (their inputs quantized from
 * FP16 values, so a code can differ by one step: up to 344 % of 2e-3 of
 * max|y|; now ~4x that).  Seeds: MTMI_TEST_SEED. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/cpu.h"
#include "cuda/cuda_backend.h"
#include "cuda/kernels.h"
#include "graph/builder.h"
#include "image/image.h"
#include "model/model.h"
#include "oracle.h"
#include "quant/quant.h"

/* ------------------------------------------------------------ tolerances
 * The one table: allowed |gpu - cpu| = abs + amax * max|cpu| + rel * |cpu|,
 * for FP32 and FP16 plans. */
typedef struct tol {
    const char *cls;
    double abs32, amax32, rel32;
    double abs16, amax16, rel16;
} tol;
static const tol g_tols[] = {
    /* copies, gathers, preprocessing: the same values (FP16: one rounding) */
    {"move", 0, 0, 0, 6e-8, 0, 1e-3},
    /* pointwise programs (fast-math exp / tanh / erf on the GPU) */
    {"pointwise", 0, 1e-6, 1e-5, 0, 2e-3, 4e-3},
    /* reductions: LayerNorm, softmax, GEMMs, convolutions, attention, resizes */
    {"reduce", 0, 1e-5, 1e-4, 0, 5e-3, 1e-2},
    /* INT8 convolutions: the same integer arithmetic (quant.h's contract);
     * FP16 plans quantize FP16 inputs (a code may move by one step) and store
     * the float results */
    {"int8", 0, 1e-6, 1e-6, 0, 2.8e-2, 2e-3},
    /* the whole network's segmentation logits and depth (docs/TESTING.md) */
    {"seg", 2e-4, 0, 0, 6e-2, 0, 2e-2},
    {"depth", 5e-5, 0, 0, 6e-3, 0, 0},
};

static const tol *find_tol(const char *cls) {
    for (size_t i = 0; i < sizeof g_tols / sizeof *g_tols; i++)
        if (!strcmp(g_tols[i].cls, cls)) return &g_tols[i];
    return NULL;
}

/* Kinds no graph can produce, and why (they are not counted as missing). */
static const struct {
    const char *kind, *why;
} g_not_emitted[] = {
    {"bias-act", "the enum exists, no planner emits it (bias and activation ride in the GEMM and conv epilogues)"},
#ifndef MTMI_HAVE_CUDNN
    {"conv-cudnn", "this build has no cuDNN"},
    {"poly-pad", "the polyphase rewrite needs cuDNN's convolution"},
    {"poly-finish", "the polyphase rewrite needs cuDNN's convolution"},
#endif
};

/* ------------------------------------------------------------------ cases */
/* A random integer in lo, lo + step, ..., up to hi. */
static int pick(oracle_rng *r, int lo, int hi, int step) {
    const int n = (hi - lo) / step + 1;
    int k = (int)(oracle_uniform(r) * n);
    if (k >= n) k = n - 1;
    return lo + step * k;
}

typedef struct built {
    mt_graph *g;
    unsigned forms[4];  /* per output, MT_FORM_*: applied after optimization (0 = none) */
    int image_input;    /* input 0 as uint8 frames (mtmi.Preprocess) */
    int int8;           /* rewrite to QConv / QLinear with min-max scales of this input */
    const char *fuse_opt; /* opt-in CUDA step fusions for the plan (tuning.cuda_fuse_opt) */
    int reassoc;        /* then the 1x1 QConvs over upsampled concats reassociated (mtmi.QUpsampleSum) */
    const char *no_fuse32; /* fusions off in the FP32 plan (tuning.cuda_no_fuse): it checks the unfused form */
    const char *fused16;   /* a fusion pass that must fire in the FP16 plan */
    char desc[160];
} built;

typedef int (*build_fn)(uint64_t seed, built *out);

static int finish(mt_builder *b, built *out) { return mt_builder_finish(b, &out->g) ? -1 : 0; }

/* x [N, C, H, W] random sizes. */
static int input4(mt_builder *b, oracle_rng *r, int cmin, int cmax, int cstep, int64_t d[4]) {
    d[0] = pick(r, 1, 2, 1);
    d[1] = pick(r, cmin, cmax, cstep);
    d[2] = pick(r, 4, 24, 1);
    d[3] = pick(r, 4, 24, 1);
    return mt_b_input(b, "x", MTMI_FLOAT, 4, d);
}

static int case_copy(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    int64_t d[4];
    int x = input4(&b, &r, 1, 12, 1, d);
    const int64_t perm[4] = {0, 2, 3, 1};
    mt_b_output(&b, mt_b_transpose(&b, x, perm, 4), "y");
    snprintf(o->desc, sizeof o->desc, "transpose %lldx%lldx%lldx%lld", (long long)d[0], (long long)d[1], (long long)d[2], (long long)d[3]);
    return finish(&b, o);
}

static int case_elementwise(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    int64_t d[4];
    int x = input4(&b, &r, 1, 16, 1, d);
    const int64_t wd[4] = {1, d[1], 1, 1};
    int w = mt_b_weight(&b, "w", 4, wd, 1.0f);
    int y = mt_b_binary(&b, "Add", mt_b_binary(&b, "Mul", x, w), mt_b_unary(&b, "Tanh", x));
    mt_b_output(&b, mt_b_unary(&b, "Sigmoid", y), "y");
    snprintf(o->desc, sizeof o->desc, "sigmoid(x*w + tanh x) %lldx%lldx%lldx%lld", (long long)d[0], (long long)d[1],
             (long long)d[2], (long long)d[3]);
    return finish(&b, o);
}

/* x [N, T, C] */
static int tokens(mt_builder *b, oracle_rng *r, const char *name, int64_t d[3], int cstep) {
    d[0] = pick(r, 1, 2, 1);
    d[1] = pick(r, 3, 300, 1);
    d[2] = pick(r, 8, 256, cstep);
    return mt_b_input(b, name, MTMI_FLOAT, 3, d);
}

static int case_layernorm(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    int64_t d[3];
    int a = tokens(&b, &r, "a", d, 8);
    int res = mt_b_input(&b, "r", MTMI_FLOAT, 3, d);
    /* a residual Add folded into the LayerNorm, as in every encoder block */
    mt_b_output(&b, mt_b_layernorm(&b, mt_b_binary(&b, "Add", a, res), "ln", (int)d[2], 1e-6f), "y");
    snprintf(o->desc, sizeof o->desc, "layernorm(a + r) %lldx%lldx%lld", (long long)d[0], (long long)d[1], (long long)d[2]);
    return finish(&b, o);
}

static int case_softmax(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    int64_t d[3];
    int x = tokens(&b, &r, "x", d, 1);
    mt_b_output(&b, mt_b_node(&b, "Softmax", &x, 1), "y");
    snprintf(o->desc, sizeof o->desc, "softmax %lldx%lldx%lld", (long long)d[0], (long long)d[1], (long long)d[2]);
    return finish(&b, o);
}

static int case_resize(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    int64_t d[4];
    int x = input4(&b, &r, 1, 24, 1, d);
    const float s = (float)pick(&r, 2, 4, 1);
    const float sc[4] = {1, 1, s, s};
    mt_b_output(&b, mt_b_resize_scales(&b, x, sc, 4), "y");
    snprintf(o->desc, sizeof o->desc, "bilinear x%g %lldx%lldx%lldx%lld", s, (long long)d[0], (long long)d[1], (long long)d[2],
             (long long)d[3]);
    return finish(&b, o);
}

/* A k x k convolution with `groups` of the input. */
static int conv_case(uint64_t seed, built *o, int cmin, int cmax, int cstep, int co_mul, int k, int stride, int groups_mode) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    int64_t d[4];
    int x = input4(&b, &r, cmin, cmax, cstep, d);
    const int C = (int)d[1], groups = groups_mode == 0 ? 1 : groups_mode == -1 ? C : groups_mode, CO = groups_mode == -1 ? C : C * co_mul;
    const int pad = k / 2;
    const int64_t OH = (d[2] + 2 * pad - k) / stride + 1, OW = (d[3] + 2 * pad - k) / stride + 1;
    int y = mt_b_conv(&b, x, "conv", C, CO, k, stride, pad, groups, 1, OH * OW * d[0]);
    mt_b_output(&b, mt_b_unary(&b, "Relu", y), "y");
    snprintf(o->desc, sizeof o->desc, "conv %dx%d/%d groups %d, %lldx%dx%lldx%lld -> %d", k, k, stride, groups, (long long)d[0], C,
             (long long)d[2], (long long)d[3], CO);
    return finish(&b, o);
}

static int case_dwconv(uint64_t seed, built *o) { return conv_case(seed, o, 8, 64, 8, 1, 3, 1, -1); }
/* 2 input channels a group: our direct kernel */
static int case_conv_direct(uint64_t seed, built *o) { return conv_case(seed, o, 8, 16, 8, 1, 3, 1, 4); }
/* 8 or more a group, channels a multiple of 8: cuDNN where the build has it */
static int case_conv_cudnn(uint64_t seed, built *o) { return conv_case(seed, o, 16, 32, 16, 1, 3, 1, 2); }
/* groups 1, a small column matrix: im2col + GEMM (FP16: fused, conv-smallk) */
static int case_im2col(uint64_t seed, built *o) { return conv_case(seed, o, 3, 16, 1, 2, 3, 2, 0); }

/* 1x1 conv to fewer than 8 channels: the row-per-thread GEMM */
static int case_smalln(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    int64_t d[4];
    int x = input4(&b, &r, 8, 64, 8, d);
    const int CO = pick(&r, 1, 7, 1);
    mt_b_output(&b, mt_b_conv(&b, x, "head", (int)d[1], CO, 1, 1, 0, 1, 1, d[0] * d[2] * d[3]), "y");
    snprintf(o->desc, sizeof o->desc, "conv 1x1 %lld -> %d channels at %lldx%lld", (long long)d[1], CO, (long long)d[2], (long long)d[3]);
    return finish(&b, o);
}

static int case_gemm(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    int64_t d[3];
    int x = tokens(&b, &r, "x", d, 8);
    const int out = pick(&r, 8, 256, 8);
    mt_b_output(&b, mt_b_linear(&b, x, "fc", (int)d[2], out, d[0] * d[1]), "y");
    snprintf(o->desc, sizeof o->desc, "linear %lldx%lldx%lld -> %d", (long long)d[0], (long long)d[1], (long long)d[2], out);
    return finish(&b, o);
}

static int case_gather(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    int64_t d[3];
    int x = tokens(&b, &r, "x", d, 1);
    int64_t idx[4];
    for (int k = 0; k < 4; k++) idx[k] = (int64_t)(oracle_uniform(&r) * (double)d[1]) % d[1];
    int in[2] = {x, mt_b_const_i64(&b, 1, idx, 4)};
    int y = mt_b_node(&b, "Gather", in, 2);
    mt_node_set_int(mt_b_last(&b), "axis", 1);
    mt_b_output(&b, y, "y");
    snprintf(o->desc, sizeof o->desc, "gather 4 of %lld tokens, %lldx%lldx%lld", (long long)d[1], (long long)d[0], (long long)d[1],
             (long long)d[2]);
    return finish(&b, o);
}

static int case_attention(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    const int64_t B = pick(&r, 1, 2, 1), h = pick(&r, 1, 5, 1), N = pick(&r, 16, 300, 1), M = pick(&r, 16, 300, 1);
    const int64_t D = 32;
    const int64_t qd[4] = {B, h, N, D}, kd[4] = {B, h, M, D};
    int q = mt_b_input(&b, "q", MTMI_FLOAT, 4, qd), k = mt_b_input(&b, "k", MTMI_FLOAT, 4, kd), v = mt_b_input(&b, "v", MTMI_FLOAT, 4, kd);
    mt_b_output(&b, mt_b_attention(&b, q, k, v, 1.0f / sqrtf((float)D), B * h, N, M, D), "y");
    snprintf(o->desc, sizeof o->desc, "attention B %lld heads %lld queries %lld keys %lld d %lld", (long long)B, (long long)h,
             (long long)N, (long long)M, (long long)D);
    return finish(&b, o);
}

/* resize x2 (bilinear) of concat(1x1 conv of x to c1, 1x1 conv of x to
 * c2): the depth head's upsample of its features and skip connection. */
static int upsampled_concat(mt_builder *b, int x, const int64_t d[4], int c1, int c2) {
    const int64_t hw = d[0] * d[2] * d[3];
    int parts[2];
    parts[0] = mt_b_conv(b, x, "a", (int)d[1], c1, 1, 1, 0, 1, 1, hw); /* in this order: the builder draws the weights */
    parts[1] = mt_b_conv(b, x, "c", (int)d[1], c2, 1, 1, 0, 1, 1, hw);
    const float sc[4] = {1, 1, 2, 2};
    return mt_b_resize_scales(b, mt_b_concat(b, parts, 2, 1), sc, 4);
}

/* Concat of two NHWC maps (1x1 conv outputs) read by a bilinear resize:
 * FP16 plans read the sources in place (resize-cat). */
static int case_resize_cat(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    int64_t d[4];
    int x = input4(&b, &r, 8, 32, 8, d);
    const int c1 = pick(&r, 8, 32, 8), c2 = pick(&r, 8, 32, 8);
    mt_b_output(&b, upsampled_concat(&b, x, d, c1, c2), "y");
    snprintf(o->desc, sizeof o->desc, "resize x2 of concat(%d, %d channels) at %lldx%lld", c1, c2, (long long)d[2], (long long)d[3]);
    return finish(&b, o);
}

/* The depth head's pattern: a 3x3 conv (CO <= 32) over a 2x upsample of a
 * concat.  Large enough that the conv is not im2col + GEMM (column matrix
 * over 48 MB), so FP16 plans fuse it into one upconv step. */
static int case_upconv(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    int64_t d[4] = {1, pick(&r, 8, 16, 8), pick(&r, 108, 116, 2), pick(&r, 108, 116, 2)};
    int x = mt_b_input(&b, "x", MTMI_FLOAT, 4, d);
    const int c1 = pick(&r, 48, 64, 16), c2 = pick(&r, 16, 32, 16), CO = pick(&r, 16, 32, 8);
    int y = mt_b_conv(&b, upsampled_concat(&b, x, d, c1, c2), "conv", c1 + c2, CO, 3, 1, 1, 1, 1, 4 * d[2] * d[3]);
    mt_b_output(&b, mt_b_unary(&b, "Relu", y), "y");
    snprintf(o->desc, sizeof o->desc, "conv 3x3 -> %d of resize x2 of concat(%d, %d channels) at %lldx%lld", CO, c1, c2,
             (long long)d[2], (long long)d[3]);
    return finish(&b, o);
}

/* The same pattern with the opt-in polyphase rewrite (fuse_poly.c): the
 * conv at the low resolution with four output phases, any CO (poly32), odd
 * sizes (the border ring of the output corrected), one or two sources. */
static int case_poly(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    /* odd and even sizes; the column matrix over 48 MB (as case_upconv) */
    int64_t d[4] = {pick(&r, 1, 2, 1), 8, pick(&r, 121, 131, 5), pick(&r, 121, 135, 7)};
    int x = mt_b_input(&b, "x", MTMI_FLOAT, 4, d);
    const int c1 = pick(&r, 48, 64, 16), c2 = pick(&r, 0, 32, 16), CO = pick(&r, 16, 72, 8);
    int up;
    if (c2) up = upsampled_concat(&b, x, d, c1, c2);
    else {
        const float sc[4] = {1, 1, 2, 2};
        up = mt_b_resize_scales(&b, mt_b_conv(&b, x, "p", (int)d[1], c1, 1, 1, 0, 1, 1, d[0] * d[2] * d[3]), sc, 4);
    }
    int y = mt_b_conv(&b, up, "conv", c1 + c2, CO, 3, 1, 1, 1, 1, 4 * d[0] * d[2] * d[3]);
    mt_b_output(&b, mt_b_unary(&b, "Relu", y), "y");
    o->fuse_opt = "poly,poly32";
    snprintf(o->desc, sizeof o->desc, "polyphase: conv 3x3 -> %d of resize x2 of %d + %d channels at %lldx%lldx%lld", CO, c1,
             c2, (long long)d[0], (long long)d[2], (long long)d[3]);
    return finish(&b, o);
}

/* A 3x3 conv (stride 1, pad 1, one group, C a multiple of 16) that the FP16
 * plan gives cuDNN, with the opt-in pass "wgconv": our wgmma kernel
 * instead (hconv.cu).  The column matrix over 48 MB, as case_upconv's, so
 * that the planner does not take im2col; H a multiple of 16 or only of 8
 * (the one-tile-row configuration), CO not always a multiple of the block. */
static int case_wgconv(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    int64_t d[4] = {1, pick(&r, 64, 80, 16), pick(&r, 200, 240, 8), pick(&r, 224, 256, 8)};
    int x = mt_b_input(&b, "x", MTMI_FLOAT, 4, d);
    const int CO = pick(&r, 16, 72, 8);
    int y = mt_b_conv(&b, x, "conv", (int)d[1], CO, 3, 1, 1, 1, 1, d[0] * d[2] * d[3]);
    mt_b_output(&b, mt_b_unary(&b, "Relu", y), "y");
    o->fuse_opt = "wgconv";
    snprintf(o->desc, sizeof o->desc, "wgmma conv 3x3: %lld -> %d channels at %lldx%lldx%lld", (long long)d[1], CO,
             (long long)d[0], (long long)d[2], (long long)d[3]);
    return finish(&b, o);
}

/* Two convolutions rewritten to QConv with min-max scales. */
static int case_qconv(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    int64_t d[4];
    int x = input4(&b, &r, 16, 32, 16, d);
    const int C = (int)d[1], CO = pick(&r, 16, 48, 16);
    const int64_t hw = d[0] * d[2] * d[3];
    int y = mt_b_unary(&b, "Relu", mt_b_conv(&b, x, "c1", C, CO, 3, 1, 1, 1, 1, hw));
    mt_b_output(&b, mt_b_conv(&b, y, "c2", CO, 8, 1, 1, 0, 1, 1, hw), "y");
    o->int8 = 1;
    snprintf(o->desc, sizeof o->desc, "int8 conv 3x3 %d -> %d, 1x1 -> 8 at %lldx%lld", C, CO, (long long)d[2], (long long)d[3]);
    return finish(&b, o);
}

/* The seg head's fuse conv reassociated (src/quant/reassoc.c): three
 * maps at 1, 1/2 and 1/4 of the output's size, projected (1x1), the small
 * ones upsampled, concatenated and fused by a 1x1 conv + Relu, then a 1x1
 * classifier.  The FP32 plan runs mtmi.QUpsampleSum's own kernel, the
 * FP16 plan the form folded into level 0's GEMM (fuse_qupsum.c), chained
 * to the classifier's int8 input. */
static int case_qupsum(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    int64_t d[4] = {pick(&r, 1, 2, 1), pick(&r, 16, 32, 16), 4 * pick(&r, 2, 7, 1), 4 * pick(&r, 2, 7, 1)};
    const int x = mt_b_input(&b, "x", MTMI_FLOAT, 4, d);
    /* M odd for odd seeds (one shape in three): int32 levels with odd
     * strides (scalar stores), and no fusion (its loads take channel
     * pairs): the kernel in both plans */
    const int C0 = (int)d[1], C1 = pick(&r, 16, 32, 16), C2 = pick(&r, 16, 48, 16), E = pick(&r, 16, 32, 8);
    const int M = pick(&r, 16, 40, 8) | (int)(seed & 1);
    const int64_t hw = d[0] * d[2] * d[3];
    const int x1 = mt_b_unary(&b, "Relu", mt_b_conv(&b, x, "down1", C0, C1, 3, 2, 1, 1, 1, hw / 4));
    const int x2 = mt_b_unary(&b, "Relu", mt_b_conv(&b, x1, "down2", C1, C2, 3, 2, 1, 1, 1, hw / 16));
    const float s2[4] = {1, 1, 2, 2}, s4[4] = {1, 1, 4, 4};
    int parts[3];
    parts[0] = mt_b_conv(&b, x, "proj0", C0, E, 1, 1, 0, 1, 1, hw);
    parts[1] = mt_b_resize_scales(&b, mt_b_conv(&b, x1, "proj1", C1, E, 1, 1, 0, 1, 1, hw / 4), s2, 4);
    parts[2] = mt_b_resize_scales(&b, mt_b_conv(&b, x2, "proj2", C2, E, 1, 1, 0, 1, 1, hw / 16), s4, 4);
    const int f = mt_b_unary(&b, "Relu", mt_b_conv(&b, mt_b_concat(&b, parts, 3, 1), "fuse", 3 * E, M, 1, 1, 0, 1, 1, hw));
    mt_b_output(&b, mt_b_conv(&b, f, "cls", M, 8, 1, 1, 0, 1, 1, hw), "y");
    o->int8 = 1;
    o->reassoc = 1;
    o->no_fuse32 = "qupsum";
    o->fused16 = M % 2 ? NULL : "qupsum";
    snprintf(o->desc, sizeof o->desc, "int8 fuse conv 3x%d -> %d reassociated, maps %d/%d/%d at %lldx%lldx%lld", E, M, C0, C1, C2,
             (long long)d[0], (long long)d[2], (long long)d[3]);
    return finish(&b, o);
}

/* mtmi.QuantizeNHWC (the encoder's features handed to INT8 heads as
 * codes, src/quant/handover.c): a conv's output, also quantized to int8
 * NHWC as a second output.  The scale puts most codes inside +-127 with
 * some clamped. */
static int case_quantize(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    int64_t d[4];
    const int x = input4(&b, &r, 8, 32, 8, d);
    const int C = (int)d[1], CO = pick(&r, 8, 40, 8);
    const int y = mt_b_conv(&b, x, "c", C, CO, 1, 1, 0, 1, 1, d[0] * d[2] * d[3]);
    mt_b_output(&b, y, "y");
    if (finish(&b, o)) return -1;
    mt_graph *g = o->g;
    const int yv = g->outputs[0];
    const int q = mt_graph_add_nhwc_value(g, "y:codes", MTMI_INT8, yv);
    const int nd = q < 0 ? -1 : mt_graph_add_mtmi_node(g, "QuantizeNHWC", "quantize", yv, q);
    if (nd < 0 || mt_node_set_float(&g->nodes[nd], "scale", 0.02f) || mt_graph_add_output(g, q)) return -1;
    snprintf(o->desc, sizeof o->desc, "conv 1x1 %d -> %d, its int8 NHWC codes at %lldx%lldx%lld", C, CO, (long long)d[0],
             (long long)d[2], (long long)d[3]);
    return 0;
}

/* 8-bit frames normalized on the device, then a pointwise op. */
static int case_preprocess(uint64_t seed, built *o) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    const int64_t d[4] = {pick(&r, 1, 2, 1), 3, pick(&r, 8, 64, 1), pick(&r, 8, 64, 1)};
    int x = mt_b_input(&b, "x", MTMI_FLOAT, 4, d);
    mt_b_output(&b, mt_b_unary(&b, "Relu", x), "y");
    o->image_input = 1;
    snprintf(o->desc, sizeof o->desc, "preprocess %lldx%lldx3 frames", (long long)d[2], (long long)d[3]);
    return finish(&b, o);
}

/* Logits of a 1x1 conv: the class map and the int8 form, made on the
 * device; `up`: through a bilinear resize (the fused resize + argmax). */
static int logits_case(uint64_t seed, built *o, int up, unsigned forms) {
    mt_builder b;
    oracle_rng r = {seed};
    if (mt_builder_init(&b, seed, 17)) return -1;
    int64_t d[4];
    int x = input4(&b, &r, 8, 32, 8, d);
    const int classes = pick(&r, 2, 19, 1);
    int y = mt_b_conv(&b, x, "cls", (int)d[1], classes, 1, 1, 0, 1, 1, d[0] * d[2] * d[3]);
    if (up) {
        const float sc[4] = {1, 1, 4, 4};
        y = mt_b_resize_scales(&b, y, sc, 4);
    }
    mt_b_output(&b, y, "seg");
    o->forms[0] = forms;
    snprintf(o->desc, sizeof o->desc, "%s%s of %d classes at %lldx%lld", forms & MT_FORM_CLASSES ? "class map" : "int8 logits",
             up ? " after a resize x4" : "", classes, (long long)d[2], (long long)d[3]);
    return finish(&b, o);
}
static int case_classmap(uint64_t seed, built *o) { return logits_case(seed, o, 0, MT_FORM_CLASSES); }
static int case_resize_argmax(uint64_t seed, built *o) { return logits_case(seed, o, 1, MT_FORM_CLASSES); }
static int case_symquant(uint64_t seed, built *o) { return logits_case(seed, o, 0, MT_FORM_INT8); }

/* The built-in network at a random size: the patterns of every step
 * fusion (MLP, upsample + conv, decode-head chain, stem, LayerNorm pairs
 * and im2col, resize sums).  forms: of the segmentation output. */
static int network_case(uint64_t seed, built *o, unsigned seg_forms) {
    oracle_rng r = {seed};
    mt_mtmi_net_opts no = {.seed = seed, .height = pick(&r, 64, 160, 32), .width = pick(&r, 64, 160, 32)};
    mt_mtmi_net_info info;
    if (mt_make_mtmi_net(&no, &o->g, &info)) return -1;
    o->forms[0] = seg_forms;
    o->forms[1] = MT_FORM_FLOAT;
    snprintf(o->desc, sizeof o->desc, "MTMI network %dx%d, seg %s", no.height, no.width,
             seg_forms == MT_FORM_FLOAT ? "logits" : seg_forms == MT_FORM_CLASSES ? "class map" : "int8");
    return 0;
}
static int case_network(uint64_t seed, built *o) { return network_case(seed, o, MT_FORM_FLOAT); }
static int case_network_classes(uint64_t seed, built *o) { return network_case(seed, o, MT_FORM_CLASSES); }
static int case_network_int8(uint64_t seed, built *o) { return network_case(seed, o, MT_FORM_INT8); }

typedef struct op_case {
    const char *name;
    build_fn build;
    /* step kinds one of which each plan must contain ("" = none required) */
    const char *kinds32, *kinds16;
    const char *tol;
} op_case;

static const op_case g_cases[] = {
    {"copy", case_copy, "copy", "copy", "move"},
    {"elementwise", case_elementwise, "elementw", "elementw", "pointwise"},
    {"layernorm", case_layernorm, "layernorm", "layernorm", "reduce"},
    {"softmax", case_softmax, "softmax", "softmax", "reduce"},
    {"resize", case_resize, "resize", "resize", "reduce"},
    {"dwconv", case_dwconv, "dwconv", "dwconv", "reduce"},
    {"conv_direct", case_conv_direct, "conv-direct", "conv-direct", "reduce"},
    {"conv_cudnn", case_conv_cudnn, "conv-cudnn,conv-direct", "conv-cudnn,conv-direct", "reduce"},
    {"im2col", case_im2col, "im2col", "im2col,conv-smallk", "reduce"},
    {"gemm_smalln", case_smalln, "gemm-smalln", "gemm-smalln", "reduce"},
    {"gemm", case_gemm, "gemm", "gemm", "reduce"},
    {"gather", case_gather, "gather", "gather", "move"},
    {"attention", case_attention, "attention", "attention", "reduce"},
    {"resize_cat", case_resize_cat, "resize", "resize-cat", "reduce"},
    {"upconv", case_upconv, "conv-cudnn,conv-direct", "upconv", "reduce"},
#ifdef MTMI_HAVE_CUDNN
    {"poly", case_poly, "conv-cudnn,conv-direct", "poly-finish", "reduce"},
    /* conv-cudnn where the wgmma kernels are not built (sm_90 builds);
     * where they are, the coverage check below requires conv-wgmma */
    {"wgconv", case_wgconv, "conv-cudnn,conv-direct", "conv-wgmma,conv-cudnn", "reduce"},
#endif
    {"qconv", case_qconv, "qconv-int8", "qconv-int8", "int8"},
    {"qupsum", case_qupsum, "qupsample-sum", "qconv-int8", "int8"},
    {"quantize", case_quantize, "quantize", "quantize", "reduce"},
    {"preprocess", case_preprocess, "preprocess", "preprocess", "move"},
    {"classmap", case_classmap, "classmap", "classmap", "reduce"},
    {"resize_argmax", case_resize_argmax, "resize-argmax", "resize-argmax", "reduce"},
    {"symquant", case_symquant, "symquant", "symquant", "reduce"},
    {"network", case_network, "layernorm", "mlp-fused", "seg"},
    {"network_classes", case_network_classes, "resize-argmax", "resize-argmax", "seg"},
    {"network_int8", case_network_int8, "symquant", "symquant", "seg"},
};

/* ---------------------------------------------------------------- running */
typedef struct outs {
    int n;
    mt_tview v[8];
} outs;

static void outs_free(outs *o) {
    for (int i = 0; i < o->n; i++) free(o->v[i].data);
    o->n = 0;
}

static int alloc_outs(const mt_graph *g, outs *o) {
    memset(o, 0, sizeof *o);
    o->n = g->noutputs < 8 ? g->noutputs : 8;
    for (int i = 0; i < o->n; i++) {
        size_t bytes = mt_value_bytes(&g->values[g->outputs[i]]);
        if (!(o->v[i].data = calloc(1, bytes + 16))) return -1;
    }
    return 0;
}

/* Random inputs in the graph's dtypes (uint8 frames for mtmi.Preprocess). */
static int make_inputs(const mt_graph *g, oracle_rng *r, mt_tview *in) {
    for (int i = 0; i < g->ninputs && i < 4; i++) {
        const mt_value *v = &g->values[g->inputs[i]];
        in[i].dtype = v->dtype;
        in[i].rank = v->rank;
        memcpy(in[i].dims, v->dims, sizeof in[i].dims);
        const int64_t n = mt_value_numel(v);
        if (!(in[i].data = malloc(mt_value_bytes(v) + 16))) return -1;
        for (int64_t k = 0; k < n; k++) {
            if (v->dtype == MTMI_UINT8) ((uint8_t *)in[i].data)[k] = (uint8_t)(oracle_next(r) >> 56);
            else ((float *)in[i].data)[k] = oracle_normal(r);
        }
    }
    return 0;
}

/* The graph as the plans get it: optimized, forms appended, frames as
 * uint8, INT8 rewritten with min-max scales of `in`. */
static int prepare(built *bt, oracle_rng *r, mt_tview *in) {
    mt_graph *g = bt->g;
    if (mt_graph_optimize(g, NULL, 0, mt_cpu_eval, NULL, 1)) return -1;
    if (bt->image_input && mt_graph_image_input(g, 0, mt_image_mean, mt_image_std)) return -1;
    int has_forms = 0;
    for (int i = 0; i < g->noutputs && i < 4; i++) has_forms |= bt->forms[i] != 0;
    if (has_forms && mt_graph_output_forms(g, bt->forms, NULL, NULL, 0) < 0) return -1;
    if (make_inputs(g, r, in)) return -1;
    if (!bt->int8) return 0;
    /* min-max scales from a CPU run on the same input */
    mt_calib_stats st = {0};
    mt_calib_observer ob = {0};
    mt_calib_cache cache = {0};
    mt_cpu_plan *cp = NULL;
    outs o;
    mt_graph *q = NULL;
    int rc = -1;
    unsigned char *sel = malloc((size_t)g->nnodes + 1);
    if (!sel) return -1;
    memset(sel, 1, (size_t)g->nnodes + 1);
    if (!mt_calib_stats_init(&st, g, sel) && !mt_cpu_plan_create(g, 0, &cp) && !mt_calib_observer_attach(&ob, &st, g, cp) &&
        !alloc_outs(g, &o)) {
        if (!mt_cpu_plan_run(cp, in, g->ninputs, o.v, o.n) && !mt_calib_stats_scales(&st, MT_CALIB_MINMAX, 0, NULL, &cache) &&
            !mt_quant_stage_graph(g, &cache, "test", &q)) {
            int made = 0;
            rc = 0;
            /* a reassoc case that no longer reassociates tests nothing */
            if (bt->reassoc && (mt_quant_reassociate(q, &made) || made < 1)) rc = -1;
        }
        outs_free(&o);
    }
    mt_calib_observer_free(&ob);
    mt_cpu_plan_free(cp);
    mt_calib_stats_free(&st);
    mt_calib_cache_free(&cache);
    free(sel);
    if (rc) return -1;
    mt_graph_free(bt->g);
    bt->g = q;
    return 0;
}

static int run_cpu(const mt_graph *g, const mt_tview *in, outs *o) {
    mt_cpu_plan *p = NULL;
    int rc = mt_cpu_plan_create(g, 0, &p) || alloc_outs(g, o) || mt_cpu_plan_run(p, in, g->ninputs, o->v, o->n) ? -1 : 0;
    mt_cpu_plan_free(p);
    return rc;
}

/* *fired (may be NULL): how many fusions pass `fired_pass` made, -1 if it did not run */
static int run_gpu(const mt_graph *g, const mt_tview *in, int fp16, const char *fuse_opt, const char *no_fuse, outs *o, int *counts,
                   const char *fired_pass, int *fired) {
    mt_cuda_plan *p = NULL;
    mt_tuning t = *mt_tuning_default();
    if (fuse_opt) snprintf(t.cuda_fuse_opt, sizeof t.cuda_fuse_opt, "%s", fuse_opt);
    if (no_fuse) snprintf(t.cuda_no_fuse, sizeof t.cuda_no_fuse, "%s", no_fuse);
    mt_cuda_plan_opts po = {.fp16 = fp16, .tuning = &t};
    int rc = mt_cuda_plan_create_ex(g, 0, &po, &p) || alloc_outs(g, o) ? -1 : 0;
    if (!rc) mt_cuda_plan_step_counts(p, counts);
    if (!rc && fired_pass && fired) *fired = mt_cuda_plan_fusions(p, fired_pass);
    if (!rc && mt_cuda_plan_run(p, in, g->ninputs, o->v, o->n)) rc = -1;
    mt_cuda_plan_free(p);
    return rc;
}

static double at(const mt_tview *t, int64_t i) {
    switch (t->dtype) {
    case MTMI_FLOAT: return ((const float *)t->data)[i];
    case MTMI_FLOAT16: return mt_half_to_float(((const uint16_t *)t->data)[i]);
    case MTMI_UINT8: return ((const uint8_t *)t->data)[i];
    case MTMI_INT8: return ((const int8_t *)t->data)[i];
    case MTMI_INT32: return ((const int32_t *)t->data)[i];
    case MTMI_INT64: return (double)((const int64_t *)t->data)[i];
    default: return NAN;
    }
}

static float *as_float(const mt_tview *t) {
    const int64_t n = mt_tview_numel(t);
    float *f = malloc(sizeof(float) * (size_t)(n + 1));
    for (int64_t i = 0; f && i < n; i++) f[i] = (float)at(t, i);
    return f;
}

/* A class map: every pixel whose reference logits decide it (top-two
 * margin above twice the logit tolerance) must agree. */
static int check_classes(const char *tag, const mt_tview *got, const mt_tview *ref_map, const float *logits, int classes,
                         double logit_tol) {
    const int64_t n = mt_tview_numel(ref_map), b = ref_map->dims[0], hw = n / (b ? b : 1);
    int64_t decided = 0, flipped = 0, agree = 0;
    for (int64_t k = 0; k < b; k++)
        for (int64_t i = 0; i < hw; i++) {
            float top, second;
            oracle_argmax(logits, classes, hw, k, i, &top, &second);
            const int same = at(got, k * hw + i) == at(ref_map, k * hw + i);
            agree += same;
            if (top - second > 2 * logit_tol) {
                decided++;
                flipped += !same;
            }
        }
    printf("  %s: %lld of %lld pixels decided (margin > %.3g), %lld of them flipped; agreement %.4f\n", tag, (long long)decided,
           (long long)n, 2 * logit_tol, (long long)flipped, n ? (double)agree / n : 0.0);
    /* too few decided pixels and the comparison could not tell a broken map */
    return flipped == 0 && decided >= n / 10;
}

/* INT8 codes: at most max_step steps apart, and only where the float
 * logits themselves round differently (at most a share of them). */
static int check_codes(const char *tag, const mt_tview *got, const mt_tview *ref, double max_share, int max_step) {
    const int64_t n = mt_tview_numel(ref);
    int64_t off = 0, far = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs(at(got, i) - at(ref, i));
        off += d != 0;
        far += d > max_step;
    }
    printf("  %s: %lld of %lld codes differ (%lld by more than %d step%s; at most %.0f%% may differ)\n", tag, (long long)off,
           (long long)n, (long long)far, max_step, max_step == 1 ? "" : "s", 100 * max_share);
    return far == 0 && off <= max_share * n;
}

static int kinds_contain(const int *counts, const char *alts) {
    if (!alts || !*alts) return 1;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", alts);
    for (char *save = NULL, *k = strtok_r(buf, ",", &save); k; k = strtok_r(NULL, ",", &save))
        for (int i = 0; i < mt_cuda_num_step_kinds(); i++)
            if (counts[i] && !strcmp(mt_cuda_step_kind_name(i), k)) return 1;
    return 0;
}

static void kinds_str(const int *counts, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < mt_cuda_num_step_kinds() && len < cap; i++)
        if (counts[i]) len += (size_t)snprintf(buf + len, cap - len, "%s%s x%d", len ? "," : "", mt_cuda_step_kind_name(i), counts[i]);
}

/* The reference logits of a class-map case: the same graph, float form. */
static float *reference_logits(const op_case *c, uint64_t seed, const mt_tview *in, int *classes) {
    built bt;
    memset(&bt, 0, sizeof bt);
    oracle_rng r = {seed ^ 0x5bd1e995};
    mt_tview tmp[4];
    memset(tmp, 0, sizeof tmp);
    if (c->build(seed, &bt)) return NULL;
    for (int i = 0; i < 4; i++)
        if (bt.forms[i]) bt.forms[i] = MT_FORM_FLOAT;
    float *f = NULL;
    outs o = {0};
    if (!prepare(&bt, &r, tmp) && !run_cpu(bt.g, in, &o)) {
        *classes = (int)o.v[0].dims[1];
        f = as_float(&o.v[0]);
    }
    outs_free(&o);
    for (int i = 0; i < 4; i++) free(tmp[i].data);
    mt_graph_free(bt.g);
    return f;
}

/* --cpu-only: build every graph and run it on the CPU, no GPU (what a
 * machine without one can check of this test: registered as
 * backend_ops_graphs). */
static int g_cpu_only;

/* One case at one seed, both precisions; adds the kinds seen to seen[]. */
static void run_case(const op_case *c, uint64_t seed, int *seen) {
    built bt;
    memset(&bt, 0, sizeof bt);
    oracle_rng r = {seed ^ 0x5bd1e995};
    mt_tview in[4];
    memset(in, 0, sizeof in);
    if (c->build(seed, &bt) || prepare(&bt, &r, in)) {
        CHECK(0, "%s (seed %llu): building the graph: %s", c->name, (unsigned long long)seed, mtmi_last_error());
        mt_graph_free(bt.g);
        return;
    }
    printf("%s, seed %llu: %s\n", c->name, (unsigned long long)seed, bt.desc);
    const tol *t = find_tol(c->tol);
    outs ref = {0};
    CHECK(run_cpu(bt.g, in, &ref) == 0, "%s: CPU run: %s", c->name, mtmi_last_error());
    float *logits = NULL;
    int classes = 0;
    if (g_cpu_only && ref.n) {
        /* the class-map cases' reference logits are a second graph */
        for (int k = 0; k < ref.n; k++)
            if (bt.g->values[bt.g->outputs[k]].dtype == MTMI_UINT8 && !logits) {
                logits = reference_logits(c, seed, in, &classes);
                CHECK(logits != NULL && classes > 1, "%s: reference logits: %s", c->name, mtmi_last_error());
            }
        printf("  cpu: %d output%s\n", ref.n, ref.n == 1 ? "" : "s");
    }
    for (int fp16 = 0; fp16 <= 1 && ref.n && !g_cpu_only; fp16++) {
        int counts[64] = {0};
        outs got = {0};
        const char *prec = fp16 ? "fp16" : "fp32";
        int fired = -1;
        const char *want = fp16 ? bt.fused16 : NULL;
        if (run_gpu(bt.g, in, fp16, bt.fuse_opt, fp16 ? NULL : bt.no_fuse32, &got, counts, want, &fired)) {
            CHECK(0, "%s %s: GPU run: %s", c->name, prec, mtmi_last_error());
            outs_free(&got);
            continue;
        }
        char ks[512];
        kinds_str(counts, ks, sizeof ks);
        printf("  %s plan: %s\n", prec, ks);
        for (int i = 0; i < mt_cuda_num_step_kinds() && i < 64; i++) seen[i] += counts[i];
        CHECK(kinds_contain(counts, fp16 ? c->kinds16 : c->kinds32), "%s %s: no %s step in the plan (%s)", c->name, prec,
              fp16 ? c->kinds16 : c->kinds32, ks);
        if (want) CHECK(fired > 0, "%s %s: fusion %s did not fire (%d)", c->name, prec, want, fired);
        const double abs = fp16 ? t->abs16 : t->abs32, amax = fp16 ? t->amax16 : t->amax32, rel = fp16 ? t->rel16 : t->rel32;
        for (int k = 0; k < ref.n; k++) {
            const mt_value *ov = &bt.g->values[bt.g->outputs[k]];
            char tag[160];
            snprintf(tag, sizeof tag, "%s %s output '%s'", c->name, prec, ov->name);
            got.v[k].dtype = ref.v[k].dtype;
            got.v[k].rank = ref.v[k].rank;
            memcpy(got.v[k].dims, ref.v[k].dims, sizeof got.v[k].dims);
            const int network = !strcmp(c->tol, "seg");
            if (ov->dtype == MTMI_UINT8) { /* a class map, against the logits' tolerance at their largest */
                if (!logits) logits = reference_logits(c, seed, in, &classes);
                double m = 0;
                for (int64_t i = 0; logits && i < mt_tview_numel(&ref.v[k]) * classes; i++)
                    if (fabs(logits[i]) > m) m = fabs(logits[i]);
                CHECK(logits && check_classes(tag, &got.v[k], &ref.v[k], logits, classes, abs + amax * m + rel * m), "%s", tag);
            } else if (ov->dtype == MTMI_INT8) {
                CHECK(check_codes(tag, &got.v[k], &ref.v[k], fp16 ? (network ? 0.3 : 0.05) : 0.01, fp16 && network ? 2 : 1), "%s", tag);
            } else {
                float *a = as_float(&got.v[k]), *b = as_float(&ref.v[k]);
                const int64_t n = mt_tview_numel(&ref.v[k]);
                double m = 0;
                for (int64_t i = 0; b && i < n; i++)
                    if (fabs(b[i]) > m) m = fabs(b[i]);
                /* the network's depth output has its own row in the table */
                double ab = abs, am = amax, re = rel;
                if (!strcmp(c->tol, "seg") && strstr(ov->name, "depth")) {
                    const tol *d = find_tol("depth");
                    ab = fp16 ? d->abs16 : d->abs32, am = fp16 ? d->amax16 : d->amax32, re = fp16 ? d->rel16 : d->rel32;
                }
                CHECK(a && b && oracle_close(tag, a, b, n, ab + am * m, re), "%s", tag);
                free(a);
                free(b);
            }
        }
        outs_free(&got);
    }
    free(logits);
    outs_free(&ref);
    for (int i = 0; i < 4; i++) free(in[i].data);
    mt_graph_free(bt.g);
}

int main(int argc, char **argv) {
    int shapes = 3;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--shapes") && i + 1 < argc) shapes = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--case") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--cpu-only")) g_cpu_only = 1;
        else {
            fprintf(stderr, "usage: test_backend_ops [--shapes N] [--case NAME] [--cpu-only]\n");
            return 2;
        }
    }
    if (!g_cpu_only && mt_cuda_check_device(0)) {
        printf("skipped: %s\n", mtmi_last_error());
        return 77;
    }
    const uint64_t seed = oracle_seed(1);
    int seen[64] = {0};
    int ran = 0;
    for (size_t c = 0; c < sizeof g_cases / sizeof *g_cases; c++) {
        if (only && strcmp(only, g_cases[c].name)) continue;
        CHECK(find_tol(g_cases[c].tol) != NULL, "%s: no tolerance class '%s'", g_cases[c].name, g_cases[c].tol);
        for (int s = 0; s < shapes; s++) run_case(&g_cases[c], seed * 1000003u + c * 97u + (uint64_t)s, seen);
        ran++;
    }
    CHECK(ran > 0, "no case ran (--case %s)", only ? only : "");
    /* coverage: every step kind the planner has appeared somewhere */
    if (!only && !g_cpu_only) {
        for (int k = 0; k < mt_cuda_num_step_kinds(); k++) {
            const char *name = mt_cuda_step_kind_name(k);
            int excused = 0;
            for (size_t e = 0; e < sizeof g_not_emitted / sizeof *g_not_emitted; e++)
                if (!strcmp(g_not_emitted[e].kind, name)) {
                    excused = 1;
                    printf("kind %s: not checked: %s\n", name, g_not_emitted[e].why);
                }
#ifdef MTMI_HAVE_CUDNN
            if (!strcmp(name, "conv-wgmma") && !mtk_hconv_built()) {
                excused = 1;
                printf("kind %s: not checked: this build has no wgmma kernels (CMAKE_CUDA_ARCHITECTURES is not 90a)\n", name);
            }
#else
            if (!strcmp(name, "conv-wgmma")) {
                excused = 1;
                printf("kind %s: not checked: the pass rewrites cuDNN's convolutions, and this build has no cuDNN\n", name);
            }
#endif
            if (!excused) CHECK(seen[k] > 0, "step kind '%s' appeared in no case", name);
        }
    }
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
