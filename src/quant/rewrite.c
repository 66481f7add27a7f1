/* The graph side of quantization: choosing subgraphs, cutting a graph at
 * its shared features, and the INT8 rewrite of convolutions and linears
 * (the offline half of the arithmetic contract in quant.h). */
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/ops.h"

static int contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

int mt_quant_find_head(const mt_graph *g, const char *which) {
    int seg = !strcmp(which, "seg");
    if (!seg && strcmp(which, "depth") != 0) {
        for (int i = 0; i < g->noutputs; i++)
            if (!strcmp(g->values[g->outputs[i]].name, which)) return i;
        return -1;
    }
    /* By name first ("seg_logits", "depth"), then by channels: the seg head
     * has one channel per class, the depth head one channel. */
    for (int i = 0; i < g->noutputs; i++)
        if (contains(g->values[g->outputs[i]].name, which)) return i;
    for (int i = 0; i < g->noutputs; i++) {
        const mt_value *v = &g->values[g->outputs[i]];
        if (v->rank < 2 || v->dims[1] <= 0) continue;
        if (seg ? v->dims[1] > 1 : v->dims[1] == 1) return i;
    }
    return -1;
}

mtmi_status mt_quant_select(const mt_graph *g, const char *subgraph, unsigned char *sel) {
    int *label = malloc(sizeof(int) * (g->nnodes + 1));
    if (!label) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    mtmi_status s = mt_graph_cone_labels(g, label);
    if (s) {
        free(label);
        return s;
    }
    int want = -3; /* -3 = all, -1 = shared, -4 = every head, k = head k */
    if (!strcmp(subgraph, "all")) want = -3;
    else if (!strcmp(subgraph, "encoder")) want = -1;
    else if (!strcmp(subgraph, "heads")) want = -4;
    else {
        want = mt_quant_find_head(g, subgraph);
        if (want < 0) {
            free(label);
            return mt_fail(MTMI_ERR_ARG, "subgraph '%s': no such head (expected seg, depth, encoder, heads, all or an output name)",
                           subgraph);
        }
    }
    int any = 0;
    for (int i = 0; i < g->nnodes; i++) {
        int l = label[i];
        if (g->noutputs == 1 && l == 0 && want == -1) l = -1; /* a lone encoder: its nodes are "shared" */
        sel[i] = l != -2 && (want == -3 || (want == -4 && l >= 0) || l == want);
        any |= sel[i];
    }
    free(label);
    if (!any) return mt_fail(MTMI_ERR_ARG, "subgraph '%s' has no nodes in this model", subgraph);
    return MTMI_OK;
}

mtmi_status mt_quant_head_nodes(const mt_graph *g, unsigned char *sel) {
    int *label = malloc(sizeof(int) * (g->nnodes + 1));
    if (!label) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    mtmi_status s = mt_graph_cone_labels(g, label);
    for (int i = 0; !s && i < g->nnodes; i++) sel[i] = label[i] >= 0;
    free(label);
    return s;
}

void mt_free_names(char **names, int count) {
    if (!names) return;
    for (int i = 0; i < count; i++) free(names[i]);
    free(names);
}

mtmi_status mt_quant_cut(const mt_graph *g, char ***names, int *count) {
    *names = NULL;
    *count = 0;
    int *label = malloc(sizeof(int) * (g->nnodes + 1));
    unsigned char *cut = calloc(g->nvalues + 1, 1);
    if (!label || !cut) {
        free(label);
        free(cut);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    mtmi_status s = mt_graph_cone_labels(g, label);
    for (int i = 0; !s && i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        if (label[i] < 0) continue;
        for (int k = 0; k < n->nin; k++) {
            int v = n->in[k];
            if (v < 0 || g->values[v].data) continue;
            int p = g->values[v].producer;
            if (g->values[v].is_input || (p >= 0 && label[p] == -1)) cut[v] = 1;
        }
    }
    int cnt = 0;
    for (int v = 0; v < g->nvalues; v++) cnt += cut[v];
    char **out = calloc(cnt + 1, sizeof(char *));
    if (!s && !out) s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
    int k = 0;
    for (int v = 0; !s && v < g->nvalues; v++)
        if (cut[v] && !(out[k++] = mt_strdup(g->values[v].name))) s = MTMI_ERR_NOMEM;
    free(label);
    free(cut);
    if (s) {
        mt_free_names(out, k);
        return s;
    }
    *names = out;
    *count = cnt;
    return MTMI_OK;
}

mtmi_status mt_graph_extract(const mt_graph *src, char *const *inputs, int ninputs, char *const *outputs, int noutputs,
                             mt_graph **out) {
    *out = NULL;
    mt_graph *g = mt_graph_clone(src);
    if (!g) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    mtmi_status s = MTMI_OK;
    int *ins = malloc(sizeof(int) * (ninputs + 1)), *outs = malloc(sizeof(int) * (noutputs + 1));
    if (!ins || !outs) {
        s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < ninputs; i++)
        if ((ins[i] = mt_graph_find_value(g, inputs[i])) < 0 || g->values[ins[i]].data) {
            s = mt_fail(MTMI_ERR_ARG, "cut tensor '%s' is not an activation of the model", inputs[i]);
            goto done;
        }
    for (int i = 0; i < noutputs; i++)
        if ((outs[i] = mt_graph_find_value(g, outputs[i])) < 0) {
            s = mt_fail(MTMI_ERR_ARG, "output tensor '%s' is not in the model", outputs[i]);
            goto done;
        }
    for (int v = 0; v < g->nvalues; v++) g->values[v].is_input = g->values[v].is_output = 0;
    /* The producers of the new inputs go; DCE then drops whatever only fed
     * them. */
    for (int i = 0; i < ninputs; i++) {
        g->values[ins[i]].is_input = 1;
        int p = g->values[ins[i]].producer;
        if (p >= 0) g->nodes[p].dead = 1;
    }
    for (int i = 0; i < noutputs; i++) g->values[outs[i]].is_output = 1;
    free(g->inputs);
    free(g->outputs);
    g->inputs = ins;
    g->ninputs = ninputs;
    g->outputs = outs;
    g->noutputs = noutputs;
    ins = outs = NULL;
    if ((s = mt_pass_dce(g))) goto done;
    /* Everything a remaining node reads must now be computable. */
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        for (int k = 0; k < n->nin; k++) {
            int v = n->in[k];
            if (v < 0) continue;
            const mt_value *val = &g->values[v];
            if (!val->data && !val->is_input && val->producer < 0) {
                s = mt_fail(MTMI_ERR_ARG, "cutting the graph: tensor '%s' is needed but not among the cut tensors", val->name);
                goto done;
            }
        }
    }
done:
    free(ins);
    free(outs);
    if (s) mt_graph_free(g);
    else *out = g;
    return s;
}

/* ------------------------------------------------------------ rewrite */
int mt_quant_add_const(mt_graph *g, const char *base, int dtype, int rank, const int64_t *dims, void *data) {
    int v = mt_graph_add_value_unique(g, base);
    if (v < 0) {
        free(data);
        return -1;
    }
    mt_value *val = &g->values[v];
    mt_value_set_shape(val, dtype, rank, dims);
    val->data = data;
    val->is_weight = 1;
    return v;
}

static int set_op(mt_node *n, const char *op) {
    char *o = mt_strdup(op), *d = mt_strdup("mtmi");
    if (!o || !d) {
        free(o);
        free(d);
        return -1;
    }
    free(n->op);
    free(n->domain);
    n->op = o;
    n->domain = d;
    return 0;
}

/* Quantizes one convolution or linear node in place.  rows = output
 * channels, K = weights per output channel; wrow(c, k) gives w[c][k] in the
 * layout the kernel wants ([M][C/g*kh*kw] for conv, [N][K] from Linear's
 * [K][N]). */
/* A Q/DQ model's own scales of weight w with M output channels (quant.h,
 * mt_qdq_weight): *step = 0 for one scale, 1 for one per channel; NULL
 * when it has none that fits (a cache's model, or a weight that fusion
 * made anew), and then the rewrite derives them. */
static const float *model_weight_scales(const mt_calib_cache *c, const mt_value *w, int64_t M, int *step) {
    const mt_qdq_weight *r = c ? mt_qdq_weight_find(c->qdq, w->name) : NULL;
    if (!r || !r->scale || (r->count != 1 && r->count != M)) return NULL;
    *step = r->count != 1;
    return r->scale;
}

static mtmi_status quantize_node(mt_graph *g, int ni, const mt_calib_cache *cache, float sx, float sy, mt_quant_report *rep) {
    mt_node *n = &g->nodes[ni];
    int linear = !strcmp(n->op, "Linear");
    const mt_value *w = &g->values[n->in[1]];
    const mt_value *b = n->nin > 2 && n->in[2] >= 0 ? &g->values[n->in[2]] : NULL;
    int64_t M, K;
    if (linear) {
        K = w->dims[0];
        M = w->dims[1];
    } else {
        M = w->dims[0];
        K = mt_value_numel(w) / (M ? M : 1);
    }
    const float *wf = w->data;
    int step = 0;
    const float *ms = model_weight_scales(cache, w, M, &step);
    int8_t *wq = malloc((size_t)(M * K) + 1);
    int32_t *bq = malloc(sizeof(int32_t) * (size_t)M + 1);
    float *mult = malloc(sizeof(float) * (size_t)M + 1);
    if (!wq || !bq || !mult) {
        free(wq); free(bq); free(mult);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory quantizing weights");
    }
    for (int64_t c = 0; c < M; c++) {
        float mx = 0;
        for (int64_t k = 0; k < K; k++) {
            float a = fabsf(linear ? wf[k * M + c] : wf[c * K + k]);
            if (a > mx) mx = a;
        }
        float sw = ms ? ms[c * step] : mx > 0 ? mx / 127.0f : 1.0f;
        for (int64_t k = 0; k < K; k++) {
            int8_t q = mt_quantize(linear ? wf[k * M + c] : wf[c * K + k], sw);
            wq[c * K + k] = q < -127 ? -127 : q;
        }
        double bb = 0;
        if (b) {
            if (b->dtype == MTMI_FLOAT) bb = ((const float *)b->data)[c];
            else if (b->dtype == MTMI_DOUBLE) bb = ((const double *)b->data)[c];
        }
        /* Half to even; clamped so that bias + sum can never overflow int32
         * (|sum| <= K * 16256), whatever order a kernel adds them in. */
        double r = nearbyint(bb / ((double)sx * (double)sw));
        double lim = 2147483647.0 - (double)K * 16256.0;
        bq[c] = (int32_t)(r > lim ? lim : r < -lim ? -lim : r);
        mult[c] = sx * sw;
    }
    char base[256];
    int64_t wdims[MT_MAX_RANK];
    int wrank = w->rank;
    if (linear) {
        wrank = 2;
        wdims[0] = M;
        wdims[1] = K;
    } else
        memcpy(wdims, w->dims, sizeof wdims);
    /* w and b point into g->values, which adding values may move. */
    w = b = NULL;
    snprintf(base, sizeof base, "%.200s_wq", g->values[n->out[0]].name);
    int vw = mt_quant_add_const(g, base, MTMI_INT8, wrank, wdims, wq);
    snprintf(base, sizeof base, "%.200s_bq", g->values[g->nodes[ni].out[0]].name);
    int vb = vw < 0 ? -1 : mt_quant_add_const(g, base, MTMI_INT32, 1, &M, bq);
    snprintf(base, sizeof base, "%.200s_mult", g->values[g->nodes[ni].out[0]].name);
    int vm = vb < 0 ? -1 : mt_quant_add_const(g, base, MTMI_FLOAT, 1, &M, mult);
    if (vw < 0 || vb < 0 || vm < 0) {
        if (vw < 0) free(bq);
        if (vb < 0) free(mult);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory adding quantized weights");
    }
    n = &g->nodes[ni];
    int *in = realloc(n->in, sizeof(int) * 4);
    if (!in) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    n->in = in;
    n->in[1] = vw;
    n->in[2] = vb;
    n->in[3] = vm;
    n->nin = 4;
    if (set_op(n, linear ? "QLinear" : "QConv") || mt_node_set_float(n, "x_scale", sx) ||
        mt_node_set_float(n, "y_scale", sy))
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    rep->quantized++;
    return MTMI_OK;
}

static const char *candidate(const mt_graph *g, const mt_node *n) {
    if (n->nin < 2 || n->in[0] < 0 || n->in[1] < 0 || n->nout < 1 || n->out[0] < 0) return NULL;
    const mt_value *x = &g->values[n->in[0]], *w = &g->values[n->in[1]];
    if (x->dtype != MTMI_FLOAT || w->dtype != MTMI_FLOAT || !w->data || x->data) return NULL;
    if (n->nin > 2 && n->in[2] >= 0) {
        const mt_value *b = &g->values[n->in[2]];
        if (!b->data || (b->dtype != MTMI_FLOAT && b->dtype != MTMI_DOUBLE)) return NULL;
    }
    int onnx = !n->domain || !n->domain[0] || !strcmp(n->domain, "ai.onnx");
    int mtmi = n->domain && !strcmp(n->domain, "mtmi");
    if ((onnx && !strcmp(n->op, "Conv")) || (mtmi && !strcmp(n->op, "FusedConv"))) {
        /* 2-D convolutions only (the heads' 1x1 and 3x3). */
        if (w->rank != 4 || x->rank != 4) return NULL;
        const char *act = mt_attr_string(n, "activation", "");
        if (*act && strcmp(act, "Relu") && strcmp(act, "Sigmoid") && strcmp(act, "Gelu")) return NULL;
        return "conv";
    }
    if (mtmi && !strcmp(n->op, "Linear")) {
        if (w->rank != 2 || x->rank < 1 || x->dims[x->rank - 1] != w->dims[0]) return NULL;
        return "linear";
    }
    return NULL;
}

/* A layer whose weights a Q/DQ model left in float stays float (quant.h). */
static int keeps_float(const mt_graph *g, const mt_node *n, const mt_calib_cache *c) {
    const mt_qdq_weight *w = c ? mt_qdq_weight_find(c->qdq, g->values[n->in[1]].name) : NULL;
    return w && !w->scale;
}

/* Would the rewrite quantize node n with c? */
static int quantizable(const mt_graph *g, const mt_node *n, const mt_calib_cache *c) {
    return !n->dead && candidate(g, n) && !keeps_float(g, n, c) && mt_calib_cache_get(c, g->values[n->in[0]].name) > 0;
}

int mt_quant_count(const mt_graph *g, const mt_calib_cache *c) {
    int k = 0;
    for (int i = 0; i < g->nnodes; i++) k += quantizable(g, &g->nodes[i], c);
    return k;
}

mtmi_status mt_quant_rewrite(mt_graph *g, const mt_calib_cache *c, const unsigned char *sel, mt_quant_report *rep) {
    memset(rep, 0, sizeof *rep);
    int nn = g->nnodes;
    /* tail[v]: v reaches a graph output through float ops only.  Such
     * outputs of quantized nodes stay unquantized (as TensorRT runs the
     * last layers int8-in, float-out): requantizing the logits would clip
     * them and tie the argmax. */
    unsigned char *tail = calloc(g->nvalues + 1, 1), *will = calloc(nn + 1, 1);
    if (!tail || !will) {
        free(tail);
        free(will);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < nn; i++) {
        const mt_node *n = &g->nodes[i];
        will[i] = (!sel || sel[i]) && quantizable(g, n, c);
    }
    for (int i = 0; i < g->noutputs; i++) tail[g->outputs[i]] = 1;
    for (int i = nn - 1; i >= 0; i--) {
        const mt_node *n = &g->nodes[i];
        if (n->dead || will[i]) continue;
        int t = 0;
        for (int k = 0; k < n->nout; k++)
            if (n->out[k] >= 0 && tail[n->out[k]]) t = 1;
        for (int k = 0; t && k < n->nin; k++)
            if (n->in[k] >= 0) tail[n->in[k]] = 1;
    }
    for (int i = 0; i < nn; i++) {
        if (g->nodes[i].dead || (sel && !sel[i]) || !candidate(g, &g->nodes[i]) || keeps_float(g, &g->nodes[i], c)) continue;
        const mt_node *n = &g->nodes[i];
        float sx = mt_calib_cache_get(c, g->values[n->in[0]].name);
        if (!(sx > 0)) {
            /* No scale for the input: this node stays in float, as TensorRT
             * keeps a layer without dynamic range in higher precision. */
            if (!rep->skipped++) snprintf(rep->first_skipped, sizeof rep->first_skipped, "%s", g->values[n->in[0]].name);
            continue;
        }
        /* A Q/DQ model's scales say which outputs it quantized, tail or not. */
        float sy = tail[n->out[0]] && !c->qdq ? 0.0f : mt_calib_cache_get(c, g->values[n->out[0]].name);
        mtmi_status s = quantize_node(g, i, c, sx, sy, rep);
        if (s) {
            free(tail);
            free(will);
            return s;
        }
    }
    free(tail);
    free(will);
    return mt_pass_dce(g);
}

mtmi_status mt_quant_plan_graph(const mt_graph *loaded, mt_graph *g, const char *cache_path, mt_quant_report *rep) {
    mt_quant_report local;
    if (!rep) rep = &local;
    mt_calib_cache c;
    mtmi_status s = mt_calib_cache_read(cache_path, &c);
    if (s) return s;
    unsigned char *sel = malloc((size_t)g->nnodes + 1);
    if (!sel) s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
    if (!s) s = mt_calib_cache_check(&c, loaded, g);
    if (!s) s = mt_quant_head_nodes(g, sel);
    if (!s) s = mt_quant_rewrite(g, &c, sel, rep);
    if (!s && rep->quantized == 0)
        s = mt_fail(MTMI_ERR_ARG, "%s: no convolution of the heads has a scale for its input (first missing: '%s')", cache_path,
                    rep->first_skipped);
    free(sel);
    mt_calib_cache_free(&c);
    return s;
}

mtmi_status mt_quant_stage_graph(const mt_graph *g, const mt_calib_cache *c, const char *what, mt_graph **out) {
    *out = NULL;
    if (!c) return mt_fail(MTMI_ERR_ARG, "%s needs a calibration cache (mtmi calibrate; --cache FILE)", what);
    mt_quant_report rep;
    memset(&rep, 0, sizeof rep);
    mt_graph *q = mt_graph_clone(g);
    if (!q) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    mtmi_status s = mt_quant_rewrite(q, c, NULL, &rep);
    if (!s && rep.quantized == 0)
        s = mt_fail(MTMI_ERR_ARG, "%s: no convolution of this subgraph has a scale for its input in the calibration cache (first missing: '%s')",
                    what, rep.first_skipped);
    if (s) {
        mt_graph_free(q);
        return s;
    }
    *out = q;
    return MTMI_OK;
}
