/* Pattern fusion passes.
 *
 * Each pattern is anchored at one node and walks producers upwards (or the
 * single consumer downwards).  A match rewrites its last node in place into
 * the fused op (so the pattern's output value, and with it every consumer,
 * is unchanged) and marks the other nodes dead; mt_pass_dce/compact then
 * drop them.  Intermediates are only absorbed when nothing else reads them
 * and they are not graph outputs, so a fusion never changes another value.
 *
 * mt_graph_add_node/add_value may move g->nodes and g->values, so the
 * matchers work on indices and re-take pointers after adding anything.
 *
 * MTMI_NO_FUSE (environment, comma separated: bn,ln,gelu,attn,linear,act,
 * actlayout,layout; or all) switches single passes off, to compare fused
 * against unfused runs.  MTMI_FUSE_CONCAT=1 switches on the seg-head conv
 * split (conv_through_concat_resize), which is off by default. */
#include "graph/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */
static int is_op(const mt_node *n, const char *op) {
    return !n->dead && (!n->domain || !n->domain[0] || !strcmp(n->domain, "ai.onnx")) && !strcmp(n->op, op);
}

static int is_mtmi(const mt_node *n, const char *op) {
    return !n->dead && n->domain && !strcmp(n->domain, "mtmi") && !strcmp(n->op, op);
}

/* Live producer node of value v, or -1. */
static int prod(const mt_graph *g, int v) {
    if (v < 0 || v >= g->nvalues) return -1;
    int p = g->values[v].producer;
    if (p < 0 || p >= g->nnodes || g->nodes[p].dead) return -1;
    const mt_node *n = &g->nodes[p];
    for (int k = 0; k < n->nout; k++)
        if (n->out[k] == v) return p;
    return -1;
}

/* The one live node reading v (possibly in several slots), or -1 when v is a
 * graph output, unused, or read by more than one node. */
static int sole_consumer(const mt_graph *g, int v) {
    if (v < 0 || g->values[v].is_output) return -1;
    int c = -1;
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int j = 0; j < n->nin; j++)
            if (n->in[j] == v) {
                if (c >= 0 && c != i) return -1;
                c = i;
            }
    }
    return c;
}

/* Whether every live reader of v is node a or node b (and v is no output). */
static int only_read_by(const mt_graph *g, int v, int a, int b) {
    if (v < 0 || g->values[v].is_output) return 0;
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        if (n->dead || i == a || i == b) continue;
        for (int j = 0; j < n->nin; j++)
            if (n->in[j] == v) return 0;
    }
    return 1;
}

static int is_float_const(const mt_graph *g, int v) {
    return v >= 0 && g->values[v].data && g->values[v].dtype == MTMI_FLOAT && mt_value_shape_known(&g->values[v]);
}

/* A constant holding one number (any float type). */
static int const_scalar(const mt_graph *g, int v, float *f) {
    if (v < 0) return 0;
    const mt_value *x = &g->values[v];
    if (!x->data || x->rank < 0 || mt_value_numel(x) != 1) return 0;
    switch (x->dtype) {
    case MTMI_FLOAT: *f = *(const float *)x->data; return 1;
    case MTMI_DOUBLE: *f = (float)*(const double *)x->data; return 1;
    case MTMI_FLOAT16: *f = mt_half_to_float(*(const uint16_t *)x->data); return 1;
    default: return 0;
    }
}

static int near(float a, float b, float rel) { return fabsf(a - b) <= rel * fabsf(b); }

/* For a binary node with one constant scalar operand: the other operand's
 * index (0/1) and the scalar, or -1. */
static int scalar_operand(const mt_graph *g, const mt_node *n, float *f) {
    if (n->nin != 2) return -1;
    if (const_scalar(g, n->in[1], f)) return 0;
    if (const_scalar(g, n->in[0], f)) return 1;
    return -1;
}

static mtmi_status set_str(char **dst, const char *s) {
    char *c = mt_strdup(s);
    if (!c) return MTMI_ERR_NOMEM;
    free(*dst);
    *dst = c;
    return MTMI_OK;
}

/* Turns node ni into `domain.op` with the given inputs and no attributes;
 * its outputs stay (output 0 is replaced by out0 when out0 >= 0). */
static mtmi_status rewrite(mt_graph *g, int ni, const char *domain, const char *op, const int *in, int nin, int out0) {
    mt_node *n = &g->nodes[ni];
    int *ins = malloc(sizeof(int) * (nin ? nin : 1));
    if (!ins) return mt_fail(MTMI_ERR_NOMEM, "out of memory fusing %s", n->name);
    memcpy(ins, in, sizeof(int) * nin);
    free(n->in);
    n->in = ins;
    n->nin = nin;
    if (set_str(&n->op, op) || set_str(&n->domain, domain)) return mt_fail(MTMI_ERR_NOMEM, "out of memory fusing %s", n->name);
    for (int i = 0; i < n->nattr; i++) mt_attr_free(&n->attrs[i]);
    free(n->attrs);
    n->attrs = NULL;
    n->nattr = 0;
    if (out0 >= 0) {
        n->out[0] = out0;
        g->values[out0].producer = ni;
    }
    return MTMI_OK;
}

/* A new float constant (a derived weight, so `simplify` writes it as an
 * initializer).  src == NULL leaves it zeroed.  Returns its index or -1. */
static int new_const(mt_graph *g, const char *base, int rank, const int64_t *dims, const float *src) {
    int v = mt_graph_add_value_unique(g, base);
    if (v < 0) return -1;
    mt_value *x = &g->values[v];
    mt_value_set_shape(x, MTMI_FLOAT, rank, dims);
    size_t b = mt_value_bytes(x);
    x->data = mt_alloc(b ? b : 4);
    if (!x->data) return -1;
    if (src) memcpy(x->data, src, b);
    x->is_weight = 1;
    return v;
}

/* tuning.no_fuse names the pattern (or "all"). */
static int fuse_disabled(const mt_tuning *t, const char *name) { return mt_tuning_list_has(t->no_fuse, name, 0); }

/* Reduce axes of a ReduceMean (attribute before opset 18, input after),
 * normalized and sorted; count or -1 when not statically known. */
static int reduce_axes(const mt_graph *g, const mt_node *n, int rank, int *axes) {
    int64_t raw[MT_MAX_RANK];
    int cnt = 0;
    const int64_t *a;
    int na = mt_attr_ints(n, "axes", &a);
    if (na >= 0) {
        if (na > MT_MAX_RANK) return -1;
        for (int i = 0; i < na; i++) raw[cnt++] = a[i];
    } else if (n->nin > 1 && n->in[1] >= 0) {
        const mt_value *x = &g->values[n->in[1]];
        if (!x->data || x->dtype != MTMI_INT64 || mt_value_numel(x) > MT_MAX_RANK) return -1;
        for (int64_t i = 0; i < mt_value_numel(x); i++) raw[cnt++] = ((const int64_t *)x->data)[i];
    }
    if (cnt == 0) return -1; /* all axes (or noop): not a LayerNorm */
    for (int i = 0; i < cnt; i++) {
        int ax = mt_norm_axis(raw[i], rank);
        if (ax < 0) return -1;
        axes[i] = ax;
    }
    for (int i = 1; i < cnt; i++)
        for (int j = i; j > 0 && axes[j - 1] > axes[j]; j--) {
            int t = axes[j];
            axes[j] = axes[j - 1];
            axes[j - 1] = t;
        }
    return cnt;
}

/* ---------------------------------------------------- Conv + BatchNorm */
static mtmi_status fuse_conv_bn(mt_graph *g, int bi, int *hit) {
    mt_node *bn = &g->nodes[bi];
    if (!is_op(bn, "BatchNormalization") || bn->nin != 5 || mt_attr_int(bn, "training_mode", 0)) return MTMI_OK;
    for (int k = 1; k < bn->nout; k++)
        if (bn->out[k] >= 0) return MTMI_OK;
    int ci = prod(g, bn->in[0]);
    if (ci < 0 || !is_op(&g->nodes[ci], "Conv") || sole_consumer(g, bn->in[0]) != bi) return MTMI_OK;
    mt_node *cv = &g->nodes[ci];
    int w = cv->in[1], b = cv->nin > 2 ? cv->in[2] : -1;
    if (!is_float_const(g, w) || g->values[w].rank < 3 || (b >= 0 && !is_float_const(g, b))) return MTMI_OK;
    int64_t co = g->values[w].dims[0];
    for (int k = 1; k < 5; k++)
        if (!is_float_const(g, bn->in[k]) || mt_value_numel(&g->values[bn->in[k]]) != co) return MTMI_OK;
    if (b >= 0 && mt_value_numel(&g->values[b]) != co) return MTMI_OK;
    float eps = mt_attr_float(bn, "epsilon", 1e-5f);
    int64_t per = mt_value_numel(&g->values[w]) / co;
    int wv = g->values[w].rank;
    int64_t wd[MT_MAX_RANK];
    memcpy(wd, g->values[w].dims, sizeof wd);
    int nw = new_const(g, "bnfold_w", wv, wd, NULL);
    int nb = nw < 0 ? -1 : new_const(g, "bnfold_b", 1, &co, NULL);
    if (nb < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory folding BatchNormalization");
    bn = &g->nodes[bi];
    cv = &g->nodes[ci];
    const float *W = g->values[w].data, *B = b >= 0 ? g->values[b].data : NULL;
    const float *sc = g->values[bn->in[1]].data, *sh = g->values[bn->in[2]].data;
    const float *mu = g->values[bn->in[3]].data, *var = g->values[bn->in[4]].data;
    float *NW = g->values[nw].data, *NB = g->values[nb].data;
    for (int64_t o = 0; o < co; o++) {
        /* double so the folded weights round once, like the exporters' fold */
        double s = (double)sc[o] / sqrt((double)var[o] + eps);
        for (int64_t i = 0; i < per; i++) NW[o * per + i] = (float)(W[o * per + i] * s);
        NB[o] = (float)(((B ? B[o] : 0.0) - mu[o]) * s + sh[o]);
    }
    int ins[3] = {cv->in[0], nw, nb};
    int out = bn->out[0];
    /* keep the Conv's attributes: rewrite only inputs and output */
    int *ni = malloc(sizeof ins);
    if (!ni) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    memcpy(ni, ins, sizeof ins);
    free(cv->in);
    cv->in = ni;
    cv->nin = 3;
    cv->out[0] = out;
    g->values[out].producer = ci;
    bn->dead = 1;
    *hit = 1;
    return MTMI_OK;
}

/* ------------------------------------------------------------ LayerNorm */
/* ReduceMean -> Sub -> Pow(2)|Mul(d,d) -> ReduceMean -> Add(eps) -> Sqrt ->
 * Div [-> Mul(gamma) [-> Add(beta)]], anchored at the Div. */
static mtmi_status fuse_layernorm(mt_graph *g, int di, int *hit) {
    const mt_node *dv = &g->nodes[di];
    if (!is_op(dv, "Div") || dv->nin != 2) return MTMI_OK;
    int d = dv->in[0], s = dv->in[1];
    int sub = prod(g, d), sq = prod(g, s);
    if (sub < 0 || sq < 0 || !is_op(&g->nodes[sub], "Sub") || !is_op(&g->nodes[sq], "Sqrt")) return MTMI_OK;
    int x = g->nodes[sub].in[0], mean = g->nodes[sub].in[1];
    int rm1 = prod(g, mean);
    if (rm1 < 0 || !is_op(&g->nodes[rm1], "ReduceMean") || g->nodes[rm1].in[0] != x) return MTMI_OK;
    const mt_value *xv = &g->values[x];
    if (xv->dtype != MTMI_FLOAT || xv->rank < 1) return MTMI_OK;
    int r = xv->rank, ax1[MT_MAX_RANK], ax2[MT_MAX_RANK];
    int na = reduce_axes(g, &g->nodes[rm1], r, ax1);
    if (na < 1 || !mt_attr_int(&g->nodes[rm1], "keepdims", 1)) return MTMI_OK;
    for (int i = 0; i < na; i++)
        if (ax1[i] != r - na + i) return MTMI_OK; /* trailing axes only */
    int add = prod(g, g->nodes[sq].in[0]);
    if (add < 0 || !is_op(&g->nodes[add], "Add")) return MTMI_OK;
    float eps;
    int vi = scalar_operand(g, &g->nodes[add], &eps);
    if (vi < 0 || !(eps >= 0)) return MTMI_OK;
    int var = g->nodes[add].in[vi];
    int rm2 = prod(g, var);
    if (rm2 < 0 || !is_op(&g->nodes[rm2], "ReduceMean") || !mt_attr_int(&g->nodes[rm2], "keepdims", 1)) return MTMI_OK;
    if (reduce_axes(g, &g->nodes[rm2], r, ax2) != na || memcmp(ax1, ax2, sizeof(int) * na)) return MTMI_OK;
    int p = g->nodes[rm2].in[0];
    int pw = prod(g, p);
    if (pw < 0) return MTMI_OK;
    const mt_node *pn = &g->nodes[pw];
    float two;
    if (is_op(pn, "Pow")) {
        if (pn->in[0] != d || !const_scalar(g, pn->in[1], &two) || two != 2.0f) return MTMI_OK;
    } else if (is_op(pn, "Mul")) {
        if (pn->nin != 2 || pn->in[0] != d || pn->in[1] != d) return MTMI_OK;
    } else
        return MTMI_OK;
    if (sole_consumer(g, mean) != sub || !only_read_by(g, d, pw, di) || sole_consumer(g, p) != rm2 ||
        sole_consumer(g, var) != add || sole_consumer(g, g->nodes[add].out[0]) != sq || sole_consumer(g, s) != di)
        return MTMI_OK;
    int64_t nd[MT_MAX_RANK], nnorm = 1;
    for (int i = 0; i < na; i++) nnorm *= (nd[i] = xv->dims[r - na + i]);
    if (nnorm <= 0) return MTMI_OK;
    /* optional affine: Mul by gamma, then Add beta, each matching the
     * normalized shape after dropping leading 1s */
    int last = di, mul = -1, badd = -1, gamma = -1, beta = -1;
    int c = sole_consumer(g, dv->out[0]);
    if (c >= 0 && is_op(&g->nodes[c], "Mul") && g->nodes[c].nin == 2) {
        const mt_node *m = &g->nodes[c];
        int o = m->in[0] == dv->out[0] ? m->in[1] : m->in[0];
        if (is_float_const(g, o) && mt_value_numel(&g->values[o]) == nnorm && g->values[o].rank <= r) {
            mul = c;
            gamma = o;
            last = c;
            int c2 = sole_consumer(g, m->out[0]);
            if (c2 >= 0 && is_op(&g->nodes[c2], "Add") && g->nodes[c2].nin == 2) {
                const mt_node *a = &g->nodes[c2];
                int o2 = a->in[0] == m->out[0] ? a->in[1] : a->in[0];
                if (is_float_const(g, o2) && mt_value_numel(&g->values[o2]) == nnorm && g->values[o2].rank <= r) {
                    badd = c2;
                    beta = o2;
                    last = c2;
                }
            }
        }
    }
    /* check that gamma/beta have the normalized shape up to leading 1s */
    int cand[2] = {gamma, beta};
    for (int k = 0; k < 2; k++) {
        if (cand[k] < 0) continue;
        const mt_value *t = &g->values[cand[k]];
        int tr = t->rank, off = 0;
        while (off < tr && t->dims[off] == 1 && tr - off > na) off++;
        if (tr - off > na) return MTMI_OK;
        for (int i = 0; i < tr - off; i++)
            if (t->dims[off + i] != nd[na - (tr - off) + i]) return MTMI_OK;
    }
    if (!mt_op_find("", "LayerNormalization")) return MTMI_OK;
    /* LayerNormalization wants Scale/B of exactly the normalized shape */
    int ng = -1, nb = -1;
    char base[64];
    snprintf(base, sizeof base, "ln_gamma");
    if (gamma < 0) {
        ng = new_const(g, base, na, nd, NULL);
        if (ng < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
        float *gd = g->values[ng].data;
        for (int64_t i = 0; i < nnorm; i++) gd[i] = 1.0f;
    } else if (g->values[gamma].rank != na || memcmp(g->values[gamma].dims, nd, sizeof(int64_t) * na)) {
        ng = new_const(g, base, na, nd, g->values[gamma].data);
        if (ng < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    } else
        ng = gamma;
    if (beta >= 0) {
        if (g->values[beta].rank != na || memcmp(g->values[beta].dims, nd, sizeof(int64_t) * na)) {
            nb = new_const(g, "ln_beta", na, nd, g->values[beta].data);
            if (nb < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
        } else
            nb = beta;
    }
    int ins[3] = {x, ng, nb};
    mtmi_status st = rewrite(g, last, "", "LayerNormalization", ins, nb >= 0 ? 3 : 2, -1);
    if (st) return st;
    mt_node_set_int(&g->nodes[last], "axis", r - na);
    mt_node_set_float(&g->nodes[last], "epsilon", eps);
    int dead[] = {rm1, sub, pw, rm2, add, sq, di, mul, badd};
    for (size_t k = 0; k < MT_ARRAY_LEN(dead); k++)
        if (dead[k] >= 0 && dead[k] != last) g->nodes[dead[k]].dead = 1;
    *hit = 1;
    return MTMI_OK;
}

/* ----------------------------------------------------------------- GELU */
/* x / sqrt2 (or x * 1/sqrt2) -> Erf -> Add 1 -> then the products with x and
 * 0.5 in any grouping: (x*(1+e))*0.5, x*((1+e)*0.5), (x*0.5)*(1+e). */
static mtmi_status fuse_gelu(mt_graph *g, int ei, int *hit) {
    const mt_node *erf = &g->nodes[ei];
    if (!is_op(erf, "Erf") || erf->nin != 1) return MTMI_OK;
    int pre = prod(g, erf->in[0]);
    if (pre < 0 || sole_consumer(g, erf->in[0]) != ei) return MTMI_OK;
    float c;
    int xi = scalar_operand(g, &g->nodes[pre], &c);
    if (xi < 0) return MTMI_OK;
    if (is_op(&g->nodes[pre], "Div")) {
        if (xi != 0 || !near(c, 1.41421356f, 1e-4f)) return MTMI_OK;
    } else if (is_op(&g->nodes[pre], "Mul")) {
        if (!near(c, 0.70710678f, 1e-4f)) return MTMI_OK;
    } else
        return MTMI_OK;
    int x = g->nodes[pre].in[xi];
    if (g->values[x].dtype != MTMI_FLOAT) return MTMI_OK;
    int add = sole_consumer(g, erf->out[0]);
    if (add < 0 || !is_op(&g->nodes[add], "Add")) return MTMI_OK;
    if (scalar_operand(g, &g->nodes[add], &c) < 0 || c != 1.0f) return MTMI_OK;
    int m1 = sole_consumer(g, g->nodes[add].out[0]);
    if (m1 < 0 || !is_op(&g->nodes[m1], "Mul") || g->nodes[m1].nin != 2) return MTMI_OK;
    const mt_node *mn = &g->nodes[m1];
    int other = mn->in[0] == g->nodes[add].out[0] ? mn->in[1] : mn->in[0];
    int last = -1, extra = -1;
    if (other == x || const_scalar(g, other, &c)) {
        if (other != x && c != 0.5f) return MTMI_OK;
        int m2 = sole_consumer(g, mn->out[0]);
        if (m2 < 0 || !is_op(&g->nodes[m2], "Mul") || g->nodes[m2].nin != 2) return MTMI_OK;
        const mt_node *n2 = &g->nodes[m2];
        int o2 = n2->in[0] == mn->out[0] ? n2->in[1] : n2->in[0];
        if (other == x) {
            if (!const_scalar(g, o2, &c) || c != 0.5f) return MTMI_OK;
        } else if (o2 != x)
            return MTMI_OK;
        last = m2;
    } else {
        int h = prod(g, other);
        if (h < 0 || !is_op(&g->nodes[h], "Mul") || sole_consumer(g, other) != m1) return MTMI_OK;
        int hx = scalar_operand(g, &g->nodes[h], &c);
        if (hx < 0 || c != 0.5f || g->nodes[h].in[hx] != x) return MTMI_OK;
        last = m1;
        extra = h;
    }
    /* the result must have x's shape (no broadcasting from the constants) */
    const mt_value *y = &g->values[g->nodes[last].out[0]], *xv = &g->values[x];
    if (y->rank != xv->rank || memcmp(y->dims, xv->dims, sizeof(int64_t) * xv->rank)) return MTMI_OK;
    mtmi_status st = rewrite(g, last, "mtmi", "Gelu", &x, 1, -1);
    if (st) return st;
    int dead[] = {pre, ei, add, m1, extra};
    for (size_t k = 0; k < MT_ARRAY_LEN(dead); k++)
        if (dead[k] >= 0 && dead[k] != last) g->nodes[dead[k]].dead = 1;
    *hit = 1;
    return MTMI_OK;
}

/* ------------------------------------------------------------ Attention */
/* MatMul(Q, Transpose(K, swap last two)) -> [Mul|Div scale] -> Softmax(-1)
 * -> MatMul(., V), all rank 4, anchored at the Softmax. */
static mtmi_status fuse_attention(mt_graph *g, int si, int *hit) {
    const mt_node *sm = &g->nodes[si];
    if (!is_op(sm, "Softmax") || sm->nin != 1) return MTMI_OK;
    const mt_value *sv = &g->values[sm->in[0]];
    if (sv->rank != 4 || sv->dtype != MTMI_FLOAT) return MTMI_OK;
    int64_t axis = mt_attr_int(sm, "axis", g->opset >= 13 ? -1 : 1);
    if (mt_norm_axis(axis, 4) != 3) return MTMI_OK; /* before 13 axis 3 of rank 4 is the same */
    int sc = prod(g, sm->in[0]), mm = -1, scale_node = -1;
    float scale = 1.0f, c;
    if (sc < 0 || sole_consumer(g, sm->in[0]) != si) return MTMI_OK;
    if (is_op(&g->nodes[sc], "MatMul")) mm = sc;
    else {
        int k = scalar_operand(g, &g->nodes[sc], &c);
        if (k < 0) return MTMI_OK;
        if (is_op(&g->nodes[sc], "Mul")) scale = c;
        else if (is_op(&g->nodes[sc], "Div") && k == 0 && c != 0) scale = 1.0f / c;
        else return MTMI_OK;
        scale_node = sc;
        mm = prod(g, g->nodes[sc].in[k]);
        if (mm < 0 || !is_op(&g->nodes[mm], "MatMul") || sole_consumer(g, g->nodes[sc].in[k]) != sc) return MTMI_OK;
    }
    int q = g->nodes[mm].in[0], kt = g->nodes[mm].in[1];
    int tr = prod(g, kt);
    if (tr < 0 || !is_op(&g->nodes[tr], "Transpose") || sole_consumer(g, kt) != mm) return MTMI_OK;
    const int64_t *perm;
    if (mt_attr_ints(&g->nodes[tr], "perm", &perm) != 4 || perm[0] != 0 || perm[1] != 1 || perm[2] != 3 || perm[3] != 2)
        return MTMI_OK;
    int k = g->nodes[tr].in[0];
    int pv = sole_consumer(g, sm->out[0]);
    if (pv < 0 || !is_op(&g->nodes[pv], "MatMul") || g->nodes[pv].in[0] != sm->out[0] || g->nodes[pv].in[1] == sm->out[0])
        return MTMI_OK;
    int v = g->nodes[pv].in[1];
    const mt_value *Q = &g->values[q], *K = &g->values[k], *V = &g->values[v];
    if (Q->rank != 4 || K->rank != 4 || V->rank != 4 || !mt_value_shape_known(Q) || !mt_value_shape_known(K) ||
        !mt_value_shape_known(V))
        return MTMI_OK;
    if (Q->dtype != MTMI_FLOAT || K->dtype != MTMI_FLOAT || V->dtype != MTMI_FLOAT) return MTMI_OK;
    for (int i = 0; i < 2; i++)
        if (Q->dims[i] != K->dims[i] || Q->dims[i] != V->dims[i]) return MTMI_OK; /* no broadcasting */
    if (Q->dims[3] != K->dims[3] || K->dims[2] != V->dims[2]) return MTMI_OK;
    int ins[3] = {q, k, v};
    mtmi_status st = rewrite(g, pv, "mtmi", "Attention", ins, 3, -1);
    if (st) return st;
    mt_node_set_float(&g->nodes[pv], "scale", scale);
    g->nodes[tr].dead = g->nodes[mm].dead = g->nodes[si].dead = 1;
    if (scale_node >= 0) g->nodes[scale_node].dead = 1;
    *hit = 1;
    return MTMI_OK;
}

/* --------------------------------------------------------------- Linear */
/* Whether constant b is a bias of width n for an output of rank r: all dims
 * 1 except the last, which is n. */
static int is_bias(const mt_graph *g, int b, int64_t n, int r) {
    if (!is_float_const(g, b)) return 0;
    const mt_value *t = &g->values[b];
    if (t->rank < 1 || t->rank > r || t->dims[t->rank - 1] != n) return 0;
    for (int i = 0; i < t->rank - 1; i++)
        if (t->dims[i] != 1) return 0;
    return 1;
}

static mtmi_status fuse_matmul_add(mt_graph *g, int mi, int *hit) {
    const mt_node *mm = &g->nodes[mi];
    if (!is_op(mm, "MatMul") || mm->nin != 2) return MTMI_OK;
    int x = mm->in[0], w = mm->in[1];
    if (!is_float_const(g, w) || g->values[w].rank != 2 || g->values[x].rank < 2 || g->values[x].dtype != MTMI_FLOAT ||
        g->values[x].data)
        return MTMI_OK;
    int64_t n = g->values[w].dims[1];
    int r = g->values[mm->out[0]].rank;
    int a = sole_consumer(g, mm->out[0]), b = -1, last = mi;
    if (a >= 0 && is_op(&g->nodes[a], "Add") && g->nodes[a].nin == 2) {
        const mt_node *an = &g->nodes[a];
        int o = an->in[0] == mm->out[0] ? an->in[1] : an->in[0];
        if (o != mm->out[0] && is_bias(g, o, n, r)) {
            b = o;
            last = a;
        }
    }
    if (b >= 0 && g->values[b].rank != 1) {
        b = new_const(g, "linear_b", 1, &n, g->values[b].data);
        if (b < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    int ins[3] = {x, w, b};
    mtmi_status st = rewrite(g, last, "mtmi", "Linear", ins, b >= 0 ? 3 : 2, -1);
    if (st) return st;
    mt_node_set_string(&g->nodes[last], "activation", "");
    if (last != mi) g->nodes[mi].dead = 1;
    *hit = 1;
    return MTMI_OK;
}

static mtmi_status fuse_gemm(mt_graph *g, int gi, int *hit) {
    const mt_node *gm = &g->nodes[gi];
    if (!is_op(gm, "Gemm") || gm->nin < 2) return MTMI_OK;
    int x = gm->in[0], w = gm->in[1], c = gm->nin > 2 ? gm->in[2] : -1;
    if (mt_attr_int(gm, "transA", 0) || g->values[x].rank != 2 || !is_float_const(g, w) || g->values[w].rank != 2)
        return MTMI_OK;
    int tb = (int)mt_attr_int(gm, "transB", 0);
    float alpha = mt_attr_float(gm, "alpha", 1.0f), beta = mt_attr_float(gm, "beta", 1.0f);
    int64_t kk = g->values[w].dims[tb ? 1 : 0], n = g->values[w].dims[tb ? 0 : 1];
    float cs = 0;
    if (c >= 0 && !const_scalar(g, c, &cs) && !is_bias(g, c, n, 2)) return MTMI_OK;
    int nw = w, nb = -1;
    if (tb || alpha != 1.0f) {
        int64_t d[2] = {kk, n};
        nw = new_const(g, "linear_w", 2, d, NULL);
        if (nw < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
        const float *W = g->values[w].data;
        float *NW = g->values[nw].data;
        for (int64_t i = 0; i < kk; i++)
            for (int64_t j = 0; j < n; j++) NW[i * n + j] = alpha * (tb ? W[j * kk + i] : W[i * n + j]);
    }
    if (c >= 0 && beta != 0.0f) {
        nb = new_const(g, "linear_b", 1, &n, NULL);
        if (nb < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
        const mt_value *cv = &g->values[c];
        float *B = g->values[nb].data;
        for (int64_t j = 0; j < n; j++) B[j] = beta * (mt_value_numel(cv) == 1 ? cs : ((const float *)cv->data)[j]);
    }
    int ins[3] = {x, nw, nb};
    mtmi_status st = rewrite(g, gi, "mtmi", "Linear", ins, nb >= 0 ? 3 : 2, -1);
    if (st) return st;
    mt_node_set_string(&g->nodes[gi], "activation", "");
    *hit = 1;
    return MTMI_OK;
}

/* ------------------------------------------------- Conv/Linear + activation */
static mtmi_status fuse_activation(mt_graph *g, int ai, int *hit) {
    const mt_node *an = &g->nodes[ai];
    const char *act = NULL;
    if (is_op(an, "Relu")) act = "Relu";
    else if (is_op(an, "Sigmoid")) act = "Sigmoid";
    else if (is_mtmi(an, "Gelu")) act = "Gelu";
    if (!act || an->nin != 1) return MTMI_OK;
    int pi = prod(g, an->in[0]);
    if (pi < 0 || sole_consumer(g, an->in[0]) != ai) return MTMI_OK;
    mt_node *pn = &g->nodes[pi];
    int out = an->out[0];
    if (is_op(pn, "Conv")) {
        if (!mt_op_find("mtmi", "FusedConv")) return MTMI_OK;
        /* keep the Conv attributes, rename the op */
        if (set_str(&pn->op, "FusedConv") || set_str(&pn->domain, "mtmi")) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    } else if (is_mtmi(pn, "Linear") || is_mtmi(pn, "FusedConv")) {
        if (strcmp(mt_attr_string(pn, "activation", ""), "")) return MTMI_OK;
    } else
        return MTMI_OK;
    mt_node_set_string(pn, "activation", act);
    pn->out[0] = out;
    g->values[out].producer = pi;
    g->nodes[ai].dead = 1;
    *hit = 1;
    return MTMI_OK;
}

/* An activation separated from its Conv only by Reshape/Transpose (MiT's
 * token <-> image layout changes around the depthwise conv) commutes with
 * them: apply it in the Conv and let the last layout node produce the
 * activation's output value. */
static mtmi_status fuse_activation_through_layout(mt_graph *g, int ai, int *hit) {
    const mt_node *an = &g->nodes[ai];
    const char *act = NULL;
    if (is_op(an, "Relu")) act = "Relu";
    else if (is_op(an, "Sigmoid")) act = "Sigmoid";
    else if (is_mtmi(an, "Gelu")) act = "Gelu";
    if (!act || an->nin != 1 || !mt_op_find("mtmi", "FusedConv")) return MTMI_OK;
    int chain[8], nchain = 0, v = an->in[0], consumer = ai;
    for (;;) {
        int p = prod(g, v);
        if (p < 0 || sole_consumer(g, v) != consumer) return MTMI_OK;
        const mt_node *pn = &g->nodes[p];
        if (is_op(pn, "Transpose") || is_op(pn, "Reshape")) {
            if (nchain == (int)MT_ARRAY_LEN(chain)) return MTMI_OK;
            chain[nchain++] = p;
            consumer = p;
            v = pn->in[0];
            continue;
        }
        if (nchain == 0) return MTMI_OK; /* direct: fuse_activation's case */
        if (is_op(pn, "Conv") || (is_mtmi(pn, "FusedConv") && !mt_attr_string(pn, "activation", "")[0])) {
            mt_node *cn = &g->nodes[p];
            if (set_str(&cn->op, "FusedConv") || set_str(&cn->domain, "mtmi")) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
            mt_node_set_string(cn, "activation", act);
            break;
        }
        return MTMI_OK;
    }
    int out = g->nodes[ai].out[0];
    g->nodes[chain[0]].out[0] = out;
    g->values[out].producer = chain[0];
    g->nodes[ai].dead = 1;
    *hit = 1;
    return MTMI_OK;
}

/* Rewrites node i as a Reshape of its input 0 to dims (a new constant). */
static mtmi_status rewrite_as_reshape(mt_graph *g, int i, int64_t rank, const int64_t *dims, int *hit) {
    int sv = mt_graph_add_value_unique(g, "reshape_shape");
    if (sv < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    mt_value *s = &g->values[sv];
    mt_value_set_shape(s, MTMI_INT64, 1, &rank);
    s->data = mt_alloc(sizeof(int64_t) * rank);
    if (!s->data) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    memcpy(s->data, dims, sizeof(int64_t) * rank);
    int ins[2] = {g->nodes[i].in[0], sv};
    mtmi_status st = rewrite(g, i, "", "Reshape", ins, 2, -1);
    if (st) return st;
    *hit = 1;
    return MTMI_OK;
}

/* A Transpose that only moves axes of size 1 keeps the element order: make
 * it a Reshape, which the executor runs as an alias (no copy).  Attention
 * heads of 1 (MiT stage 1, the largest tensors) hit this. */
static mtmi_status transpose_to_reshape(mt_graph *g, int ti, int *hit) {
    const mt_node *tn = &g->nodes[ti];
    if (!is_op(tn, "Transpose") || tn->nin != 1 || !mt_op_find("", "Reshape")) return MTMI_OK;
    const mt_value *x = &g->values[tn->in[0]];
    const int64_t *perm;
    int np = mt_attr_ints(tn, "perm", &perm);
    if (!mt_value_shape_known(x) || x->data || np != x->rank) return MTMI_OK;
    int last = -1;
    for (int i = 0; i < np; i++) {
        if (perm[i] < 0 || perm[i] >= x->rank) return MTMI_OK;
        if (x->dims[perm[i]] == 1) continue;
        if (perm[i] < last) return MTMI_OK;
        last = (int)perm[i];
    }
    int64_t rank = x->rank, dims[MT_MAX_RANK];
    for (int i = 0; i < np; i++) dims[i] = x->dims[perm[i]];
    return rewrite_as_reshape(g, ti, rank, dims, hit);
}

/* A Resize whose output has its input's shape samples every input pixel at
 * its own position in all modes but tf_crop_and_resize (the interpolation
 * kernels are 1 at offset 0 and 0 at the other integers): an alias Reshape.
 * The seg head resizes its first feature "to 256x256" that way. */
static mtmi_status resize_identity(mt_graph *g, int ri, int *hit) {
    const mt_node *rn = &g->nodes[ri];
    if (!is_op(rn, "Resize") || !mt_op_find("", "Reshape")) return MTMI_OK;
    if (!strcmp(mt_attr_string(rn, "coordinate_transformation_mode", "half_pixel"), "tf_crop_and_resize")) return MTMI_OK;
    const mt_value *x = &g->values[rn->in[0]], *y = &g->values[rn->out[0]];
    if (!mt_value_shape_known(x) || x->data || y->rank != x->rank || memcmp(x->dims, y->dims, sizeof(int64_t) * x->rank))
        return MTMI_OK;
    int64_t rank = x->rank, dims[MT_MAX_RANK];
    memcpy(dims, x->dims, sizeof(int64_t) * rank);
    return rewrite_as_reshape(g, ri, rank, dims, hit);
}

/* A 1x1 Conv over Concat(channels) of upsampled features (the seg head:
 * per-feature 128-channel maps resized to 1/4 scale, concatenated, fused by
 * a 1x1 conv) is a sum of per-input 1x1 convs, and a 1x1 conv commutes with
 * Resize (Resize mixes pixels of one channel, the conv channels of one
 * pixel; both are linear).  So each upsampled input is convolved at its low
 * resolution and then resized, the bias rides on the first branch, the
 * branches are added and the activation comes last:
 *   act(W [R0(x0); R1(x1); ...] + b) = act(b + sum_i R_i(W_i x_i)).
 * Only where that is cheaper: Cout <= C_i for every resized branch. */
static int is_plain_1x1(const mt_graph *g, const mt_node *n) {
    const int64_t *v;
    int k;
    if (mt_attr_int(n, "group", 1) != 1) return 0;
    if (strcmp(mt_attr_string(n, "auto_pad", "NOTSET"), "NOTSET")) return 0;
    if ((k = mt_attr_ints(n, "strides", &v)) > 0)
        for (int i = 0; i < k; i++)
            if (v[i] != 1) return 0;
    if ((k = mt_attr_ints(n, "dilations", &v)) > 0)
        for (int i = 0; i < k; i++)
            if (v[i] != 1) return 0;
    if ((k = mt_attr_ints(n, "pads", &v)) > 0)
        for (int i = 0; i < k; i++)
            if (v[i] != 0) return 0;
    int w = n->in[1];
    return is_float_const(g, w) && g->values[w].rank == 4 && g->values[w].dims[2] == 1 && g->values[w].dims[3] == 1;
}

static mtmi_status conv_through_concat_resize(mt_graph *g, int ci, int *hit) {
    const mt_node *cn = &g->nodes[ci];
    const char *act = "";
    if (is_mtmi(cn, "FusedConv")) act = mt_attr_string(cn, "activation", "");
    else if (!is_op(cn, "Conv")) return MTMI_OK;
    if (cn->nin < 2 || !is_plain_1x1(g, cn) || (cn->nin > 2 && cn->in[2] >= 0 && !is_float_const(g, cn->in[2]))) return MTMI_OK;
    if (!mt_op_find("", "Add") || (act[0] && strcmp(act, "Gelu") && !mt_op_find("", act))) return MTMI_OK;
    int cat = prod(g, cn->in[0]);
    if (cat < 0 || !is_op(&g->nodes[cat], "Concat") || sole_consumer(g, cn->in[0]) != ci) return MTMI_OK;
    const mt_value *cv = &g->values[cn->in[0]];
    if (cv->rank != 4 || mt_norm_axis(mt_attr_int(&g->nodes[cat], "axis", 0), 4) != 1) return MTMI_OK;
    const int64_t cout = g->values[cn->in[1]].dims[0];
    int nb = g->nodes[cat].nin, resized = 0;
    if (nb < 2 || nb > 16) return MTMI_OK;
    int src[16], rz[16];
    int64_t cin[16], off = 0;
    for (int i = 0; i < nb; i++) {
        int v = g->nodes[cat].in[i];
        if (v < 0 || g->values[v].rank != 4) return MTMI_OK;
        cin[i] = g->values[v].dims[1];
        src[i] = v;
        rz[i] = -1;
        int r = prod(g, v);
        if (r >= 0 && is_op(&g->nodes[r], "Resize") && sole_consumer(g, v) == cat && cout <= cin[i]) {
            const mt_node *rn = &g->nodes[r];
            const mt_value *x = &g->values[rn->in[0]];
            int has_sizes = rn->nin > 3 && rn->in[3] >= 0;
            float sc[4];
            if (strcmp(mt_attr_string(rn, "coordinate_transformation_mode", "half_pixel"), "tf_crop_and_resize") &&
                mt_value_shape_known(x) && !x->data && x->rank == 4 && x->dims[0] == cv->dims[0] &&
                x->dims[2] * x->dims[3] < cv->dims[2] * cv->dims[3] &&
                (has_sizes ? g->values[rn->in[3]].data && g->values[rn->in[3]].dtype == MTMI_INT64 &&
                                 mt_value_numel(&g->values[rn->in[3]]) == 4
                           : (rn->nin > 2 && mt_const_floats(g, rn, 2, sc, 4) == 4 && sc[0] == 1.0f && sc[1] == 1.0f))) {
                rz[i] = r;
                src[i] = rn->in[0];
                resized++;
            }
            mt_clear_error(); /* a failed mt_const_floats probe is no error */
        }
        off += cin[i];
    }
    if (!resized || off != g->values[cn->in[1]].dims[1]) return MTMI_OK;
    /* build the branches */
    int wv = cn->in[1], bv = cn->nin > 2 ? cn->in[2] : -1, out = cn->out[0];
    const int64_t ctot = off;
    int sum = -1;
    off = 0;
    for (int i = 0; i < nb; i++) {
        int64_t wd[4] = {cout, cin[i], 1, 1};
        int wi = new_const(g, "split_w", 4, wd, NULL);
        if (wi < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
        const float *W = g->values[wv].data;
        float *Wi = g->values[wi].data;
        for (int64_t o = 0; o < cout; o++) memcpy(Wi + o * cin[i], W + o * ctot + off, sizeof(float) * cin[i]);
        off += cin[i];
        int t = mt_graph_add_value_unique(g, "branch");
        if (t < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
        int ins[3] = {src[i], wi, bv};
        char name[256];
        snprintf(name, sizeof name, "%s/branch%d", g->nodes[ci].name, i);
        int ni = mt_graph_add_node(g, "Conv", name, ins, i == 0 && bv >= 0 ? 3 : 2, &t, 1);
        if (ni < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
        int64_t ks[2] = {1, 1};
        mt_node_set_ints(&g->nodes[ni], "kernel_shape", ks, 2);
        int bo = t;
        if (rz[i] >= 0) {
            mt_node *rn = &g->nodes[rz[i]];
            rn->in[0] = t;
            if (rn->nin > 3 && rn->in[3] >= 0) { /* sizes name the channel count */
                int64_t n4 = 4, nsz[4];
                const mt_value *sv = &g->values[rn->in[3]]; /* int64 x4, checked above */
                memcpy(nsz, sv->data, sizeof nsz);
                nsz[1] = cout;
                int nsv = mt_graph_add_value_unique(g, "resize_sizes");
                if (nsv < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
                mt_value *ns = &g->values[nsv];
                mt_value_set_shape(ns, MTMI_INT64, 1, &n4);
                if (!(ns->data = mt_alloc(sizeof nsz))) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
                memcpy(ns->data, nsz, sizeof nsz);
                g->nodes[rz[i]].in[3] = nsv;
            }
            /* The resize now carries the branch's cout channels, not the
             * concat input it made before: a new name, so that no name
             * means two tensors (a calibration cache's scale for the old
             * one must never apply to this one). */
            char nm[300];
            snprintf(nm, sizeof nm, "%s/split", g->values[g->nodes[rz[i]].out[0]].name);
            const int old_out = g->nodes[rz[i]].out[0], nv = mt_graph_add_value_unique(g, nm);
            if (nv < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
            g->nodes[rz[i]].out[0] = nv;
            g->values[nv].producer = rz[i];
            g->values[old_out].producer = -1;
            bo = nv;
        }
        if (sum < 0) {
            sum = bo;
            continue;
        }
        int last = i == nb - 1 && !act[0];
        int s2 = last ? out : mt_graph_add_value_unique(g, "branch_sum");
        if (s2 < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
        int ains[2] = {sum, bo};
        snprintf(name, sizeof name, "%s/sum%d", g->nodes[ci].name, i);
        if (last) {
            mtmi_status st = rewrite(g, ci, "", "Add", ains, 2, -1);
            if (st) return st;
        } else if (mt_graph_add_node(g, "Add", name, ains, 2, &s2, 1) < 0)
            return mt_fail(MTMI_ERR_NOMEM, "out of memory");
        sum = s2;
    }
    if (act[0]) {
        char a[16];
        snprintf(a, sizeof a, "%s", act); /* act points into the node rewritten here */
        mtmi_status st = rewrite(g, ci, strcmp(a, "Gelu") ? "" : "mtmi", a, &sum, 1, -1);
        if (st) return st;
    }
    g->nodes[cat].dead = 1;
    *hit = 1;
    return MTMI_OK;
}

/* ---------------------------------------------------------------- driver */
typedef mtmi_status (*pattern_fn)(mt_graph *g, int node, int *hit);

static mtmi_status run_pattern(mt_graph *g, const mt_tuning *t, const char *name, pattern_fn fn) {
    if (fuse_disabled(t, name)) return MTMI_OK;
    /* nodes appended by a rewrite are never anchors of the same pattern */
    int n = g->nnodes;
    for (int i = 0; i < n; i++) {
        if (g->nodes[i].dead) continue;
        int hit = 0;
        mtmi_status s = fn(g, i, &hit);
        if (s) return s;
    }
    return MTMI_OK;
}

mtmi_status mt_pass_fuse(mt_graph *g, const mt_tuning *t) {
    if (!t) t = mt_tuning_default();
    mtmi_status s = MTMI_OK;
    if (!s) s = run_pattern(g, t, "bn", fuse_conv_bn);
    if (!s) s = run_pattern(g, t, "ln", fuse_layernorm);
    if (!s) s = run_pattern(g, t, "gelu", fuse_gelu);
    if (!s) s = run_pattern(g, t, "attn", fuse_attention);
    if (!s && mt_op_find("mtmi", "Linear")) {
        if (!fuse_disabled(t, "linear")) {
            s = run_pattern(g, t, "linear", fuse_matmul_add);
            if (!s) s = run_pattern(g, t, "linear", fuse_gemm);
        }
    }
    if (!s) s = run_pattern(g, t, "act", fuse_activation);
    if (!s) s = run_pattern(g, t, "actlayout", fuse_activation_through_layout);
    if (!s) s = run_pattern(g, t, "layout", transpose_to_reshape);
    if (!s) s = run_pattern(g, t, "layout", resize_identity);
    /* Off unless asked for (tuning.fuse_concat, MTMI_FUSE_CONCAT=1): it
     * trades one conv and a Concat for several convs and Adds, which runs
     * faster on the CPU but makes a larger graph for `simplify`/`split`;
     * the INT8 paths specialize without it (tuning.h). */
    if (!s && t->fuse_concat) s = run_pattern(g, t, "concat", conv_through_concat_resize);
    if (!s) s = mt_graph_compact(g);
    return s;
}
