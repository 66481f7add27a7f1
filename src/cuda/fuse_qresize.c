/* Fusion pass: the int8 input of a QConv written directly by the steps that
 * make its FP16 input (MC_QCONV steps, issue 15: "resize and concat on int8
 * data ... no separate quantize pass over a full-resolution tensor").
 *
 * In the INT8 heads a QConv's input is often a tensor that other steps
 * write piece by piece: the seg head's fuse conv reads the concat of four
 * branches (256x256x512 FP16: 64 MB read by its quantize pass, ~64-97 us on
 * an H100), of which three are bilinear resizes (MC_RESIZE into a channel
 * slice) and one a QConv's own output (MC_QCONV into a slice); the depth
 * head's 3x3 convs read a resize of a concat (MC_RESIZE_CAT over the whole
 * tensor; 512x512x96 at the last one).  Here every such writer stores the
 * int8 codes instead (the resizes through mtk_resize_q8 / mtk_resize_cat_q8:
 * each FP16 value the FP16 kernel would have stored, then quantize(v, s_x);
 * the QConvs as in fuse_qchain.c: q itself, since q * s_y / s_y rounds back
 * to q), into the consumer's int8 NHWC buffer at the same element offsets,
 * and the consumer skips its quantize pass.  The same bits by construction;
 * test_cuda_int8 compares the whole model with and without the pass.
 *
 * Matched: a QConv C (input not already int8) whose FP16 input X is a whole
 * dense NHWC arena tensor with C == Cp channels (no padding channels to
 * zero), written only by steps before C, all in C's part, each of them
 *   - MC_RESIZE, bilinear, into a channel slice of X at a multiple of 8
 *     channels, with an FP16 input that mtk_resize sends to its 8-channel
 *     kernel (mtk_resize_q8_supported, 16-byte aligned views), or
 *   - MC_RESIZE_CAT over the whole of X, or
 *   - MC_QCONV with an output scale, no padding channels (CO == COp), its
 *     output a channel slice of X of C's geometry: with C's input scale it
 *     stores q itself (as fuse_qchain.c), with another one y2_scale asks
 *     its epilogue for quantize(fp16(q * s_y), s_x), what the FP16 store
 *     and C's quantize pass made (the seg head's convs.0 branch: its
 *     concat's 54 us quantize pass over 64 MB, H100 ncu 2026-12-07):
 *     seg head 0.228 -> 0.199 ms, 0 elements differ (H100, 2026-12-07,
 *     gpu_int8.sh); MTMI_CUDA_NO_FUSE=qrescale switches that kind off,
 * whose slices tile X's channels exactly, and read by no step but C.
 *
 * On by default since its measurement (H100, 2026-12-07, gpu_int8.sh):
 * 0 elements differ from the plan without it, depth head 0.511 -> 0.466
 * ms, seg 0.301 -> 0.300; MTMI_CUDA_NO_FUSE=qresize switches it off. */

#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_internal.h"
#include "cuda/kernels.h"
#include "cuda/qkernels.h"

#define QR_MAXW 16

typedef struct {
    int step;
    int64_t c0, nc; /* the writer's channels of X */
} qr_writer;

static int dense_nhwc(const mc_tref *t) {
    return t->rank == 4 && t->strides[1] == 1 && t->strides[3] == t->dims[1] && t->strides[2] == t->dims[3] * t->dims[1] &&
           t->strides[0] == t->dims[2] * t->dims[3] * t->dims[1];
}

/* V is a channel slice of X (same batch and pixels, X's strides): its
 * first channel, or -1 */
static int64_t slice_of(const mc_tref *V, const mc_tref *X) {
    if (V->buf != X->buf || V->st != X->st || V->rank != 4) return -1;
    for (int d = 0; d < 4; d++)
        if (V->strides[d] != X->strides[d] || (d != 1 && V->dims[d] != X->dims[d])) return -1;
    const int64_t c0 = V->off - X->off;
    return c0 >= 0 && c0 + V->dims[1] <= X->dims[1] ? c0 : -1;
}

/* the writer kinds above; its channel range in *w, 0 if not one */
static int writer_ok(const mc_plan *p, const mc_step *s, const mc_tref *X, const mtk_qconv *qc, qr_writer *w) {
    for (int k = 1; k < s->nt; k++)
        if (s->t[k].buf == X->buf) return 0; /* reads X too */
    const mc_tref *V = &s->t[0];
    const int64_t c0 = slice_of(V, X);
    if (c0 < 0) return 0;
    w->c0 = c0;
    w->nc = V->dims[1];
    if (s->kind == MC_RESIZE) {
        const mc_tref *x = &s->t[1];
        /* what makes mtk_resize take its 8-channel FP16 kernel (offsets in
         * elements: buffers are 256-byte aligned, so off % 8 is 16 bytes) */
        return s->u.resize.mode == 1 && p->f16 && x->st == MTMI_FLOAT16 && V->st == MTMI_FLOAT16 && V->dims[1] > 1 &&
               c0 % 8 == 0 && V->off % 8 == 0 && x->off % 8 == 0 && x->rank == 4 &&
               mtk_resize_q8_supported((const void *)0, x->strides, V->strides, (int)V->dims[1], 1, 1);
    }
    if (s->kind == MC_RESIZE_CAT) return c0 == 0 && V->dims[1] == X->dims[1];
    if (s->kind == MC_QCONV && s->obj) {
        const mtk_qconv *qp = s->obj;
        /* another output scale than C's input scale: the rescaling store
         * (y2_scale) unless switched off (MTMI_CUDA_NO_FUSE=qrescale) */
        const int same = mc_same_float_bits(qp->y_scale, qc->x_scale);
        if (!same && !mc_fuse_enabled(p, "qrescale")) return 0;
        return qp->y_scale > 0.0f && !qp->y_int8 && qp->CO == qp->COp &&
               qp->CO == V->dims[1] && qp->N == qc->N && qp->OH == qc->H && qp->OW == qc->W && qp->ldy == X->strides[3] &&
               qp->ys0 == X->strides[0];
    }
    return 0;
}

static int by_channel(const void *a, const void *b) {
    const qr_writer *x = a, *y = b;
    return x->c0 < y->c0 ? -1 : x->c0 > y->c0;
}

/* the writers of X (steps before ic), 0 if anything else touches X.buf */
static int find_writers(const mc_plan *p, int ic, const mc_tref *X, const mtk_qconv *qc, qr_writer *w) {
    int n = 0;
    const int label = p->steps[ic].label;
    for (int j = 0; j < p->nsteps; j++) {
        if (j == ic || !mc_step_uses(&p->steps[j], X->buf)) continue;
        if (j > ic || n == QR_MAXW || p->steps[j].label != label || !writer_ok(p, &p->steps[j], X, qc, &w[n])) return 0;
        w[n++].step = j;
    }
    if (!n) return 0;
    qsort(w, (size_t)n, sizeof *w, by_channel);
    int64_t next = 0; /* the slices tile X's channels */
    for (int k = 0; k < n; k++) {
        if (w[k].c0 != next) return 0;
        next += w[k].nc;
    }
    return next == X->dims[1] ? n : 0;
}

int mc_fuse_qresize(mc_plan *p) {
    int made = 0;
    for (int ic = 1; ic < p->nsteps; ic++) {
        mc_step *c = &p->steps[ic];
        if (c->kind != MC_QCONV || !c->obj) continue;
        mtk_qconv *qc = c->obj;
        const mc_tref X = c->t[1], XQ = c->t[2];
        if (qc->x_int8 || qc->C != qc->Cp || X.st != MTMI_FLOAT16 || X.buf < 0 || p->bufs[X.buf].kind != MC_ARENA ||
            !dense_nhwc(&X) || X.off % 8 || XQ.off % 8 || X.dims[0] != qc->N || X.dims[1] != qc->C || X.dims[2] != qc->H ||
            X.dims[3] != qc->W)
            continue;
        qr_writer w[QR_MAXW];
        const int n = find_writers(p, ic, &X, qc, w);
        if (!n) continue;
        for (int k = 0; k < n; k++) {
            mc_step *s = &p->steps[w[k].step];
            /* the same element offsets in the int8 [N][H][W][Cp] buffer */
            mc_tref v = s->t[0];
            v.buf = XQ.buf;
            v.st = MTMI_INT8;
            v.off = XQ.off + (s->t[0].off - X.off);
            s->t[0] = v;
            if (s->kind == MC_QCONV) { /* ldy, ys0: already X's = the int8 buffer's */
                mtk_qconv *qp = s->obj;
                qp->y_int8 = 1;
                /* its own output scale is not C's input scale: requantize
                 * the FP16 value it stored (the seg head's first branch) */
                if (!mc_same_float_bits(qp->y_scale, qc->x_scale)) qp->y2_scale = qc->x_scale;
            }
            else s->u.resize.qscale = qc->x_scale;
        }
        qc->x_int8 = 1;
        /* the FP16 input is no longer written or read: no buffer for it
         * (the depth head's 512x512x96 one alone is 50 MB) */
        c->t[1].buf = -1;
        made++;
    }
    return made;
}
