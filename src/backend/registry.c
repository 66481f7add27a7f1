/* The backend registry and the one-stage plan (registry.h). */
#include "backend/registry.h"

#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"

/* The CUDA backend; NULL in builds without nvcc. */
static const mt_backend *cuda_backend(void) {
#if MTMI_HAVE_CUDA
    return mt_backend_cuda();
#else
    return NULL;
#endif
}

static const mt_backend *checked(const mt_backend *b) {
    if (b && b->version != MT_BACKEND_VERSION) {
        mt_fail(MTMI_ERR_INTERNAL, "backend '%s' is version %d, the library %d", b->name, b->version, MT_BACKEND_VERSION);
        return NULL;
    }
    return b;
}

const mt_backend *mt_backend_for(const mt_devspec *d) {
    char buf[64];
    if (d->kind == MT_DEV_CPU) return checked(mt_backend_cpu());
    const mt_backend *b = cuda_backend();
    if (!b) {
        mt_fail(MTMI_ERR_DEVICE, "device '%s': this build has no CUDA support (no nvcc at build time)",
                mt_devspec_str(d, buf, sizeof buf));
        return NULL;
    }
    return checked(b);
}

mtmi_status mt_device_supports(const mt_devspec *d, const mt_graph *g) {
    const mt_backend *b = mt_backend_for(d);
    if (!b) return MTMI_ERR_DEVICE;
    return b->supports(d, g);
}

/* INT8: the stage's graph with its convolutions and linear layers as QConv
 * / QLinear, the same rewrite for every backend (the CPU's is the exact
 * reference of the GPU's arithmetic, quant/quant.h). */
static mtmi_status int8_graph(const mt_devspec *d, const mt_graph *g, const mt_stage_cfg *cfg, mt_graph **q) {
    char buf[64], what[80];
    snprintf(what, sizeof what, "device '%s'", mt_devspec_str(d, buf, sizeof buf));
    mtmi_status s = mt_quant_stage_graph(g, cfg ? cfg->calib : NULL, what, q);
    if (!s) s = mt_quant_apply_tuning(*q, cfg ? cfg->tuning : NULL);
    return s;
}

mtmi_status mt_plan_create(const mt_backend *be, const mt_devspec *d, const mt_graph *g, const mt_stage_cfg *cfg,
                           mt_plan **out) {
    *out = NULL;
    if (!be && !(be = mt_backend_for(d))) return MTMI_ERR_DEVICE;
    if (!checked(be)) return MTMI_ERR_INTERNAL;
    mt_plan *p = mt_alloc(sizeof *p);
    if (!p) return MTMI_ERR_NOMEM;
    p->be = be;
    p->dev = *d;
    p->graph = g;
    mtmi_status s = MTMI_OK;
    if (d->prec == MT_PREC_INT8 && !(cfg && cfg->graph_quantized) && !(s = int8_graph(d, g, cfg, &p->qgraph))) p->graph = p->qgraph;
    if (!s) s = be->create(d, p->graph, cfg, &p->impl);
    if (s) {
        mt_plan_free(p);
        return s;
    }
    *out = p;
    return MTMI_OK;
}

mtmi_status mt_plan_run(mt_plan *p, const mt_tview *in, int nin, mt_tview *out, int nout) {
    if (!p->be->run) return mt_fail(MTMI_ERR_UNSUPPORTED, "backend '%s' has no synchronous run", p->be->name);
    return p->be->run(p->impl, in, nin, out, nout);
}

void mt_plan_free(mt_plan *p) {
    if (!p) return;
    if (p->impl) p->be->destroy(p->impl);
    mt_graph_free(p->qgraph);
    free(p);
}
