/* Model preparation in C: the built-in MTMI network (structure, parameter
 * count, FLOPs per part), the ONNX writer (load -> save -> load gives the
 * same graph, inline and with external data, fused ops kept or written
 * back), the LayerNormalization opset rule, and graph splitting (automatic
 * and named cuts, bad cuts). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu/cpu.h"
#include "model/model.h"
#include "graph/builder.h"
#include "graph/mtmi_net.h"
#include "onnx/onnx.h"

#include "check.h"

static int count_op(const mt_graph *g, const char *op) {
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) n += !strcmp(g->nodes[i].op, op);
    return n;
}

static int count_domain(const mt_graph *g, const char *dom) {
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) n += !strcmp(g->nodes[i].domain ? g->nodes[i].domain : "", dom);
    return n;
}

static int attr_equal(const mt_attr *a, const mt_attr *b) {
    if (strcmp(a->name, b->name) || a->type != b->type) return 0;
    switch (a->type) {
    case MT_ATTR_INT: return a->i == b->i;
    case MT_ATTR_FLOAT: return a->f == b->f;
    case MT_ATTR_STRING: return !strcmp(a->s ? a->s : "", b->s ? b->s : "");
    case MT_ATTR_INTS: return a->n == b->n && !memcmp(a->ints, b->ints, sizeof(int64_t) * a->n);
    case MT_ATTR_FLOATS: return a->n == b->n && !memcmp(a->floats, b->floats, sizeof(float) * a->n);
    default: return 1;
    }
}

/* Same nodes (op, domain, name, tensor names, attributes) in the same
 * order, same constants (type, shape, bytes), same inputs and outputs. */
static int graphs_equal(const mt_graph *a, const mt_graph *b, const char *what) {
    int bad = 0;
#define DIFF(...)                                  \
    do {                                           \
        if (bad++ < 5) {                           \
            printf("  %s: ", what);                \
            printf(__VA_ARGS__);                   \
            printf("\n");                          \
        }                                          \
    } while (0)
    if (a->nnodes != b->nnodes) DIFF("%d nodes vs %d", a->nnodes, b->nnodes);
    if (a->opset != b->opset) DIFF("opset %lld vs %lld", (long long)a->opset, (long long)b->opset);
    for (int i = 0; i < a->nnodes && i < b->nnodes; i++) {
        const mt_node *x = &a->nodes[i], *y = &b->nodes[i];
        if (strcmp(x->op, y->op) || strcmp(x->domain, y->domain) || strcmp(x->name, y->name) || x->nin != y->nin ||
            x->nout != y->nout || x->nattr != y->nattr) {
            DIFF("node %d: %s.%s '%s' vs %s.%s '%s'", i, x->domain, x->op, x->name, y->domain, y->op, y->name);
            continue;
        }
        for (int k = 0; k < x->nin; k++) {
            const char *nx = x->in[k] >= 0 ? a->values[x->in[k]].name : "";
            const char *ny = y->in[k] >= 0 ? b->values[y->in[k]].name : "";
            if (strcmp(nx, ny)) DIFF("node '%s' input %d: '%s' vs '%s'", x->name, k, nx, ny);
        }
        for (int k = 0; k < x->nout; k++)
            if (strcmp(a->values[x->out[k]].name, b->values[y->out[k]].name)) DIFF("node '%s' output %d differs", x->name, k);
        for (int k = 0; k < x->nattr; k++)
            if (!attr_equal(&x->attrs[k], &y->attrs[k])) DIFF("node '%s' attribute '%s' differs", x->name, x->attrs[k].name);
    }
    int nconst = 0;
    for (int v = 0; v < a->nvalues; v++) {
        const mt_value *x = &a->values[v];
        if (!x->data) continue;
        nconst++;
        int w = mt_graph_find_value(b, x->name);
        if (w < 0 || !b->values[w].data) {
            DIFF("constant '%s' missing", x->name);
            continue;
        }
        const mt_value *y = &b->values[w];
        if (x->dtype != y->dtype || x->rank != y->rank || memcmp(x->dims, y->dims, sizeof(int64_t) * x->rank) ||
            memcmp(x->data, y->data, mt_value_bytes(x)))
            DIFF("constant '%s' differs", x->name);
    }
    int nconst_b = 0;
    for (int v = 0; v < b->nvalues; v++) nconst_b += b->values[v].data != NULL;
    if (nconst != nconst_b) DIFF("%d constants vs %d", nconst, nconst_b);
    if (a->ninputs != b->ninputs || a->noutputs != b->noutputs) DIFF("inputs/outputs differ");
    for (int i = 0; i < a->ninputs && i < b->ninputs; i++) {
        const mt_value *x = &a->values[a->inputs[i]], *y = &b->values[b->inputs[i]];
        if (strcmp(x->name, y->name) || x->dtype != y->dtype || x->rank != y->rank || memcmp(x->dims, y->dims, sizeof(int64_t) * x->rank))
            DIFF("input %d differs", i);
    }
    for (int i = 0; i < a->noutputs && i < b->noutputs; i++)
        if (strcmp(a->values[a->outputs[i]].name, b->values[b->outputs[i]].name)) DIFF("output %d differs", i);
#undef DIFF
    return bad == 0;
}

static mt_graph *save_load(const mt_graph *g, const char *path, const mt_onnx_save_opts *o) {
    mtmi_status s = mt_onnx_save(g, path, o);
    CHECK(s == MTMI_OK, "save %s: %s", path, mtmi_last_error());
    mt_graph *r = NULL;
    if (!s) {
        s = mt_onnx_load(path, NULL, &r);
        CHECK(s == MTMI_OK, "reload %s: %s", path, mtmi_last_error());
    }
    return r;
}

static void test_network(void) {
    mt_graph *g = NULL;
    mt_mtmi_net_info info;
    mt_mtmi_net_opts o = {.seed = 0};
    mtmi_status s = mt_make_mtmi_net(&o, &g, &info);
    CHECK(s == MTMI_OK, "make net: %s", mtmi_last_error());
    if (s) return;
    CHECK(info.params == 4896404, "params %lld (4,896,403 external in the exports + the 1-element depth.cls.bias)", (long long)info.params);
    CHECK(info.torch_params == MT_MTMI_TORCH_PARAMS, "torch params %lld", (long long)info.torch_params);
    CHECK(fabs(info.gflop_encoder - 50.6) < 0.1, "encoder %.2f GFLOP", info.gflop_encoder);
    CHECK(fabs(info.gflop_seg - 9.9) < 0.1, "seg %.2f GFLOP", info.gflop_seg);
    CHECK(fabs(info.gflop_depth - 56.5) < 0.1, "depth %.2f GFLOP", info.gflop_depth);
    /* The dynamo export's op histogram, node for node. */
    static const struct { const char *op; int n; } hist[] = {
        {"Transpose", 68}, {"Add", 64}, {"Reshape", 60}, {"MatMul", 56}, {"Conv", 33}, {"LayerNormalization", 30},
        {"Mul", 24}, {"Gather", 16}, {"Relu", 13}, {"Resize", 10}, {"Softmax", 8}, {"Div", 8}, {"Erf", 8},
        {"Concat", 4}, {"Sigmoid", 1}};
    int total = 0;
    for (size_t i = 0; i < sizeof hist / sizeof hist[0]; i++) {
        CHECK(count_op(g, hist[i].op) == hist[i].n, "%s: %d, export has %d", hist[i].op, count_op(g, hist[i].op), hist[i].n);
        total += hist[i].n;
    }
    CHECK(g->nnodes == total, "%d nodes, export has %d", g->nnodes, total);
    CHECK(g->noutputs == 2 && !strcmp(g->values[g->outputs[0]].name, "seg") && !strcmp(g->values[g->outputs[1]].name, "depth"), "outputs");
    int64_t w = 0;
    for (int v = 0; v < g->nvalues; v++)
        if (g->values[v].is_weight) w += mt_value_numel(&g->values[v]);
    CHECK(w == info.params, "weights in graph %lld vs reported %lld", (long long)w, (long long)info.params);
    mt_graph_free(g);

    mt_mtmi_net_opts bad = {.height = 100, .width = 64};
    s = mt_make_mtmi_net(&bad, &g, NULL);
    CHECK(s == MTMI_ERR_ARG && g == NULL && strstr(mtmi_last_error(), "32"), "bad size: %d '%s'", s, mtmi_last_error());
    bad = (mt_mtmi_net_opts){.batch = -3};
    s = mt_make_mtmi_net(&bad, &g, NULL);
    CHECK(s == MTMI_ERR_ARG, "bad batch: %d", s);

    mtmi_model *m = NULL;
    mt_mtmi_net_opts small = {.height = 64, .width = 64};
    s = mt_model_builtin(&small, &m);
    CHECK(s == MTMI_OK && m && mtmi_model_num_outputs(m) == 2, "net as model: %s", mtmi_last_error());
    mtmi_model_free(m);
}

static void test_roundtrip(const char *dir) {
    mt_graph *g = NULL;
    mt_mtmi_net_opts o = {.seed = 3, .height = 64, .width = 96, .batch = 2};
    if (mt_make_mtmi_net(&o, &g, NULL)) {
        CHECK(0, "make net: %s", mtmi_last_error());
        return;
    }
    char p1[512], p2[512], data[600];
    snprintf(p1, sizeof p1, "%s/inline.onnx", dir);
    snprintf(p2, sizeof p2, "%s/external.onnx", dir);
    mt_graph *r = save_load(g, p1, NULL);
    if (r) CHECK(graphs_equal(g, r, "inline"), "inline round trip differs");
    mt_graph_free(r);
    mt_onnx_save_opts ext = {.external_threshold = 1024};
    r = save_load(g, p2, &ext);
    if (r) CHECK(graphs_equal(g, r, "external"), "external-data round trip differs");
    snprintf(data, sizeof data, "%s.data", p2);
    CHECK(access(data, R_OK) == 0, "no %s", data);
    /* Saving the reloaded graph again gives the same graph once more. */
    if (r) {
        mt_graph *r2 = save_load(r, p1, NULL);
        if (r2) CHECK(graphs_equal(r, r2, "second round trip"), "second round trip differs");
        mt_graph_free(r2);
    }
    mt_graph_free(r);

    /* Optimized: fused ops kept in the mtmi domain, or written back. */
    mtmi_status s = mt_graph_optimize(g, NULL, 0, mt_cpu_eval, NULL, 1);
    CHECK(s == MTMI_OK, "optimize: %s", mtmi_last_error());
    if (!s) {
        int fused = count_domain(g, "mtmi");
        CHECK(fused > 0, "no fused ops after optimization");
        mt_onnx_save_opts keep = {.keep_fused = 1};
        r = save_load(g, p1, &keep);
        if (r) CHECK(graphs_equal(g, r, "keep-fused"), "keep-fused round trip differs");
        mt_graph_free(r);
        r = save_load(g, p1, NULL);
        if (r) {
            CHECK(count_domain(r, "mtmi") == 0, "%d mtmi nodes written", count_domain(r, "mtmi"));
            CHECK(r->nnodes > g->nnodes, "written back %d nodes, fused %d", r->nnodes, g->nnodes);
            CHECK(count_op(r, "Erf") == 8 && count_op(r, "Softmax") == 8, "written back: %d Erf, %d Softmax",
                  count_op(r, "Erf"), count_op(r, "Softmax"));
            /* Reloaded and optimized again, the fusions come back. */
            s = mt_graph_optimize(r, NULL, 0, mt_cpu_eval, NULL, 1);
            CHECK(s == MTMI_OK && count_domain(r, "mtmi") == fused, "refused %d of %d fused ops (%s)", count_domain(r, "mtmi"),
                  fused, mtmi_last_error());
        }
        mt_graph_free(r);
    }
    mt_graph_free(g);

    /* Unwritable destination: an error naming the path, nothing left. */
    g = NULL;
    mt_make_mtmi_net(&(mt_mtmi_net_opts){.height = 32, .width = 32}, &g, NULL);
    s = g ? mt_onnx_save(g, "/nonexistent-dir/x.onnx", NULL) : MTMI_ERR_INTERNAL;
    CHECK(s == MTMI_ERR_IO && strstr(mtmi_last_error(), "/nonexistent-dir/x.onnx"), "unwritable: %d '%s'", s, mtmi_last_error());
    mt_graph_free(g);
}

/* LayerNormalization in an opset-13 graph: the opset is raised to 17; in an
 * opset-11 graph with ops whose meaning changed since, it is decomposed. */
static void test_layernorm_opset(const char *dir) {
    for (int pass = 0; pass < 2; pass++) {
        mt_builder b;
        mt_builder_init(&b, 1, pass == 0 ? 13 : 11);
        int64_t d[3] = {1, 4, 8};
        int x = mt_b_input(&b, "x", MTMI_FLOAT, 3, d);
        int y = mt_b_layernorm(&b, x, "ln", 8, 1e-5f);
        if (pass == 1) {
            y = mt_b_unary(&b, "Flatten", y);
            mt_node *n = mt_b_last(&b);
            if (n) mt_node_set_int(n, "axis", 1);
        }
        mt_b_output(&b, y, "y");
        mt_graph *g = NULL;
        if (mt_builder_finish(&b, &g)) {
            CHECK(0, "build: %s", mtmi_last_error());
            continue;
        }
        char p[512];
        snprintf(p, sizeof p, "%s/ln%d.onnx", dir, pass);
        mt_graph *r = save_load(g, p, NULL);
        if (r && pass == 0) CHECK(r->opset == 17 && count_op(r, "LayerNormalization") == 1, "opset %lld", (long long)r->opset);
        if (r && pass == 1)
            CHECK(r->opset == 11 && count_op(r, "LayerNormalization") == 0 && count_op(r, "ReduceMean") == 2,
                  "opset %lld, %d LayerNormalization", (long long)r->opset, count_op(r, "LayerNormalization"));
        mt_graph_free(r);
        mt_graph_free(g);
    }
}

static void test_split(void) {
    mt_graph *g = NULL;
    if (mt_make_mtmi_net(&(mt_mtmi_net_opts){.height = 64, .width = 64}, &g, NULL)) {
        CHECK(0, "make net: %s", mtmi_last_error());
        return;
    }
    static const char *feats[4] = {"/enc/Transpose_output_0", "/enc/Transpose_1_output_0", "/enc/Transpose_2_output_0",
                                   "/enc/Transpose_3_output_0"};
    mt_split sp;
    mtmi_status s = mt_graph_split(g, NULL, 0, &sp);
    CHECK(s == MTMI_OK, "auto split: %s", mtmi_last_error());
    if (!s) {
        CHECK(sp.ncut == 4 && sp.nheads == 2, "%d cuts, %d heads", sp.ncut, sp.nheads);
        for (int i = 0; i < 4 && i < sp.ncut; i++) CHECK(!strcmp(sp.cut_names[i], feats[i]), "cut %d is '%s'", i, sp.cut_names[i]);
        CHECK(sp.encoder->noutputs == 4 && sp.encoder->ninputs == 1, "encoder io");
        CHECK(sp.heads[0]->ninputs == 4 && sp.heads[1]->ninputs == 4, "head inputs");
        CHECK(!strcmp(sp.heads[0]->values[sp.heads[0]->outputs[0]].name, "seg"), "head 0 is seg");
        CHECK(sp.encoder->nnodes + sp.heads[0]->nnodes + sp.heads[1]->nnodes == g->nnodes, "nodes %d + %d + %d != %d",
              sp.encoder->nnodes, sp.heads[0]->nnodes, sp.heads[1]->nnodes, g->nnodes);
        mt_split_free(&sp);
    }
    /* Named, in another order. */
    const char *rev[4] = {feats[3], feats[2], feats[1], feats[0]};
    s = mt_graph_split(g, rev, 4, &sp);
    CHECK(s == MTMI_OK && sp.ncut == 4 && !strcmp(sp.cut_names[0], feats[3]), "named split: %s", mtmi_last_error());
    if (!s) mt_split_free(&sp);

    struct { const char *cut[5]; int n; const char *msg; } bad[] = {
        {{"no_such_tensor"}, 1, "not a tensor"},
        {{feats[1], feats[2], feats[3]}, 3, "does not separate"},
        {{feats[0], feats[1], feats[2], feats[3], "seg"}, 5, "model output"},
        {{feats[0], feats[0], feats[1], feats[2], feats[3]}, 5, "twice"},
        {{"input"}, 1, "model input"},
        {{feats[0], feats[1], feats[2], feats[3], "/enc/embeds.0/proj/Conv_output_0"}, 5, "read by no head"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&sp, 0x5a, sizeof sp);
        s = mt_graph_split(g, bad[i].cut, bad[i].n, &sp);
        CHECK(s == MTMI_ERR_ARG && strstr(mtmi_last_error(), bad[i].msg) && !strchr(mtmi_last_error(), '\n'),
              "bad cut %zu: %d '%s'", i, s, mtmi_last_error());
        CHECK(sp.encoder == NULL && sp.heads == NULL, "bad cut %zu left parts", i);
    }
    mt_graph_free(g);
}

/* The reference exports (graph only, weights filled at load): load, save,
 * load gives the same graph.  The shared folder sits beside the repository
 * (found from this file's path, or $MTMI_SHARED); it is always there in CI,
 * so its absence is a failure. */
static void test_reference_roundtrip(const char *dir) {
    static const char *files[] = {"mtmi_torchscript_opset17.graph.onnx", "mtmi_dynamo_opset17.graph.onnx"};
    char base[1024];
    const char *env = getenv("MTMI_SHARED");
    if (env) snprintf(base, sizeof base, "%s/reference", env);
    else {
        snprintf(base, sizeof base, "%s", __FILE__);
        char *sl = strrchr(base, '/');
        if (!sl) return;
        snprintf(sl, sizeof base - (sl - base), "/../../../shared/reference");
    }
    for (int i = 0; i < 2; i++) {
        char src[1400], dst[600];
        snprintf(src, sizeof src, "%s/%s", base, files[i]);
        if (access(src, R_OK) != 0) {
            CHECK(0, "%s not found: the reference round trip needs the shared folder beside the repository (or "
                     "$MTMI_SHARED)", src);
            return;
        }
        mt_onnx_load_opts lo = {.fill_missing_weights = 1, .seed = 0};
        mt_graph *g = NULL;
        mtmi_status s = mt_onnx_load(src, &lo, &g);
        CHECK(s == MTMI_OK, "load %s: %s", src, mtmi_last_error());
        if (s) continue;
        snprintf(dst, sizeof dst, "%s/ref%d.onnx", dir, i);
        mt_graph *r = save_load(g, dst, &(mt_onnx_save_opts){.external_threshold = 4096});
        if (r) CHECK(graphs_equal(g, r, files[i]), "%s: round trip differs", files[i]);
        mt_graph_free(r);
        mt_graph_free(g);
    }
}

int main(void) {
    char dir[200];
    if (!mkdtemp(test_tmp_template(dir, sizeof dir, "mtmi_prep_"))) {
        printf("cannot make a temporary folder\n");
        return 1;
    }
    test_network();
    test_roundtrip(dir);
    test_reference_roundtrip(dir);
    test_layernorm_opset(dir);
    test_split();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
