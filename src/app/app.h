/* app: what `mtmi run` and `mtmi bench` share: the model (a file or the
 * built-in MTMI network), the pipeline from a placement string, the summary
 * table and the JSON report; and the mapping of the MTMI_* environment
 * variables onto the tuning switches (env.c).
 *
 * Not part of libmtmi: a small library above it that the command line,
 * the pipeline tests and the benchmark programs link.  The library itself
 * reads no environment variable. */
#ifndef MT_APP_H
#define MT_APP_H

#include <stdio.h>

#include "pipeline/pipeline.h"

typedef struct mt_app_opts {
    const char *model_path;   /* NULL = the built-in MTMI network            */
    const char *trained_model; /* the built-in network's trained weights: a
                               * file, "none", or NULL = found (builtin.h) */
    int random_weights;       /* fill missing external weights (graph-only)  */
    uint64_t seed;
    int height, width;        /* 0 = the model's declared input size         */
    const char *place;        /* NULL or "auto" = automatic                  */
    int inflight;             /* 0 = 2                                       */
    int sync;                 /* one frame at a time                         */
    int threads;              /* total CPU threads; 0 = all cores            */
    const char *calib_path;   /* calibration cache for INT8 stages           */
    int quiet;                /* no progress lines while choosing `auto`     */
    int host_preprocess;      /* normalize on the application's thread, not in
                               * the encoder stage (mtmi.Preprocess)         */
    int inject_stage;         /* test hook (-1 = off)                        */
    int64_t inject_frame;
    /* What the application takes of the segmentation and the depth outputs
     * (MT_FORM_* sets, made on the heads' devices; a head asked for nothing
     * does not run), when forms_set; else the class map and float depth.
     * And whether the results stay in device memory. */
    int forms_set;
    unsigned seg_forms, depth_forms;
    int results_on_device;
    const mt_tuning *tuning;  /* experimental switches (NULL = defaults)    */
    /* A saved plan (`mtmi build`, pipeline/planfile.h) to start from: its
     * placement and input size are used (given ones must agree), and its
     * stages take the algorithm decisions it holds instead of measuring. */
    const char *saved_plan;
} mt_app_opts;

typedef struct mt_app {
    mtmi_model *model;
    char model_desc[512];
    mt_pipeline *pipe;
    char placement[512];
    int batch, channels, height, width;  /* the pipeline's input 0 */
    double build_ms;
    int seg, depth;           /* model output indices (-1 = none) */
    unsigned seg_forms, depth_forms;
    const mt_tuning *tuning;  /* the options', for the engine measurement */
    /* Backend decisions while building: taken from the saved plan, and
     * measured (all of them without one). */
    int decisions_saved, decisions_measured;
    int from_saved_plan;
    struct mt_planfile *saved; /* while opening with a saved plan */
} mt_app;

/* Loads or builds the model, specializes, splits, places, compiles. */
mtmi_status mt_app_open(const mt_app_opts *o, mt_app *app);
void mt_app_close(mt_app *app);
/* "" without a saved plan, else "; saved plan: N algorithm choices
 * reused, M searched" (buf of cap bytes). */
const char *mt_app_build_note(const mt_app *app, char *buf, size_t cap);
/* `mtmi build`: the opened app's pipeline as a saved plan at path (the
 * model, cache, input and every stage's decisions; planfile.h). */
mtmi_status mt_app_save_plan(const mt_app *app, const mt_app_opts *o, const char *path);
/* The engine's own whole-network time (ms, median of `iters` replays):
 * the whole model as one plan on the encoder's GPU and precision at the
 * pipeline's input size, float inputs and outputs on the device, no copies:
 * the rate (1000 / ms) a pipeline is measured against. */
mtmi_status mt_app_engine_ms(const mt_app *app, int iters, double *ms);
/* Puts image img (the input's H x W, RGB) into frame f's input 0, as
 * uint8 pixels or normalized floats, whichever the pipeline takes, for every
 * batch element. */
struct mt_image;
void mt_app_fill_input(const mt_pipeline *p, mt_frame *f, const struct mt_image *img);
/* One frame of image img through p, with no other frame pending: begin,
 * fill, submit, wait.  *f is then the finished frame (release it). */
mtmi_status mt_app_run_one(mt_pipeline *p, const struct mt_image *img, mt_frame **f);
/* Parses "--inject-error STAGE:FRAME". */
int mt_app_parse_inject(const char *s, mt_app_opts *o);
/* The pipeline output holding result `form` of the segmentation / depth
 * output, or -1. */
int mt_app_seg_result(const mt_app *app, unsigned form);
int mt_app_depth_result(const mt_app *app, unsigned form);
/* Parses a result list ("classes,logits,depth:fp16"; items classes,
 * logits (int8), logits:fp16, logits:fp32, depth (fp32), depth:fp16) into
 * MT_FORM_* sets; -1 with the error set on an unknown item. */
int mt_app_parse_results(const char *s, unsigned *seg_forms, unsigned *depth_forms);
/* "classes,depth:fp16" from the sets (buf of cap bytes). */
const char *mt_app_results_str(unsigned seg_forms, unsigned depth_forms, char *buf, size_t cap);

/* The summary block: throughput, per-stage and end-to-end percentiles,
 * memory. */
void mt_app_print_summary(FILE *f, const mt_app *app, const mt_stats *st, const mt_summary *s);
/* The tuning switches the MTMI_* environment variables ask for (the names
 * are beside each field of core/tuning.h; OPENBLAS_CORETYPE set also
 * keeps OpenBLAS's kernels), over the defaults.  An unparsable value is
 * reported on stderr once and ignored, as the library once did. */
void mt_app_tuning_from_env(mt_tuning *t);
/* The same as the string the public API takes (mtmi_plan_options.tuning),
 * "" when every switch is at its default; buf of cap bytes. */
const char *mt_app_tuning_env_string(char *buf, size_t cap);

/* The JSON report to f (the command line opens and commits it: a file
 * written atomically, or stdout); strings through mt_json_string, numbers
 * through mt_json_number (null when not finite).  `extra` is inserted
 * verbatim as more members (may be NULL or "", else it must start with a
 * comma). */
void mt_app_write_json(FILE *f, const char *command, const mt_app *app, const mt_stats *st, const mt_summary *s, const char *extra);

#endif
