/* Pass "wgconv" (opt-in, MTMI_CUDA_FUSE_OPT=wgconv): an FP16 3x3
 * convolution that the planner gave cuDNN (MC_CUDNN) or the direct kernel
 * (MC_CONVD: the same operands) runs on our wgmma kernel instead
 * (MC_WGCONV: hconv.cu, mtk_hconv3x3) where one of its configurations
 * fits: stride 1, padding 1, dilation 1, one group, C a multiple of 16, no
 * activation or ReLU, channels-last FP16 input and output, and the block's
 * weights in shared memory.  With the pass on, the planner gives such
 * convs that form rather than im2col + GEMM (plan_conv.c, wgconv_wanted).
 * The operands stay as the convolution step had them (t[0] y, t[1] x,
 * t[2] w FP16 [CO][3][3][C], t[3] the bias when conv.has_bias, else buf
 * -1), plus t[4], an FP32 scratch for the partial sums where the kernel
 * runs K in parts (mtk_hconv_parts > 1).  The pass runs last, after the
 * passes that look for MC_CUDNN steps (poly, upconv), and before finalize,
 * which then makes no cuDNN search for these steps.  Opt-in until
 * measured: built without a GPU (docs/PERFORMANCE.md). */

#include <string.h>

#include "core/core.h"
#include "cuda/cuda_internal.h"
#include "cuda/kernels.h"

/* a channels-last FP16 view [N][C][H][W]: channels contiguous, rows of W
 * pixels, pixels and images as strides[3] and strides[0] */
static int nhwc_f16(const mc_tref *t) {
    return t->rank == 4 && t->st == MTMI_FLOAT16 && t->strides[1] == 1 && t->strides[2] == t->strides[3] * t->dims[3];
}

/* The kernel's parameters for step s (pointers when p's memory is placed,
 * else NULL: the shapes are what the pass checks). */
void mc_wgconv_params(const mc_plan *p, const mc_step *s, int with_ptrs, mtk_hconv *h) {
    const mc_conv *c = &s->conv;
    const mc_tref *y = &s->t[0], *x = &s->t[1];
    memset(h, 0, sizeof *h);
    h->xs0 = x->strides[0], h->xpix = x->strides[3];
    h->ys0 = y->strides[0], h->ldy = y->strides[3];
    h->bias_f16 = c->has_bias && s->t[3].st == MTMI_FLOAT16;
    h->N = c->N, h->H = c->H, h->W = c->W, h->C = c->C, h->CO = c->CO, h->act = c->act;
    if (with_ptrs) {
        h->x = mc_ptr(p, x);
        h->w = mc_ptr(p, &s->t[2]);
        h->bias = c->has_bias ? mc_ptr(p, &s->t[3]) : NULL;
        h->y = mc_ptr(p, y);
        h->scratch = s->nt > 4 && s->t[4].buf >= 0 ? mc_ptr(p, &s->t[4]) : NULL;
    }
}

int mc_wgconv_shape(const mc_conv *c) {
    return c->KH == 3 && c->KW == 3 && c->sh == 1 && c->sw == 1 && c->ph == 1 && c->pw == 1 && c->ph2 == 1 && c->pw2 == 1 &&
           c->dh == 1 && c->dw == 1 && c->groups == 1 && c->H == c->OH && c->W == c->OW && c->C % 16 == 0;
}

/* the configuration the kernel picks for step s (0: it does not fit), h
 * its parameters without pointers */
static int pick(const mc_plan *p, const mc_step *s, mtk_hconv *h) {
    const mc_conv *c = &s->conv;
    if (!mc_wgconv_shape(c) || (c->act != 0 && c->act != 1)) return 0;
    if (!nhwc_f16(&s->t[0]) || !nhwc_f16(&s->t[1]) || s->t[2].st != MTMI_FLOAT16) return 0;
    /* 16-byte input pieces, FP16 pairs out (the buffers' bases are aligned) */
    if (s->t[1].off % 8 || s->t[0].off % 2 || s->t[2].off % 8) return 0;
    if (c->has_bias && s->t[3].st != MTMI_FLOAT16 && s->t[3].st != MTMI_FLOAT) return 0;
    mc_wgconv_params(p, s, 0, h);
    return mtk_hconv_pick(h);
}

int mc_fuse_wgconv(mc_plan *p) {
    int made = 0;
    for (int i = 0; i < p->nsteps; i++) {
        mc_step *s = &p->steps[i];
        mtk_hconv h;
        const int cfg = s->kind == MC_CUDNN || s->kind == MC_CONVD ? pick(p, s, &h) : 0;
        if (!cfg) continue;
        /* K in parts (the whole K's weights do not fit): the FP32 partial
         * sums' scratch as t[4], live for this step only */
        if (mtk_hconv_parts(&h, cfg) > 1) {
            const int64_t n = (int64_t)h.N * h.H * h.W * h.CO;
            const int b = mc_new_arena(p, (size_t)n * sizeof(float));
            if (b < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory"), -1;
            if (!s->conv.has_bias) memset(&s->t[3], 0, sizeof s->t[3]), s->t[3].buf = -1;
            memset(&s->t[4], 0, sizeof s->t[4]);
            s->t[4].buf = b;
            s->t[4].st = MTMI_FLOAT;
            s->t[4].rank = 1;
            s->t[4].dims[0] = n;
            s->t[4].strides[0] = 1;
            s->nt = 5;
        }
        s->kind = MC_WGCONV;
        made++;
    }
    return made;
}
