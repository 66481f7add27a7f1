/* Shape inference with constant folding, the op registry and the
 * optimization driver. */
#include "graph/ops.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const mt_op_schema *const g_tables[] = {
    mt_schemas_elementwise,
    mt_schemas_shape,
    mt_schemas_nn,
    mt_schemas_fused,
    mt_schemas_quant,
};

const mt_op_schema *mt_op_find(const char *domain, const char *op) {
    if (!domain) domain = "";
    if (!strcmp(domain, "ai.onnx")) domain = "";
    for (size_t t = 0; t < MT_ARRAY_LEN(g_tables); t++)
        for (const mt_op_schema *s = g_tables[t]; s->op; s++)
            if (!strcmp(s->op, op) && !strcmp(s->domain ? s->domain : "", domain)) return s;
    return NULL;
}

mtmi_status mt_node_fail(mt_graph *g, const mt_node *n, mtmi_status s, const char *fmt, ...) {
    char msg[512], desc[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mt_fail(s, "%s%s%s: %s", g->path ? g->path : "", g->path ? ": " : "", mt_node_desc(g, n, desc, sizeof desc), msg);
}

mtmi_status mt_check_inputs(mt_graph *g, const mt_node *n, int lo, int hi) {
    int cnt = n->nin;
    while (cnt > 0 && n->in[cnt - 1] < 0) cnt--;
    if (cnt < lo || cnt > hi)
        return mt_node_fail(g, n, MTMI_ERR_PARSE, "expects %d to %d inputs, has %d", lo, hi, cnt);
    for (int i = 0; i < lo; i++)
        if (n->in[i] < 0) return mt_node_fail(g, n, MTMI_ERR_PARSE, "required input %d is missing", i);
    return MTMI_OK;
}

int mt_norm_axis(int64_t axis, int rank) {
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= (rank ? rank : 1)) return -1;
    return (int)axis;
}

mtmi_status mt_broadcast_shape(mt_graph *g, const mt_node *n, int ra, const int64_t *da, int rb,
                               const int64_t *db, int *rout, int64_t *dout) {
    int r = ra > rb ? ra : rb;
    for (int i = 0; i < r; i++) {
        int64_t a = i - (r - ra) >= 0 ? da[i - (r - ra)] : 1;
        int64_t b = i - (r - rb) >= 0 ? db[i - (r - rb)] : 1;
        if (a == b || b == 1) dout[i] = a;
        else if (a == 1) dout[i] = b;
        else {
            char sa[128], sb[128];
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "shapes %s and %s do not broadcast",
                                mt_shape_str(ra, da, sa, sizeof sa), mt_shape_str(rb, db, sb, sizeof sb));
        }
    }
    *rout = r;
    return MTMI_OK;
}

int mt_const_ints(mt_graph *g, const mt_node *n, int input, int64_t *v, int cap) {
    mt_value *x = mt_in(g, n, input);
    if (!x || !x->data) {
        mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "input %d ('%s') must be a constant (shape computations must fold)", input, x ? x->name : "");
        return -1;
    }
    int64_t cnt = mt_value_numel(x);
    if (cnt > cap) {
        mt_node_fail(g, n, MTMI_ERR_SHAPE, "input %d has %lld values, at most %d expected", input, (long long)cnt, cap);
        return -1;
    }
    for (int64_t i = 0; i < cnt; i++) {
        if (x->dtype == MTMI_INT64) v[i] = ((int64_t *)x->data)[i];
        else if (x->dtype == MTMI_INT32) v[i] = ((int32_t *)x->data)[i];
        else {
            mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "input %d must be int64 or int32, is %s", input, mt_dtype_name(x->dtype));
            return -1;
        }
    }
    return (int)cnt;
}

int mt_const_floats(mt_graph *g, const mt_node *n, int input, float *v, int cap) {
    mt_value *x = mt_in(g, n, input);
    if (!x || !x->data) {
        mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "input %d ('%s') must be a constant", input, x ? x->name : "");
        return -1;
    }
    int64_t cnt = mt_value_numel(x);
    if (cnt > cap) {
        mt_node_fail(g, n, MTMI_ERR_SHAPE, "input %d has %lld values, at most %d expected", input, (long long)cnt, cap);
        return -1;
    }
    for (int64_t i = 0; i < cnt; i++) {
        if (x->dtype == MTMI_FLOAT) v[i] = ((float *)x->data)[i];
        else if (x->dtype == MTMI_DOUBLE) v[i] = (float)((double *)x->data)[i];
        else if (x->dtype == MTMI_FLOAT16) v[i] = mt_half_to_float(((uint16_t *)x->data)[i]);
        else {
            mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "input %d must be float, is %s", input, mt_dtype_name(x->dtype));
            return -1;
        }
    }
    return (int)cnt;
}

mtmi_status mt_infer_same(mt_graph *g, mt_node *n) {
    mt_value *x = mt_in(g, n, 0), *y = mt_out(g, n, 0);
    if (!x) return mt_node_fail(g, n, MTMI_ERR_PARSE, "missing input");
    if (y) mt_value_set_shape(y, x->dtype, x->rank, x->dims);
    return MTMI_OK;
}

static mtmi_status bind_inputs(mt_graph *g, const mtmi_tensor *shapes, int nshapes) {
    char a[128], b[128];
    for (int i = 0; i < g->ninputs; i++) {
        mt_value *v = &g->values[g->inputs[i]];
        if (i < nshapes && shapes[i].rank > 0) {
            const mtmi_tensor *t = &shapes[i];
            if (v->rank >= 0 && v->rank != t->rank)
                return mt_fail(MTMI_ERR_SHAPE, "input '%s' has rank %d, got a shape of rank %d (%s)", v->name, v->rank, t->rank, mt_shape_str(t->rank, t->dims, b, sizeof b));
            for (int d = 0; d < t->rank; d++) {
                if (t->dims[d] <= 0)
                    return mt_fail(MTMI_ERR_SHAPE, "input '%s': dimension %d must be positive, got %lld", v->name, d, (long long)t->dims[d]);
                if (v->rank >= 0 && v->dims[d] > 0 && v->dims[d] != t->dims[d])
                    return mt_fail(MTMI_ERR_SHAPE, "input '%s' expects shape %s, got %s (dimension %d is fixed in the model)", v->name,
                                   mt_shape_str(v->rank, v->dims, a, sizeof a), mt_shape_str(t->rank, t->dims, b, sizeof b), d);
            }
            v->rank = t->rank;
            for (int d = 0; d < t->rank; d++) v->dims[d] = t->dims[d];
        }
        if (!mt_value_shape_known(v))
            return mt_fail(MTMI_ERR_SHAPE, "input '%s' has dynamic shape %s: give a concrete shape", v->name,
                           v->rank < 0 ? "(rank unknown)" : mt_shape_str(v->rank, v->dims, a, sizeof a));
        if (!v->dtype) v->dtype = MTMI_FLOAT;
    }
    return MTMI_OK;
}

/* The fold budget of one inference: the graph's own, or the default plus
 * twice the weights it holds (so models that fold their weights, e.g.
 * DequantizeLinear of INT8 weights, fit at any size, while a small file
 * gets a small budget). */
static size_t fold_budget(const mt_graph *g) {
    if (g->fold_budget) return g->fold_budget;
    size_t w = 0;
    for (int v = 0; v < g->nvalues; v++)
        if (g->values[v].is_weight && g->values[v].data) w += mt_value_bytes(&g->values[v]);
    return MT_FOLD_BUDGET + 2 * w;
}

/* Checks that folding n (its outputs' bytes) stays within the budget and
 * counts it. */
static mtmi_status charge_fold(mt_graph *g, const mt_node *n, size_t *used, size_t budget) {
    size_t b = 0;
    for (int k = 0; k < n->nout; k++)
        if (n->out[k] >= 0) b += mt_value_bytes(&g->values[n->out[k]]);
    if (b > budget - *used) {
        char a[32], c[32], u[32];
        return mt_node_fail(g, n, MTMI_ERR_NOMEM,
                            "constant folding would create %s, over the budget of %s (%s used so far; mtmi_load_options.max_fold_bytes)",
                            mt_bytes_str((double)b, a, sizeof a), mt_bytes_str((double)budget, c, sizeof c),
                            mt_bytes_str((double)*used, u, sizeof u));
    }
    *used += b;
    return MTMI_OK;
}

mtmi_status mt_graph_infer(mt_graph *g, const mtmi_tensor *shapes, int nshapes, mt_eval_fn eval, void *eval_ctx) {
    mtmi_status s = bind_inputs(g, shapes, nshapes);
    if (s) return s;
    size_t budget = fold_budget(g), folded_bytes = 0;
    /* Intermediate shapes are recomputed from scratch. */
    for (int i = 0; i < g->nnodes; i++) {
        mt_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int k = 0; k < n->nout; k++)
            if (n->out[k] >= 0 && !g->values[n->out[k]].data) g->values[n->out[k]].rank = -1;
    }
    for (int i = 0; i < g->nnodes; i++) {
        mt_node *n = &g->nodes[i];
        if (n->dead) continue;
        const mt_op_schema *sc = mt_op_find(n->domain, n->op);
        if (!sc) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "operator not supported");
        if (sc->min_opset && g->opset < sc->min_opset)
            return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "operator supported from opset %d only", sc->min_opset);
        /* Absent outputs get an anonymous value so that every inference
         * function may write all of its outputs. */
        for (int k = 0; k < n->nout; k++)
            if (n->out[k] < 0) {
                int v = mt_graph_add_value_unique(g, "unused");
                if (v < 0) return MTMI_ERR_NOMEM;
                n = &g->nodes[i];
                n->out[k] = v;
                g->values[v].producer = i;
            }
        int all_const = 1;
        for (int k = 0; k < n->nin; k++) {
            if (n->in[k] < 0) continue;
            mt_value *v = &g->values[n->in[k]];
            if (v->rank < 0) return mt_node_fail(g, n, MTMI_ERR_INTERNAL, "input '%s' has no inferred shape", v->name);
            if (!v->data) all_const = 0;
        }
        s = sc->infer(g, n);
        if (s) return s;
        size_t cap = g->max_tensor_bytes ? g->max_tensor_bytes : ((size_t)16 << 30);
        for (int k = 0; k < n->nout; k++) {
            mt_value *o = mt_out(g, n, k);
            if (!o) continue;
            if (o->rank < 0) return mt_node_fail(g, n, MTMI_ERR_INTERNAL, "inference left output %d without a shape", k);
            /* Overflow-safe size check: corrupt shapes must fail here, not in malloc. */
            double bytes = (double)mt_dtype_size(o->dtype);
            for (int d = 0; d < o->rank; d++) {
                if (o->dims[d] < 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "output %d has a negative dimension", k);
                bytes *= (double)o->dims[d];
            }
            if (bytes > (double)cap)
                return mt_node_fail(g, n, MTMI_ERR_SHAPE, "output '%s' would take %.3g bytes, over the %zu-byte limit", o->name, bytes, cap);
        }
        /* Shape-like ops set their output data in infer; others fold here. */
        int folded = 1;
        for (int k = 0; k < n->nout; k++)
            if (n->out[k] >= 0 && !g->values[n->out[k]].data) folded = 0;
        if (!folded && all_const && eval && n->nin > 0) {
            int any_output = 0;
            for (int k = 0; k < n->nout; k++)
                if (n->out[k] >= 0 && g->values[n->out[k]].is_output) any_output = 1;
            if (!any_output) {
                if ((s = charge_fold(g, n, &folded_bytes, budget))) return s;
                s = eval(g, n, eval_ctx);
                if (s) return s;
                folded = 1;
            }
        }
        if (folded) {
            int keep = 0; /* a graph output must stay produced by a node */
            for (int k = 0; k < n->nout; k++)
                if (n->out[k] >= 0 && g->values[n->out[k]].is_output) keep = 1;
            if (!keep) n->dead = 1;
            else
                for (int k = 0; k < n->nout; k++)
                    if (n->out[k] >= 0) mt_value_free_data(&g->values[n->out[k]]);
        }
    }
    return mt_graph_compact(g);
}

mtmi_status mt_pass_dce(mt_graph *g) {
    unsigned char *live = calloc(g->nvalues + 1, 1);
    if (!live) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->noutputs; i++) live[g->outputs[i]] = 1;
    for (int i = g->nnodes - 1; i >= 0; i--) {
        mt_node *n = &g->nodes[i];
        if (n->dead) continue;
        int used = 0;
        for (int k = 0; k < n->nout; k++)
            if (n->out[k] >= 0 && live[n->out[k]]) used = 1;
        if (!used) {
            n->dead = 1;
            continue;
        }
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] >= 0) live[n->in[k]] = 1;
    }
    /* Drop the data of constants nothing uses any more. */
    for (int v = 0; v < g->nvalues; v++)
        if (!live[v] && g->values[v].data && !g->values[v].is_input) mt_value_free_data(&g->values[v]);
    free(live);
    return mt_graph_compact(g);
}

mtmi_status mt_graph_optimize(mt_graph *g, const mtmi_tensor *shapes, int nshapes, mt_eval_fn eval, void *ctx, int fuse) {
    mt_optimize_opts o = {.fuse = fuse};
    return mt_graph_optimize_ex(g, shapes, nshapes, eval, ctx, &o);
}

mtmi_status mt_graph_optimize_ex(mt_graph *g, const mtmi_tensor *shapes, int nshapes, mt_eval_fn eval, void *ctx,
                                 const mt_optimize_opts *o) {
    const int fuse = o->fuse;
    mtmi_status s = mt_graph_infer(g, shapes, nshapes, eval, ctx);
    if (!s) s = mt_pass_dce(g);
    if (!s && fuse) s = mt_pass_fuse(g, o->tuning);
    if (!s && fuse) s = mt_pass_dce(g);
    if (!s && fuse) s = mt_graph_infer(g, shapes, nshapes, eval, ctx);
    return s;
}
