/* Fusion pass: the bilinear upsample that writes a 3x3 QConv's int8 input
 * (an MC_RESIZE_CAT or MC_RESIZE that fuse_qresize.c made store int8) done
 * inside the conv (MC_QCONV with sources: mtk_qconv_upconv, qconv.cu).
 *
 * The depth head upsamples cat(feat, x) 2x and convolves it, four times a
 * frame; after fuse_qresize the upsample stores the conv's int8 input
 * (512x512x96 = 25 MB at the last scale) and the conv reads it back.  The
 * fused kernel builds each block's input halo from the low-resolution FP16
 * sources instead, with the resize kernels' own bilinear code and the same
 * quantize, so every int8 code, every int32 sum and every output is what
 * the two steps gave (test_cuda_int8 compares the model with and without
 * this pass, and the kernel against resize + GEMM).
 *
 * Matched, after qresize: a QConv C whose int8 input XQ (t[2], x_int8) is
 * written by exactly one step R, an MC_RESIZE_CAT or MC_RESIZE with
 * qscale > 0 over all of XQ, bilinear, in C's part, with FP16 channels-last
 * sources (strides and offsets multiples of 8 channels) in concat order;
 * XQ read by no step but C; no step between R and C writing a source; and
 * C's geometry one the halo kernel takes (mtk_qconv_upconv_supported: 3x3,
 * stride 1, padding 1, OW % 16 == 0, C == Cp).
 *
 * Opt-in (fuse.c): measured slower on an H100 (2026-12-07: depth head
 * 0.494 ms against 0.288), because every output-channel tile of the conv
 * makes its halo's upsample again (up to 8 times at 64x64) with loads in
 * the K loop; it pays only once a block owns all output channels.
 *
 * The fused step stays MC_QCONV: t[0..5] as plan_conv.c makes them (t[1]
 * and t[2] without buffers: neither the FP16 input nor its int8 copy is
 * made any more), then t[6 ..] the sources; u.resize a copy of R's
 * (coord, sh, sw, at). */

#include <string.h>

#include "cuda/cuda_internal.h"
#include "cuda/qkernels.h"

#define QU_MAXSRC 4

/* R's sources if it is the int8 upsample of all of C's input, else 0 */
static int upsample_sources(const mc_step *r, const mtk_qconv *q, mc_tref *src) {
    if ((r->kind != MC_RESIZE_CAT && r->kind != MC_RESIZE) || r->u.resize.mode != 1 || !(r->u.resize.qscale > 0.0f))
        return 0;
    const int ns = r->nt - 1;
    if (ns < 1 || ns > QU_MAXSRC || (r->kind == MC_RESIZE && ns != 1)) return 0;
    const mc_tref *y = &r->t[0];
    if (y->rank != 4 || y->dims[0] != q->N || y->dims[1] != q->C || y->dims[2] != q->H || y->dims[3] != q->W) return 0;
    int64_t at = 0;
    for (int k = 0; k < ns; k++) {
        const mc_tref *x = &r->t[1 + k];
        if (!mc_f16_c8_view(x, q->N) || x->dims[2] != r->t[1].dims[2] || x->dims[3] != r->t[1].dims[3]) return 0;
        if (r->kind == MC_RESIZE_CAT && r->u.resize.at[k] != at) return 0; /* concat order, no gaps */
        at += x->dims[1];
        src[k] = *x;
    }
    return at == q->C ? ns : 0;
}

int mc_fuse_qupconv(mc_plan *p) {
    int made = 0;
    for (int ic = 1; ic < p->nsteps; ic++) {
        mc_step *c = &p->steps[ic];
        if (c->kind != MC_QCONV || !c->obj || c->nt != 6) continue;
        mtk_qconv *q = c->obj;
        if (!q->x_int8 || !mtk_qconv_upconv_supported(q)) continue;
        const int xb = c->t[2].buf;
        /* the one writer of XQ: the last earlier step using it */
        int ir = -1;
        for (int k = ic - 1; k >= 0 && ir < 0; k--)
            if (mc_step_uses(&p->steps[k], xb)) ir = k;
        if (ir < 0) continue;
        const mc_step *r = &p->steps[ir];
        mc_tref src[QU_MAXSRC];
        const int ns = upsample_sources(r, q, src);
        if (!ns || r->label != c->label || r->t[0].buf != xb || r->t[0].off != c->t[2].off) continue;
        if (mc_buf_used_elsewhere(p, xb, ir, ic)) continue;
        if (mc_written_between(p, ir, ic, src, ns) || 6 + ns > MC_MAX_T) continue;
        for (int j = 0; j < ns; j++) c->t[6 + j] = src[j];
        c->nt = 6 + ns;
        c->t[2].buf = -1; /* the int8 upsample is never stored: no buffer */
        c->u.resize = r->u.resize;
        if (r->kind == MC_RESIZE) c->u.resize.at[0] = 0;
        p->steps[ir].kind = MC_DROPPED;
        made++;
    }
    return made;
}
