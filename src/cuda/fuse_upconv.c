/* Fusion pass: bilinear 2x upsample (MC_RESIZE_CAT of a concat, or a plain
 * MC_RESIZE) -> 3x3 convolution (MC_CUDNN) as one MC_UPCONV step (kernel
 * mtk_upconv3x3, upconv.cu).
 *
 * The depth head upsamples cat(feat, x) and convolves it three times a
 * frame; the upsampled tensor is the largest of the head (50 MB at the last
 * scale), written once and read once.  When the conv is its only reader, the
 * fused kernel builds the upsampled tile in shared memory from the
 * low-resolution sources instead.  The cuDNN step has no library objects yet
 * (mc_finalize_step runs after the passes), so the steps are just rewritten.
 * A conv planned as MC_CONVD (no cuDNN in the build) fuses the same way.
 *
 * The MC_UPCONV step: t[0] the conv's output, t[1] the weights [CO][3][3][C]
 * (FP16, as plan_conv packs them for cuDNN), t[2] the bias (buf -1: none),
 * t[3 ..] the sources (channel order of the concat); u.upconv.nsrc the
 * number of sources; conv as the conv step's (act, CO, N, ...). */

#include "core/core.h"
#include "cuda/cuda_internal.h"

/* The upsample: linear, half_pixel (or pytorch_half_pixel: the same for an
 * output longer than 1), scale exactly 2 on both axes; its FP16 sources in
 * src[], their count returned (0: not a candidate). */
static int upsample_sources(const mc_step *s, mc_tref *src) {
    if (s->kind != MC_RESIZE_CAT && s->kind != MC_RESIZE) return 0;
    if (s->u.resize.mode != 1 || (s->u.resize.coord != 0 && s->u.resize.coord != 1) || s->u.resize.sh != 2.f || s->u.resize.sw != 2.f) return 0;
    const mc_tref *y = &s->t[0];
    if (y->rank != 4 || y->st != MTMI_FLOAT16) return 0;
    const int ns = s->nt - 1;
    if (ns < 1 || ns > UPC_MAXSRC || (s->kind == MC_RESIZE && ns != 1)) return 0;
    const int64_t N = y->dims[0], IH = y->dims[2] / 2, IW = y->dims[3] / 2;
    if (y->dims[2] != 2 * IH || y->dims[3] != 2 * IW || IH < 1 || IW < 1) return 0;
    int64_t at = 0;
    for (int k = 0; k < ns; k++) {
        const mc_tref *x = &s->t[1 + k];
        if (!mc_f16_c8_view(x, N) || x->dims[2] != IH || x->dims[3] != IW) return 0;
        if (s->kind == MC_RESIZE_CAT && s->u.resize.at[k] != at) return 0; /* concat order, no gaps */
        at += x->dims[1];
        src[k] = *x;
    }
    return at == y->dims[1] ? ns : 0;
}

int mc_match_upsample_conv(const mc_plan *p, int i, mc_tref *src, int *conv) {
    const mc_step *rs = &p->steps[i];
    const int ns = upsample_sources(rs, src);
    if (!ns) return 0; /* (a dropped step is no resize) */
    const int ub = rs->t[0].buf;
    /* the first later step touching the upsampled tensor must be a 3x3
     * cuDNN conv reading exactly it, and nothing else may use it */
    int j = -1;
    for (int k = i + 1; k < p->nsteps && j < 0; k++)
        for (int q = 0; q < p->steps[k].nt; q++)
            if (p->steps[k].t[q].buf == ub) j = k;
    if (j < 0) return 0;
    const mc_step *cs = &p->steps[j];
    const mc_conv *c = &cs->conv;
    /* cuDNN, or the direct kernel where cuDNN is absent (same weight packing) */
    if ((cs->kind != MC_CUDNN && cs->kind != MC_CONVD) || cs->label != rs->label || !mc_same_view(&cs->t[1], &rs->t[0])) return 0;
    if (c->KH != 3 || c->KW != 3 || c->sh != 1 || c->sw != 1 || c->ph != 1 || c->pw != 1 || c->ph2 != 1 || c->pw2 != 1 ||
        c->dh != 1 || c->dw != 1 || c->groups != 1 || c->N != rs->t[0].dims[0] || c->C != rs->t[0].dims[1] ||
        c->H != rs->t[0].dims[2] || c->W != rs->t[0].dims[3] || c->OH != c->H || c->OW != c->W)
        return 0;
    if (mc_buf_used_elsewhere(p, ub, i, j)) return 0;
    /* weights [CO][3][3][C] and bias [CO] in FP16 */
    const mc_tref *w = &cs->t[2], *b = c->has_bias ? &cs->t[3] : NULL;
    if (w->st != MTMI_FLOAT16 || mc_numel(w) != (int64_t)c->CO * 9 * c->C || w->off % 8) return 0;
    if (b && (cs->nt < 4 || b->st != MTMI_FLOAT16 || mc_numel(b) != c->CO || b->off % 2)) return 0;
    /* output: FP16 channels-last, even strides (a channel slice is fine) */
    const mc_tref *y = &cs->t[0];
    if (y->rank != 4 || y->st != MTMI_FLOAT16 || y->dims[1] != c->CO || y->dims[2] != c->OH || y->dims[3] != c->OW ||
        y->strides[1] != 1 || y->strides[0] % 2 || y->strides[2] % 2 || y->strides[3] % 2 || y->off % 2)
        return 0;
    /* the fused steps run at the conv's place and read the sources there:
     * no step in between may write them */
    if (mc_written_between(p, i, j, src, ns)) return 0;
    *conv = j;
    return ns;
}

int mc_fuse_upconv(mc_plan *p) {
    int made = 0;
    for (int i = 0; i < p->nsteps; i++) {
        mc_tref src[UPC_MAXSRC];
        int j;
        const int ns = mc_match_upsample_conv(p, i, src, &j);
        if (!ns) continue;
        mc_step *cs = &p->steps[j];
        const mc_conv *c = &cs->conv;
        int csrc[UPC_MAXSRC];
        for (int k = 0; k < ns; k++) csrc[k] = (int)src[k].dims[1];
        if (!mtk_upconv3x3_supported(ns, csrc, c->CO, c->act)) continue;
        /* Only where the fused kernel beats resize + cuDNN.  Measured on an
         * H100 (test_cuda_upconv --bench, 2026-11-25; the depth head's three
         * cases): 64+32 -> CO 32 at 512x512: 80 us against 100; 160+64 ->
         * CO 64 at 256x256: 73 against 74; 256+160 -> CO 160 at 128x128: 95
         * against 79.  So: narrow outputs only, where cuDNN's tiles waste
         * most of the tensor cores. */
        if (c->CO > 32) continue;
        const mc_tref *w = &cs->t[2], *b = c->has_bias ? &cs->t[3] : NULL, *y = &cs->t[0];
        mc_step fused = mc_step_like(cs, MC_UPCONV);
        fused.conv = *c;
        fused.t[0] = *y;
        fused.t[1] = *w;
        fused.t[2] = b ? *b : (mc_tref){.buf = -1};
        for (int k = 0; k < ns; k++) fused.t[3 + k] = src[k];
        fused.nt = 3 + ns;
        fused.u.upconv.nsrc = ns;
        *cs = fused;
        p->steps[i].kind = MC_DROPPED;
        made++;
    }
    return made;
}
