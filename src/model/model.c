/* Models: loading, the built-in network, specialization (model.h). */
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "onnx/onnx.h"
#include "quant/quant.h"

static int64_t float_params(const mt_graph *g) {
    int64_t n = 0;
    for (int v = 0; v < g->nvalues; v++) {
        const mt_value *val = &g->values[v];
        if (val->is_weight && (val->dtype == MTMI_FLOAT || val->dtype == MTMI_FLOAT16)) n += mt_value_numel(val);
    }
    return n;
}

mtmi_status mt_model_load(const char *path, const mtmi_load_options *opt, mtmi_model **out) {
    *out = NULL;
    mtmi_model *m = mt_alloc(sizeof *m);
    if (!m) return MTMI_ERR_NOMEM;
    if (opt) m->opt = *opt;
    mt_onnx_load_opts lo = {.fill_missing_weights = m->opt.fill_missing_weights, .seed = m->opt.seed,
                            .max_random_bytes = m->opt.max_random_bytes};
    mtmi_status s = mt_onnx_load(path, &lo, &m->graph);
    /* Before anything reads the graph: every command then sees the float
     * graph, and INT8 stages find the model's scales in m->qdq. */
    if (!s) s = mt_qdq_import(m->graph, &m->qdq);
    if (s) {
        mt_graph_free(m->graph);
        free(m);
        return s;
    }
    m->graph->fold_budget = m->opt.max_fold_bytes;
    m->params = float_params(m->graph);
    *out = m;
    return MTMI_OK;
}

mtmi_status mt_model_builtin(const mt_mtmi_net_opts *opt, mtmi_model **out) {
    *out = NULL;
    mtmi_model *m = mt_alloc(sizeof *m);
    if (!m) return MTMI_ERR_NOMEM;
    mt_mtmi_net_info info;
    mtmi_status s = mt_make_mtmi_net(opt, &m->graph, &info);
    if (s) {
        free(m);
        return mt_fail_context(s, "building the built-in MTMI network");
    }
    free(m->graph->path);
    m->graph->path = mt_strdup("<built-in MTMI network>");
    m->opt.seed = opt ? opt->seed : 0;
    m->params = info.params;
    *out = m;
    return MTMI_OK;
}

mtmi_status mt_model_from_graph(mt_graph *g, mtmi_model **out) {
    *out = NULL;
    if (!g) return mt_fail(MTMI_ERR_ARG, "mt_model_from_graph: no graph");
    mtmi_model *m = mt_alloc(sizeof *m);
    if (!m) {
        mt_graph_free(g);
        return MTMI_ERR_NOMEM;
    }
    m->graph = g;
    m->params = float_params(g);
    *out = m;
    return MTMI_OK;
}

static uint64_t hash_str(uint64_t h, const char *s) { return mt_hash64(h, s ? s : "", s ? strlen(s) + 1 : 1); }

uint64_t mt_model_content_key(const mtmi_model *m) {
    const mt_graph *g = m->graph;
    uint64_t h = MT_HASH_SEED;
    int64_t head[4] = {g->nvalues, g->nnodes, g->ninputs, g->noutputs};
    h = mt_hash64(h, head, sizeof head);
    for (int v = 0; v < g->nvalues; v++) {
        const mt_value *val = &g->values[v];
        int64_t d[3 + MT_MAX_RANK] = {val->dtype, val->rank, val->is_weight};
        for (int k = 0; k < val->rank && k < MT_MAX_RANK; k++) d[3 + k] = val->dims[k];
        h = hash_str(h, val->name);
        h = mt_hash64(h, d, sizeof d);
        if (val->data) h = mt_hash64(h, val->data, mt_value_bytes(val));
    }
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        h = hash_str(h, n->op);
        h = hash_str(h, n->domain);
        h = mt_hash64(h, n->in, sizeof(int) * (size_t)n->nin);
        h = mt_hash64(h, n->out, sizeof(int) * (size_t)n->nout);
        for (int a = 0; a < n->nattr; a++) {
            const mt_attr *at = &n->attrs[a];
            int64_t k[3] = {at->type, at->i, at->n};
            h = hash_str(h, at->name);
            h = mt_hash64(h, k, sizeof k);
            h = mt_hash64(h, &at->f, sizeof at->f);
            if (at->type == MT_ATTR_STRING) h = hash_str(h, at->s);
            if (at->type == MT_ATTR_INTS && at->ints) h = mt_hash64(h, at->ints, sizeof(int64_t) * (size_t)at->n);
            if (at->type == MT_ATTR_FLOATS && at->floats) h = mt_hash64(h, at->floats, sizeof(float) * (size_t)at->n);
        }
    }
    h = mt_hash64(h, g->inputs, sizeof(int) * (size_t)g->ninputs);
    h = mt_hash64(h, g->outputs, sizeof(int) * (size_t)g->noutputs);
    return h;
}

void mt_model_free(mtmi_model *m) {
    if (!m) return;
    mt_qdq_free(m->qdq);
    mt_graph_free(m->graph);
    free(m);
}

mtmi_status mt_model_specialize(const mtmi_model *m, const mtmi_tensor *shapes, int nshapes, int fuse, mt_graph **out) {
    return mt_model_specialize_ex(m, shapes, nshapes, fuse, NULL, out);
}

mtmi_status mt_model_specialize_ex(const mtmi_model *m, const mtmi_tensor *shapes, int nshapes, int fuse,
                                   const mt_tuning *tuning, mt_graph **out) {
    *out = NULL;
    mt_graph *g = mt_graph_clone(m->graph);
    if (!g) return MTMI_ERR_NOMEM;
    mt_optimize_opts o = {.fuse = fuse && !m->opt.no_optimize, .tuning = tuning};
    mtmi_status s = mt_graph_optimize_ex(g, shapes, nshapes, mt_cpu_eval, (void *)tuning, &o);
    if (s) {
        mt_graph_free(g);
        return s;
    }
    *out = g;
    return MTMI_OK;
}
