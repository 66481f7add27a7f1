/* mtmi infer MODEL --input x.npy -o DIR: one run on the CPU. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "api/api.h"
#include "core/npy.h"

/* DIR/<output>.npy for every output, decided before the run: distinct,
 * within the path limits and none of them an input (model, its weights,
 * the .npy inputs). */
static int out_files(const mtmi_model *m, const char *outdir, const char **inputs, int ninputs, char (*fn)[PATH_MAX]) {
    const char *names[16];
    int nout = mtmi_model_num_outputs(m), nins;
    const char **ins = cli_inputs_list(m, inputs, ninputs, &nins);
    if (!ins) return 1;
    for (int i = 0; i < nout; i++) names[i] = mtmi_model_output_name(m, i);
    int rc = cli_output_files(outdir, names, nout, ".npy", ins, nins, fn);
    free(ins);
    return rc;
}

int mt_cmd_infer(int argc, char **argv) {
    const char *path = NULL, *outdir = ".", *device = "cpu", *precision = NULL;
    const char *inputs[16];
    int ninputs = 0, random = 0, threads = 0, repeat = 1, profile = 0;
    long seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help")) {
            printf("usage: mtmi infer MODEL --input x.npy [--input y.npy ...] [-o DIR]\n"
                   "       [--threads N] [--repeat N] [--random-weights SEED] [--profile]\n"
                   "       [--device cpu|cuda:N] [--precision fp32|fp16]\n"
                   "Runs MODEL on the CPU in FP32 and writes each output as DIR/<name>.npy.\n"
                   "Inputs are .npy files in the order of the model's inputs; their shapes\n"
                   "set the plan's shapes (any size the model allows).\n"
                   "--profile prints the ops and nodes that took the most time.\n");
            return 0;
        } else if (!strcmp(a, "--input") && i + 1 < argc) {
            if (ninputs == 16) return cli_error("infer: too many inputs");
            inputs[ninputs++] = argv[++i];
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output-dir")) && i + 1 < argc) outdir = argv[++i];
        else if (!strcmp(a, "--device") && i + 1 < argc) device = argv[++i];
        else if (!strcmp(a, "--precision") && i + 1 < argc) precision = argv[++i];
        else if (!strcmp(a, "--threads") && i + 1 < argc) {
            if ((threads = cli_threads(a, argv[++i], 0)) < 0) return 1;
        } else if (!strcmp(a, "--repeat") && i + 1 < argc) {
            if ((repeat = (int)cli_parse_long(a, argv[++i], 1, 100000)) < 0) return 1;
        } else if (!strcmp(a, "--random-weights") && i + 1 < argc) {
            random = 1;
            if ((seed = cli_parse_long(a, argv[++i], 0, 1L << 30)) < 0) return 1;
        } else if (!strcmp(a, "--profile")) profile = 1;
        else if (a[0] == '-') return cli_error("infer: unknown or incomplete option '%s'", a);
        else if (!path) path = a;
        else return cli_error("infer: more than one model given");
    }
    if (!path) return cli_error("infer: no model given");
    mtmi_model *m;
    if (cli_load_model(path, random, (uint64_t)seed, &m)) return 1;
    int rc = 1;
    int nin = mtmi_model_num_inputs(m), nout = mtmi_model_num_outputs(m);
    mtmi_tensor in[16] = {0}, out[16] = {0};
    mtmi_plan *plan = NULL;
    char fn[16][PATH_MAX];
    if (ninputs != nin) {
        cli_error("infer: model '%s' has %d inputs, %d given", path, nin, ninputs);
        goto done;
    }
    if (nout > 16) {
        cli_error("infer: too many outputs");
        goto done;
    }
    for (int i = 0; i < nin; i++)
        if (mt_npy_read(inputs[i], &in[i]) != MTMI_OK) {
            cli_lib_error();
            goto done;
        }
    if (out_files(m, outdir, inputs, ninputs, fn)) goto done;
    mtmi_plan_options po = {.device = device, .precision = precision, .threads = threads, .num_input_shapes = nin, .input_shapes = in,
                            .tuning = cli_tuning_string()};
    double t0 = mt_now_ms();
    if (mtmi_plan_create(m, &po, &plan) != MTMI_OK) {
        cli_lib_error();
        goto done;
    }
    double t1 = mt_now_ms();
    for (int i = 0; i < nout; i++) {
        mtmi_plan_output_shape(plan, i, &out[i].rank, out[i].dims);
        out[i].data = malloc(mt_numel(out[i].rank, out[i].dims) * 8 + 8);
        if (!out[i].data) {
            cli_error("infer: out of memory");
            goto done;
        }
    }
    if (profile) mt_plan_set_profile(plan, 1);
    double best = 1e30, *times = calloc(repeat, sizeof(double));
    if (!times) {
        cli_error("infer: out of memory");
        goto done;
    }
    for (int r = 0; r < repeat; r++) {
        double a = mt_now_ms();
        if (mtmi_plan_run(plan, in, nin, out, nout) != MTMI_OK) {
            free(times);
            cli_lib_error();
            goto done;
        }
        double b = mt_now_ms() - a;
        times[r] = b;
        if (b < best) best = b;
    }
    /* median for benchmarks: insertion sort of a handful of runs */
    for (int i = 1; i < repeat; i++)
        for (int j = i; j > 0 && times[j - 1] > times[j]; j--) {
            double t = times[j];
            times[j] = times[j - 1];
            times[j - 1] = t;
        }
    double median = repeat % 2 ? times[repeat / 2] : 0.5 * (times[repeat / 2 - 1] + times[repeat / 2]);
    free(times);
    if (profile) {
        char *rep = mt_plan_profile_report(plan, 15);
        if (rep) fputs(rep, stdout);
        free(rep);
    }
    if (mt_mkdirs(outdir)) {
        cli_error("infer: cannot create output folder '%s'", outdir);
        goto done;
    }
    for (int i = 0; i < nout; i++) {
        if (mt_npy_write(fn[i], &out[i]) != MTMI_OK) {
            cli_lib_error();
            goto done;
        }
        char sh[128];
        printf("output %s %s -> %s\n", mtmi_model_output_name(m, i), mt_shape_str(out[i].rank, out[i].dims, sh, sizeof sh), fn[i]);
    }
    printf("plan: %.1f ms, run: %.2f ms (best of %d), median %.2f ms\n", t1 - t0, best, repeat, median);
    rc = 0;
done:
    for (int i = 0; i < 16; i++) {
        free(in[i].data);
        free(out[i].data);
    }
    mtmi_plan_free(plan);
    mtmi_model_free(m);
    return rc;
}
