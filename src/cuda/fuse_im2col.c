/* Step fusion: LayerNorm -> im2col.
 *
 * In the SegFormer encoder a LayerNorm's output (tokens = pixels, NHWC) is
 * the input of a convolution that plan_conv lowers to im2col + GEMM: the
 * attention blocks' spatial reductions (kernel == stride, no padding: a pure
 * permutation of the normalized tensor) and the patch embeddings of stages
 * 2-4 (3x3 stride 2 pad 1).  The im2col launch re-reads the whole normalized
 * tensor only to scatter it (~8 us a launch on an H100, 11 a frame); the
 * LayerNorm kernel holds each normalized pixel in registers and can write
 * those places itself.  This pass gives the LN step the conv geometry and
 * the column matrix as an extra output and drops the im2col step; the LN's
 * normal output stays (the q projection and the decoder read it).
 *
 * The rewritten LN step: conv = the im2col's geometry, t[6] = the column
 * matrix, u.ln.im2col = 1; the unused operand slots before t[6] repeat operands the
 * step already has, so the memory planner sees no new buffers but the
 * column matrix (whose lifetime now starts at the LN step). */

#include "core/core.h"
#include "cuda/cuda_internal.h"

/* kinds whose only output is t[0]: a step of these that merely reads the LN
 * output may lie between the LN and the im2col */
static int writes_only_t0(int kind) {
    switch (kind) {
    case MC_COPY: case MC_EW: case MC_SOFTMAX: case MC_RESIZE: case MC_DW: case MC_CONVD: case MC_CUDNN:
    case MC_GEMM: case MC_GATHER: case MC_IM2COL: case MC_SMALLN: case MC_RESIZE_CAT:
        return 1;
    default:
        return 0;
    }
}

/* x is the LN output (contiguous rows of C) read as an NHWC [N, C, H, W]
 * image: strides (H*W*C, 1, W*C, C) on the dimensions that are not 1 */
static int is_nhwc_of(const mc_tref *x, const mc_conv *c) {
    if (x->rank != 4 || x->dims[0] != c->N || x->dims[1] != c->C || x->dims[2] != c->H || x->dims[3] != c->W) return 0;
    int64_t e[4] = {(int64_t)c->H * c->W * c->C, 1, (int64_t)c->W * c->C, c->C};
    for (int d = 0; d < 4; d++)
        if (x->dims[d] != 1 && x->strides[d] != e[d]) return 0;
    return 1;
}

/* the LN step that wrote the im2col input of steps[j] and whose output
 * nothing rewrote since, or -1 */
static int find_ln(const mc_plan *p, int j) {
    int buf = p->steps[j].t[1].buf;
    for (int k = j - 1; k >= 0; k--) {
        const mc_step *s = &p->steps[k];
        if (s->kind == MC_DROPPED || !mc_step_uses(s, buf)) continue; /* an im2col this pass already folded away */
        if (s->kind == MC_LN && s->t[0].buf == buf) return s->u.ln.proj ? -1 : k; /* not an LN computing a projection (fuse_lnproj.c) */
        /* a reader in between is fine; anything that may write it is not */
        if (!writes_only_t0(s->kind) || s->t[0].buf == buf) return -1;
    }
    return -1;
}

int mc_fuse_ln_im2col(mc_plan *p) {
    int made = 0;
    for (int j = 0; j < p->nsteps; j++) {
        const mc_step *ic = &p->steps[j];
        if (ic->kind != MC_IM2COL || ic->nt != 2) continue;
        const mc_conv *c = &ic->conv;
        const mc_tref *x = &ic->t[1], *col = &ic->t[0];
        int64_t K = (int64_t)c->KH * c->KW * c->C, M = (int64_t)c->N * c->OH * c->OW, Kp = col->dims[1];
        /* the layouts the vectorized LN kernel writes (mtk_layernorm_im2col
         * would fall back to two kernels otherwise: no gain) */
        if (x->st != MTMI_FLOAT16 || col->st != MTMI_FLOAT16 || col->rank != 2 || c->groups != 1) continue;
        if (c->C % 8 || c->C > 256 || Kp % 8 || Kp < K || col->dims[0] != M || col->strides[0] != Kp ||
            col->strides[1] != 1 || col->off % 8)
            continue;
        if (!is_nhwc_of(x, c)) continue;
        int i = find_ln(p, j);
        if (i < 0) continue;
        mc_step *ln = &p->steps[i];
        /* the parts of the plan (encoder, each head) replay separately: the
         * writer of the column matrix must be in the reader's part */
        if (ln->u.ln.im2col || ln->label != ic->label) continue;
        if (ln->u.ln.C != c->C || ln->u.ln.rows != (int64_t)c->N * c->H * c->W || x->off != ln->t[0].off ||
            ln->t[0].st != MTMI_FLOAT16 || !mc_is_contig(&ln->t[0]) || mc_numel(&ln->t[0]) != ln->u.ln.rows * ln->u.ln.C)
            continue;
        /* the column matrix: written by the im2col, read by the GEMM after
         * it, used by nothing else (so nothing between the LN and the GEMM
         * can overwrite it once its lifetime starts at the LN) */
        int g = -1;
        for (int k = j + 1; k < p->nsteps && g < 0; k++)
            if (mc_step_uses(&p->steps[k], col->buf)) g = k;
        if (g < 0 || p->steps[g].kind != MC_GEMM || p->steps[g].label != ic->label || p->steps[g].t[0].buf == col->buf ||
            mc_buf_used_elsewhere(p, col->buf, j, g))
            continue;
        ln->conv = *c;
        if (!ln->u.ln.has_beta) ln->t[3] = ln->t[2]; /* no beta */
        if (!ln->u.ln.has_res) ln->t[4] = ln->t[1]; /* no residual */
        if (!ln->u.ln.keep_sum) ln->t[5] = ln->t[0]; /* no sum output (t[5] may name the dropped Add's buffer) */
        ln->t[6] = *col;
        ln->nt = 7;
        ln->u.ln.im2col = 1;
        p->steps[j].kind = MC_DROPPED;
        made++;
    }
    return made;
}
