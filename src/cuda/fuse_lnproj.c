/* Fusion pass: a small projection GEMM computed by the residual LayerNorm
 * that is its only reader (mtk_layernorm_proj).
 *
 * Each attention block ends with x + proj(attn), normalized at once (the
 * residual add already lives in the LayerNorm kernel): the projection is a
 * C x C GEMM (C = 32 .. 256) over the tokens, a launch of its own whose
 * output makes one round trip through memory.  Its FLOPs are small enough
 * (C^2 a token) for the LayerNorm's lanes to do on CUDA cores while they
 * hold the row, for narrow rows: measured on an H100 (2026-11-25,
 * scripts/gpu_ab.sh), doing it for every stage cost 130 us (C = 160 and 256
 * put 1280-2048 dependent FMAs on each lane), so only K x C <= 64 x 64 (the
 * first two stages).
 *
 * The rewritten LN step keeps t[0..3] and t[5] (unused ones repeat others),
 * t[1] the operand that is not projected (the sum commutes), t[4] the
 * projection's bias (buf -1 without), t[10] its input rows, t[11] its
 * weights [K][C]; u.ln.proj = 1, u.ln.proj_k = K, u.ln.proj_ld = the
 * input's row stride. */

#include "core/core.h"
#include "cuda/cuda_internal.h"

static int contig2(const mc_tref *t, int64_t rows, int64_t cols) {
    return t->rank == 2 && t->dims[0] == rows && t->dims[1] == cols && t->strides[1] == 1 && (rows == 1 || t->strides[0] == cols);
}

/* the operand view of the LN (x or r, any rank) is exactly the dense [rows, C] tensor t */
static int same_dense(const mc_tref *v, const mc_tref *t) {
    return v->buf == t->buf && v->off == t->off && mc_numel(v) == mc_numel(t) && mc_is_contig(v);
}

int mc_fuse_ln_proj(mc_plan *p) {
    int made = 0;
    for (int l = 1; l < p->nsteps; l++) {
        mc_step *ln = &p->steps[l];
        if (ln->kind != MC_LN || !ln->u.ln.has_res || ln->u.ln.im2col || ln->u.ln.pair || ln->u.ln.proj || ln->t[0].st != MTMI_FLOAT16) continue;
        const int64_t rows = ln->u.ln.rows, C = ln->u.ln.C;
        if (C % 8 || C > 256) continue;
        for (int side = 0; side < 2; side++) {
            const mc_tref *op = side ? &ln->t[1] : &ln->t[4];
            /* the step that wrote the operand */
            int gi = -1;
            for (int k = l - 1; k >= 0 && gi < 0; k--)
                if (p->steps[k].t[0].buf == op->buf) gi = k;
            if (gi < 0) continue;
            const mc_step *g = &p->steps[gi];
            const mc_gemm *gm = &g->gemm;
            if (g->kind != MC_GEMM || g->label != ln->label || gm->batch != 1 || gm->act != 0 || gm->alpha != 1.f ||
                gm->beta != 0.f || !gm->a_rowmajor || !gm->b_rowmajor || gm->m != rows || gm->n != C || gm->k % 8 ||
                gm->k * C > 64 * 64 || g->t[0].st != MTMI_FLOAT16 || g->t[1].st != MTMI_FLOAT16 || g->t[2].st != MTMI_FLOAT16)
                continue;
            if (!contig2(&g->t[0], rows, C) || !same_dense(op, &g->t[0]) || !contig2(&g->t[2], gm->k, C) ||
                g->t[1].rank != 2 || g->t[1].strides[1] != 1 || (rows > 1 && g->t[1].strides[0] % 8) || g->t[1].off % 8 ||
                g->t[2].off % 8 || (gm->has_bias && (g->nt < 4 || g->t[3].st != MTMI_FLOAT16)))
                continue;
            if (mc_buf_used_elsewhere(p, g->t[0].buf, gi, l)) continue;
            const mc_tref other = side ? ln->t[4] : ln->t[1];
            const mc_tref bias = gm->has_bias ? g->t[3] : (mc_tref){.buf = -1};
            ln->t[1] = other;
            if (!ln->u.ln.has_beta) ln->t[3] = ln->t[2];
            ln->t[4] = bias;
            if (!ln->u.ln.keep_sum) ln->t[5] = ln->t[0];
            for (int k = 6; k < 10; k++) ln->t[k] = ln->t[0];
            ln->t[10] = g->t[1];
            ln->t[11] = g->t[2];
            ln->nt = 12;
            ln->u.ln.proj = 1;
            ln->u.ln.proj_k = gm->k;
            ln->u.ln.proj_ld = rows > 1 ? g->t[1].strides[0] : gm->k;
            p->steps[gi].kind = MC_DROPPED; /* after the last read of g */
            made++;
            break;
        }
    }
    return made;
}
