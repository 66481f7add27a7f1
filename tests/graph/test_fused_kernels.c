/* mtmi.Attention and mtmi.Gelu CPU kernels against naive double-precision
 * references, on shapes that exercise partial query/key blocks, head dims
 * that are not multiples of 8, and several threads.  Independent of the
 * other op families (the graph holds only the fused node). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"

/* the plans' switches: no_avx512 selects the AVX2 path of the fused kernels */
static mt_tuning g_tuning;
#include "oracle.h"

static int failures;

static mt_graph *one_node_graph(const char *op, int nin, const int64_t dims[][4], const int *ranks) {
    mt_graph *g = mt_graph_new();
    g->opset = 17;
    int in[4], out;
    char name[16];
    for (int i = 0; i < nin; i++) {
        snprintf(name, sizeof name, "in%d", i);
        in[i] = mt_graph_add_value(g, name);
        mt_value_set_shape(&g->values[in[i]], MTMI_FLOAT, ranks[i], dims[i]);
        g->values[in[i]].is_input = 1;
    }
    out = mt_graph_add_value(g, "y");
    g->values[out].is_output = 1;
    int ni = mt_graph_add_node(g, op, "fused", in, nin, &out, 1);
    free(g->nodes[ni].domain);
    g->nodes[ni].domain = strdup("mtmi");
    g->inputs = malloc(sizeof(int) * nin);
    memcpy(g->inputs, in, sizeof(int) * nin);
    g->ninputs = nin;
    g->outputs = malloc(sizeof(int));
    g->outputs[0] = out;
    g->noutputs = 1;
    return g;
}

static uint64_t g_seed; /* $MTMI_TEST_SEED: added to every case's seed */

static float *randn(int64_t n, unsigned seed) {
    mt_rng r;
    mt_rng_seed(&r, g_seed + seed);
    float *p = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) p[i] = mt_rng_normal(&r);
    return p;
}

static void check(const char *what, const float *got, const double *ref, int64_t n, double tol) {
    double num = 0, den = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = got[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
        if (fabs(d) > mx) mx = fabs(d);
    }
    double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    int ok = rel <= tol && isfinite(rel);
    printf("%-40s max abs %.3e rel L2 %.3e %s\n", what, mx, rel, ok ? "ok" : "FAIL");
    if (!ok) failures++;
}

static void attention(int64_t B, int64_t H, int64_t N, int64_t M, int64_t d, int64_t dv, float scale, int threads) {
    int64_t dims[3][4] = {{B, H, N, d}, {B, H, M, d}, {B, H, M, dv}};
    int ranks[3] = {4, 4, 4};
    mt_graph *g = one_node_graph("Attention", 3, dims, ranks);
    mt_node_set_float(&g->nodes[0], "scale", scale);
    char what[128];
    snprintf(what, sizeof what, "attention %lldx%lldx%lldx%lld M=%lld dv=%lld t=%d", (long long)B, (long long)H,
             (long long)N, (long long)d, (long long)M, (long long)dv, threads);
    mt_cpu_plan *p = NULL;
    mt_cpu_plan_opts po = {.nthreads = threads, .tuning = &g_tuning};
    if (mt_graph_infer(g, NULL, 0, NULL, NULL) || mt_cpu_plan_create_ex(g, &po, &p)) {
        printf("%s: %s FAIL\n", what, mtmi_last_error());
        failures++;
        mt_graph_free(g);
        return;
    }
    float *q = randn(B * H * N * d, 1), *k = randn(B * H * M * d, 2), *v = randn(B * H * M * dv, 3);
    float *y = malloc(sizeof(float) * B * H * N * dv);
    double *ref = malloc(sizeof(double) * B * H * N * dv), *s = malloc(sizeof(double) * M);
    for (int64_t i = 0; i < B * H * N * d; i++) q[i] *= 2.0f; /* peaky softmax */
    mt_tview in[3], out[1];
    float *bufs[3] = {q, k, v};
    for (int i = 0; i < 3; i++) {
        in[i].data = bufs[i];
        in[i].dtype = MTMI_FLOAT;
        in[i].rank = 4;
        memcpy(in[i].dims, dims[i], sizeof dims[i]);
    }
    out[0].data = y;
    if (mt_cpu_plan_run(p, in, 3, out, 1)) {
        printf("%s: %s FAIL\n", what, mtmi_last_error());
        failures++;
    } else {
        for (int64_t bh = 0; bh < B * H; bh++)
            for (int64_t i = 0; i < N; i++) {
                const float *qi = q + (bh * N + i) * d;
                double mx = -1e300, sum = 0;
                for (int64_t j = 0; j < M; j++) {
                    const float *kj = k + (bh * M + j) * d;
                    double a = 0;
                    for (int64_t c = 0; c < d; c++) a += (double)qi[c] * kj[c];
                    s[j] = a * scale;
                    if (s[j] > mx) mx = s[j];
                }
                for (int64_t j = 0; j < M; j++) sum += (s[j] = exp(s[j] - mx));
                for (int64_t c = 0; c < dv; c++) {
                    double a = 0;
                    for (int64_t j = 0; j < M; j++) a += s[j] * v[(bh * M + j) * dv + c];
                    ref[(bh * N + i) * dv + c] = a / sum;
                }
            }
        check(what, y, ref, B * H * N * dv, 2e-6);
    }
    free(q); free(k); free(v); free(y); free(ref); free(s);
    mt_cpu_plan_free(p);
    mt_graph_free(g);
}

static void gelu(int64_t n, int threads) {
    int64_t dims[1][4] = {{n}};
    int ranks[1] = {1};
    mt_graph *g = one_node_graph("Gelu", 1, dims, ranks);
    mt_cpu_plan *p = NULL;
    char what[64];
    snprintf(what, sizeof what, "gelu n=%lld t=%d", (long long)n, threads);
    if (mt_graph_infer(g, NULL, 0, NULL, NULL) || mt_cpu_plan_create(g, threads, &p)) {
        printf("%s: %s FAIL\n", what, mtmi_last_error());
        failures++;
        mt_graph_free(g);
        return;
    }
    float *x = randn(n, 7), *y = malloc(sizeof(float) * n);
    double *ref = malloc(sizeof(double) * n);
    for (int64_t i = 0; i < n; i++) x[i] *= 4.0f;
    if (n > 4) x[0] = 0.0f, x[1] = -12.0f, x[2] = 12.0f, x[3] = 1e-8f;
    mt_tview in = {x, MTMI_FLOAT, 1, {n}}, out = {y, MTMI_FLOAT, 1, {n}};
    if (mt_cpu_plan_run(p, &in, 1, &out, 1)) {
        printf("%s: %s FAIL\n", what, mtmi_last_error());
        failures++;
    } else {
        for (int64_t i = 0; i < n; i++) ref[i] = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
        check(what, y, ref, n, 1e-6);
        double mx = 0;
        for (int64_t i = 0; i < n; i++) mx = fmax(mx, fabs(y[i] - ref[i]));
        if (mx > 1e-5) {
            printf("  gelu max abs error %.3e too large FAIL\n", mx);
            failures++;
        }
    }
    free(x); free(y); free(ref);
    mt_cpu_plan_free(p);
    mt_graph_free(g);
}

static void attention_all(void) {
    attention(1, 1, 1, 1, 1, 1, 1.0f, 1);
    attention(2, 3, 100, 70, 16, 24, 0.25f, 2);
    attention(1, 2, 130, 600, 20, 12, 0.3f, 2);
    attention(1, 5, 257, 513, 32, 32, 0.1767767f, 3);
    attention(1, 1, 64, 256, 32, 40, 0.1767767f, 1);
    attention(1, 2, 100, 1024, 32, 32, 0.1767767f, 2);
    attention(2, 1, 9, 17, 7, 5, 0.5f, 2);
}

int main(void) {
    g_seed = oracle_seed(0);
    /* both the AVX-512 path (where the CPU has it) and the AVX2 one */
    printf("-- attention, widest vectors\n");
    attention_all();
    g_tuning.no_avx512 = 1;
    printf("-- attention, AVX2\n");
    attention_all();
    g_tuning.no_avx512 = 0;
    gelu(5, 1);
    gelu(100003, 2);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
