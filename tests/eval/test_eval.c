/* The metrics of `mtmi eval` (src/eval): a hand-built case whose IoU,
 * mIoU, pixel accuracy, AbsRel, SqRel, RMSE and delta values are worked out
 * by hand (exact fractions, compared exactly); absent classes marked;
 * predictions at half the ground truth's size and through a centre crop;
 * and random frames against an independent recount of the definitions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "eval/eval.h"
#include "oracle.h"
#include "synth/synth.h"

/* 4x4 ground truth and prediction (255 = ignore).
 *   class 0: 6 pixels, 4 right, 1 false positive (a 1 predicted 0): 4/7
 *   class 1: 6 pixels, 5 right, 2 false positives:                  5/8
 *   class 2: 2 pixels, 1 right, none false:                         1/2
 *   class 3: absent; predicted once on labelled ground truth (and twice on
 *   ignored pixels, which do not count) */
static const uint16_t k_gt[16] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 255, 255, 2, 2};
static const uint8_t k_pred[16] = {0, 0, 0, 1, 0, 1, 1, 1, 1, 1, 0, 1, 3, 3, 2, 3};

static void test_hand_built_seg(void) {
    mt_eval e;
    CHECK(!mt_eval_init(&e, 19, 80), "init");
    mt_eval_add_seg(&e, k_gt, k_pred, 16);
    mt_eval_result r;
    mt_eval_result_get(&e, &r);
    printf("hand-built: IoU %.6f %.6f %.6f, mIoU %.6f, pixel accuracy %.6f, %d present, %llu ignored\n", r.iou[0], r.iou[1],
           r.iou[2], r.miou, r.pixel_acc, r.npresent, (unsigned long long)e.ignored);
    CHECK(r.iou[0] == 4.0 / 7 && r.iou[1] == 5.0 / 8 && r.iou[2] == 1.0 / 2, "IoU per class");
    CHECK(r.miou == (4.0 / 7 + 5.0 / 8 + 1.0 / 2) / 3, "mIoU over the three classes present: %.17g", r.miou);
    CHECK(r.pixel_acc == 10.0 / 14 && r.pixels == 14 && e.ignored == 2, "pixel accuracy over labelled pixels");
    CHECK(r.npresent == 3 && r.gt[3] == 0 && r.pred[3] == 1 && isnan(r.iou[3]), "class 3 absent (marked), predicted once");
    int absent = 0;
    for (int c = 3; c < 19; c++) absent += isnan(r.iou[c]);
    CHECK(absent == 16, "classes 3-18 absent");
    CHECK(e.conf[0 * 19 + 1] == 2 && e.conf[1 * 19 + 0] == 1 && e.conf[2 * 19 + 3] == 1 && e.conf[0 * 19 + 0] == 4,
          "confusion matrix (rows ground truth)");
    mt_eval_free(&e);
}

/* Depth: ground truth 2, 4, none, 10, 100 (beyond 80: not scored) m,
 * predictions 2.5, 3, 7, 10, 50. */
static void test_hand_built_depth(void) {
    mt_eval e;
    CHECK(!mt_eval_init(&e, 19, 80), "init");
    const float gt[5] = {2, 4, 0, 10, 100}, pred[5] = {2.5f, 3, 7, 10, 50};
    mt_eval_add_depth(&e, gt, pred, 5);
    mt_eval_result r;
    mt_eval_result_get(&e, &r);
    printf("hand-built depth: AbsRel %.6f SqRel %.6f RMSE %.6f delta %.4f %.4f %.4f over %llu pixels\n", r.abs_rel, r.sq_rel, r.rmse,
           r.delta[0], r.delta[1], r.delta[2], (unsigned long long)r.depth_pixels);
    CHECK(r.depth_pixels == 3 && e.depth_skipped == 1, "scored pixels");
    CHECK(r.abs_rel == 1.0 / 6, "AbsRel (0.5/2 + 1/4 + 0) / 3 = 1/6: %.17g", r.abs_rel);
    CHECK(r.sq_rel == 0.125, "SqRel (0.25/2 + 1/4) / 3 = 1/8: %.17g", r.sq_rel);
    CHECK(r.rmse == sqrt(1.25 / 3), "RMSE sqrt(1.25 / 3): %.17g", r.rmse);
    /* 2.5 / 2 is exactly 1.25: not below the threshold */
    CHECK(r.delta[0] == 1.0 / 3 && r.delta[1] == 1 && r.delta[2] == 1, "delta thresholds");
    CHECK(fabs(r.rmse_log - sqrt((pow(log(1.25), 2) + pow(log(0.75), 2)) / 3)) < 1e-15, "RMSE log");
    mt_eval_free(&e);
}

/* Predictions at half the size (2x2 for 4x4): each ground-truth pixel
 * takes the prediction covering its centre; depth interpolated.  And an
 * 8x4 frame seen through a model of 4x4: the centre 4x4 is scored. */
static void test_geometry(void) {
    mt_eval_geom g;
    mt_eval_geometry(4, 4, 2, 2, &g);
    CHECK(g.x0 == 0 && g.y0 == 0 && g.cw == 4 && g.ch == 4, "no crop at the same aspect");
    mt_eval e;
    CHECK(!mt_eval_init(&e, 19, 80), "init");
    const uint16_t gt[16] = {0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2};
    const uint8_t pred[4] = {0, 1, 2, 0}; /* the bottom right quarter wrong */
    const float d = (float)mt_depth_unit(10.0);
    const float sig[4] = {d, d, d, d};
    uint16_t dep[16];
    for (int i = 0; i < 16; i++) dep[i] = 10 * 256; /* 10 m everywhere */
    CHECK(!mt_eval_add_frame(&e, &g, gt, dep, pred, sig), "add frame");
    mt_eval_result r;
    mt_eval_result_get(&e, &r);
    CHECK(r.iou[0] == 4.0 / 8 && r.iou[1] == 1 && r.iou[2] == 4.0 / 8, "upsampled by the covering pixel: %g %g %g", r.iou[0],
          r.iou[1], r.iou[2]);
    CHECK(r.depth_pixels == 16 && r.abs_rel < 1e-6, "constant depth: AbsRel %g", r.abs_rel);
    mt_eval_free(&e);

    mt_eval_geometry(8, 4, 4, 4, &g);
    CHECK(g.x0 == 2 && g.cw == 4 && g.ch == 4, "centre crop of a wide frame: x0 %d, %dx%d", g.x0, g.cw, g.ch);
    CHECK(!mt_eval_init(&e, 19, 80), "init");
    uint16_t wide[32];
    for (int i = 0; i < 32; i++) wide[i] = (i % 8) < 2 || (i % 8) >= 6 ? 5 : 0; /* class 5 only outside the crop */
    const uint8_t zeros[16] = {0};
    CHECK(!mt_eval_add_frame(&e, &g, wide, NULL, zeros, NULL), "add wide frame");
    mt_eval_result_get(&e, &r);
    CHECK(r.pixels == 16 && e.unmapped == 16 && r.iou[0] == 1 && isnan(r.iou[5]), "outside the crop is not scored");
    mt_eval_free(&e);
}

/* Random frames (some labels ignored, some predictions out of range)
 * against a direct recount of TP / FP / FN and of the depth terms. */
static void test_random(uint64_t seed) {
    oracle_rng rng = {seed};
    enum { N = 5000, C = 19 };
    uint16_t *gt = malloc(N * sizeof *gt);
    uint8_t *pred = malloc(N);
    float *gd = malloc(N * sizeof *gd), *pd = malloc(N * sizeof *pd);
    mt_eval e;
    if (!gt || !pred || !gd || !pd || mt_eval_init(&e, C, 80)) {
        CHECK(0, "setup");
        return;
    }
    double tp[C] = {0}, fp[C] = {0}, fn[C] = {0}, absrel = 0, sq = 0, n = 0;
    for (int frame = 0; frame < 3; frame++) {
        for (int i = 0; i < N; i++) {
            const double u = oracle_uniform(&rng);
            gt[i] = u < 0.05 ? 255 : (uint16_t)(oracle_next(&rng) % 12); /* classes 12-18 absent */
            pred[i] = oracle_uniform(&rng) < 0.6 && gt[i] < C ? (uint8_t)gt[i] : (uint8_t)(oracle_next(&rng) % 14);
            gd[i] = oracle_uniform(&rng) < 0.1 ? 0 : (float)(0.5 + 100 * oracle_uniform(&rng));
            pd[i] = (float)(gd[i] * (0.7 + 0.6 * oracle_uniform(&rng)) + 0.01);
            if (gt[i] < C) {
                if (pred[i] == gt[i]) tp[gt[i]]++;
                else fn[gt[i]]++, fp[pred[i]]++;
            }
            if (gd[i] > 0 && gd[i] <= 80) absrel += fabs((double)pd[i] - gd[i]) / gd[i], sq += pow((double)pd[i] - gd[i], 2), n++;
        }
        mt_eval_add_seg(&e, gt, pred, N);
        mt_eval_add_depth(&e, gd, pd, N);
    }
    mt_eval_result r;
    mt_eval_result_get(&e, &r);
    double worst = 0, miou = 0;
    int present = 0;
    for (int c = 0; c < C; c++) {
        if (tp[c] + fn[c] == 0) {
            CHECK(isnan(r.iou[c]), "class %d absent but IoU %g", c, r.iou[c]);
            continue;
        }
        const double ref = tp[c] / (tp[c] + fp[c] + fn[c]);
        worst = fmax(worst, fabs(r.iou[c] - ref));
        miou += ref, present++;
    }
    miou /= present;
    printf("random frames: %d classes present, IoU worst difference %.3g, mIoU %.6f (recount %.6f), AbsRel %.6f (recount %.6f)\n",
           present, worst, r.miou, miou, r.abs_rel, absrel / n);
    CHECK(worst == 0 && present == 12 && r.npresent == 12, "IoU per class against the recount");
    CHECK(fabs(r.miou - miou) < 1e-15 && fabs(r.abs_rel - absrel / n) < 1e-12 && fabs(r.rmse - sqrt(sq / n)) < 1e-9,
          "mIoU, AbsRel, RMSE against the recount");
    CHECK(r.depth_pixels == (uint64_t)n, "depth pixels");
    mt_eval_free(&e);
    free(gt), free(pred), free(gd), free(pd);
}

int main(void) {
    const uint64_t seed = oracle_seed(3);
    test_hand_built_seg();
    test_hand_built_depth();
    test_geometry();
    test_random(seed);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
