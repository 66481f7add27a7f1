/* Fusion pass: mtmi.QUpsampleSum into its level-0 GEMM (qconv.cu,
 * mtk_qconv.ups_n).
 *
 * The reassociated INT8 fuse conv (src/quant/reassoc.c, tuning
 * int8_reassoc) leaves, per map, a 1x1 QConv that stores its exact sums as
 * int32, and one MC_QUPSUM step that upsamples and adds them.  Level 0 has
 * the output's size: its sums (256x256x128 in the seg head: 32 MB) would
 * be written by its GEMM and read back at once.  Here that
 * GEMM adds the lower levels' upsampled sums in its epilogue instead and
 * runs QUpsampleSum's epilogue (bias Bq, multipliers ldexpf(Mult, -8), its
 * activation and y_scale) into the QUpsampleSum's output: the same
 * integers summed, so the same bits (qkernels.h).  The fused
 * step takes the MC_QUPSUM step's place (the lower levels are made by
 * then); qchain, after this pass, can then make it write the classifier's
 * int8 input.
 *
 * Matched: an MC_QUPSUM step whose level 0 is exactly the output of an
 * MC_QCONV step of the same part (1x1, stride 1, no padding, no upsampling
 * sources, no int8 output), that output read by no other step, the QConv's
 * inputs not written in between, and lower levels that q_ups_ok takes
 * (dense int32 NHWC, even channel strides).
 *
 * On by default (MTMI_CUDA_NO_FUSE=qupsum turns it off); it only meets
 * MC_QUPSUM steps, which only MTMI_INT8_REASSOC=1 makes. */
#include <string.h>

#include "cuda/cuda_internal.h"
#include "cuda/qkernels.h"

static int plain_1x1(const mtk_qconv *q) {
    return q->KH == 1 && q->KW == 1 && q->sh == 1 && q->sw == 1 && q->ph == 0 && q->pw == 0 && !q->y_int8 && !q->ups_n;
}

/* the lower levels as the epilogue reads them, geometry only */
static int lower_levels(const mc_step *u, const mc_tref *y, mtk_qconv *q) {
    const int L = u->nt - 3;
    if (L < 2 || L - 1 > MTK_QUPS_MAX) return -1;
    for (int l = 1; l < L; l++) {
        mtk_qups_level *v = &q->ups[l - 1];
        if (mc_qups_level(&u->t[3 + l], NULL, (int)y->dims[2], (int)y->dims[3], v) || v->ldp % 2 || v->s0 % 2 || v->ldp < q->CO)
            return -1;
    }
    return L - 1;
}

static int fuse_one(mc_plan *p, int iu) {
    mc_step *u = &p->steps[iu];
    const mc_tref *y = &u->t[0], *p0 = &u->t[3];
    const int ip = mc_last_user_before(p, p0->buf, iu);
    if (ip < 0) return 0;
    mc_step *s = &p->steps[ip];
    if (s->kind != MC_QCONV || !s->obj || s->nt != 6 || s->label != u->label || !mc_same_view(&s->t[0], p0)) return 0;
    const mtk_qconv *q0 = s->obj;
    /* the output as the GEMM writes it: NHWC, pixels ldy apart, rows dense */
    if (!plain_1x1(q0) || y->rank != 4 || y->strides[1] != 1 || y->strides[2] != y->strides[3] * y->dims[3] ||
        q0->N != y->dims[0] || q0->CO != y->dims[1] || q0->OH != y->dims[2] || q0->OW != y->dims[3] ||
        (y->st != MTMI_FLOAT && y->st != MTMI_FLOAT16))
        return 0;
    if (mc_buf_used_elsewhere(p, p0->buf, ip, iu) || mc_written_between(p, ip, iu, &s->t[1], 2)) return 0;
    mtk_qconv q = *q0;
    const int nl = lower_levels(u, y, &q);
    if (nl < 1 || 6 + nl > MC_MAX_T) return 0;
    q.ups_n = nl;
    q.y_i32 = 0; /* the epilogue now: QUpsampleSum's */
    q.act = (int)u->u.qups.act;
    q.y_scale = u->u.qups.y_scale;
    q.ldy = y->strides[3];
    q.ys0 = y->strides[0];
    memcpy(s->obj, &q, sizeof q);
    /* the GEMM, moved to the upsample-sum's place: QUpsampleSum's output,
     * bias and multipliers; the lower levels after its own operands */
    mc_step f = *s;
    f.order = u->order;
    f.t[0] = *y;
    f.t[4] = u->t[1];
    f.t[5] = u->t[2];
    for (int l = 0; l < nl; l++) f.t[6 + l] = u->t[4 + l];
    f.nt = 6 + nl;
    s->obj = NULL; /* owned by the moved step */
    s->kind = MC_DROPPED;
    *u = f;
    return 1;
}

int mc_fuse_qupsum(mc_plan *p) {
    int made = 0;
    for (int i = 0; i < p->nsteps; i++)
        if (p->steps[i].kind == MC_QUPSUM) made += fuse_one(p, i);
    return made;
}
