/* mtmi accuracy MODEL --cache CACHE --images DIR: the INT8 heads against
 * the FP32 heads on the same shared features (encoder in FP32 once per
 * image): segmentation class-map agreement and per-class IoU between the
 * two maps, depth mean/max absolute error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"
#include "core/npy.h"
#include "quant/quant.h"

enum { MAXC = 256 };

/* Class per pixel (first maximum wins, as numpy's argmax). */
static void argmax(const float *x, int64_t C, int64_t HW, int32_t *cls) {
    for (int64_t p = 0; p < HW; p++) {
        int32_t best = 0;
        float bv = x[p];
        for (int64_t c = 1; c < C; c++)
            if (x[c * HW + p] > bv) bv = x[c * HW + p], best = (int32_t)c;
        cls[p] = best;
    }
}

/* --dump: DIR/<output>_fp32.npy and DIR/<output>_int8.npy for every output,
 * named before anything is written (distinct, none of them an input). */
typedef struct dump_files {
    char (*fp32)[PATH_MAX], (*int8)[PATH_MAX];
} dump_files;

static int dump_paths(const char *dir, const mtmi_model *m, const mt_graph *g, const char *cache, char **files, int nfiles,
                      dump_files *d) {
    int n = g->noutputs, nin, rc = 1;
    const char **names = malloc(sizeof(char *) * (size_t)(n + 1));
    const char **ins = cli_inputs_list(m, (const char *const *)files, nfiles, &nin);
    d->fp32 = malloc(sizeof *d->fp32 * (size_t)(n + 1));
    d->int8 = malloc(sizeof *d->int8 * (size_t)(n + 1));
    if (ins && (!names || !d->fp32 || !d->int8)) cli_error("out of memory");
    else if (ins) {
        for (int i = 0; i < n; i++) names[i] = g->values[g->outputs[i]].name;
        if (cache) ins[nin++] = cache; /* room: cli_inputs_list leaves one spare */
        rc = cli_output_files(dir, names, n, "_fp32.npy", ins, nin, d->fp32) ||
             cli_output_files(dir, names, n, "_int8.npy", ins, nin, d->int8);
    }
    free(names);
    free(ins);
    return rc;
}

static int dump(const char *path, const mt_graph *g, int out, float *data) {
    const mt_value *v = &g->values[g->outputs[out]];
    mtmi_tensor t = {.dtype = MTMI_FLOAT, .rank = v->rank, .data = data};
    memcpy(t.dims, v->dims, sizeof t.dims);
    if (mt_npy_write(path, &t)) return cli_lib_error();
    return 0;
}

/* The public API's INT8 plan (whole model, heads rewritten in place) must
 * give exactly what the runner's encoder + INT8 heads give. */
static int api_check(mtmi_model *m, const mtmi_tensor *shape, int threads, const char *cache, float *input, const mt_qrunner *r) {
    mtmi_plan_options po = {.device = "cpu", .precision = "int8", .threads = threads, .num_input_shapes = 1,
                            .input_shapes = shape, .calibration_cache = cache, .tuning = cli_tuning_string()};
    mtmi_plan *p = NULL;
    if (mtmi_plan_create(m, &po, &p) != MTMI_OK) return cli_lib_error();
    int nout = mtmi_model_num_outputs(m), rc = 0;
    mtmi_tensor in = *shape, out[64];
    in.data = input;
    for (int i = 0; i < nout && i < 64; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].data = malloc(sizeof(float) * (size_t)r->out_numel[i] + 8);
        if (!out[i].data) rc = cli_error("out of memory");
    }
    if (!rc && mtmi_plan_run(p, &in, 1, out, nout) != MTMI_OK) rc = cli_lib_error();
    for (int i = 0; !rc && i < nout; i++) {
        if (memcmp(out[i].data, r->out_q[i], sizeof(float) * (size_t)r->out_numel[i]) != 0) {
            rc = cli_error("accuracy: output '%s' of mtmi_plan_create(int8) differs from the split INT8 heads",
                           mtmi_model_output_name(m, i));
        }
    }
    if (!rc) fprintf(stderr, "api check: mtmi_plan_create(precision int8) gives the same bits\n");
    for (int i = 0; i < nout && i < 64; i++) free(out[i].data);
    mtmi_plan_free(p);
    return rc;
}

enum { O_CACHE = 1, O_DUMP, O_JSON, O_CHECK_API };
static const cli_opt g_opts[] = {
    {O_CACHE, "cache", 0, CLI_STR, "CACHE", 0, 0, "the calibration cache of the INT8 heads (required\nunless the model is a Q/DQ model: its own scales)"},
    CLI_ROW_JSON(O_JSON, "the report"),
    {O_DUMP, "dump", 0, CLI_STR, "DIR", 0, 0, "write the first image's outputs as\nDIR/<output>_{fp32,int8}.npy"},
    {O_CHECK_API, "check-api", 0, CLI_FLAG, NULL, 0, 0,
     "also run the first image through mtmi_plan_create(precision\nint8) and require the same bits as the split INT8 heads"},
    CLI_ROWS_QUANT,
    {0},
};
const cli_command cli_cmd_accuracy = {
    "accuracy", "[MODEL]", 1, "INT8 heads vs FP32: class-map agreement, IoU, depth error",
    "Runs the encoder in FP32 and the heads both in FP32 and in INT8 (CPU reference\n"
    "kernels, scales from CACHE) and reports, over all images: the agreement of the\n"
    "segmentation class maps, the IoU of each class between the two maps, and the\n"
    "depth error.  Without MODEL: the built-in network (the trained one when\n"
    "models/mtmi_trained.onnx is found).",
    g_opts, NULL};

/* The report as JSON: file names quoted by mt_json_string (quotes,
 * backslashes, control characters escaped), numbers by mt_json_number. */
typedef struct acc_report {
    const char *model, *cache;
    int images, quantized, skipped, has_seg, has_depth, classes;
    double agreement, miou, lmax, dmean, dmax, ms_fp32, ms_int8;
    const double *inter, *uni;
} acc_report;

static int write_json(const char *path, const acc_report *r) {
    cli_json_file j;
    FILE *f = cli_json_open(path, &j);
    if (!f) return 1;
    fprintf(f, "{\"command\": \"accuracy\", \"model\": ");
    mt_json_string(f, r->model);
    fprintf(f, ", \"cache\": ");
    mt_json_string(f, r->cache);
    fprintf(f, ", \"images\": %d, \"quantized_nodes\": %d, \"float_nodes\": %d", r->images, r->quantized, r->skipped);
    if (r->has_seg) {
        fprintf(f, ", \"seg\": {\"agreement_pct\": ");
        mt_json_number(f, "%.4f", r->agreement);
        fprintf(f, ", \"miou_pct\": ");
        mt_json_number(f, "%.4f", r->miou);
        fprintf(f, ", \"logits_max_abs\": ");
        mt_json_number(f, "%.6g", r->lmax);
        fprintf(f, ", \"iou_pct\": {");
        int first = 1;
        for (int c = 0; c < r->classes; c++)
            if (r->uni[c] > 0) {
                fprintf(f, "%s\"%d\": ", first ? "" : ", ", c);
                mt_json_number(f, "%.4f", 100 * r->inter[c] / r->uni[c]);
                first = 0;
            }
        fprintf(f, "}}");
    }
    if (r->has_depth) {
        fprintf(f, ", \"depth\": {\"mean_abs\": ");
        mt_json_number(f, "%.6g", r->dmean);
        fprintf(f, ", \"max_abs\": ");
        mt_json_number(f, "%.6g", r->dmax);
        fprintf(f, "}");
    }
    fprintf(f, ", \"heads_ms\": {\"fp32\": ");
    mt_json_number(f, "%.3f", r->ms_fp32);
    fprintf(f, ", \"int8\": ");
    mt_json_number(f, "%.3f", r->ms_int8);
    fprintf(f, "}}\n");
    return cli_json_close(&j, path, 1);
}

/* The INT8 scales: the cache file (--cache), or, for a Q/DQ model given
 * without one, the model's own (mt_qdq_import; copied, so that --override
 * can change them), which keep the model's weight scales through
 * cache->qdq.  Then the overrides.  Returns 0, or 1 after printing the
 * error (2 = usage). */
static int load_scales(const cli_parser *p, const mtmi_model *m, const char *cache_path, const cli_quant_opts *o,
                       mt_calib_cache *cache) {
    if (cache_path) {
        if (mt_calib_cache_read(cache_path, cache)) return cli_lib_error();
    } else if (m->qdq) {
        const mt_calib_cache *own = &m->qdq->scales;
        for (int i = 0; i < own->n; i++)
            if (mt_calib_cache_set(cache, own->e[i].name, own->e[i].scale)) return cli_lib_error();
        cache->qdq = own->qdq;
    } else {
        return cli_usage(p, "no calibration cache given (--cache CACHE), and the model has no Q/DQ scales");
    }
    for (int i = 0; i < o->noverrides; i++)
        if (mt_calib_cache_override(cache, o->overrides[i])) return cli_lib_error();
    return 0;
}

int mt_cmd_accuracy(int argc, char **argv) {
    const char *path = NULL, *cache_path = NULL, *dumpdir = NULL, *json = NULL;
    cli_quant_opts o = {0};
    int check_api = 0, id;
    cli_parser p;
    cli_parser_init(&p, &cli_cmd_accuracy, argc, argv);
    while ((id = cli_next(&p)) > 0) {
        const int took = cli_quant_take(&p, id, &o);
        if (took < 0) return CLI_USAGE;
        if (took) continue;
        switch (id) {
        case O_CACHE: cache_path = p.value; break;
        case O_DUMP: dumpdir = p.value; break;
        case O_JSON: json = p.value; break;
        case O_CHECK_API: check_api = 1; break;
        }
    }
    if (id == CLI_HELP) return 0;
    if (id == CLI_ERROR) return CLI_USAGE;
    if (p.nargs) path = p.args[0];
    if (!cache_path && (!path || o.random)) /* the built-in and random networks carry no Q/DQ scales */
        return cli_usage(&p, "no calibration cache given (--cache CACHE)");
    if (!o.ninputs) return cli_usage(&p, "no inputs given (--images DIR)");
    cli_json_stdout(json);

    int rc = 1;
    mtmi_model *m = NULL;
    char **files = NULL;
    int nfiles = 0;
    float *input = NULL;
    int32_t *c32 = NULL, *cq = NULL;
    mt_qrunner r = {0};
    mt_calib_cache cache = {0};
    mt_quant_report rep;
    dump_files dumps = {0};
    mtmi_tensor shape;
    char featbuf[4096];
    /* Accumulated over all images. */
    double ms_fp32 = 0, ms_int8 = 0;
    double inter[MAXC] = {0}, uni[MAXC] = {0}, n32[MAXC] = {0}, agree = 0, pixels = 0, dsum = 0, dmax = 0, dcount = 0, lmax = 0;
    if (cli_list_inputs(o.inputs, o.ninputs, &files, &nfiles)) goto done;
    if (cli_load_model_sized(path, o.random, (uint64_t)o.seed, o.size, &m)) goto done;
    if ((rc = load_scales(&p, m, cache_path, &o, &cache)) != 0) goto done; /* 1, or 2 for a usage error */
    if (check_api && !cache_path) {
        /* The API's int8 plan of a Q/DQ model quantizes every layer the
         * model quantized, the encoder's too: not comparable with heads
         * over an FP32 encoder. */
        rc = cli_usage(&p, "--check-api needs --cache (the API runs a Q/DQ model's encoder in INT8 too)");
        goto done;
    }
    rc = 1;
    uint64_t model_key = 0;
    if (!o.nofeat && cli_model_key(m, o.random, o.seed, &model_key)) goto done;
    if (cli_input_shape(m, o.size, &shape)) goto done;
    if (mt_qrunner_init(&r, m->graph, &shape, o.threads, cli_tuning()) || mt_qrunner_quantize(&r, m->graph, &cache, o.threads, &rep)) {
        cli_lib_error();
        goto done;
    }
    int seg = mt_quant_find_head(r.full, "seg"), depth = mt_quant_find_head(r.full, "depth");
    if (seg == depth) seg = -1;
    const mt_value *sv = seg >= 0 ? &r.full->values[r.full->outputs[seg]] : NULL;
    const mt_value *dv = depth >= 0 ? &r.full->values[r.full->outputs[depth]] : NULL;
    if (sv && (sv->rank != 4 || sv->dims[1] > MAXC)) sv = NULL, seg = -1;
    if (dv && dv->rank != 4) dv = NULL, depth = -1;
    int64_t HW = sv ? sv->dims[2] * sv->dims[3] : 0, NB = sv ? sv->dims[0] : 0, C = sv ? sv->dims[1] : 0;
    if (dumpdir && dump_paths(dumpdir, m, r.full, cache_path, files, nfiles, &dumps)) goto done;
    if (json && strcmp(json, "-")) { /* the report replaces no input */
        int nin;
        const char **ins = cli_inputs_list(m, (const char *const *)files, nfiles, &nin);
        if (!ins) goto done;
        if (cache_path) ins[nin++] = cache_path;
        const int bad = cli_check_report_paths("accuracy", &json, 1, ins, nin);
        free(ins);
        if (bad) goto done;
    }
    if (sv && (!(c32 = malloc(sizeof(int32_t) * HW)) || !(cq = malloc(sizeof(int32_t) * HW)))) {
        cli_error("out of memory");
        goto done;
    }
    int64_t per = mt_numel(shape.rank, shape.dims);
    if (!(input = malloc(sizeof(float) * (size_t)per))) {
        cli_error("out of memory");
        goto done;
    }
    if (!o.featdir) { /* beside the cache, or the Q/DQ model that holds the scales */
        snprintf(featbuf, sizeof featbuf, "%s.features", cache_path ? cache_path : path);
        o.featdir = featbuf;
    }
    int batch = (int)shape.dims[0], frames = (nfiles + batch - 1) / batch;
    double t0 = mt_now_ms();
    for (int f = 0; f < frames; f++) {
        cli_progress("accuracy", f, frames, files[f * batch], t0);
        if (cli_frame_features(&r, &o, model_key, files, nfiles, f, &shape, input, 1) < 0) goto done;
        double h0 = mt_now_ms();
        if (mt_qrunner_heads(&r, 1, 0)) {
            mt_fail_context(MTMI_ERR_ARG, "%s", files[f * batch]);
            cli_lib_error();
            goto done;
        }
        double h1 = mt_now_ms();
        if (mt_qrunner_heads(&r, 0, 1)) {
            mt_fail_context(MTMI_ERR_ARG, "%s", files[f * batch]);
            cli_lib_error();
            goto done;
        }
        ms_fp32 += h1 - h0;
        ms_int8 += mt_now_ms() - h1;
        if (dumpdir && f == 0) {
            if (mt_mkdirs(dumpdir)) {
                cli_error("accuracy: cannot create '%s'", dumpdir);
                goto done;
            }
            for (int o = 0; o < r.full->noutputs; o++)
                if (dump(dumps.fp32[o], r.full, o, r.out[o]) || dump(dumps.int8[o], r.full, o, r.out_q[o])) goto done;
        }
        if (check_api && f == 0) {
            /* The API reads a cache file: give it the cache as overridden. */
            char tmp[] = "/tmp/mtmi_check_api_XXXXXX";
            int fd = mkstemp(tmp);
            if (fd < 0) {
                cli_error("accuracy: cannot create a temporary cache for --check-api");
                goto done;
            }
            close(fd);
            mt_temp_register(tmp); /* removed on SIGINT / SIGTERM too */
            int bad = mt_calib_cache_write(tmp, &cache) ? cli_lib_error() : api_check(m, &shape, o.threads, tmp, input, &r);
            unlink(tmp);
            mt_temp_unregister(tmp);
            if (bad) goto done;
        }
        int nb = MT_MIN(batch, nfiles - f * batch); /* padding images of a last batch do not count */
        if (sv)
            for (int64_t b = 0; b < NB && b < nb; b++) {
                argmax(r.out[seg] + b * C * HW, C, HW, c32);
                argmax(r.out_q[seg] + b * C * HW, C, HW, cq);
                for (int64_t p = 0; p < HW; p++) {
                    n32[c32[p]]++;
                    if (c32[p] == cq[p]) {
                        agree++;
                        inter[c32[p]]++;
                        uni[c32[p]]++;
                    } else {
                        uni[c32[p]]++;
                        uni[cq[p]]++;
                    }
                }
                pixels += (double)HW;
                for (int64_t k = b * C * HW; k < (b + 1) * C * HW; k++) {
                    double e = fabs((double)r.out[seg][k] - r.out_q[seg][k]);
                    if (e > lmax) lmax = e;
                }
            }
        if (dv) {
            int64_t dn = r.out_numel[depth] / dv->dims[0] * nb;
            for (int64_t k = 0; k < dn; k++) {
                double e = fabs((double)r.out[depth][k] - r.out_q[depth][k]);
                dsum += e;
                if (e > dmax) dmax = e;
            }
            dcount += (double)dn;
        }
    }
    cli_progress("accuracy", frames, frames, "", t0);
    double miou = 0;
    int ncls = 0;
    for (int c = 0; c < C; c++)
        if (uni[c] > 0) {
            miou += inter[c] / uni[c];
            ncls++;
        }
    miou = ncls ? miou / ncls : 0;
    printf("INT8 heads vs FP32 over %d image%s (%d convolutions in INT8, %d left in float)\n", nfiles, nfiles == 1 ? "" : "s",
           rep.quantized, rep.skipped);
    if (sv) {
        printf("  seg   class-map agreement  %8.3f %%\n", 100 * agree / pixels);
        printf("  seg   mean IoU (%2d classes) %8.3f %%\n", ncls, 100 * miou);
        printf("  seg   logits max abs error %10.4g\n", lmax);
        printf("  class   IoU %%   pixels(fp32)\n");
        for (int c = 0; c < C; c++)
            if (uni[c] > 0) printf("  %5d %7.2f %12.0f\n", c, 100 * inter[c] / uni[c], n32[c]);
    }
    if (dv) {
        printf("  depth mean abs error       %10.4g\n", dcount ? dsum / dcount : 0);
        printf("  depth max abs error        %10.4g\n", dmax);
    }
    printf("  heads on the CPU, per frame: FP32 %.1f ms, INT8 %.1f ms\n", ms_fp32 / frames, ms_int8 / frames);
    if (json) {
        acc_report jr = {.model = path ? path : "built-in", .cache = cache_path, .images = nfiles, .quantized = rep.quantized,
                         .skipped = rep.skipped, .has_seg = sv != NULL, .has_depth = dv != NULL, .classes = (int)C,
                         .agreement = 100 * agree / pixels, .miou = 100 * miou, .lmax = lmax, .dmean = dcount ? dsum / dcount : 0,
                         .dmax = dmax, .ms_fp32 = ms_fp32 / frames, .ms_int8 = ms_int8 / frames, .inter = inter, .uni = uni};
        if (write_json(json, &jr)) goto done;
    }
    rc = 0;
done:
    free(dumps.fp32);
    free(dumps.int8);
    free(input);
    free(c32);
    free(cq);
    mt_calib_cache_free(&cache);
    mt_qrunner_free(&r);
    mt_free_names(files, nfiles);
    mtmi_model_free(m);
    return rc;
}
