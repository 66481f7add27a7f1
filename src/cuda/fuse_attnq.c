/* Fusion pass: the query projection into the attention kernel.
 *
 * q = x Wq + b is a GEMM whose only reader is the attention step, and the
 * attention kernel loads each query row exactly once (a warp's 16 rows, kept
 * in registers for all keys).  So the warp can as well compute its rows of
 * q from x on tensor cores (C x D per head: 0.13 GFLOP at the encoder's
 * first stage, nothing next to the attention itself) and the GEMM launch and
 * its round trip of q through memory go away: 8 launches a frame.
 *
 * The rewritten attention step: t[1] = x as [B, H, N, K] with head stride 0,
 * t[4] = Wq [K][ldw] (FP16, row-major), t[5] = its bias (buf -1 when none),
 * ip[5] = 1, ip[6] = K, ip[7] = ldw. */

#include "core/core.h"
#include "cuda/cuda_internal.h"

int mc_fuse_attn_q(mc_plan *p) {
    int made = 0;
    for (int i = 0; i < p->nsteps; i++) {
        const mc_step *g = &p->steps[i];
        const mc_gemm *gm = &g->gemm;
        if (g->kind != MC_GEMM || gm->batch != 1 || gm->act != 0 || gm->alpha != 1.f || !gm->a_rowmajor || !gm->b_rowmajor)
            continue;
        const mc_tref *q = &g->t[0], *x = &g->t[1], *w = &g->t[2];
        int64_t M = gm->m, K = gm->k, Nq = gm->n;
        if (q->st != MTMI_FLOAT16 || x->st != MTMI_FLOAT16 || w->st != MTMI_FLOAT16 || K % 16 || M < 1) continue;
        if (q->rank != 2 || q->strides[1] != 1 || q->strides[0] != Nq || x->rank != 2 || x->strides[1] != 1 ||
            x->strides[0] % 2 || (M > 1 && x->strides[0] < K) || w->rank != 2 || w->strides[1] != 1 || w->strides[0] != Nq)
            continue;
        if (gm->has_bias && (g->nt < 4 || g->t[3].st != MTMI_FLOAT16 || mc_numel(&g->t[3]) != Nq)) continue;
        /* the first later step touching q must be the attention reading it as [B, H, N, D] */
        int j = -1;
        for (int k = i + 1; k < p->nsteps && j < 0; k++)
            if (mc_step_uses(&p->steps[k], q->buf)) j = k;
        if (j < 0) continue;
        mc_step *at = &p->steps[j];
        const mc_tref *qv = &at->t[1];
        if (at->kind != MC_ATTN || at->nt != 4 || at->label != g->label || qv->buf != q->buf || qv->off != q->off || qv->rank != 4)
            continue;
        int64_t B = at->ip[0], H = at->ip[1], N = at->ip[2], D = at->ip[4];
        if (B * N != M || H * D != Nq || qv->strides[3] != 1 || qv->strides[2] != Nq || (H > 1 && qv->strides[1] != D) ||
            (B > 1 && qv->strides[0] != N * Nq))
            continue;
        if (at->t[2].buf == q->buf || at->t[3].buf == q->buf || at->t[0].buf == q->buf ||
            mc_buf_used_elsewhere(p, q->buf, i, j))
            continue;
        mc_tref xv = *x;
        xv.rank = 4;
        xv.dims[0] = B, xv.dims[1] = H, xv.dims[2] = N, xv.dims[3] = K;
        xv.strides[0] = N * x->strides[0], xv.strides[1] = 0, xv.strides[2] = x->strides[0], xv.strides[3] = 1;
        at->t[1] = xv;
        at->t[4] = *w;
        at->t[5] = gm->has_bias ? g->t[3] : (mc_tref){.buf = -1};
        at->nt = 6;
        at->ip[5] = 1;
        at->ip[6] = K;
        at->ip[7] = Nq;
        p->steps[i].kind = MC_DROPPED;
        made++;
    }
    return made;
}
