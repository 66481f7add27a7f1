/* The shared part of `mtmi run` and `mtmi bench` (outside the library:
 * the CLI and the pipeline tests link it). */
#include "app/app.h"

#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "pipeline/planfile.h"
#include "image/image.h"

/* The segmentation output (class logits NxCxHxW, C > 1) and the depth
 * output (C == 1) of the model, by name first ("seg...", "depth..."), then
 * by declared shape; -1 where none is found. */
static int model_output_role(const mtmi_model *m, int seg) {
    const mt_graph *g = m->graph;
    for (int i = 0; i < g->noutputs; i++)
        if (strstr(g->values[g->outputs[i]].name, seg ? "seg" : "depth")) return i;
    for (int i = 0; i < g->noutputs; i++) {
        const mt_value *v = &g->values[g->outputs[i]];
        if (v->rank == 4 && (seg ? v->dims[1] > 1 && v->dims[1] <= 255 : v->dims[1] == 1)) return i;
    }
    return -1;
}

int mt_app_parse_inject(const char *s, mt_app_opts *o) {
    int st;
    long long fr;
    if (!s || sscanf(s, "%d:%lld", &st, &fr) != 2 || st < 0 || fr < 0) return -1;
    o->inject_stage = st;
    o->inject_frame = fr;
    return 0;
}

/* The pipeline's input 0: float N x 3 x H x W, or uint8 images N x H x W x 3
 * (mt_pipeline_opts.image_input). */
static void input_geometry(const mt_pipeline *p, int *n, int *h, int *w) {
    const mt_tview *in = mt_pipeline_input_shape(p, 0);
    int img = in->dtype == MTMI_UINT8;
    *n = (int)in->dims[0];
    *h = (int)in->dims[img ? 1 : 2];
    *w = (int)in->dims[img ? 2 : 3];
}

void mt_app_fill_input(const mt_pipeline *p, mt_frame *f, const mt_image *img) {
    int n, h, w;
    input_geometry(p, &n, &h, &w);
    size_t per = (size_t)3 * w * h;
    for (int b = 0; b < n; b++) {
        if (f->inputs[0].dtype == MTMI_UINT8) memcpy((uint8_t *)f->inputs[0].data + b * per, img->px, per);
        else mt_image_to_chw(img, (float *)f->inputs[0].data + b * per);
    }
}

mtmi_status mt_app_run_one(mt_pipeline *p, const mt_image *img, mt_frame **f) {
    mtmi_status s = mt_pipeline_begin(p, f);
    if (s) return s;
    mt_app_fill_input(p, *f, img);
    if ((s = mt_pipeline_submit(p, *f))) return s;
    return mt_pipeline_wait(p, f);
}

/* `auto`'s measurement of one candidate (a built pipeline), on one fixed
 * synthetic frame: `warmup` frames first (first launches, lazy library
 * loads, CUDA graphs' first replays; 2 x the frames in flight + 2, so that
 * the pipeline is full before timing starts), then frames until
 * AUTO_BUDGET_MS of wall time has passed (at least AUTO_MIN_FRAMES, at
 * most AUTO_MAX_FRAMES).  The rate is the measured frames over the time
 * from the last warm-up frame's completion to the last measured one's: the
 * steady state.  Three frames with one warm-up, as before, let the first
 * candidate's cold start decide (an H100, 2026-12-07: all-FP16 measured at
 * 717 fps there, 936 in steady state, and auto kept INT8 heads at 862).
 * A candidate that runs far slower than the best so far (its time reaches
 * AUTO_GIVE_UP x what the best needed for the whole measurement, and at
 * least AUTO_GIVE_UP_MS) is stopped early: it cannot win (the CPU
 * placements on a GPU machine, seconds a frame); *stopped is set and *fps
 * is its rate so far (0 when no frame finished). */
#define AUTO_BUDGET_MS 250.0
#define AUTO_MIN_FRAMES 3
#define AUTO_MAX_FRAMES 400
#define AUTO_GIVE_UP 8.0
#define AUTO_GIVE_UP_MS 500.0
static mtmi_status measure_fps(mt_pipeline *p, double best_fps, double *fps, int *stopped) {
    *fps = 0;
    *stopped = 0;
    int n, h, w;
    input_geometry(p, &n, &h, &w);
    mt_image img;
    mtmi_status s = mt_image_synth_street(w, h, 1, &img);
    if (s) return s;
    const int warmup = 2 * mt_pipeline_inflight(p) + 2;
    double give_up = 1e300;
    if (best_fps > 0) {
        give_up = AUTO_GIVE_UP * 1000.0 * (warmup + AUTO_MIN_FRAMES) / best_fps + AUTO_GIVE_UP * AUTO_BUDGET_MS;
        if (give_up < AUTO_GIVE_UP_MS) give_up = AUTO_GIVE_UP_MS;
    }
    const double t_start = mt_now_ms();
    double t0 = 0, t_last = 0;
    int submitted = 0, done = 0, stop = 0;
    while (!s && (done < submitted || !stop)) {
        mt_frame *f;
        if (!stop && mt_pipeline_pending(p) < mt_pipeline_inflight(p)) {
            if (!(s = mt_pipeline_begin(p, &f))) {
                mt_app_fill_input(p, f, &img);
                s = mt_pipeline_submit(p, f);
            }
            submitted++;
            continue;
        }
        if ((s = mt_pipeline_wait(p, &f))) break;
        mt_pipeline_release(p, f);
        done++;
        const double now = mt_now_ms();
        if (done == warmup) t0 = now;
        if (done > warmup) t_last = now;
        const int measured = done - warmup;
        if (measured >= AUTO_MAX_FRAMES || (measured >= AUTO_MIN_FRAMES && now - t0 >= AUTO_BUDGET_MS)) stop = 1;
        if (!stop && now - t_start >= give_up) stop = *stopped = 1;
    }
    /* after an error the pipeline is stopped: nothing left to drain */
    if (!s) s = mt_pipeline_restart(p);
    if (!s && done > warmup && t_last > t0) *fps = (done - warmup) * 1000.0 / (t_last - t0);
    else if (!s && *stopped && done > 0) *fps = done * 1000.0 / (mt_now_ms() - t_start);
    mt_image_free(&img);
    return s;
}

/* Does every stage's backend run candidate c (device and operators)?  A
 * question, so that `auto` builds only what can run. */
static mtmi_status candidate_supported(const mt_pipeline *first, const mt_placement *c) {
    for (int i = 0; i < mt_pipeline_num_stages(first); i++) {
        mt_devspec d = mt_placement_lookup(c, mt_pipeline_stage_name(first, i));
        mtmi_status s = mt_device_supports(&d, mt_pipeline_stage_graph(first, i));
        if (s) return s;
    }
    return MTMI_OK;
}

/* `--place auto`: asks the backends which candidate placements they run,
 * builds those, measures each, keeps the fastest.  A candidate that still
 * fails to build is skipped too. */
static mtmi_status auto_place(mt_app *app, const mtmi_tensor *shape, const mt_pipeline_opts *po, int quiet) {
    mt_placement heur;
    memset(&heur, 0, sizeof heur);
    heur.is_auto = 1;
    mt_pipeline *first = NULL;
    mtmi_status s = mt_pipeline_from_model(app->model, shape, &heur, po, &first);
    if (s) return s;
    const char *names[MT_PLACE_MAX];
    int nst = mt_pipeline_num_stages(first);
    for (int i = 0; i < nst; i++) names[i] = mt_pipeline_stage_name(first, i);
    mt_placement cand[16];
    int nc = mt_placement_candidates(names, nst, po->calib || po->calib_path || app->model->qdq, cand, 16);
    mt_pipeline *best = NULL;
    double best_fps = -1;
    for (int c = 0; c < nc; c++) {
        mt_pipeline *p = NULL;
        char buf[512];
        mt_placement_str(&cand[c], names, nst, buf, sizeof buf);
        if (candidate_supported(first, &cand[c]) || mt_pipeline_from_model(app->model, shape, &cand[c], po, &p)) {
            if (!quiet) printf("auto: %s: not available (%s)\n", buf, mtmi_last_error());
            continue;
        }
        double fps = 0;
        int stopped = 0;
        s = measure_fps(p, best_fps, &fps, &stopped);
        if (!quiet) printf("auto: %s: %.2f fps%s\n", buf, fps, stopped ? " (stopped early: far slower than the best)" : "");
        if (!s && fps > best_fps) {
            mt_pipeline_free(best);
            best = p;
            best_fps = fps;
        } else mt_pipeline_free(p);
        if (s) break;
    }
    mt_pipeline_free(first);
    if (s) {
        mt_pipeline_free(best);
        return s;
    }
    if (!best) return mt_fail(MTMI_ERR_DEVICE, "auto placement: no candidate placement could be built");
    app->pipe = best;
    return MTMI_OK;
}

/* --plan, first step (before the model is made: the built-in network is
 * made at the input size): read the plan, check it against this machine,
 * take its input size (refusing a --size that differs). */
static mtmi_status read_saved_plan(mt_app *app, const mt_app_opts *o, int *height, int *width) {
    const char *name = o->saved_plan;
    app->saved = calloc(1, sizeof *app->saved);
    if (!app->saved) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    mt_planfile *pf = app->saved;
    mtmi_status s = mt_planfile_open(name, pf);
    if (s) return s;
    if (pf->rank != 4 || pf->dims[2] > 8192 || pf->dims[3] > 8192)
        return mt_fail(MTMI_ERR_ARG, "%s: saved plan's input is not an image input NxCxHxW", name);
    if (o->height > 0 && (pf->dims[2] != o->height || pf->dims[3] != o->width))
        return mt_fail(MTMI_ERR_ARG, "%s: saved plan made for input %lldx%lld, not --size %dx%d", name, (long long)pf->dims[2],
                       (long long)pf->dims[3], o->height, o->width);
    *height = (int)pf->dims[2];
    *width = (int)pf->dims[3];
    return MTMI_OK;
}

/* --plan, second step: the plan was made of this model, cache and input
 * kind; take its input shape and placement (refusing a --place that puts
 * a stage elsewhere). */
static mtmi_status adopt_saved_plan(mt_app *app, const mt_app_opts *o, mtmi_tensor *shape, const char **place) {
    const char *name = o->saved_plan;
    const mt_planfile *pf = app->saved;
    mt_plan_subject sub;
    mtmi_status s = mt_plan_subject_of(app->model, o->calib_path, !o->host_preprocess, &sub);
    if (!s) s = mt_planfile_check_run(pf, name, sub.model_key, sub.has_cache, sub.cache_key, sub.image_input);
    if (s) return s;
    if (pf->dims[1] != shape->dims[1]) return mt_fail(MTMI_ERR_ARG, "%s: saved plan's input has another shape than the model's", name);
    memcpy(shape->dims, pf->dims, sizeof(int64_t) * 4);
    if (o->place && (s = mt_planfile_check_placement(pf, name, o->place))) return s;
    *place = pf->placement;
    return MTMI_OK;
}

/* The pipeline built from a saved plan has the plan's stages, in order. */
static mtmi_status saved_plan_stages_match(const mt_app *app, const char *name) {
    const mt_planfile *pf = app->saved;
    int n = mt_pipeline_num_stages(app->pipe);
    int same = n == pf->nstages;
    for (int i = 0; same && i < n; i++) {
        char d[64];
        same = !strcmp(mt_pipeline_stage_name(app->pipe, i), pf->stage_name[i]) &&
               !strcmp(mt_devspec_str(mt_pipeline_stage_dev(app->pipe, i), d, sizeof d), pf->stage_dev[i]);
    }
    if (!same) return mt_fail(MTMI_ERR_ARG, "%s: saved plan's stages are not this model's: make it again with mtmi build", name);
    return MTMI_OK;
}

const char *mt_app_build_note(const mt_app *app, char *buf, size_t cap) {
    if (!app->from_saved_plan) return "";
    snprintf(buf, cap, "; saved plan: %d algorithm choice%s reused, %d searched", app->decisions_saved,
             app->decisions_saved == 1 ? "" : "s", app->decisions_measured);
    return buf;
}

mtmi_status mt_app_save_plan(const mt_app *app, const mt_app_opts *o, const char *path) {
    mt_plan_subject sub;
    mtmi_status s = mt_plan_subject_of(app->model, o->calib_path, !o->host_preprocess, &sub);
    if (s) return s;
    /* the model's input as NxCxHxW (an image pipeline's input 0 is
     * NxHxWx3 uint8) */
    int64_t d[4] = {app->batch, app->channels, app->height, app->width};
    sub.rank = 4;
    memcpy(sub.dims, d, sizeof d);
    char t[512];
    return mt_planfile_save(app->pipe, &sub, mt_app_tuning_env_string(t, sizeof t), path);
}

mtmi_status mt_app_open(const mt_app_opts *o, mt_app *app) {
    memset(app, 0, sizeof *app);
    mtmi_status s;
    double t0 = mt_now_ms();
    if ((o->height > 0) != (o->width > 0) || o->height % 32 || o->width % 32 || o->height > 8192 || o->width > 8192)
        return mt_fail(MTMI_ERR_ARG, "input size %dx%d: height and width must both be multiples of 32 (up to 8192)", o->height,
                       o->width);
    int height = o->height, width = o->width;
    if (o->saved_plan && (s = read_saved_plan(app, o, &height, &width))) goto fail;
    if (o->model_path) {
        mtmi_load_options lo = {.fill_missing_weights = o->random_weights, .seed = o->seed};
        if ((s = mtmi_model_load(o->model_path, &lo, &app->model))) goto fail;
        snprintf(app->model_desc, sizeof app->model_desc, "%s", o->model_path);
    } else if ((s = mt_builtin_model(o->trained_model, o->seed, height, width, &app->model, app->model_desc, sizeof app->model_desc)))
        goto fail; /* trained when models/mtmi_trained.onnx is found (builtin.h) */
    /* Input size: --size overrides the declared H and W of input 0. */
    mtmi_tensor shape = {0};
    int rank;
    int64_t dims[MTMI_MAX_RANK];
    app->tuning = o->tuning;
    if ((s = mtmi_model_input_shape(app->model, 0, &rank, dims))) goto fail;
    if (rank != 4) {
        s = mt_fail(MTMI_ERR_SHAPE, "%s: input 0 has rank %d; `run` needs an image input NxCxHxW", app->model_desc, rank);
        goto fail;
    }
    shape.dtype = MTMI_FLOAT;
    shape.rank = 4;
    memcpy(shape.dims, dims, sizeof dims);
    if (shape.dims[0] < 1) shape.dims[0] = 1;
    if (shape.dims[1] < 1) shape.dims[1] = 3;
    if (height > 0) shape.dims[2] = height, shape.dims[3] = width;
    if (shape.dims[2] < 1 || shape.dims[3] < 1) {
        s = mt_fail(MTMI_ERR_SHAPE, "%s: the input size is dynamic; give --size HxW", app->model_desc);
        goto fail;
    }
    if (shape.dims[1] != 3) {
        s = mt_fail(MTMI_ERR_SHAPE, "%s: input 0 has %lld channels; `run` feeds RGB images", app->model_desc,
                    (long long)shape.dims[1]);
        goto fail;
    }
    mt_placement pl;
    memset(&pl, 0, sizeof pl);
    const char *place = o->place;
    if (o->saved_plan && (s = adopt_saved_plan(app, o, &shape, &place))) goto fail;
    if (place && (s = mt_placement_parse(place, &pl))) goto fail;
    if (!place) pl.is_auto = 1;
    /* The results: the class map (or what was asked) of the segmentation
     * output, float depth; other outputs of a model stay as float. */
    app->seg = model_output_role(app->model, 1);
    app->depth = model_output_role(app->model, 0);
    if (app->depth == app->seg) app->depth = -1;
    app->seg_forms = o->forms_set ? o->seg_forms : MT_FORM_CLASSES;
    app->depth_forms = o->forms_set ? o->depth_forms : MT_FORM_FLOAT;
    const int nmo = mtmi_model_num_outputs(app->model);
    unsigned *forms = calloc((size_t)nmo + 1, sizeof *forms);
    unsigned char *on_dev = calloc((size_t)nmo + 1, 1);
    if (!forms || !on_dev) {
        free(forms);
        free(on_dev);
        s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < nmo; i++) {
        forms[i] = i == app->seg ? app->seg_forms : i == app->depth ? app->depth_forms : MT_FORM_FLOAT;
        on_dev[i] = (unsigned char)(o->results_on_device != 0);
    }
    mt_pipeline_opts po = MT_PIPELINE_OPTS_DEFAULT;
    po.model_forms = forms;
    po.model_on_device = on_dev;
    po.inflight = o->sync ? 1 : (o->inflight > 0 ? o->inflight : 2);
    po.total_threads = o->threads;
    po.calib_path = o->calib_path;
    po.image_input = !o->host_preprocess;
    po.inject_stage = o->inject_stage;
    po.inject_frame = o->inject_frame;
    po.tuning = o->tuning;
    if (app->saved) {
        po.replay = app->saved->choices;
        po.nreplay = app->saved->nstages;
    }
    /* No --place: the heuristic choice (mt_placement_auto), at no cost;
     * --place auto: measure the candidates and keep the fastest. */
    if (place && pl.is_auto) s = auto_place(app, &shape, &po, o->quiet);
    else s = mt_pipeline_from_model(app->model, &shape, &pl, &po, &app->pipe);
    free(forms);
    free(on_dev);
    if (s) goto fail;
    for (int i = 0; i < mt_pipeline_num_stages(app->pipe); i++) {
        const mt_choices *c = mt_pipeline_stage_choices(app->pipe, i);
        app->decisions_saved += c->found;
        app->decisions_measured += c->measured;
    }
    if (app->saved && (s = saved_plan_stages_match(app, o->saved_plan))) goto fail;
    app->from_saved_plan = app->saved != NULL;
    mt_planfile_free(app->saved);
    free(app->saved);
    app->saved = NULL;
    size_t len = 0;
    for (int i = 0; i < mt_pipeline_num_stages(app->pipe) && len < sizeof app->placement; i++) {
        char d[64];
        int n = snprintf(app->placement + len, sizeof app->placement - len, "%s%s=%s", i ? "," : "",
                         mt_pipeline_stage_name(app->pipe, i), mt_devspec_str(mt_pipeline_stage_dev(app->pipe, i), d, sizeof d));
        if (n > 0) len += n;
    }
    const mt_tview *in = mt_pipeline_input_shape(app->pipe, 0);
    (void)in;
    input_geometry(app->pipe, &app->batch, &app->height, &app->width);
    app->channels = 3;
    app->build_ms = mt_now_ms() - t0;
    return MTMI_OK;
fail:
    mt_pipeline_free(app->pipe);
    app->pipe = NULL;
    mt_planfile_free(app->saved);
    free(app->saved);
    app->saved = NULL;
    mtmi_model_free(app->model);
    app->model = NULL;
    return s;
}

mtmi_status mt_app_engine_ms(const mt_app *app, int iters, double *ms) {
    *ms = 0;
    const mt_devspec *d = mt_pipeline_stage_dev(app->pipe, 0);
    if (d->kind != MT_DEV_CUDA)
        return mt_fail(MTMI_ERR_UNSUPPORTED, "the engine's whole-network time is measured on a GPU; the encoder runs on %s",
                       mt_precision_name(d->prec));
    /* The whole model as one plan on the encoder's GPU and precision, at
     * the pipeline's input size, replayed with nothing around it (the
     * backend's bench: CUDA-graph replays): what the engine computes per
     * frame. */
    mtmi_tensor shape = {.dtype = MTMI_FLOAT, .rank = 4, .dims = {app->batch, 3, app->height, app->width}};
    mt_devspec whole = *d;
    whole.sms = 0;
    if (whole.prec == MT_PREC_INT8) whole.prec = MT_PREC_FP16;
    mt_graph *g = NULL;
    mt_plan *plan = NULL;
    mt_stage_cfg cfg = {.tuning = app->tuning};
    mtmi_status s = mt_model_specialize_ex(app->model, &shape, 1, 1, app->tuning, &g);
    if (!s) s = mt_plan_create(NULL, &whole, g, &cfg, &plan);
    if (!s && !plan->be->bench) s = mt_fail(MTMI_ERR_UNSUPPORTED, "backend '%s' cannot time a plan", plan->be->name);
    if (!s) s = plan->be->bench(plan->impl, iters, ms);
    mt_plan_free(plan);
    mt_graph_free(g);
    return s;
}

void mt_app_close(mt_app *app) {
    mt_pipeline_free(app->pipe);
    mtmi_model_free(app->model);
    memset(app, 0, sizeof *app);
}

int mt_app_seg_result(const mt_app *app, unsigned form) {
    return app->seg < 0 ? -1 : mt_pipeline_find_output(app->pipe, app->seg, form);
}
int mt_app_depth_result(const mt_app *app, unsigned form) {
    return app->depth < 0 ? -1 : mt_pipeline_find_output(app->pipe, app->depth, form);
}

int mt_app_parse_results(const char *s, unsigned *seg_forms, unsigned *depth_forms) {
    static const struct {
        const char *name;
        int seg;
        unsigned form;
    } items[] = {{"classes", 1, MT_FORM_CLASSES}, {"logits", 1, MT_FORM_INT8},  {"logits:int8", 1, MT_FORM_INT8},
                 {"logits:fp16", 1, MT_FORM_FP16},  {"logits:fp32", 1, MT_FORM_FLOAT}, {"depth", 0, MT_FORM_FLOAT},
                 {"depth:fp32", 0, MT_FORM_FLOAT},  {"depth:fp16", 0, MT_FORM_FP16}};
    *seg_forms = *depth_forms = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s ? s : "");
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t k = 0, n = sizeof items / sizeof *items;
        while (k < n && strcmp(items[k].name, t)) k++;
        if (k == n)
            return mt_fail(MTMI_ERR_ARG, "unknown result '%s' (classes, logits[:int8|:fp16|:fp32], depth[:fp32|:fp16])", t), -1;
        *(items[k].seg ? seg_forms : depth_forms) |= items[k].form;
    }
    return 0;
}

const char *mt_app_results_str(unsigned seg_forms, unsigned depth_forms, char *buf, size_t cap) {
    static const struct {
        const char *name;
        int seg;
        unsigned form;
    } items[] = {{"classes", 1, MT_FORM_CLASSES}, {"logits:int8", 1, MT_FORM_INT8}, {"logits:fp16", 1, MT_FORM_FP16},
                 {"logits:fp32", 1, MT_FORM_FLOAT}, {"depth:fp32", 0, MT_FORM_FLOAT},  {"depth:fp16", 0, MT_FORM_FP16}};
    size_t len = 0;
    buf[0] = 0;
    for (size_t k = 0; k < sizeof items / sizeof *items && len < cap; k++)
        if ((items[k].seg ? seg_forms : depth_forms) & items[k].form) {
            int n = snprintf(buf + len, cap - len, "%s%s", len ? "," : "", items[k].name);
            if (n > 0) len += (size_t)n;
        }
    return buf;
}


/* Device-to-host bytes a frame, and the bandwidth its copies reached (the
 * bytes over the copy time the device measured), or -1. */
static double copy_gbps(const mt_app *app, const mt_summary *s) {
    const size_t b = mt_pipeline_d2h_bytes(app->pipe);
    return b && s->copy_mean > 0 ? b / (s->copy_mean * 1e6) : -1;
}

void mt_app_print_summary(FILE *f, const mt_app *app, const mt_stats *st, const mt_summary *s) {
    const mt_pipeline *p = app->pipe;
    const int overlap = mt_pipeline_can_overlap(p);
    fprintf(f, "summary: %lld frames measured, %s, %d in flight: %.2f fps (%.2f ms a frame)\n", (long long)s->frames,
            mt_pipeline_inflight(p) == 1 ? "sync" : overlap ? "pipelined" : "in turns", mt_pipeline_inflight(p), s->fps,
            s->period_mean);
    if (!overlap && mt_pipeline_inflight(p) > 1)
        fprintf(f, "note: every stage runs on the same CPU device, so stages take turns on its cores and frames in flight "
                   "cannot overlap; give the heads their own device (--place) to pipeline\n");
    char res[128];
    const size_t d2h = mt_pipeline_d2h_bytes(p);
    fprintf(f, "results: %s, %s", mt_app_results_str(app->seg_forms, app->depth_forms, res, sizeof res),
            mt_pipeline_num_outputs(p) && mt_pipeline_output_mem(p, 0) == MT_MEM_DEVICE ? "left in device memory" : "to the host");
    if (d2h) {
        fprintf(f, "; %.2f MB a frame from the GPU", d2h / 1e6);
        if (copy_gbps(app, s) > 0)
            fprintf(f, ", copies %.3f ms a frame (%.1f GB/s while copying, %.1f GB/s sustained)", s->copy_mean, copy_gbps(app, s),
                    d2h * s->fps / 1e9);
    }
    fprintf(f, "\n");
    fprintf(f, "  %-16s %-16s %7s %10s %10s %10s %9s\n", "stage", "device", "threads", "p50 ms", "p99 ms", "mean ms", "plan MiB");
    for (int k = 0; k < st->nstages; k++) {
        const mt_devspec *d = mt_pipeline_stage_dev(p, k);
        char thr[16] = "-";
        if (d->kind == MT_DEV_CPU) snprintf(thr, sizeof thr, "%d", mt_pipeline_stage_threads(p, k));
        fprintf(f, "  %-16s %-16s %7s %10.2f %10.2f %10.2f %9.1f\n", st->stage_names[k], st->stage_devs[k], thr, s->p50[k],
                s->p99[k], s->mean[k], mt_pipeline_stage_memory(p, k) / 1048576.0);
    }
    if (st->nstages > 1) fprintf(f, "  %-16s %-16s %7s %10.2f %10.2f\n", "heads (span)", "", "", s->heads_p50, s->heads_p99);
    fprintf(f, "  %-16s %-16s %7s %10.2f %10.2f %10.2f\n", "end to end", "", "", s->e2e_p50, s->e2e_p99, s->e2e_mean);
    size_t gpu = 0, total = mt_pipeline_memory(p);
    for (int k = 0; k < st->nstages; k++)
        if (mt_pipeline_stage_dev(p, k)->kind == MT_DEV_CUDA) gpu += mt_pipeline_stage_memory(p, k);
    fprintf(f, "memory: %.1f MiB in plans and %d frame slots", total / 1048576.0, mt_pipeline_inflight(p));
    if (gpu) fprintf(f, " (%.1f MiB of it GPU plans)", gpu / 1048576.0);
    fprintf(f, "; peak RSS %.1f MiB\n", mt_peak_rss_bytes() / 1048576.0);
    for (int k = 0; k < mt_pipeline_num_gpus(p); k++) {
        int gi = 0;
        size_t b = mt_pipeline_gpu_memory(p, k, &gi);
        fprintf(f, "device memory cuda:%d: %.1f MiB beyond the CUDA context (%d frame%s in flight)\n", gi, b / 1048576.0,
                mt_pipeline_inflight(p), mt_pipeline_inflight(p) == 1 ? "" : "s");
    }
}

/* "name": number (null when not finite), through core's one JSON writer. */
static void jnum(FILE *f, const char *name, double v, const char *sep) {
    fprintf(f, "\"%s\": ", name);
    mt_json_number(f, "%.4f", v);
    fputs(sep, f);
}

void mt_app_write_json(FILE *f, const char *command, const mt_app *app, const mt_stats *st, const mt_summary *s,
                       const char *extra) {
    const mt_pipeline *p = app->pipe;
    fprintf(f, "{\n  \"command\": ");
    mt_json_string(f, command);
    fprintf(f, ",\n  \"model\": ");
    mt_json_string(f, app->model_desc);
    fprintf(f, ",\n  \"input\": [%d, %d, %d, %d],\n  \"placement\": ", app->batch, app->channels, app->height, app->width);
    mt_json_string(f, app->placement);
    fprintf(f, ",\n  \"inflight\": %d,\n  \"sync\": %s,\n", mt_pipeline_inflight(p), mt_pipeline_inflight(p) == 1 ? "true" : "false");
    fprintf(f, "  \"frames\": %lld,\n  \"frames_measured\": %lld,\n  ", (long long)st->n, (long long)s->frames);
    jnum(f, "fps", s->fps, ",\n  ");
    jnum(f, "frame_ms", s->period_mean, ",\n");
    fprintf(f, "  \"stages\": [\n");
    for (int k = 0; k < st->nstages; k++) {
        fprintf(f, "    {\"name\": ");
        mt_json_string(f, st->stage_names[k]);
        fprintf(f, ", \"device\": ");
        mt_json_string(f, st->stage_devs[k]);
        fprintf(f, ", \"threads\": %d, ", mt_pipeline_stage_threads(p, k));
        jnum(f, "p50_ms", s->p50[k], ", ");
        jnum(f, "p99_ms", s->p99[k], ", ");
        jnum(f, "mean_ms", s->mean[k], k + 1 < st->nstages ? "},\n" : "}\n");
    }
    fprintf(f, "  ],\n  \"heads_ms\": {");
    jnum(f, "p50", s->heads_p50, ", ");
    jnum(f, "p99", s->heads_p99, "},\n  \"latency_ms\": {");
    jnum(f, "p50", s->e2e_p50, ", ");
    jnum(f, "p99", s->e2e_p99, ", ");
    jnum(f, "mean", s->e2e_mean, "},\n");
    size_t gpu = 0;
    for (int k = 0; k < st->nstages; k++)
        if (mt_pipeline_stage_dev(p, k)->kind == MT_DEV_CUDA) gpu += mt_pipeline_stage_memory(p, k);
    fprintf(f, "  \"memory\": {\"pipeline_bytes\": %zu, \"gpu_plan_bytes\": %zu, \"peak_rss_bytes\": %zu, \"gpu_device_bytes\": {",
            mt_pipeline_memory(p), gpu, mt_peak_rss_bytes());
    for (int k = 0; k < mt_pipeline_num_gpus(p); k++) {
        int gi = 0;
        size_t b = mt_pipeline_gpu_memory(p, k, &gi);
        fprintf(f, "%s\"cuda:%d\": %zu", k ? ", " : "", gi, b);
    }
    fprintf(f, "}},\n");
    char res[128];
    fprintf(f, "  \"results\": ");
    mt_json_string(f, mt_app_results_str(app->seg_forms, app->depth_forms, res, sizeof res));
    fprintf(f, ",\n  \"overlap\": %s,\n", mt_pipeline_can_overlap(p) ? "true" : "false");
    fprintf(f, "  \"d2h_bytes_per_frame\": %zu,\n  ", mt_pipeline_d2h_bytes(p));
    jnum(f, "copy_ms_per_frame", s->copy_mean, ",\n  \"copy_gbps\": ");
    mt_json_number(f, "%.3f", copy_gbps(app, s));
    fprintf(f, ",\n  \"build_ms\": ");
    mt_json_number(f, "%.1f", app->build_ms);
    fprintf(f, "%s\n}\n", extra ? extra : "");
}
