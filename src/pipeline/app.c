/* The shared part of `mtmi run` and `mtmi bench`. */
#include "pipeline/app.h"

#include <stdlib.h>
#include <string.h>

#include "graph/mtmi_net.h"
#include "image/image.h"

static mtmi_status builtin_model(const mt_app_opts *o, mtmi_model **out) {
    *out = NULL;
    mt_mtmi_net_opts no = {.seed = o->seed, .height = o->height, .width = o->width};
    mt_mtmi_net_info info;
    mtmi_model *m = mt_alloc(sizeof *m);
    if (!m) return MTMI_ERR_NOMEM;
    mtmi_status s = mt_make_mtmi_net(&no, &m->graph, &info);
    if (s) {
        free(m);
        return mt_fail_context(s, "building the built-in MTMI network");
    }
    m->params = info.params;
    *out = m;
    return MTMI_OK;
}

int mt_app_parse_inject(const char *s, mt_app_opts *o) {
    int st;
    long long fr;
    if (!s || sscanf(s, "%d:%lld", &st, &fr) != 2 || st < 0 || fr < 0) return -1;
    o->inject_stage = st;
    o->inject_frame = fr;
    return 0;
}

/* Frames a second of pipeline p on one fixed synthetic frame (SPEC 8:
 * `auto` measures the candidates): `warmup` frames, then `frames` timed. */
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

static mtmi_status measure_fps(mt_pipeline *p, int warmup, int frames, double *fps) {
    *fps = 0;
    int n, h, w;
    input_geometry(p, &n, &h, &w);
    mt_image img;
    mtmi_status s = mt_image_synth_street(w, h, 1, &img);
    if (s) return s;
    mt_stats st;
    mt_stats_init(&st, p);
    int total = warmup + frames, sub = 0, done = 0;
    while (done < total && !s) {
        mt_frame *f;
        if (sub < total && mt_pipeline_pending(p) < mt_pipeline_inflight(p)) {
            if (!(s = mt_pipeline_begin(p, &f))) {
                mt_app_fill_input(p, f, &img);
                s = mt_pipeline_submit(p, f);
            }
            sub++;
            continue;
        }
        if ((s = mt_pipeline_wait(p, &f))) break;
        mt_stats_add(&st, f);
        mt_pipeline_release(p, f);
        done++;
    }
    if (!s) s = mt_pipeline_restart(p);
    if (!s) {
        mt_summary sm;
        mt_stats_summary(&st, warmup, &sm);
        *fps = sm.fps;
    }
    mt_stats_free(&st);
    mt_image_free(&img);
    return s;
}

/* `--place auto`: builds every candidate placement, measures it, keeps the
 * fastest.  Candidates that cannot be built (a device missing) are skipped. */
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
    mt_placement cand[8];
    int nc = mt_placement_candidates(names, nst, po->calib || po->calib_path, cand, 8);
    mt_pipeline *best = NULL;
    double best_fps = -1;
    for (int c = 0; c < nc; c++) {
        mt_pipeline *p = NULL;
        char buf[512];
        mt_placement_str(&cand[c], names, nst, buf, sizeof buf);
        if (mt_pipeline_from_model(app->model, shape, &cand[c], po, &p)) {
            if (!quiet) printf("auto: %s: not available (%s)\n", buf, mtmi_last_error());
            continue;
        }
        double fps = 0;
        s = measure_fps(p, 1, 3, &fps);
        if (!quiet) printf("auto: %s: %.2f fps\n", buf, fps);
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

mtmi_status mt_app_open(const mt_app_opts *o, mt_app *app) {
    memset(app, 0, sizeof *app);
    mtmi_status s;
    double t0 = mt_now_ms();
    if ((o->height > 0) != (o->width > 0) || o->height % 32 || o->width % 32 || o->height > 8192 || o->width > 8192)
        return mt_fail(MTMI_ERR_ARG, "input size %dx%d: height and width must both be multiples of 32 (up to 8192)", o->height,
                       o->width);
    if (o->model_path) {
        mtmi_load_options lo = {.fill_missing_weights = o->random_weights, .seed = o->seed};
        if ((s = mtmi_model_load(o->model_path, &lo, &app->model))) return s;
        snprintf(app->model_desc, sizeof app->model_desc, "%s", o->model_path);
    } else {
        if ((s = builtin_model(o, &app->model))) return s;
        snprintf(app->model_desc, sizeof app->model_desc, "built-in MTMI network (seed %llu)", (unsigned long long)o->seed);
    }
    /* Input size: --size overrides the declared H and W of input 0. */
    mtmi_tensor shape = {0};
    int rank;
    int64_t dims[MTMI_MAX_RANK];
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
    if (o->height > 0) shape.dims[2] = o->height, shape.dims[3] = o->width;
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
    if (o->place && (s = mt_placement_parse(o->place, &pl))) goto fail;
    if (!o->place) pl.is_auto = 1;
    mt_pipeline_opts po = MT_PIPELINE_OPTS_DEFAULT;
    po.inflight = o->sync ? 1 : (o->inflight > 0 ? o->inflight : 2);
    po.total_threads = o->threads;
    po.calib_path = o->calib_path;
    po.image_input = !o->host_preprocess;
    po.inject_stage = o->inject_stage;
    po.inject_frame = o->inject_frame;
    /* No --place: the heuristic choice (mt_placement_auto), at no cost;
     * --place auto: measure the candidates and keep the fastest. */
    if (o->place && pl.is_auto) {
        if ((s = auto_place(app, &shape, &po, o->quiet))) goto fail;
    } else if ((s = mt_pipeline_from_model(app->model, &shape, &pl, &po, &app->pipe))) goto fail;
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
    mtmi_model_free(app->model);
    app->model = NULL;
    return s;
}

void mt_app_close(mt_app *app) {
    mt_pipeline_free(app->pipe);
    mtmi_model_free(app->model);
    memset(app, 0, sizeof *app);
}

static int find_output(const mt_pipeline *p, int seg) {
    /* By name first ("seg...", "depth..."), then by shape: class logits
     * are NxCxHxW with C > 1, depth has C == 1. */
    int n = mt_pipeline_num_outputs(p);
    for (int i = 0; i < n; i++) {
        const char *name = mt_pipeline_output_name(p, i);
        const mt_tview *t = mt_pipeline_output_shape(p, i);
        if (t->rank == 4 && t->dtype == MTMI_FLOAT && (seg ? strstr(name, "seg") != NULL : strstr(name, "depth") != NULL))
            return i;
    }
    for (int i = 0; i < n; i++) {
        const mt_tview *t = mt_pipeline_output_shape(p, i);
        if (t->rank == 4 && t->dtype == MTMI_FLOAT && (seg ? t->dims[1] > 1 && t->dims[1] <= 255 : t->dims[1] == 1)) return i;
    }
    return -1;
}

int mt_app_seg_output(const mt_pipeline *p) { return find_output(p, 1); }
int mt_app_depth_output(const mt_pipeline *p) { return find_output(p, 0); }

void mt_app_print_summary(FILE *f, const mt_app *app, const mt_stats *st, const mt_summary *s) {
    const mt_pipeline *p = app->pipe;
    fprintf(f, "summary: %lld frames measured, %s, %d in flight: %.2f fps (%.2f ms a frame)\n", (long long)s->frames,
            mt_pipeline_inflight(p) == 1 ? "sync" : "pipelined", mt_pipeline_inflight(p), s->fps, s->period_mean);
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

static void json_escape(char *dst, size_t cap, const char *s) {
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') dst[o++] = '\\', dst[o++] = c;
        else if (c < 0x20) o += snprintf(dst + o, cap - o, "\\u%04x", c);
        else dst[o++] = c;
    }
    dst[o] = 0;
}

mtmi_status mt_app_write_json(const char *path, const char *command, const mt_app *app, const mt_stats *st,
                              const mt_summary *s, const char *extra) {
    char tmp[4200], esc[1100];
    FILE *f = mt_atomic_open(path, tmp, sizeof tmp);
    if (!f) return mt_fail(MTMI_ERR_IO, "%s: cannot write the JSON report", path);
    const mt_pipeline *p = app->pipe;
    fprintf(f, "{\n  \"command\": \"%s\",\n", command);
    json_escape(esc, sizeof esc, app->model_desc);
    fprintf(f, "  \"model\": \"%s\",\n  \"input\": [%d, %d, %d, %d],\n", esc, app->batch, app->channels, app->height, app->width);
    json_escape(esc, sizeof esc, app->placement);
    fprintf(f, "  \"placement\": \"%s\",\n  \"inflight\": %d,\n  \"sync\": %s,\n", esc, mt_pipeline_inflight(p),
            mt_pipeline_inflight(p) == 1 ? "true" : "false");
    fprintf(f, "  \"frames\": %lld,\n  \"frames_measured\": %lld,\n  \"fps\": %.4f,\n  \"frame_ms\": %.4f,\n", (long long)st->n,
            (long long)s->frames, s->fps, s->period_mean);
    fprintf(f, "  \"stages\": [\n");
    for (int k = 0; k < st->nstages; k++) {
        json_escape(esc, sizeof esc, st->stage_names[k]);
        fprintf(f, "    {\"name\": \"%s\", \"device\": \"%s\", \"threads\": %d, \"p50_ms\": %.4f, \"p99_ms\": %.4f, \"mean_ms\": %.4f}%s\n",
                esc, st->stage_devs[k], mt_pipeline_stage_threads(p, k), s->p50[k], s->p99[k], s->mean[k],
                k + 1 < st->nstages ? "," : "");
    }
    fprintf(f, "  ],\n  \"heads_ms\": {\"p50\": %.4f, \"p99\": %.4f},\n", s->heads_p50, s->heads_p99);
    fprintf(f, "  \"latency_ms\": {\"p50\": %.4f, \"p99\": %.4f, \"mean\": %.4f},\n", s->e2e_p50, s->e2e_p99, s->e2e_mean);
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
    fprintf(f, "  \"build_ms\": %.1f%s\n}\n", app->build_ms, extra ? extra : "");
    return mt_atomic_commit(f, tmp, path, !ferror(f));
}
