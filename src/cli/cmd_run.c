/* mtmi run: the multi-task app (SPEC 6).  Frames (PNG files, or synthetic
 * street scenes) go through the pipeline: encoder, then the heads on their
 * devices, N frames in flight.  The heads make on their devices only what
 * --save asks for (the class map, int8 logits, depth), and image decoding
 * and file writing run on worker threads (run_io.c) in parallel with the
 * devices, with bounded queues both ways.  Files per frame:
 *   <stem>_classes.png  8-bit class indices (Cityscapes train IDs)
 *   <stem>_depth.npy    depth head output, float32 (or fp16) H x W
 *   <stem>_logits.npy   int8 C x H x W (scale in manifest.json), or fp16/fp32
 *   <stem>_vis.png      input | class map | depth, with a class legend
 * or with --format seed the original deployment's headerless
 * <stem>_seg.bin (int8 logits) and <stem>_depth.bin (float32); and
 * manifest.json describing the run and every frame's files. */
#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "graph/graph.h"
#include "image/image.h"
#include "app/app.h"
#include "synth/synth.h"

#define RUN_MAX_SLOTS 64

typedef struct run_ctx {
    char **files;
    int nfiles;
    int64_t frames;
    int nwrite;                 /* frames whose outputs are written (the first pass) */
    char (*stems)[MT_NAME_CAP]; /* of the written frames, made unique */
    run_write_opts wo;
    int logits_form, depth_form; /* MT_FORM_* of the saved logits / depth */
    int workers;                /* 0 = automatic */
    /* result indices in the pipeline (-1 = not made) */
    int r_classes, r_logits, r_scale, r_depth;
    /* the frame image of each pipeline slot, until its frame is handed on */
    mt_image slot_img[RUN_MAX_SLOTS];
    int slot_owned[RUN_MAX_SLOTS];
} run_ctx;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int has_png_ext(const char *n) {
    size_t l = strlen(n);
    return l > 4 && n[l - 4] == '.' && tolower((unsigned char)n[l - 3]) == 'p' && tolower((unsigned char)n[l - 2]) == 'n' &&
           tolower((unsigned char)n[l - 1]) == 'g';
}

static int list_pngs(const char *dir, run_ctx *c) {
    DIR *d = opendir(dir);
    if (!d) return cli_error("run: cannot open image folder '%s'", dir);
    struct dirent *e;
    int cap = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !has_png_ext(e->d_name)) continue;
        if (c->nfiles == cap) {
            cap = cap ? cap * 2 : 16;
            char **f = realloc(c->files, sizeof(char *) * cap);
            if (!f) break;
            c->files = f;
        }
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(n);
        if (!p) break;
        snprintf(p, n, "%s/%s", dir, e->d_name);
        c->files[c->nfiles++] = p;
    }
    closedir(d);
    if (!c->nfiles) return cli_error("run: no PNG images in '%s'", dir);
    qsort(c->files, c->nfiles, sizeof(char *), cmp_str);
    return 0;
}

static void stem_of(const char *path, char *out, size_t cap) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, cap, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

/* Stems of the written frames.  Two sources whose stems differ only in
 * case or extension (A.png, A.PNG, a.png) would write the same files (or
 * the same files on a case-insensitive disk): mt_file_names keeps the first
 * and gives the others "_<index>", before anything is written. */
static int make_stems(run_ctx *c) {
    char(*raw)[256] = calloc((size_t)c->nwrite + 1, sizeof *raw);
    const char **names = calloc((size_t)c->nwrite + 1, sizeof *names);
    c->stems = calloc((size_t)c->nwrite + 1, sizeof *c->stems);
    int rc = 0;
    if (!raw || !names || !c->stems) rc = cli_error("run: out of memory");
    for (int i = 0; !rc && i < c->nwrite; i++) {
        if (c->nfiles) stem_of(c->files[i], raw[i], sizeof raw[i]);
        else snprintf(raw[i], sizeof raw[i], "synth_%03d", i);
        names[i] = raw[i];
    }
    if (!rc && mt_file_names(names, c->nwrite, "", c->stems)) rc = cli_lib_error();
    free(raw);
    free(names);
    return rc;
}

static const char *const g_suffix[2][4] = {{"_classes.png", "_depth.npy", "_vis.png", "_logits.npy"},
                                           {"_classes.png", "_depth.bin", "_vis.png", "_seg.bin"}};

static int cmp_path(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

/* Before anything is written: every output path fits, no two outputs are
 * the same file, and no output is one of the input images (each file
 * stat'ed once, not once per pair as mt_check_not_input per output would). */
static int check_outputs(const run_ctx *c) {
    const int nkinds = 4;
    char(*paths)[RUN_PATH_MAX] = malloc((size_t)(c->nwrite * nkinds + 1) * RUN_PATH_MAX);
    if (!paths) return cli_error("run: out of memory");
    int n = 0, rc = 1;
    for (int i = 0; i < c->nwrite; i++)
        for (int k = 0; k < nkinds; k++)
            if (c->wo.save & (1u << k)) {
                if (run_output_path(c->wo.outdir, c->stems[i], g_suffix[c->wo.format_seed][k], paths[n], RUN_PATH_MAX)) {
                    cli_lib_error();
                    goto done;
                }
                n++;
            }
    qsort(paths, n, RUN_PATH_MAX, cmp_path);
    for (int i = 1; i < n; i++)
        if (!strcmp(paths[i - 1], paths[i])) {
            cli_error("run: two frames would write '%s'", paths[i]);
            goto done;
        }
    for (int i = 0; i < c->nfiles; i++) {
        struct stat in;
        if (stat(c->files[i], &in)) continue;
        for (int k = 0; k < n; k++) {
            struct stat o;
            if (!stat(paths[k], &o) && o.st_dev == in.st_dev && o.st_ino == in.st_ino) {
                cli_error("run: output '%s' is the input image '%s'; choose another -o folder", paths[k], c->files[i]);
                goto done;
            }
        }
    }
    rc = 0;
done:
    free(paths);
    return rc;
}

/* --save LIST and --format into the files written and the results the
 * heads make: only what is written (or drawn) leaves the device. */
static int parse_save(const cli_parser *p, const char *s, run_ctx *c) {
    unsigned save = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
        if (!strcmp(t, "classes")) save |= RUN_SAVE_CLASSES;
        else if (!strcmp(t, "depth")) save |= RUN_SAVE_DEPTH;
        else if (!strcmp(t, "vis")) save |= RUN_SAVE_VIS;
        else if (!strcmp(t, "logits")) save |= RUN_SAVE_LOGITS;
        else if (!strcmp(t, "none")) save |= 1u << 8;
        else return cli_usage(p, "unknown --save item '%s' (classes, depth, vis, logits, none)", t);
    }
    if ((save & (1u << 8)) && (save & 15)) return cli_usage(p, "--save none cannot be combined with other items");
    c->wo.save = save & 15;
    return 0;
}

static void app_forms(const run_ctx *c, mt_app_opts *o) {
    const unsigned save = c->wo.save;
    o->seg_forms = (save & (RUN_SAVE_CLASSES | RUN_SAVE_VIS) ? MT_FORM_CLASSES : 0) | (save & RUN_SAVE_LOGITS ? c->logits_form : 0);
    o->depth_forms = save & (RUN_SAVE_DEPTH | RUN_SAVE_VIS) ? c->depth_form : 0;
    if (!save) { /* --save none: the pipeline still makes what `run` shows */
        o->seg_forms = MT_FORM_CLASSES;
        o->depth_forms = c->depth_form;
    }
    o->forms_set = 1;
}

/* Frame f's pixels from the reader into the pipeline's input slot. */
static int prepare_frame(run_ctx *c, run_io *rd, mt_app *app, mt_frame *f) {
    mt_image *img = &c->slot_img[f->slot];
    if (c->slot_owned[f->slot]) mt_image_free(img);
    if (run_io_take(rd, f->index, img, &c->slot_owned[f->slot])) return cli_lib_error();
    mt_app_fill_input(app->pipe, f, img);
    return 0;
}

/* Copies result r of frame f (batch element 0: every element holds the
 * same image) into *buf; returns the bytes or 0 if r is not made. */
static size_t take_result(const mt_frame *f, int r, void **buf, size_t *cap) {
    if (r < 0) return 0;
    const mt_tview *t = &f->outputs[r];
    const size_t bytes = (size_t)(mt_tview_numel(t) / t->dims[0]) * mt_dtype_size(t->dtype);
    if (run_job_reserve(buf, cap, bytes)) return 0;
    memcpy(*buf, t->data, bytes);
    return bytes;
}

/* Frame f's results into a writer job (the frame image moves with it). */
static int hand_to_writer(run_ctx *c, run_io *w, const mt_frame *f) {
    run_job *j = run_io_acquire(w);
    j->index = f->index;
    snprintf(j->stem, sizeof j->stem, "%s", c->stems[f->index]);
    j->input = c->slot_img[f->slot];
    j->input_owned = c->slot_owned[f->slot];
    memset(&c->slot_img[f->slot], 0, sizeof c->slot_img[f->slot]);
    c->slot_owned[f->slot] = 0;
    int ok = 1;
    if (c->r_classes >= 0) {
        const mt_tview *t = &f->outputs[c->r_classes];
        j->ch = (int)t->dims[t->rank - 2], j->cw = (int)t->dims[t->rank - 1];
        ok &= take_result(f, c->r_classes, (void **)&j->classes, &j->classes_cap) > 0;
    }
    if (c->r_logits >= 0) {
        const mt_tview *t = &f->outputs[c->r_logits];
        j->logits_dtype = t->dtype, j->lc = (int)t->dims[1], j->lh = (int)t->dims[2], j->lw = (int)t->dims[3];
        ok &= take_result(f, c->r_logits, &j->logits, &j->logits_cap) > 0;
        j->scale = c->r_scale >= 0 ? ((const float *)f->outputs[c->r_scale].data)[0] : 0;
    }
    if (c->r_depth >= 0) {
        const mt_tview *t = &f->outputs[c->r_depth];
        j->depth_dtype = t->dtype, j->dh = (int)t->dims[t->rank - 2], j->dw = (int)t->dims[t->rank - 1];
        ok &= take_result(f, c->r_depth, &j->depth, &j->depth_cap) > 0;
    }
    if (c->r_classes < 0) j->ch = j->cw = 0;
    if (!ok) j->index = -1; /* the writer gives the job back unwritten */
    run_io_submit(w, j);
    return ok ? 0 : cli_error("run: out of memory for frame %lld's results", (long long)f->index);
}

/* Which pipeline outputs hold what run writes. */
static int find_results(run_ctx *c, const mt_app *app) {
    c->r_classes = c->r_logits = c->r_scale = c->r_depth = -1;
    const mt_pipeline *p = app->pipe;
    if (app->seg_forms & MT_FORM_CLASSES) c->r_classes = mt_app_seg_result(app, MT_FORM_CLASSES);
    if (c->wo.save & RUN_SAVE_LOGITS) {
        c->r_logits = mt_app_seg_result(app, (unsigned)c->logits_form);
        /* the scales follow the int8 values (mt_graph_output_forms) */
        if (c->logits_form == MT_FORM_INT8 && c->r_logits >= 0) c->r_scale = c->r_logits + 1;
        if (c->r_scale >= 0 && (c->r_scale >= mt_pipeline_num_outputs(p) || mt_pipeline_output_shape(p, c->r_scale)->dtype != MTMI_FLOAT))
            return cli_error("run: the int8 logits come without their scales");
    }
    if (app->depth_forms) c->r_depth = mt_app_depth_result(app, (unsigned)c->depth_form);
    if ((c->wo.save & RUN_SAVE_LOGITS) && c->r_logits < 0) return cli_error("run: the model has no segmentation output for --save logits");
    if ((c->wo.save & RUN_SAVE_CLASSES) && c->r_classes < 0) return cli_error("run: the model has no segmentation output for --save classes");
    if ((c->wo.save & RUN_SAVE_DEPTH) && c->r_depth < 0) return cli_error("run: the model has no depth output for --save depth");
    return 0;
}

/* manifest.json: what the run was and every written frame's files. */
static int write_manifest(const run_ctx *c, const mt_app *app, const run_written *wr) {
    char path[RUN_PATH_MAX], tmp[RUN_PATH_MAX + 64];
    if (run_output_path(c->wo.outdir, "manifest", ".json", path, sizeof path)) return cli_lib_error();
    FILE *f = mt_atomic_open(path, tmp, sizeof tmp);
    if (!f) return cli_lib_error();
    const mt_pipeline *p = app->pipe;
    fprintf(f, "{\n  \"mtmi_version\": \"%s\",\n  \"model\": ", MTMI_VERSION);
    mt_json_string(f, app->model_desc);
    fprintf(f, ",\n  \"placement\": ");
    mt_json_string(f, app->placement);
    fprintf(f, ",\n  \"stages\": [");
    for (int s = 0; s < mt_pipeline_num_stages(p); s++) {
        char dev[64];
        const mt_devspec *d = mt_pipeline_stage_dev(p, s);
        fprintf(f, "%s{\"name\": ", s ? ", " : "");
        mt_json_string(f, mt_pipeline_stage_name(p, s));
        fprintf(f, ", \"device\": ");
        mt_json_string(f, mt_device_str(d, dev, sizeof dev));
        fprintf(f, ", \"precision\": ");
        mt_json_string(f, mt_precision_name(d->prec));
        fprintf(f, "}");
    }
    fprintf(f, "],\n  \"input\": {\"batch\": %d, \"height\": %d, \"width\": %d},\n", app->batch, app->height, app->width);
    fprintf(f, "  \"format\": \"%s\",\n  \"logits\": {\"dtype\": \"%s\", \"layout\": \"CHW\"},\n  \"depth\": {\"dtype\": \"%s\", "
               "\"meaning\": \"depth head output d in [0, 1] (sigmoid): %g * (%g / %g) ^ (1 - d) metres\"},\n",
            c->wo.format_seed ? "seed" : "npy",
            c->logits_form == MT_FORM_INT8 ? "int8" : c->logits_form == MT_FORM_FP16 ? "float16" : "float32",
            c->depth_form == MT_FORM_FP16 ? "float16" : "float32", MT_DEPTH_NEAR, MT_DEPTH_FAR, MT_DEPTH_NEAR);
    fprintf(f, "  \"classes\": [");
    for (int k = 0; k < 19; k++) {
        fprintf(f, "%s", k ? ", " : "");
        mt_json_string(f, mt_cityscapes_names[k]);
    }
    fprintf(f, "],\n  \"frames\": [");
    int first = 1;
    for (int i = 0; i < c->nwrite; i++) {
        if (!wr[i].done) continue;
        fprintf(f, "%s\n    {\"frame\": %d, \"stem\": ", first ? "" : ",", i);
        mt_json_string(f, c->stems[i]);
        fprintf(f, ", \"source\": ");
        mt_json_string(f, c->nfiles ? c->files[i] : "synthetic");
        fprintf(f, ", \"files\": {");
        const char *names[4] = {"classes", "depth", "vis", "logits"};
        int fk = 0;
        for (int k = 0; k < 4; k++)
            if (wr[i].files & (1u << k)) {
                char name[300];
                snprintf(name, sizeof name, "%s%s", c->stems[i], g_suffix[c->wo.format_seed][k]);
                fprintf(f, "%s\"%s\": ", fk++ ? ", " : "", names[k]);
                mt_json_string(f, name);
            }
        fprintf(f, "}");
        if ((wr[i].files & RUN_SAVE_LOGITS) && c->logits_form == MT_FORM_INT8) fprintf(f, ", \"logits_scale\": %.9g", wr[i].scale);
        fprintf(f, "}");
        first = 0;
    }
    fprintf(f, "\n  ]\n}\n");
    if (mt_atomic_commit(f, tmp, path, !ferror(f))) return cli_lib_error();
    return 0;
}

enum { O_IMAGES = 1, O_FRAMES, O_WORKERS, O_OUTPUT, O_TRACE, O_JSON, O_SAVE, O_FORMAT, O_LOGITS, O_DEPTH, O_SLOW_WRITER };
static const cli_opt g_opts[] = {
    CLI_ROWS_APP_MODEL,
    {O_IMAGES, "images", 0, CLI_STR, "DIR", 0, 0,
     "PNG frames (any PNG kind; centre-cropped and resized to the\nmodel's input); default: synthetic street scenes"},
    CLI_ROW_APP_PLACE,
    CLI_ROW_APP_CACHE,
    CLI_ROW_APP_PLAN,
    {O_FRAMES, "frames", 0, CLI_INT, "N", 1, 100000000, "frames to run (images repeat); default: one per image, or 4"},
    CLI_ROWS_APP_FLIGHT,
    CLI_ROW_APP_SIZE,
    CLI_ROW_APP_THREADS,
    {O_WORKERS, "workers", 0, CLI_INT, "N", 1, RUN_MAX_THREADS,
     "threads decoding images and writing files; default: the\ncores the devices leave (at least 2)"},
    {O_OUTPUT, "output", 'o', CLI_STR, "DIR", 0, 0,
     "the folder of the results (default results/): the files of\nthe first pass over the frames, and manifest.json"},
    {O_OUTPUT, "output-dir", 0, CLI_STR, "DIR", 0, 0, "the same as --output (its older name)"},
    {O_SAVE, "save", 0, CLI_STR, "LIST", 0, 0,
     "what each frame writes: classes, depth, vis, logits, or none\n(default classes,depth,vis); the heads make only that on\n"
     "their device, and only that crosses to the host:\n"
     "  <stem>_classes.png  8-bit class indices (train IDs)\n"
     "  <stem>_depth.npy    depth, HxW (--depth type)\n"
     "  <stem>_logits.npy   CxHxW logits (--logits type; int8:\n"
     "                      scale max|x|/127 in manifest.json)\n"
     "  <stem>_vis.png      input | class map | depth, legend"},
    {O_FORMAT, "format", 0, CLI_CHOICE, "npy|seed", 0, 0,
     "seed: the original deployment's headerless <stem>_seg.bin\n(int8 logits) and <stem>_depth.bin (float32) instead of .npy"},
    {O_LOGITS, "logits", 0, CLI_CHOICE, "int8|fp16|fp32", 0, 0, "the saved logits' type (default int8)"},
    {O_DEPTH, "depth", 0, CLI_CHOICE, "fp32|fp16", 0, 0, "the saved depth's type (default fp32)"},
    CLI_ROW_APP_HOST_PRE,
    {O_TRACE, "trace", 0, CLI_STR, "FILE", 0, 0, "Chrome trace-event timeline (open in ui.perfetto.dev)"},
    CLI_ROW_JSON(O_JSON, "the summary"),
    CLI_ROW_APP_QUIET,
    CLI_ROW_APP_INJECT,
    {O_SLOW_WRITER, "test-slow-writer", 0, CLI_INT, "MS", 0, 60000, "testing: each write job sleeps MS first"},
    {0},
};
const cli_command cli_cmd_run = {
    "run", "", 0, "the multi-task app: frames through the pipelined encoder and heads",
    "The multi-task app: each frame goes through the encoder and then the heads, on\n"
    "the devices of the placement, with N frames in flight (default 2; --sync = 1);\n"
    "images are decoded and results written by worker threads meanwhile.",
    g_opts, NULL};

static int parse_args(int argc, char **argv, run_ctx *c, mt_app_opts *o, const char **images, const char **trace,
                      const char **json) {
    c->wo.outdir = "results";
    c->wo.save = RUN_SAVE_CLASSES | RUN_SAVE_DEPTH | RUN_SAVE_VIS;
    c->logits_form = MT_FORM_INT8;
    c->depth_form = MT_FORM_FLOAT;
    int save_given = 0, id;
    cli_parser p;
    cli_parser_init(&p, &cli_cmd_run, argc, argv);
    while ((id = cli_next(&p)) > 0) {
        const int took = cli_app_take(&p, id, o, RUN_MAX_SLOTS);
        if (took < 0) return CLI_USAGE;
        if (took) continue;
        const char *v = p.value;
        switch (id) {
        case O_IMAGES: *images = v; break;
        case O_FRAMES: c->frames = p.num; break;
        case O_WORKERS: c->workers = (int)p.num; break;
        case O_OUTPUT: c->wo.outdir = v; break;
        case O_TRACE: *trace = v; break;
        case O_JSON: *json = v; break;
        case O_SAVE:
            if (parse_save(&p, v, c)) return CLI_USAGE;
            save_given = 1;
            break;
        case O_FORMAT: c->wo.format_seed = !strcmp(v, "seed"); break;
        case O_LOGITS: c->logits_form = !strcmp(v, "int8") ? MT_FORM_INT8 : !strcmp(v, "fp16") ? MT_FORM_FP16 : MT_FORM_FLOAT; break;
        case O_DEPTH: c->depth_form = !strcmp(v, "fp32") ? MT_FORM_FLOAT : MT_FORM_FP16; break;
        case O_SLOW_WRITER: c->wo.test_slow_write_ms = (int)p.num; break; /* test hook: writers sleep MS per frame */
        }
    }
    if (id == CLI_HELP) return -1;
    if (id == CLI_ERROR) return CLI_USAGE;
    if (c->wo.format_seed) {
        if (!save_given) c->wo.save = RUN_SAVE_LOGITS | RUN_SAVE_DEPTH | RUN_SAVE_VIS;
        if (c->logits_form != MT_FORM_INT8 || c->depth_form != MT_FORM_FLOAT)
            return cli_usage(&p, "--format seed writes int8 logits and float32 depth (drop --logits / --depth)");
    }
    cli_json_stdout(*json);
    return 0;
}

/* --json and --trace replace no input (model, cache, image) and not each
 * other, nor the manifest. */
static int check_reports(const run_ctx *c, const mt_app_opts *o, const mt_app *app, const char *json, const char *trace) {
    char manifest[RUN_PATH_MAX];
    const char *outs[3] = {json, trace, NULL};
    if (c->nwrite && !run_output_path(c->wo.outdir, "manifest", ".json", manifest, sizeof manifest)) outs[2] = manifest;
    int n;
    const char **ins = cli_inputs_list(app->model, (const char *const *)c->files, c->nfiles, &n);
    if (!ins) return 1;
    if (o->calib_path) ins[n++] = o->calib_path;
    const int rc = cli_check_report_paths("run", outs, 3, ins, n);
    free(ins);
    return rc;
}

/* Worker threads: the cores the devices leave (GPU stages leave all but
 * the application thread and the stage threads), at least 2. */
static int io_workers(const run_ctx *c, const mt_app *app) {
    if (c->workers) return c->workers;
    int busy = 1 + mt_pipeline_num_stages(app->pipe);
    for (int s = 0; s < mt_pipeline_num_stages(app->pipe); s++)
        if (mt_pipeline_stage_dev(app->pipe, s)->kind == MT_DEV_CPU) busy = mt_num_cores(); /* the CPU is computing */
    const int n = mt_num_cores() - busy;
    return n < 2 ? 2 : n;
}

static void print_io_summary(const run_ctx *c, run_io *io) {
    run_io_stat st;
    run_io_stats(io, &st);
    printf("io: %d worker thread%s (decoding up to %d frames ahead, %d write jobs, %.1f MiB of results held); per frame "
           "%.2f ms to decode, %.2f ms to write; waited %.1f ms in all for a free job\n",
           st.threads, st.threads == 1 ? "" : "s", st.slots, st.jobs, st.job_bytes / 1048576.0, st.decoded ? st.decode_ms / st.decoded : 0,
           st.jobs_done ? st.write_ms / st.jobs_done : 0, st.wait_ms);
    if (c->nwrite) printf("wrote %d frame%s to %s/ (manifest.json)\n", c->nwrite, c->nwrite == 1 ? "" : "s", c->wo.outdir);
}

int mt_cmd_run(int argc, char **argv) {
    mt_app_opts o = {.inject_stage = -1, .trained_model = cli_trained_model(), .tuning = cli_tuning()};
    const char *images = NULL, *trace = NULL, *json = NULL;
    run_ctx c;
    memset(&c, 0, sizeof c);
    int rc = parse_args(argc, argv, &c, &o, &images, &trace, &json);
    if (rc) return rc < 0 ? 0 : rc;
    rc = 1;
    mt_app app;
    memset(&app, 0, sizeof app);
    mt_stats st;
    memset(&st, 0, sizeof st);
    run_io *io = NULL;
    if (images && list_pngs(images, &c)) goto out;
    if (!c.frames) c.frames = c.nfiles ? c.nfiles : 4;
    c.nwrite = c.wo.save ? (int)(c.nfiles ? MT_MIN(c.frames, c.nfiles) : MT_MIN(c.frames, 8)) : 0;
    c.wo.nwrite = c.nwrite;
    app_forms(&c, &o);
    if (make_stems(&c) || check_outputs(&c)) goto out;
    if (c.nwrite && mt_mkdirs(c.wo.outdir)) {
        cli_error("run: cannot create output folder '%s'", c.wo.outdir);
        goto out;
    }
    if (mt_app_open(&o, &app)) {
        cli_lib_error();
        goto out;
    }
    if (find_results(&c, &app)) goto out;
    if ((json || trace) && check_reports(&c, &o, &app, json, trace)) goto out;
    if (run_io_start(c.nfiles ? c.files : NULL, c.nfiles ? c.nfiles : 8, app.width, app.height, c.frames, &c.wo,
                     io_workers(&c, &app), &io)) {
        cli_lib_error();
        goto out;
    }
    char res[128];
    printf("model: %s, input %dx%dx%dx%d\n", app.model_desc, app.batch, app.channels, app.height, app.width);
    char note[128];
    printf("placement: %s; %d frame%s in flight; %s; results %s; built in %.0f ms%s\n", app.placement,
           mt_pipeline_inflight(app.pipe), mt_pipeline_inflight(app.pipe) > 1 ? "s" : "", c.nfiles ? "PNG frames" : "synthetic frames",
           mt_app_results_str(app.seg_forms, app.depth_forms, res, sizeof res), app.build_ms, mt_app_build_note(&app, note, sizeof note));
    mt_stats_init(&st, app.pipe);
    /* SIGINT / SIGTERM: stop taking frames, finish the files being written,
     * list them in the manifest, exit 130 / 143 (a second signal: at once,
     * temporaries removed). */
    mt_signals_set_graceful(1);
    const double t_first = mt_now_ms();
    int64_t sub = 0, done = 0;
    const int inflight = mt_pipeline_inflight(app.pipe);
    while (done < c.frames && !mt_stop_requested()) {
        mt_frame *f;
        if (sub < c.frames && mt_pipeline_pending(app.pipe) < inflight) {
            if (mt_pipeline_begin(app.pipe, &f)) {
                cli_lib_error();
                goto out;
            }
            if (prepare_frame(&c, io, &app, f)) goto out;
            if (mt_pipeline_submit(app.pipe, f)) {
                cli_lib_error();
                goto out;
            }
            sub++;
            continue;
        }
        if (mt_pipeline_wait(app.pipe, &f)) {
            cli_lib_error();
            goto out;
        }
        mt_stats_add(&st, f);
        if (!o.quiet) {
            char line[256];
            mt_stats_loop_line(&st, st.n - 1, line, sizeof line);
            printf("%s\n", line);
        }
        /* The writers take the frame's results; the pipeline goes on. */
        if (f->index < c.nwrite && hand_to_writer(&c, io, f)) goto out;
        mt_pipeline_release(app.pipe, f);
        done++;
        if (run_io_error(io)) {
            cli_lib_error();
            goto out;
        }
    }
    if (run_io_finish(io)) {
        cli_lib_error();
        goto out;
    }
    if (mt_stop_requested()) {
        if (c.nwrite && !write_manifest(&c, &app, run_io_written(io)))
            fprintf(stderr, "mtmi: run interrupted after %lld frames; the files written are complete and in %s/manifest.json\n",
                    (long long)done, c.wo.outdir);
        goto out;
    }
    /* What the user gets: every frame through and every file written. */
    const double wall_s = (mt_now_ms() - t_first) / 1000.0, wall_fps = wall_s > 0 ? c.frames / wall_s : 0;
    mt_summary sm;
    mt_stats_summary(&st, st.n > 2 ? 1 : 0, &sm);
    mt_app_print_summary(stdout, &app, &st, &sm);
    print_io_summary(&c, io);
    printf("overall: %lld frames in %.2f s with every file written: %.1f frames/s\n", (long long)c.frames, wall_s, wall_fps);
    if (c.nwrite && write_manifest(&c, &app, run_io_written(io))) goto out;
    if (trace) {
        if (mt_stats_write_trace(&st, trace)) {
            cli_lib_error();
            goto out;
        }
        printf("trace: %s (open in ui.perfetto.dev)\n", trace);
    }
    char extra[128];
    snprintf(extra, sizeof extra, ",\n  \"overall_fps\": %.3f,\n  \"overall_s\": %.4f", wall_fps, wall_s);
    if (json && cli_write_app_json(json, "run", &app, &st, &sm, extra)) goto out;
    rc = 0;
out:
    fflush(stdout);
    run_io_stop(io); /* finishes what was queued: only complete files */
    mt_stats_free(&st);
    mt_app_close(&app);
    for (int i = 0; i < RUN_MAX_SLOTS; i++)
        if (c.slot_owned[i]) mt_image_free(&c.slot_img[i]);
    for (int i = 0; i < c.nfiles; i++) free(c.files[i]);
    free(c.files);
    free(c.stems);
    return rc;
}
