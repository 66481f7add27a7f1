/* CUDA plan steps: library objects (cuBLASLt, cuDNN) and launches. */
#include <cublasLt.h>
#include <stdlib.h>
#include <string.h>
#ifdef MTMI_HAVE_CUDNN
#include <cudnn.h>
#endif

#include "backend/choices.h"
#include "cuda/cuda_internal.h"
#include "cuda/qkernels.h"

#define WS_BYTES ((size_t)32 << 20)

/* An LN step's im2col output (fuse_im2col.c): the matrix t[6] of the conv
 * s->conv over the LN's output */
static mtk_ln_im2col ln_im2col_of(const mc_plan *p, const mc_step *s) {
    const mc_conv *c = &s->conv;
    const mtk_ln_im2col ic = {mc_ptr(p, &s->t[6]), c->N, c->H, c->W, c->OH, c->OW, c->KH, c->KW, c->sh, c->sw,
                              c->ph, c->pw, c->dh, c->dw, (int)s->t[6].dims[1]};
    return ic;
}

const char *mc_step_name(int kind) {
    static const char *names[] = {"copy", "elementw", "layernorm", "softmax", "resize", "dwconv", "conv-direct",
                                  "conv-cudnn", "gemm", "bias-act", "gather", "attention", "im2col", "gemm-smalln", "resize-cat", "qconv-int8",
                                  "preprocess", "mlp-fused", "upconv", "resize-sum", "gemm-chain", "conv-smallk",
                                  "classmap", "symquant", "resize-argmax", "quantize", "poly-pad", "poly-finish", "qupsample-sum", "conv-wgmma"};
    return kind >= 0 && kind < MC_NKINDS ? names[kind] : "?";
}

mtmi_status mc_libs_init(mc_plan *p) {
    cublasLtHandle_t lt;
    if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) return mt_fail(MTMI_ERR_DEVICE, "cuBLASLt: cannot create a handle");
    p->lt = lt;
#ifdef MTMI_HAVE_CUDNN
    cudnnHandle_t h;
    if (cudnnCreate(&h) != CUDNN_STATUS_SUCCESS) return mt_fail(MTMI_ERR_DEVICE, "cuDNN: cannot create a handle");
    cudnnSetStream(h, p->stream);
    p->cudnn = h;
#endif
    p->ws_bytes = WS_BYTES;
    if (cudaMalloc(&p->ws, p->ws_bytes) != cudaSuccess) return mt_fail(MTMI_ERR_NOMEM, "CUDA: cannot allocate the workspace");
    p->workspace_bytes = p->ws_bytes;
    return MTMI_OK;
}

void mc_libs_free(mc_plan *p) {
    if (p->lt) cublasLtDestroy((cublasLtHandle_t)p->lt);
#ifdef MTMI_HAVE_CUDNN
    if (p->cudnn) cudnnDestroy((cudnnHandle_t)p->cudnn);
#endif
    if (p->ws) cudaFree(p->ws);
    p->lt = p->cudnn = p->ws = NULL;
}

/* ---------------------------------------------------------- collapse */
int mc_collapse(int nv, const mc_tref *const *views, mtk_view *out) {
    const mc_tref *o = views[0];
    int r = o->rank;
    int axes[MT_MAX_RANK], na = 0;
    for (int d = 0; d < r; d++)
        if (o->dims[d] != 1) axes[na++] = d;
    /* order by output stride, outermost first (stable) */
    for (int i = 1; i < na; i++)
        for (int j = i; j > 0 && o->strides[axes[j]] > o->strides[axes[j - 1]]; j--) {
            int t = axes[j];
            axes[j] = axes[j - 1];
            axes[j - 1] = t;
        }
    int64_t dims[MT_MAX_RANK], st[16][MT_MAX_RANK];
    int nr = 0;
    for (int i = 0; i < na; i++) {
        int a = axes[i];
        if (nr > 0) {
            int ok = 1;
            for (int k = 0; k < nv; k++)
                if (st[k][nr - 1] != views[k]->strides[a] * views[k]->dims[a] && !(views[k]->strides[a] == 0 && st[k][nr - 1] == 0)) ok = 0;
            if (ok) {
                dims[nr - 1] *= o->dims[a];
                for (int k = 0; k < nv; k++) st[k][nr - 1] = views[k]->strides[a];
                continue;
            }
        }
        dims[nr] = o->dims[a];
        for (int k = 0; k < nv; k++) st[k][nr] = views[k]->strides[a];
        nr++;
    }
    if (nr == 0) {
        dims[0] = 1;
        for (int k = 0; k < nv; k++) st[k][0] = 0;
        nr = 1;
    }
    if (nr > MTK_RANK) return -1;
    for (int k = 0; k < nv; k++) {
        out[k].rank = nr;
        for (int d = 0; d < nr; d++) {
            out[k].dims[d] = dims[d];
            out[k].strides[d] = st[k][d];
        }
    }
    return 0;
}

/* ------------------------------------------------------------ GEMM */
typedef struct lt_obj {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
} lt_obj;

static int align_of(const void *ptr) {
    uintptr_t v = (uintptr_t)ptr;
    int a = 256;
    while (a > 1 && v % a) a >>= 1;
    return a;
}

/* A saved plan's GEMM (backend/choices.h): the algorithm recorded for this
 * signature, if there is one and cuBLASLt takes it for this GEMM (checked:
 * cuBLASLt's own test, not the first run), instead of the heuristic and
 * the timed candidates.  1 = used. */
typedef struct lt_choice {
    cublasLtMatmulAlgo_t algo;
    uint64_t ws;
} lt_choice;

static int gemm_saved(mc_plan *p, lt_obj *o, const int64_t *sig, size_t siglen) {
    lt_choice chosen;
    if (!p->choices || !mt_choices_find(p->choices, MC_CHOICE_GEMM, sig, siglen, &chosen, sizeof chosen)) return 0;
    cublasLtMatmulHeuristicResult_t chk;
    memset(&chk, 0, sizeof chk);
    if (cublasLtMatmulAlgoCheck((cublasLtHandle_t)p->lt, o->op, o->a, o->b, o->c, o->c, &chosen.algo, &chk) ||
        chk.workspaceSize > p->ws_bytes) {
        p->choices->found--; /* not usable after all: measured below */
        return 0;
    }
    o->algo = chosen.algo;
    if (chk.workspaceSize > p->ws_needed) p->ws_needed = chk.workspaceSize;
    return 1;
}

static mtmi_status gemm_finalize(mc_plan *p, mc_step *s) {
    mc_gemm *g = &s->gemm;
    lt_obj *o = calloc(1, sizeof *o);
    if (!o) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    s->obj = o;
    cudaDataType_t dt = p->f16 ? CUDA_R_16F : CUDA_R_32F;
    cublasStatus_t st = cublasLtMatmulDescCreate(&o->op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (st) return mt_fail(MTMI_ERR_DEVICE, "cuBLASLt: matmul descriptor (%d)", (int)st);
    /* column-major D[n x m] = opA(Bmat)[n x k] * opB(Amat)[k x m] */
    cublasOperation_t ta = g->b_rowmajor ? CUBLAS_OP_N : CUBLAS_OP_T;
    cublasOperation_t tb = g->a_rowmajor ? CUBLAS_OP_N : CUBLAS_OP_T;
    cublasLtMatmulDescSetAttribute(o->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    cublasLtMatmulDescSetAttribute(o->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
    if (g->has_bias) epi = g->act == 1 ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    else if (g->act == 1) epi = CUBLASLT_EPILOGUE_RELU;
    cublasLtMatmulDescSetAttribute(o->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
    if (g->has_bias) {
        void *bp = mc_ptr(p, &s->t[3]);
        cublasLtMatmulDescSetAttribute(o->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp);
    }
    if (g->b_rowmajor) st = cublasLtMatrixLayoutCreate(&o->a, dt, g->n, g->k, g->ldb);
    else st = cublasLtMatrixLayoutCreate(&o->a, dt, g->k, g->n, g->ldb);
    if (!st) {
        if (g->a_rowmajor) st = cublasLtMatrixLayoutCreate(&o->b, dt, g->k, g->m, g->lda);
        else st = cublasLtMatrixLayoutCreate(&o->b, dt, g->m, g->k, g->lda);
    }
    if (!st) st = cublasLtMatrixLayoutCreate(&o->c, dt, g->n, g->m, g->ldc);
    if (st) return mt_fail(MTMI_ERR_DEVICE, "cuBLASLt: matrix layout (%d): m %lld n %lld k %lld lda %lld ldb %lld ldc %lld", (int)st,
                           (long long)g->m, (long long)g->n, (long long)g->k, (long long)g->lda, (long long)g->ldb, (long long)g->ldc);
    if (g->batch > 1) {
        int32_t bc = (int32_t)g->batch;
        cublasLtMatrixLayoutSetAttribute(o->a, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc);
        cublasLtMatrixLayoutSetAttribute(o->b, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc);
        cublasLtMatrixLayoutSetAttribute(o->c, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc);
        cublasLtMatrixLayoutSetAttribute(o->a, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &g->sb, sizeof g->sb);
        cublasLtMatrixLayoutSetAttribute(o->b, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &g->sa, sizeof g->sa);
        cublasLtMatrixLayoutSetAttribute(o->c, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &g->sc, sizeof g->sc);
    }
    /* a saved plan's decision (backend/choices.h): what the search below
     * depends on, and what it chose */
    int64_t sig[20] = {p->f16, g->m, g->n, g->k, g->a_rowmajor, g->b_rowmajor, g->lda, g->ldb, g->ldc, g->batch, g->sa,
                       g->sb, g->sc, g->act, g->has_bias, g->beta != 0.f, align_of(mc_ptr(p, &s->t[2])),
                       align_of(mc_ptr(p, &s->t[1])), align_of(mc_ptr(p, &s->t[0])), (int64_t)p->ws_bytes};
    if (gemm_saved(p, o, sig, sizeof sig)) return MTMI_OK;
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulPreferenceCreate(&pref);
    size_t ws = p->ws_bytes;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    uint32_t al;
    al = align_of(mc_ptr(p, &s->t[2]));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al);
    al = align_of(mc_ptr(p, &s->t[1]));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, sizeof al);
    al = align_of(mc_ptr(p, &s->t[0]));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al);
    cublasLtMatmulHeuristicResult_t res[8];
    int nres = 0;
    st = cublasLtMatmulAlgoGetHeuristic((cublasLtHandle_t)p->lt, o->op, o->a, o->b, o->c, o->c, pref, 8, res, &nres);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st || nres == 0)
        return mt_fail(MTMI_ERR_DEVICE, "cuBLASLt: no algorithm for m %lld n %lld k %lld (status %d)", (long long)g->m,
                       (long long)g->n, (long long)g->k, (int)st);
    /* time the candidates once on the real buffers, keep the fastest */
    int best = 0;
    if (nres > 1) {
        p->nsearch_lt++;
        cudaEvent_t e0, e1;
        cudaEventCreate(&e0);
        cudaEventCreate(&e1);
        float bt = 1e30f;
        float alpha = g->alpha, beta = g->beta;
        void *cin = g->beta != 0.f ? mc_ptr(p, &s->t[4]) : mc_ptr(p, &s->t[0]);
        for (int r = 0; r < nres; r++) {
            float tot = 0;
            int okr = 1;
            for (int rep = 0; rep < 3 && okr; rep++) {
                cudaEventRecord(e0, p->stream);
                if (cublasLtMatmul((cublasLtHandle_t)p->lt, o->op, &alpha, mc_ptr(p, &s->t[2]), o->a, mc_ptr(p, &s->t[1]), o->b, &beta,
                                   cin, o->c, mc_ptr(p, &s->t[0]), o->c, &res[r].algo, p->ws, p->ws_bytes, p->stream))
                    okr = 0;
                cudaEventRecord(e1, p->stream);
                cudaEventSynchronize(e1);
                float ms = 0;
                cudaEventElapsedTime(&ms, e0, e1);
                if (rep) tot += ms;
            }
            if (okr && tot < bt) {
                bt = tot;
                best = r;
            }
        }
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
        cudaGetLastError();
    }
    o->algo = res[best].algo;
    if (res[best].workspaceSize > p->ws_needed) p->ws_needed = res[best].workspaceSize;
    if (p->choices) {
        lt_choice chosen;
        memset(&chosen, 0, sizeof chosen);
        chosen.algo = o->algo;
        chosen.ws = res[best].workspaceSize;
        return mt_choices_put(p->choices, MC_CHOICE_GEMM, sig, sizeof sig, &chosen, sizeof chosen);
    }
    return MTMI_OK;
}

/* ------------------------------------------------------------ cuDNN */
#ifdef MTMI_HAVE_CUDNN
typedef struct dnn_obj {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t c;
    cudnnConvolutionFwdAlgo_t algo;
    size_t ws;
    int fused; /* bias + ReLU in cudnnConvolutionBiasActivationForward */
    cudnnTensorDescriptor_t b;
    cudnnActivationDescriptor_t act;
} dnn_obj;

/* A saved plan's convolution (backend/choices.h): the algorithm and
 * descriptor type recorded for this signature, if there is one and cuDNN
 * takes it (asked for its workspace), instead of the search.  1 = used. */
typedef struct dnn_choice {
    int32_t algo, half_desc; /* half_desc: the FP16-accumulation descriptor won */
    uint64_t ws;
} dnn_choice;

static cudnnConvolutionDescriptor_t half_desc(const mc_conv *cv) {
    cudnnConvolutionDescriptor_t cd;
    if (cudnnCreateConvolutionDescriptor(&cd)) return NULL;
    cudnnSetConvolution2dDescriptor(cd, cv->ph, cv->pw, cv->sh, cv->sw, cv->dh, cv->dw, CUDNN_CROSS_CORRELATION, CUDNN_DATA_HALF);
    cudnnSetConvolutionGroupCount(cd, cv->groups);
    cudnnSetConvolutionMathType(cd, CUDNN_TENSOR_OP_MATH);
    return cd;
}

static int cudnn_saved(mc_plan *p, dnn_obj *o, const mc_conv *cv, const int64_t *sig, size_t siglen) {
    dnn_choice chosen;
    if (!p->choices || !mt_choices_find(p->choices, MC_CHOICE_CUDNN, sig, siglen, &chosen, sizeof chosen)) return 0;
    cudnnConvolutionDescriptor_t cd = chosen.half_desc ? half_desc(cv) : o->c;
    size_t ws = 0;
    if (!cd || cudnnGetConvolutionForwardWorkspaceSize((cudnnHandle_t)p->cudnn, o->x, o->w, cd, o->y,
                                                       (cudnnConvolutionFwdAlgo_t)chosen.algo, &ws) ||
        ws > p->ws_bytes) {
        if (cd && cd != o->c) cudnnDestroyConvolutionDescriptor(cd);
        p->choices->found--; /* not usable after all: searched below */
        return 0;
    }
    if (cd != o->c) {
        cudnnDestroyConvolutionDescriptor(o->c);
        o->c = cd;
    }
    o->algo = (cudnnConvolutionFwdAlgo_t)chosen.algo;
    o->ws = ws;
    if (o->ws > p->ws_needed) p->ws_needed = o->ws;
    return 1;
}

static mtmi_status cudnn_finalize(mc_plan *p, mc_step *s) {
    const mc_conv *cv = &s->conv;
    dnn_obj *o = calloc(1, sizeof *o);
    if (!o) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    s->obj = o;
    cudnnHandle_t h = (cudnnHandle_t)p->cudnn;
    cudnnDataType_t dt = p->f16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    cudnnCreateTensorDescriptor(&o->x);
    cudnnCreateTensorDescriptor(&o->y);
    cudnnCreateFilterDescriptor(&o->w);
    cudnnCreateConvolutionDescriptor(&o->c);
    cudnnStatus_t st = cudnnSetTensor4dDescriptor(o->x, CUDNN_TENSOR_NHWC, dt, cv->N, cv->C, cv->H, cv->W);
    if (!st) st = cudnnSetTensor4dDescriptorEx(o->y, dt, cv->N, cv->CO, cv->OH, cv->OW, (int)cv->ys0, 1, (int)(cv->ldy * cv->OW), (int)cv->ldy);
    if (!st) st = cudnnSetFilter4dDescriptor(o->w, dt, CUDNN_TENSOR_NHWC, cv->CO, cv->C / cv->groups, cv->KH, cv->KW);
    if (!st) st = cudnnSetConvolution2dDescriptor(o->c, cv->ph, cv->pw, cv->sh, cv->sw, cv->dh, cv->dw, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
    if (!st) st = cudnnSetConvolutionGroupCount(o->c, cv->groups);
    /* FP32 plans compute in FP32: cuDNN's default math lets Hopper round
     * the operands to TF32 (measured: depth 8e-4 off the CPU's FP32 with
     * the spread weights, 2026-12-06), which is not what precision fp32
     * promises. */
    if (!st) st = cudnnSetConvolutionMathType(o->c, p->f16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH);
    if (st) return mt_fail(MTMI_ERR_DEVICE, "cuDNN: descriptors: %s", cudnnGetErrorString(st));
    /* a saved plan's decision (backend/choices.h) */
    int64_t sig[22] = {p->f16, cv->N,  cv->C,  cv->H,      cv->W,        cv->CO,  cv->OH,  cv->OW,
                       cv->KH, cv->KW, cv->sh, cv->sw,     cv->ph,       cv->pw,  cv->dh,  cv->dw,
                       cv->groups, cv->act, cv->has_bias, cv->ldy, cv->ys0, (int64_t)p->ws_bytes};
    dnn_choice chosen;
    memset(&chosen, 0, sizeof chosen);
    int found = 0, saved = cudnn_saved(p, o, cv, sig, sizeof sig);
    if (saved) {
        found = 1;
    } else {
        /* FP16: try FP32 and FP16 accumulation descriptors' engines, keep the
         * fastest measured (both accumulate in FP32 on tensor cores on Hopper
         * for the FP32 descriptor; the HALF one may pick other kernels) */
        float best_t = 1e30f;
        for (int ct = 0; ct < (p->f16 ? 2 : 1); ct++) {
            cudnnConvolutionDescriptor_t cd = o->c;
            if (ct == 1 && !(cd = half_desc(cv))) continue;
            cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
            int n = 0;
            p->nsearch_dnn++;
            st = cudnnFindConvolutionForwardAlgorithmEx(h, o->x, mc_ptr(p, &s->t[1]), o->w, mc_ptr(p, &s->t[2]), cd, o->y,
                                                        mc_ptr(p, &s->t[0]), CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf, p->ws, p->ws_bytes);
            for (int i = 0; !st && i < n; i++)
                if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= p->ws_bytes) {
                    if (perf[i].time < best_t) {
                        best_t = perf[i].time;
                        chosen.half_desc = ct;
                        o->algo = perf[i].algo;
                        o->ws = perf[i].memory;
                        if (o->ws > p->ws_needed) p->ws_needed = o->ws;
                        if (cd != o->c) {
                            cudnnDestroyConvolutionDescriptor(o->c);
                            o->c = cd;
                            cd = NULL;
                        }
                        found = 1;
                    }
                    break;
                }
            if (cd && cd != o->c) cudnnDestroyConvolutionDescriptor(cd);
        }
        chosen.algo = (int32_t)o->algo;
        chosen.ws = o->ws;
    }
    if (!found) return mt_fail(MTMI_ERR_DEVICE, "cuDNN: no convolution algorithm fits the workspace");
    if (p->choices && !saved) {
        mtmi_status rs = mt_choices_put(p->choices, MC_CHOICE_CUDNN, sig, sizeof sig, &chosen, sizeof chosen);
        if (rs) return rs;
    }
    if (cv->has_bias && cv->act == 1) {
        cudnnCreateTensorDescriptor(&o->b);
        cudnnCreateActivationDescriptor(&o->act);
        cudnnSetTensor4dDescriptor(o->b, CUDNN_TENSOR_NHWC, dt, 1, cv->CO, 1, 1);
        cudnnSetActivationDescriptor(o->act, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0);
        float one = 1.f, zero = 0.f;
        cudnnStatus_t e = cudnnConvolutionBiasActivationForward(h, &one, o->x, mc_ptr(p, &s->t[1]), o->w, mc_ptr(p, &s->t[2]), o->c,
                                                                o->algo, p->ws, o->ws, &zero, o->y, mc_ptr(p, &s->t[0]), o->b,
                                                                mc_ptr(p, &s->t[3]), o->act, o->y, mc_ptr(p, &s->t[0]));
        o->fused = e == CUDNN_STATUS_SUCCESS && cudaStreamSynchronize(p->stream) == cudaSuccess;
        cudaGetLastError();
    }
    return MTMI_OK;
}
#endif

/* An elementwise step's operands as kernel views (dims collapsed) and input
 * addresses; kv[0] is the output's view. */
static mtmi_status ew_operands(const mc_plan *p, const mc_step *s, mtk_view *kv, const void **ptrs) {
    const mc_tref *v[1 + MTK_MAX_IN];
    for (int k = 0; k < s->nt; k++) v[k] = &s->t[k];
    if (mc_collapse(s->nt, v, kv)) return mt_fail(MTMI_ERR_UNSUPPORTED, "elementwise of rank > %d after collapsing", MTK_RANK);
    for (int k = 1; k < s->nt; k++) ptrs[k - 1] = mc_ptr(p, &s->t[k]);
    return MTMI_OK;
}

static mtmi_status ew_finalize(mc_plan *p, mc_step *s) {
    mtk_view kv[1 + MTK_MAX_IN];
    const void *ptrs[MTK_MAX_IN];
    mtmi_status ms = ew_operands(p, s, kv, ptrs);
    if (ms) return ms;
    cudaError_t e = mtk_elementwise_prepare(&s->prog, mc_ptr(p, &s->t[0]), &kv[0], s->nt - 1, ptrs, kv + 1, &s->obj);
    if (e != cudaSuccess) return mt_fail(MTMI_ERR_DEVICE, "CUDA elementwise arguments: %s", cudaGetErrorString(e));
    s->u.ew.n = mc_numel(&s->t[0]);
    return MTMI_OK;
}

mtmi_status mc_finalize_step(mc_plan *p, mc_step *s) {
    if (s->kind == MC_GEMM) return gemm_finalize(p, s);
    if (s->kind == MC_EW) return ew_finalize(p, s);
#ifdef MTMI_HAVE_CUDNN
    if (s->kind == MC_CUDNN) {
        mtmi_status st = cudnn_finalize(p, s);
        if (st) {
            /* fall back to the direct kernel (same weight packing) */
            mc_release_step(p, s);
            mt_clear_error();
            s->kind = MC_CONVD;
        }
    }
#endif
    return MTMI_OK;
}

void mc_release_step(mc_plan *p, mc_step *s) {
    if (!s->obj) return;
    if (s->kind == MC_EW) {
        cudaFree(s->obj);
        s->obj = NULL;
        return;
    }
    if (s->kind == MC_GEMM) {
        lt_obj *o = s->obj;
        if (o->op) cublasLtMatmulDescDestroy(o->op);
        if (o->a) cublasLtMatrixLayoutDestroy(o->a);
        if (o->b) cublasLtMatrixLayoutDestroy(o->b);
        if (o->c) cublasLtMatrixLayoutDestroy(o->c);
    }
#ifdef MTMI_HAVE_CUDNN
    else if (s->kind == MC_CUDNN || s->kind == MC_CONVD) {
        dnn_obj *o = s->obj;
        if (o->x) cudnnDestroyTensorDescriptor(o->x);
        if (o->y) cudnnDestroyTensorDescriptor(o->y);
        if (o->w) cudnnDestroyFilterDescriptor(o->w);
        if (o->c) cudnnDestroyConvolutionDescriptor(o->c);
        if (o->b) cudnnDestroyTensorDescriptor(o->b);
        if (o->act) cudnnDestroyActivationDescriptor(o->act);
    }
#endif
    free(s->obj);
    s->obj = NULL;
}

/* --------------------------------------------------------------- run */
/* A failed launch names its step kind (MC_CUDA_CHECK, cuda_internal.h). */
#define KCK(call) MC_CUDA_CHECK(call, "%s step", mc_step_name(s->kind))

/* The sources of a concat that a fused step reads in place (t[at ..],
 * ns of them): pointers, element strides and channel counts, as
 * concat.cuh's cat_src_fill takes them. */
static void cat_sources(const mc_plan *p, const mc_step *s, int at, int ns, const void **xp, int64_t (*xs)[4], int *cs) {
    for (int k = 0; k < ns; k++) {
        const mc_tref *x = &s->t[at + k];
        xp[k] = mc_ptr(p, x);
        memcpy(xs[k], x->strides, sizeof xs[k]);
        cs[k] = (int)x->dims[1];
    }
}

mtmi_status mc_run_step(mc_plan *p, mc_step *s) {
    cudaStream_t st = p->stream;
    int f16 = p->f16;
    /* tuning.pdl: mtk_launch reads it on this thread (launch.cuh) */
    mtk_set_pdl(p->tuning.pdl);
    mtk_set_sm_limit(p->sms);
    switch (s->kind) {
    case MC_COPY: {
        const mc_tref *v[2] = {&s->t[0], &s->t[1]};
        mtk_view kv[2];
        if (mc_collapse(2, v, kv)) return mt_fail(MTMI_ERR_UNSUPPORTED, "copy of rank > %d after collapsing", MTK_RANK);
        KCK(mtk_copy(st, mc_ptr(p, &s->t[0]), &kv[0], mc_copy_kind(s->t[0].st), mc_ptr(p, &s->t[1]), &kv[1], mc_copy_kind(s->t[1].st)));
        return MTMI_OK;
    }
    case MC_EW: {
        if (s->obj) {
            KCK(mtk_elementwise_run(st, s->obj, s->u.ew.n, f16));
            return MTMI_OK;
        }
        mtk_view kv[1 + MTK_MAX_IN];
        const void *ptrs[MTK_MAX_IN];
        mtmi_status ms = ew_operands(p, s, kv, ptrs);
        if (ms) return ms;
        KCK(mtk_elementwise(st, &s->prog, mc_ptr(p, &s->t[0]), &kv[0], s->nt - 1, ptrs, kv + 1, f16));
        return MTMI_OK;
    }
    case MC_LN:
        if (s->u.ln.proj) { /* x + (a W + bias), the projection computed here (fuse_lnproj.c) */
            KCK(mtk_layernorm_proj(st, mc_ptr(p, &s->t[1]), s->u.ln.keep_sum ? mc_ptr(p, &s->t[5]) : NULL, mc_ptr(p, &s->t[0]),
                                   mc_ptr(p, &s->t[2]), s->u.ln.has_beta ? mc_ptr(p, &s->t[3]) : NULL, s->u.ln.rows, (int)s->u.ln.C, s->u.ln.eps,
                                   mc_ptr(p, &s->t[10]), (int)s->u.ln.proj_ld, mc_ptr(p, &s->t[11]), mc_ptr(p, &s->t[4]), (int)s->u.ln.proj_k));
            return MTMI_OK;
        }
        if (s->u.ln.pair) {
            /* two LayerNorms in one pass (fuse_ln2.c), the im2col matrix of
             * the second one's output when u.ln.im2col */
            const mtk_ln_im2col ic = ln_im2col_of(p, s);
            mtk_ln_second sec = {mc_ptr(p, &s->t[7]), mc_ptr(p, &s->t[8]), s->u.ln.pair_beta ? mc_ptr(p, &s->t[9]) : NULL, s->u.ln.pair_eps};
            KCK(mtk_layernorm_pair(st, mc_ptr(p, &s->t[1]), s->u.ln.has_res ? mc_ptr(p, &s->t[4]) : NULL,
                                   s->u.ln.keep_sum ? mc_ptr(p, &s->t[5]) : NULL, mc_ptr(p, &s->t[0]), mc_ptr(p, &s->t[2]),
                                   s->u.ln.has_beta ? mc_ptr(p, &s->t[3]) : NULL, s->u.ln.rows, (int)s->u.ln.C, s->u.ln.eps, f16, &sec,
                                   s->u.ln.im2col ? &ic : NULL));
            return MTMI_OK;
        }
        if (s->u.ln.q8) {
            /* also writes the int8 copy t[12] of the output for the QConvs
             * reading it (fuse_qln.c), and the im2col matrix t[6] when
             * u.ln.im2col */
            const mtk_ln_im2col ic = ln_im2col_of(p, s);
            KCK(mtk_layernorm_q8(st, mc_ptr(p, &s->t[1]), s->u.ln.has_res ? mc_ptr(p, &s->t[4]) : NULL,
                                 s->u.ln.keep_sum ? mc_ptr(p, &s->t[5]) : NULL, mc_ptr(p, &s->t[0]), mc_ptr(p, &s->t[2]),
                                 s->u.ln.has_beta ? mc_ptr(p, &s->t[3]) : NULL, s->u.ln.rows, (int)s->u.ln.C, s->u.ln.eps, f16,
                                 s->u.ln.im2col ? &ic : NULL, mc_ptr(p, &s->t[12]), s->u.ln.q8_scale));
            return MTMI_OK;
        }
        if (s->u.ln.im2col) {
            /* also writes the im2col matrix t[6] of the conv s->conv over
             * the output (fuse_im2col.c) */
            const mtk_ln_im2col ic = ln_im2col_of(p, s);
            KCK(mtk_layernorm_im2col(st, mc_ptr(p, &s->t[1]), s->u.ln.has_res ? mc_ptr(p, &s->t[4]) : NULL,
                                     s->u.ln.keep_sum ? mc_ptr(p, &s->t[5]) : NULL, mc_ptr(p, &s->t[0]), mc_ptr(p, &s->t[2]),
                                     s->u.ln.has_beta ? mc_ptr(p, &s->t[3]) : NULL, s->u.ln.rows, (int)s->u.ln.C, s->u.ln.eps, f16, &ic));
            return MTMI_OK;
        }
        KCK(mtk_layernorm(st, mc_ptr(p, &s->t[1]), s->u.ln.has_res ? mc_ptr(p, &s->t[4]) : NULL, s->u.ln.keep_sum ? mc_ptr(p, &s->t[5]) : NULL,
                          mc_ptr(p, &s->t[0]), mc_ptr(p, &s->t[2]),
                          s->u.ln.has_beta ? mc_ptr(p, &s->t[3]) : NULL, s->u.ln.rows, (int)s->u.ln.C, s->u.ln.eps, f16));
        return MTMI_OK;
    case MC_SOFTMAX:
        KCK(mtk_softmax(st, mc_ptr(p, &s->t[1]), mc_ptr(p, &s->t[0]), s->u.softmax.rows, (int)s->u.softmax.n, f16));
        return MTMI_OK;
    case MC_RESIZE: {
        const mc_tref *x = &s->t[1], *y = &s->t[0];
        if (s->u.resize.qscale > 0.0f) { /* int8 for the next QConv (fuse_qresize.c) */
            KCK(mtk_resize_q8(st, mc_ptr(p, x), x->strides, mc_ptr(p, y), y->strides, (int)y->dims[0], (int)y->dims[1], (int)x->dims[2],
                              (int)x->dims[3], (int)y->dims[2], (int)y->dims[3], s->u.resize.sh, s->u.resize.sw, (int)s->u.resize.coord,
                              s->u.resize.qscale));
            return MTMI_OK;
        }
        KCK(mtk_resize(st, mc_ptr(p, x), x->strides, mc_ptr(p, y), y->strides, (int)y->dims[0], (int)y->dims[1],
                       (int)x->dims[2], (int)x->dims[3], (int)y->dims[2], (int)y->dims[3], s->u.resize.sh, s->u.resize.sw, (int)s->u.resize.mode,
                       (int)s->u.resize.coord, (int)s->u.resize.nearest, y->strides[1] == 1 && y->dims[1] > 1, f16, y->st == MTMI_FLOAT16));
        return MTMI_OK;
    }
    case MC_DW: {
        const mc_conv *c = &s->conv;
        KCK(mtk_dwconv(st, mc_ptr(p, &s->t[1]), mc_ptr(p, &s->t[0]), mc_ptr(p, &s->t[2]), c->has_bias ? mc_ptr(p, &s->t[3]) : NULL,
                       c->N, c->H, c->W, c->C, c->OH, c->OW, c->KH, c->KW, c->sh, c->sw, c->ph, c->pw, c->dh, c->dw, c->act, f16));
        return MTMI_OK;
    }
    case MC_MLP: {
        const mc_conv *c = &s->conv;
        mtk_mlp m = {.x = mc_ptr(p, &s->t[1]), .w1 = mc_ptr(p, &s->t[2]), .b1 = mc_ptr(p, &s->t[3]), .wdw = mc_ptr(p, &s->t[4]),
                     .bdw = mc_ptr(p, &s->t[5]), .w2 = mc_ptr(p, &s->t[6]), .b2 = mc_ptr(p, &s->t[7]), .y = mc_ptr(p, &s->t[0]),
                     .N = c->N, .H = c->H, .W = c->W, .C = (int)s->u.mlp.C, .Ch = (int)s->u.mlp.Ch, .act = c->act, .ldy = (int)s->u.mlp.ldy};
        if (s->u.mlp.ln) { /* the residual LayerNorm in the prologue (fuse_mlp.c: mc_fuse_mlp_ln) */
            m.ln = 1;
            m.x = mc_ptr(p, &s->t[8]);
            m.res = mc_ptr(p, &s->t[9]);
            m.gamma = mc_ptr(p, &s->t[10]);
            m.beta = s->u.mlp.ln_beta ? mc_ptr(p, &s->t[11]) : NULL;
            m.sum = mc_ptr(p, &s->t[1]);
            m.eps = s->u.mlp.eps;
        }
        KCK(mtk_mlp_dw(st, &m));
        return MTMI_OK;
    }
    case MC_IM2COL: {
        const mc_conv *c = &s->conv;
        KCK(mtk_im2col_view(st, mc_ptr(p, &s->t[1]), s->t[1].strides, s->t[1].st == MTMI_FLOAT16, mc_ptr(p, &s->t[0]),
                            s->t[0].st == MTMI_FLOAT16, c->N, c->H, c->W, c->C, c->OH, c->OW, c->KH, c->KW, c->sh, c->sw,
                            c->ph, c->pw, c->dh, c->dw, (int)s->t[0].dims[1]));
        return MTMI_OK;
    }
    case MC_CONV_SMALLK: { /* im2col + GEMM in one kernel (fuse_stem.c): t[0] y, t[1] x, t[2] w, t[3] bias */
        const mc_conv *c = &s->conv;
        const mc_tref *x = &s->t[1];
        mtk_smallk a = {.x = mc_ptr(p, x), .xf16 = x->st == MTMI_FLOAT16, .w = mc_ptr(p, &s->t[2]), .ldw = (int)s->u.smallk.ldw,
                        .bias = c->has_bias ? mc_ptr(p, &s->t[3]) : NULL, .y = mc_ptr(p, &s->t[0]), .ldy = s->u.smallk.ldy,
                        .N = c->N, .C = c->C, .H = c->H, .W = c->W, .CO = c->CO, .OH = c->OH, .OW = c->OW, .KH = c->KH,
                        .KW = c->KW, .sh = c->sh, .sw = c->sw, .ph = c->ph, .pw = c->pw, .act = c->act};
        memcpy(a.xs, x->strides, sizeof a.xs);
        KCK(mtk_conv_smallk(st, &a));
        return MTMI_OK;
    }
    case MC_RESIZE_CAT: {
        const mc_tref *y = &s->t[0];
        int ns = s->nt - 1;
        const void *ptrs[4];
        int64_t xs[4][4];
        int cb[4];
        for (int k = 0; k < ns; k++) {
            ptrs[k] = mc_ptr(p, &s->t[1 + k]);
            memcpy(xs[k], s->t[1 + k].strides, sizeof xs[k]);
            cb[k] = (int)s->u.resize.at[k];
        }
        if (s->u.resize.qscale > 0.0f) /* int8 for the next QConv (fuse_qresize.c) */
            KCK(mtk_resize_cat_q8(st, ns, ptrs, (const int64_t(*)[4])xs, cb, mc_ptr(p, y), y->strides, (int)y->dims[0], (int)y->dims[1],
                                  (int)s->t[1].dims[2], (int)s->t[1].dims[3], (int)y->dims[2], (int)y->dims[3], s->u.resize.sh,
                                  s->u.resize.sw, (int)s->u.resize.coord, s->u.resize.qscale));
        else
            KCK(mtk_resize_cat(st, ns, ptrs, (const int64_t(*)[4])xs, cb, mc_ptr(p, y), y->strides, (int)y->dims[0], (int)y->dims[1],
                               (int)s->t[1].dims[2], (int)s->t[1].dims[3], (int)y->dims[2], (int)y->dims[3], s->u.resize.sh,
                               s->u.resize.sw, (int)s->u.resize.coord));
        return MTMI_OK;
    }
    case MC_SMALLN:
        KCK(mtk_gemm_smalln(st, mc_ptr(p, &s->t[1]), (int)s->t[1].strides[0], mc_ptr(p, &s->t[2]),
                            s->u.smalln.has_bias ? mc_ptr(p, &s->t[3]) : NULL, mc_ptr(p, &s->t[0]), (int)s->t[0].strides[0],
                            (int)s->t[0].dims[0], (int)s->t[0].dims[1], (int)s->t[1].dims[1], (int)s->u.smalln.act, f16));
        return MTMI_OK;
    case MC_CONVD: {
        const mc_conv *c = &s->conv;
        KCK(mtk_conv_direct_ld(st, mc_ptr(p, &s->t[1]), mc_ptr(p, &s->t[0]), mc_ptr(p, &s->t[2]),
                               c->has_bias ? mc_ptr(p, &s->t[3]) : NULL, c->N, c->H, c->W, c->C, c->OH, c->OW, c->CO, c->KH,
                               c->KW, c->sh, c->sw, c->ph, c->pw, c->dh, c->dw, c->groups, c->act, f16, (int)c->ldy));
        return MTMI_OK;
    }
#ifdef MTMI_HAVE_CUDNN
    case MC_CUDNN: {
        const mc_conv *c = &s->conv;
        dnn_obj *o = s->obj;
        float one = 1.f, zero = 0.f;
        if (o->fused) {
            cudnnStatus_t e = cudnnConvolutionBiasActivationForward((cudnnHandle_t)p->cudnn, &one, o->x, mc_ptr(p, &s->t[1]), o->w,
                                                                    mc_ptr(p, &s->t[2]), o->c, o->algo, p->ws, o->ws, &zero, o->y,
                                                                    mc_ptr(p, &s->t[0]), o->b, mc_ptr(p, &s->t[3]), o->act, o->y,
                                                                    mc_ptr(p, &s->t[0]));
            if (e) return mt_fail(MTMI_ERR_DEVICE, "cuDNN convolution: %s", cudnnGetErrorString(e));
            return MTMI_OK;
        }
        cudnnStatus_t e = cudnnConvolutionForward((cudnnHandle_t)p->cudnn, &one, o->x, mc_ptr(p, &s->t[1]), o->w, mc_ptr(p, &s->t[2]),
                                                  o->c, o->algo, p->ws, o->ws, &zero, o->y, mc_ptr(p, &s->t[0]));
        if (e) return mt_fail(MTMI_ERR_DEVICE, "cuDNN convolution: %s", cudnnGetErrorString(e));
        if (c->has_bias || c->act)
            KCK(mtk_bias_act_ld(st, mc_ptr(p, &s->t[0]), c->has_bias ? mc_ptr(p, &s->t[3]) : NULL,
                                (int64_t)c->N * c->OH * c->OW, c->CO, c->act, f16, (int)c->ldy));
        return MTMI_OK;
    }
#endif
    case MC_GEMM: {
        lt_obj *o = s->obj;
        mc_gemm *g = &s->gemm;
        float alpha = g->alpha, beta = g->beta;
        void *cin = g->beta != 0.f ? mc_ptr(p, &s->t[4]) : mc_ptr(p, &s->t[0]);
        cublasStatus_t e = cublasLtMatmul((cublasLtHandle_t)p->lt, o->op, &alpha, mc_ptr(p, &s->t[2]), o->a, mc_ptr(p, &s->t[1]), o->b,
                                          &beta, cin, o->c, mc_ptr(p, &s->t[0]), o->c, &o->algo, p->ws, p->ws_bytes, st);
        if (e) return mt_fail(MTMI_ERR_DEVICE, "cuBLASLt matmul failed (status %d)", (int)e);
        if (g->act >= 2) KCK(mtk_bias_act(st, mc_ptr(p, &s->t[0]), NULL, g->m * g->batch, (int)g->n, g->act, f16));
        return MTMI_OK;
    }
    case MC_GATHER:
        KCK(mtk_gather(st, mc_ptr(p, &s->t[1]), mc_ptr(p, &s->t[0]), mc_ptr(p, &s->t[2]), s->u.gather.pre, s->u.gather.n, s->u.gather.nidx, s->u.gather.post,
                       (int)mc_esize(s->t[1].st)));
        return MTMI_OK;
    case MC_ATTN: {
        mtk_attn a;
        memset(&a, 0, sizeof a);
        a.q = mc_ptr(p, &s->t[1]);
        a.k = mc_ptr(p, &s->t[2]);
        a.v = mc_ptr(p, &s->t[3]);
        a.o = mc_ptr(p, &s->t[0]);
        a.B = (int)s->u.attn.B;
        a.H = (int)s->u.attn.H;
        a.N = (int)s->u.attn.N;
        a.M = (int)s->u.attn.M;
        a.D = (int)s->u.attn.D;
        for (int k = 0; k < 3; k++) {
            a.qs[k] = s->t[1].strides[k];
            a.ks[k] = s->t[2].strides[k];
            a.vs[k] = s->t[3].strides[k];
            a.os[k] = s->t[0].strides[k];
        }
        /* broadcast batch/head dims of K, V */
        if (s->t[2].dims[0] == 1) a.ks[0] = 0;
        if (s->t[2].dims[1] == 1) a.ks[1] = 0;
        if (s->t[3].dims[0] == 1) a.vs[0] = 0;
        if (s->t[3].dims[1] == 1) a.vs[1] = 0;
        a.scale = s->u.attn.scale;
        if (p->tuning.attn_cfg_set) a.force = 1, a.force_kernel = p->tuning.attn_kernel, a.force_ksplit = p->tuning.attn_ksplit;
        KCK(mtk_attention(st, &a, f16));
        return MTMI_OK;
    }
    case MC_PREP: { /* mtmi.Preprocess: uint8 [N,H,W,3] -> normalized [N,3,H,W], one image at a time */
        const float *ms = s->obj;
        const mc_tref *x = &s->t[1], *y = &s->t[0];
        const int H = (int)x->dims[1], W = (int)x->dims[2];
        for (int64_t b = 0; b < x->dims[0]; b++)
            KCK(mtk_preprocess(st, (const uint8_t *)mc_ptr(p, x) + b * x->strides[0], H, W,
                               (char *)mc_ptr(p, y) + b * y->strides[0] * (int64_t)mc_esize(y->st), y->strides, ms, ms + 3,
                               y->st == MTMI_FLOAT16));
        return MTMI_OK;
    }
    case MC_QCONV: { /* INT8 QConv / QLinear: quantize the input, then the tensor-core GEMM (qconv.cu) */
        const mtk_qconv *q = s->obj;
        const mc_tref *x = &s->t[1];
        mtk_qconv qu;
        if (q->ups_n) { /* fuse_qupsum.c: t[6 ..] the upsampled levels, read in the epilogue */
            qu = *q;
            for (int l = 0; l < q->ups_n; l++) qu.ups[l].p = mc_ptr(p, &s->t[6 + l]);
            q = &qu;
        } else if (s->nt > 6) { /* fuse_qupconv.c: t[6 ..] the sources of the upsample it makes of its input */
            const int ns = s->nt - 6;
            const void *xp[MC_MAX_T];
            int64_t xs[MC_MAX_T][4];
            int cb[MC_MAX_T];
            for (int k = 0; k < ns; k++) {
                xp[k] = mc_ptr(p, &s->t[6 + k]);
                memcpy(xs[k], s->t[6 + k].strides, sizeof xs[k]);
                cb[k] = (int)s->u.resize.at[k];
            }
            KCK(mtk_qconv_upconv(st, q, ns, xp, (const int64_t(*)[4])xs, cb, (int)s->t[6].dims[2], (int)s->t[6].dims[3],
                                 s->u.resize.sh, s->u.resize.sw, (int)s->u.resize.coord, mc_ptr(p, &s->t[3]),
                                 mc_ptr(p, &s->t[4]), mc_ptr(p, &s->t[5]), mc_ptr(p, &s->t[0]), s->t[0].st == MTMI_FLOAT16,
                                 NULL, p->tuning.qconv_simple ? 0 : -1));
            return MTMI_OK;
        }
        KCK(mtk_qconv_run(st, q, mc_ptr(p, x), x->strides, x->st == MTMI_FLOAT16, mc_ptr(p, &s->t[2]), mc_ptr(p, &s->t[3]),
                          mc_ptr(p, &s->t[4]), mc_ptr(p, &s->t[5]), mc_ptr(p, &s->t[0]), s->t[0].st == MTMI_FLOAT16, NULL,
                          p->tuning.qconv_simple ? 0 : (p->tuning.qconv_wgmma > 0 ? MTK_QCONV_AUTO_WG : -1),
                          p->tuning.qconv_fuse && !p->tuning.qconv_simple));
        return MTMI_OK;
    }
    case MC_CHAIN: { /* fuse_chain.c: t[0] y, t[1] x, t[2..3] w1 b1, t[4] r, t[5..6] w2 b2, t[7..8] w3 b3 */
        mtk_chain c = {.x = mc_ptr(p, &s->t[1]), .r = mc_ptr(p, &s->t[4]), .w1 = mc_ptr(p, &s->t[2]), .w2 = mc_ptr(p, &s->t[5]),
                       .w3 = mc_ptr(p, &s->t[7]), .b1 = mc_ptr(p, &s->t[3]), .b2 = mc_ptr(p, &s->t[6]), .b3 = mc_ptr(p, &s->t[8]),
                       .y = mc_ptr(p, &s->t[0]), .m = s->u.chain.m, .k1 = (int)s->u.chain.k1, .n3 = (int)s->u.chain.n3, .ldx = (int)s->u.chain.ldx,
                       .ldr = (int)s->u.chain.ldr, .ldy = (int)s->u.chain.ldy, .ldw1 = (int)s->u.chain.ldw1, .ldw2 = (int)s->u.chain.ldw2,
                       .ldw3 = (int)s->u.chain.ldw3, .wt1 = (int)(s->u.chain.wt & 1), .wt2 = (int)(s->u.chain.wt >> 1 & 1),
                       .wt3 = (int)(s->u.chain.wt >> 2 & 1), .act1 = (int)(s->u.chain.act & 3), .act2 = (int)(s->u.chain.act >> 2 & 3),
                       .act3 = (int)(s->u.chain.act >> 4 & 3)};
        KCK(mtk_chain3(st, &c));
        return MTMI_OK;
    }
    case MC_RESIZE_SUM: { /* t[0] = sum over t[1..] of their bilinear resizes (fuse_catgemm.c) */
        const mc_tref *y = &s->t[0];
        const int ns = s->nt - 1;
        const void *xp[4];
        int64_t xs[4][4];
        int ih[4], iw[4];
        for (int k = 0; k < ns && k < 4; k++) {
            xp[k] = mc_ptr(p, &s->t[1 + k]);
            memcpy(xs[k], s->t[1 + k].strides, sizeof xs[k]);
            ih[k] = (int)s->t[1 + k].dims[2];
            iw[k] = (int)s->t[1 + k].dims[3];
        }
        KCK(mtk_resize_sum(st, ns, xp, (const int64_t(*)[4])xs, ih, iw, mc_ptr(p, y), y->strides, (int)y->dims[0], (int)y->dims[1],
                           (int)y->dims[2], (int)y->dims[3], (int)s->u.resize.coord));
        return MTMI_OK;
    }
    case MC_UPCONV: { /* upsample 2x -> conv 3x3 (fuse_upconv.c: t[0] y, t[1] w, t[2] bias, t[3..] sources) */
        const mc_conv *c = &s->conv;
        const int ns = (int)s->u.upconv.nsrc;
        const void *xp[4];
        int64_t xs[4][4];
        int cs[4];
        cat_sources(p, s, 3, ns, xp, xs, cs);
        KCK(mtk_upconv3x3(st, ns, xp, (const int64_t(*)[4])xs, cs, mc_ptr(p, &s->t[1]), mc_ptr(p, &s->t[2]), mc_ptr(p, &s->t[0]),
                          s->t[0].strides, c->N, (int)s->t[3].dims[2], (int)s->t[3].dims[3], c->CO, c->act));
        return MTMI_OK;
    }
    case MC_QUPSUM: { /* mtmi.QUpsampleSum (qupsum.cu): t[0] y, t[1] Bq, t[2] ms, t[3..] the levels */
        const mc_tref *y = &s->t[0];
        mtk_qups_level lv[MTK_QUPS_MAX];
        const int L = s->nt - 3;
        for (int l = 0; l < L && l < MTK_QUPS_MAX; l++)
            if (mc_qups_level(&s->t[3 + l], mc_ptr(p, &s->t[3 + l]), (int)y->dims[2], (int)y->dims[3], &lv[l]))
                return mt_fail(MTMI_ERR_INTERNAL, "QUpsampleSum level %d: not a dense float32 NHWC tensor", l);
        KCK(mtk_qupsample_sum(st, L, lv, mc_ptr(p, &s->t[1]), mc_ptr(p, &s->t[2]), (int)s->u.qups.act, s->u.qups.y_scale,
                              mc_ptr(p, y), y->st == MTMI_FLOAT16, y->strides[3], y->strides[0], (int)y->dims[0], (int)y->dims[2],
                              (int)y->dims[3], (int)y->dims[1]));
        return MTMI_OK;
    }
    case MC_POLYPAD: /* fuse_poly.c: t[0] the padded concat, t[1..] the sources */
    case MC_POLYFIN: { /* t[0] y, t[1] the phases, t[2] w, t[3] bias, t[4..] the sources */
        const int ns = (int)s->u.upconv.nsrc, at = s->kind == MC_POLYPAD ? 1 : 4;
        const void *xp[4];
        int64_t xs[4][4];
        int cs[4];
        cat_sources(p, s, at, ns, xp, xs, cs);
        const int N = (int)s->t[at].dims[0], IH = (int)s->t[at].dims[2], IW = (int)s->t[at].dims[3];
        if (s->kind == MC_POLYPAD)
            KCK(mtk_poly_pad(st, ns, xp, (const int64_t(*)[4])xs, cs, mc_ptr(p, &s->t[0]), N, IH, IW));
        else
            KCK(mtk_poly_finish(st, mc_ptr(p, &s->t[1]), ns, xp, (const int64_t(*)[4])xs, cs, mc_ptr(p, &s->t[2]),
                                s->t[3].buf >= 0 ? mc_ptr(p, &s->t[3]) : NULL, mc_ptr(p, &s->t[0]), s->t[0].strides, N, IH, IW,
                                s->conv.CO, s->conv.act));
        return MTMI_OK;
    }
    case MC_WGCONV: { /* fuse_wgconv.c: the FP16 3x3 conv on wgmma, operands as MC_CUDNN's */
        mtk_hconv h;
        mc_wgconv_params(p, s, 1, &h);
        KCK(mtk_hconv3x3(st, &h, -1));
        return MTMI_OK;
    }
    case MC_CLASSMAP: {
        const mc_tref *x = &s->t[1];
        KCK(mtk_classmap(st, mc_ptr(p, x), x->strides, x->st == MTMI_FLOAT16, (int)x->dims[0], (int)x->dims[1], (int)x->dims[2],
                         (int)x->dims[3], mc_ptr(p, &s->t[0])));
        return MTMI_OK;
    }
    case MC_SYMQUANT: {
        const mc_tref *x = &s->t[2];
        KCK(mtk_symquant(st, mc_ptr(p, x), x->strides, x->st == MTMI_FLOAT16, (int)x->dims[0], (int)x->dims[1], (int)x->dims[2],
                         (int)x->dims[3], mc_ptr(p, &s->t[0]), mc_ptr(p, &s->t[1]), mc_ptr(p, &s->t[3])));
        return MTMI_OK;
    }
    case MC_QUANT: { /* the encoder's features as int8 NHWC codes for INT8 heads (mtmi.QuantizeNHWC) */
        const mc_tref *x = &s->t[1];
        KCK(mtk_qconv_quantize(st, mc_ptr(p, x), x->strides, x->st == MTMI_FLOAT16, mc_ptr(p, &s->t[0]), (int)x->dims[0],
                               (int)x->dims[1], (int)x->dims[2], (int)x->dims[3], (int)x->dims[1], s->u.quant.scale));
        return MTMI_OK;
    }
    case MC_RESIZE_ARGMAX: {
        const mc_tref *x = &s->t[1], *y = &s->t[0];
        KCK(mtk_resize_argmax(st, mc_ptr(p, x), x->strides, mc_ptr(p, y), (int)y->dims[0], (int)x->dims[1], (int)x->dims[2],
                              (int)x->dims[3], (int)y->dims[1], (int)y->dims[2], s->u.resize.sh, s->u.resize.sw, (int)s->u.resize.coord,
                              x->st == MTMI_FLOAT16));
        return MTMI_OK;
    }
    default: return mt_fail(MTMI_ERR_INTERNAL, "unknown CUDA step kind %d", s->kind);
    }
}
