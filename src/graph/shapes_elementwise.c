/* Shape inference for the elementwise operator family: unary maps, numpy-
 * broadcast binary arithmetic and comparisons, variadic Max/Min, Where,
 * Clip and Cast.  Output shapes never depend on data here. */
#include "graph/ops.h"

#include <string.h>

/* Element types the CPU kernels compute arithmetic in; anything else is
 * rejected here so that the failure names the node at load time. */
static int is_arith_dtype(int t) {
    return t == MTMI_FLOAT || t == MTMI_DOUBLE || t == MTMI_INT32 || t == MTMI_INT64 || t == MTMI_INT8 ||
           t == MTMI_UINT8;
}
static int is_float_dtype(int t) { return t == MTMI_FLOAT || t == MTMI_DOUBLE; }

static mtmi_status need_dtype(mt_graph *g, mt_node *n, const mt_value *x, int float_only) {
    int ok = float_only ? is_float_dtype(x->dtype) : is_arith_dtype(x->dtype);
    if (!ok) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "element type %s of '%s' is not supported", mt_dtype_name(x->dtype), x->name);
    return MTMI_OK;
}

/* Unary maps defined on floating types only (transcendentals). */
static mtmi_status infer_unary_float(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (!s) s = need_dtype(g, n, mt_in(g, n, 0), 1);
    return s ? s : mt_infer_same(g, n);
}

/* Unary maps that also make sense on integers (Neg, Abs, Relu, Sign). */
static mtmi_status infer_unary_any(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (!s) s = need_dtype(g, n, mt_in(g, n, 0), 0);
    return s ? s : mt_infer_same(g, n);
}

static mtmi_status infer_identity(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    return s ? s : mt_infer_same(g, n);
}

/* Broadcasts inputs [first, n->nin) into out; every present input must share
 * the dtype of the first (ONNX's type constraint T). */
static mtmi_status broadcast_inputs(mt_graph *g, mt_node *n, int first, int same_dtype, int *rank, int64_t *dims) {
    const mt_value *a = mt_in(g, n, first);
    *rank = a->rank;
    memcpy(dims, a->dims, sizeof(int64_t) * a->rank);
    for (int i = first + 1; i < n->nin; i++) {
        const mt_value *b = mt_in(g, n, i);
        if (!b) continue;
        if (same_dtype && b->dtype != a->dtype)
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input %d is %s but input %d is %s", i, mt_dtype_name(b->dtype), first,
                                mt_dtype_name(a->dtype));
        int64_t tmp[MT_MAX_RANK];
        int r;
        mtmi_status s = mt_broadcast_shape(g, n, *rank, dims, b->rank, b->dims, &r, tmp);
        if (s) return s;
        *rank = r;
        memcpy(dims, tmp, sizeof(int64_t) * r);
    }
    return MTMI_OK;
}

/* Output 0 of dtype: the broadcast of all inputs. */
static mtmi_status broadcast_output(mt_graph *g, mt_node *n, int same_dtype, int dtype) {
    int r;
    int64_t d[MT_MAX_RANK];
    mtmi_status s = broadcast_inputs(g, n, 0, same_dtype, &r, d);
    if (s) return s;
    mt_value_set_shape(mt_out(g, n, 0), dtype, r, d);
    return MTMI_OK;
}

static mtmi_status infer_binary_arith(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 2, 2);
    if (!s) s = need_dtype(g, n, mt_in(g, n, 0), 0);
    return s ? s : broadcast_output(g, n, 1, mt_in(g, n, 0)->dtype);
}

/* Pow's exponent may have another numeric type than its base. */
static mtmi_status infer_pow(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 2, 2);
    if (!s) s = need_dtype(g, n, mt_in(g, n, 0), 0);
    if (!s) s = need_dtype(g, n, mt_in(g, n, 1), 0);
    return s ? s : broadcast_output(g, n, 0, mt_in(g, n, 0)->dtype);
}

static mtmi_status infer_compare(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 2, 2);
    const mt_value *a = mt_in(g, n, 0);
    if (!s && a->dtype != MTMI_BOOL) s = need_dtype(g, n, a, 0);
    return s ? s : broadcast_output(g, n, 1, MTMI_BOOL);
}

/* And/Or/Xor: bool in, bool out. */
static mtmi_status infer_logical(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 2, 2);
    if (!s && mt_in(g, n, 0)->dtype != MTMI_BOOL) s = mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "inputs must be bool");
    return s ? s : broadcast_output(g, n, 1, MTMI_BOOL);
}

static mtmi_status infer_isnan_isinf(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (!s) s = need_dtype(g, n, mt_in(g, n, 0), 1);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    mt_value_set_shape(mt_out(g, n, 0), MTMI_BOOL, x->rank, x->dims);
    return MTMI_OK;
}

/* PRelu: the slope broadcasts to the input, whose shape the output keeps. */
static mtmi_status infer_prelu(mt_graph *g, mt_node *n) {
    mtmi_status s = infer_binary_arith(g, n);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0), *y = mt_out(g, n, 0);
    if (y->rank != x->rank || memcmp(y->dims, x->dims, sizeof(int64_t) * x->rank))
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "slope does not broadcast to the input's shape");
    return MTMI_OK;
}

/* Bitwise ops: integers only. */
static mtmi_status infer_bitwise(mt_graph *g, mt_node *n) {
    int unary = !strcmp(n->op, "BitwiseNot");
    mtmi_status s = mt_check_inputs(g, n, unary ? 1 : 2, unary ? 1 : 2);
    if (s) return s;
    int t = mt_in(g, n, 0)->dtype;
    int ok = t == MTMI_INT32 || t == MTMI_INT64 || t == MTMI_INT8 || t == MTMI_UINT8;
    if (!ok) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "element type %s is not supported", mt_dtype_name(t));
    return unary ? mt_infer_same(g, n) : infer_binary_arith(g, n);
}

static mtmi_status infer_not(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (!s && mt_in(g, n, 0)->dtype != MTMI_BOOL) s = mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "input must be bool");
    return s ? s : mt_infer_same(g, n);
}

static mtmi_status infer_variadic(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 64);
    if (!s) s = need_dtype(g, n, mt_in(g, n, 0), 0);
    return s ? s : broadcast_output(g, n, 1, mt_in(g, n, 0)->dtype);
}

static mtmi_status infer_where(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 3, 3);
    if (s) return s;
    const mt_value *c = mt_in(g, n, 0), *x = mt_in(g, n, 1), *y = mt_in(g, n, 2);
    if (c->dtype != MTMI_BOOL) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "condition must be bool, is %s", mt_dtype_name(c->dtype));
    if (x->dtype != y->dtype)
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "X is %s but Y is %s", mt_dtype_name(x->dtype), mt_dtype_name(y->dtype));
    if (!mt_dtype_size(x->dtype)) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "element type %s", mt_dtype_name(x->dtype));
    int r, r2;
    int64_t d[MT_MAX_RANK], d2[MT_MAX_RANK]; /* mt_broadcast_shape must not write its input */
    s = mt_broadcast_shape(g, n, c->rank, c->dims, x->rank, x->dims, &r, d);
    if (!s) s = mt_broadcast_shape(g, n, r, d, y->rank, y->dims, &r2, d2);
    if (s) return s;
    mt_value_set_shape(mt_out(g, n, 0), x->dtype, r2, d2);
    return MTMI_OK;
}

/* Clip: bounds are attributes before opset 11, optional scalar inputs after. */
static mtmi_status infer_clip(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 3);
    if (!s) s = need_dtype(g, n, mt_in(g, n, 0), g->opset < 11);
    if (s) return s;
    for (int i = 1; i < 3; i++) {
        const mt_value *b = mt_in(g, n, i);
        if (!b) continue;
        if (mt_numel(b->rank, b->dims) != 1) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "bound input %d must be a scalar", i);
        if (b->dtype != mt_in(g, n, 0)->dtype)
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "bound input %d is %s, input is %s", i, mt_dtype_name(b->dtype), mt_dtype_name(mt_in(g, n, 0)->dtype));
    }
    return mt_infer_same(g, n);
}

static int is_cast_dtype(int t) {
    return t == MTMI_FLOAT || t == MTMI_DOUBLE || t == MTMI_FLOAT16 || t == MTMI_INT64 || t == MTMI_INT32 ||
           t == MTMI_INT8 || t == MTMI_UINT8 || t == MTMI_BOOL;
}

static mtmi_status infer_cast(mt_graph *g, mt_node *n) {
    int castlike = !strcmp(n->op, "CastLike");
    mtmi_status s = mt_check_inputs(g, n, 1 + castlike, 1 + castlike);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    int to;
    if (castlike) {
        to = mt_in(g, n, 1) ? mt_in(g, n, 1)->dtype : 0;
    } else {
        if (!mt_node_attr(n, "to")) return mt_node_fail(g, n, MTMI_ERR_PARSE, "attribute 'to' is missing");
        to = (int)mt_attr_int(n, "to", 0);
    }
    if (!is_cast_dtype(to) || !is_cast_dtype(x->dtype))
        return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "cast from %s to %s is not supported", mt_dtype_name(x->dtype), mt_dtype_name(to));
    mt_value_set_shape(mt_out(g, n, 0), to, x->rank, x->dims);
    return MTMI_OK;
}

const mt_op_schema mt_schemas_elementwise[] = {
    {"Add", "", infer_binary_arith, 1},
    {"Sub", "", infer_binary_arith, 1},
    {"Mul", "", infer_binary_arith, 1},
    {"Div", "", infer_binary_arith, 1},
    {"Pow", "", infer_pow, 1},
    {"Sqrt", "", infer_unary_float, 1},
    {"Erf", "", infer_unary_float, 1},
    {"Relu", "", infer_unary_any, 1},
    {"Sigmoid", "", infer_unary_float, 1},
    {"Tanh", "", infer_unary_float, 1},
    {"Exp", "", infer_unary_float, 1},
    {"Log", "", infer_unary_float, 1},
    {"Neg", "", infer_unary_any, 1},
    {"Abs", "", infer_unary_any, 1},
    {"Sign", "", infer_unary_any, 1},
    {"Reciprocal", "", infer_unary_float, 1},
    {"Floor", "", infer_unary_float, 1},
    {"Ceil", "", infer_unary_float, 1},
    {"Round", "", infer_unary_float, 1},
    {"Sin", "", infer_unary_float, 1},
    {"Cos", "", infer_unary_float, 1},
    {"Softplus", "", infer_unary_float, 1},
    {"Elu", "", infer_unary_float, 1},
    {"Selu", "", infer_unary_float, 1},
    {"LeakyRelu", "", infer_unary_float, 1},
    {"HardSigmoid", "", infer_unary_float, 1},
    {"HardSwish", "", infer_unary_float, 1},
    {"Celu", "", infer_unary_float, 12},
    {"Softsign", "", infer_unary_float, 1},
    {"ThresholdedRelu", "", infer_unary_float, 10},
    {"Shrink", "", infer_unary_float, 9},
    {"Mish", "", infer_unary_float, 18},
    {"Swish", "", infer_unary_float, 1},
    {"Gelu", "", infer_unary_float, 20},
    {"Tan", "", infer_unary_float, 1},
    {"Asin", "", infer_unary_float, 1},
    {"Acos", "", infer_unary_float, 1},
    {"Atan", "", infer_unary_float, 1},
    {"Sinh", "", infer_unary_float, 1},
    {"Cosh", "", infer_unary_float, 1},
    {"Asinh", "", infer_unary_float, 1},
    {"Acosh", "", infer_unary_float, 1},
    {"Atanh", "", infer_unary_float, 1},
    {"IsNaN", "", infer_isnan_isinf, 9},
    {"IsInf", "", infer_isnan_isinf, 10},
    {"Mod", "", infer_binary_arith, 10},
    {"PRelu", "", infer_prelu, 1},
    {"BitwiseAnd", "", infer_bitwise, 18},
    {"BitwiseOr", "", infer_bitwise, 18},
    {"BitwiseXor", "", infer_bitwise, 18},
    {"BitwiseNot", "", infer_bitwise, 18},
    {"Clip", "", infer_clip, 1},
    {"Cast", "", infer_cast, 1},
    {"CastLike", "", infer_cast, 15},
    {"Identity", "", infer_identity, 1},
    {"Max", "", infer_variadic, 1},
    {"Min", "", infer_variadic, 1},
    {"Sum", "", infer_variadic, 1},
    {"Mean", "", infer_variadic, 1},
    {"Equal", "", infer_compare, 1},
    {"Less", "", infer_compare, 1},
    {"Greater", "", infer_compare, 1},
    {"LessOrEqual", "", infer_compare, 12},
    {"GreaterOrEqual", "", infer_compare, 12},
    {"And", "", infer_logical, 1},
    {"Or", "", infer_logical, 1},
    {"Xor", "", infer_logical, 1},
    {"Not", "", infer_not, 1},
    {"Where", "", infer_where, 9},
    {NULL, NULL, NULL, 0},
};
