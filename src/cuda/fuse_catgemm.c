/* Fusion pass: a 1x1 conv (GEMM) over a channel concat of bilinearly
 * upsampled maps, reassociated.
 *
 * The SegFormer decode head concatenates four 128-channel maps at 1/4
 * resolution (one computed there, three upsampled from 1/8, 1/16, 1/32) and
 * fuses them with a 1x1 conv: a 64 MB concat written and read back, and a
 * K = 512 GEMM over 65536 pixels.  A 1x1 conv is per-pixel linear and a
 * bilinear resize is per-channel linear, so they commute:
 *     W [c0; up(c1); up(c2); up(c3)] = W0 c0 + up(W1 c1) + up(W2 c2) + up(W3 c3)
 * where Wi are W's column blocks.  The rewrite projects each upsampled map at
 * its own resolution (16384, 4096, 1024 pixels: tiny GEMMs), upsamples and
 * sums the projections in one kernel (MC_RESIZE_SUM: one 16 MB map), and
 * runs the full-resolution GEMM with K = 128 adding that map through
 * cuBLASLt's C input (beta = 1) before the bias and activation.  Rounding
 * differs (the projections are rounded to FP16 before the upsampling) but
 * not the math.
 *
 * Matched on the steps: GEMM F whose A is a whole arena buffer X [M, K]
 * that nothing else reads, X written by exactly one GEMM (a column slice)
 * and 1-3 linear resizes (column slices, channels-last), nothing else. */
#include <string.h>

#include "core/core.h"
#include "cuda/cuda_internal.h"

static mc_tref tref2(int buf, int64_t off, int64_t rows, int64_t cols, int64_t ld) {
    mc_tref t;
    memset(&t, 0, sizeof t);
    t.buf = buf, t.st = MTMI_FLOAT16, t.rank = 2, t.off = off;
    t.dims[0] = rows, t.dims[1] = cols, t.strides[0] = ld, t.strides[1] = 1;
    return t;
}

static int is_nhwc_dense(const mc_tref *t) {
    return t->rank == 4 && t->strides[1] == 1 && t->strides[3] == t->dims[1] && t->strides[2] == t->dims[3] * t->dims[1] &&
           (t->dims[0] == 1 || t->strides[0] == t->dims[2] * t->dims[3] * t->dims[1]);
}

int mc_fuse_concat_gemm(mc_plan *p) {
    int made = 0;
    for (int f = 0; f < p->nsteps; f++) {
        const mc_step *F = &p->steps[f];
        const mc_gemm *g = &F->gemm;
        if (F->kind != MC_GEMM || g->batch != 1 || !g->a_rowmajor || g->alpha != 1.f || g->beta != 0.f) continue;
        const mc_tref *A = &F->t[1];
        int64_t M = g->m, Kt = g->k, Nout = g->n;
        int X = A->buf;
        if (X < 0 || p->bufs[X].kind != MC_ARENA || A->st != MTMI_FLOAT16 || F->t[0].st != MTMI_FLOAT16 || A->rank != 2 ||
            A->strides[1] != 1 || A->strides[0] != Kt || Nout % 8)
            continue;
        /* every other user of X writes one column slice of it */
        int w0 = -1, rs[3], nres = 0, bad = 0, coord = -1;
        int64_t cover = 0;
        for (int k = 0; k < p->nsteps && !bad; k++) {
            if (k == f || !mc_step_uses(&p->steps[k], X)) continue;
            const mc_step *s = &p->steps[k];
            const mc_tref *o = &s->t[0];
            int only_out = o->buf == X;
            for (int u = 1; u < s->nt; u++) only_out &= s->t[u].buf != X;
            if (!only_out || k > f || s->label != F->label || o->st != MTMI_FLOAT16 || o->off < A->off ||
                o->off - A->off >= Kt) {
                bad = 1;
                break;
            }
            if (s->kind == MC_GEMM && w0 < 0 && s->gemm.batch == 1 && s->gemm.beta == 0.f && o->rank == 2 &&
                o->dims[0] == M && o->strides[0] == Kt && o->strides[1] == 1 && o->dims[1] % 8 == 0) {
                w0 = k;
                cover += o->dims[1];
            } else if (s->kind == MC_RESIZE && nres < 3 && s->u.resize.mode == 1 && o->rank == 4 && o->strides[1] == 1 &&
                       o->strides[3] == Kt && o->strides[2] == o->dims[3] * Kt && o->dims[0] * o->dims[2] * o->dims[3] == M &&
                       (o->dims[0] == 1 || o->strides[0] == o->dims[2] * o->dims[3] * Kt) &&
                       o->dims[1] % 8 == 0 && s->t[1].st == MTMI_FLOAT16 && is_nhwc_dense(&s->t[1]) &&
                       s->t[1].dims[1] == o->dims[1] && s->t[1].dims[0] == o->dims[0] &&
                       s->u.resize.sh == (float)o->dims[2] / (float)s->t[1].dims[2] &&
                       s->u.resize.sw == (float)o->dims[3] / (float)s->t[1].dims[3] && (coord < 0 || coord == s->u.resize.coord)) {
                coord = (int)s->u.resize.coord;
                rs[nres++] = k;
                cover += o->dims[1];
            } else {
                bad = 1;
            }
        }
        if (bad || w0 < 0 || nres == 0 || cover != Kt) continue;
        /* the slices tile [0, Kt): widths sum to Kt; check they do not overlap */
        {
            int64_t lo[4], hi[4];
            int n = 0;
            lo[n] = p->steps[w0].t[0].off - A->off, hi[n] = lo[n] + p->steps[w0].t[0].dims[1], n++;
            for (int r = 0; r < nres; r++) lo[n] = p->steps[rs[r]].t[0].off - A->off, hi[n] = lo[n] + p->steps[rs[r]].t[0].dims[1], n++;
            for (int a = 0; a < n && !bad; a++)
                for (int b = a + 1; b < n; b++)
                    if (lo[a] < hi[b] && lo[b] < hi[a]) bad = 1;
            if (bad) continue;
        }
        const mc_tref Bw = F->t[2]; /* [Kt, Nout] */
        const mc_step *R0 = &p->steps[rs[0]];
        const int64_t N = R0->t[0].dims[0], OH = R0->t[0].dims[2], OW = R0->t[0].dims[3];
        /* new buffers: the slice GEMM's own output, the projections, their upsampled sum */
        const mc_tref *o0 = &p->steps[w0].t[0];
        const int64_t c0 = o0->off - A->off, wd0 = o0->dims[1];
        int bc0 = mc_new_arena(p, (size_t)(M * wd0 * 2));
        int bsum = mc_new_arena(p, (size_t)(M * Nout * 2));
        if (bc0 < 0 || bsum < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory"), -1;
        mc_tref ys[3];
        for (int r = 0; r < nres; r++) {
            mc_step *s = &p->steps[rs[r]];
            const mc_tref src = s->t[1];
            const int64_t w = s->t[0].dims[1], c = s->t[0].off - A->off, n_i = src.dims[0] * src.dims[2] * src.dims[3];
            int by = mc_new_arena(p, (size_t)(n_i * Nout * 2));
            if (by < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory"), -1;
            mc_tref Bs = Bw;
            Bs.off += c * Bw.strides[0];
            Bs.dims[0] = w;
            mc_gemm gm;
            memset(&gm, 0, sizeof gm);
            gm.m = n_i, gm.k = w, gm.n = Nout;
            gm.a_rowmajor = 1, gm.lda = w;
            gm.b_rowmajor = g->b_rowmajor, gm.ldb = g->ldb;
            gm.ldc = Nout, gm.batch = 1, gm.alpha = 1.f;
            int node = s->node, label = s->label, order = s->order;
            memset(s, 0, sizeof *s);
            s->kind = MC_GEMM, s->node = node, s->label = label, s->order = order;
            s->gemm = gm;
            s->t[0] = tref2(by, 0, n_i, Nout, Nout);
            s->t[1] = tref2(src.buf, src.off, n_i, w, w);
            s->t[2] = Bs;
            s->t[3] = (mc_tref){.buf = -1};
            s->nt = 3;
            ys[r] = mc_nhwc_f16(by, src.dims[0], Nout, src.dims[2], src.dims[3]);
        }
        {
            mc_step *s = &p->steps[w0];
            s->t[0] = tref2(bc0, 0, M, wd0, wd0);
            s->gemm.ldc = wd0;
        }
        {
            mc_step *Fm = &p->steps[f];
            mc_tref B0 = Bw;
            B0.off += c0 * Bw.strides[0];
            B0.dims[0] = wd0;
            Fm->t[1] = tref2(bc0, 0, M, wd0, wd0);
            Fm->t[2] = B0;
            if (!Fm->gemm.has_bias) Fm->t[3] = (mc_tref){.buf = -1};
            Fm->t[4] = tref2(bsum, 0, M, Nout, Nout);
            Fm->nt = 5;
            Fm->gemm.k = wd0;
            Fm->gemm.lda = wd0;
            Fm->gemm.beta = 1.f;
        }
        int node = p->steps[f].node, label = p->steps[f].label;
        mc_step *rsum = mc_insert_step(p, f);
        if (!rsum) return mt_fail(MTMI_ERR_NOMEM, "out of memory"), -1;
        rsum->kind = MC_RESIZE_SUM;
        rsum->node = node, rsum->label = label;
        rsum->t[0] = mc_nhwc_f16(bsum, N, Nout, OH, OW);
        for (int r = 0; r < nres; r++) rsum->t[1 + r] = ys[r];
        rsum->nt = 1 + nres;
        rsum->u.resize.coord = coord;
        made++;
        f++; /* F moved to f + 1 */
    }
    return made;
}
