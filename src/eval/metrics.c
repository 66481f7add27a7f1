/* Segmentation and depth metrics against ground truth (eval.h).  Sums are
 * kept as integer counts (confusion matrix, delta thresholds) or doubles
 * of per-pixel terms, so a frame's contribution does not depend on the
 * others. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "synth/synth.h"

mtmi_status mt_eval_init(mt_eval *e, int ncls, double max_depth) {
    memset(e, 0, sizeof *e);
    if (ncls < 1 || ncls > MT_EVAL_MAX_CLASSES) return mt_fail(MTMI_ERR_ARG, "eval: %d classes (1 to %d)", ncls, MT_EVAL_MAX_CLASSES);
    if (!(max_depth > 0)) return mt_fail(MTMI_ERR_ARG, "eval: the maximum depth must be positive");
    e->conf = calloc((size_t)ncls * ncls, sizeof *e->conf);
    if (!e->conf) return mt_fail(MTMI_ERR_NOMEM, "out of memory for a confusion matrix");
    e->ncls = ncls;
    e->max_depth = max_depth;
    return MTMI_OK;
}

void mt_eval_free(mt_eval *e) {
    free(e->conf);
    memset(e, 0, sizeof *e);
}

void mt_eval_add_seg(mt_eval *e, const uint16_t *gt, const uint8_t *pred, size_t n) {
    const int C = e->ncls;
    for (size_t i = 0; i < n; i++) {
        if (gt[i] >= C) {
            e->ignored++;
            continue;
        }
        /* a prediction outside the classes (none from an argmax over C
         * logits) counts as wrong: in row g, column g is not incremented */
        const int p = pred[i] < C ? pred[i] : (gt[i] + 1) % C;
        e->conf[(size_t)gt[i] * C + p]++;
    }
}

void mt_eval_add_depth(mt_eval *e, const float *gt, const float *pred, size_t n) {
    static const double thr[3] = {1.25, 1.25 * 1.25, 1.25 * 1.25 * 1.25};
    for (size_t i = 0; i < n; i++) {
        const double g = gt[i], p = pred[i];
        if (!(g > 0) || g > e->max_depth) {
            e->depth_skipped += g > 0;
            continue;
        }
        const double d = p - g, ratio = p > g ? p / g : g / p;
        e->sum_abs_rel += fabs(d) / g;
        e->sum_sq_rel += d * d / g;
        e->sum_sq += d * d;
        const double l = log(p) - log(g);
        e->sum_sq_log += l * l;
        for (int k = 0; k < 3; k++) e->delta_n[k] += ratio < thr[k];
        e->depth_n++;
    }
}

void mt_eval_result_get(const mt_eval *e, mt_eval_result *r) {
    memset(r, 0, sizeof *r);
    const int C = e->ncls;
    r->ncls = C;
    uint64_t tp_all = 0;
    for (int g = 0; g < C; g++)
        for (int p = 0; p < C; p++) {
            const uint64_t v = e->conf[(size_t)g * C + p];
            r->gt[g] += v;
            r->pred[p] += v;
            if (g == p) r->tp[g] = v, tp_all += v;
            r->pixels += v;
        }
    double sum = 0;
    for (int c = 0; c < C; c++) {
        if (!r->gt[c]) {
            r->iou[c] = NAN; /* absent from the ground truth */
            continue;
        }
        r->iou[c] = (double)r->tp[c] / (double)(r->gt[c] + r->pred[c] - r->tp[c]);
        sum += r->iou[c];
        r->npresent++;
    }
    r->miou = r->npresent ? sum / r->npresent : NAN;
    r->pixel_acc = r->pixels ? (double)tp_all / (double)r->pixels : NAN;
    r->depth_pixels = e->depth_n;
    if (!e->depth_n) {
        r->abs_rel = r->sq_rel = r->rmse = r->rmse_log = r->delta[0] = r->delta[1] = r->delta[2] = NAN;
        return;
    }
    const double n = (double)e->depth_n;
    r->abs_rel = e->sum_abs_rel / n;
    r->sq_rel = e->sum_sq_rel / n;
    r->rmse = sqrt(e->sum_sq / n);
    r->rmse_log = sqrt(e->sum_sq_log / n);
    for (int k = 0; k < 3; k++) r->delta[k] = (double)e->delta_n[k] / n;
}

void mt_eval_geometry(int gw, int gh, int mw, int mh, mt_eval_geom *g) {
    /* exactly mt_image_fit's crop */
    int cw = gw, ch = gh;
    if ((int64_t)gw * mh > (int64_t)gh * mw) cw = (int)((int64_t)gh * mw / mh);
    else ch = (int)((int64_t)gw * mh / mw);
    if (cw < 1) cw = 1;
    if (ch < 1) ch = 1;
    *g = (mt_eval_geom){gw, gh, mw, mh, (gw - cw) / 2, (gh - ch) / 2, cw, ch};
}

/* The model pixel whose footprint holds the centre of crop pixel c. */
static int nearest(int c, int crop, int model) { return (int)(((int64_t)2 * c + 1) * model / (2 * (int64_t)crop)); }

/* Bilinear sample position of crop pixel c in the model's pixels
 * (centres at +0.5, as mt_image_fit). */
static void bilinear_at(int c, int crop, int model, int *i0, int *i1, double *w) {
    double f = (c + 0.5) * model / crop - 0.5;
    if (f < 0) f = 0;
    int i = (int)f;
    if (i > model - 1) i = model - 1;
    *i0 = i;
    *i1 = i + 1 < model ? i + 1 : model - 1;
    *w = f - i > 1 ? 1 : f - i;
}

static float depth_at(const mt_eval_geom *g, const float *sig, int cx, int cy) {
    int x0, x1, y0, y1;
    double wx, wy;
    bilinear_at(cx, g->cw, g->mw, &x0, &x1, &wx);
    bilinear_at(cy, g->ch, g->mh, &y0, &y1, &wy);
    const float *r0 = sig + (size_t)y0 * g->mw, *r1 = sig + (size_t)y1 * g->mw;
    const double a = r0[x0] + wx * (r0[x1] - r0[x0]), b = r1[x0] + wx * (r1[x1] - r1[x0]);
    return (float)mt_depth_metres(a + wy * (b - a));
}

mtmi_status mt_eval_add_frame(mt_eval *e, const mt_eval_geom *g, const uint16_t *gt_labels, const uint16_t *gt_depth_u16,
                              const uint8_t *pred_cls, const float *pred_sigmoid) {
    const int cw = g->cw;
    uint8_t *pc = malloc((size_t)cw);
    float *gd = malloc(sizeof(float) * (size_t)cw), *pd = malloc(sizeof(float) * (size_t)cw);
    int *nx = malloc(sizeof(int) * (size_t)cw);
    if (!pc || !gd || !pd || !nx) {
        free(pc), free(gd), free(pd), free(nx);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory evaluating a %dx%d frame", g->gw, g->gh);
    }
    for (int x = 0; x < cw; x++) nx[x] = nearest(x, cw, g->mw);
    for (int y = 0; y < g->ch; y++) {
        const size_t row = (size_t)(g->y0 + y) * g->gw + g->x0;
        if (gt_labels && pred_cls) {
            const uint8_t *pr = pred_cls + (size_t)nearest(y, g->ch, g->mh) * g->mw;
            for (int x = 0; x < cw; x++) pc[x] = pr[nx[x]];
            mt_eval_add_seg(e, gt_labels + row, pc, (size_t)cw);
        }
        if (gt_depth_u16 && pred_sigmoid) {
            for (int x = 0; x < cw; x++) {
                gd[x] = (float)(gt_depth_u16[row + x] / 256.0);
                pd[x] = gd[x] > 0 ? depth_at(g, pred_sigmoid, x, y) : 0;
            }
            mt_eval_add_depth(e, gd, pd, (size_t)cw);
        }
    }
    e->unmapped += (uint64_t)g->gw * g->gh - (uint64_t)cw * g->ch;
    free(pc), free(gd), free(pd), free(nx);
    return MTMI_OK;
}
