/* libtriton_mtmi.so: mtmi as a Triton Inference Server backend
 * (docs/TRITON.md).
 *
 * Triton loads a model from its repository folder: TRITONBACKEND_Model-
 * Initialize reads config.pbtxt's parameters (config.c) and loads the ONNX
 * file once; TRITONBACKEND_ModelInstanceInitialize gives each instance
 * (instance_group: one per GPU, or CPU instances) its own placement and
 * pipelines (engine.c).  TRITONBACKEND_ModelInstanceExecute gets a batch of
 * requests (the dynamic batcher's); every batch item of every request is a
 * frame, and the frames go through the instance's pipeline back to back,
 * frames_in_flight of them overlapping, so the batcher's batch is what keeps
 * mtmi's pipeline full.
 *
 * Errors never abort: a bad request gets an error response of one line
 * (mtmi's own message when mtmi failed) and the rest of the batch runs. */
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mtmi.h"
#include "triton/config.h"
#include "triton/engine.h"
#include "triton/triton_api.h"

#define MSG_CAP 512

/* ------------------------------------------------------------- helpers */
static TRITONSERVER_Error *error_new(TRITONSERVER_Error_Code code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static TRITONSERVER_Error *error_new(TRITONSERVER_Error_Code code, const char *fmt, ...) {
    char msg[MSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return TRITONSERVER_ErrorNew(code, msg);
}

static void log_msg(TRITONSERVER_LogLevel level, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void log_msg(TRITONSERVER_LogLevel level, int line, const char *fmt, ...) {
    char msg[MSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    TRITONSERVER_Error *e = TRITONSERVER_LogMessage(level, __FILE__, line, msg);
    if (e) TRITONSERVER_ErrorDelete(e);
}
#define LOG_INFO(...) log_msg(TRITONSERVER_LOG_INFO, __LINE__, __VA_ARGS__)
#define LOG_WARN(...) log_msg(TRITONSERVER_LOG_WARN, __LINE__, __VA_ARGS__)
#define LOG_ERROR(...) log_msg(TRITONSERVER_LOG_ERROR, __LINE__, __VA_ARGS__)

/* A server call's error into msg (taking it); 1 if there was one. */
static int took_error(TRITONSERVER_Error *e, char *msg, size_t cap) {
    if (!e) return 0;
    if (!msg[0]) snprintf(msg, cap, "%s", TRITONSERVER_ErrorMessage(e));
    TRITONSERVER_ErrorDelete(e);
    return 1;
}

/* Steady-clock nanoseconds, what Triton's statistics expect. */
static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* dir/file, or file when it is absolute. */
static int join_path(char *out, size_t cap, const char *dir, const char *file) {
    int n = file[0] == '/' ? snprintf(out, cap, "%s", file) : snprintf(out, cap, "%s/%s", dir, file);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* ------------------------------------------------------------- backend */
TRITONSERVER_Error *TRITONBACKEND_Initialize(TRITONBACKEND_Backend *backend) {
    uint32_t major = 0, minor = 0;
    TRITONSERVER_Error *e = TRITONBACKEND_ApiVersion(&major, &minor);
    if (e) return e;
    /* The API's rule: the same major version, at least the minor one the
     * backend was written for. */
    if (major != MTMI_TRITONBACKEND_API_MAJOR || minor < MTMI_TRITON_MIN_MINOR)
        return error_new(TRITONSERVER_ERROR_UNSUPPORTED,
                         "mtmi backend: the server's backend API is %u.%u; the backend needs %d.%d or a later %d.x", major, minor,
                         MTMI_TRITONBACKEND_API_MAJOR, MTMI_TRITON_MIN_MINOR, MTMI_TRITONBACKEND_API_MAJOR);
    LOG_INFO("mtmi backend: libmtmi %s, Triton backend API %u.%u", MTMI_VERSION, major, minor);
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_Finalize(TRITONBACKEND_Backend *backend) { return NULL; }

/* --------------------------------------------------------------- model */
typedef struct model_state {
    char name[256];
    mtb_config cfg;
    char version_dir[MTB_PATH_MAX];
    char calib_path[MTB_PATH_MAX];
    char plan_path[MTB_PATH_MAX]; /* "" = no saved plan */
    mtmi_model *model;
    pthread_mutex_t mu; /* instances build pipelines from the model one at a time */
    mtb_roles roles;
} model_state;

static void model_state_free(model_state *ms) {
    if (!ms) return;
    mtmi_model_free(ms->model);
    pthread_mutex_destroy(&ms->mu);
    free(ms);
}

/* The config's JSON into ms->cfg. */
static TRITONSERVER_Error *read_config(TRITONBACKEND_Model *model, model_state *ms) {
    TRITONSERVER_Message *msg = NULL;
    TRITONSERVER_Error *e = TRITONBACKEND_ModelConfig(model, 1, &msg);
    if (e) return e;
    const char *json = NULL;
    size_t len = 0;
    char err[MSG_CAP] = "";
    e = TRITONSERVER_MessageSerializeToJson(msg, &json, &len);
    if (!e && mtb_config_parse(json, len, &ms->cfg, err, sizeof err))
        e = error_new(TRITONSERVER_ERROR_INVALID_ARG, "mtmi model '%s': %s", ms->name, err);
    TRITONSERVER_Error *d = TRITONSERVER_MessageDelete(msg);
    if (d) TRITONSERVER_ErrorDelete(d);
    return e;
}

/* <repository>/<model>/<version>: where model_file and the cache are. */
static TRITONSERVER_Error *find_version_dir(TRITONBACKEND_Model *model, model_state *ms) {
    TRITONBACKEND_ArtifactType kind;
    const char *loc = NULL;
    uint64_t version = 0;
    TRITONSERVER_Error *e = TRITONBACKEND_ModelRepository(model, &kind, &loc);
    if (!e) e = TRITONBACKEND_ModelVersion(model, &version);
    if (e) return e;
    if (kind != TRITONBACKEND_ARTIFACT_FILESYSTEM || !loc)
        return error_new(TRITONSERVER_ERROR_UNSUPPORTED, "mtmi model '%s': the repository is not a local folder", ms->name);
    int n = snprintf(ms->version_dir, sizeof ms->version_dir, "%s/%llu", loc, (unsigned long long)version);
    if (n < 0 || (size_t)n >= sizeof ms->version_dir)
        return error_new(TRITONSERVER_ERROR_INVALID_ARG, "mtmi model '%s': repository path too long", ms->name);
    return NULL;
}

/* Loads the ONNX file and finds its heads. */
static TRITONSERVER_Error *load_model(model_state *ms) {
    char path[MTB_PATH_MAX], err[MSG_CAP];
    const mtb_config *c = &ms->cfg;
    if (join_path(path, sizeof path, ms->version_dir, c->model_file) ||
        (c->calibration_cache[0] && join_path(ms->calib_path, sizeof ms->calib_path, ms->version_dir, c->calibration_cache)) ||
        (c->plan_file[0] && join_path(ms->plan_path, sizeof ms->plan_path, ms->version_dir, c->plan_file)))
        return error_new(TRITONSERVER_ERROR_INVALID_ARG, "mtmi model '%s': path too long", ms->name);
    if (mtmi_model_load(path, NULL, &ms->model))
        return error_new(TRITONSERVER_ERROR_INVALID_ARG, "mtmi model '%s': %s", ms->name, mtmi_last_error());
    if (mtb_find_roles(ms->model, c, &ms->roles, err, sizeof err))
        return error_new(TRITONSERVER_ERROR_INVALID_ARG, "mtmi model '%s': %s", ms->name, err);
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInitialize(TRITONBACKEND_Model *model) {
    const char *name = NULL;
    TRITONSERVER_Error *e = TRITONBACKEND_ModelName(model, &name);
    if (e) return e;
    model_state *ms = calloc(1, sizeof *ms);
    if (!ms) return error_new(TRITONSERVER_ERROR_INTERNAL, "mtmi model '%s': out of memory", name);
    snprintf(ms->name, sizeof ms->name, "%s", name);
    pthread_mutex_init(&ms->mu, NULL);
    e = read_config(model, ms);
    if (!e) e = find_version_dir(model, ms);
    if (!e) e = load_model(ms);
    if (!e) e = TRITONBACKEND_ModelSetState(model, ms);
    if (e) {
        model_state_free(ms);
        return e;
    }
    LOG_INFO("mtmi model '%s': %s, max_batch_size %d, %d frames in flight", ms->name, ms->cfg.model_file, ms->cfg.max_batch_size,
             ms->cfg.frames_in_flight);
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelFinalize(TRITONBACKEND_Model *model) {
    void *st = NULL;
    TRITONSERVER_Error *e = TRITONBACKEND_ModelState(model, &st);
    if (e) return e;
    model_state_free(st);
    return NULL;
}

/* ------------------------------------------------------------ instance */
typedef struct instance_state {
    model_state *ms;
    TRITONBACKEND_ModelInstance *instance;
    char name[256];
    mtb_engine eng;
} instance_state;

/* This instance's placement: its kind and GPU decide (config.h). */
static TRITONSERVER_Error *instance_placement(TRITONBACKEND_ModelInstance *inst, const model_state *ms, char *out, size_t cap) {
    TRITONSERVER_InstanceGroupKind kind;
    int32_t dev = -1;
    TRITONSERVER_Error *e = TRITONBACKEND_ModelInstanceKind(inst, &kind);
    if (!e && kind == TRITONSERVER_INSTANCEGROUPKIND_GPU) e = TRITONBACKEND_ModelInstanceDeviceId(inst, &dev);
    if (e) return e;
    char err[MSG_CAP];
    if (mtb_instance_placement(ms->cfg.placement, kind == TRITONSERVER_INSTANCEGROUPKIND_GPU ? MTB_KIND_GPU : MTB_KIND_CPU, dev, out,
                               cap, err, sizeof err))
        return error_new(TRITONSERVER_ERROR_INVALID_ARG, "mtmi model '%s': %s", ms->name, err);
    return NULL;
}

/* The size the first requests will have, built now so that a config or
 * placement mistake fails the load and the first request is not slow: the
 * config's fixed dims, else the model's declared input size. */
static TRITONSERVER_Error *warm_up(instance_state *is) {
    const mtb_config *c = &is->ms->cfg;
    const int image = c->has_image;
    long h = image ? c->image_h : c->float_h, w = image ? c->image_w : c->float_w;
    int rank = 0;
    int64_t d[MTMI_MAX_RANK];
    if ((h < 1 || w < 1) && !mtmi_model_input_shape(is->ms->model, 0, &rank, d) && rank == 4) h = (long)d[2], w = (long)d[3];
    if (h < 1 || w < 1) return NULL; /* a dynamic size: built on first use */
    mtb_entry *en;
    char err[MSG_CAP];
    if (mtb_engine_entry(&is->eng, image, (int)h, (int)w, &en, err, sizeof err))
        return error_new(TRITONSERVER_ERROR_INVALID_ARG, "mtmi model '%s': %s", is->ms->name, err);
    /* a saved plan that does not fit this instance (another GPU, size or
     * placement) is not an error: the instance compiled instead */
    if (is->eng.plan_refused)
        LOG_WARN("mtmi instance '%s': plan_file not used, compiled at load: %s", is->name, is->eng.plan_note);
    LOG_INFO("mtmi instance '%s': placement %s, %s input %ldx%ld ready%s", is->name, is->eng.placement, image ? "uint8" : "float",
             h, w, is->eng.plan_path && !is->eng.plan_refused ? " (from the saved plan)" : "");
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceInitialize(TRITONBACKEND_ModelInstance *instance) {
    TRITONBACKEND_Model *model = NULL;
    void *mst = NULL;
    const char *name = NULL;
    TRITONSERVER_Error *e = TRITONBACKEND_ModelInstanceModel(instance, &model);
    if (!e) e = TRITONBACKEND_ModelState(model, &mst);
    if (!e) e = TRITONBACKEND_ModelInstanceName(instance, &name);
    if (e) return e;
    model_state *ms = mst;
    char placement[512];
    if ((e = instance_placement(instance, ms, placement, sizeof placement))) return e;
    instance_state *is = calloc(1, sizeof *is);
    if (!is) return error_new(TRITONSERVER_ERROR_INTERNAL, "mtmi instance '%s': out of memory", name);
    is->ms = ms;
    is->instance = instance;
    snprintf(is->name, sizeof is->name, "%s", name);
    mtb_engine_init(&is->eng, ms->model, &ms->mu, &ms->cfg, &ms->roles, placement, ms->calib_path);
    is->eng.plan_path = ms->plan_path[0] ? ms->plan_path : NULL;
    e = warm_up(is);
    if (!e) e = TRITONBACKEND_ModelInstanceSetState(instance, is);
    if (e) {
        mtb_engine_free(&is->eng);
        free(is);
    }
    return e;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceFinalize(TRITONBACKEND_ModelInstance *instance) {
    void *st = NULL;
    TRITONSERVER_Error *e = TRITONBACKEND_ModelInstanceState(instance, &st);
    if (e) return e;
    instance_state *is = st;
    if (is) mtb_engine_free(&is->eng);
    free(is);
    return NULL;
}

/* ------------------------------------------------------------- execute */
/* One request of a batch. */
typedef struct req {
    TRITONBACKEND_Request *r;
    TRITONBACKEND_Response *resp;
    char fail[MSG_CAP];        /* "" = fine so far */
    TRITONSERVER_Error_Code code;
    int items;                 /* batch items: frames */
    int image, h, w;
    const uint8_t *data;       /* the input, contiguous ... */
    uint8_t *own;              /* ... gathered here when it came in pieces */
    mtb_entry *entry;
    void *out[MTB_NOUT];       /* output buffers, every item's */
} req;

static int req_fail(req *q, TRITONSERVER_Error_Code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int req_fail(req *q, TRITONSERVER_Error_Code code, const char *fmt, ...) {
    if (!q->fail[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(q->fail, sizeof q->fail, fmt, ap);
        va_end(ap);
        q->code = code;
    }
    return -1;
}

/* The input's shape as [items, ...frame] (max_batch_size > 0) or [...frame];
 * sets the frame's kind and size. */
static int input_shape(req *q, const mtb_config *c, const char *name, const int64_t *shape, uint32_t rank) {
    const int batched = c->max_batch_size > 0;
    const uint32_t want = batched ? 4 : 3;
    const int64_t *f = batched ? shape + 1 : shape;
    const int64_t items = batched && rank == want ? shape[0] : 1;
    const char *form = q->image ? "[H, W, 3]" : "[3, H, W]";
    if (rank != want || (q->image ? f[2] != 3 : f[0] != 3))
        return req_fail(q, TRITONSERVER_ERROR_INVALID_ARG, "input '%s': shape must be %s%s (rank %u), got rank %u", name,
                        batched ? "[N] + " : "", form, want, rank);
    if (items < 1 || (batched && items > c->max_batch_size))
        return req_fail(q, TRITONSERVER_ERROR_INVALID_ARG, "input '%s': %lld batch items (1 to max_batch_size %d)", name,
                        (long long)items, c->max_batch_size);
    q->items = (int)items;
    q->h = (int)(q->image ? f[0] : f[1]);
    q->w = (int)(q->image ? f[1] : f[2]);
    if (q->h < 1 || q->w < 1 || q->h > 65536 || q->w > 65536)
        return req_fail(q, TRITONSERVER_ERROR_INVALID_ARG, "input '%s': frame size %dx%d", name, q->h, q->w);
    return 0;
}

/* The input's bytes as one host buffer (gathered when it came in pieces). */
static int input_data(req *q, TRITONBACKEND_Input *in, const char *name, uint64_t bytes, uint32_t nbuf) {
    uint64_t at = 0;
    for (uint32_t i = 0; i < nbuf; i++) {
        const void *buf = NULL;
        uint64_t size = 0;
        TRITONSERVER_MemoryType mt = TRITONSERVER_MEMORY_CPU;
        int64_t mid = 0;
        if (took_error(TRITONBACKEND_InputBuffer(in, i, &buf, &size, &mt, &mid), q->fail, sizeof q->fail)) return -1;
        if (mt == TRITONSERVER_MEMORY_GPU)
            return req_fail(q, TRITONSERVER_ERROR_UNSUPPORTED, "input '%s': in GPU memory; the mtmi backend reads host memory", name);
        if (size > bytes - at) return req_fail(q, TRITONSERVER_ERROR_INVALID_ARG, "input '%s': more bytes than its shape", name);
        if (nbuf == 1 && size == bytes) {
            q->data = buf;
            return 0;
        }
        if (!q->own && !(q->own = malloc(bytes ? bytes : 1)))
            return req_fail(q, TRITONSERVER_ERROR_INTERNAL, "input '%s': out of memory", name);
        memcpy(q->own + at, buf, size);
        at += size;
    }
    /* The properties' byte size and the buffers' must agree. */
    if (at != bytes) return req_fail(q, TRITONSERVER_ERROR_INVALID_ARG, "input '%s': %llu bytes in its buffers, %llu expected", name,
                                     (unsigned long long)at, (unsigned long long)bytes);
    q->data = q->own;
    return 0;
}

/* The request's one input: 'image' (uint8 HWC frames) or 'input' (float
 * CHW), checked against its shape and size. */
static int read_input(req *q, const mtb_config *c) {
    uint32_t n = 0;
    if (took_error(TRITONBACKEND_RequestInputCount(q->r, &n), q->fail, sizeof q->fail)) return -1;
    if (n != 1)
        return req_fail(q, TRITONSERVER_ERROR_INVALID_ARG, "the request has %u inputs: give one, '%s' (uint8 [H, W, 3]) or '%s' (fp32 [3, H, W])",
                        n, MTB_IN_IMAGE, MTB_IN_FLOAT);
    TRITONBACKEND_Input *in = NULL;
    const char *name = NULL;
    TRITONSERVER_DataType dt;
    const int64_t *shape = NULL;
    uint32_t rank = 0, nbuf = 0;
    uint64_t bytes = 0;
    if (took_error(TRITONBACKEND_RequestInputByIndex(q->r, 0, &in), q->fail, sizeof q->fail) ||
        took_error(TRITONBACKEND_InputProperties(in, &name, &dt, &shape, &rank, &bytes, &nbuf), q->fail, sizeof q->fail))
        return -1;
    q->image = !strcmp(name, MTB_IN_IMAGE);
    if (!q->image && strcmp(name, MTB_IN_FLOAT))
        return req_fail(q, TRITONSERVER_ERROR_INVALID_ARG, "input '%s': the mtmi backend takes '%s' or '%s'", name, MTB_IN_IMAGE, MTB_IN_FLOAT);
    if (dt != (q->image ? TRITONSERVER_TYPE_UINT8 : TRITONSERVER_TYPE_FP32))
        return req_fail(q, TRITONSERVER_ERROR_INVALID_ARG, "input '%s' must be %s", name, q->image ? "UINT8" : "FP32");
    if (input_shape(q, c, name, shape, rank)) return -1;
    const uint64_t want = (uint64_t)q->items * 3 * q->h * q->w * (q->image ? 1 : 4);
    if (bytes != want)
        return req_fail(q, TRITONSERVER_ERROR_INVALID_ARG, "input '%s': %llu bytes for a shape of %llu", name,
                        (unsigned long long)bytes, (unsigned long long)want);
    return input_data(q, in, name, bytes, nbuf);
}

/* The response and the outputs the request asked for, sized for its items;
 * their buffers are where the frames' results go. */
static int make_outputs(req *q, const mtb_config *c) {
    uint32_t n = 0;
    if (took_error(TRITONBACKEND_RequestOutputCount(q->r, &n), q->fail, sizeof q->fail)) return -1;
    static const TRITONSERVER_DataType types[MTB_NOUT] = {TRITONSERVER_TYPE_UINT8, TRITONSERVER_TYPE_FP32, TRITONSERVER_TYPE_INT8,
                                                          TRITONSERVER_TYPE_FP32};
    for (uint32_t i = 0; i < n; i++) {
        const char *name = NULL;
        if (took_error(TRITONBACKEND_RequestOutputName(q->r, i, &name), q->fail, sizeof q->fail)) return -1;
        int k = 0;
        while (k < MTB_NOUT && strcmp(name, mtb_output_names[k])) k++;
        if (k == MTB_NOUT || !c->want[k])
            return req_fail(q, TRITONSERVER_ERROR_INVALID_ARG, "output '%s' is not one this model makes", name);
        const mtb_entry *en = q->entry;
        int64_t shape[MTMI_MAX_RANK + 1];
        uint32_t rank = 0;
        if (c->max_batch_size > 0) shape[rank++] = q->items;
        for (int d = 0; d < en->rank[k]; d++) shape[rank++] = en->dims[k][d];
        TRITONSERVER_DataType dt = k == MTB_OUT_DEPTH && c->depth_fp16 ? TRITONSERVER_TYPE_FP16 : types[k];
        TRITONBACKEND_Output *out = NULL;
        void *buf = NULL;
        TRITONSERVER_MemoryType mt = TRITONSERVER_MEMORY_CPU;
        int64_t mid = 0;
        if (took_error(TRITONBACKEND_ResponseOutput(q->resp, &out, name, dt, shape, rank), q->fail, sizeof q->fail) ||
            took_error(TRITONBACKEND_OutputBuffer(out, &buf, (uint64_t)q->items * en->bytes[k], &mt, &mid), q->fail, sizeof q->fail))
            return -1;
        if (mt == TRITONSERVER_MEMORY_GPU)
            return req_fail(q, TRITONSERVER_ERROR_INTERNAL, "output '%s': the server gave GPU memory; the backend writes host memory", name);
        q->out[k] = buf;
    }
    return 0;
}

/* Everything before the run: input, pipeline, response, outputs. */
static void prepare(instance_state *is, req *q) {
    const mtb_config *c = &is->ms->cfg;
    if (read_input(q, c)) return;
    char err[MSG_CAP];
    if (mtb_engine_entry(&is->eng, q->image, q->h, q->w, &q->entry, err, sizeof err)) {
        req_fail(q, TRITONSERVER_ERROR_INVALID_ARG, "%s", err);
        return;
    }
    make_outputs(q, c);
}

/* The frames of the requests that are fine, in order. */
static int add_frames(req *reqs, uint32_t n, mtb_frame *frames) {
    int k = 0;
    for (uint32_t i = 0; i < n; i++) {
        req *q = &reqs[i];
        if (q->fail[0]) continue;
        for (int j = 0; j < q->items; j++, k++) {
            mtb_frame *f = &frames[k];
            memset(f, 0, sizeof *f);
            f->entry = q->entry;
            f->input = q->data + (size_t)j * q->entry->in_bytes;
            for (int o = 0; o < MTB_NOUT; o++) f->out[o] = q->out[o] ? (uint8_t *)q->out[o] + (size_t)j * q->entry->bytes[o] : NULL;
            f->fail = q->fail;
            f->fail_cap = sizeof q->fail;
        }
    }
    return k;
}

/* Sends the response (an error one if the request failed), reports the
 * statistics and gives the request back. */
static void finish(instance_state *is, req *q, const uint64_t t[4]) {
    TRITONSERVER_Error *err = NULL;
    if (q->fail[0]) err = TRITONSERVER_ErrorNew(q->code ? q->code : TRITONSERVER_ERROR_INTERNAL, q->fail);
    if (!q->resp) {
        char dummy[MSG_CAP] = "";
        if (took_error(TRITONBACKEND_ResponseNew(&q->resp, q->r), dummy, sizeof dummy)) LOG_ERROR("mtmi: no response: %s", dummy);
    }
    if (q->resp) {
        TRITONSERVER_Error *e = TRITONBACKEND_ResponseSend(q->resp, TRITONSERVER_RESPONSE_COMPLETE_FINAL, err);
        if (e) {
            LOG_ERROR("mtmi instance '%s': sending a response: %s", is->name, TRITONSERVER_ErrorMessage(e));
            TRITONSERVER_ErrorDelete(e);
        }
    }
    if (err) TRITONSERVER_ErrorDelete(err);
    TRITONSERVER_Error *e = TRITONBACKEND_ModelInstanceReportStatistics(is->instance, q->r, !q->fail[0], t[0], t[1], t[2], t[3]);
    if (e) TRITONSERVER_ErrorDelete(e);
    e = TRITONBACKEND_RequestRelease(q->r, TRITONSERVER_REQUEST_RELEASE_ALL);
    if (e) {
        LOG_ERROR("mtmi instance '%s': releasing a request: %s", is->name, TRITONSERVER_ErrorMessage(e));
        TRITONSERVER_ErrorDelete(e);
    }
    free(q->own);
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceExecute(TRITONBACKEND_ModelInstance *instance, TRITONBACKEND_Request **requests,
                                                       uint32_t count) {
    void *st = NULL;
    TRITONSERVER_Error *e = TRITONBACKEND_ModelInstanceState(instance, &st);
    if (e) return e;
    instance_state *is = st;
    uint64_t t[4] = {now_ns(), 0, 0, 0};
    req *reqs = calloc(count ? count : 1, sizeof *reqs);
    /* Before any request is touched: an error here leaves them the server's. */
    if (!reqs) return error_new(TRITONSERVER_ERROR_INTERNAL, "mtmi instance '%s': out of memory", is->name);
    mtb_engine_begin_batch(&is->eng);
    size_t frames_n = 0;
    for (uint32_t i = 0; i < count; i++) {
        req *q = &reqs[i];
        q->r = requests[i];
        if (took_error(TRITONBACKEND_ResponseNew(&q->resp, q->r), q->fail, sizeof q->fail)) q->resp = NULL;
        else prepare(is, q);
        if (!q->fail[0]) frames_n += (size_t)q->items;
    }
    mtb_frame *frames = calloc(frames_n ? frames_n : 1, sizeof *frames);
    if (!frames)
        for (uint32_t i = 0; i < count; i++) req_fail(&reqs[i], TRITONSERVER_ERROR_INTERNAL, "mtmi: out of memory for %zu frames", frames_n);
    t[1] = now_ns();
    int nf = frames ? add_frames(reqs, count, frames) : 0;
    mtb_engine_run(&is->eng, frames, nf);
    t[2] = now_ns();
    uint64_t done = 0;
    for (uint32_t i = 0; i < count; i++) done += reqs[i].fail[0] ? 0 : (uint64_t)reqs[i].items;
    t[3] = now_ns();
    for (uint32_t i = 0; i < count; i++) finish(is, &reqs[i], t);
    if (done) {
        e = TRITONBACKEND_ModelInstanceReportBatchStatistics(instance, done, t[0], t[1], t[2], t[3]);
        if (e) TRITONSERVER_ErrorDelete(e);
    }
    free(frames);
    free(reqs);
    return NULL;
}
