/* Explicit quantization out: the optimized graph that calibration runs,
 * written as standard ONNX with QuantizeLinear / DequantizeLinear pairs
 * where our INT8 rewrite quantizes, so that ONNX Runtime, TensorRT 10 and
 * NVIDIA's tools run the same quantized model as our INT8 plans.
 *
 * The quantization decisions are not made here: the rewrite
 * (mt_quant_rewrite) runs on a copy of the graph, and every node it turns
 * into mtmi.QConv / mtmi.QLinear is written in Q/DQ form from what the
 * rewrite computed (x_scale, y_scale, the int8 weights), so the file can
 * never disagree with our INT8 run about which tensors are quantized or
 * what the int8 weights are.  The export graph itself is the float graph
 * (fused ops kept; the ONNX writer lowers them to standard ops):
 *
 *   X -> QuantizeLinear(s_x, 0) -> DequantizeLinear(s_x, 0) -> Conv
 *   Wq int8 -> DequantizeLinear(s_w[M], zero point int8[M] 0, axis 0) -> Conv
 *   bias: float, (float)Bq[c] * Mult[c] (see bias_value)
 *   Y (y_scale > 0) -> QuantizeLinear(s_y) -> DequantizeLinear(s_y) -> every consumer
 *
 * For a Linear (X @ W, W [K, N]) the weight is stored [K, N] with axis 1. */
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx.h"

/* Per-channel QuantizeLinear / DequantizeLinear (the axis attribute). */
#define QDQ_MIN_OPSET 13

typedef struct qdq_ctx {
    mt_graph *g;      /* the graph being written (float ops) */
    int norig;        /* values of g before the export added any */
    int *dq_of;       /* per original value: the DequantizeLinear output of its pair, or -1 */
    float *scale_of;  /* the scale of that pair */
    int *requant;     /* per original value: 1 = every consumer reads the pair (a y_scale output) */
    mt_qdq_report *rep;
} qdq_ctx;

/* A new value named base (or base_<k> if taken). */
static int new_value(mt_graph *g, const char *base) {
    return mt_graph_find_value(g, base) < 0 ? mt_graph_add_value(g, base) : mt_graph_add_value_unique(g, base);
}

/* A constant (an initializer in the file) holding a copy of bytes. */
static int new_const(mt_graph *g, const char *base, int dtype, int rank, const int64_t *dims, const void *src,
                     size_t bytes) {
    void *data = malloc(bytes ? bytes : 1);
    if (!data) return -1;
    memcpy(data, src, bytes);
    int v = new_value(g, base);
    if (v < 0) {
        free(data);
        return -1;
    }
    mt_value_set_shape(&g->values[v], dtype, rank, dims);
    g->values[v].data = data;
    g->values[v].is_weight = 1;
    return v;
}

/* An activation value of dtype with the shape of value `like`. */
static int new_act(mt_graph *g, const char *base, int dtype, int like) {
    int v = new_value(g, base);
    if (v < 0) return -1;
    const mt_value *l = &g->values[like];
    mt_value_set_shape(&g->values[v], dtype, l->rank, l->dims);
    return v;
}

static int add_qdq_node(mt_graph *g, const char *op, const char *tensor, int x, int scale, int zp, int y, int axis) {
    char name[600];
    snprintf(name, sizeof name, "%.500s/%s", tensor, op);
    int in[3] = {x, scale, zp};
    int ni = mt_graph_add_node(g, op, name, in, 3, &y, 1);
    if (ni < 0) return -1;
    return axis >= 0 && mt_node_set_int(&g->nodes[ni], "axis", axis) ? -1 : 0;
}

/* *dq = the DequantizeLinear output of value v's QuantizeLinear ->
 * DequantizeLinear pair at scale s (symmetric, int8 zero point 0), made
 * once per tensor. */
static mtmi_status act_pair(qdq_ctx *q, int v, float s, int *dq) {
    mt_graph *g = q->g;
    if (q->dq_of[v] >= 0) {
        *dq = q->dq_of[v];
        /* Both scales are the cache entry of this tensor: always equal. */
        if (q->scale_of[v] != s)
            return mt_fail(MTMI_ERR_INTERNAL, "Q/DQ export: tensor '%s' quantized with two scales (%g, %g)", g->values[v].name,
                           q->scale_of[v], s);
        return MTMI_OK;
    }
    char base[600];
    const char *name = g->values[v].name;
    const int8_t zero = 0;
    snprintf(base, sizeof base, "%.500s_scale", name);
    int vs = new_const(g, base, MTMI_FLOAT, 0, NULL, &s, sizeof s);
    snprintf(base, sizeof base, "%.500s_zero_point", name);
    int vz = vs < 0 ? -1 : new_const(g, base, MTMI_INT8, 0, NULL, &zero, 1);
    snprintf(base, sizeof base, "%.500s_quantized", name);
    int vq = vz < 0 ? -1 : new_act(g, base, MTMI_INT8, v);
    snprintf(base, sizeof base, "%.500s_dequantized", name);
    int vd = vq < 0 ? -1 : new_act(g, base, MTMI_FLOAT, v);
    name = g->values[v].name; /* values may have moved; the name has not */
    if (vd < 0 || add_qdq_node(g, "QuantizeLinear", name, v, vs, vz, vq, -1) ||
        add_qdq_node(g, "DequantizeLinear", name, vq, vs, vz, vd, -1))
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    q->dq_of[v] = *dq = vd;
    q->scale_of[v] = s;
    q->rep->activation_pairs++;
    return MTMI_OK;
}

/* The bias as our int32 arithmetic applies it: acc = Bq + sum, y = acc *
 * Mult adds Bq[c] * Mult[c].  Written as float because TensorRT's Q/DQ
 * types are INT8/FP8/INT4/FP4 (no int32 DequantizeLinear); ONNX Runtime
 * takes float bias too.  It differs from the model's float bias by at most
 * half of s_x * s_w[c], and an importer recovers Bq exactly as
 * rne(b / (s_x * s_w)) while |Bq| < 2^22. */
static float bias_value(int32_t bq, float mult) { return (float)bq * mult; }

/* s_w[c] as the rewrite (quant.h) computes it, from the float weights:
 * max |w[c, k]| / 127 (1 if all zero).  Checked against the rewrite's
 * multiplier s_x * s_w[c], bit for bit. */
static mtmi_status weight_scales(const float *w, int linear, int64_t M, int64_t K, float sx, const float *mult,
                                 const char *node, float *sw) {
    for (int64_t c = 0; c < M; c++) {
        float mx = 0;
        for (int64_t k = 0; k < K; k++) {
            float a = fabsf(linear ? w[k * M + c] : w[c * K + k]);
            if (a > mx) mx = a;
        }
        sw[c] = mx > 0 ? mx / 127.0f : 1.0f;
        if (sx * sw[c] != mult[c])
            return mt_fail(MTMI_ERR_INTERNAL, "Q/DQ export: node '%s' channel %lld: weight scale disagrees with the INT8 rewrite",
                           node, (long long)c);
    }
    return MTMI_OK;
}

/* *vd = DequantizeLinear(wq, sw, 0) of float weight vw's shape: int8
 * values in vw's layout, per output channel (axis 0, or 1 for a Linear's
 * [K, N]). */
static mtmi_status weight_dq(mt_graph *g, int vw, const int8_t *wq, const float *sw, int64_t M, int linear, int *vd) {
    const int64_t n = mt_value_numel(&g->values[vw]);
    int8_t *zp = calloc((size_t)M, 1);
    char base[600];
    const mt_value *w = &g->values[vw];
    int rank = w->rank;
    int64_t dims[MT_MAX_RANK];
    memcpy(dims, w->dims, sizeof dims);
    snprintf(base, sizeof base, "%.500s_int8", w->name);
    int vq = zp ? new_const(g, base, MTMI_INT8, rank, dims, wq, (size_t)n) : -1;
    snprintf(base, sizeof base, "%.500s_scale", g->values[vw].name);
    int vs = vq < 0 ? -1 : new_const(g, base, MTMI_FLOAT, 1, &M, sw, sizeof(float) * (size_t)M);
    snprintf(base, sizeof base, "%.500s_zero_point", g->values[vw].name);
    int vz = vs < 0 ? -1 : new_const(g, base, MTMI_INT8, 1, &M, zp, (size_t)M);
    snprintf(base, sizeof base, "%.500s_dequantized", g->values[vw].name);
    *vd = vz < 0 ? -1 : new_act(g, base, MTMI_FLOAT, vw);
    free(zp);
    if (*vd < 0 || add_qdq_node(g, "DequantizeLinear", g->values[vw].name, vq, vs, vz, *vd, linear ? 1 : 0))
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    return MTMI_OK;
}

/* Replaces input 1 of node ni (float W) by DequantizeLinear(Wq, s_w, 0)
 * and input 2 (float B, if any) by the quantized bias.  qn is the
 * rewritten node of qg: inputs (X, Wq, Bq, Mult). */
static mtmi_status quantize_weights(qdq_ctx *q, int ni, const mt_graph *qg, const mt_node *qn, float sx) {
    mt_graph *g = q->g;
    int linear = !strcmp(qn->op, "QLinear");
    int vw = g->nodes[ni].in[1];
    const mt_value *mv = &qg->values[qn->in[3]], *bv = &qg->values[qn->in[2]], *wqv = &qg->values[qn->in[1]];
    int64_t M = mt_value_numel(mv), K = M ? mt_value_numel(&g->values[vw]) / M : 0;
    const char *node = g->values[g->nodes[ni].out[0]].name;
    if (!M || mt_value_numel(wqv) != M * K || wqv->dtype != MTMI_INT8 || bv->dtype != MTMI_INT32)
        return mt_fail(MTMI_ERR_INTERNAL, "Q/DQ export: node '%s': unexpected quantized weights", node);
    float *sw = malloc(sizeof(float) * (size_t)M), *bias = malloc(sizeof(float) * (size_t)M);
    int8_t *wq = malloc((size_t)(M * K));
    mtmi_status s = sw && bias && wq ? MTMI_OK : mt_fail(MTMI_ERR_NOMEM, "out of memory");
    if (!s) s = weight_scales(g->values[vw].data, linear, M, K, sx, mv->data, node, sw);
    int vd = -1, vb = -1, b = g->nodes[ni].nin > 2 ? g->nodes[ni].in[2] : -1;
    if (!s) {
        const int8_t *src = wqv->data;
        /* The rewrite stores a Linear's weights [N, K]; ONNX's MatMul reads [K, N]. */
        for (int64_t c = 0; c < M; c++)
            for (int64_t k = 0; k < K; k++) wq[linear ? k * M + c : c * K + k] = src[c * K + k];
        for (int64_t c = 0; c < M; c++) bias[c] = bias_value(((const int32_t *)bv->data)[c], ((const float *)mv->data)[c]);
        s = weight_dq(g, vw, wq, sw, M, linear, &vd);
    }
    if (!s && b >= 0) {
        char base[600];
        snprintf(base, sizeof base, "%.500s_quantized", g->values[b].name);
        if ((vb = new_const(g, base, MTMI_FLOAT, 1, &M, bias, sizeof(float) * (size_t)M)) < 0)
            s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    if (!s) {
        g->nodes[ni].in[1] = vd;
        if (vb >= 0) g->nodes[ni].in[2] = vb;
    }
    free(sw);
    free(bias);
    free(wq);
    return s;
}

/* One node the rewrite quantized (qn in qg), found in g by its output name. */
static mtmi_status export_node(qdq_ctx *q, const mt_graph *qg, const mt_node *qn) {
    mt_graph *g = q->g;
    const char *y = qg->values[qn->out[0]].name;
    int vy = mt_graph_find_value(g, y), ni = vy >= 0 ? g->values[vy].producer : -1;
    if (ni < 0 || vy >= q->norig || g->nodes[ni].nin < 2)
        return mt_fail(MTMI_ERR_INTERNAL, "Q/DQ export: the quantized node writing '%s' is not in the graph", y);
    float sx = mt_attr_float(qn, "x_scale", 0), sy = mt_attr_float(qn, "y_scale", 0);
    int dx, dy;
    mtmi_status s = quantize_weights(q, ni, qg, qn, sx);
    if (!s) s = act_pair(q, g->nodes[ni].in[0], sx, &dx);
    if (s) return s;
    g->nodes[ni].in[0] = dx;
    if (sy > 0) {
        /* The contract requantizes this output for every reader. */
        if ((s = act_pair(q, vy, sy, &dy))) return s;
        q->requant[vy] = 1;
        q->rep->requantized++;
    }
    q->rep->quantized++;
    return MTMI_OK;
}

/* Every original node that reads a requantized output reads its
 * DequantizeLinear instead (the QuantizeLinear nodes, added after the
 * original nodes, keep reading the float value). */
static void rewire_requantized(qdq_ctx *q, int nnodes_orig) {
    mt_graph *g = q->g;
    for (int i = 0; i < nnodes_orig; i++) {
        mt_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int k = 0; k < n->nin; k++) {
            int v = n->in[k];
            if (v >= 0 && v < q->norig && q->requant[v]) n->in[k] = q->dq_of[v];
        }
    }
}

/* Ops whose meaning changed below opset 13 (attributes that became inputs,
 * Softmax's axis): with one of them the model's opset cannot simply be
 * raised to the 13 that per-channel Q/DQ needs. */
static int changed_by_13(const char *op) {
    static const char *ops[] = {"Split", "ReduceSum", "Squeeze", "Unsqueeze", "Pad", "Resize", "Upsample",
                                "Clip", "Slice", "TopK", "Softmax", "LogSoftmax", "Hardmax"};
    for (size_t i = 0; i < MT_ARRAY_LEN(ops); i++)
        if (!strcmp(op, ops[i])) return 1;
    return 0;
}

static int default_domain(const char *d) { return !d || !d[0] || !strcmp(d, "ai.onnx"); }

static mtmi_status raise_opset(mt_graph *g) {
    if (g->opset >= QDQ_MIN_OPSET || g->opset <= 0) return MTMI_OK; /* <= 0: the writer's default, 17 */
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        if (!n->dead && default_domain(n->domain) && changed_by_13(n->op))
            return mt_fail(MTMI_ERR_UNSUPPORTED,
                           "Q/DQ export: the model is opset %lld, per-channel QuantizeLinear needs 13, and node '%s' (%s) means "
                           "something else there; export the model at opset 13 or newer",
                           (long long)g->opset, n->name ? n->name : "", n->op);
    }
    g->opset = QDQ_MIN_OPSET;
    return MTMI_OK;
}

/* The ONNX writer lowers these mtmi ops to standard ops; any other would
 * leak a custom domain into a file meant for other runtimes. */
static mtmi_status check_standard(const mt_graph *g) {
    static const char *lowered[] = {"FusedConv", "Linear", "Gelu", "Attention"};
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        if (n->dead || !n->domain || strcmp(n->domain, "mtmi")) continue;
        size_t k = 0;
        while (k < MT_ARRAY_LEN(lowered) && strcmp(n->op, lowered[k])) k++;
        if (k == MT_ARRAY_LEN(lowered))
            return mt_fail(MTMI_ERR_UNSUPPORTED, "Q/DQ export: node '%s' (mtmi.%s) has no standard ONNX form", n->name ? n->name : "",
                           n->op);
    }
    return MTMI_OK;
}

static mtmi_status build(qdq_ctx *q, const mt_graph *qg) {
    int nnodes_orig = q->g->nnodes;
    mtmi_status s = MTMI_OK;
    for (int i = 0; i < qg->nnodes && !s; i++) {
        const mt_node *qn = &qg->nodes[i];
        if (qn->dead || !qn->domain || strcmp(qn->domain, "mtmi") || (strcmp(qn->op, "QConv") && strcmp(qn->op, "QLinear")))
            continue;
        s = export_node(q, qg, qn);
    }
    if (s) return s;
    rewire_requantized(q, nnodes_orig);
    if ((s = raise_opset(q->g)) || (s = check_standard(q->g))) return s;
    /* As the writer decides it: 17 by default, and 17 for LayerNormalization
     * (opset 13 and up is raised to it, mt_onnx_save). */
    int64_t op = q->g->opset > 0 ? q->g->opset : 17;
    for (int i = 0; op < 17 && i < q->g->nnodes; i++)
        if (!q->g->nodes[i].dead && default_domain(q->g->nodes[i].domain) && !strcmp(q->g->nodes[i].op, "LayerNormalization"))
            op = 17;
    q->rep->opset = op;
    return mt_graph_compact(q->g); /* topological order for the file */
}

mtmi_status mt_qdq_graph(const mt_graph *g, const mt_calib_cache *c, const unsigned char *sel, mt_graph **out,
                         mt_qdq_report *rep) {
    *out = NULL;
    memset(rep, 0, sizeof *rep);
    mt_quant_report qr;
    mt_graph *qg = mt_graph_clone(g), *eg = mt_graph_clone(g);
    qdq_ctx q = {.g = eg, .rep = rep};
    mtmi_status s = qg && eg ? MTMI_OK : mt_fail(MTMI_ERR_NOMEM, "out of memory");
    if (!s) s = mt_quant_rewrite(qg, c, sel, &qr);
    if (!s && qr.quantized == 0)
        s = mt_fail(MTMI_ERR_ARG, "Q/DQ export: no convolution of the subgraph has a scale for its input (first missing: '%s')",
                    qr.first_skipped);
    if (!s) {
        q.norig = eg->nvalues;
        q.dq_of = malloc(sizeof(int) * (size_t)(q.norig + 1));
        q.scale_of = calloc((size_t)q.norig + 1, sizeof(float));
        q.requant = calloc((size_t)q.norig + 1, sizeof(int));
        if (!q.dq_of || !q.scale_of || !q.requant) s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
        for (int v = 0; !s && v < q.norig; v++) q.dq_of[v] = -1;
    }
    if (!s) s = build(&q, qg);
    free(q.dq_of);
    free(q.scale_of);
    free(q.requant);
    mt_graph_free(qg);
    if (s) {
        mt_graph_free(eg);
        return s;
    }
    rep->skipped = qr.skipped;
    *out = eg;
    return MTMI_OK;
}

mtmi_status mt_qdq_export(const mt_graph *g, const mt_calib_cache *c, const unsigned char *sel, const char *path,
                          mt_qdq_report *rep) {
    mt_graph *eg = NULL;
    mtmi_status s = mt_qdq_graph(g, c, sel, &eg, rep);
    if (s) return s;
    /* Inline weights (the writer moves them out only past protobuf's 2 GiB);
     * fused ops written back as standard ONNX. */
    mt_onnx_save_opts so = {.external_threshold = 0, .keep_fused = 0};
    s = mt_onnx_save(eg, path, &so);
    mt_graph_free(eg);
    return s;
}
