/* Fusion pass: the encoder hands its features to the INT8 heads quantized.
 *
 * Each of the MTMI encoder's four features is the output of a stage's last
 * LayerNorm, and each is read by one 1x1 QConv in each head (seg convs.i,
 * depth convs.i) with the same input scale, the feature tensor's in the
 * calibration cache.  Without this pass every one of those QConvs runs its
 * own quantize pass over the FP16 feature: eight launches that re-read the
 * features (~38 us a frame on an H100, 2026-12-07), the same codes made
 * twice.  Here the LayerNorm kernel, which holds each normalized pixel in
 * registers, also stores its int8 codes (mtk_layernorm_q8: q_quant8 of the
 * FP16 values it stores, the quantize pass's own function, so the same
 * bytes), into the first reader's int8 input buffer; every reader with that
 * scale reads it there and skips its pass (x_int8).  As the original
 * deployment did: the accelerators got int8 features.
 *
 * Matched: an MC_LN step (FP16, C % 8 == 0, C <= 256: the vectorized
 * kernel; no second LayerNorm or projection folded in) whose output, read
 * as an NHWC image, is exactly the input view of a QConv (t[1]) with
 * Cp == C and no int8 input yet, and nothing writes that view between the
 * two.  The LN's int8 copy takes the first such QConv's buffer t[2] and
 * scale; later QConvs of the same view and the same scale bits share it;
 * one with another scale keeps its pass.  The LN may be in the encoder's
 * part and the QConvs in the heads': parts replay in that order and the
 * memory planner keeps the int8 buffer alive from the LN to its last
 * reader.
 *
 * In a pipeline the QConvs are in the head stages' plans and the encoder's
 * plan has instead a quantize step (mtmi.QuantizeNHWC, put there by
 * src/quant/handover.c) writing the stage's int8 output: the LN writes that
 * output itself and the step goes.
 *
 * The rewritten LN step: u.ln.q8 = 1, q8_scale, t[12] the int8 buffer; the
 * unused slots t[3..11] repeat operands the step already has (as
 * fuse_im2col.c does), so the planner sees no other new buffer.
 *
 * On by default; MTMI_CUDA_NO_FUSE=qln turns it off (test_cuda_int8
 * compares the whole model with and without it, bit for bit). */

#include "cuda/cuda_internal.h"
#include "cuda/qkernels.h"

/* x (a QConv's or a quantize step's input view [N, C, H, W]) is the LN
 * output's rows read as an NHWC image: strides (H*W*C, 1, W*C, C) on the
 * dimensions longer than 1 */
static int nhwc_of_ln(const mc_tref *x, const mc_step *ln) {
    const mc_tref *y = &ln->t[0];
    if (x->buf != y->buf || x->off != y->off || x->st != MTMI_FLOAT16 || y->st != MTMI_FLOAT16 || x->rank != 4) return 0;
    const int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    if (ln->u.ln.C != C || ln->u.ln.rows != N * H * W || !mc_is_contig(y) || mc_numel(y) != ln->u.ln.rows * ln->u.ln.C) return 0;
    const int64_t e[4] = {H * W * C, 1, W * C, C};
    for (int d = 0; d < 4; d++)
        if (x->dims[d] != 1 && x->strides[d] != e[d]) return 0;
    return 1;
}

/* the LN step before step k whose output t[0] lies in buffer buf, or -1 */
static int ln_writer_before(const mc_plan *p, int buf, int k) {
    for (int j = k - 1; j >= 0; j--) {
        const mc_step *s = &p->steps[j];
        if (s->kind == MC_DROPPED || s->nt < 1 || s->t[0].buf != buf) continue;
        return s->kind == MC_LN ? j : -1;
    }
    return -1;
}

/* the LN kernels that can store the int8 copy in the same pass */
static int ln_can_quantize(const mc_step *ln) {
    const mc_ln_args *a = &ln->u.ln;
    return !a->pair && !a->proj && ln->t[0].st == MTMI_FLOAT16 && a->C % 8 == 0 && a->C <= 256 && a->rows > 0;
}

/* Readers of an LN output that want its int8 codes: a QConv (its input
 * t[1], the codes into its buffer t[2]), or a quantize step (mtmi.QuantizeNHWC,
 * the features a pipeline's encoder hands to INT8 heads: t[1] in, the
 * codes out as t[0], usually the stage's output).  The scale, or 0. */
static float wants_codes(const mc_step *c) {
    if (c->kind == MC_QUANT) return c->u.quant.scale;
    if (c->kind != MC_QCONV || !c->obj || c->nt != 6) return 0.0f; /* nt > 6: makes its own input (fuse_qupconv.c) */
    const mtk_qconv *q = c->obj;
    return q->x_int8 || q->C != q->Cp ? 0.0f : q->x_scale;
}

int mc_fuse_qln(mc_plan *p) {
    int made = 0;
    for (int ic = 1; ic < p->nsteps; ic++) {
        mc_step *c = &p->steps[ic];
        const float scale = wants_codes(c);
        if (!(scale > 0.0f)) continue;
        const int il = ln_writer_before(p, c->t[1].buf, ic);
        if (il < 0) continue;
        mc_step *ln = &p->steps[il];
        if (!ln_can_quantize(ln) || !nhwc_of_ln(&c->t[1], ln) || mc_written_between(p, il, ic, &c->t[1], 1)) continue;
        const mc_tref codes = c->kind == MC_QUANT ? c->t[0] : c->t[2];
        if (c->kind == MC_QUANT && (codes.st != MTMI_INT8 || !mc_is_contig(&codes))) continue;
        if (ln->u.ln.q8) {
            /* a reader before this one gave the LN its copy: a QConv of the
             * same scale reads it there (a quantize step's output is a
             * tensor of its own: it keeps its pass) */
            if (c->kind != MC_QCONV || !mc_same_float_bits(ln->u.ln.q8_scale, scale)) continue;
            c->t[2] = ln->t[12];
        } else {
            const int ln_nt = ln->nt;
            if (!ln->u.ln.has_beta) ln->t[3] = ln->t[2];  /* no beta */
            if (!ln->u.ln.has_res) ln->t[4] = ln->t[1];   /* no residual */
            if (!ln->u.ln.keep_sum) ln->t[5] = ln->t[0];  /* no sum (t[5] may name a dropped Add's buffer) */
            for (int k = ln_nt > 6 ? ln_nt : 6; k < 12; k++) ln->t[k] = ln->t[0];
            ln->t[12] = codes;
            ln->nt = 13;
            ln->u.ln.q8 = 1;
            ln->u.ln.q8_scale = scale;
        }
        if (c->kind == MC_QUANT) c->kind = MC_DROPPED;
        else ((mtk_qconv *)c->obj)->x_int8 = 1;
        made++;
    }
    return made;
}
