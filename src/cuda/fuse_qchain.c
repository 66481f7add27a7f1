/* Fusion pass: INT8 between two QConvs (MC_QCONV steps, qconv.cu).
 *
 * A QConv whose output has a scale (y_scale > 0) ends its epilogue with
 * quantize(y, s_y) and stores q * s_y as a float; when the next QConv reads
 * that tensor with x_scale == s_y, its quantize pass reads it back and
 * makes q again (|q| <= 128: q * s_y / s_y rounds to q, in FP16 storage
 * too, as plan_conv.c notes).  Here the producer stores the int8 q straight
 * into the consumer's int8 NHWC input (0 in its padding channels) and the
 * consumer skips its quantize pass: one launch and a float round trip of
 * the tensor fewer, the same bits.  In the MTMI heads: the seg head's fuse
 * conv -> classifier, and the depth head's last 3x3 conv -> its 1x1 output
 * conv (256x256x128 and 512x512x32: 27 and 26 us of quantize on an H100,
 * docs/PERFORMANCE.md).
 *
 * Matched: QConv steps P then C (any steps between them) where C's input
 * is exactly P's output (the same view), a dense NHWC tensor
 * (pixels CO apart, images OH*OW*CO apart) that no other step uses and that
 * is no stage output, P's y_scale equal to C's x_scale (bit for bit), and
 * the geometry of P's output that of C's input, both in one part.
 *
 * On by default (tuning cuda_no_fuse=qchain, MTMI_CUDA_NO_FUSE=qchain turns
 * it off).  Measured on an H200 (2026-12-07, scripts/gpu_int8.sh 50, one
 * call): test_cuda_int8's whole-model plan with and without it, 0 elements
 * differ; y_int8 at the kernel, 182 node x tile-configuration runs, 0 bytes
 * differ; CUDA-graph replays seg head 0.412 -> 0.388 ms, depth head 0.667
 * -> 0.647 ms (predicted ~50 us of the two heads: measured 44). */

#include <string.h>

#include "cuda/cuda_internal.h"
#include "cuda/qkernels.h"

static int dense_output(const mtk_qconv *q) {
    return q->ldy == q->CO && q->ys0 == (int64_t)q->OH * q->OW * q->CO;
}

/* C consumes P's output as its own int8 input: geometry and scale agree */
static int chainable(const mtk_qconv *P, const mtk_qconv *C) {
    return P->y_scale > 0.0f && mc_same_float_bits(P->y_scale, C->x_scale) && !P->y_int8 && !C->x_int8 && dense_output(P) && P->N == C->N &&
           P->OH == C->H && P->OW == C->W && P->CO == C->C && P->COp == C->Cp;
}

int mc_fuse_qchain(mc_plan *p) {
    int made = 0;
    for (int ic = 1; ic < p->nsteps; ic++) {
        mc_step *c = &p->steps[ic];
        if (c->kind != MC_QCONV || !c->obj) continue;
        const int ip = mc_last_user_before(p, c->t[1].buf, ic);
        if (ip < 0) continue;
        mc_step *s = &p->steps[ip];
        /* one part (encoder, a head): parts replay as separate graphs */
        if (s->kind != MC_QCONV || !s->obj || s->label != c->label || !mc_same_view(&s->t[0], &c->t[1])) continue;
        mtk_qconv *qp = s->obj, *qc = c->obj;
        if (!chainable(qp, qc) || mc_buf_used_elsewhere(p, s->t[0].buf, ip, ic)) continue;
        /* P writes C's int8 input: [N][OH][OW][COp] */
        qp->y_int8 = 1;
        qp->ldy = qc->Cp;
        qp->ys0 = (int64_t)qc->H * qc->W * qc->Cp;
        qc->x_int8 = 1;
        s->t[0] = c->t[2];
        made++;
    }
    return made;
}
