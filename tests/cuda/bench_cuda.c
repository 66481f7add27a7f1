/* mtmi_cuda_bench MODEL [--batch N] [--size HxW] [--iters N] [--precision fp16|fp32|int8]
 *                       [--cache CALIB] [--seed S] [--profile FILE] [--json FILE]
 * (int8: the heads' convolutions in INT8 on tensor cores with the scales of
 * CALIB, everything else FP16, as mtmi_plan_create(precision "int8") on a
 * GPU; --seed: the random weights' seed, 1 unless given, so that CALIB made
 * by `mtmi calibrate --random-weights S` matches)
 * Times the CUDA plan of a model by CUDA-graph replay on device-resident
 * inputs: the whole network, the shared encoder and each head (the plan's
 * parts), and reports device memory.  Missing weights are filled with
 * seeded random values (graph-only exports).  The MTMI_* tuning variables
 * (MTMI_CUDA_NO_FUSE, MTMI_CUDA_TRACE_DEST, ...) apply as on the command
 * line (app/env.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include "api/api.h"
#include "app/app.h"
#include "cuda/cuda_backend.h"
#include "quant/quant.h"

int main(int argc, char **argv) {
    const char *path = NULL, *prec = "fp16", *prof = NULL, *json = NULL, *cache = NULL;
    long seed = 1;
    int batch = 1, iters = 200, ncu = 0;
    long H = 0, W = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) prec = argv[++i];
        else if (!strcmp(argv[i], "--profile") && i + 1 < argc) prof = argv[++i];
        else if (!strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
        else if (!strcmp(argv[i], "--cache") && i + 1 < argc) cache = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = atol(argv[++i]);
        else if (!strcmp(argv[i], "--ncu")) ncu = 1;
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            if (sscanf(argv[++i], "%ldx%ld", &H, &W) != 2) return 2;
        } else path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "usage: mtmi_cuda_bench MODEL [--batch N] [--size HxW] [--iters N] [--precision fp16|fp32|int8] [--cache CALIB] [--seed S] [--profile FILE] [--json FILE]\n");
        return 2;
    }
    if (mt_cuda_check_device(0)) {
        printf("skipped: %s\n", mtmi_last_error());
        return 77;
    }
    mtmi_load_options lo = {.fill_missing_weights = 1, .seed = (uint64_t)seed};
    mtmi_model *m;
    if (mtmi_model_load(path, &lo, &m)) {
        fprintf(stderr, "error: %s\n", mtmi_last_error());
        return 1;
    }
    mtmi_tensor shape = {0};
    mtmi_model_input_shape(m, 0, &shape.rank, shape.dims);
    shape.dtype = MTMI_FLOAT;
    shape.dims[0] = batch;
    if (H && shape.rank == 4) {
        shape.dims[2] = H;
        shape.dims[3] = W;
    }
    for (int d = 1; d < shape.rank; d++)
        if (shape.dims[d] <= 0) shape.dims[d] = d == 1 ? 3 : 1024;
    mt_tuning tn;
    mt_app_tuning_from_env(&tn);
    if (!strcmp(prec, "int8")) tn.fuse_concat = 0; /* the cache names the standard graph's tensors */
    mt_graph *g;
    double t0 = mt_now_ms(), t_graph;
    if (mt_model_specialize_ex(m, &shape, 1, 1, &tn, &g)) {
        fprintf(stderr, "error: %s\n", mtmi_last_error());
        return 1;
    }
    if (!strcmp(prec, "int8")) {
        mt_quant_report rep;
        if (!cache) {
            fprintf(stderr, "error: --precision int8 needs --cache CALIB\n");
            return 2;
        }
        /* and the opt-in INT8 rewrites (MTMI_INT8_REASSOC=1), as the library applies them */
        if (mt_quant_plan_graph(m->graph, g, cache, &rep) || mt_quant_apply_tuning(g, &tn)) {
            fprintf(stderr, "error: %s\n", mtmi_last_error());
            return 1;
        }
        printf("int8: %d head nodes quantized, %d left in float\n", rep.quantized, rep.skipped);
    }
    t_graph = mt_now_ms();
    mt_cuda_plan *p;
    mt_cuda_plan_opts po = {.fp16 = strcmp(prec, "fp32") != 0, .tuning = &tn};
    if (mt_cuda_plan_create_ex(g, 0, &po, &p)) {
        fprintf(stderr, "error: %s\n", mtmi_last_error());
        return 1;
    }
    double t1 = mt_now_ms();
    /* inputs and outputs through the plan once */
    int64_t n = mt_numel(shape.rank, shape.dims);
    float *x = malloc(sizeof(float) * n);
    mt_rng r;
    mt_rng_seed(&r, 7);
    for (int64_t i = 0; i < n; i++) x[i] = mt_rng_normal(&r);
    mt_tview in = {.data = x, .dtype = MTMI_FLOAT, .rank = shape.rank};
    memcpy(in.dims, shape.dims, sizeof in.dims);
    mt_tview out[16];
    for (int i = 0; i < g->noutputs && i < 16; i++) out[i].data = malloc(mt_value_bytes(&g->values[g->outputs[i]]) + 16);
    if (mt_cuda_plan_run(p, &in, 1, out, g->noutputs)) {
        fprintf(stderr, "error: %s\n", mtmi_last_error());
        return 1;
    }
    double whole;
    if (ncu) {
        cudaDeviceSynchronize();
        cudaProfilerStart();
        mt_cuda_plan_bench(p, -1, 1, &whole);
        cudaProfilerStop();
        return 0;
    }
    if (mt_cuda_plan_bench(p, -1, iters, &whole)) {
        fprintf(stderr, "error: %s\n", mtmi_last_error());
        return 1;
    }
    int parts = mt_cuda_plan_num_parts(p);
    double pm[16] = {0};
    for (int k = 0; k < parts && k < 16; k++)
        if (mt_cuda_plan_bench(p, k, iters, &pm[k])) {
            fprintf(stderr, "error: %s\n", mtmi_last_error());
            return 1;
        }
    size_t arena, weights, ws;
    mt_cuda_plan_memory(p, &arena, &weights, &ws);
    size_t delta = mt_cuda_plan_device_delta(p);
    printf("mtmi cuda %s batch %d %lldx%lld: plan %.0f ms, %d steps\n", prec, batch, (long long)shape.dims[2],
           (long long)shape.dims[3], t1 - t0, mt_cuda_plan_num_steps(p));
    { /* what each fusion pass made (src/cuda/fuse.c; MTMI_CUDA_NO_FUSE names) */
        static const char *const passes[] = {"classmap", "qupsum", "qchain", "qresize", "qupconv", "mlp", "upconv", "catgemm", "chain",
                                             "lnproj", "lnim2col", "stem", "lnpair", "mlpln", "qln"};
        printf("fusions:");
        for (size_t k = 0; k < sizeof passes / sizeof passes[0]; k++) {
            const int made = mt_cuda_plan_fusions(p, passes[k]);
            if (made >= 0) printf(" %s %d", passes[k], made);
        }
        printf("\n");
    }
    printf("  graph (specialize, passes%s) %.1f ms; ", !strcmp(prec, "int8") ? ", int8 rewrite" : "", t_graph - t0);
    mt_cuda_plan_build_report(p, stdout);
    printf("  whole    %8.3f ms  (%.3f ms/image)\n", whole, whole / batch);
    printf("  encoder  %8.3f ms\n", pm[0]);
    for (int k = 1; k < parts; k++) printf("  %-8s %8.3f ms\n", g->values[g->outputs[k - 1]].name, pm[k]);
    printf("  memory: arena %.1f MiB, weights+staging %.1f MiB, workspace %.1f MiB, cudaMemGetInfo delta %.1f MiB\n",
           arena / 1048576.0, weights / 1048576.0, ws / 1048576.0, delta / 1048576.0);
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f, "{\"precision\": \"%s\", \"batch\": %d, \"whole_ms\": %.4f, \"encoder_ms\": %.4f", prec, batch, whole, pm[0]);
            for (int k = 1; k < parts; k++) fprintf(f, ", \"%s_ms\": %.4f", g->values[g->outputs[k - 1]].name, pm[k]);
            fprintf(f, ", \"arena_mib\": %.2f, \"weights_mib\": %.2f, \"workspace_mib\": %.2f, \"device_delta_mib\": %.2f}\n",
                    arena / 1048576.0, weights / 1048576.0, ws / 1048576.0, delta / 1048576.0);
            fclose(f);
        }
    }
    if (prof) {
        FILE *f = fopen(prof, "w");
        if (f) {
            mt_cuda_plan_profile(p, f);
            fclose(f);
        }
    }
    mt_cuda_plan_free(p);
    mt_graph_free(g);
    mtmi_model_free(m);
    free(x);
    return 0;
}
