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

enum { O_INPUT = 1, O_OUTPUT, O_DEVICE, O_PRECISION, O_THREADS, O_REPEAT, O_RANDOM, O_PROFILE };
static const cli_opt g_opts[] = {
    {O_INPUT, "input", 0, CLI_STR, "X.npy", 0, 0, "an input tensor; one per model input, in the model's order"},
    {O_OUTPUT, "output", 'o', CLI_STR, "DIR", 0, 0, "the folder of the outputs, DIR/<output name>.npy\n(default: the current folder)"},
    {O_OUTPUT, "output-dir", 0, CLI_STR, "DIR", 0, 0, "the same as --output (its older name)"},
    {O_DEVICE, "device", 0, CLI_STR, "DEV", 0, 0, "cpu (default), cpu:N, cuda:N or cuda:N.smK"},
    {O_PRECISION, "precision", 0, CLI_CHOICE, "fp32|fp16|int8", 0, 0, "the plan's precision (default fp32; int8 for a Q/DQ\nmodel: the layers it quantized)"},
    {O_THREADS, "threads", 0, CLI_INT, "N", 0, 1 << 30, "CPU threads (default: all cores)"},
    {O_REPEAT, "repeat", 0, CLI_INT, "N", 1, 100000, "run N times, print the best and the median time"},
    {O_PROFILE, "profile", 0, CLI_FLAG, NULL, 0, 0, "print the ops and nodes that took the most time"},
    CLI_ROW_RANDOM_WEIGHTS(O_RANDOM),
    {0},
};
const cli_command cli_cmd_infer = {
    "infer", "MODEL", 1, "run a model on .npy inputs, outputs as DIR/<name>.npy",
    "Runs MODEL once (CPU FP32 by default; a Q/DQ model's quantized layers in\n"
    "INT8) and writes each output as DIR/<name>.npy.  Inputs are .npy files in\n"
    "the order of the model's inputs; their shapes set the plan's shapes (any\n"
    "size the model allows).",
    g_opts, NULL};

int mt_cmd_infer(int argc, char **argv) {
    const char *path = NULL, *outdir = ".", *device = "cpu", *precision = NULL;
    const char *inputs[16];
    int ninputs = 0, random = 0, threads = 0, repeat = 1, profile = 0, id;
    long seed = 0;
    cli_parser p;
    cli_parser_init(&p, &cli_cmd_infer, argc, argv);
    while ((id = cli_next(&p)) > 0) {
        switch (id) {
        case O_INPUT:
            if (ninputs == 16) return cli_usage(&p, "more than 16 --input");
            inputs[ninputs++] = p.value;
            break;
        case O_OUTPUT: outdir = p.value; break;
        case O_DEVICE: device = p.value; break;
        case O_PRECISION: precision = p.value; break;
        case O_THREADS: threads = cli_cap_threads(&p, p.num); break;
        case O_REPEAT: repeat = (int)p.num; break;
        case O_RANDOM:
            random = 1;
            seed = p.num;
            break;
        case O_PROFILE: profile = 1; break;
        }
    }
    if (id == CLI_HELP) return 0;
    if (id == CLI_ERROR) return CLI_USAGE;
    if (p.nargs) path = p.args[0];
    if (!path) return cli_usage(&p, "no model given (usage: mtmi infer MODEL --input X.npy ... [-o DIR])");
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
