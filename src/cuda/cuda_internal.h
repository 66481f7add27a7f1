/* Internals of the CUDA backend: the step list (mc_step and its typed
 * parameters), buffers and the plan, shared by plan.c, the planners
 * (plan_*.c, whose own internals are plan_int.h), run.c and the step
 * fusions (fuse*.c). */
#ifndef MT_CUDA_INTERNAL_H
#define MT_CUDA_INTERNAL_H

#include <cuda.h> /* driver types only: the calls go through mc_driver() */
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

#include "cuda/cuda_backend.h"
#include "cuda/kernels.h"

/* A strided view onto a buffer: logical dims, strides in elements, element
 * offset; st = storage type (ONNX code). */
typedef struct mc_tref {
    int buf;
    int st;
    int rank;
    int64_t off;
    int64_t dims[MT_MAX_RANK];
    int64_t strides[MT_MAX_RANK];
} mc_tref;

enum { MC_ARENA = 0, MC_CONST = 1, MC_STAGE = 2 };

typedef struct mc_buf {
    size_t bytes, off, host_bytes;
    int kind;
    int bound;       /* staging of an always-bound input / output: no memory of its own */
    int first, last; /* steps using it */
    void *dptr;
    void *host;      /* constant contents to upload */
} mc_buf;

enum {
    MC_COPY = 0, MC_EW, MC_LN, MC_SOFTMAX, MC_RESIZE, MC_DW, MC_CONVD, MC_CUDNN, MC_GEMM, MC_BIASACT, MC_GATHER,
    MC_ATTN, MC_IM2COL, MC_SMALLN, MC_RESIZE_CAT, MC_QCONV, MC_PREP,
    MC_MLP,    /* fc1 -> depthwise 3x3 + act -> fc2 in one kernel (fuse_mlp.c) */
    MC_UPCONV, /* bilinear 2x upsample (of a channel concat) -> 3x3 conv in one kernel (fuse_upconv.c) */
    MC_RESIZE_SUM, /* sum of bilinear resizes of several maps to one size (fuse_catgemm.c) */
    MC_CHAIN,  /* three chained per-pixel GEMMs in one kernel (chain.cu, fuse_chain.c) */
    MC_CONV_SMALLK, /* im2col -> GEMM of a small-K conv in one kernel (fuse_stem.c) */
    MC_CLASSMAP,    /* mtmi.ClassMap: t[0] uint8 [N,H,W], t[1] x [N,C,H,W] (outputs.cu) */
    MC_SYMQUANT,    /* mtmi.SymQuant: t[0] int8, t[1] scales float [N], t[2] x, t[3] uint32 [N] scratch */
    MC_RESIZE_ARGMAX, /* bilinear resize -> ClassMap in one kernel (fuse_classmap.c): t[0] uint8 map,
                       * t[1] the resize's input; u.resize as the resize's */
    MC_QUANT,       /* mtmi.QuantizeNHWC: t[0] int8 [N,H,W,C], t[1] x [N,C,H,W] (the quantize pass of qconv.cu) */
    MC_POLYPAD,     /* upsample 2x -> conv 3x3 at low resolution (fuse_poly.c): the replicate-padded concat */
    MC_POLYFIN,     /* ... its four phases' bias, activation and border ring into the output (fuse_poly.c) */
    MC_QUPSUM,      /* mtmi.QUpsampleSum (qupsum.cu): t[0] y, t[1] Bq, t[2] ldexpf(Mult, -8), t[3..] the levels */
    MC_WGCONV,      /* FP16 3x3 conv on wgmma (hconv.cu, fuse_wgconv.c): operands and conv as MC_CUDNN's */
    MC_NKINDS
};

typedef struct mc_gemm {
    int64_t m, n, k;     /* row-major C[m,n] = A[m,k] B[k,n] */
    int a_rowmajor;      /* A stored with k contiguous (else m contiguous) */
    int b_rowmajor;      /* B stored with n contiguous (else k contiguous) */
    int64_t lda, ldb, ldc;
    int64_t batch, sa, sb, sc; /* batch count and strides (elements) */
    int act;             /* 0 none, 1 relu, 2 sigmoid, 3 gelu (2/3 by a bias_act pass) */
    int has_bias;        /* t[3] */
    float alpha;
    float beta;          /* != 0: D = alpha A B + beta C (+ bias, act) with C = t[4] (laid out as t[0]) */
} mc_gemm;

typedef struct mc_conv {
    int N, C, H, W, CO, OH, OW, KH, KW, sh, sw, ph, pw, ph2, pw2, dh, dw, groups, act, has_bias;
    int64_t ldy, ys0; /* output: pixels ldy apart, images ys0 apart (NHWC slice) */
} mc_conv;

/* ------------------------------------------------- step parameters
 * Each step kind's parameters are a typed struct, a member of mc_step.u
 * (kinds without any leave it zero; MC_GEMM and the convolutions keep theirs
 * in mc_step.gemm / mc_step.conv, MC_EW its program in mc_step.prog).
 * Integer fields are int64_t, as the numbered slots they replace were.
 *
 * Who writes and reads which field (W = writes, R = reads):
 *
 *   kind / member         planner (plan_*.c)    fusion passes (fuse*.c)                       run.c
 *   MC_EW  ew             -                     -                                            W n (finalize), R n
 *   MC_LN  ln             plan_norm W rows, C,  fuse_im2col R rows C has_beta has_res         R all
 *                         has_beta, has_res,      keep_sum proj im2col, W im2col
 *                         keep_sum, eps         fuse_ln2 R rows C has_beta has_res keep_sum
 *                                                 im2col pair proj eps, W (first LN) im2col
 *                                                 pair pair_beta pair_eps
 *                                               fuse_lnproj R rows C has_beta has_res
 *                                                 keep_sum im2col pair proj, W proj proj_k
 *                                                 proj_ld
 *                                               fuse_mlp (mlpln) R rows C has_beta has_res
 *                                                 keep_sum im2col pair proj eps
 *                                               fuse_qln R rows C has_beta has_res keep_sum
 *                                                 pair proj q8 q8_scale, W q8 q8_scale
 *   MC_SOFTMAX softmax    plan_norm W rows, n   -                                            R
 *   MC_RESIZE resize      plan_resize W mode,   fuse_catgemm R mode coord sh sw              R mode coord nearest sh sw
 *                         coord, nearest, sh,   fuse_upconv R mode coord sh sw                 qscale
 *                         sw                    fuse_classmap R mode, copies all to the fused step
 *                                               fuse_qresize R mode, W qscale
 *   MC_RESIZE_CAT resize  plan_resize W mode,   fuse_upconv R mode coord sh sw at            R coord sh sw at qscale
 *                         coord, sh, sw, at     fuse_qresize W qscale
 *   MC_RESIZE_ARGMAX resize -                   fuse_classmap W (a copy of the resize's)     R coord sh sw
 *   MC_RESIZE_SUM resize  -                     fuse_catgemm W coord                         R coord
 *   MC_GATHER gather      plan_layout W all     -                                            R all
 *   MC_ATTN attn          plan_gemm W all       -                                            R all
 *   MC_SMALLN smalln      plan_conv W all       -                                            R all
 *   MC_MLP mlp            -                     fuse_mlp W C Ch ldy; (mlpln) R C ln,          R all
 *                                                 W ln ln_beta eps
 *   MC_CONV_SMALLK smallk -                     fuse_stem W all                              R all
 *   MC_CHAIN chain        -                     fuse_chain W all                             R all
 *   MC_UPCONV upconv      -                     fuse_upconv W nsrc                           R nsrc
 *   MC_POLYPAD upconv     -                     fuse_poly W nsrc                             R nsrc
 *   MC_POLYFIN upconv     -                     fuse_poly W nsrc                             R nsrc
 *   MC_QUANT quant        plan_forms W scale    fuse_qln R scale (the LN writes t[0]; the step  R scale
 *                                                 is dropped)
 *   MC_QCONV resize       -                     fuse_qupconv W (a copy of the resize's),     R coord sh sw at (with
 *                                                 at[0] 0 for a plain resize                    sources: nt > 6 and
 *                                                                                               no ups_n)
 *   MC_QUPSUM qups        plan_conv W all       fuse_qupsum R all (folds it into the level-0  R all
 *                                                 MC_QCONV: mtk_qconv.ups_n, t[6..] levels)
 *
 * Operands (mc_step.t): t[0] is the (first) output; the rest per kind as
 * documented where the kind is made (plan_*.c, fuse*.c) and read (run.c). */
#define MC_MAX_T 13

typedef struct mc_ew_args {      /* MC_EW */
    int64_t n;                   /* elements of t[0] (set when the arguments are finalized) */
} mc_ew_args;

typedef struct mc_ln_args {      /* MC_LN: t[0] y, t[1] x (or a of x = a + r), t[2] gamma, t[3] beta */
    int64_t rows, C;             /* rows of C normalized elements */
    int64_t has_beta;            /* t[3] */
    int64_t has_res;             /* x = t[1] + t[4] (a residual Add folded in) */
    int64_t keep_sum;            /* the sum x is also written, to t[5] */
    int64_t im2col;              /* fuse_im2col: also writes t[6], the im2col matrix of mc_step.conv */
    int64_t pair, pair_beta;     /* fuse_ln2: a second LayerNorm of y: t[7] its output, t[8] gamma, t[9] beta */
    int64_t proj, proj_k, proj_ld; /* fuse_lnproj: x = t[1] + (t[10] [rows, proj_k], row stride proj_ld) t[11] + t[4] */
    int64_t q8;                  /* fuse_qln: also writes t[12], the int8 copy of y (mtk_layernorm_q8) with scale q8_scale */
    float eps, pair_eps, q8_scale;
} mc_ln_args;

typedef struct mc_softmax_args { /* MC_SOFTMAX: t[0] y, t[1] x */
    int64_t rows, n;             /* rows of n elements */
} mc_softmax_args;

typedef struct mc_resize_args {  /* MC_RESIZE, MC_RESIZE_CAT, MC_RESIZE_ARGMAX, MC_RESIZE_SUM */
    int64_t mode;                /* 0 nearest, 1 linear */
    int64_t coord;               /* coordinate transformation mode (kernels.h) */
    int64_t nearest;             /* nearest_mode (MC_RESIZE) */
    float sh, sw;                /* scales along H and W */
    int64_t at[MC_MAX_T];        /* MC_RESIZE_CAT: channel offset of source t[1 + k] in the output */
    float qscale;                /* MC_RESIZE, MC_RESIZE_CAT (fuse_qresize.c): > 0: t[0] is the next QConv's int8
                                  * input, each value quantized with this scale (mtk_resize_q8) */
} mc_resize_args;

typedef struct mc_gather_args {  /* MC_GATHER: t[0] y, t[1] x, t[2] indices */
    int64_t pre, n, nidx, post;  /* outer size, the gathered axis, indices, inner size */
} mc_gather_args;

typedef struct mc_attn_args {    /* MC_ATTN: t[0] out, t[1] q, t[2] k, t[3] v */
    int64_t B, H, N, M, D;       /* batch, heads, queries, keys, head size */
    float scale;
} mc_attn_args;

typedef struct mc_smalln_args {  /* MC_SMALLN: t[0] y, t[1] x, t[2] w, t[3] bias */
    int64_t has_bias, act;
} mc_smalln_args;

typedef struct mc_mlp_args {     /* MC_MLP (fuse_mlp.c): t[0] y, t[1] x, t[2..7] w1 b1 wdw bdw w2 b2 */
    int64_t C, Ch, ldy;          /* channels, hidden channels, output pixel stride */
    int64_t ln, ln_beta;         /* mlpln: the residual LayerNorm in the prologue (t[8] a, t[9] r, t[10] gamma, t[11] beta) */
    float eps;
} mc_mlp_args;

typedef struct mc_smallk_args {  /* MC_CONV_SMALLK (fuse_stem.c) */
    int64_t ldw, ldy;            /* weight and output row strides */
} mc_smallk_args;

typedef struct mc_chain_args {   /* MC_CHAIN (fuse_chain.c): t[0] y, t[1] x, t[2..3] w1 b1, t[4] r, t[5..6] w2 b2, t[7..8] w3 b3 */
    int64_t m, k1, n3, ldx, ldr, ldy, ldw1, ldw2, ldw3;
    int64_t wt;                  /* bit i: weights of GEMM i+1 transposed */
    int64_t act;                 /* 2 bits per GEMM */
} mc_chain_args;

typedef struct mc_upconv_args {  /* MC_UPCONV (fuse_upconv.c): t[0] y, t[1] w, t[2] bias, t[3..] sources;
                                  * MC_POLYPAD (fuse_poly.c): t[0] the padded concat, t[1..] sources;
                                  * MC_POLYFIN: t[0] y, t[1] the phases, t[2] w, t[3] bias, t[4..] sources */
    int64_t nsrc;
} mc_upconv_args;

typedef struct mc_quant_args {   /* MC_QUANT: t[0] int8 NHWC codes, t[1] x */
    float scale;
} mc_quant_args;

typedef struct mc_qups_args {    /* MC_QUPSUM: the QUpsampleSum's epilogue */
    int64_t act;
    float y_scale;
} mc_qups_args;

typedef struct mc_step {
    int kind;
    int node;   /* graph node, or -1 */
    int label;  /* cone label: -1 shared, k head k */
    int order;
    int nt;
    mc_tref t[MC_MAX_T]; /* operands; t[0] is the (first) output */
    mtk_prog prog;
    mc_gemm gemm;
    mc_conv conv;
    union {                      /* the kind's parameters (table above) */
        mc_ew_args ew;
        mc_ln_args ln;
        mc_softmax_args softmax;
        mc_resize_args resize;
        mc_gather_args gather;
        mc_attn_args attn;
        mc_smalln_args smalln;
        mc_mlp_args mlp;
        mc_smallk_args smallk;
        mc_chain_args chain;
        mc_upconv_args upconv;
        mc_quant_args quant;
        mc_qups_args qups;
    } u;
    void *obj;      /* backend-library objects (cuBLASLt / cuDNN) */
} mc_step;

#define MC_MAX_PARTS 16

/* A set of stage-buffer bindings (graph inputs / outputs read and written in
 * place in the caller's device memory) and the CUDA graph captured for it;
 * ew_objs: elementwise argument blocks made for these pointers. */
#define MC_MAX_BINDINGS 16
typedef struct mc_binding {
    void *in[MT_MAX_IO_BIND], *out[MT_MAX_IO_BIND];
    cudaGraphExec_t exec;
    int nobjs;
    void **objs;
} mc_binding;

typedef struct mc_plan {
    const mt_graph *g;
    int device, f16;
    mt_tuning tuning;  /* the switches it was made with (a copy) */
    cudaStream_t stream;
    int own_stream;  /* 0: the caller's stream (mt_cuda_plan_opts.stream) */
    CUcontext ctx;   /* made current instead of cudaSetDevice (green context) */
    int sms;         /* its multiprocessors (0 = the whole GPU; mtk_set_sm_limit) */
    mc_binding binds[MC_MAX_BINDINGS];
    int nbinds;
    int any_bound;   /* some input / output is always given in device memory: no unbound graph */
    mc_buf *bufs;
    int nbufs, cap_bufs;
    mc_step *steps;
    int nsteps, cap_steps;
    mc_tref *vt;
    unsigned char *has;
    int *nuse, *consumer;
    unsigned char *skip;
    int *label;
    int cur_label;
    int *vcat;       /* per value: Concat node left unmaterialized (read by a resize), or -1 */
    mc_tref *in_stage, *out_stage;
    void *arena, *pool;
    size_t arena_bytes, weight_bytes, workspace_bytes;
    size_t mem_free_before, mem_used;
    cudaGraphExec_t exec;
    int nparts;
    int part_first[MC_MAX_PARTS], part_last[MC_MAX_PARTS];
    cudaGraphExec_t part_exec[MC_MAX_PARTS];
    /* libraries */
    void *lt;        /* cublasLtHandle_t */
    void *cudnn;     /* cudnnHandle_t */
    void *ws;        /* shared workspace */
    size_t ws_bytes;
    size_t ws_needed; /* the most any chosen algorithm asks for */
    /* where mt_cuda_plan_create_ex spent its time (ms; MC_BUILD_* phases),
     * and how many algorithm searches finalize ran (cuBLASLt, cuDNN) */
    double build_ms[8];
    int nsearch_lt, nsearch_dnn;
    /* saved plans: decisions recorded here, or replayed from here
     * (choices->replay) instead of the searches; NULL = neither */
    struct mt_choices *choices;
    /* what each fusion pass that ran made (fuse.c; mt_cuda_plan_fusions) */
    struct { const char *pass; int made; } fused[32];
    int nfused;
} mc_plan;

/* the decision kinds this backend records (backend/choices.h) */
enum { MC_CHOICE_GEMM = 1, MC_CHOICE_CUDNN = 2 };

/* build_ms phases */
enum { MC_BUILD_SETUP, MC_BUILD_LIBS, MC_BUILD_STEPS, MC_BUILD_FUSE, MC_BUILD_MEMORY, MC_BUILD_FINALIZE, MC_BUILD_EAGER,
       MC_BUILD_CAPTURE };

/* The one CUDA error check of the host code: when `call` fails, returns
 * MTMI_ERR_DEVICE from the calling function with the one-line message
 * "CUDA: <context>: <error>" (context: a printf format and its arguments). */
#define MC_CUDA_CHECK(call, ...)                                                  \
    do {                                                                          \
        cudaError_t e_ = (call);                                                  \
        if (e_ != cudaSuccess) return mc_cuda_fail(e_, __VA_ARGS__);              \
    } while (0)
/* ... with the call itself as the context. */
#define MC_CK(call) MC_CUDA_CHECK(call, "%s", #call)
mtmi_status mc_cuda_fail(cudaError_t e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

size_t mc_esize(int st);
int mc_copy_kind(int st);
void mc_contig(mc_tref *t);
int64_t mc_numel(const mc_tref *t);
int mc_is_contig(const mc_tref *t);
float mc_const_float(const mt_value *v, int64_t i);
void *mc_ptr(const mc_plan *p, const mc_tref *t);
/* A level of mtmi.QUpsampleSum (qkernels.h) from t, a dense NHWC int32
 * tensor, for an OH x OW output, at address ptr (NULL at plan time): 0, or
 * -1 when t is not one (layout, factor). */
struct mtk_qups_level;
int mc_qups_level(const mc_tref *t, const void *ptr, int OH, int OW, struct mtk_qups_level *l);

/* Makes the plan's device (or context) current on the calling thread. */
mtmi_status mc_bind(const mc_plan *p);

/* driver.c: driver-API entry points, looked up at run time (NULL, with a
 * one-line error, when the driver lacks them). */
typedef struct mc_driver_api {
    CUresult (*ctx_get_current)(CUcontext *);
    CUresult (*ctx_set_current)(CUcontext);
    CUresult (*device_get)(CUdevice *, int);
    CUresult (*device_get_dev_resource)(CUdevice, CUdevResource *, CUdevResourceType);
    CUresult (*dev_sm_resource_split_by_count)(CUdevResource *, unsigned *, const CUdevResource *, CUdevResource *,
                                               unsigned, unsigned);
    CUresult (*dev_resource_generate_desc)(CUdevResourceDesc *, CUdevResource *, unsigned);
    CUresult (*green_ctx_create)(CUgreenCtx *, CUdevResourceDesc, CUdevice, unsigned);
    CUresult (*green_ctx_destroy)(CUgreenCtx);
    CUresult (*ctx_from_green_ctx)(CUcontext *, CUgreenCtx);
    CUresult (*green_ctx_stream_create)(CUstream *, CUgreenCtx, unsigned, int);
    CUresult (*get_error_string)(CUresult, const char **);
} mc_driver_api;
const mc_driver_api *mc_driver(void);
const char *mc_driver_error(CUresult r);

/* fuse.c: step-level fusion passes, run on the emitted steps before memory
 * planning (so buffers that fusion leaves unread take no arena space).
 * tuning.cuda_no_fuse (MTMI_CUDA_NO_FUSE: comma-separated pass names, or
 * "all") turns passes off for A/B measurements. */
mtmi_status mc_fuse_steps(mc_plan *p);
int mc_fuse_enabled(const mc_plan *p, const char *pass);
/* A pass removes a step by setting its kind to MC_DROPPED; mc_fuse_steps
 * takes such steps out after each pass (until then they keep their
 * operands, and other steps' indices stay valid). */
#define MC_DROPPED (-1)
/* 1 if one of the step's operands lies in buffer buf */
int mc_step_uses(const mc_step *s, int buf);
/* the step before `k` that last touched buffer `buf`, or -1 */
int mc_last_user_before(const mc_plan *p, int buf, int k);
/* a and b are the same view: buffer, type, offset, rank, dims, and the
 * strides of every dim longer than 1 */
int mc_same_view(const mc_tref *a, const mc_tref *b);
/* a and b the same float bit for bit (a scale two steps must share exactly) */
static inline int mc_same_float_bits(float a, float b) {
    uint32_t x, y;
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    return x == y;
}
/* 1 if some step other than steps[a] and steps[b] uses buffer buf, or it is a
 * staging buffer (graph input / output) */
int mc_buf_used_elsewhere(const mc_plan *p, int buf, int a, int b);
/* t is an FP16 view of N images in NCHW-ordered dims with the channels
 * innermost, every stride and the offset multiples of 8 elements and its
 * channels too: what the 8-channel (16-byte) kernels read */
int mc_f16_c8_view(const mc_tref *t, int64_t N);
/* A dense channels-last FP16 image [N, C, H, W] in buffer buf (offset 0). */
mc_tref mc_nhwc_f16(int buf, int64_t N, int64_t C, int64_t H, int64_t W);
/* 1 if the element ranges of two views of one buffer may intersect */
int mc_views_overlap(const mc_tref *a, const mc_tref *b);
/* 1 if a step strictly between steps[a] and steps[b] writes (t[0]) into any
 * of the nv views v: a fused step moved to b must not read them there */
int mc_written_between(const mc_plan *p, int a, int b, const mc_tref *v, int nv);
/* a fused step replacing `from`: zeroed, with kind and from's node, label
 * and order (its place in the plan) */
mc_step mc_step_like(const mc_step *from, int kind);
/* a fresh arena buffer of `bytes` (its index), or -1 when out of memory */
int mc_new_arena(mc_plan *p, size_t bytes);
/* room for one more step in p->steps; -1 when out of memory */
int mc_reserve_step(mc_plan *p);
/* inserts a zeroed step before steps[at] (pointer to it, NULL when out of
 * memory) and renumbers the steps' order to their positions: fusion passes
 * run on the steps in emission order, before the plan sorts them */
mc_step *mc_insert_step(mc_plan *p, int at);
/* the passes (each returns the number of fusions made, or -1 with the error set) */
int mc_fuse_mlp(mc_plan *p);
int mc_fuse_mlp_ln(mc_plan *p);    /* fuse_mlp.c: the residual LayerNorm before a fused MLP, in its prologue */
int mc_fuse_upconv(mc_plan *p);
int mc_fuse_poly(mc_plan *p);        /* fuse_poly.c: upsample 2x -> 3x3 conv as a low-resolution conv of four phases */
/* fuse_upconv.c: step i an FP16 2x bilinear upsample (of a concat) whose
 * only reader is a 3x3 / pad 1 convolution (MC_CUDNN or MC_CONVD) at step
 * *conv with FP16 weights and channels-last FP16 output, its sources not
 * written in between: the sources in src[] (UPC_MAXSRC), their count
 * returned; 0 when not */
#define UPC_MAXSRC 4
int mc_match_upsample_conv(const mc_plan *p, int i, mc_tref *src, int *conv);
int mc_fuse_ln_im2col(mc_plan *p); /* fuse_im2col.c: LayerNorm writes the im2col matrix of the conv after it */
int mc_fuse_ln_pair(mc_plan *p);     /* fuse_ln2.c: a LayerNorm of a LayerNorm's output in the same pass */
int mc_fuse_im2col_gemm(mc_plan *p); /* fuse_stem.c: im2col + GEMM of a small-K conv (the stem) as one kernel */
int mc_fuse_classmap(mc_plan *p);    /* fuse_classmap.c: bilinear resize + class map as one kernel */
int mc_fuse_concat_gemm(mc_plan *p); /* fuse_catgemm.c: 1x1 conv of a concat of upsampled maps, reassociated */
int mc_fuse_chain(mc_plan *p);       /* fuse_chain.c: three chained per-pixel GEMMs as one step */
int mc_fuse_qupsum(mc_plan *p);      /* fuse_qupsum.c: mtmi.QUpsampleSum in its level-0 GEMM's epilogue */
int mc_fuse_qchain(mc_plan *p);      /* fuse_qchain.c: a QConv writes the next QConv's int8 input */
int mc_fuse_qresize(mc_plan *p);     /* fuse_qresize.c: resizes and QConvs write a concat's slices as the next QConv's int8 input */
int mc_fuse_qupconv(mc_plan *p);     /* fuse_qupconv.c: a 3x3 QConv upsamples its own int8 input (after qresize) */
int mc_fuse_qln(mc_plan *p);         /* fuse_qln.c: a LayerNorm also writes the int8 input of the QConvs reading it */
int mc_fuse_ln_proj(mc_plan *p);     /* fuse_lnproj.c: a small projection GEMM computed by the residual LayerNorm after it */
int mc_fuse_wgconv(mc_plan *p);      /* fuse_wgconv.c: FP16 3x3 convs from cuDNN to the wgmma kernel (hconv.cu) */
/* fuse_wgconv.c: MC_WGCONV step s's kernel parameters (with_ptrs: the
 * device pointers too, once memory is placed) */
struct mtk_hconv;
void mc_wgconv_params(const mc_plan *p, const mc_step *s, int with_ptrs, struct mtk_hconv *h);
/* fuse_wgconv.c: the geometry the wgmma conv takes (3x3, stride 1, padding
 * 1, dilation 1, one group, same size out, C a multiple of 16), shared by
 * the pass and the planner's im2col decision (plan_conv.c) */
int mc_wgconv_shape(const mc_conv *c);

/* run.c */
mtmi_status mc_libs_init(mc_plan *p);
void mc_libs_free(mc_plan *p);
mtmi_status mc_finalize_step(mc_plan *p, mc_step *s);
mtmi_status mc_run_step(mc_plan *p, mc_step *s);
void mc_release_step(mc_plan *p, mc_step *s);
const char *mc_step_name(int kind);
/* Collapses and orders the dims of a copy / elementwise launch: views[0] is
 * the output; all views share its logical dims. */
int mc_collapse(int nviews, const mc_tref *const *views, mtk_view *out);


#endif
