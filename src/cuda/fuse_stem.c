/* Fusion pass: im2col -> GEMM of a small-K convolution as one MC_CONV_SMALLK
 * step (kernel mtk_conv_smallk, stem.cu).
 *
 * plan_conv lowers a convolution with a small column matrix to an MC_IM2COL
 * step and a cuBLASLt GEMM over it.  For the network's stem (7x7/4 over the
 * FP32 RGB input, K = 147) the column matrix is 20 MB written and read back
 * for a conv whose own traffic is 16 MB: the fused kernel builds the column
 * tiles in shared memory instead.  The pass takes an im2col whose column
 * matrix only the GEMM right after it reads, with that GEMM plain (no batch,
 * alpha 1, beta 0, A the column matrix row-major, B the packed weights
 * [CO][Kp]), and any activation the GEMM step applies (its epilogue or the
 * bias-act launch after it) moved into the kernel's epilogue.
 *
 * The fused step: conv = the im2col's geometry with CO, act and has_bias of
 * the GEMM; t[0] the GEMM output [M, CO] (row stride u.smallk.ldy), t[1] the conv
 * input view, t[2] the weights (row stride u.smallk.ldw), t[3] the bias or
 * {.buf = -1}. */

#include "core/core.h"
#include "cuda/cuda_internal.h"

int mc_fuse_im2col_gemm(mc_plan *p) {
    int made = 0;
    for (int j = 0; j + 1 < p->nsteps; j++) {
        mc_step *ic = &p->steps[j], *gs = &p->steps[j + 1];
        if (ic->kind != MC_IM2COL || ic->nt != 2 || gs->kind != MC_GEMM || gs->label != ic->label) continue;
        const mc_conv *c = &ic->conv;
        const mc_tref *x = &ic->t[1], *col = &ic->t[0];
        const mc_gemm *g = &gs->gemm;
        const int64_t K = (int64_t)c->KH * c->KW * c->C, M = (int64_t)c->N * c->OH * c->OW;
        if (c->groups != 1 || c->dh != 1 || c->dw != 1 || x->rank != 4 || (x->st != MTMI_FLOAT && x->st != MTMI_FLOAT16))
            continue;
        if (x->dims[0] != c->N || x->dims[1] != c->C || x->dims[2] != c->H || x->dims[3] != c->W) continue;
        /* the column matrix [M, Kp] dense FP16, read by the GEMM as its A */
        if (col->st != MTMI_FLOAT16 || col->rank != 2 || col->dims[0] != M || col->dims[1] < K || col->dims[1] % 8 ||
            col->strides[1] != 1 || (M > 1 && col->strides[0] != col->dims[1]))
            continue;
        const int64_t Kp = col->dims[1], CO = g->n;
        if (g->batch != 1 || g->alpha != 1.f || g->beta != 0.f || !g->a_rowmajor || g->b_rowmajor || g->m != M || g->k != Kp ||
            (M > 1 && g->lda != Kp) || g->act < 0 || g->act > 3)
            continue;
        if (gs->t[1].buf != col->buf || gs->t[1].off != col->off || gs->t[1].st != MTMI_FLOAT16) continue;
        /* the weights [CO][ldb] (k contiguous), FP16 */
        const mc_tref *w = &gs->t[2];
        if (w->st != MTMI_FLOAT16 || w->rank != 2 || w->dims[0] != Kp || w->dims[1] != CO || w->strides[0] != 1 ||
            (CO > 1 && w->strides[1] != g->ldb) || g->ldb < K)
            continue;
        /* the output [M, CO] FP16, rows ldc apart */
        const mc_tref *y = &gs->t[0];
        if (y->st != MTMI_FLOAT16 || y->rank != 2 || y->dims[0] != M || y->dims[1] != CO || y->strides[1] != 1 ||
            (M > 1 && y->strides[0] != g->ldc) || g->ldc < CO)
            continue;
        if (g->has_bias && (gs->nt < 4 || gs->t[3].st != MTMI_FLOAT16 || gs->t[3].rank != 1 || gs->t[3].dims[0] != CO ||
                            gs->t[3].strides[0] != 1))
            continue;
        /* the kernel's strides are int64, its pixel and strip counts int */
        if (M > 0x7fffffff || g->ldb > 0x7fffffff) continue;
        if (!mtk_conv_smallk_supported(c->C, c->KH, c->KW, c->sh, c->sw, (int)CO, x->st == MTMI_FLOAT16, g->act)) continue;
        if (mc_buf_used_elsewhere(p, col->buf, j, j + 1)) continue;
        mc_step fused = mc_step_like(ic, MC_CONV_SMALLK);
        fused.conv = *c;
        fused.conv.CO = (int)CO;
        fused.conv.act = g->act;
        fused.conv.has_bias = g->has_bias;
        fused.t[0] = *y;
        fused.t[1] = *x;
        fused.t[2] = *w;
        fused.t[3] = g->has_bias ? gs->t[3] : (mc_tref){.buf = -1};
        fused.nt = 4;
        fused.u.smallk.ldw = g->ldb;
        fused.u.smallk.ldy = M > 1 ? y->strides[0] : CO;
        *ic = fused;
        p->steps[j + 1].kind = MC_DROPPED;
        made++;
        j++;
    }
    return made;
}
