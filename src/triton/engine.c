/* One model instance's pipelines and the run of a batch of frames through
 * them (engine.h).  Only the public API of libmtmi. */
#include "triton/engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int eng_fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int eng_fail(char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* ------------------------------------------------------------------ roles */
/* The output named `name`, or else the first whose name contains `part`. */
static int find_output(const mtmi_model *m, const char *name, const char *part) {
    const int n = mtmi_model_num_outputs(m);
    for (int i = 0; i < n; i++) {
        const char *o = mtmi_model_output_name(m, i);
        if (name[0] ? !strcmp(o, name) : strstr(o, part) != NULL) return i;
    }
    return -1;
}

int mtb_find_roles(const mtmi_model *m, const mtb_config *c, mtb_roles *r, char *err, size_t cap) {
    r->seg = find_output(m, c->seg_output, "seg");
    r->depth = find_output(m, c->depth_output, "depth");
    const int need_seg = c->want[MTB_OUT_CLASSES] || c->want[MTB_OUT_LOGITS];
    const int need_depth = c->want[MTB_OUT_DEPTH];
    if ((need_seg && r->seg < 0) || (need_depth && r->depth < 0) || (r->seg >= 0 && r->seg == r->depth)) {
        char names[256] = "";
        for (int i = 0, n = 0; i < mtmi_model_num_outputs(m) && n >= 0 && (size_t)n < sizeof names; i++)
            n += snprintf(names + n, sizeof names - n, "%s'%s'", i ? ", " : "", mtmi_model_output_name(m, i));
        return eng_fail(err, cap,
                        "the model's outputs are %s: none is the %s output (parameters seg_output and depth_output name them)",
                        names, need_seg && (r->seg < 0 || r->seg == r->depth) ? "segmentation" : "depth");
    }
    return 0;
}

/* ----------------------------------------------------------------- engine */
void mtb_engine_init(mtb_engine *e, mtmi_model *m, pthread_mutex_t *mu, const mtb_config *cfg, const mtb_roles *roles,
                     const char *placement, const char *calib_path) {
    memset(e, 0, sizeof *e);
    e->model = m;
    e->model_mu = mu;
    e->cfg = cfg;
    e->roles = *roles;
    snprintf(e->placement, sizeof e->placement, "%s", placement);
    e->calib_path = calib_path && calib_path[0] ? calib_path : NULL;
}

static void entry_drop(mtb_entry *en) {
    mtmi_pipeline_free(en->pipe);
    en->pipe = NULL;
}

void mtb_engine_free(mtb_engine *e) {
    for (int i = 0; i < e->nentries; i++) entry_drop(&e->entries[i]);
    free(e->entries);
    e->entries = NULL;
    e->nentries = 0;
}

void mtb_engine_begin_batch(mtb_engine *e) { e->batch++; }

/* What the pipeline makes of each model output: the class map and int8
 * logits of the segmentation head, float or fp16 depth; other heads
 * nothing (so they do not run). */
static void result_requests(const mtb_engine *e, mtmi_result_request *req, int n) {
    const mtb_config *c = e->cfg;
    for (int i = 0; i < n; i++) {
        req[i] = (mtmi_result_request){.output = mtmi_model_output_name(e->model, i)};
        if (i == e->roles.seg)
            req[i].forms = (c->want[MTB_OUT_CLASSES] ? MTMI_RESULT_CLASSES : 0) | (c->want[MTB_OUT_LOGITS] ? MTMI_RESULT_INT8 : 0);
        if (i == e->roles.depth && c->want[MTB_OUT_DEPTH]) req[i].forms = c->depth_fp16 ? MTMI_RESULT_FP16 : MTMI_RESULT_FLOAT;
    }
}

/* Which backend output pipeline result `info` is, or -1. */
static int output_of(const mtb_engine *e, const mtmi_result_info *info) {
    if (info->output == e->roles.seg) {
        if (info->form == MTMI_RESULT_CLASSES) return MTB_OUT_CLASSES;
        if (info->form == MTMI_RESULT_INT8) return info->is_scale ? MTB_OUT_SCALE : MTB_OUT_LOGITS;
    }
    if (info->output == e->roles.depth && (info->form == MTMI_RESULT_FLOAT || info->form == MTMI_RESULT_FP16))
        return MTB_OUT_DEPTH;
    return -1;
}

static size_t dtype_size(mtmi_dtype t) {
    return t == MTMI_UINT8 || t == MTMI_INT8 ? 1 : t == MTMI_FLOAT16 ? 2 : t == MTMI_FLOAT ? 4 : 0;
}

/* The per-frame shape of each result: the pipeline runs one frame, batch
 * 1, so its leading dimension goes (the scales [1] keep theirs). */
static int map_results(const mtb_engine *e, mtb_entry *en, char *err, size_t cap) {
    for (int k = 0; k < MTB_NOUT; k++) en->res[k] = -1;
    en->nres = mtmi_pipeline_num_results(en->pipe);
    for (int i = 0; i < en->nres; i++) {
        mtmi_result_info info;
        if (mtmi_pipeline_result_info(en->pipe, i, &info)) return eng_fail(err, cap, "%s", mtmi_last_error());
        const int k = output_of(e, &info);
        if (k < 0) continue;
        if (info.rank < 1 || info.dims[0] != 1 || !dtype_size(info.dtype))
            return eng_fail(err, cap, "result '%s' is not one frame of a known type", info.name);
        en->res[k] = i;
        en->rank[k] = info.rank > 1 ? info.rank - 1 : 1;
        en->dims[k][0] = 1;
        size_t numel = 1;
        for (int d = 1; d < info.rank; d++) en->dims[k][d - 1] = info.dims[d], numel *= (size_t)info.dims[d];
        en->bytes[k] = numel * dtype_size(info.dtype);
    }
    for (int k = 0; k < MTB_NOUT; k++)
        if (e->cfg->want[k] && en->res[k] < 0) return eng_fail(err, cap, "the pipeline makes no '%s'", mtb_output_names[k]);
    return 0;
}

/* Builds entry en's pipeline for its size and kind. */
static int entry_build(mtb_engine *e, mtb_entry *en, char *err, size_t cap) {
    const int n = mtmi_model_num_outputs(e->model);
    mtmi_result_request *req = calloc((size_t)n + 1, sizeof *req);
    if (!req) return eng_fail(err, cap, "out of memory");
    result_requests(e, req, n);
    mtmi_tensor shape = {.dtype = MTMI_FLOAT, .rank = 4, .dims = {1, 3, en->h, en->w}};
    mtmi_pipeline_options o = {.placement = e->placement,
                               .frames_in_flight = e->cfg->frames_in_flight,
                               .threads = e->cfg->threads,
                               .calibration_cache = e->calib_path,
                               .input_shape = &shape,
                               .results = req,
                               .nresults = n,
                               .image_input = en->image};
    /* mtmi_last_error is kept per thread: read it on this one. */
    pthread_mutex_lock(e->model_mu);
    mtmi_status s;
    /* A saved plan serves the entry it was made for (size, input kind,
     * placement: given here, so they must agree); any other is compiled,
     * and why the plan did not fit is noted once for the log. */
    o.saved_plan = e->plan_path;
    if (o.saved_plan && (s = mtmi_pipeline_create(e->model, &o, &en->pipe))) {
        if (!e->plan_refused) snprintf(e->plan_note, sizeof e->plan_note, "%s", mtmi_last_error());
        e->plan_refused = 1;
        o.saved_plan = NULL;
    }
    if (!o.saved_plan) s = mtmi_pipeline_create(e->model, &o, &en->pipe);
    if (s) eng_fail(err, cap, "%s", mtmi_last_error());
    pthread_mutex_unlock(e->model_mu);
    free(req);
    if (s) return -1;
    en->in_bytes = (size_t)3 * en->h * en->w * (en->image ? 1 : sizeof(float));
    if (map_results(e, en, err, cap)) {
        entry_drop(en);
        return -1;
    }
    return 0;
}

/* A slot for a new size: a free one (never used, or its pipeline failed
 * to build), else the least recently used one not used by this batch (its
 * frames may still be queued). */
static mtb_entry *free_slot(mtb_engine *e) {
    if (!e->entries) {
        e->entries = calloc((size_t)e->cfg->max_sizes, sizeof *e->entries);
        if (!e->entries) return NULL;
    }
    for (int i = 0; i < e->nentries; i++)
        if (!e->entries[i].h) return &e->entries[i];
    if (e->nentries < e->cfg->max_sizes) return &e->entries[e->nentries++];
    mtb_entry *lru = NULL;
    for (int i = 0; i < e->nentries; i++) {
        mtb_entry *en = &e->entries[i];
        if (en->batch != e->batch && (!lru || en->last_used < lru->last_used)) lru = en;
    }
    if (lru) entry_drop(lru);
    return lru;
}

int mtb_engine_entry(mtb_engine *e, int image, int h, int w, mtb_entry **out, char *err, size_t cap) {
    *out = NULL;
    if (h < 1 || w < 1 || h > 65536 || w > 65536) return eng_fail(err, cap, "frame size %dx%d is out of range", h, w);
    mtb_entry *en = NULL;
    for (int i = 0; i < e->nentries && !en; i++)
        if (e->entries[i].image == image && e->entries[i].h == h && e->entries[i].w == w) en = &e->entries[i];
    if (!en) {
        if (!(en = free_slot(e)))
            return eng_fail(err, cap, "one batch holds frames of more than %d sizes (parameter max_input_sizes)", e->cfg->max_sizes);
        memset(en, 0, sizeof *en);
        en->image = image, en->h = h, en->w = w;
    }
    en->last_used = ++e->clock;
    en->batch = e->batch;
    /* Built on first use, and again after a failure dropped it; a size
     * that does not build leaves its slot free. */
    if (!en->pipe && entry_build(e, en, err, cap)) {
        memset(en, 0, sizeof *en);
        return -1;
    }
    *out = en;
    return 0;
}

/* ------------------------------------------------------------------- run */
static void frame_fail(mtb_frame *f, const char *msg) {
    if (f->fail && !f->fail[0]) snprintf(f->fail, f->fail_cap, "%s", msg && msg[0] ? msg : "mtmi: unknown failure");
}

/* Frames in flight in one pipeline, oldest first. */
typedef struct inflight {
    int idx[MTMI_MAX_FRAMES_IN_FLIGHT];
    int head, count;
} inflight;

static void q_push(inflight *q, int i) { q->idx[(q->head + q->count++) % MTMI_MAX_FRAMES_IN_FLIGHT] = i; }
static int q_pop(inflight *q) {
    int i = q->idx[q->head];
    q->head = (q->head + 1) % MTMI_MAX_FRAMES_IN_FLIGHT;
    q->count--;
    return i;
}

/* Takes the oldest frame of en's pipeline and copies what it asked for.  A
 * failure fails every frame in flight there (the pipeline stops at its
 * first error) and drops the pipeline. */
static void collect_one(mtb_entry *en, mtb_frame *frames, inflight *q) {
    mtmi_result r[64];
    void *user = NULL;
    if (en->nres > 64 || mtmi_pipeline_collect_results(en->pipe, r, en->nres, &user)) {
        const char *msg = en->nres > 64 ? "too many pipeline results" : mtmi_last_error();
        while (q->count) frame_fail(&frames[q_pop(q)], msg);
        entry_drop(en);
        return;
    }
    mtb_frame *f = &frames[q_pop(q)];
    if (user != f) frame_fail(f, "mtmi backend: frames came back out of order");
    else
        for (int k = 0; k < MTB_NOUT; k++)
            if (f->out[k] && en->res[k] >= 0) memcpy(f->out[k], r[en->res[k]].tensor.data, en->bytes[k]);
    mtmi_pipeline_release(en->pipe, NULL);
}

/* Submits frame f to its pipeline; 0 if it is in flight. */
static int submit(mtb_frame *f) {
    mtb_entry *en = f->entry;
    mtmi_tensor in = {.dtype = en->image ? MTMI_UINT8 : MTMI_FLOAT, .rank = 4, .data = (void *)f->input};
    if (en->image) in.dims[0] = 1, in.dims[1] = en->h, in.dims[2] = en->w, in.dims[3] = 3;
    else in.dims[0] = 1, in.dims[1] = 3, in.dims[2] = en->h, in.dims[3] = en->w;
    if (mtmi_pipeline_submit(en->pipe, &in, 1, f)) {
        frame_fail(f, mtmi_last_error());
        return -1;
    }
    return 0;
}

void mtb_engine_run(mtb_engine *e, mtb_frame *frames, int n) {
    inflight q = {{0}, 0, 0};
    mtb_entry *cur = NULL; /* the pipeline the frames in flight are in */
    int next = 0;
    while (next < n || q.count) {
        mtb_frame *f = next < n ? &frames[next] : NULL;
        /* A frame of a failed request is not run; a pipeline dropped by a
         * failure is built again for the frames after. */
        if (f && (f->fail[0] || !f->entry)) {
            frame_fail(f, "mtmi backend: frame has no pipeline");
            next++;
            continue;
        }
        if (f && !f->entry->pipe && !q.count) {
            char err[512];
            if (entry_build(e, f->entry, err, sizeof err)) frame_fail(f, err), next++;
            continue;
        }
        /* Frames of another pipeline wait until this one is drained. */
        const int fits = f && f->entry->pipe &&
                         (!q.count || (f->entry == cur && q.count < mtmi_pipeline_frames_in_flight(cur->pipe)));
        if (fits) {
            cur = f->entry;
            if (!submit(f)) q_push(&q, next);
            next++;
            continue;
        }
        collect_one(cur, frames, &q);
    }
}
