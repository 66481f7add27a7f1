/* Fusion pass: bilinear 2x upsample (MC_RESIZE_CAT of a concat, or a plain
 * MC_RESIZE) -> 3x3 cuDNN convolution, rewritten as the same convolution at
 * the LOW resolution with four output phases (polyconv.cu explains the
 * algebra):
 *
 *   MC_POLYPAD  (at the resize's place) t[0] the concat of t[1..] padded by
 *               one replicated pixel, FP16 [N][IH + 2][IW + 2][C];
 *   MC_CUDNN    (the conv, rewritten) C -> 4 CO, 3x3, no padding, no bias or
 *               activation, weights composed once here
 *               (mtk_poly_compose_weights), output t[0] FP16 [N][IH][IW][4 CO];
 *   MC_POLYFIN  (inserted after it) t[0] the conv's output as before, t[1]
 *               the phases, t[2] the original weights, t[3] the bias (buf
 *               -1: none), t[4..] the sources; conv as the original conv's.
 *
 * Same FLOPs as the upsampled convolution, but an ordinary convolution that
 * cuDNN runs at its full rate, over a 4x smaller input, and the upsampled
 * concat (50 MB at the depth head's last scale) is never written.  The
 * pass needs cuDNN (an MC_CUDNN step) and the weights' host copy. */

#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/cuda_internal.h"
#include "cuda/kernels.h"
#include "cuda/plan_int.h"

/* 16-byte stores of the finishing kernel: the output's strides and offset
 * in whole 8-channel chunks */
static int out_ok(const mc_tref *y) {
    return y->strides[0] % 8 == 0 && y->strides[2] % 8 == 0 && y->strides[3] % 8 == 0 && y->off % 8 == 0;
}

/* The composed weights [4 CO][3][3][C] as a new constant buffer; -1 when
 * the original weights have no host copy (or out of memory). */
static int composed_weights(mc_plan *p, const mc_tref *w, int CO, int C) {
    const mc_buf *B = &p->bufs[w->buf];
    if (B->kind != MC_CONST || !B->host) return -1;
    const size_t n = (size_t)4 * CO * 9 * C;
    uint16_t *wc = malloc(n * sizeof *wc + 16);
    if (!wc) return -1;
    if (mtk_poly_compose_weights((const uint16_t *)B->host + w->off, CO, C, wc)) {
        free(wc);
        return -1;
    }
    int b = mc_new_buf(p, n * sizeof *wc, MC_CONST);
    if (b < 0) {
        free(wc);
        return -1;
    }
    p->bufs[b].host = wc;
    return b;
}

int mc_fuse_poly(mc_plan *p) {
    int made = 0;
    for (int i = 0; i < p->nsteps; i++) {
        mc_tref src[UPC_MAXSRC];
        int j;
        const int ns = mc_match_upsample_conv(p, i, src, &j);
        if (!ns || p->steps[j].kind != MC_CUDNN) continue;
        const mc_step cs = p->steps[j]; /* a copy: inserting a step moves the array */
        const mc_conv *c = &cs.conv;
        int csrc[UPC_MAXSRC];
        for (int k = 0; k < ns; k++) csrc[k] = (int)src[k].dims[1];
        if (!mtk_poly_supported(ns, csrc, c->CO, c->act) || !out_ok(&cs.t[0])) continue;
        /* narrow outputs (the upconv kernel's) only when asked: "poly32" */
        if (c->CO <= 32 && !mt_tuning_list_has(p->tuning.cuda_fuse_opt, "poly32", 0)) continue;
        const int64_t N = c->N, IH = src[0].dims[2], IW = src[0].dims[3];
        const int wc = composed_weights(p, &cs.t[2], c->CO, c->C);
        if (wc < 0) continue;
        const int bpad = mc_new_arena(p, (size_t)(N * (IH + 2) * (IW + 2) * c->C * 2));
        const int bph = mc_new_arena(p, (size_t)(N * IH * IW * 4 * c->CO * 2));
        if (bpad < 0 || bph < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory"), -1;
        const mc_tref xpad = mc_nhwc_f16(bpad, N, c->C, IH + 2, IW + 2), phases = mc_nhwc_f16(bph, N, 4 * c->CO, IH, IW);

        /* the resize becomes the padded concat */
        mc_step pad = mc_step_like(&p->steps[i], MC_POLYPAD);
        pad.t[0] = xpad;
        for (int k = 0; k < ns; k++) pad.t[1 + k] = src[k];
        pad.nt = 1 + ns;
        pad.u.upconv.nsrc = ns;
        p->steps[i] = pad;

        /* the conv: low resolution, four phases, nothing after it */
        mc_step *conv = &p->steps[j];
        mc_conv lo = *c;
        lo.H = (int)IH + 2, lo.W = (int)IW + 2, lo.OH = (int)IH, lo.OW = (int)IW;
        lo.CO = 4 * c->CO;
        lo.ph = lo.pw = lo.ph2 = lo.pw2 = 0;
        lo.act = 0, lo.has_bias = 0;
        lo.ldy = lo.CO;
        lo.ys0 = IH * IW * lo.CO;
        conv->conv = lo;
        conv->t[0] = phases;
        conv->t[1] = xpad;
        memset(&conv->t[2], 0, sizeof conv->t[2]);
        conv->t[2].buf = wc;
        conv->t[2].st = MTMI_FLOAT16;
        conv->t[2].rank = 1;
        conv->t[2].dims[0] = (int64_t)lo.CO * 9 * c->C;
        conv->t[2].strides[0] = 1;
        conv->nt = 3;

        /* the phases' bias, activation and ring into the original output */
        mc_step *fin = mc_insert_step(p, j + 1);
        if (!fin) return mt_fail(MTMI_ERR_NOMEM, "out of memory"), -1;
        *fin = mc_step_like(&cs, MC_POLYFIN);
        fin->order = j + 1;
        fin->conv = *c;
        fin->t[0] = cs.t[0];
        fin->t[1] = phases;
        fin->t[2] = cs.t[2];
        fin->t[3] = c->has_bias ? cs.t[3] : (mc_tref){.buf = -1};
        for (int k = 0; k < ns; k++) fin->t[4 + k] = src[k];
        fin->nt = 4 + ns;
        fin->u.upconv.nsrc = ns;
        made++;
    }
    return made;
}
