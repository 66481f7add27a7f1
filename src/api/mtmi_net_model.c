/* The built-in MTMI network as an mtmi_model, for callers (`mtmi run`) that
 * are given no model file. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "graph/mtmi_net.h"

mtmi_status mt_mtmi_net_model(const mt_mtmi_net_opts *opt, mtmi_model **out) {
    if (!out) return mt_fail(MTMI_ERR_ARG, "mt_mtmi_net_model: NULL argument");
    *out = NULL;
    mtmi_model *m = mt_alloc(sizeof *m);
    if (!m) return MTMI_ERR_NOMEM;
    mt_mtmi_net_info info;
    mtmi_status s = mt_make_mtmi_net(opt, &m->graph, &info);
    if (s) {
        free(m);
        return s;
    }
    free(m->graph->path);
    m->graph->path = mt_strdup("<built-in MTMI network>");
    m->opt.seed = opt ? opt->seed : 0;
    m->params = info.params;
    *out = m;
    return MTMI_OK;
}
