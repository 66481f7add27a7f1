/* The model config as the backend reads it (config.h): the parameters, the
 * declared inputs and outputs, checked against what the backend serves so
 * that a wrong config fails at load with a message, not at the first
 * request. */
#include "triton/config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "triton/json.h"

const char *const mtb_output_names[MTB_NOUT] = {"classes", "depth", "logits", "logits_scale"};

static int cfg_fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cfg_fail(char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

static int copy_str(char *dst, size_t cap, const char *src, const char *what, char *err, size_t errcap) {
    if (strlen(src) >= cap) return cfg_fail(err, errcap, "parameter '%s': longer than %zu bytes", what, cap - 1);
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

static int int_param(const char *key, const char *v, long lo, long hi, int *out, char *err, size_t cap) {
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi)
        return cfg_fail(err, cap, "parameter '%s': '%s' is not an integer in [%ld, %ld]", key, v, lo, hi);
    *out = (int)x;
    return 0;
}

/* One parameter: key and its string_value. */
static int set_param(mtb_config *c, const char *key, const char *v, char *err, size_t cap) {
    if (!strcmp(key, "model_file")) return copy_str(c->model_file, sizeof c->model_file, v, key, err, cap);
    if (!strcmp(key, "placement")) return copy_str(c->placement, sizeof c->placement, v, key, err, cap);
    if (!strcmp(key, "calibration_cache")) return copy_str(c->calibration_cache, sizeof c->calibration_cache, v, key, err, cap);
    if (!strcmp(key, "plan_file")) return copy_str(c->plan_file, sizeof c->plan_file, v, key, err, cap);
    if (!strcmp(key, "seg_output")) return copy_str(c->seg_output, sizeof c->seg_output, v, key, err, cap);
    if (!strcmp(key, "depth_output")) return copy_str(c->depth_output, sizeof c->depth_output, v, key, err, cap);
    if (!strcmp(key, "frames_in_flight")) return int_param(key, v, 1, 64, &c->frames_in_flight, err, cap);
    if (!strcmp(key, "threads")) return int_param(key, v, 0, 4096, &c->threads, err, cap);
    if (!strcmp(key, "max_input_sizes")) return int_param(key, v, 1, 64, &c->max_sizes, err, cap);
    /* A misspelt key would otherwise be ignored without a word. */
    return cfg_fail(err, cap,
                    "parameter '%s' is not one of the mtmi backend's (model_file, placement, frames_in_flight, threads, "
                    "calibration_cache, plan_file, seg_output, depth_output, max_input_sizes)",
                    key);
}

static int read_params(const mtj_value *root, mtb_config *c, char *err, size_t cap) {
    const mtj_value *ps = mtj_get(root, "parameters");
    if (!ps) return 0;
    if (ps->type != MTJ_OBJECT) return cfg_fail(err, cap, "'parameters' is not a map");
    for (int i = 0; i < ps->n; i++) {
        const char *v = mtj_get_str(&ps->items[i], "string_value");
        if (!v) return cfg_fail(err, cap, "parameter '%s' has no string_value", ps->keys[i]);
        if (set_param(c, ps->keys[i], v, err, cap)) return -1;
    }
    return 0;
}

/* A tensor's data_type and dims; rank -1 if dims are missing or bad. */
static int tensor_desc(const mtj_value *t, const char **dtype, int *rank, int64_t dims[8]) {
    const mtj_value *d = mtj_get(t, "dims");
    *dtype = mtj_get_str(t, "data_type");
    *rank = -1;
    if (!d || d->type != MTJ_ARRAY || d->n > 8) return -1;
    for (int i = 0; i < d->n; i++)
        if (mtj_int(&d->items[i], &dims[i])) return -1;
    *rank = d->n;
    return 0;
}

static int is_true(const mtj_value *t, const char *key) {
    const mtj_value *b = mtj_get(t, key);
    return b && b->type == MTJ_BOOL && b->boolean;
}

static int read_input(const mtj_value *t, mtb_config *c, int *optional, char *err, size_t cap) {
    const char *name = mtj_get_str(t, "name"), *dt;
    int rank;
    int64_t d[8];
    tensor_desc(t, &dt, &rank, d);
    if (!name) return cfg_fail(err, cap, "an input has no name");
    const int image = !strcmp(name, MTB_IN_IMAGE), flt = !strcmp(name, MTB_IN_FLOAT);
    if (image && (!dt || strcmp(dt, "TYPE_UINT8") || rank != 3 || d[2] != 3))
        return cfg_fail(err, cap, "input 'image' must be TYPE_UINT8 with dims [H, W, 3] (RGB, HWC; -1 = any size)");
    if (flt && (!dt || strcmp(dt, "TYPE_FP32") || rank != 3 || d[0] != 3))
        return cfg_fail(err, cap, "input 'input' must be TYPE_FP32 with dims [3, H, W] (normalized RGB, CHW; -1 = any size)");
    if (!image && !flt)
        return cfg_fail(err, cap,
                        "input '%s': the mtmi backend takes 'image' (TYPE_UINT8 [H, W, 3]) and/or 'input' (TYPE_FP32 [3, H, W])",
                        name);
    if (image) c->has_image = 1, c->image_h = (long)d[0], c->image_w = (long)d[1];
    else c->has_float = 1, c->float_h = (long)d[1], c->float_w = (long)d[2];
    *optional += is_true(t, "optional");
    return 0;
}

/* What each output must be: its type(s) and rank, and a leading fixed dim. */
static int read_output(const mtj_value *t, mtb_config *c, char *err, size_t cap) {
    static const char *const want_type[MTB_NOUT] = {"TYPE_UINT8", "TYPE_FP32", "TYPE_INT8", "TYPE_FP32"};
    static const int want_rank[MTB_NOUT] = {2, 3, 3, 1};
    static const char *const shape[MTB_NOUT] = {"TYPE_UINT8 [H, W]", "TYPE_FP32 or TYPE_FP16 [1, H, W]", "TYPE_INT8 [C, H, W]",
                                                 "TYPE_FP32 [1]"};
    const char *name = mtj_get_str(t, "name"), *dt;
    int rank;
    int64_t d[8];
    tensor_desc(t, &dt, &rank, d);
    if (!name) return cfg_fail(err, cap, "an output has no name");
    for (int k = 0; k < MTB_NOUT; k++) {
        if (strcmp(name, mtb_output_names[k])) continue;
        const int fp16 = k == MTB_OUT_DEPTH && dt && !strcmp(dt, "TYPE_FP16");
        const int type_ok = dt && (!strcmp(dt, want_type[k]) || fp16);
        const int fixed_ok = (k != MTB_OUT_DEPTH && k != MTB_OUT_SCALE) || (rank >= 1 && d[0] == 1);
        if (!type_ok || rank != want_rank[k] || !fixed_ok)
            return cfg_fail(err, cap, "output '%s' must be %s", name, shape[k]);
        c->want[k] = 1;
        if (fp16) c->depth_fp16 = 1;
        return 0;
    }
    return cfg_fail(err, cap, "output '%s': the mtmi backend makes classes, depth, logits and logits_scale", name);
}

static int read_tensors(const mtj_value *root, mtb_config *c, char *err, size_t cap) {
    const mtj_value *in = mtj_get(root, "input"), *out = mtj_get(root, "output");
    if (!in || in->type != MTJ_ARRAY || !in->n) return cfg_fail(err, cap, "the config declares no input (image or input)");
    if (!out || out->type != MTJ_ARRAY || !out->n) return cfg_fail(err, cap, "the config declares no output");
    int optional = 0;
    for (int i = 0; i < in->n; i++)
        if (read_input(&in->items[i], c, &optional, err, cap)) return -1;
    /* Both inputs declared: a request gives one of them, so both must be
     * optional or Triton would demand both. */
    if (c->has_image && c->has_float && optional < 2)
        return cfg_fail(err, cap, "inputs 'image' and 'input' are both declared: mark both 'optional: true' (a request gives one)");
    for (int i = 0; i < out->n; i++)
        if (read_output(&out->items[i], c, err, cap)) return -1;
    if (c->want[MTB_OUT_LOGITS] != c->want[MTB_OUT_SCALE])
        return cfg_fail(err, cap, "outputs 'logits' and 'logits_scale' go together (int8 codes and their scale)");
    return 0;
}

int mtb_config_parse(const char *json, size_t len, mtb_config *c, char *err, size_t cap) {
    memset(c, 0, sizeof *c);
    snprintf(c->model_file, sizeof c->model_file, "model.onnx");
    c->frames_in_flight = 2;
    c->max_sizes = 4;
    mtj_value root;
    if (mtj_parse(json, len, &root, err, cap)) return -1;
    int64_t mbs = 0;
    int rc = 0;
    if (mtj_get(&root, "max_batch_size") && (mtj_get_int(&root, "max_batch_size", &mbs) || mbs < 0 || mbs > (1 << 20)))
        rc = cfg_fail(err, cap, "max_batch_size is not a count");
    c->max_batch_size = (int)mbs;
    if (!rc) rc = read_params(&root, c, err, cap);
    if (!rc) rc = read_tensors(&root, c, err, cap);
    mtj_free(&root);
    return rc;
}

/* ---------------------------------------------------------------- placement */
/* Copies placement p into out with every "cuda:N" as "cuda:<N + shift>". */
static int shift_gpus(const char *p, int shift, char *out, size_t cap, char *err, size_t errcap) {
    size_t n = 0;
    while (*p) {
        if (!strncmp(p, "cuda:", 5) && p[5] >= '0' && p[5] <= '9') {
            char *end;
            long g = strtol(p + 5, &end, 10);
            if (g > 1024) return cfg_fail(err, errcap, "placement: GPU %ld is out of range", g);
            int k = snprintf(out + n, cap - n, "cuda:%ld", g + shift);
            if (k < 0 || (size_t)k >= cap - n) break;
            n += (size_t)k;
            p = end;
            continue;
        }
        if (n + 1 >= cap) break;
        out[n++] = *p++;
    }
    if (*p) return cfg_fail(err, errcap, "placement: longer than %zu bytes", cap - 1);
    out[n] = 0;
    return 0;
}

int mtb_instance_placement(const char *placement, int kind, int device, char *out, size_t cap, char *err, size_t errcap) {
    const int gpu = kind == MTB_KIND_GPU;
    const char *p = placement && placement[0] ? placement : gpu ? "cuda:0/fp16" : "cpu";
    if (!gpu) return snprintf(out, cap, "%s", p) < (int)cap ? 0 : cfg_fail(err, errcap, "placement: too long");
    if (device < 0) return cfg_fail(err, errcap, "a KIND_GPU instance without a GPU (device %d)", device);
    if (!strcmp(p, "auto") && device != 0)
        return cfg_fail(err, errcap,
                        "placement 'auto' chooses GPU 0; the instance on GPU %d needs stage devices (cuda:0 is the instance's GPU)",
                        device);
    return shift_gpus(p, device, out, cap, err, errcap);
}
