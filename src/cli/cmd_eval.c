/* mtmi eval [--model M] --data DIR [--place P] [--cache C] [--json F]:
 * accuracy against ground truth.  Every frame of a Cityscapes-style folder
 * (images/, labels/, optionally depth/; src/eval) goes through the same
 * pipeline as `mtmi run` (any placement and precision, the heads making
 * the class map and the float depth on their devices), one frame at a
 * time; the predictions are compared at the ground truth's pixels:
 * confusion matrix, IoU per class (classes absent from the ground truth
 * marked and left out of the mean), mIoU, pixel accuracy, and with depth
 * AbsRel, SqRel, RMSE, RMSE log and delta < 1.25^k on the pixels whose
 * ground truth lies in (0, --max-depth]. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "eval/eval.h"
#include "app/app.h"
#include "synth/synth.h"

typedef struct eval_opts {
    const char *data, *json;
    long limit;
    double max_depth;
} eval_opts;

enum { O_DATA = 1, O_JSON, O_FRAMES, O_MAX_DEPTH };
static const cli_opt g_opts[] = {
    {O_DATA, "data", 0, CLI_STR, "DIR", 0, 0, "the data set: DIR/images, DIR/labels, DIR/depth (required)"},
    CLI_ROW_JSON(O_JSON, "every number, per-class IoU and the 19x19 confusion\nmatrix (rows ground truth, columns prediction)"),
    CLI_ROWS_APP_MODEL,
    CLI_ROW_APP_PLACE,
    CLI_ROW_APP_CACHE,
    CLI_ROW_APP_PLAN,
    {CLI_A_SIZE, "size", 0, CLI_STR, "HxW", 0, 0,
     "the model's input size (multiples of 32); default: the\nmodel's.  Images are centre-cropped to its aspect and\n"
     "resized; predictions are compared at the ground truth's\npixels inside the crop"},
    CLI_ROW_APP_THREADS,
    {O_FRAMES, "frames", 0, CLI_INT, "N", 1, 100000000, "only the first N frames (sorted by name)"},
    {O_MAX_DEPTH, "max-depth", 0, CLI_REAL, "M", 0, 1e6,
     "depth ground truth beyond M metres is not scored (default\n80, the far end of the depth head's encoding)"},
    CLI_ROW_APP_HOST_PRE,
    {CLI_A_QUIET, "quiet", 'q', CLI_FLAG, NULL, 0, 0, "accepted for run's sake (eval prints no line per frame)"},
    CLI_ROW_APP_INJECT,
    {0},
};
const cli_command cli_cmd_eval = {
    "eval", "", 0, "mIoU, per-class IoU and depth errors against ground truth",
    "Runs the model over DIR/images/<stem>.png, one frame at a time through the\n"
    "pipeline of `mtmi run` (any placement and precision), and compares with\n"
    "DIR/labels/<stem>.png (8-bit Cityscapes train IDs, 255 = ignore) and, when\n"
    "DIR/depth exists, DIR/depth/<stem>.png (16-bit metres x 256, 0 = none), as\n"
    "`mtmi synth` writes them.",
    g_opts, NULL};

static int parse(int argc, char **argv, eval_opts *e, mt_app_opts *o) {
    e->max_depth = MT_DEPTH_FAR;
    cli_parser p;
    cli_parser_init(&p, &cli_cmd_eval, argc, argv);
    int id;
    while ((id = cli_next(&p)) > 0) {
        const int took = cli_app_take(&p, id, o, 1);
        if (took < 0) return CLI_USAGE;
        if (took) continue;
        switch (id) {
        case O_DATA: e->data = p.value; break;
        case O_JSON: e->json = p.value; break;
        case O_FRAMES: e->limit = p.num; break;
        case O_MAX_DEPTH:
            if (!(p.real > 0)) return cli_usage(&p, "--max-depth expects metres > 0, got '%s'", p.value);
            e->max_depth = p.real;
            break;
        }
    }
    if (id == CLI_HELP) {
        printf("\nDepth: the depth head's sigmoid d is %g * (%g / %g) ^ (1 - d) metres (src/synth/synth.h).\n", MT_DEPTH_NEAR,
               MT_DEPTH_FAR, MT_DEPTH_NEAR);
        return -1;
    }
    if (id == CLI_ERROR) return CLI_USAGE;
    if (!e->data) return cli_usage(&p, "no data given (--data DIR with images/, labels/ and optionally depth/)");
    o->sync = 1;  /* one frame at a time: nothing to overlap but the decoding */
    o->quiet = 1;
    o->forms_set = 1;
    o->seg_forms = MT_FORM_CLASSES;
    o->depth_forms = MT_FORM_FLOAT;
    cli_json_stdout(e->json);
    return 0;
}

/* Ground truth of frame i: labels (always) and depth (when the set has it). */
typedef struct gt_frame {
    int w, h;
    uint16_t *labels, *depth;
} gt_frame;

static int read_gt(const mt_eval_set *set, int i, gt_frame *g) {
    int bits, w, h;
    memset(g, 0, sizeof *g);
    if (mt_png_read_gray(set->labels[i], &g->w, &g->h, &bits, &g->labels)) return cli_lib_error();
    if (bits != 8) return cli_error("%s: labels must be 8-bit (train IDs, 255 = ignore), not %d-bit", set->labels[i], bits);
    if (!set->has_depth) return 0;
    if (mt_png_read_gray(set->depth[i], &w, &h, &bits, &g->depth)) return cli_lib_error();
    if (bits != 16) return cli_error("%s: depth must be 16-bit (metres x 256), not %d-bit", set->depth[i], bits);
    if (w != g->w || h != g->h) return cli_error("%s: %dx%d, but its labels are %dx%d", set->depth[i], w, h, g->w, g->h);
    return 0;
}

static void gt_free(gt_frame *g) {
    free(g->labels);
    free(g->depth);
    memset(g, 0, sizeof *g);
}

/* One frame through the pipeline and into the metrics. */
static int eval_frame(mt_app *app, const mt_eval_set *set, int i, int r_cls, int r_dep, mt_eval *ev) {
    mt_image src = {0}, fit = {0};
    gt_frame g;
    mt_frame *f = NULL;
    int rc = 1;
    if (read_gt(set, i, &g)) goto done;
    if (mt_png_read(set->images[i], &src) || mt_image_fit(&src, app->width, app->height, &fit)) {
        cli_lib_error();
        goto done;
    }
    if (src.w != g.w || src.h != g.h) {
        cli_error("%s: %dx%d, but its labels are %dx%d", set->images[i], src.w, src.h, g.w, g.h);
        goto done;
    }
    if (mt_app_run_one(app->pipe, &fit, &f)) {
        mt_fail_context(MTMI_ERR_ARG, "%s", set->images[i]);
        cli_lib_error();
        goto done;
    }
    mt_eval_geom geo;
    mt_eval_geometry(g.w, g.h, app->width, app->height, &geo);
    const uint8_t *cls = r_cls >= 0 ? (const uint8_t *)f->outputs[r_cls].data : NULL; /* batch element 0 */
    const float *dep = r_dep >= 0 ? (const float *)f->outputs[r_dep].data : NULL;
    if (mt_eval_add_frame(ev, &geo, g.labels, g.depth, cls, dep)) cli_lib_error();
    else rc = 0;
    mt_pipeline_release(app->pipe, f);
done:
    mt_image_free(&src);
    mt_image_free(&fit);
    gt_free(&g);
    return rc;
}

static double pct(double v) { return isnan(v) ? NAN : 100 * v; }

static void print_report(const mt_app *app, const eval_opts *e, int n, const mt_eval *ev, const mt_eval_result *r, double ms) {
    printf("model: %s\nplacement: %s, input %dx%d; %d frame%s of %s, %.1f ms a frame\n", app->model_desc, app->placement, app->height,
           app->width, n, n == 1 ? "" : "s", e->data, ms);
    if (r->pixels) {
        printf("segmentation: mIoU %.2f %% over the %d classes present, pixel accuracy %.2f %% (%llu pixels, %llu ignored)\n",
               pct(r->miou), r->npresent, pct(r->pixel_acc), (unsigned long long)r->pixels, (unsigned long long)ev->ignored);
        printf("  %-3s %-14s %8s %14s %14s\n", "id", "class", "IoU %", "gt pixels", "predicted");
        for (int c = 0; c < r->ncls; c++) {
            char iou[32];
            if (isnan(r->iou[c])) snprintf(iou, sizeof iou, "absent");
            else snprintf(iou, sizeof iou, "%.2f", 100 * r->iou[c]);
            printf("  %-3d %-14s %8s %14llu %14llu\n", c, c < 19 ? mt_cityscapes_names[c] : "?", iou, (unsigned long long)r->gt[c],
                   (unsigned long long)r->pred[c]);
        }
    }
    if (r->depth_pixels)
        printf("depth: AbsRel %.4f  SqRel %.4f  RMSE %.3f m  RMSE log %.4f  delta<1.25 %.2f %%  <1.25^2 %.2f %%  <1.25^3 %.2f %% "
               "(%llu pixels with ground truth in (0, %g] m)\n",
               r->abs_rel, r->sq_rel, r->rmse, r->rmse_log, 100 * r->delta[0], 100 * r->delta[1], 100 * r->delta[2],
               (unsigned long long)r->depth_pixels, e->max_depth);
    if (ev->unmapped) printf("note: %llu ground-truth pixels outside the model's centre crop were not scored\n", (unsigned long long)ev->unmapped);
}

/* A number, or null (JSON has no NaN). */
static void jnum(FILE *f, double v) { mt_json_number(f, "%.10g", v); }

static int write_json(const char *path, const mt_app *app, const eval_opts *e, int n, const mt_eval *ev, const mt_eval_result *r,
                      double ms) {
    cli_json_file j;
    FILE *f = cli_json_open(path, &j);
    if (!f) return 1;
    fprintf(f, "{\n  \"command\": \"eval\",\n  \"model\": ");
    mt_json_string(f, app->model_desc);
    fprintf(f, ",\n  \"placement\": ");
    mt_json_string(f, app->placement);
    fprintf(f, ",\n  \"data\": ");
    mt_json_string(f, e->data);
    fprintf(f, ",\n  \"input\": [%d, %d, %d, %d],\n  \"frames\": %d,\n  \"ms_per_frame\": ", app->batch, app->channels, app->height,
            app->width, n);
    mt_json_number(f, "%.3f", ms);
    fprintf(f, ",\n");
    fprintf(f, "  \"seg\": {\"miou_pct\": ");
    jnum(f, pct(r->miou));
    fprintf(f, ", \"classes_present\": %d, \"pixel_acc_pct\": ", r->npresent);
    jnum(f, pct(r->pixel_acc));
    fprintf(f, ", \"pixels\": %llu, \"ignored\": %llu, \"unmapped\": %llu,\n    \"classes\": [", (unsigned long long)r->pixels,
            (unsigned long long)ev->ignored, (unsigned long long)ev->unmapped);
    for (int c = 0; c < r->ncls; c++) {
        fprintf(f, "%s\n      {\"id\": %d, \"name\": ", c ? "," : "", c);
        mt_json_string(f, c < 19 ? mt_cityscapes_names[c] : "?");
        fprintf(f, ", \"present\": %s, \"iou_pct\": ", isnan(r->iou[c]) ? "false" : "true");
        jnum(f, pct(r->iou[c]));
        fprintf(f, ", \"gt_pixels\": %llu, \"pred_pixels\": %llu}", (unsigned long long)r->gt[c], (unsigned long long)r->pred[c]);
    }
    fprintf(f, "],\n    \"confusion\": {\"rows\": \"ground truth\", \"cols\": \"prediction\", \"matrix\": [");
    for (int g = 0; g < r->ncls; g++) {
        fprintf(f, "%s\n      [", g ? "," : "");
        for (int p = 0; p < r->ncls; p++) fprintf(f, "%s%llu", p ? ", " : "", (unsigned long long)ev->conf[(size_t)g * r->ncls + p]);
        fprintf(f, "]");
    }
    fprintf(f, "]}},\n  \"depth\": {\"pixels\": %llu, \"max_depth_m\": ", (unsigned long long)r->depth_pixels);
    jnum(f, e->max_depth);
    fprintf(f, ", \"abs_rel\": ");
    jnum(f, r->abs_rel);
    const char *names[] = {"sq_rel", "rmse_m", "rmse_log", "delta1", "delta2", "delta3"};
    const double vals[] = {r->sq_rel, r->rmse, r->rmse_log, r->delta[0], r->delta[1], r->delta[2]};
    for (int k = 0; k < 6; k++) {
        fprintf(f, ", \"%s\": ", names[k]);
        jnum(f, vals[k]);
    }
    char enc[128];
    snprintf(enc, sizeof enc, "metres = %g * (%g / %g) ^ (1 - sigmoid)", MT_DEPTH_NEAR, MT_DEPTH_FAR, MT_DEPTH_NEAR);
    fprintf(f, ", \"encoding\": ");
    mt_json_string(f, enc);
    fprintf(f, "}\n}\n");
    return cli_json_close(&j, path, 1);
}

int mt_cmd_eval(int argc, char **argv) {
    eval_opts e = {0};
    mt_app_opts o = {.inject_stage = -1, .trained_model = cli_trained_model(), .tuning = cli_tuning()};
    int rc = parse(argc, argv, &e, &o);
    if (rc) return rc < 0 ? 0 : rc;
    rc = 1;
    mt_eval_set set = {0};
    mt_eval ev = {0};
    mt_app app;
    memset(&app, 0, sizeof app);
    if (mt_eval_set_open(e.data, &set) || mt_eval_init(&ev, MT_SYNTH_CLASSES, e.max_depth) || mt_app_open(&o, &app)) {
        cli_lib_error();
        goto out;
    }
    if (e.json && cli_check_app_report(&app, &o, "eval", &e.json, 1)) goto out;
    const int r_cls = mt_app_seg_result(&app, MT_FORM_CLASSES), r_dep = mt_app_depth_result(&app, MT_FORM_FLOAT);
    if (r_cls < 0 && r_dep < 0) {
        cli_error("eval: the model has neither a segmentation nor a depth output");
        goto out;
    }
    const int n = e.limit && e.limit < set.n ? (int)e.limit : set.n;
    const double t0 = mt_now_ms();
    mt_signals_set_graceful(1);
    for (int i = 0; i < n; i++) {
        if (mt_stop_requested()) goto out;
        cli_progress("eval", i, n, set.stems[i], t0);
        if (eval_frame(&app, &set, i, r_cls, r_dep, &ev)) goto out;
    }
    cli_progress("eval", n, n, "", t0);
    const double ms = (mt_now_ms() - t0) / n;
    mt_eval_result r;
    mt_eval_result_get(&ev, &r);
    print_report(&app, &e, n, &ev, &r, ms);
    if (e.json && write_json(e.json, &app, &e, n, &ev, &r, ms)) goto out;
    rc = 0;
out:
    mt_app_close(&app);
    mt_eval_free(&ev);
    mt_eval_set_free(&set);
    return rc;
}
