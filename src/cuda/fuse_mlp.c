/* Fusion pass: GEMM (fc1) -> depthwise 3x3 conv (+ act) -> GEMM (fc2) as one
 * MC_MLP step (kernel mtk_mlp_dw, mlp.cu).
 *
 * The SegFormer-style MLP (Linear, a 3x3 depthwise conv on the tokens laid
 * out as an image, GELU, Linear) reaches the plan as three steps whose
 * intermediates are the widest tensors of the encoder (4x the channels of
 * the tokens).  When both intermediates are read by nothing else, the three
 * steps become one and the intermediates never reach memory. */

#include "core/core.h"
#include "cuda/cuda_internal.h"

/* [rows, cols] contiguous row-major (row stride ld, or cols when ld == 0) */
static int rowmajor2(const mc_tref *t, int64_t rows, int64_t cols, int64_t ld) {
    return t->rank == 2 && t->dims[0] == rows && t->dims[1] == cols && t->strides[1] == 1 &&
           (rows == 1 || t->strides[0] == (ld ? ld : cols));
}

/* NHWC dense image [N, C, H, W] (logical NCHW dims, channels innermost) */
static int nhwc_dense(const mc_tref *t, int N, int C, int H, int W) {
    return t->rank == 4 && t->dims[0] == N && t->dims[1] == C && t->dims[2] == H && t->dims[3] == W && t->strides[1] == 1 &&
           t->strides[3] == C && t->strides[2] == (int64_t)W * C && (N == 1 || t->strides[0] == (int64_t)H * W * C);
}

static int plain_gemm(const mc_step *s) {
    const mc_gemm *g = &s->gemm;
    return s->kind == MC_GEMM && g->batch == 1 && g->act == 0 && g->alpha == 1.f && g->a_rowmajor && g->b_rowmajor &&
           s->t[0].st == MTMI_FLOAT16 && s->t[1].st == MTMI_FLOAT16 && s->t[2].st == MTMI_FLOAT16;
}

static int bias_ok(const mc_step *s, int64_t n) {
    return !s->gemm.has_bias || (s->nt > 3 && s->t[3].rank == 1 && s->t[3].dims[0] == n && s->t[3].strides[0] == 1 &&
                                 s->t[3].st == MTMI_FLOAT16);
}

int mc_fuse_mlp(mc_plan *p) {
    int made = 0;
    for (int i = 0; i + 2 < p->nsteps; i++) {
        mc_step *f1 = &p->steps[i], *dw = &p->steps[i + 1], *f2 = &p->steps[i + 2];
        if (!plain_gemm(f1) || dw->kind != MC_DW || !plain_gemm(f2)) continue;
        if (f1->label != dw->label || dw->label != f2->label) continue;
        const mc_conv *c = &dw->conv;
        int64_t M = f1->gemm.m, C = f1->gemm.k, Ch = f1->gemm.n;
        if (c->KH != 3 || c->KW != 3 || c->sh != 1 || c->sw != 1 || c->ph != 1 || c->pw != 1 || c->ph2 != 1 ||
            c->pw2 != 1 || c->dh != 1 || c->dw != 1 || c->groups != Ch || c->C != Ch || c->CO != Ch || c->OH != c->H ||
            c->OW != c->W || c->act < 0 || c->act > 3)
            continue;
        if ((int64_t)c->N * c->H * c->W != M || f2->gemm.m != M || f2->gemm.k != Ch || f2->gemm.n != C) continue;
        if (!mtk_mlp_supported((int)C, (int)Ch)) continue;
        /* fc1: x [M, C] dense -> h [M, Ch] dense; weights [C][Ch] */
        if (!rowmajor2(&f1->t[1], M, C, 0) || !rowmajor2(&f1->t[0], M, Ch, 0) || !rowmajor2(&f1->t[2], C, Ch, 0) ||
            !bias_ok(f1, Ch))
            continue;
        /* the conv reads exactly fc1's output and writes a dense NHWC image */
        if (dw->t[1].buf != f1->t[0].buf || dw->t[1].off != f1->t[0].off || !nhwc_dense(&dw->t[1], c->N, (int)Ch, c->H, c->W) ||
            !nhwc_dense(&dw->t[0], c->N, (int)Ch, c->H, c->W) || dw->t[0].st != MTMI_FLOAT16 || dw->t[2].st != MTMI_FLOAT16 ||
            (c->has_bias && dw->t[3].st != MTMI_FLOAT16))
            continue;
        /* fc2 reads exactly the conv's output; weights [Ch][C]; any row stride out */
        if (f2->t[1].buf != dw->t[0].buf || f2->t[1].off != dw->t[0].off || !rowmajor2(&f2->t[1], M, Ch, 0) ||
            !rowmajor2(&f2->t[2], Ch, C, 0) || f2->t[0].rank != 2 || f2->t[0].strides[1] != 1 ||
            f2->t[0].dims[0] != M || f2->t[0].dims[1] != C || (M > 1 && f2->t[0].strides[0] < C) || !bias_ok(f2, C))
            continue;
        if (mc_buf_used_elsewhere(p, f1->t[0].buf, i, i + 1) || mc_buf_used_elsewhere(p, dw->t[0].buf, i + 1, i + 2)) continue;
        mc_step fused = mc_step_like(f1, MC_MLP);
        fused.conv = *c;
        fused.t[0] = f2->t[0];
        fused.t[1] = f1->t[1];
        fused.t[2] = f1->t[2];
        fused.t[4] = dw->t[2];
        fused.t[6] = f2->t[2];
        /* absent biases: buf -1 (mc_ptr gives NULL) */
        fused.t[3] = f1->gemm.has_bias ? f1->t[3] : (mc_tref){.buf = -1};
        fused.t[5] = c->has_bias ? dw->t[3] : (mc_tref){.buf = -1};
        fused.t[7] = f2->gemm.has_bias ? f2->t[3] : (mc_tref){.buf = -1};
        fused.nt = 8;
        fused.u.mlp.C = C;
        fused.u.mlp.Ch = Ch;
        fused.u.mlp.ldy = M > 1 ? f2->t[0].strides[0] : C;
        *f1 = fused;
        dw->kind = f2->kind = MC_DROPPED;
        made++;
        i += 2;
    }
    return made;
}

/* The residual LayerNorm before a fused MLP (its output read by the MLP
 * alone) computed in the MLP kernel's prologue on the halo rows it loads
 * anyway: one launch and a write + read of the normalized tokens fewer.
 * The MLP step then has t[8] / t[9] the two addends, t[10] / t[11] gamma /
 * beta (gamma again without beta), t[1] the sum output (buf -1 when the
 * LayerNorm did not keep it), u.mlp.ln = 1, u.mlp.ln_beta = has beta, u.mlp.eps = eps. */
int mc_fuse_mlp_ln(mc_plan *p) {
    int made = 0;
    for (int i = 1; i < p->nsteps; i++) {
        mc_step *m = &p->steps[i], *l = &p->steps[i - 1];
        if (m->kind != MC_MLP || m->u.mlp.ln || l->kind != MC_LN || l->label != m->label) continue;
        if (!l->u.ln.has_res || l->u.ln.im2col || l->u.ln.pair || l->u.ln.proj || l->t[0].st != MTMI_FLOAT16) continue;
        const int64_t rows = l->u.ln.rows, C = l->u.ln.C;
        const mc_conv *c = &m->conv;
        if (C != m->u.mlp.C || rows != (int64_t)c->N * c->H * c->W) continue;
        /* the MLP reads exactly the LayerNorm's output, and nothing else does */
        if (m->t[1].buf != l->t[0].buf || m->t[1].off != l->t[0].off || mc_buf_used_elsewhere(p, l->t[0].buf, i - 1, i)) continue;
        const mc_tref *a = &l->t[1], *r = &l->t[4];
        if (!mc_is_contig(a) || !mc_is_contig(r) || mc_numel(a) != rows * C || mc_numel(r) != rows * C || a->off % 8 ||
            r->off % 8 || a->st != MTMI_FLOAT16 || r->st != MTMI_FLOAT16)
            continue;
        m->t[1] = l->u.ln.keep_sum ? l->t[5] : (mc_tref){.buf = -1};
        m->t[8] = *a;
        m->t[9] = *r;
        m->t[10] = l->t[2];
        m->t[11] = l->u.ln.has_beta ? l->t[3] : l->t[2];
        m->nt = 12;
        m->u.mlp.ln = 1;
        m->u.mlp.ln_beta = l->u.ln.has_beta;
        m->u.mlp.eps = l->u.ln.eps;
        l->kind = MC_DROPPED;
        made++;
    }
    return made;
}
