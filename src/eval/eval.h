/* eval: accuracy against ground truth (`mtmi eval`): a confusion matrix
 * over the segmentation classes, from which IoU per class, mIoU over the
 * classes present in the ground truth and pixel accuracy follow; depth
 * errors against metric ground truth (AbsRel, SqRel, RMSE, RMSE log,
 * delta < 1.25^k); and the Cityscapes-style folders they are read from. */
#ifndef MT_EVAL_H
#define MT_EVAL_H

#include "core/core.h"

#define MT_EVAL_MAX_CLASSES 64
#define MT_EVAL_IGNORE 255

/* Accumulated over frames.  conf[g * ncls + p] counts pixels of ground
 * truth class g predicted as p; ground-truth labels >= ncls (255 = ignore)
 * are counted in `ignored` and nowhere else. */
typedef struct mt_eval {
    int ncls;
    uint64_t *conf;
    uint64_t ignored, unmapped; /* unmapped: ground truth outside the model's crop */
    /* depth: pixels with ground truth in (0, max_depth] */
    double max_depth;
    double sum_abs_rel, sum_sq_rel, sum_sq, sum_sq_log;
    uint64_t depth_n, delta_n[3], depth_skipped;
} mt_eval;

typedef struct mt_eval_result {
    int ncls, npresent;
    /* per class: ground-truth pixels, predicted pixels (on labelled
     * ground truth), IoU = TP / (TP + FP + FN) (NAN where the class is
     * absent from the ground truth: it does not count in mIoU) */
    uint64_t gt[MT_EVAL_MAX_CLASSES], pred[MT_EVAL_MAX_CLASSES], tp[MT_EVAL_MAX_CLASSES];
    double iou[MT_EVAL_MAX_CLASSES];
    double miou, pixel_acc;
    uint64_t pixels;
    /* depth (NAN when no pixel had ground truth) */
    double abs_rel, sq_rel, rmse, rmse_log, delta[3];
    uint64_t depth_pixels;
} mt_eval_result;

mtmi_status mt_eval_init(mt_eval *e, int ncls, double max_depth);
void mt_eval_free(mt_eval *e);
/* One frame of n pixels: ground-truth labels and predicted classes. */
void mt_eval_add_seg(mt_eval *e, const uint16_t *gt, const uint8_t *pred, size_t n);
/* One frame: ground-truth depth in metres (0 or less = none) and the
 * prediction in metres (> 0). */
void mt_eval_add_depth(mt_eval *e, const float *gt, const float *pred, size_t n);
void mt_eval_result_get(const mt_eval *e, mt_eval_result *r);

/* How the model saw a ground-truth frame of gw x gh: mt_image_fit's centre
 * crop (x0, y0, cw x ch) resized to the model's mw x mh. */
typedef struct mt_eval_geom {
    int gw, gh, mw, mh, x0, y0, cw, ch;
} mt_eval_geom;
void mt_eval_geometry(int gw, int gh, int mw, int mh, mt_eval_geom *g);
/* Adds a frame whose predictions are at the model's size (class map
 * and/or the depth head's sigmoid output; either may be NULL, as may the
 * ground truth's labels or depth): every ground-truth pixel inside the
 * crop gets the prediction there, classes by the model pixel that covers
 * its centre, depth interpolated bilinearly and then converted to metres
 * (mt_depth_metres); pixels outside the crop are counted in unmapped. */
mtmi_status mt_eval_add_frame(mt_eval *e, const mt_eval_geom *g, const uint16_t *gt_labels, const uint16_t *gt_depth_u16,
                              const uint8_t *pred_cls, const float *pred_sigmoid);

/* A Cityscapes-style folder: DIR/images/<stem>.png with
 * DIR/labels/<stem>.png (8-bit train IDs, 255 = ignore; required) and
 * DIR/depth/<stem>.png (16-bit metres x 256, 0 = none; used when the
 * depth folder exists, then required for every image).  Stems sorted. */
typedef struct mt_eval_set {
    int n, has_depth;
    char **images, **labels, **depth; /* full paths; depth NULL when absent */
    char **stems;
} mt_eval_set;
mtmi_status mt_eval_set_open(const char *dir, mt_eval_set *set);
void mt_eval_set_free(mt_eval_set *set);

#endif
