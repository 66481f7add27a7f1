/* Fusion pass: two LayerNorms in a row as one step (mtk_layernorm_pair).
 *
 * Each encoder stage of a SegFormer-style network starts with the patch
 * embedding's LayerNorm, and the first block's LayerNorm (pre-attention)
 * follows at once on its output; both outputs live on (the first one is
 * the residual stream).  Fused, the second norm runs on the rows while they
 * are still in registers: one launch and one read of the tensor fewer.  Runs
 * after mc_fuse_ln_im2col, so the second LN may already carry an im2col
 * matrix; it moves to the pair.
 *
 * The pair step: the first LN's operands t[0..5] (unused ones repeat others,
 * as fuse_im2col.c does, so that memory planning sees no stray buffer),
 * t[6] the im2col matrix (or t[0]), t[7] the second output, t[8] / t[9] its
 * gamma / beta (t[8] again when there is no beta), u.ln.pair = 1,
 * u.ln.pair_beta = has beta, u.ln.pair_eps = its epsilon. */

#include "core/core.h"
#include "cuda/cuda_internal.h"

static int same_view(const mc_tref *a, const mc_tref *b) {
    if (a->buf != b->buf || a->off != b->off || a->st != b->st) return 0;
    return mc_numel(a) == mc_numel(b) && mc_is_contig(a) && mc_is_contig(b);
}

int mc_fuse_ln_pair(mc_plan *p) {
    int made = 0;
    for (int i = 0; i + 1 < p->nsteps; i++) {
        mc_step *a = &p->steps[i], *b = &p->steps[i + 1];
        if (a->kind != MC_LN || b->kind != MC_LN || a->label != b->label) continue;
        if (a->u.ln.im2col || a->u.ln.pair || a->u.ln.proj || b->u.ln.pair || b->u.ln.proj || b->u.ln.has_res || b->u.ln.keep_sum) continue; /* a has no im2col; b no residual; no projection */
        if (a->u.ln.rows != b->u.ln.rows || a->u.ln.C != b->u.ln.C || a->t[0].st != MTMI_FLOAT16 || !same_view(&b->t[1], &a->t[0]))
            continue;
        if (!a->u.ln.has_beta) a->t[3] = a->t[2];
        if (!a->u.ln.has_res) a->t[4] = a->t[1];
        if (!a->u.ln.keep_sum) a->t[5] = a->t[0];
        if (b->u.ln.im2col) {
            a->t[6] = b->t[6];
            a->conv = b->conv;
            a->u.ln.im2col = 1;
        } else {
            a->t[6] = a->t[0];
        }
        a->t[7] = b->t[0];
        a->t[8] = b->t[2];
        a->t[9] = b->u.ln.has_beta ? b->t[3] : b->t[2];
        a->u.ln.pair = 1;
        a->u.ln.pair_beta = b->u.ln.has_beta;
        a->u.ln.pair_eps = b->u.ln.eps;
        a->nt = 10;
        b->kind = MC_DROPPED;
        made++;
        i++;
    }
    return made;
}
