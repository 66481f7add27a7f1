/* The "spread" weight initialization: seeded random weights under which a
 * multi-task network's outputs are discriminative (a class map with many
 * classes, a depth map over a wide range) rather than the near-constant
 * outputs of normal / sqrt(fan_in) everywhere, where LayerNorm scales of
 * ~0.1 and folded BatchNorms shrink the signal layer after layer until the
 * biases decide the output.  It stands in for trained weights in tests and
 * demos; it is not a training initialization.
 *
 * Each float weight is drawn by its role, found from the node that reads it
 * (the first live consumer) and the input slot, with z ~ N(0, 1):
 *   LayerNormalization / BatchNormalization scale, a Mul operand (the gamma
 *     of a decomposed LayerNorm)                          1 + 0.1 z
 *   LayerNormalization / BatchNormalization bias, Conv bias, Gemm C, an Add
 *     operand (a Linear's bias, a decomposed LayerNorm's beta)    0.1 z
 *   BatchNormalization mean 0.1 z, variance 1 + 0.1 |z|
 *   Conv weight [M, C/g, kh, kw], fan = C/g kh kw:
 *     a classifier (its output reaches a graph output through Resize,
 *       Sigmoid and Relu only): z gain / sqrt(fan), gain 2 (4 when M = 1:
 *       a sigmoid's input spans about +-4), each output row made zero-mean;
 *     otherwise z sqrt(2 / fan) (He), rows made zero-mean when C/g > 3
 *       (not the stem nor depthwise convolutions): a ReLU feature map's
 *       common positive offset then cancels instead of piling up into one
 *       dominant class;
 *   MatMul constant operand [K, N], Gemm B: z / sqrt(K), times 0.2 for a
 *     residual branch's last Linear (its output, after the bias, is added
 *     to a computed tensor: attention's projection, the MLP's second
 *     layer): deep random attention otherwise averages the tokens into one
 *     vector (rank collapse) and the head sees channel offsets, not the
 *     picture;
 *   anything else: z / sqrt(fan_in) (fan_in = numel / dims[0]).
 * Every tensor draws from its own generator, seeded by seed and its name,
 * so the values do not depend on the order of the initializers (the
 * opset-13 form of a model gets the weights of the opset-17 form).
 * tests/tools/mtmi_testutil.py (fill_external_weights) implements the same
 * rule with NumPy's generator for the graph-only exports. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"

enum { R_OTHER, R_SCALE, R_SHIFT, R_BN_MEAN, R_BN_VAR, R_CONV, R_CLASSIFIER, R_MATMUL, R_RESIDUAL, R_GEMM_B };

/* Does value v reach a graph output through Resize / Sigmoid / Relu only? */
static int reaches_output(const mt_graph *g, int v, int depth) {
    if (g->values[v].is_output) return 1;
    if (depth > 8) return 0;
    int cons[16];
    int n = mt_graph_consumers(g, v, cons, 16);
    for (int i = 0; i < n && i < 16; i++) {
        const mt_node *c = &g->nodes[cons[i]];
        if (c->nout < 1 || c->in[0] != v) continue;
        if ((!strcmp(c->op, "Resize") || !strcmp(c->op, "Sigmoid") || !strcmp(c->op, "Relu")) &&
            reaches_output(g, c->out[0], depth + 1))
            return 1;
    }
    return 0;
}

static int is_const(const mt_graph *g, int v) { return v >= 0 && g->values[v].data != NULL; }

/* The one consumer of value v, or NULL. */
static const mt_node *only_consumer(const mt_graph *g, int v) {
    int cons[2];
    return mt_graph_consumers(g, v, cons, 2) == 1 ? &g->nodes[cons[0]] : NULL;
}

/* Is y (a MatMul's output) plus an optional constant bias added to another
 * computed tensor? */
static int is_residual_branch(const mt_graph *g, int y) {
    const mt_node *c = only_consumer(g, y);
    if (c && !strcmp(c->op, "Add") && c->nin == 2 && (is_const(g, c->in[0]) || is_const(g, c->in[1])))
        c = only_consumer(g, c->out[0]);
    return c && !strcmp(c->op, "Add") && c->nin == 2 && !is_const(g, c->in[0]) && !is_const(g, c->in[1]);
}

static int role_of(const mt_graph *g, int v, int *transb) {
    int cons[4];
    if (mt_graph_consumers(g, v, cons, 4) < 1) return R_OTHER;
    const mt_node *n = &g->nodes[cons[0]];
    int slot = -1;
    for (int i = 0; i < n->nin; i++)
        if (n->in[i] == v) {
            slot = i;
            break;
        }
    const char *op = n->op;
    if (!strcmp(op, "LayerNormalization")) return slot == 1 ? R_SCALE : slot == 2 ? R_SHIFT : R_OTHER;
    if (!strcmp(op, "BatchNormalization"))
        return slot == 1 ? R_SCALE : slot == 2 ? R_SHIFT : slot == 3 ? R_BN_MEAN : slot == 4 ? R_BN_VAR : R_OTHER;
    if (!strcmp(op, "Conv")) {
        if (slot == 2) return R_SHIFT;
        if (slot != 1 || g->values[v].rank < 3) return R_OTHER;
        return n->nout >= 1 && reaches_output(g, n->out[0], 0) ? R_CLASSIFIER : R_CONV;
    }
    if (!strcmp(op, "MatMul")) {
        if (slot != 1 || g->values[v].rank != 2) return R_OTHER;
        return n->nout >= 1 && is_residual_branch(g, n->out[0]) ? R_RESIDUAL : R_MATMUL;
    }
    if (!strcmp(op, "Gemm")) {
        *transb = (int)mt_attr_int(n, "transB", 0);
        return slot == 1 && g->values[v].rank == 2 ? R_GEMM_B : slot == 2 ? R_SHIFT : R_OTHER;
    }
    if (!strcmp(op, "Mul")) return R_SCALE;
    if (!strcmp(op, "Add")) return R_SHIFT;
    return R_OTHER;
}

static uint64_t name_hash(const char *s) {
    uint64_t h = UINT64_C(1469598103934665603);
    for (; s && *s; s++) h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return h;
}

/* Subtracts each row's mean (rows of `per` elements). */
static void zero_mean_rows(float *w, int64_t rows, int64_t per) {
    for (int64_t r = 0; r < rows; r++) {
        double s = 0;
        for (int64_t i = 0; i < per; i++) s += w[r * per + i];
        float m = (float)(s / (double)per);
        for (int64_t i = 0; i < per; i++) w[r * per + i] -= m;
    }
}

mtmi_status mt_graph_spread_weights(mt_graph *g, uint64_t seed) {
    if (!g) return mt_fail(MTMI_ERR_ARG, "mt_graph_spread_weights: NULL graph");
    for (int v = 0; v < g->nvalues; v++) {
        mt_value *val = &g->values[v];
        if (!val->data || !val->is_weight || val->dtype != MTMI_FLOAT || val->rank < 1) continue;
        int64_t n = mt_value_numel(val);
        if (n <= 0) continue;
        int transb = 0, role = role_of(g, v, &transb);
        float *w = val->data;
        mt_rng r;
        mt_rng_seed(&r, seed * UINT64_C(0x9E3779B97F4A7C15) ^ name_hash(val->name));
        int64_t rows = val->dims[0] > 0 ? val->dims[0] : 1, per = n / rows;
        switch (role) {
        case R_SCALE:
            for (int64_t i = 0; i < n; i++) w[i] = 1.0f + 0.1f * mt_rng_normal(&r);
            break;
        case R_SHIFT:
        case R_BN_MEAN:
            for (int64_t i = 0; i < n; i++) w[i] = 0.1f * mt_rng_normal(&r);
            break;
        case R_BN_VAR:
            for (int64_t i = 0; i < n; i++) w[i] = 1.0f + 0.1f * fabsf(mt_rng_normal(&r));
            break;
        case R_CONV:
        case R_CLASSIFIER: {
            float s = role == R_CONV ? sqrtf(2.0f / (float)per) : (rows == 1 ? 4.0f : 2.0f) / sqrtf((float)per);
            for (int64_t i = 0; i < n; i++) w[i] = s * mt_rng_normal(&r);
            int64_t cin_g = val->dims[1];
            if (role == R_CLASSIFIER || cin_g > 3) zero_mean_rows(w, rows, per);
            break;
        }
        case R_MATMUL:
        case R_RESIDUAL:
        case R_GEMM_B: {
            int64_t k = role == R_GEMM_B && transb ? val->dims[1] : val->dims[0];
            float s = (role == R_RESIDUAL ? 0.2f : 1.0f) / sqrtf((float)(k > 0 ? k : 1));
            for (int64_t i = 0; i < n; i++) w[i] = s * mt_rng_normal(&r);
            break;
        }
        default: {
            int64_t fan = val->rank > 1 ? per : n;
            float s = 1.0f / sqrtf((float)(fan > 0 ? fan : 1));
            for (int64_t i = 0; i < n; i++) w[i] = s * mt_rng_normal(&r);
            break;
        }
        }
    }
    return MTMI_OK;
}
