/* The 1x1 QConv over a concat of bilinear-upsampled maps, reassociated in
 * exact integers (graph/qops.h, mtmi.QUpsampleSum; opt-in,
 * tuning.int8_reassoc).
 *
 * The seg head fuses four maps, three of them upsampled 2x / 4x / 8x, by
 * a 1x1 conv over their concat: in the Q/DQ order the upsampled concat
 * (512 channels at the output size) is quantized and multiplied by a
 * K = 512 weight matrix at every output pixel.  Moving the concat's
 * quantize before the resizes (each map quantized with the concat's
 * scale) makes the rest linear in integers, so the conv runs per map at
 * its own resolution (K = its channels) and only the integer sums are
 * upsampled, exactly (the bilinear weights are multiples of 1/16 per
 * axis), and added: the FP16 head's catgemm, in INT8.  The rounding moves
 * (a code of the upsampled value vs the upsample of the codes); with no
 * map upsampled the result is the QConv's own, bit for bit.
 *
 * Pattern (after mt_quant_rewrite): QConv F, 1x1 / stride 1 / no padding /
 * group 1 / float input, reading Concat C (axis 1) that only F reads; each
 * concat input either a Resize (linear, half_pixel or pytorch_half_pixel,
 * factor 1, 2, 4 or 8 per side, only C reading it) of a float map, or a
 * map of the output's size.  F becomes QUpsampleSum(Bq, Mult, P_0, ...)
 * with P_l = QConv(map_l, its columns of F's weights, bias 0, multiplier
 * 1, x_scale F's), the map of the output's size first. */
#include <stdlib.h>
#include <string.h>

#include "graph/ops.h"
#include "quant/quant.h"

static int is_op(const mt_node *n, const char *domain, const char *op) {
    const char *d = n->domain ? n->domain : "";
    if (!strcmp(domain, "")) return (!*d || !strcmp(d, "ai.onnx")) && !strcmp(n->op, op);
    return !strcmp(d, domain) && !strcmp(n->op, op);
}

static int is_graph_output(const mt_graph *g, int v) {
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i] == v) return 1;
    return 0;
}

/* v is read by node `by` alone and is no graph output */
static int only_reader(const mt_graph *g, int v, int by) {
    int c[2];
    return !is_graph_output(g, v) && mt_graph_consumers(g, v, c, 2) == 1 && c[0] == by;
}

static int ints_all(const mt_node *n, const char *name, int64_t want) {
    const int64_t *v;
    const int k = mt_attr_ints(n, name, &v);
    for (int i = 0; i < k; i++)
        if (v[i] != want) return 0;
    return 1;
}

/* F: a QConv this rewrite takes (1x1, plain, float input) */
static int plain_1x1_qconv(const mt_graph *g, const mt_node *f) {
    if (!is_op(f, "mtmi", "QConv") || f->nin != 4 || f->in[0] < 0 || f->in[1] < 0) return 0;
    const mt_value *x = &g->values[f->in[0]], *w = &g->values[f->in[1]];
    return x->dtype == MTMI_FLOAT && x->rank == 4 && w->rank == 4 && w->dims[2] == 1 && w->dims[3] == 1 &&
           mt_attr_int(f, "group", 1) == 1 && !strcmp(mt_attr_string(f, "auto_pad", "NOTSET"), "NOTSET") &&
           ints_all(f, "strides", 1) && ints_all(f, "dilations", 1) && ints_all(f, "pads", 0);
}

/* The map behind concat input v and its factor (1 if v itself has the
 * output's size); -1 when v fits neither. */
static int level_source(const mt_graph *g, int v, int cat, const int64_t *od) {
    const mt_value *u = &g->values[v];
    if (u->rank != 4 || u->dims[2] != od[2] || u->dims[3] != od[3] || u->dtype != MTMI_FLOAT) return -1;
    const int r = u->producer;
    if (r >= 0 && is_op(&g->nodes[r], "", "Resize") && only_reader(g, v, cat)) {
        const mt_node *rn = &g->nodes[r];
        const char *ct = mt_attr_string(rn, "coordinate_transformation_mode", "half_pixel");
        const mt_value *x = rn->in[0] >= 0 ? &g->values[rn->in[0]] : NULL;
        if (!strcmp(mt_attr_string(rn, "mode", "nearest"), "linear") && (!strcmp(ct, "half_pixel") || !strcmp(ct, "pytorch_half_pixel")) &&
            x && !x->data && x->dtype == MTMI_FLOAT && x->rank == 4 && x->dims[0] == u->dims[0] && x->dims[1] == u->dims[1] &&
            mt_qupsample_factor(od[2], x->dims[2]) && mt_qupsample_factor(od[3], x->dims[3]) &&
            /* pytorch_half_pixel differs from half_pixel only for an output of length 1 */
            (strcmp(ct, "pytorch_half_pixel") || (od[2] > 1 && od[3] > 1)))
            return rn->in[0];
    }
    return v; /* a map of the output's size (factor 1) */
}

/* P_l = QConv(src, columns [k0, k0 + kc) of F's weights, bias 0,
 * multiplier 1, F's x_scale): the value's index, or -1 */
static int projection(mt_graph *g, int fi, int src, int64_t k0, int64_t kc, int l) {
    const mt_node *f = &g->nodes[fi];
    const mt_value *w = &g->values[f->in[1]];
    const int64_t M = w->dims[0], K = w->dims[1];
    int8_t *wq = malloc((size_t)(M * kc) + 1);
    int32_t *bq = calloc((size_t)M + 1, sizeof(int32_t));
    float *one = malloc(sizeof(float) * (size_t)M + 1);
    if (!wq || !bq || !one) {
        free(wq), free(bq), free(one);
        return -1;
    }
    for (int64_t m = 0; m < M; m++) {
        memcpy(wq + m * kc, (const int8_t *)w->data + m * K + k0, (size_t)kc);
        one[m] = 1.0f;
    }
    const float sx = mt_attr_float(f, "x_scale", 0);
    char base[300], name[300];
    snprintf(base, sizeof base, "%.200s/level%d", g->values[f->out[0]].name, l);
    const int64_t wd[4] = {M, kc, 1, 1};
    char wn[320], bn[320], mn[320];
    snprintf(wn, sizeof wn, "%s_wq", base);
    snprintf(bn, sizeof bn, "%s_bq", base);
    snprintf(mn, sizeof mn, "%s_mult", base);
    const int vw = mt_quant_add_const(g, wn, MTMI_INT8, 4, wd, wq);
    const int vb = vw < 0 ? (free(bq), -1) : mt_quant_add_const(g, bn, MTMI_INT32, 1, &M, bq);
    const int vm = vb < 0 ? (free(one), -1) : mt_quant_add_const(g, mn, MTMI_FLOAT, 1, &M, one);
    const int out = vm < 0 ? -1 : mt_graph_add_value_unique(g, base);
    if (out < 0) return -1;
    const int in[4] = {src, vw, vb, vm};
    snprintf(name, sizeof name, "%.200s/level%d", g->nodes[fi].name ? g->nodes[fi].name : "qconv", l);
    const int ni = mt_graph_add_node(g, "QConv", name, in, 4, &out, 1);
    if (ni < 0) return -1;
    mt_node *pn = &g->nodes[ni];
    free(pn->domain);
    pn->domain = mt_strdup("mtmi");
    const int64_t ks[2] = {1, 1};
    if (!pn->domain || mt_node_set_ints(pn, "kernel_shape", ks, 2) || mt_node_set_float(pn, "x_scale", sx) ||
        mt_node_set_float(pn, "y_scale", 0.0f))
        return -1;
    const int64_t *xd = g->values[src].dims;
    const int64_t od[4] = {xd[0], M, xd[2], xd[3]};
    mt_value_set_shape(&g->values[out], MTMI_FLOAT, 4, od);
    return out;
}

/* Rewrites F (node fi) if it fits: 1, 0 if not, -1 on error (set). */
static int reassociate_one(mt_graph *g, int fi) {
    const mt_node *f = &g->nodes[fi];
    if (f->dead || !plain_1x1_qconv(g, f)) return 0;
    const int cat = g->values[f->in[0]].producer;
    if (cat < 0 || !is_op(&g->nodes[cat], "", "Concat") || !only_reader(g, f->in[0], fi)) return 0;
    const mt_node *cn = &g->nodes[cat];
    const int64_t *od = g->values[f->in[0]].dims;
    if (mt_norm_axis(mt_attr_int(cn, "axis", 0), 4) != 1 || cn->nin < 2 || cn->nin > MT_QUPSUM_MAX_LEVELS) return 0;
    int src[MT_QUPSUM_MAX_LEVELS], first = -1, upsampled = 0;
    int64_t k0[MT_QUPSUM_MAX_LEVELS], kc[MT_QUPSUM_MAX_LEVELS], at = 0;
    for (int i = 0; i < cn->nin; i++) {
        const int v = cn->in[i];
        if (v < 0 || (src[i] = level_source(g, v, cat, od)) < 0) return 0;
        k0[i] = at;
        kc[i] = g->values[v].dims[1];
        /* a level's sums must be exact in float32: |sum| <= kc 128 127 < 2^24 */
        if (kc[i] * 128 * 127 >= ((int64_t)1 << 24)) return 0;
        at += kc[i];
        if (src[i] == v && first < 0) first = i;
        upsampled += src[i] != v;
    }
    /* one map at the output's size (it sets QUpsampleSum's), one upsampled */
    if (first < 0 || !upsampled || at != g->values[f->in[1]].dims[1]) return 0;
    int p[MT_QUPSUM_MAX_LEVELS], np = 0, order[MT_QUPSUM_MAX_LEVELS];
    order[np++] = first;
    for (int i = 0; i < cn->nin; i++)
        if (i != first) order[np++] = i;
    for (int k = 0; k < np; k++) {
        const int i = order[k];
        if ((p[k] = projection(g, fi, src[i], k0[i], kc[i], k)) < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory"), -1;
    }
    /* F becomes QUpsampleSum(Bq, Mult, P_0, ...); its attributes stay
     * (activation, y_scale; the conv ones are not read) */
    mt_node *fn = &g->nodes[fi];
    int *in = malloc(sizeof(int) * (size_t)(2 + np));
    char *op = mt_strdup("QUpsampleSum");
    if (!in || !op) {
        free(in), free(op);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory"), -1;
    }
    in[0] = fn->in[2];
    in[1] = fn->in[3];
    for (int k = 0; k < np; k++) in[2 + k] = p[k];
    free(fn->in);
    fn->in = in;
    fn->nin = 2 + np;
    free(fn->op);
    fn->op = op;
    g->nodes[cat].dead = 1; /* the Resizes go with it (dead code) */
    return 1;
}

mtmi_status mt_quant_apply_tuning(mt_graph *g, const mt_tuning *t) {
    return t && t->int8_reassoc ? mt_quant_reassociate(g, NULL) : MTMI_OK;
}

mtmi_status mt_quant_reassociate(mt_graph *g, int *made) {
    int n = 0;
    const int nn = g->nnodes;
    for (int i = 0; i < nn; i++) {
        const int r = reassociate_one(g, i);
        if (r < 0) return MTMI_ERR_NOMEM;
        n += r;
    }
    if (made) *made = n;
    if (!n) return MTMI_OK;
    /* the projections were appended after the node that reads them: sort
     * first (dead-code removal walks the nodes in order, backwards) */
    mtmi_status s = mt_graph_compact(g);
    return s ? s : mt_pass_dce(g);
}
