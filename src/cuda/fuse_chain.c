/* Fusion pass: three chained per-pixel GEMMs as one MC_CHAIN step
 * (mtk_chain3, chain.cu).
 *
 * After fuse_catgemm.c the decode head is, per pixel: c0 = relu(f1 Wc + b)
 * (32 -> 128), h = relu(c0 W0 + r + b) (128 -> 128, r the upsampled
 * projections of the other stages), logits = h Wcls + b (128 -> 19): c0 and
 * h are 16 MB each at 65536 pixels, written and read back, three launches.
 * The chain kernel keeps them in registers.
 *
 * Matched: G2, a GEMM with beta = 1 (its C input r), whose A is written by
 * a GEMM G1 and whose output is read only by the GEMM G3 after it; the
 * tensors between them have no other user. */

#include "core/core.h"
#include "cuda/cuda_internal.h"

static int plain(const mc_step *s) {
    const mc_gemm *g = &s->gemm;
    return s->kind == MC_GEMM && g->batch == 1 && g->alpha == 1.f && g->a_rowmajor && g->act <= 1 && s->t[0].st == MTMI_FLOAT16 &&
           s->t[1].st == MTMI_FLOAT16 && s->t[2].st == MTMI_FLOAT16 && (!g->has_bias || (s->nt > 3 && s->t[3].st == MTMI_FLOAT16));
}

/* output [m, n] dense and A rows 16-byte aligned */
static int rows_ok(const mc_step *s) {
    const mc_gemm *g = &s->gemm;
    return s->t[0].rank == 2 && s->t[0].strides[1] == 1 && s->t[1].rank == 2 && s->t[1].strides[1] == 1 && g->lda % 8 == 0 &&
           s->t[1].off % 8 == 0;
}

int mc_fuse_chain(mc_plan *p) {
    int made = 0;
    for (int i2 = 1; i2 + 1 < p->nsteps; i2++) {
        mc_step *g2 = &p->steps[i2];
        if (!plain(g2) || g2->gemm.beta != 1.f || g2->nt < 5 || !rows_ok(g2)) continue;
        const mc_tref *r = &g2->t[4];
        if (r->rank != 2 || r->strides[1] != 1 || r->strides[0] % 8 || r->off % 8 || r->st != MTMI_FLOAT16) continue;
        int i1 = -1;
        for (int k = i2 - 1; k >= 0 && i1 < 0; k--)
            if (p->steps[k].t[0].buf == g2->t[1].buf) i1 = k;
        int i3 = i2 + 1;
        if (i1 < 0) continue;
        mc_step *g1 = &p->steps[i1], *g3 = &p->steps[i3];
        if (!plain(g1) || g1->gemm.beta != 0.f || !plain(g3) || g3->gemm.beta != 0.f || !rows_ok(g1) || !rows_ok(g3)) continue;
        if (g1->label != g2->label || g3->label != g2->label) continue;
        const int64_t M = g2->gemm.m;
        if (g1->gemm.m != M || g3->gemm.m != M || g1->gemm.n != g2->gemm.k || g2->gemm.n != g3->gemm.k ||
            !mtk_chain3_supported((int)g1->gemm.k, (int)g1->gemm.n, (int)g2->gemm.n, (int)g3->gemm.n))
            continue;
        /* G2 reads exactly G1's output, G3 exactly G2's; nothing else does */
        if (g2->t[1].buf != g1->t[0].buf || g2->t[1].off != g1->t[0].off || g1->t[0].strides[0] != g1->gemm.n ||
            g3->t[1].buf != g2->t[0].buf || g3->t[1].off != g2->t[0].off || g2->t[0].strides[0] != g2->gemm.n)
            continue;
        if (mc_buf_used_elsewhere(p, g1->t[0].buf, i1, i2) || mc_buf_used_elsewhere(p, g2->t[0].buf, i2, i3)) continue;
        if (g3->gemm.ldc % 2 || g3->t[0].off % 2) continue;
        mc_step f = mc_step_like(g2, MC_CHAIN);
        f.t[0] = g3->t[0];
        f.t[1] = g1->t[1];
        f.t[2] = g1->t[2];
        f.t[3] = g1->gemm.has_bias ? g1->t[3] : (mc_tref){.buf = -1};
        f.t[4] = *r;
        f.t[5] = g2->t[2];
        f.t[6] = g2->gemm.has_bias ? g2->t[3] : (mc_tref){.buf = -1};
        f.t[7] = g3->t[2];
        f.t[8] = g3->gemm.has_bias ? g3->t[3] : (mc_tref){.buf = -1};
        f.nt = 9;
        f.u.chain.m = M;
        f.u.chain.k1 = g1->gemm.k;
        f.u.chain.n3 = g3->gemm.n;
        f.u.chain.ldx = g1->gemm.lda;
        f.u.chain.ldr = r->strides[0];
        f.u.chain.ldy = g3->gemm.ldc;
        f.u.chain.ldw1 = g1->gemm.ldb, f.u.chain.ldw2 = g2->gemm.ldb, f.u.chain.ldw3 = g3->gemm.ldb;
        f.u.chain.wt = (!g1->gemm.b_rowmajor) | (!g2->gemm.b_rowmajor) << 1 | (!g3->gemm.b_rowmajor) << 2;
        f.u.chain.act = g1->gemm.act | g2->gemm.act << 2 | g3->gemm.act << 4;
        *g2 = f;
        g1->kind = g3->kind = MC_DROPPED;
        made++;
        i2++;
    }
    return made;
}
