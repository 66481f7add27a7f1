/* Q/DQ import: a model quantized elsewhere (QuantizeLinear /
 * DequantizeLinear nodes) as a float graph plus activation scales (quant.h,
 * "Q/DQ import").
 *
 * The INT8 path of mtmi takes per-tensor activation scales from a cache;
 * the import hands it the model's, keeps the model's weight scales for the
 * rewrite (so its int8 weights and int32 biases are the model's own, which
 * tests/quant/qdq_weights_tool checks), and rewires the graph so that
 * mtmi's fused layers round where the model rounds. */
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/ops.h"

/* The advice every refusal of an asymmetric or non-int8 model ends with. */
#define QDQ_HOW_TO                                                                                                    \
    "mtmi takes symmetric int8 quantization only; quantize with symmetric int8 activations and weights (ONNX "    \
    "Runtime: quantize_static(..., activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, "                 \
    "extra_options={'ActivationSymmetric': True, 'WeightSymmetric': True}))"

typedef struct qdq_ctx {
    mt_graph *g;
    mt_qdq_info *info;
    int nv0;                 /* values before the import (the arrays' size) */
    int *cons_at, *cons;     /* readers of value v: cons[cons_at[v] .. cons_at[v+1]) */
    unsigned char *folded;   /* per value: a constant made from a DequantizeLinear */
    unsigned char *dq_input; /* per value: read by a removed Q / DQ node */
} qdq_ctx;

static int onnx_domain(const mt_node *n) {
    /* com.microsoft's contrib forms have the same int8 semantics */
    return !n->domain || !n->domain[0] || !strcmp(n->domain, "ai.onnx") || !strcmp(n->domain, "com.microsoft");
}
static int is_q(const mt_node *n) { return onnx_domain(n) && !strcmp(n->op, "QuantizeLinear"); }
static int is_dq(const mt_node *n) { return onnx_domain(n) && !strcmp(n->op, "DequantizeLinear"); }

static int has_qdq(const mt_graph *g) {
    for (int i = 0; i < g->nnodes; i++)
        if (!g->nodes[i].dead && (is_q(&g->nodes[i]) || is_dq(&g->nodes[i]))) return 1;
    return 0;
}

/* ------------------------------------------------------------ readers index */
/* Node readers per value, built once: rewiring only ever moves the readers
 * of a removed DequantizeLinear's output, which are not looked up again. */
static mtmi_status index_readers(qdq_ctx *c) {
    const mt_graph *g = c->g;
    c->cons_at = calloc((size_t)g->nvalues + 2, sizeof(int));
    if (!c->cons_at) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->nnodes; i++)
        for (int k = 0; k < g->nodes[i].nin; k++)
            if (g->nodes[i].in[k] >= 0) c->cons_at[g->nodes[i].in[k] + 1]++;
    for (int v = 0; v < g->nvalues; v++) c->cons_at[v + 1] += c->cons_at[v];
    c->cons = malloc(sizeof(int) * ((size_t)c->cons_at[g->nvalues] + 1));
    int *fill = malloc(sizeof(int) * ((size_t)g->nvalues + 1));
    if (!c->cons || !fill) {
        free(fill);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    memcpy(fill, c->cons_at, sizeof(int) * (size_t)g->nvalues);
    for (int i = 0; i < g->nnodes; i++)
        for (int k = 0; k < g->nodes[i].nin; k++)
            if (g->nodes[i].in[k] >= 0) c->cons[fill[g->nodes[i].in[k]]++] = i;
    free(fill);
    return MTMI_OK;
}

/* ------------------------------------------------------------ operands */
/* The scale input: a float32 constant whose every value is positive and
 * finite.  *count = its number of values. */
static mtmi_status read_scale(qdq_ctx *c, const mt_node *n, const float **s, int64_t *count) {
    mt_graph *g = c->g;
    const mt_value *v = mt_in(g, n, 1);
    if (!v) return mt_node_fail(g, n, MTMI_ERR_PARSE, "has no scale input");
    if (!v->data) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "scale '%s' must be a constant", v->name);
    if (v->dtype != MTMI_FLOAT)
        return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "scale '%s' is %s; float32 scales only", v->name, mt_dtype_name(v->dtype));
    *s = v->data;
    *count = mt_value_numel(v);
    if (*count < 1) return mt_node_fail(g, n, MTMI_ERR_PARSE, "scale '%s' is empty", v->name);
    for (int64_t i = 0; i < *count; i++)
        if (!((*s)[i] > 0) || !isfinite((*s)[i]))
            return mt_node_fail(g, n, MTMI_ERR_PARSE, "scale %g (value %lld of '%s') is not a positive finite number", (*s)[i],
                                (long long)i, v->name);
    return MTMI_OK;
}

/* The element type a Q/DQ node quantizes to: its zero point's type, else
 * (QuantizeLinear) output_dtype, else uint8 as ONNX defines it; for a
 * DequantizeLinear without zero point, its input's type (0 = unknown). */
static int quant_type(qdq_ctx *c, const mt_node *n) {
    const mt_value *zp = mt_in(c->g, n, 2);
    if (zp) return zp->dtype;
    if (is_q(n)) {
        int64_t t = mt_attr_int(n, "output_dtype", 0);
        return t ? (int)t : MTMI_UINT8;
    }
    const mt_value *x = mt_in(c->g, n, 0);
    return x ? x->dtype : 0;
}

/* Zero point absent or all zeros, int8 (int32 too where allow_int32: a
 * bias), no blocked quantization. */
static mtmi_status check_symmetric(qdq_ctx *c, const mt_node *n, int allow_int32) {
    mt_graph *g = c->g;
    int t = quant_type(c, n);
    if (t == MTMI_UINT8) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "uint8 quantization; %s", QDQ_HOW_TO);
    if (t && t != MTMI_INT8 && !(allow_int32 && t == MTMI_INT32))
        return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "%s quantization is not supported; %s", mt_dtype_name(t), QDQ_HOW_TO);
    int64_t block = mt_attr_int(n, "block_size", 0);
    if (block) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "blocked quantization (block_size %lld) is not supported", (long long)block);
    const mt_value *zp = mt_in(g, n, 2);
    if (!zp) return MTMI_OK;
    if (!zp->data) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "zero point '%s' must be a constant", zp->name);
    for (int64_t i = 0, cnt = mt_value_numel(zp); i < cnt; i++) {
        int64_t z = zp->dtype == MTMI_INT8 ? ((const int8_t *)zp->data)[i] : zp->dtype == MTMI_INT32 ? ((const int32_t *)zp->data)[i] : 0;
        if (z) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "zero point %lld (value %lld of '%s'); %s", (long long)z, (long long)i, zp->name, QDQ_HOW_TO);
    }
    return MTMI_OK;
}

/* The axis a scale of count values runs along in x (rank known): -1 for
 * one scale (per tensor, whatever the attribute says, as ONNX Runtime
 * reads a one-element scale), else the normalized "axis" (default 1) whose
 * size must be count. */
static mtmi_status scale_axis(qdq_ctx *c, const mt_node *n, const mt_value *x, int64_t count, int *axis) {
    *axis = -1;
    if (count == 1) return MTMI_OK;
    int64_t a = mt_attr_int(n, "axis", 1);
    int ax = mt_norm_axis(a, x->rank);
    if (ax < 0 || x->dims[ax] != count)
        return mt_node_fail(c->g, n, MTMI_ERR_UNSUPPORTED, "%lld scales do not match axis %lld of '%s' (%d dimensions)",
                            (long long)count, (long long)a, x->name, x->rank);
    *axis = ax;
    return MTMI_OK;
}

/* Per-axis scales of a weight must run along the output channels of the
 * layer that reads it, or the rewrite's per-output-channel int8 values
 * would not be the model's. */
static mtmi_status check_weight_axis(qdq_ctx *c, const mt_node *dq, int axis, int rank) {
    mt_graph *g = c->g;
    int v = dq->out[0];
    for (int k = c->cons_at[v]; axis >= 0 && k < c->cons_at[v + 1]; k++) {
        const mt_node *r = &g->nodes[c->cons[k]];
        if (!onnx_domain(r) || r->nin < 2 || r->in[1] != v) continue;
        int want = -1;
        if (!strcmp(r->op, "Conv")) want = 0;
        else if (!strcmp(r->op, "MatMul")) want = rank - 1;
        else if (!strcmp(r->op, "Gemm")) want = mt_attr_int(r, "transB", 0) ? 0 : 1;
        if (want >= 0 && axis != want) {
            char d[300];
            return mt_node_fail(g, dq, MTMI_ERR_UNSUPPORTED,
                                "per-channel scales along axis %d; the weights of %s need them along its output channels (axis %d)",
                                axis, mt_node_desc(g, r, d, sizeof d), want);
        }
    }
    return MTMI_OK;
}

/* Scale of element e of a tensor of the given dims with scales along axis
 * (-1 = one scale). */
static float scale_at(const float *s, int axis, int rank, const int64_t *dims, int64_t e) {
    if (axis < 0) return s[0];
    int64_t inner = 1;
    for (int d = axis + 1; d < rank; d++) inner *= dims[d];
    return s[(e / inner) % dims[axis]];
}

/* Makes value v the float constant data (owned) of the given shape. */
static void set_const(qdq_ctx *c, int v, int rank, const int64_t *dims, float *data) {
    mt_value *o = &c->g->values[v];
    mt_value_free_data(o);
    mt_value_set_shape(o, MTMI_FLOAT, rank, dims);
    o->data = data;
    o->is_weight = 1;
    if (v < c->nv0) c->folded[v] = 1;
}

/* Turns node ni into Identity(in) (no attributes). */
static mtmi_status to_identity(mt_graph *g, int ni, int in) {
    mt_node *n = &g->nodes[ni];
    char *op = mt_strdup("Identity"), *dom = mt_strdup("");
    if (!op || !dom) {
        free(op);
        free(dom);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    free(n->op);
    free(n->domain);
    n->op = op;
    n->domain = dom;
    for (int i = 0; i < n->nattr; i++) mt_attr_free(&n->attrs[i]);
    n->nattr = 0;
    n->in[0] = in;
    n->nin = 1;
    return MTMI_OK;
}

/* The float constant data (owned) replacing DQ node ni's output: that
 * value itself, or, for a graph output (which a node must make), a new
 * constant behind an Identity. */
static mtmi_status replace_with_const(qdq_ctx *c, int ni, int rank, const int64_t *dims, float *data) {
    mt_graph *g = c->g;
    int out = g->nodes[ni].out[0];
    if (!g->values[out].is_output) {
        set_const(c, out, rank, dims, data);
        g->nodes[ni].dead = 1;
        return MTMI_OK;
    }
    char base[256];
    snprintf(base, sizeof base, "%.200s_dequantized", g->values[out].name);
    int v = mt_graph_add_value_unique(g, base);
    if (v < 0) {
        free(data);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    set_const(c, v, rank, dims, data);
    return to_identity(g, ni, v);
}

/* Marks the operands of a removed Q / DQ node (the int8 data, scales, zero
 * points) for drop_quantized_data. */
static void mark_operands(qdq_ctx *c, int ni) {
    const mt_node *n = &c->g->nodes[ni];
    for (int k = 0; k < n->nin; k++)
        if (n->in[k] >= 0 && n->in[k] < c->nv0 && c->g->values[n->in[k]].data) c->dq_input[n->in[k]] = 1;
}

/* ------------------------------------------------------------ weights */
/* Adds the model's record of weight `name` (scales copied; NULL = a float
 * weight), unless there is one. */
static mtmi_status add_weight(mt_qdq_info *q, const char *name, const float *scale, int64_t count) {
    if (mt_strset_get(&q->windex, name) >= 0) return MTMI_OK;
    if (mt_grow((void **)&q->w, &q->capw, q->nw, sizeof *q->w)) return MTMI_ERR_NOMEM;
    mt_qdq_weight *w = &q->w[q->nw];
    memset(w, 0, sizeof *w);
    w->name = mt_strdup(name);
    if (scale && (w->scale = malloc(sizeof(float) * (size_t)count))) memcpy(w->scale, scale, sizeof(float) * (size_t)count);
    w->count = scale ? count : 0;
    if (!w->name || (scale && !w->scale) || mt_strset_put(&q->windex, w->name, q->nw)) {
        free(w->name);
        free(w->scale);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    q->nw++;
    return MTMI_OK;
}

const mt_qdq_weight *mt_qdq_weight_find(const mt_qdq_info *q, const char *name) {
    int i = q ? mt_strset_get(&q->windex, name) : -1;
    return i < 0 ? NULL : &q->w[i];
}

/* DequantizeLinear of a constant (int8 weights, int32 biases): the float
 * constant q * s, one float32 multiply per value as ONNX defines it. */
static mtmi_status fold_weight(qdq_ctx *c, int ni) {
    mt_graph *g = c->g;
    const mt_node *n = &g->nodes[ni];
    mtmi_status s = check_symmetric(c, n, 1);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    if (x->dtype != MTMI_INT8 && x->dtype != MTMI_INT32)
        return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "dequantizes %s constant '%s'; %s", mt_dtype_name(x->dtype), x->name, QDQ_HOW_TO);
    const float *sc;
    int64_t cnt;
    int axis;
    if ((s = read_scale(c, n, &sc, &cnt)) || (s = scale_axis(c, n, x, cnt, &axis)) || (s = check_weight_axis(c, n, axis, x->rank)))
        return s;
    int64_t numel = mt_value_numel(x);
    float *y = malloc(sizeof(float) * (size_t)numel + 1);
    if (!y) return mt_fail(MTMI_ERR_NOMEM, "out of memory dequantizing '%s'", x->name);
    for (int64_t e = 0; e < numel; e++) {
        int32_t q = x->dtype == MTMI_INT8 ? ((const int8_t *)x->data)[e] : ((const int32_t *)x->data)[e];
        y[e] = (float)q * scale_at(sc, axis, x->rank, x->dims, e);
    }
    mark_operands(c, ni);
    c->info->weights++;
    /* int8 weights keep their scales for the rewrite (int32 biases are
     * derived from them there) */
    mtmi_status st = x->dtype == MTMI_INT8 ? add_weight(c->info, g->values[n->out[0]].name, sc, cnt) : MTMI_OK;
    if (st) {
        free(y);
        return st;
    }
    int64_t dims[MT_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    return replace_with_const(c, ni, x->rank, dims, y);
}

/* ------------------------------------------------------------ activations */
/* Records scale s for tensor a; the same tensor quantized twice must use
 * one scale (mtmi has one scale per tensor). */
static mtmi_status record_scale(qdq_ctx *c, int qi, int a, float s) {
    mt_graph *g = c->g;
    const char *name = g->values[a].name;
    float old = mt_calib_cache_get(&c->info->scales, name);
    if (old > 0 && old != s) {
        const mt_node *first = NULL;
        for (int i = 0; i < qi && !first; i++)
            if (is_q(&g->nodes[i]) && g->nodes[i].in[0] == a) first = &g->nodes[i];
        char d[300];
        return mt_node_fail(g, &g->nodes[qi], MTMI_ERR_UNSUPPORTED, "quantizes '%s' with scale %g, but %s quantizes it with %g: one scale per tensor",
                            name, s, first ? mt_node_desc(g, first, d, sizeof d) : "another QuantizeLinear", old);
    }
    return mt_calib_cache_set(&c->info->scales, name, s);
}

/* Validates the DequantizeLinear di reading QuantizeLinear qi's output:
 * symmetric int8 with the very same scales (cnt of them). */
static mtmi_status check_pair(qdq_ctx *c, int qi, int di, const float *qs, int64_t cnt) {
    mt_graph *g = c->g;
    const mt_node *d = &g->nodes[di];
    const float *ds;
    int64_t dcnt;
    mtmi_status s = read_scale(c, d, &ds, &dcnt);
    if (s || (s = check_symmetric(c, d, 0))) return s;
    if (dcnt != cnt) {
        char q[300];
        return mt_node_fail(g, d, MTMI_ERR_UNSUPPORTED, "has %lld scales, its %s %lld", (long long)dcnt,
                            mt_node_desc(g, &g->nodes[qi], q, sizeof q), (long long)cnt);
    }
    for (int64_t i = 0; i < cnt; i++)
        if (ds[i] != qs[i]) {
            char q[300];
            return mt_node_fail(g, d, MTMI_ERR_UNSUPPORTED, "scale %g differs from the scale %g of its %s", ds[i], qs[i],
                                mt_node_desc(g, &g->nodes[qi], q, sizeof q));
        }
    return MTMI_OK;
}

/* Q -> DQ on a constant: DQ's output is the fake-quantized constant
 * (quantize, then dequantize, as the model computes it). */
static mtmi_status fold_fake_quant(qdq_ctx *c, int di, int a, const float *sc, int axis) {
    const mt_value *av = &c->g->values[a];
    int64_t numel = mt_value_numel(av), dims[MT_MAX_RANK];
    float *y = malloc(sizeof(float) * (size_t)numel + 1);
    if (!y) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    for (int64_t e = 0; e < numel; e++) {
        float s = scale_at(sc, axis, av->rank, av->dims, e);
        y[e] = mt_dequantize(mt_quantize(((const float *)av->data)[e], s), s);
    }
    memcpy(dims, av->dims, sizeof dims);
    return replace_with_const(c, di, av->rank, dims, y);
}

/* The readers of DQ di's output read a instead; a graph output keeps its
 * name through an Identity. */
static mtmi_status bypass(qdq_ctx *c, int di, int a) {
    mt_graph *g = c->g;
    int v = g->nodes[di].out[0];
    if (g->values[v].is_output) return to_identity(g, di, a);
    for (int k = c->cons_at[v]; k < c->cons_at[v + 1]; k++) {
        mt_node *r = &g->nodes[c->cons[k]];
        for (int j = 0; j < r->nin; j++)
            if (r->in[j] == v) r->in[j] = a;
    }
    g->nodes[di].dead = 1;
    return MTMI_OK;
}

/* Whether Relu node r's output is quantized again with a scale other
 * than s (read without checks: the pair's own import validates it). */
static int requantized_otherwise(qdq_ctx *c, const mt_node *r, float s) {
    mt_graph *g = c->g;
    int v = r->nout > 0 ? r->out[0] : -1;
    for (int k = v < 0 ? 0 : c->cons_at[v]; v >= 0 && k < c->cons_at[v + 1]; k++) {
        const mt_node *q = &g->nodes[c->cons[k]];
        const mt_value *qs = is_q(q) && q->in[0] == v ? mt_in(g, q, 1) : NULL;
        if (qs && qs->data && qs->dtype == MTMI_FLOAT && mt_value_numel(qs) == 1 && *(const float *)qs->data != s) return 1;
    }
    return 0;
}

/* Whether the readers of DQ di (of tensor a, scale s) must keep reading a
 * value of their own (an Identity of a) rather than a itself.  The model
 * rounds a to its grid before they run; mtmi requantizes a layer's output
 * once, after the activation it fuses into the layer.  A Relu commutes
 * with the rounding (unless its output is rounded again to another grid),
 * and bias / BatchNorm readers must still fuse for the layer to be
 * quantized at all; any other reader of a layer's output (Sigmoid, GELU's
 * Div and Mul, the Reshape / Transpose MiT puts before its GELU) would be
 * fused into the layer and lose the rounding, so the Identity keeps it out
 * of the layer: the layer is requantized with s, the reader runs in float
 * on its output, as in the model. */
static int needs_barrier(qdq_ctx *c, int di, int a, float s) {
    mt_graph *g = c->g;
    int p = g->values[a].producer;
    if (p < 0 || !onnx_domain(&g->nodes[p])) return 0;
    const char *po = g->nodes[p].op;
    if (strcmp(po, "Conv") && strcmp(po, "MatMul") && strcmp(po, "Gemm") && strcmp(po, "Add")) return 0;
    int v = g->nodes[di].out[0];
    for (int k = c->cons_at[v]; k < c->cons_at[v + 1]; k++) {
        const mt_node *r = &g->nodes[c->cons[k]];
        if (!onnx_domain(r)) return 1;
        if (!strcmp(r->op, "Relu") ? requantized_otherwise(c, r, s) : strcmp(r->op, "Add") && strcmp(r->op, "BatchNormalization"))
            return 1;
    }
    return 0;
}

/* QuantizeLinear qi with its DequantizeLinear readers: every reader must be
 * one (int8 tensors between other operators are not supported), each with
 * the Q's scale; the pair goes and its tensor keeps the scale. */
static mtmi_status import_pair(qdq_ctx *c, int qi) {
    mt_graph *g = c->g;
    const mt_node *q = &g->nodes[qi];
    mtmi_status s = check_symmetric(c, q, 0);
    const float *qs;
    int64_t cnt;
    if (s || (s = read_scale(c, q, &qs, &cnt))) return s;
    const int a = q->in[0], v = q->out[0];
    const mt_value *av = &g->values[a];
    int axis = -1;
    if (av->data) { /* a constant may be quantized per channel */
        if ((s = scale_axis(c, q, av, cnt, &axis))) return s;
        if (av->dtype != MTMI_FLOAT)
            return mt_node_fail(g, q, MTMI_ERR_UNSUPPORTED, "quantizes %s constant '%s'; float only", mt_dtype_name(av->dtype), av->name);
    } else if (cnt != 1)
        return mt_node_fail(g, q, MTMI_ERR_UNSUPPORTED, "per-channel activation scales (%lld values) are not supported", (long long)cnt);
    if (g->values[v].is_output)
        return mt_node_fail(g, q, MTMI_ERR_UNSUPPORTED, "output '%s' is a model output: int8 model outputs are not supported", g->values[v].name);
    for (int k = c->cons_at[v]; k < c->cons_at[v + 1]; k++) {
        const int di = c->cons[k];
        const mt_node *d = &g->nodes[di];
        if (d->dead) continue;
        if (!is_dq(d) || d->in[0] != v) {
            char r[300];
            return mt_node_fail(g, q, MTMI_ERR_UNSUPPORTED,
                                "output '%s' is read by %s, not by a DequantizeLinear: mtmi imports QuantizeLinear -> DequantizeLinear pairs only",
                                g->values[v].name, mt_node_desc(g, d, r, sizeof r));
        }
        if ((s = check_pair(c, qi, di, qs, cnt))) return s;
        mark_operands(c, di);
        if (g->values[a].data) s = fold_fake_quant(c, di, a, qs, axis);
        else if (!(s = record_scale(c, qi, a, qs[0]))) {
            s = needs_barrier(c, di, a, qs[0]) ? to_identity(g, di, a) : bypass(c, di, a);
            c->info->pairs++;
        }
        if (s) return s;
    }
    mark_operands(c, qi);
    g->nodes[qi].dead = 1;
    return MTMI_OK;
}

/* ------------------------------------------------------------ after */
/* Relu(x) of a scaled x gets x's scale when the model gave it none:
 * quantize(relu(y), s) = relu(quantize(y, s)) for a symmetric grid, so a
 * Conv whose output the model quantized before its Relu is requantized
 * the same way once mtmi fuses the Relu into it. */
static mtmi_status scales_through_relu(qdq_ctx *c) {
    mt_graph *g = c->g;
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        if (n->dead || !onnx_domain(n) || strcmp(n->op, "Relu") || n->nin < 1 || n->in[0] < 0 || n->nout < 1 || n->out[0] < 0) continue;
        float s = mt_calib_cache_get(&c->info->scales, g->values[n->in[0]].name);
        if (s > 0 && !(mt_calib_cache_get(&c->info->scales, g->values[n->out[0]].name) > 0)) {
            mtmi_status st = mt_calib_cache_set(&c->info->scales, g->values[n->out[0]].name, s);
            if (st) return st;
        }
    }
    return MTMI_OK;
}

/* The float weights the model did not quantize: a convolution or matrix
 * product whose weight input is a float constant that no
 * DequantizeLinear made. */
static mtmi_status collect_float_weights(qdq_ctx *c) {
    mt_graph *g = c->g;
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        if (n->dead || !onnx_domain(n) || n->nin < 2 || n->in[1] < 0) continue;
        if (strcmp(n->op, "Conv") && strcmp(n->op, "MatMul") && strcmp(n->op, "Gemm")) continue;
        const mt_value *w = &g->values[n->in[1]];
        if (!w->data || w->dtype != MTMI_FLOAT || (n->in[1] < c->nv0 && c->folded[n->in[1]])) continue;
        mtmi_status s = add_weight(c->info, w->name, NULL, 0);
        if (s) return s;
    }
    c->info->scales.qdq = c->info;
    return MTMI_OK;
}

/* The constants only removed Q / DQ nodes read are not needed any more,
 * nor counted as the model's parameters. */
static void drop_quantized_data(qdq_ctx *c) {
    mt_graph *g = c->g;
    for (int v = 0; v < c->nv0; v++) {
        if (!c->dq_input[v] || g->values[v].is_output) continue;
        int used = 0;
        for (int k = c->cons_at[v]; k < c->cons_at[v + 1] && !used; k++) used = !g->nodes[c->cons[k]].dead;
        if (!used) {
            mt_value_free_data(&g->values[v]);
            g->values[v].is_weight = 0;
        }
    }
}

static mtmi_status import_nodes(qdq_ctx *c) {
    mt_graph *g = c->g;
    mtmi_status s = MTMI_OK;
    for (int i = 0; i < g->nnodes; i++) { /* operands every step below reads */
        const mt_node *n = &g->nodes[i];
        if (!n->dead && (is_q(n) || is_dq(n)) && (n->nin < 1 || n->in[0] < 0 || n->nout < 1 || n->out[0] < 0))
            return mt_node_fail(g, n, MTMI_ERR_PARSE, "needs an input and an output");
    }
    /* Topological order: a pair's QuantizeLinear comes before its
     * DequantizeLinears, which import_pair removes; a requantization
     * (Q -> DQ -> Q) then sees the first pair's tensor as its input. */
    for (int i = 0; !s && i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        if (n->dead) continue;
        if (is_q(n)) s = import_pair(c, i);
        else if (is_dq(n)) {
            const mt_value *x = mt_in(g, n, 0);
            if (x->data) s = fold_weight(c, i);
            else
                s = mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED,
                                 "input '%s' is neither a constant nor made by a QuantizeLinear: int8 tensors computed by other operators "
                                 "are not supported", x->name);
        }
    }
    return s;
}

mtmi_status mt_qdq_import(mt_graph *g, mt_qdq_info **out) {
    *out = NULL;
    if (!has_qdq(g)) return MTMI_OK;
    mt_qdq_info *q = mt_alloc(sizeof *q);
    qdq_ctx c = {.g = g, .info = q, .nv0 = g->nvalues};
    if (!q) return MTMI_ERR_NOMEM;
    c.folded = calloc((size_t)g->nvalues + 1, 1);
    c.dq_input = calloc((size_t)g->nvalues + 1, 1);
    mtmi_status s = c.folded && c.dq_input && (q->scales.header = mt_strdup("QDQ-model"))
                        ? MTMI_OK
                        : mt_fail(MTMI_ERR_NOMEM, "out of memory");
    if (!s) s = index_readers(&c);
    if (!s && g->path) q->scales.path = mt_strdup(g->path);
    if (!s) s = import_nodes(&c);
    if (!s) s = scales_through_relu(&c);
    if (!s) s = collect_float_weights(&c);
    if (!s) drop_quantized_data(&c);
    free(c.cons_at);
    free(c.cons);
    free(c.folded);
    free(c.dq_input);
    if (!s) s = mt_graph_compact(g);
    if (s) {
        mt_qdq_free(q);
        return s;
    }
    *out = q;
    return MTMI_OK;
}

void mt_qdq_free(mt_qdq_info *q) {
    if (!q) return;
    mt_calib_cache_free(&q->scales);
    mt_strset_free(&q->windex);
    for (int i = 0; i < q->nw; i++) {
        free(q->w[i].name);
        free(q->w[i].scale);
    }
    free(q->w);
    free(q);
}

mtmi_status mt_quant_qdq_plan_graph(mt_graph *g, const mt_calib_cache *c, mt_quant_report *rep) {
    mt_quant_report local;
    if (!rep) rep = &local;
    mtmi_status s = mt_quant_rewrite(g, c, NULL, rep);
    if (!s && rep->quantized == 0)
        s = mt_fail(MTMI_ERR_ARG, "%s: the model's Q/DQ nodes quantize no convolution or linear layer that mtmi runs in INT8",
                    c->path ? c->path : "model");
    return s;
}
