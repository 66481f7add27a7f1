/* Models: loading, the built-in network, specialization (model.h). */
#include "model/model.h"

#include <stdlib.h>

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
