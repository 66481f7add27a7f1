/* The C graph builder (builder.h). */
#include "graph/builder.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int failed(mt_builder *b) { return !b->g || b->err != MTMI_OK; }

static int fail(mt_builder *b, mtmi_status s) {
    if (b->err == MTMI_OK) b->err = s ? s : MTMI_ERR_INTERNAL;
    return -1;
}

mtmi_status mt_builder_init(mt_builder *b, uint64_t seed, int64_t opset) {
    memset(b, 0, sizeof *b);
    b->g = mt_graph_new();
    if (!b->g) return b->err = MTMI_ERR_NOMEM;
    b->g->opset = opset > 0 ? opset : 17;
    b->g->ir_version = 8;
    b->g->producer = mt_strdup("mtmi builder");
    b->g->name = mt_strdup("main_graph");
    b->g->inputs = malloc(sizeof(int) * 16);
    b->g->outputs = malloc(sizeof(int) * 16);
    if (!b->g->producer || !b->g->name || !b->g->inputs || !b->g->outputs) {
        mt_builder_abort(b);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    mt_rng_seed(&b->rng, seed);
    return MTMI_OK;
}

void mt_builder_abort(mt_builder *b) {
    mt_graph_free(b->g);
    b->g = NULL;
}

mtmi_status mt_builder_finish(mt_builder *b, mt_graph **out) {
    *out = NULL;
    if (!b->g) return b->err ? b->err : mt_fail(MTMI_ERR_ARG, "builder not initialized");
    mtmi_status s = b->err;
    if (!s && b->g->noutputs == 0) s = mt_fail(MTMI_ERR_ARG, "builder: graph has no outputs");
    if (!s) s = mt_graph_compact(b->g);
    if (s) {
        if (s == MTMI_ERR_NOMEM && !mtmi_last_error()[0]) mt_fail(s, "builder: out of memory");
        mt_builder_abort(b);
        return s;
    }
    *out = b->g;
    b->g = NULL;
    return MTMI_OK;
}

void mt_b_scope(mt_builder *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->scope, sizeof b->scope, fmt, ap);
    va_end(ap);
}

int mt_b_input(mt_builder *b, const char *name, int dtype, int rank, const int64_t *dims) {
    if (failed(b)) return -1;
    if (b->g->ninputs >= 16 || rank < 0 || rank > MT_MAX_RANK) return fail(b, mt_fail(MTMI_ERR_ARG, "builder: bad input '%s'", name));
    if (mt_graph_find_value(b->g, name) >= 0) return fail(b, mt_fail(MTMI_ERR_ARG, "builder: name '%s' taken", name));
    int v = mt_graph_add_value(b->g, name);
    if (v < 0) return fail(b, MTMI_ERR_NOMEM);
    mt_value_set_shape(&b->g->values[v], dtype, rank, dims);
    b->g->values[v].is_input = 1;
    b->g->inputs[b->g->ninputs++] = v;
    return v;
}

int mt_b_output(mt_builder *b, int v, const char *name) {
    if (failed(b) || v < 0) return fail(b, MTMI_ERR_ARG);
    if (b->g->noutputs >= 16) return fail(b, mt_fail(MTMI_ERR_ARG, "builder: too many outputs"));
    int other = mt_graph_find_value(b->g, name);
    if (other >= 0 && other != v) return fail(b, mt_fail(MTMI_ERR_ARG, "builder: name '%s' taken", name));
    char *nm = mt_strdup(name);
    if (!nm) return fail(b, MTMI_ERR_NOMEM);
    free(b->g->values[v].name);
    b->g->values[v].name = nm;
    b->g->values[v].is_output = 1;
    b->g->outputs[b->g->noutputs++] = v;
    return v;
}

static int add_const(mt_builder *b, const char *name, int dtype, int rank, const int64_t *dims, const void *data,
                     size_t bytes, int weight) {
    if (failed(b)) return -1;
    if (mt_graph_find_value(b->g, name) >= 0) return fail(b, mt_fail(MTMI_ERR_ARG, "builder: name '%s' taken", name));
    int v = mt_graph_add_value(b->g, name);
    if (v < 0) return fail(b, MTMI_ERR_NOMEM);
    mt_value *val = &b->g->values[v];
    mt_value_set_shape(val, dtype, rank, dims);
    val->data = malloc(bytes ? bytes : 1);
    if (!val->data) return fail(b, mt_fail(MTMI_ERR_NOMEM, "builder: out of memory"));
    if (data) memcpy(val->data, data, bytes);
    val->is_weight = weight;
    if (weight && dtype == MTMI_FLOAT) b->params += (int64_t)(bytes / 4);
    return v;
}

int mt_b_weight(mt_builder *b, const char *name, int rank, const int64_t *dims, float scale) {
    if (failed(b)) return -1;
    int64_t n = mt_numel(rank, dims);
    if (n <= 0) return fail(b, mt_fail(MTMI_ERR_ARG, "builder: weight '%s' has no elements", name));
    int v = add_const(b, name, MTMI_FLOAT, rank, dims, NULL, (size_t)n * 4, 1);
    if (v < 0) return -1;
    if (scale == 0) {
        int64_t fan = rank > 1 ? n / dims[0] : n;
        scale = 1.0f / sqrtf((float)(fan > 0 ? fan : 1));
    }
    float *p = b->g->values[v].data;
    if (b->no_draws) memset(p, 0, (size_t)n * sizeof *p);
    else
        for (int64_t i = 0; i < n; i++) p[i] = mt_rng_normal(&b->rng) * scale;
    return v;
}

int mt_b_weight_data(mt_builder *b, const char *name, int rank, const int64_t *dims, const float *data) {
    int64_t n = mt_numel(rank, dims);
    return add_const(b, name, MTMI_FLOAT, rank, dims, data, (size_t)(n > 0 ? n : 0) * 4, 1);
}

/* An existing non-weight constant equal to this one, or -1. */
static int find_const(mt_builder *b, int dtype, int rank, const int64_t *dims, const void *data, size_t bytes) {
    for (int v = 0; v < b->g->nvalues; v++) {
        const mt_value *c = &b->g->values[v];
        if (!c->data || c->is_weight || c->dtype != dtype || c->rank != rank) continue;
        if (memcmp(c->dims, dims, sizeof(int64_t) * rank) || mt_value_bytes(c) != bytes) continue;
        if (!memcmp(c->data, data, bytes)) return v;
    }
    return -1;
}

static int make_const(mt_builder *b, int dtype, int rank, const void *v, int n, size_t esz) {
    if (failed(b)) return -1;
    if (rank != 0 && rank != 1) return fail(b, mt_fail(MTMI_ERR_ARG, "builder: constants are scalars or vectors"));
    int64_t dims[1] = {n};
    int c = find_const(b, dtype, rank, dims, v, esz * n);
    if (c >= 0) return c;
    char name[64];
    for (int k = b->g->nvalues;; k++) {
        snprintf(name, sizeof name, "const_%d", k);
        if (mt_graph_find_value(b->g, name) < 0) break;
    }
    return add_const(b, name, dtype, rank, dims, v, esz * n, 0);
}

int mt_b_const_i64(mt_builder *b, int rank, const int64_t *v, int n) { return make_const(b, MTMI_INT64, rank, v, n, 8); }
int mt_b_const_f32(mt_builder *b, int rank, const float *v, int n) { return make_const(b, MTMI_FLOAT, rank, v, n, 4); }

int mt_b_node(mt_builder *b, const char *op, const int *in, int nin) {
    if (failed(b)) return -1;
    for (int i = 0; i < nin; i++)
        if (in[i] < -1 || in[i] >= b->g->nvalues) return fail(b, mt_fail(MTMI_ERR_ARG, "builder: %s: bad input %d", op, i));
    char node[512], out[600];
    for (int k = 0;; k++) {
        if (k) snprintf(node, sizeof node, "%s/%s_%d", b->scope, op, k);
        else snprintf(node, sizeof node, "%s/%s", b->scope, op);
        snprintf(out, sizeof out, "%s_output_0", node);
        if (mt_graph_find_value(b->g, out) < 0) break;
    }
    int y = mt_graph_add_value(b->g, out);
    if (y < 0 || mt_graph_add_node(b->g, op, node, in, nin, &y, 1) < 0) return fail(b, mt_fail(MTMI_ERR_NOMEM, "builder: out of memory"));
    return y;
}

mt_node *mt_b_last(mt_builder *b) { return failed(b) || !b->g->nnodes ? NULL : &b->g->nodes[b->g->nnodes - 1]; }

int mt_b_unary(mt_builder *b, const char *op, int x) { return mt_b_node(b, op, &x, 1); }

int mt_b_binary(mt_builder *b, const char *op, int x, int y) {
    int in[2] = {x, y};
    return mt_b_node(b, op, in, 2);
}

/* Attribute setters that turn a failure into the sticky error. */
static void set_ints(mt_builder *b, const char *name, const int64_t *v, int n) {
    mt_node *nd = mt_b_last(b);
    if (nd && mt_node_set_ints(nd, name, v, n)) fail(b, MTMI_ERR_NOMEM);
}

static void set_int(mt_builder *b, const char *name, int64_t v) {
    mt_node *nd = mt_b_last(b);
    if (nd && mt_node_set_int(nd, name, v)) fail(b, MTMI_ERR_NOMEM);
}

static void set_float(mt_builder *b, const char *name, float v) {
    mt_node *nd = mt_b_last(b);
    if (nd && mt_node_set_float(nd, name, v)) fail(b, MTMI_ERR_NOMEM);
}

static void set_string(mt_builder *b, const char *name, const char *v) {
    mt_node *nd = mt_b_last(b);
    if (nd && mt_node_set_string(nd, name, v)) fail(b, MTMI_ERR_NOMEM);
}

static int conv_node(mt_builder *b, int x, int w, int bias, int k, int stride, int pad, int groups) {
    int in[3] = {x, w, bias};
    int y = mt_b_node(b, "Conv", in, bias >= 0 ? 3 : 2);
    int64_t dil[2] = {1, 1}, ks[2] = {k, k}, pads[4] = {pad, pad, pad, pad}, st[2] = {stride, stride};
    set_ints(b, "dilations", dil, 2);
    set_int(b, "group", groups);
    set_ints(b, "kernel_shape", ks, 2);
    set_ints(b, "pads", pads, 4);
    set_ints(b, "strides", st, 2);
    return y;
}

int mt_b_conv(mt_builder *b, int x, const char *name, int cin, int cout, int k, int stride, int pad, int groups,
              int bias, int64_t out_hw_batch) {
    char nm[512];
    int64_t wd[4] = {cout, cin / groups, k, k}, bd[1] = {cout};
    snprintf(nm, sizeof nm, "%s.weight", name);
    int w = mt_b_weight(b, nm, 4, wd, 0);
    int bv = -1;
    if (bias) {
        snprintf(nm, sizeof nm, "%s.bias", name);
        bv = mt_b_weight(b, nm, 1, bd, 0);
    }
    b->flops += 2.0 * out_hw_batch * cout * (double)(cin / groups) * k * k;
    return conv_node(b, x, w, bv, k, stride, pad, groups);
}

int mt_b_conv_bn(mt_builder *b, int x, const char *name, int cin, int cout, int k, int pad, int64_t out_hw_batch) {
    if (failed(b)) return -1;
    /* Same draws as mtmi_torch.randomize: conv weight, BN gamma and beta
     * (normal / sqrt(C)), running mean (normal * 0.1), running var
     * (uniform + 0.5); then the eval-mode BN is folded into the conv. */
    size_t per = (size_t)cin * k * k;
    float *w = malloc(sizeof(float) * per * cout), *bias = malloc(sizeof(float) * cout);
    if (!w || !bias) {
        free(w);
        free(bias);
        return fail(b, mt_fail(MTMI_ERR_NOMEM, "builder: out of memory"));
    }
    float ws = 1.0f / sqrtf((float)per), cs = 1.0f / sqrtf((float)cout);
    if (b->no_draws) { /* zeros; the folding below keeps them zero */
        memset(w, 0, sizeof(float) * per * cout);
        ws = cs = 0;
    }
    for (size_t i = 0; !b->no_draws && i < per * cout; i++) w[i] = mt_rng_normal(&b->rng) * ws;
    float *gamma = bias; /* reuse: gamma first, then overwritten by the folded bias */
    float beta[4096], mean[4096], var[4096];
    if (cout > 4096) {
        free(w);
        free(bias);
        return fail(b, mt_fail(MTMI_ERR_ARG, "builder: conv_bn over 4096 channels"));
    }
    for (int c = 0; c < cout; c++) gamma[c] = b->no_draws ? 0 : mt_rng_normal(&b->rng) * cs;
    for (int c = 0; c < cout; c++) beta[c] = b->no_draws ? 0 : mt_rng_normal(&b->rng) * cs;
    for (int c = 0; c < cout; c++) mean[c] = b->no_draws ? 0 : mt_rng_normal(&b->rng) * 0.1f;
    for (int c = 0; c < cout; c++) var[c] = b->no_draws ? 1 : mt_rng_uniform(&b->rng) + 0.5f;
    for (int c = 0; c < cout; c++) {
        float f = gamma[c] / sqrtf(var[c] + 1e-5f);
        for (size_t i = 0; i < per; i++) w[c * per + i] *= f;
        bias[c] = beta[c] - mean[c] * f;
    }
    char nm[512];
    int64_t wd[4] = {cout, cin, k, k}, bd[1] = {cout};
    snprintf(nm, sizeof nm, "%s.weight", name);
    int wv = mt_b_weight_data(b, nm, 4, wd, w);
    snprintf(nm, sizeof nm, "%s.weight_bias", name);
    int bv = mt_b_weight_data(b, nm, 1, bd, bias);
    free(w);
    free(bias);
    b->bn_folded += cout;
    b->flops += 2.0 * out_hw_batch * cout * (double)per;
    return conv_node(b, x, wv, bv, k, 1, pad, 1);
}

int mt_b_linear(mt_builder *b, int x, const char *name, int in, int out, int64_t rows) {
    char nm[512];
    int64_t wd[2] = {in, out}, bd[1] = {out};
    snprintf(nm, sizeof nm, "%s.weight_t", name);
    int w = mt_b_weight(b, nm, 2, wd, 1.0f / sqrtf((float)in));
    snprintf(nm, sizeof nm, "%s.bias", name);
    int bv = mt_b_weight(b, nm, 1, bd, 0);
    b->flops += 2.0 * rows * in * out;
    int mm = mt_b_binary(b, "MatMul", x, w);
    return mt_b_binary(b, "Add", mm, bv);
}

int mt_b_layernorm(mt_builder *b, int x, const char *name, int dim, float eps) {
    char nm[512];
    int64_t d[1] = {dim};
    snprintf(nm, sizeof nm, "%s.weight", name);
    int w = mt_b_weight(b, nm, 1, d, 0);
    snprintf(nm, sizeof nm, "%s.bias", name);
    int bv = mt_b_weight(b, nm, 1, d, 0);
    int in[3] = {x, w, bv};
    int y = mt_b_node(b, "LayerNormalization", in, 3);
    set_int(b, "axis", -1);
    set_float(b, "epsilon", eps);
    return y;
}

int mt_b_gelu(mt_builder *b, int x) {
    float c[3] = {1.41421356237f, 1.0f, 0.5f};
    int s2 = mt_b_const_f32(b, 0, &c[0], 1), one = mt_b_const_f32(b, 0, &c[1], 1), half = mt_b_const_f32(b, 0, &c[2], 1);
    int d = mt_b_binary(b, "Div", x, s2);
    int e = mt_b_unary(b, "Erf", d);
    int a = mt_b_binary(b, "Add", e, one);
    int m = mt_b_binary(b, "Mul", x, a);
    return mt_b_binary(b, "Mul", m, half);
}

int mt_b_attention(mt_builder *b, int q, int k, int v, float scale, int64_t bh, int64_t n, int64_t m, int64_t d) {
    int64_t perm[4] = {0, 1, 3, 2};
    int kt = mt_b_transpose(b, k, perm, 4);
    int s = mt_b_binary(b, "MatMul", q, kt);
    int sc = mt_b_const_f32(b, 0, &scale, 1);
    int ss = mt_b_binary(b, "Mul", s, sc);
    int p = mt_b_unary(b, "Softmax", ss);
    set_int(b, "axis", -1);
    b->flops += 4.0 * bh * n * m * d;
    return mt_b_binary(b, "MatMul", p, v);
}

int mt_b_reshape(mt_builder *b, int x, const int64_t *shape, int n) {
    int c = mt_b_const_i64(b, 1, shape, n);
    int y = mt_b_binary(b, "Reshape", x, c);
    set_int(b, "allowzero", 0);
    return y;
}

int mt_b_transpose(mt_builder *b, int x, const int64_t *perm, int n) {
    int y = mt_b_unary(b, "Transpose", x);
    set_ints(b, "perm", perm, n);
    return y;
}

int mt_b_gather(mt_builder *b, int x, int64_t index, int axis) {
    int c = mt_b_const_i64(b, 0, &index, 1);
    int y = mt_b_binary(b, "Gather", x, c);
    set_int(b, "axis", axis);
    return y;
}

int mt_b_concat(mt_builder *b, const int *xs, int n, int axis) {
    int y = mt_b_node(b, "Concat", xs, n);
    set_int(b, "axis", axis);
    return y;
}

static void resize_attrs(mt_builder *b) {
    set_string(b, "coordinate_transformation_mode", "half_pixel");
    set_float(b, "cubic_coeff_a", -0.75f);
    set_string(b, "mode", "linear");
    set_string(b, "nearest_mode", "floor");
}

int mt_b_resize_scales(mt_builder *b, int x, const float *scales, int n) {
    int in[3] = {x, -1, mt_b_const_f32(b, 1, scales, n)};
    int y = mt_b_node(b, "Resize", in, 3);
    resize_attrs(b);
    return y;
}

int mt_b_resize_sizes(mt_builder *b, int x, const int64_t *sizes, int n) {
    int in[4] = {x, -1, -1, mt_b_const_i64(b, 1, sizes, n)};
    int y = mt_b_node(b, "Resize", in, 4);
    resize_attrs(b);
    return y;
}
