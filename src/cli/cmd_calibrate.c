/* mtmi calibrate MODEL --images DIR -o CACHE: INT8 post-training
 * calibration of a subgraph, written as a TensorRT calibration cache.
 * Also the input helpers that `accuracy` shares (cli.h). */
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"
#include "core/npy.h"
#include "image/image.h"
#include "quant/quant.h"

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int has_ext(const char *s, const char *ext) {
    size_t n = strlen(s), e = strlen(ext);
    return n > e && !strcasecmp(s + n - e, ext);
}

int cli_list_inputs(char *const *args, int nargs, char ***files, int *count) {
    char **list = NULL;
    int n = 0, cap = 0;
    for (int a = 0; a < nargs; a++) {
        struct stat sb;
        if (stat(args[a], &sb) != 0) {
            mt_free_names(list, n);
            return cli_error("cannot read '%s': no such file or folder", args[a]);
        }
        if (!S_ISDIR(sb.st_mode)) {
            if (mt_grow((void **)&list, &cap, n, sizeof(char *)) || !(list[n] = strdup(args[a]))) goto nomem;
            n++;
            continue;
        }
        DIR *d = opendir(args[a]);
        if (!d) {
            mt_free_names(list, n);
            return cli_error("cannot open folder '%s'", args[a]);
        }
        struct dirent *e;
        int first = n;
        while ((e = readdir(d))) {
            if (!has_ext(e->d_name, ".png") && !has_ext(e->d_name, ".npy")) continue;
            if (mt_grow((void **)&list, &cap, n, sizeof(char *))) {
                closedir(d);
                goto nomem;
            }
            size_t len = strlen(args[a]) + strlen(e->d_name) + 2;
            if (!(list[n] = malloc(len))) {
                closedir(d);
                goto nomem;
            }
            snprintf(list[n++], len, "%s/%s", args[a], e->d_name);
        }
        closedir(d);
        qsort(list + first, n - first, sizeof(char *), cmp_str);
    }
    if (!n) {
        free(list);
        return cli_error("no .png or .npy inputs found");
    }
    *files = list;
    *count = n;
    return 0;
nomem:
    mt_free_names(list, n);
    return cli_error("out of memory");
}

int cli_load_input(const char *path, const mtmi_tensor *shape, float *chw) {
    int64_t H = shape->dims[2], W = shape->dims[3], want = 3 * H * W;
    if (has_ext(path, ".npy")) {
        mtmi_tensor t;
        if (mt_npy_read(path, &t) != MTMI_OK) return cli_lib_error();
        int64_t n = mt_numel(t.rank, t.dims);
        if (t.dtype != MTMI_FLOAT || n != want) {
            char a[128];
            free(t.data);
            return cli_error("%s: expected float32 3x%lldx%lld (normalized CHW), got %s %s", path, (long long)H, (long long)W,
                             mt_dtype_name(t.dtype), mt_shape_str(t.rank, t.dims, a, sizeof a));
        }
        memcpy(chw, t.data, sizeof(float) * (size_t)n);
        free(t.data);
        return 0;
    }
    mt_image img = {0}, fit = {0};
    if (mt_png_read(path, &img) != MTMI_OK) return cli_lib_error();
    mtmi_status s = mt_image_fit(&img, (int)W, (int)H, &fit);
    mt_image_free(&img);
    if (s) return cli_lib_error();
    mt_image_to_chw(&fit, chw);
    mt_image_free(&fit);
    return 0;
}

int cli_input_shape(mtmi_model *m, const char *size, mtmi_tensor *shape) {
    memset(shape, 0, sizeof *shape);
    int rank;
    int64_t d[MTMI_MAX_RANK];
    if (mtmi_model_num_inputs(m) != 1 || mtmi_model_input_shape(m, 0, &rank, d) || rank != 4)
        return cli_error("the model must have one NCHW image input");
    shape->dtype = MTMI_FLOAT;
    shape->rank = 4;
    shape->dims[0] = d[0] > 0 ? d[0] : 1;
    shape->dims[1] = 3;
    shape->dims[2] = d[2] > 0 ? d[2] : 1024;
    shape->dims[3] = d[3] > 0 ? d[3] : 1024;
    if (size) {
        int h, w;
        char extra;
        if (sscanf(size, "%dx%d%c", &h, &w, &extra) != 2 || h <= 0 || w <= 0 || h > 16384 || w > 16384)
            return cli_error("--size expects HxW, got '%s'", size);
        shape->dims[2] = h;
        shape->dims[3] = w;
    }
    return 0;
}

void cli_progress(const char *what, int i, int n, const char *item, double t0) {
    if (!isatty(2)) return;
    int w = 30, fill = n ? i * w / n : w;
    char bar[64];
    for (int k = 0; k < w; k++) bar[k] = k < fill ? '#' : '.';
    bar[w] = 0;
    const char *base = item ? strrchr(item, '/') : NULL;
    base = base ? base + 1 : item ? item : "";
    double el = (mt_now_ms() - t0) / 1000;
    fprintf(stderr, "\r%s [%s] %d/%d %5.1fs %-24.24s", what, bar, i, n, el, base);
    if (i == n) fprintf(stderr, "\n");
    fflush(stderr);
}

/* The key of a model's features: a hash of the content of every file it
 * was read from (model and weights) and of the random-weight seed.  File
 * size and time are not enough: another model of the same size and time
 * would reuse stale features and every scale would be wrong. */
int cli_model_key(const mtmi_model *m, int random, long seed, uint64_t *key) {
    uint64_t h = MT_HASH_SEED;
    /* the built-in random-weight network has no file: its seed is the key */
    int64_t v[2] = {random, random ? seed : (int64_t)m->opt.seed};
    h = mt_hash64(h, v, sizeof v);
    for (int i = 0; i < m->graph->nsources; i++) {
        uint8_t *data;
        size_t n;
        if (mt_read_file(m->graph->sources[i], &data, &n)) return cli_lib_error();
        h = mt_hash64(h, data, n);
        free(data);
    }
    *key = h;
    return 0;
}

void cli_feature_path(const char *dir, uint64_t model_key, const mtmi_tensor *shape, const float *input, char *out, size_t cap) {
    /* The input as the encoder sees it (decoded, fitted, normalized): the
     * image's content, not its name or date, decides the features. */
    int64_t n = mt_numel(shape->rank, shape->dims);
    uint64_t h = mt_hash64(model_key, shape->dims, sizeof shape->dims);
    h = mt_hash64(h, input, sizeof(float) * (size_t)n);
    snprintf(out, cap, "%s/%016llx.feat", dir, (unsigned long long)h);
}

int cli_frame_features(mt_qrunner *r, const cli_quant_opts *o, uint64_t model_key, char **files, int nfiles, int f,
                       const mtmi_tensor *shape, float *input, int reuse) {
    int batch = (int)shape->dims[0];
    int64_t img_elems = mt_numel(shape->rank, shape->dims) / batch;
    for (int b = 0; b < batch; b++) {
        /* A last partial batch repeats its last image. */
        int k = MT_MIN(f * batch + b, nfiles - 1);
        if (cli_load_input(files[k], shape, input + b * img_elems)) return -1;
    }
    char fp[4200] = "";
    if (!o->nofeat && batch == 1) {
        cli_feature_path(o->featdir, model_key, shape, input, fp, sizeof fp);
        if (reuse && mt_qrunner_load_features(r, fp)) return 1;
    }
    if (mt_qrunner_encode(r, input)) {
        mt_fail_context(MTMI_ERR_ARG, "%s", files[MT_MIN(f * batch, nfiles - 1)]);
        cli_lib_error();
        return -1;
    }
    if (fp[0] && r->enc_plan && (mt_mkdirs(o->featdir) || mt_qrunner_save_features(r, fp)))
        fprintf(stderr, "mtmi: warning: cannot keep features in '%s'\n", o->featdir);
    return 0;
}

static int parse_method(const char *s, mt_calib_method *m, double *pct) {
    *pct = 99.99;
    if (!strcmp(s, "entropy")) *m = MT_CALIB_ENTROPY;
    else if (!strcmp(s, "minmax")) *m = MT_CALIB_MINMAX;
    else if (!strncmp(s, "percentile", 10)) {
        *m = MT_CALIB_PERCENTILE;
        if (s[10] == ':') {
            char *e;
            *pct = strtod(s + 11, &e);
            if (e == s + 11 || *e || !(*pct > 0 && *pct <= 100))
                return cli_error("calibrate: --method percentile:P expects 0 < P <= 100, got '%s'", s);
        } else if (s[10])
            return cli_error("calibrate: unknown method '%s' for --method (entropy, minmax or percentile[:99.99])", s);
    } else
        return cli_error("calibrate: unknown method '%s' for --method (entropy, minmax or percentile[:99.99])", s);
    return 0;
}

/* No output may replace the model, its weights, an input image or the cache
 * read, and -o and --qdq must be two files. */
static int outputs_not_inputs(const mtmi_model *m, const char *out, const char *qdq, const char *from, char **files,
                              int nfiles) {
    int n;
    const char **ins = cli_inputs_list(m, (const char *const *)files, nfiles, &n);
    if (!ins) return 1;
    if (from) ins[n++] = from; /* the list's spare slot */
    const char *outs[2] = {out, qdq};
    int rc = cli_check_report_paths("calibrate", outs, 2, ins, n);
    free(ins);
    return rc;
}

enum { O_OUTPUT = 1, O_SUBGRAPH, O_METHOD, O_LIMIT, O_QDQ, O_TRT_VERSION, O_FROM_CACHE };
static const cli_opt g_opts[] = {
    {O_OUTPUT, "output", 'o', CLI_STR, "CACHE", 0, 0, "the calibration cache to write (required unless --qdq)"},
    {O_QDQ, "qdq", 0, CLI_STR, "OUT.onnx", 0, 0,
     "also write the model with QuantizeLinear/DequantizeLinear\n(explicit quantization for ONNX Runtime and TensorRT;\n"
     "standard ONNX ops, at the calibration input size)"},
    {O_SUBGRAPH, "subgraph", 0, CLI_STR, "PART", 0, 0, "heads (default), seg, depth, encoder, all, or an output's\nname"},
    {O_METHOD, "method", 0, CLI_STR, "METHOD", 0, 0, "entropy (default; TensorRT's EntropyCalibrator2), minmax,\nor percentile[:P] (P default 99.99)"},
    {O_LIMIT, "limit", 0, CLI_INT, "N", 1, 1000000, "use only the first N inputs"},
    {O_FROM_CACHE, "from-cache", 0, CLI_STR, "CACHE", 0, 0,
     "take the scales from this cache (mtmi's or TensorRT's)\ninstead of calibrating: no --images; for --override, -o\nand --qdq"},
    {O_TRT_VERSION, "trt-version", 0, CLI_INT, "N", 1, 999999999,
     "TensorRT version number written in the cache header\n(default 8601, or --from-cache's own number)"},
    CLI_ROWS_QUANT,
    {0},
};
const cli_command cli_cmd_calibrate = {
    "calibrate", "[MODEL]", 1, "INT8 calibration cache (TensorRT format; entropy, minmax, percentile)",
    "Runs the model in FP32 on the CPU over the images (PNG, fitted and normalized\n"
    "as the SPEC says, or .npy tensors already normalized), collects the\n"
    "distribution of every float activation of the subgraph and writes a TensorRT\n"
    "calibration cache (scale = amax / 127 per tensor).  The shared features of\n"
    "each image are kept (--features) so that calibrating another head does not\n"
    "rerun the encoder.  --qdq also writes the model with Q/DQ pairs where the\n"
    "INT8 heads quantize (docs/ACCURACY.md).  Without MODEL: the built-in network\n"
    "(the trained one when models/mtmi_trained.onnx is found).",
    g_opts, NULL};

/* Calibrates the chosen nodes (sel) of r->full over the images into cache
 * (scales only; the caller sets the header). */
static int calibrate_images(mt_qrunner *r, cli_quant_opts *o, const mtmi_model *m, char **files, int nfiles,
                            const mtmi_tensor *shape, const unsigned char *sel, mt_calib_method method, double pct,
                            mt_calib_cache *cache, int *reused) {
    int rc = 1;
    mt_calib_stats st = {0};
    float *input = NULL;
    uint64_t model_key = 0;
    if (!o->nofeat && cli_model_key(m, o->random, o->seed, &model_key)) goto done;
    if (mt_calib_stats_init(&st, r->full, sel)) {
        cli_lib_error();
        goto done;
    }
    /* Shared nodes chosen: the encoder must run (and be observed) every time. */
    int *label = malloc(sizeof(int) * (r->full->nnodes + 1));
    int with_enc = 0;
    if (label && !mt_graph_cone_labels(r->full, label))
        for (int i = 0; i < r->full->nnodes; i++)
            if (sel[i] && label[i] == -1) with_enc = 1;
    free(label);
    if (mt_qrunner_observe(r, &st, with_enc)) {
        cli_lib_error();
        goto done;
    }
    int64_t per = mt_numel(shape->rank, shape->dims);
    if (!(input = malloc(sizeof(float) * (size_t)per))) {
        cli_error("out of memory");
        goto done;
    }
    int batch = (int)shape->dims[0], frames = (nfiles + batch - 1) / batch;
    double t0 = mt_now_ms();
    for (int f = 0; f < frames; f++) {
        cli_progress("calibrate", f, frames, files[f * batch], t0);
        /* With encoder nodes chosen the encoder runs (and is observed)
         * anyway; its features are still saved for later runs. */
        int have = cli_frame_features(r, o, model_key, files, nfiles, f, shape, input, !with_enc);
        if (have < 0) goto done;
        *reused += have;
        if (mt_qrunner_heads(r, 1, 0)) {
            /* e.g. an infinite activation: say which image made it */
            mt_fail_context(MTMI_ERR_ARG, "%s", files[f * batch]);
            cli_lib_error();
            goto done;
        }
    }
    cli_progress("calibrate", frames, frames, "", t0);
    if (mt_calib_stats_scales(&st, method, pct, cli_tuning()->calib_hist_dir, cache)) {
        cli_lib_error();
        goto done;
    }
    rc = 0;
done:
    free(input);
    mt_calib_stats_free(&st);
    return rc;
}

/* The cache's header: a new cache is TRT-<version>-<method>; one read with
 * --from-cache keeps its header unless --trt-version changes the number. */
static int set_header(mt_calib_cache *cache, int from, mt_calib_method method, const char *version) {
    if (!from) {
        free(cache->header);
        cache->header = NULL;
        if (mt_calib_header_make(method, version, &cache->header)) return cli_lib_error();
    } else if (version && mt_calib_cache_set_version(cache, version))
        return cli_lib_error();
    return 0;
}

static int write_qdq(const mt_graph *g, const mt_calib_cache *cache, const unsigned char *sel, const char *qdq) {
    mt_qdq_report rep;
    if (mt_qdq_export(g, cache, sel, qdq, &rep)) return cli_lib_error();
    printf("wrote %s: %d convolution / linear layer%s with int8 weights per output channel, %d activation Q/DQ pairs (%d on requantized "
           "outputs), opset %lld",
           qdq, rep.quantized, rep.quantized == 1 ? "" : "s", rep.activation_pairs, rep.requantized, (long long)rep.opset);
    if (rep.skipped) printf("; %d left in float (no scale for their input)", rep.skipped);
    printf("\n");
    return 0;
}

int mt_cmd_calibrate(int argc, char **argv) {
    const char *path = NULL, *out = NULL, *qdq = NULL, *from = NULL, *version = NULL, *subgraph = "heads", *method_s = NULL;
    char version_buf[16];
    cli_quant_opts o = {0};
    int limit = 0, id;
    cli_parser p;
    cli_parser_init(&p, &cli_cmd_calibrate, argc, argv);
    while ((id = cli_next(&p)) > 0) {
        const int took = cli_quant_take(&p, id, &o);
        if (took < 0) return CLI_USAGE;
        if (took) continue;
        switch (id) {
        case O_OUTPUT: out = p.value; break;
        case O_QDQ: qdq = p.value; break;
        case O_SUBGRAPH: subgraph = p.value; break;
        case O_METHOD: method_s = p.value; break;
        case O_LIMIT: limit = (int)p.num; break;
        case O_FROM_CACHE: from = p.value; break;
        case O_TRT_VERSION: /* the parser checked the range: 1 to 9 digits */
            snprintf(version_buf, sizeof version_buf, "%ld", p.num);
            version = version_buf;
            break;
        }
    }
    if (id == CLI_HELP) return 0;
    if (id == CLI_ERROR) return CLI_USAGE;
    if (p.nargs) path = p.args[0];
    if (!out && !qdq) return cli_usage(&p, "no output cache given (-o CACHE) and no --qdq OUT.onnx");
    if (from && (o.ninputs || method_s || limit))
        return cli_usage(&p, "--from-cache takes the scales from a cache; --images, --method and --limit are for calibrating");
    if (!from && !o.ninputs) return cli_usage(&p, "no inputs given (--images DIR)");
    mt_calib_method method = MT_CALIB_ENTROPY;
    double pct = 99.99;
    if (!method_s) method_s = "entropy";
    if (parse_method(method_s, &method, &pct)) return CLI_USAGE;

    int rc = 1, reused = 0;
    mtmi_model *m = NULL;
    char **files = NULL;
    int nfiles = 0, nlisted = 0;
    mt_qrunner r = {0};
    mt_calib_cache cache = {0};
    unsigned char *sel = NULL;
    mtmi_tensor shape;
    char featbuf[4096];
    double t0 = mt_now_ms();
    if (!from && cli_list_inputs(o.inputs, o.ninputs, &files, &nfiles)) goto done;
    nlisted = nfiles;
    if (limit && nfiles > limit) nfiles = limit;
    if (cli_load_model_sized(path, o.random, (uint64_t)o.seed, o.size, &m)) goto done;
    if (outputs_not_inputs(m, out, qdq, from, files, nlisted)) goto done;
    if (from && mt_calib_cache_read(from, &cache)) {
        cli_lib_error();
        goto done;
    }
    if (cli_input_shape(m, o.size, &shape)) goto done;
    if (mt_qrunner_init(&r, m->graph, &shape, o.threads, cli_tuning())) {
        cli_lib_error();
        goto done;
    }
    if (!(sel = malloc((size_t)r.full->nnodes + 1))) {
        cli_error("out of memory");
        goto done;
    }
    if (mt_quant_select(r.full, subgraph, sel)) {
        cli_lib_error();
        goto done;
    }
    if (!o.featdir) {
        snprintf(featbuf, sizeof featbuf, "%s.features", out ? out : qdq);
        o.featdir = featbuf;
    }
    if (!from && calibrate_images(&r, &o, m, files, nfiles, &shape, sel, method, pct, &cache, &reused)) goto done;
    if (set_header(&cache, from != NULL, method, version)) goto done;
    for (int i = 0; i < o.noverrides; i++)
        if (mt_calib_cache_override(&cache, o.overrides[i])) {
            cli_lib_error();
            goto done;
        }
    if (mt_calib_cache_check(&cache, m->graph, r.full)) {
        cli_lib_error();
        goto done;
    }
    /* The Q/DQ model first: its refusals (an opset it cannot raise, nothing
     * quantized) then leave no cache behind either. */
    if (qdq && write_qdq(r.full, &cache, sel, qdq)) goto done;
    if (out && mt_calib_cache_write(out, &cache)) {
        cli_lib_error();
        goto done;
    }
    if (from)
        printf("read %d tensor scales from %s (%s)%s%s\n", cache.n, from, cache.header, out ? " -> " : "", out ? out : "");
    else
        printf("calibrated %d tensors of subgraph '%s' over %d image%s (%s%s), %d with cached features, %.1f s%s%s\n", cache.n,
               subgraph, nfiles, nfiles == 1 ? "" : "s", method_s,
               method == MT_CALIB_PERCENTILE && !strchr(method_s, ':') ? ":99.99" : "", reused, (mt_now_ms() - t0) / 1000,
               out ? " -> " : "", out ? out : "");
    rc = 0;
done:
    free(sel);
    mt_calib_cache_free(&cache);
    mt_qrunner_free(&r);
    mt_free_names(files, nlisted);
    mtmi_model_free(m);
    return rc;
}
