/* Shape inference for the nn operator family: convolutions, GEMMs,
 * normalizations, pooling and resizing, plus the conv/GEMM-based fused ops
 * mtmi.FusedConv and mtmi.Linear. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graph/nn_geom.h"
#include "graph/nn_resize.h"
#include "graph/ops.h"

/* ------------------------------------------------------------ geometry */
static int geom_err(char *err, size_t cap, const char *fmt, const char *what, long long a, long long b) {
    snprintf(err, cap, fmt, what, a, b);
    return -1;
}

int mt_geom_get(const mt_node *n, int kind, int nsp, const int64_t *in_sp, const int64_t *k_sp, mt_geom *geo,
                char *err, size_t errcap) {
    memset(geo, 0, sizeof *geo);
    if (nsp < 1 || nsp > MT_GEOM_MAX_SP) {
        snprintf(err, errcap, "%d spatial dimensions are not supported (1 to %d)", nsp, MT_GEOM_MAX_SP);
        return -1;
    }
    geo->nsp = nsp;
    geo->group = mt_attr_int(n, "group", 1);
    const int64_t *v;
    int c = mt_attr_ints(n, "kernel_shape", &v);
    if (c >= 0 && c != nsp) return geom_err(err, errcap, "%s has %lld values, expected %lld", "kernel_shape", c, nsp);
    if (c < 0 && !k_sp) {
        snprintf(err, errcap, "kernel_shape attribute is required");
        return -1;
    }
    for (int i = 0; i < nsp; i++) {
        geo->in[i] = in_sp[i];
        geo->k[i] = c >= 0 ? v[i] : k_sp[i];
        if (k_sp && c >= 0 && v[i] != k_sp[i])
            return geom_err(err, errcap, "%s %lld does not match the weight's %lld", "kernel_shape", v[i], k_sp[i]);
        if (geo->k[i] < 1) return geom_err(err, errcap, "%s value %lld must be positive%.0lld", "kernel_shape", geo->k[i], 0);
        geo->stride[i] = geo->dil[i] = 1;
    }
    static const char *const lists[] = {"strides", "dilations"};
    for (int l = 0; l < 2; l++) {
        c = mt_attr_ints(n, lists[l], &v);
        if (c < 0) continue;
        if (c != nsp) return geom_err(err, errcap, "%s has %lld values, expected %lld", lists[l], c, nsp);
        for (int i = 0; i < nsp; i++) {
            if (v[i] < 1) return geom_err(err, errcap, "%s value %lld must be positive%.0lld", lists[l], v[i], 0);
            if (l == 0) geo->stride[i] = v[i];
            else geo->dil[i] = v[i];
        }
    }
    const char *ap = mt_attr_string(n, "auto_pad", "NOTSET");
    int mode; /* 0 explicit, 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID */
    if (!strcmp(ap, "NOTSET") || !ap[0]) mode = 0;
    else if (!strcmp(ap, "SAME_UPPER")) mode = 1;
    else if (!strcmp(ap, "SAME_LOWER")) mode = 2;
    else if (!strcmp(ap, "VALID")) mode = 3;
    else {
        snprintf(err, errcap, "unknown auto_pad '%s'", ap);
        return -1;
    }
    c = mt_attr_ints(n, "pads", &v);
    if (c >= 0 && mode == 0) {
        if (c != 2 * nsp) return geom_err(err, errcap, "%s has %lld values, expected %lld", "pads", c, 2 * nsp);
        for (int i = 0; i < nsp; i++) {
            geo->pb[i] = v[i];
            geo->pe[i] = v[i + nsp];
            if (geo->pb[i] < 0 || geo->pe[i] < 0)
                return geom_err(err, errcap, "%s must not be negative (%lld, %lld)", "pads", geo->pb[i], geo->pe[i]);
        }
    }
    int ceil_mode = kind == MT_GEOM_POOL ? (int)mt_attr_int(n, "ceil_mode", 0) : 0;
    if (kind == MT_GEOM_CONVT) {
        const int64_t *op = NULL, *os = NULL;
        int nop = mt_attr_ints(n, "output_padding", &op);
        int nos = mt_attr_ints(n, "output_shape", &os);
        if (nop >= 0 && nop != nsp) return geom_err(err, errcap, "%s has %lld values, expected %lld", "output_padding", nop, nsp);
        /* output_shape may also list N and C. */
        if (nos >= 0 && nos != nsp && nos != nsp + 2)
            return geom_err(err, errcap, "%s has %lld values, expected %lld", "output_shape", nos, nsp);
        for (int i = 0; i < nsp; i++) {
            int64_t adj = nop >= 0 ? op[i] : 0;
            if (adj < 0 || (adj >= geo->stride[i] && adj >= geo->dil[i]))
                return geom_err(err, errcap, "%s value %lld must be smaller than stride or dilation (%lld)", "output_padding", adj,
                                geo->stride[i]);
            int64_t full = (geo->in[i] - 1) * geo->stride[i] + adj + (geo->k[i] - 1) * geo->dil[i] + 1;
            if (nos >= 0 || mode == 1 || mode == 2) {
                int64_t want = nos >= 0 ? os[nos - nsp + i] : geo->in[i] * geo->stride[i];
                int64_t total = full - want;
                if (total < 0) total = 0;
                /* SAME_UPPER puts the odd pixel at the end (as for Conv);
                 * SAME_LOWER at the beginning. */
                if (mode == 2) {
                    geo->pb[i] = total - total / 2;
                    geo->pe[i] = total / 2;
                } else {
                    geo->pb[i] = total / 2;
                    geo->pe[i] = total - total / 2;
                }
                geo->out[i] = want;
            } else {
                if (mode == 3) geo->pb[i] = geo->pe[i] = 0;
                geo->out[i] = full - geo->pb[i] - geo->pe[i];
            }
            if (geo->out[i] < 1) return geom_err(err, errcap, "%s dimension %lld is not positive (axis %lld)", "output", geo->out[i], i);
        }
        return 0;
    }
    for (int i = 0; i < nsp; i++) {
        int64_t ext = (geo->k[i] - 1) * geo->dil[i] + 1;
        int64_t in = geo->in[i], s = geo->stride[i];
        if (mode == 1 || mode == 2) {
            geo->out[i] = (in + s - 1) / s;
            int64_t total = (geo->out[i] - 1) * s + ext - in;
            if (total < 0) total = 0;
            if (mode == 1) {
                geo->pb[i] = total / 2;
                geo->pe[i] = total - total / 2;
            } else {
                geo->pe[i] = total / 2;
                geo->pb[i] = total - total / 2;
            }
        } else {
            if (mode == 3) geo->pb[i] = geo->pe[i] = 0;
            int64_t span = in + geo->pb[i] + geo->pe[i] - ext;
            if (span < 0)
                return geom_err(err, errcap, "%s extent %lld exceeds the padded input %lld", "kernel", ext, in + geo->pb[i] + geo->pe[i]);
            if (ceil_mode) {
                geo->out[i] = (span + s - 1) / s + 1;
                /* The last window must start inside the input or its
                 * beginning padding (PyTorch and ONNX Runtime rule). */
                if ((geo->out[i] - 1) * s >= in + geo->pb[i]) geo->out[i]--;
            } else
                geo->out[i] = span / s + 1;
        }
        if (geo->out[i] < 1) return geom_err(err, errcap, "%s dimension %lld is not positive (axis %lld)", "output", geo->out[i], i);
    }
    return 0;
}

/* ---------------------------------------------------------------- Conv */
static mtmi_status need_float(mt_graph *g, mt_node *n, int i) {
    mt_value *x = mt_in(g, n, i);
    if (x && x->dtype != MTMI_FLOAT)
        return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "input %d has type %s, only float is supported", i, mt_dtype_name(x->dtype));
    return MTMI_OK;
}

static mtmi_status infer_conv_like(mt_graph *g, mt_node *n, int kind) {
    mtmi_status s = mt_check_inputs(g, n, 2, 3);
    if (s) return s;
    mt_value *x = mt_in(g, n, 0), *w = mt_in(g, n, 1), *b = mt_in(g, n, 2);
    for (int i = 0; i < 3; i++)
        if ((s = need_float(g, n, i))) return s;
    if (x->rank < 3 || x->rank > 2 + MT_GEOM_MAX_SP)
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input must have rank 3 to %d, has %d", 2 + MT_GEOM_MAX_SP, x->rank);
    if (w->rank != x->rank) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "weight rank %d differs from input rank %d", w->rank, x->rank);
    mt_geom geo;
    char err[256];
    int nsp = x->rank - 2;
    if (mt_geom_get(n, kind, nsp, x->dims + 2, w->dims + 2, &geo, err, sizeof err))
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "%s", err);
    int64_t G = geo.group, C = x->dims[1], cout;
    if (G < 1 || C % G) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "group %lld does not divide %lld input channels", (long long)G, (long long)C);
    if (kind == MT_GEOM_CONV) {
        if (w->dims[1] * G != C)
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "weight expects %lld input channels per group, input has %lld in %lld groups",
                                (long long)w->dims[1], (long long)C, (long long)G);
        cout = w->dims[0];
        if (cout % G) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "group %lld does not divide %lld output channels", (long long)G, (long long)cout);
    } else {
        if (w->dims[0] != C)
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "weight has %lld input channels, input has %lld", (long long)w->dims[0], (long long)C);
        cout = w->dims[1] * G;
    }
    if (b && (b->rank != 1 || b->dims[0] != cout))
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "bias must have shape [%lld]", (long long)cout);
    const char *act = mt_attr_string(n, "activation", "");
    if (strcmp(n->domain ? n->domain : "", "mtmi") == 0 && act[0] && strcmp(act, "Relu") && strcmp(act, "Sigmoid") && strcmp(act, "Gelu"))
        return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "unknown activation '%s'", act);
    int64_t d[MT_MAX_RANK];
    d[0] = x->dims[0];
    d[1] = cout;
    for (int i = 0; i < nsp; i++) d[2 + i] = geo.out[i];
    mt_value_set_shape(mt_out(g, n, 0), MTMI_FLOAT, x->rank, d);
    return MTMI_OK;
}

static mtmi_status infer_conv(mt_graph *g, mt_node *n) { return infer_conv_like(g, n, MT_GEOM_CONV); }
static mtmi_status infer_convt(mt_graph *g, mt_node *n) { return infer_conv_like(g, n, MT_GEOM_CONVT); }

/* --------------------------------------------------------------- GEMMs */
static mtmi_status infer_matmul(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 2, 2);
    if (s) return s;
    mt_value *a = mt_in(g, n, 0), *b = mt_in(g, n, 1);
    if ((s = need_float(g, n, 0)) || (s = need_float(g, n, 1))) return s;
    if (a->rank < 1 || b->rank < 1) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "inputs must have rank >= 1");
    int64_t da[MT_MAX_RANK], db[MT_MAX_RANK];
    int ra = a->rank, rb = b->rank;
    memcpy(da, a->dims, sizeof(int64_t) * ra);
    memcpy(db, b->dims, sizeof(int64_t) * rb);
    if (ra == 1) { da[1] = da[0]; da[0] = 1; ra = 2; }
    if (rb == 1) { db[1] = 1; rb = 2; }
    if (da[ra - 1] != db[rb - 2]) {
        char sa[128], sb[128];
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "shapes %s and %s do not multiply", mt_shape_str(a->rank, a->dims, sa, sizeof sa),
                            mt_shape_str(b->rank, b->dims, sb, sizeof sb));
    }
    int rbat;
    int64_t dout[MT_MAX_RANK];
    if ((s = mt_broadcast_shape(g, n, ra - 2, da, rb - 2, db, &rbat, dout))) return s;
    int r = rbat;
    if (a->rank > 1) dout[r++] = da[ra - 2];
    if (b->rank > 1) dout[r++] = db[rb - 1];
    mt_value_set_shape(mt_out(g, n, 0), MTMI_FLOAT, r, dout);
    return MTMI_OK;
}

static mtmi_status infer_gemm(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 2, 3);
    if (s) return s;
    mt_value *a = mt_in(g, n, 0), *b = mt_in(g, n, 1), *c = mt_in(g, n, 2);
    for (int i = 0; i < 3; i++)
        if ((s = need_float(g, n, i))) return s;
    if (a->rank != 2 || b->rank != 2) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "A and B must be 2-D (are %d-D and %d-D)", a->rank, b->rank);
    int ta = mt_attr_int(n, "transA", 0) != 0, tb = mt_attr_int(n, "transB", 0) != 0;
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
    int64_t K2 = tb ? b->dims[1] : b->dims[0], N = tb ? b->dims[0] : b->dims[1];
    if (K != K2) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "inner dimensions %lld and %lld differ", (long long)K, (long long)K2);
    if (c) {
        if (c->rank > 2) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "C must have rank <= 2");
        int64_t cm = c->rank == 2 ? c->dims[0] : 1, cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        if ((cm != 1 && cm != M) || (cn != 1 && cn != N))
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "C does not broadcast to [%lld, %lld]", (long long)M, (long long)N);
    }
    int64_t d[2] = {M, N};
    mt_value_set_shape(mt_out(g, n, 0), MTMI_FLOAT, 2, d);
    return MTMI_OK;
}

static mtmi_status infer_linear(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 2, 3);
    if (s) return s;
    mt_value *x = mt_in(g, n, 0), *w = mt_in(g, n, 1), *b = mt_in(g, n, 2);
    for (int i = 0; i < 3; i++)
        if ((s = need_float(g, n, i))) return s;
    if (x->rank < 1 || w->rank != 2 || x->dims[x->rank - 1] != w->dims[0])
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "X [..., K] and W [K, N] do not fit");
    if (b && mt_value_numel(b) != w->dims[1])
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "bias must have %lld values", (long long)w->dims[1]);
    const char *act = mt_attr_string(n, "activation", "");
    if (act[0] && strcmp(act, "Relu") && strcmp(act, "Sigmoid") && strcmp(act, "Gelu"))
        return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "unknown activation '%s'", act);
    int64_t d[MT_MAX_RANK];
    memcpy(d, x->dims, sizeof(int64_t) * x->rank);
    d[x->rank - 1] = w->dims[1];
    mt_value_set_shape(mt_out(g, n, 0), MTMI_FLOAT, x->rank, d);
    return MTMI_OK;
}

/* ------------------------------------------------------- normalization */
static mtmi_status infer_layernorm(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 2, 3);
    if (s) return s;
    mt_value *x = mt_in(g, n, 0);
    for (int i = 0; i < 3; i++)
        if ((s = need_float(g, n, i))) return s;
    int axis = mt_norm_axis(mt_attr_int(n, "axis", -1), x->rank);
    if (axis < 0 || x->rank < 1) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axis out of range for rank %d", x->rank);
    for (int i = 1; i < 3; i++) {
        mt_value *p = mt_in(g, n, i);
        if (!p) continue;
        if (p->rank > x->rank - axis) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input %d has too high a rank", i);
        for (int d = 0; d < p->rank; d++) {
            int64_t want = x->dims[x->rank - p->rank + d];
            if (p->dims[d] != want && p->dims[d] != 1)
                return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input %d does not broadcast to the normalized shape", i);
        }
    }
    mt_value_set_shape(mt_out(g, n, 0), x->dtype, x->rank, x->dims);
    int64_t d[MT_MAX_RANK];
    for (int i = 0; i < x->rank; i++) d[i] = i < axis ? x->dims[i] : 1;
    for (int k = 1; k < 3; k++)
        if (mt_out(g, n, k)) mt_value_set_shape(mt_out(g, n, k), MTMI_FLOAT, x->rank, d);
    return MTMI_OK;
}

static mtmi_status infer_batchnorm(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 5, 5);
    if (s) return s;
    mt_value *x = mt_in(g, n, 0);
    for (int i = 0; i < 5; i++)
        if ((s = need_float(g, n, i))) return s;
    if (mt_attr_int(n, "training_mode", 0)) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "training_mode=1 is not supported");
    if (n->nout > 1 && g->opset >= 14) {
        for (int k = 1; k < n->nout; k++)
            if (n->out[k] >= 0) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "running mean/var outputs (training mode) are not supported");
    }
    if (x->rank < 2) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input must have rank >= 2");
    for (int i = 1; i < 5; i++) {
        mt_value *p = mt_in(g, n, i);
        if (mt_value_numel(p) != x->dims[1])
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input %d must have %lld values (one per channel)", i, (long long)x->dims[1]);
    }
    mt_value_set_shape(mt_out(g, n, 0), MTMI_FLOAT, x->rank, x->dims);
    /* Old-opset optional outputs (mean, var, saved...) mirror the stats. */
    for (int k = 1; k < n->nout; k++)
        if (mt_out(g, n, k)) mt_value_set_shape(mt_out(g, n, k), MTMI_FLOAT, 1, &x->dims[1]);
    return MTMI_OK;
}

/* ------------------------------------------------------------- pooling */
static mtmi_status infer_pool(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    mt_value *x = mt_in(g, n, 0);
    /* MaxPool also takes 8-bit integers (opset 12). */
    int int8_ok = !strcmp(n->op, "MaxPool") && (x->dtype == MTMI_INT8 || x->dtype == MTMI_UINT8);
    if (!int8_ok && (s = need_float(g, n, 0))) return s;
    if (x->rank < 3 || x->rank > 2 + MT_GEOM_MAX_SP)
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input must have rank 3 to %d, has %d", 2 + MT_GEOM_MAX_SP, x->rank);
    mt_geom geo;
    char err[256];
    if (mt_geom_get(n, MT_GEOM_POOL, x->rank - 2, x->dims + 2, NULL, &geo, err, sizeof err))
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "%s", err);
    int64_t d[MT_MAX_RANK];
    d[0] = x->dims[0];
    d[1] = x->dims[1];
    for (int i = 0; i < geo.nsp; i++) d[2 + i] = geo.out[i];
    mt_value_set_shape(mt_out(g, n, 0), x->dtype, x->rank, d);
    if (mt_out(g, n, 1)) mt_value_set_shape(mt_out(g, n, 1), MTMI_INT64, x->rank, d);
    return MTMI_OK;
}

static mtmi_status infer_global_pool(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    mt_value *x = mt_in(g, n, 0);
    if ((s = need_float(g, n, 0))) return s;
    if (x->rank < 2) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input must have rank >= 2");
    int64_t d[MT_MAX_RANK];
    for (int i = 0; i < x->rank; i++) d[i] = i < 2 ? x->dims[i] : 1;
    mt_value_set_shape(mt_out(g, n, 0), MTMI_FLOAT, x->rank, d);
    return MTMI_OK;
}

/* -------------------------------------------------------------- Resize */
int mt_resize_setup(const mt_node *n, int64_t opset, int rank, const int64_t *in, const float *scales, int nscales,
                    const int64_t *sizes, int nsizes, float *out_scales, int64_t *out_dims, char *err, size_t errcap) {
    int is_upsample = !strcmp(n->op, "Upsample");
    int axes[MT_MAX_RANK], naxes = rank;
    const int64_t *av;
    int na = is_upsample ? -1 : mt_attr_ints(n, "axes", &av);
    if (na >= 0) {
        naxes = na;
        for (int i = 0; i < na; i++) {
            int a = mt_norm_axis(av[i], rank);
            if (a < 0) {
                snprintf(err, errcap, "axes value %lld out of range", (long long)av[i]);
                return -1;
            }
            axes[i] = a;
        }
    } else
        for (int i = 0; i < rank; i++) axes[i] = i;
    for (int i = 0; i < rank; i++) {
        out_scales[i] = 1.0f;
        out_dims[i] = in[i];
    }
    if (nscales > 0) {
        if (nscales != naxes) {
            snprintf(err, errcap, "scales has %d values, expected %d", nscales, naxes);
            return -1;
        }
        for (int i = 0; i < naxes; i++) {
            if (!(scales[i] > 0)) {
                snprintf(err, errcap, "scale %g must be positive", scales[i]);
                return -1;
            }
            int a = axes[i];
            out_scales[a] = scales[i];
            /* floor(in * scale) in float, as ONNX Runtime computes it. */
            out_dims[a] = (int64_t)floorf((float)in[a] * scales[i]);
        }
        return 0;
    }
    if (nsizes <= 0) {
        snprintf(err, errcap, "one of scales and sizes must be given");
        return -1;
    }
    if (nsizes != naxes) {
        snprintf(err, errcap, "sizes has %d values, expected %d", nsizes, naxes);
        return -1;
    }
    const char *pol = mt_attr_string(n, "keep_aspect_ratio_policy", "stretch");
    int policy = !strcmp(pol, "stretch") ? 0 : !strcmp(pol, "not_larger") ? 1 : !strcmp(pol, "not_smaller") ? 2 : -1;
    if (policy < 0) {
        snprintf(err, errcap, "unknown keep_aspect_ratio_policy '%s'", pol);
        return -1;
    }
    for (int i = 0; i < naxes; i++)
        if (sizes[i] < 1) {
            snprintf(err, errcap, "size %lld must be positive", (long long)sizes[i]);
            return -1;
        }
    if (policy == 0) {
        for (int i = 0; i < naxes; i++) {
            int a = axes[i];
            out_dims[a] = sizes[i];
            out_scales[a] = (float)sizes[i] / (float)in[a];
        }
    } else {
        float s = policy == 1 ? INFINITY : 0.0f;
        for (int i = 0; i < naxes; i++) {
            float r = (float)sizes[i] / (float)in[axes[i]];
            s = policy == 1 ? fminf(s, r) : fmaxf(s, r);
        }
        for (int i = 0; i < naxes; i++) {
            int a = axes[i];
            out_scales[a] = s;
            out_dims[a] = (int64_t)roundf(s * (float)in[a]);
        }
    }
    return 0;
}

static mtmi_status infer_resize(mt_graph *g, mt_node *n) {
    int upsample = !strcmp(n->op, "Upsample");
    int old = upsample || g->opset < 11; /* (X, scales) form */
    mtmi_status s = mt_check_inputs(g, n, 1, old ? 2 : 4);
    if (s) return s;
    mt_value *x = mt_in(g, n, 0);
    if ((s = need_float(g, n, 0))) return s;
    if (x->rank < 1) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input must have rank >= 1");
    const char *mode = mt_attr_string(n, "mode", "nearest");
    if (strcmp(mode, "nearest") && strcmp(mode, "linear") && strcmp(mode, "cubic") && strcmp(mode, "bilinear"))
        return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "mode '%s' is not supported", mode);
    if (mt_attr_int(n, "antialias", 0)) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "antialias=1 is not supported");
    float sc[MT_MAX_RANK];
    int64_t sz[MT_MAX_RANK];
    int nsc = 0, nsz = 0;
    int si = old ? 1 : 2;
    if (upsample && g->opset < 9) {
        const mt_attr *a = mt_node_attr(n, "scales");
        if (!a || a->type != MT_ATTR_FLOATS || a->n > MT_MAX_RANK) return mt_node_fail(g, n, MTMI_ERR_PARSE, "scales attribute is required");
        nsc = a->n;
        memcpy(sc, a->floats, sizeof(float) * a->n);
    } else {
        mt_value *vs = mt_in(g, n, si);
        if (vs && mt_value_numel(vs) > 0) {
            if ((nsc = mt_const_floats(g, n, si, sc, MT_MAX_RANK)) < 0) return MTMI_ERR_UNSUPPORTED;
        }
        mt_value *vz = old ? NULL : mt_in(g, n, 3);
        if (!nsc && vz && mt_value_numel(vz) > 0) {
            if ((nsz = mt_const_ints(g, n, 3, sz, MT_MAX_RANK)) < 0) return MTMI_ERR_UNSUPPORTED;
        }
        if (nsc && vz && mt_value_numel(vz) > 0) return mt_node_fail(g, n, MTMI_ERR_PARSE, "only one of scales and sizes may be given");
    }
    float os[MT_MAX_RANK];
    int64_t od[MT_MAX_RANK];
    char err[256];
    if (mt_resize_setup(n, g->opset, x->rank, x->dims, sc, nsc, sz, nsz, os, od, err, sizeof err))
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "%s", err);
    for (int i = 0; i < x->rank; i++)
        if (od[i] < 1) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "output dimension %d would be %lld", i, (long long)od[i]);
    mt_value_set_shape(mt_out(g, n, 0), MTMI_FLOAT, x->rank, od);
    return MTMI_OK;
}

const mt_op_schema mt_schemas_nn[] = {
    {"Conv", "", infer_conv, 1},
    {"ConvTranspose", "", infer_convt, 1},
    {"MatMul", "", infer_matmul, 1},
    {"Gemm", "", infer_gemm, 1},
    {"LayerNormalization", "", infer_layernorm, 1},
    {"BatchNormalization", "", infer_batchnorm, 1},
    {"Resize", "", infer_resize, 10},
    {"Upsample", "", infer_resize, 7},
    {"MaxPool", "", infer_pool, 1},
    {"AveragePool", "", infer_pool, 1},
    {"GlobalAveragePool", "", infer_global_pool, 1},
    {"GlobalMaxPool", "", infer_global_pool, 1},
    {"FusedConv", "mtmi", infer_conv, 0},
    {"Linear", "mtmi", infer_linear, 0},
    {NULL, NULL, NULL, 0},
};
