/* Shape inference for the fused operator family (mtmi.Gelu, mtmi.Attention,
 * mtmi.Preprocess, and the result forms mtmi.ClassMap and mtmi.SymQuant;
 * FusedConv and Linear live with the nn family in
 * shapes_nn.c). */
#include "graph/ops.h"

#include <string.h>

static mtmi_status infer_gelu(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    if (mt_in(g, n, 0)->dtype != MTMI_FLOAT)
        return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "input must be float, is %s", mt_dtype_name(mt_in(g, n, 0)->dtype));
    return mt_infer_same(g, n);
}

/* Q [B,H,N,d], K [B,H,M,d], V [B,H,M,dv] -> [B,H,N,dv]. */
static mtmi_status infer_attention(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 3, 3);
    if (s) return s;
    const mt_value *q = mt_in(g, n, 0), *k = mt_in(g, n, 1), *v = mt_in(g, n, 2);
    char a[128], b[128], c[128];
    if (q->dtype != MTMI_FLOAT || k->dtype != MTMI_FLOAT || v->dtype != MTMI_FLOAT)
        return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "Q, K and V must be float");
    if (q->rank != 4 || k->rank != 4 || v->rank != 4 || q->dims[0] != k->dims[0] || q->dims[0] != v->dims[0] ||
        q->dims[1] != k->dims[1] || q->dims[1] != v->dims[1] || q->dims[3] != k->dims[3] || k->dims[2] != v->dims[2])
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "Q %s, K %s, V %s do not fit [B,H,N,d], [B,H,M,d], [B,H,M,dv]",
                            mt_shape_str(q->rank, q->dims, a, sizeof a), mt_shape_str(k->rank, k->dims, b, sizeof b),
                            mt_shape_str(v->rank, v->dims, c, sizeof c));
    int64_t d[4] = {q->dims[0], q->dims[1], q->dims[2], v->dims[3]};
    mt_value_set_shape(mt_out(g, n, 0), MTMI_FLOAT, 4, d);
    return MTMI_OK;
}

/* mtmi.Preprocess: uint8 images [N,H,W,3] (RGB, interleaved) -> float
 * [N,3,H,W], y = (x - mean[c]) * (1 / std[c]) with mean and std on 0..255
 * pixels (attributes "mean" and "std", 3 floats each).  Prepended to a
 * model by mt_graph_image_input so that the encoder's device normalizes. */
static mtmi_status infer_preprocess(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    char a[128];
    if (x->dtype != MTMI_UINT8 || x->rank != 4 || x->dims[3] != 3)
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input must be uint8 [N,H,W,3], is %s %s", mt_dtype_name(x->dtype),
                            mt_shape_str(x->rank, x->dims, a, sizeof a));
    const mt_attr *m = mt_node_attr(n, "mean"), *d = mt_node_attr(n, "std");
    if (!m || !d || m->type != MT_ATTR_FLOATS || d->type != MT_ATTR_FLOATS || m->n != 3 || d->n != 3)
        return mt_node_fail(g, n, MTMI_ERR_ARG, "needs float attributes 'mean' and 'std' of 3 values each");
    for (int k = 0; k < 3; k++)
        if (!(d->floats[k] > 0)) return mt_node_fail(g, n, MTMI_ERR_ARG, "std[%d] = %g must be positive", k, d->floats[k]);
    int64_t dims[4] = {x->dims[0], 3, x->dims[1], x->dims[2]};
    mt_value_set_shape(mt_out(g, n, 0), MTMI_FLOAT, 4, dims);
    return MTMI_OK;
}

/* mtmi.ClassMap: logits [N,C,d...] (float) -> uint8 [N,d...], the index
 * of the largest of the C values at each position (the first of equal
 * maxima; NaN never wins).  What an application asks for instead of the
 * logits when it only needs the class map (mt_graph_output_forms). */
static mtmi_status infer_classmap(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    char a[128];
    if (x->dtype != MTMI_FLOAT || x->rank < 2 || x->dims[1] < 1 || x->dims[1] > 256)
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input must be float [N,C,...] with 1 <= C <= 256, is %s %s",
                            mt_dtype_name(x->dtype), mt_shape_str(x->rank, x->dims, a, sizeof a));
    int64_t d[MT_MAX_RANK];
    d[0] = x->dims[0];
    for (int k = 2; k < x->rank; k++) d[k - 1] = x->dims[k];
    mt_value_set_shape(mt_out(g, n, 0), MTMI_UINT8, x->rank - 1, d);
    return MTMI_OK;
}

/* mtmi.SymQuant: float [N,...] -> int8 [N,...] and float scales [N]: per
 * batch element, m = max |x| (NaN ignored), scale = m / 127 (1 when m is
 * 0 or infinite), q = round-half-even(clamp(x / scale, -127, 127))
 * computed in double, NaN -> 0 (mt_symquant_value).  The int8 logits of
 * `mtmi run`. */
static mtmi_status infer_symquant(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    if (x->dtype != MTMI_FLOAT || x->rank < 1)
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input must be float [N,...], is %s rank %d", mt_dtype_name(x->dtype), x->rank);
    if (n->nout != 2) return mt_node_fail(g, n, MTMI_ERR_ARG, "has %d outputs; SymQuant gives the int8 values and the scales", n->nout);
    int64_t nb = x->dims[0];
    mt_value_set_shape(mt_out(g, n, 0), MTMI_INT8, x->rank, x->dims);
    mt_value_set_shape(mt_out(g, n, 1), MTMI_FLOAT, 1, &nb);
    return MTMI_OK;
}

/* mtmi.HalfNHWC: float [N,C,H,W] -> float16 [N,H,W,C] (round to nearest
 * even), and mtmi.FromHalfNHWC back (exact).  A pipeline's GPU encoder
 * hands its features to FP16 GPU heads in the layout and precision both
 * plans keep them in (src/pipeline/handover.c): on the GPU the pair is
 * a copy and a view, where the float cut tensor took two conversions. */
static mtmi_status infer_half_nhwc(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    if (x->dtype != MTMI_FLOAT || x->rank != 4) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "expects a float rank-4 input");
    const int64_t d[4] = {x->dims[0], x->dims[2], x->dims[3], x->dims[1]};
    mt_value_set_shape(mt_out(g, n, 0), MTMI_FLOAT16, 4, d);
    return MTMI_OK;
}

static mtmi_status infer_from_half_nhwc(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    if (x->dtype != MTMI_FLOAT16 || x->rank != 4) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "expects a float16 rank-4 input");
    const int64_t d[4] = {x->dims[0], x->dims[3], x->dims[1], x->dims[2]};
    mt_value_set_shape(mt_out(g, n, 0), MTMI_FLOAT, 4, d);
    return MTMI_OK;
}

const mt_op_schema mt_schemas_fused[] = {
    {"HalfNHWC", "mtmi", infer_half_nhwc, 0},
    {"FromHalfNHWC", "mtmi", infer_from_half_nhwc, 0},
    {"Gelu", "mtmi", infer_gelu, 0},
    {"Attention", "mtmi", infer_attention, 0},
    {"Preprocess", "mtmi", infer_preprocess, 0},
    {"ClassMap", "mtmi", infer_classmap, 0},
    {"SymQuant", "mtmi", infer_symquant, 0},
    {NULL, NULL, NULL, 0},
};
