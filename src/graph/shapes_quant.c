/* Shape inference for the INT8 operators of src/quant (mtmi.QConv,
 * mtmi.QLinear; see graph/qops.h for their arithmetic):
 *   QConv(X float [N,C,H,W], Wq int8 [M,C/g,kh,kw], Bq int32 [M],
 *         Mult float [M]) -> float [N,M,OH,OW]; Conv attributes plus
 *         "activation", "x_scale", "y_scale".
 *         X may instead be int8 [N,H,W,C]: codes already quantized with
 *         x_scale (what QuantizeNHWC makes).
 *   QLinear(X float [...,K], Wq int8 [N,K], Bq, Mult) -> float [...,N].
 *   QuantizeNHWC(X float [N,C,H,W]) -> int8 [N,H,W,C]; attribute "scale".
 *   QUpsampleSum(Bq int32 [M], Mult float [M], P_0 .. P_L-1 float
 *         [N,M,H_l,W_l]) -> float [N,M,H_0,W_0], H_0 = f H_l with f in
 *         {1, 2, 4, 8} (and W alike); "activation", "y_scale". */
#include "graph/ops.h"

#include <string.h>

#include "graph/qops.h"

int mt_conv_geometry(const mt_node *n, const int64_t *xd, const int64_t *wd, mt_conv_geom *o, char *err, size_t cap) {
    memset(o, 0, sizeof *o);
    o->N = xd[0], o->C = xd[1], o->H = xd[2], o->W = xd[3];
    o->M = wd[0], o->kh = wd[2], o->kw = wd[3];
    o->group = mt_attr_int(n, "group", 1);
    o->sh = o->sw = o->dh = o->dw = 1;
    const int64_t *v;
    if (mt_attr_ints(n, "strides", &v) == 2) o->sh = v[0], o->sw = v[1];
    if (mt_attr_ints(n, "dilations", &v) == 2) o->dh = v[0], o->dw = v[1];
    if (mt_attr_ints(n, "pads", &v) == 4) o->pt = v[0], o->pl = v[1], o->pb = v[2], o->pr = v[3];
    if (o->group <= 0 || o->C % o->group || o->M % o->group || wd[1] * o->group != o->C) {
        snprintf(err, cap, "input has %lld channels, weights expect %lld x group %lld", (long long)o->C, (long long)wd[1],
                 (long long)o->group);
        return -1;
    }
    if (o->sh <= 0 || o->sw <= 0 || o->dh <= 0 || o->dw <= 0 || o->pt < 0 || o->pl < 0 || o->pb < 0 || o->pr < 0) {
        snprintf(err, cap, "bad strides, dilations or pads");
        return -1;
    }
    const char *ap = mt_attr_string(n, "auto_pad", "NOTSET");
    if (!strcmp(ap, "VALID")) o->pt = o->pl = o->pb = o->pr = 0;
    else if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
        int64_t th = ((o->H + o->sh - 1) / o->sh - 1) * o->sh + (o->kh - 1) * o->dh + 1 - o->H;
        int64_t tw = ((o->W + o->sw - 1) / o->sw - 1) * o->sw + (o->kw - 1) * o->dw + 1 - o->W;
        if (th < 0) th = 0;
        if (tw < 0) tw = 0;
        int up = !strcmp(ap, "SAME_UPPER");
        o->pt = up ? th / 2 : th - th / 2, o->pb = th - o->pt;
        o->pl = up ? tw / 2 : tw - tw / 2, o->pr = tw - o->pl;
    }
    o->OH = (o->H + o->pt + o->pb - (o->kh - 1) * o->dh - 1) / o->sh + 1;
    o->OW = (o->W + o->pl + o->pr - (o->kw - 1) * o->dw - 1) / o->sw + 1;
    if (o->OH <= 0 || o->OW <= 0) {
        snprintf(err, cap, "kernel larger than the padded input");
        return -1;
    }
    return 0;
}

static mtmi_status infer_qconv(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 4, 4);
    if (s) return s;
    mt_value *x = mt_in(g, n, 0), *w = mt_in(g, n, 1);
    if (x->rank != 4 || w->rank != 4 || w->dtype != MTMI_INT8)
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "expects a rank-4 input and rank-4 int8 weights");
    mt_conv_geom c;
    char err[128];
    int64_t xd[4];
    mt_qconv_input_dims(x->dtype, x->dims, xd);
    if (mt_conv_geometry(n, xd, w->dims, &c, err, sizeof err)) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "%s", err);
    int64_t d[4] = {c.N, c.M, c.OH, c.OW};
    mt_value_set_shape(mt_out(g, n, 0), MTMI_FLOAT, 4, d);
    return MTMI_OK;
}

static mtmi_status infer_qlinear(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 4, 4);
    if (s) return s;
    mt_value *x = mt_in(g, n, 0), *w = mt_in(g, n, 1);
    if (x->rank < 1 || w->rank != 2 || x->dims[x->rank - 1] != w->dims[1])
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input's last dimension does not match the weights");
    int64_t d[MT_MAX_RANK];
    memcpy(d, x->dims, sizeof d);
    d[x->rank - 1] = w->dims[0];
    mt_value_set_shape(mt_out(g, n, 0), MTMI_FLOAT, x->rank, d);
    return MTMI_OK;
}

static mtmi_status infer_quantize_nhwc(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    mt_value *x = mt_in(g, n, 0);
    if (x->rank != 4 || (x->dtype != MTMI_FLOAT && x->dtype != MTMI_FLOAT16))
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "expects a float rank-4 input");
    if (!(mt_attr_float(n, "scale", 0) > 0)) return mt_node_fail(g, n, MTMI_ERR_ARG, "scale must be positive");
    const int64_t d[4] = {x->dims[0], x->dims[2], x->dims[3], x->dims[1]};
    mt_value_set_shape(mt_out(g, n, 0), MTMI_INT8, 4, d);
    return MTMI_OK;
}

/* The factor of a level's side: 1, 2, 4 or 8; 0 when none fits. */
int mt_qupsample_factor(int64_t out, int64_t in) {
    for (int f = 1; f <= 8; f *= 2)
        if (in > 0 && in * f == out) return f;
    return 0;
}

static mtmi_status infer_qupsample_sum(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 3, 2 + MT_QUPSUM_MAX_LEVELS);
    if (s) return s;
    const mt_value *b = mt_in(g, n, 0), *m = mt_in(g, n, 1), *p0 = mt_in(g, n, 2);
    if (p0->rank != 4 || p0->dtype != MTMI_FLOAT) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "expects float rank-4 levels");
    const int64_t M = p0->dims[1];
    if (b->dtype != MTMI_INT32 || b->rank != 1 || b->dims[0] != M || m->dtype != MTMI_FLOAT || m->rank != 1 || m->dims[0] != M)
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "expects int32 biases and float multipliers, one per channel (%lld)", (long long)M);
    for (int i = 3; i < n->nin; i++) {
        const mt_value *p = mt_in(g, n, i);
        if (p->rank != 4 || p->dtype != MTMI_FLOAT || p->dims[0] != p0->dims[0] || p->dims[1] != M ||
            !mt_qupsample_factor(p0->dims[2], p->dims[2]) || !mt_qupsample_factor(p0->dims[3], p->dims[3]))
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "level %d is not the first level's size over 1, 2, 4 or 8", i - 2);
    }
    mt_value_set_shape(mt_out(g, n, 0), MTMI_FLOAT, 4, p0->dims);
    return MTMI_OK;
}

const mt_op_schema mt_schemas_quant[] = {
    {"QConv", "mtmi", infer_qconv, 0},
    {"QLinear", "mtmi", infer_qlinear, 0},
    {"QuantizeNHWC", "mtmi", infer_quantize_nhwc, 0},
    {"QUpsampleSum", "mtmi", infer_qupsample_sum, 0},
    {NULL, NULL, NULL, 0},
};
