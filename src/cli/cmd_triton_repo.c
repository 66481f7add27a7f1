/* mtmi triton-repo [--model M] -o REPO [--place P] [--cache C] ...: a model
 * repository Triton Inference Server serves with the mtmi backend
 * (docs/TRITON.md): REPO/<name>/config.pbtxt and REPO/<name>/1/ with the
 * model's files (and the calibration cache).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

enum {
    O_MODEL = 1, O_OUTPUT, O_NAME, O_PLACE, O_CACHE, O_SIZE, O_FRAMES, O_THREADS, O_MAX_BATCH, O_DELAY, O_INSTANCES, O_DEPTH,
    O_LOGITS, O_INPUTS, O_PLAN
};
static const cli_opt g_opts[] = {
    {O_MODEL, "model", 0, CLI_STR, "M.onnx", 0, 0, "the model (default: the built-in MTMI network at --size)"},
    {O_OUTPUT, "output", 'o', CLI_STR, "REPO", 0, 0, "the model repository (required; made if missing)"},
    {O_NAME, "name", 0, CLI_STR, "NAME", 0, 0, "the model's name in the repository (default mtmi)"},
    {O_PLACE, "place", 0, CLI_STR, "P", 0, 0,
     "placement per instance (default cpu); one naming cuda makes one\ninstance per GPU, cuda:0 being the instance's GPU"},
    {O_CACHE, "cache", 0, CLI_STR, "FILE", 0, 0, "calibration cache for int8 stages (copied into the repository)"},
    {O_PLAN, "plan", 0, CLI_STR, "FILE", 0, 0,
     "a saved plan (mtmi build of the repository's model file; copied):\ninstances it fits start without searching, others compile"},
    {O_SIZE, "size", 0, CLI_STR, "HxW|any", 0, 0, "frame size served (default the model's; any = every size the\nmodel takes)"},
    {O_FRAMES, "inflight", 0, CLI_INT, "N", 1, 64, "frames in flight per instance (default 2)"},
    {O_THREADS, "threads", 0, CLI_INT, "N", 0, 4096, "CPU threads per instance (default 0 = all cores)"},
    {O_MAX_BATCH, "max-batch", 0, CLI_INT, "N", 0, 1024, "max_batch_size (default 8; 0 = no batch dimension)"},
    {O_DELAY, "queue-delay-us", 0, CLI_INT, "N", 0, 10000000, "the dynamic batcher's max queue delay (default 500)"},
    {O_INSTANCES, "instances", 0, CLI_INT, "N", 1, 64, "instances per device (default 1)"},
    {O_DEPTH, "depth", 0, CLI_CHOICE, "fp32|fp16", 0, 0, "the depth output's type (default fp32)"},
    {O_LOGITS, "logits", 0, CLI_FLAG, NULL, 0, 0, "also the int8 logits and their scale (outputs logits, logits_scale)"},
    {O_INPUTS, "inputs", 0, CLI_CHOICE, "image|input|both", 0, 0,
     "uint8 RGB frames (image), the float input (input) or both,\neach optional (default both)"},
    {0},
};
const cli_command cli_cmd_triton_repo = {
    "triton-repo", "", 0, "a Triton Inference Server model repository (mtmi backend)",
    "Writes a model repository for Triton Inference Server and the mtmi backend\n"
    "(libtriton_mtmi.so): REPO/NAME/config.pbtxt and REPO/NAME/1/ with the model\n"
    "(docs/TRITON.md).",
    g_opts, NULL};

typedef struct repo_args {
    const char *model, *out, *name, *place, *cache, *size, *depth, *inputs, *plan;
    long frames, threads, max_batch, delay, instances;
    int logits;
} repo_args;

/* 0 parsed, -1 help printed, CLI_USAGE on a usage error (reported). */
static int parse_args(int argc, char **argv, repo_args *r) {
    cli_parser p;
    cli_parser_init(&p, &cli_cmd_triton_repo, argc, argv);
    int id;
    while ((id = cli_next(&p)) > 0) {
        switch (id) {
        case O_MODEL: r->model = p.value; break;
        case O_OUTPUT: r->out = p.value; break;
        case O_NAME: r->name = p.value; break;
        case O_PLACE: r->place = p.value; break;
        case O_CACHE: r->cache = p.value; break;
        case O_PLAN: r->plan = p.value; break;
        case O_SIZE: r->size = p.value; break;
        case O_DEPTH: r->depth = p.value; break;
        case O_INPUTS: r->inputs = p.value; break;
        case O_FRAMES: r->frames = p.num; break;
        case O_THREADS: r->threads = p.num; break;
        case O_MAX_BATCH: r->max_batch = p.num; break;
        case O_DELAY: r->delay = p.num; break;
        case O_INSTANCES: r->instances = p.num; break;
        case O_LOGITS: r->logits = 1; break;
        }
    }
    if (id == CLI_HELP) return -1;
    if (id == CLI_ERROR) return CLI_USAGE;
    if (!r->out) return cli_usage(&p, "no repository given (-o REPO)");
    /* The name is a folder of the repository and a string of the config. */
    if (!r->name[0] || strspn(r->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != strlen(r->name) ||
        r->name[0] == '.')
        return cli_usage(&p, "--name '%s' (letters, digits, _ - .)", r->name);
    return 0;
}

/* ------------------------------------------------------------------ files */
/* A string for config.pbtxt: quotes and backslashes escaped, no control
 * characters (a placement or file name never has them). */
static int pbtxt_string(FILE *f, const char *s) {
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20) return -1;
    fputc('"', f);
    for (const char *c = s; *c; c++) {
        if (*c == '"' || *c == '\\') fputc('\\', f);
        fputc(*c, f);
    }
    fputc('"', f);
    return 0;
}

static int param(FILE *f, const char *key, const char *value) {
    fprintf(f, "parameters {\n  key: \"%s\"\n  value: { string_value: ", key);
    int rc = pbtxt_string(f, value);
    fprintf(f, " }\n}\n");
    return rc;
}

/* config.pbtxt; h, w < 1 = any size. */
static int write_config(FILE *f, const repo_args *r, long h, long w, int gpu, const char *model_file, int has_cache) {
    char hs[24], ws[24];
    snprintf(hs, sizeof hs, "%ld", h > 0 ? h : -1L);
    snprintf(ws, sizeof ws, "%ld", w > 0 ? w : -1L);
    const int both = !strcmp(r->inputs, "both"), opt = both;
    fprintf(f, "# Written by `mtmi triton-repo` for the mtmi backend (docs/TRITON.md).\n");
    fprintf(f, "name: \"%s\"\nbackend: \"mtmi\"\nmax_batch_size: %ld\n", r->name, r->max_batch);
    fprintf(f, "input [\n");
    if (both || !strcmp(r->inputs, "image"))
        fprintf(f, "  { name: \"image\" data_type: TYPE_UINT8 dims: [ %s, %s, 3 ]%s }%s\n", hs, ws, opt ? " optional: true" : "",
                both ? "," : "");
    if (both || !strcmp(r->inputs, "input"))
        fprintf(f, "  { name: \"input\" data_type: TYPE_FP32 dims: [ 3, %s, %s ]%s }\n", hs, ws, opt ? " optional: true" : "");
    /* Outputs at any size: a model's heads need not answer at the input's. */
    fprintf(f, "]\noutput [\n  { name: \"classes\" data_type: TYPE_UINT8 dims: [ -1, -1 ] },\n"
               "  { name: \"depth\" data_type: %s dims: [ 1, -1, -1 ] }%s\n",
            strcmp(r->depth, "fp16") ? "TYPE_FP32" : "TYPE_FP16", r->logits ? "," : "");
    if (r->logits)
        fprintf(f, "  { name: \"logits\" data_type: TYPE_INT8 dims: [ -1, -1, -1 ] },\n"
                   "  { name: \"logits_scale\" data_type: TYPE_FP32 dims: [ 1 ] }\n");
    fprintf(f, "]\n");
    if (r->max_batch > 0) fprintf(f, "dynamic_batching { max_queue_delay_microseconds: %ld }\n", r->delay);
    fprintf(f, "instance_group [ { kind: %s count: %ld } ]\n", gpu ? "KIND_GPU" : "KIND_CPU", r->instances);
    char num[32];
    int rc = param(f, "model_file", model_file);
    if (r->place) rc |= param(f, "placement", r->place);
    snprintf(num, sizeof num, "%ld", r->frames);
    rc |= param(f, "frames_in_flight", num);
    if (r->threads) snprintf(num, sizeof num, "%ld", r->threads), rc |= param(f, "threads", num);
    if (has_cache) rc |= param(f, "calibration_cache", "calibration.cache");
    if (r->plan) rc |= param(f, "plan_file", "model.plan");
    return rc;
}

/* Copies file src to dst (atomically). */
static int copy_file(const char *src, const char *dst) {
    uint8_t *data = NULL;
    size_t n = 0;
    mtmi_status s = mt_read_file(src, &data, &n);
    if (!s) s = mt_write_file_atomic(dst, data, n);
    free(data);
    return s ? cli_lib_error() : 0;
}

/* The model's files (the ONNX file and its external data, each where the
 * model's folder had it) into dir, the ONNX file under its own name. */
static int copy_model(const mtmi_model *m, const char *dir, char *model_file, size_t cap) {
    int n = 0;
    const char **files = cli_inputs_list(m, NULL, 0, &n);
    if (!files) return 1;
    int rc = n < 1 ? cli_error("triton-repo: the model was read from no file") : 0;
    const char *slash = n ? strrchr(files[0], '/') : NULL;
    const size_t base = slash ? (size_t)(slash - files[0]) + 1 : 0;
    for (int i = 0; i < n && !rc; i++) {
        /* External data lies in the model's folder (mtmi reads nothing
         * outside it), so its path relative to that folder is kept. */
        if (strncmp(files[i], files[0], base))
            rc = cli_error("triton-repo: '%s' is outside the model's folder", files[i]);
        char dst[PATH_MAX], sub[PATH_MAX];
        if (!rc && mt_path_join(dst, sizeof dst, dir, files[i] + base)) rc = cli_lib_error();
        snprintf(sub, sizeof sub, "%s", dst);
        char *cut = strrchr(sub, '/');
        if (cut) *cut = 0;
        if (!rc && cut && mt_mkdirs(sub)) rc = cli_error("triton-repo: cannot create '%s'", sub);
        if (!rc) rc = copy_file(files[i], dst);
    }
    if (!rc) snprintf(model_file, cap, "%s", files[0] + base);
    free(files);
    return rc;
}

/* The served frame size: --size, else the model's input (any if dynamic). */
static int served_size(const mtmi_model *m, const char *size, long *h, long *w) {
    *h = *w = -1;
    if (size && !strcmp(size, "any")) return 0;
    if (size) {
        mtmi_tensor t;
        if (cli_parse_shape(size, &t) || t.rank != 2 || t.dims[0] < 1 || t.dims[1] < 1 || t.dims[0] > 65536 || t.dims[1] > 65536)
            return cli_error("triton-repo: bad --size '%s' (HxW or any)", size);
        *h = (long)t.dims[0], *w = (long)t.dims[1];
        return 0;
    }
    int rank = 0;
    int64_t d[MTMI_MAX_RANK];
    if (!mtmi_model_input_shape(m, 0, &rank, d) && rank == 4) *h = (long)d[2], *w = (long)d[3];
    return 0;
}

int mt_cmd_triton_repo(int argc, char **argv) {
    repo_args r = {.name = "mtmi", .depth = "fp32", .inputs = "both", .frames = 2, .max_batch = 8, .delay = 500, .instances = 1};
    int rc = parse_args(argc, argv, &r);
    if (rc) return rc < 0 ? 0 : rc;
    char mdir[PATH_MAX], vdir[PATH_MAX], path[PATH_MAX], model_file[PATH_MAX] = "model.onnx";
    if (mt_path_join(mdir, sizeof mdir, r.out, r.name) || mt_path_join(vdir, sizeof vdir, mdir, "1")) return cli_lib_error();
    struct stat sb;
    /* Never over an existing model: its files could be this one's inputs. */
    if (!stat(mdir, &sb)) return cli_error("triton-repo: '%s' exists; remove it or choose another --name", mdir);
    mtmi_model *m = NULL;
    if (cli_load_model_sized(r.model, 0, 0, r.size && strcmp(r.size, "any") ? r.size : NULL, &m)) return 1;
    long h, w;
    rc = served_size(m, r.size, &h, &w);
    if (!rc && mt_mkdirs(vdir)) rc = cli_error("triton-repo: cannot create '%s'", vdir);
    /* A model file is copied as it is; the built-in network is written. */
    if (!rc && r.model) rc = copy_model(m, vdir, model_file, sizeof model_file);
    if (!rc && !r.model && (mt_path_join(path, sizeof path, vdir, model_file) || mtmi_model_save(m, path, NULL))) rc = cli_lib_error();
    if (!rc && r.cache && (mt_path_join(path, sizeof path, vdir, "calibration.cache") || copy_file(r.cache, path))) rc = 1;
    if (!rc && r.plan && (mt_path_join(path, sizeof path, vdir, "model.plan") || copy_file(r.plan, path))) rc = 1;
    mtmi_model_free(m);
    if (rc) return rc;
    /* config.pbtxt last: a repository without it is no model to Triton. */
    char tmp[PATH_MAX + 64];
    if (mt_path_join(path, sizeof path, mdir, "config.pbtxt")) return cli_lib_error();
    FILE *f = mt_atomic_open(path, tmp, sizeof tmp);
    if (!f) return cli_error("triton-repo: cannot write '%s'", path);
    const int gpu = r.place && strstr(r.place, "cuda") != NULL;
    if (write_config(f, &r, h, w, gpu, model_file, r.cache != NULL)) {
        mt_atomic_commit(f, tmp, path, 0);
        return cli_error("triton-repo: a control character in a file name or the placement");
    }
    if (mt_atomic_commit(f, tmp, path, 1)) return cli_lib_error();
    char hw[48] = "any size";
    if (h > 0) snprintf(hw, sizeof hw, "%ldx%ld", h, w);
    printf("wrote %s: config.pbtxt, 1/%s%s%s; %s instances, frames %s, max_batch_size %ld\n", mdir, model_file,
           r.cache ? ", 1/calibration.cache" : "", r.plan ? ", 1/model.plan" : "", gpu ? "KIND_GPU" : "KIND_CPU", hw, r.max_batch);
    return 0;
}
