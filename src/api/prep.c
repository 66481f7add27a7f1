/* Model preparation through the public API: the built-in reference network
 * and writing (optionally simplified) models.  The `make-model` and
 * `simplify` commands are these functions plus their reports. */
#include <stdlib.h>

#include "api/api.h"
#include "graph/mtmi_net.h"
#include "graph/reshape_pass.h"
#include "onnx/onnx.h"

mtmi_status mtmi_model_make_reference(const mtmi_reference_options *opt, mtmi_model **out) {
    if (!out) return mt_fail(MTMI_ERR_ARG, "mtmi_model_make_reference: NULL output");
    *out = NULL;
    mt_clear_error();
    mt_mtmi_net_opts o = {0};
    if (opt) {
        o.seed = opt->seed;
        o.height = opt->height;
        o.width = opt->width;
        o.batch = opt->batch;
        o.init = opt->init == MTMI_INIT_TORCH ? MT_MTMI_INIT_TORCH : opt->init == MTMI_INIT_SPREAD ? MT_MTMI_INIT_SPREAD : -1;
    }
    return mt_model_builtin(&o, out);
}

mtmi_status mtmi_model_save(mtmi_model *m, const char *path, const mtmi_save_options *opt) {
    if (!m || !path) return mt_fail(MTMI_ERR_ARG, "mtmi_model_save: NULL argument");
    mt_clear_error();
    mtmi_save_options none = {0};
    if (!opt) opt = &none;
    mt_onnx_save_opts so = {.external_threshold = opt->external_threshold, .keep_fused = opt->keep_fused};
    if (!opt->simplify) return mt_onnx_save(m->graph, path, &so);
    mt_graph *g = NULL;
    mtmi_status s = mt_model_specialize(m, opt->input_shapes, opt->num_input_shapes, 1, &g);
    if (!s) s = mt_pass_reshape_chains(g, NULL);
    if (!s) s = mt_onnx_save(g, path, &so);
    mt_graph_free(g);
    return s;
}
