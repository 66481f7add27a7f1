/* registry: which backend runs which device, and a plan as a one-stage use
 * of the backend interface.
 *
 * This is the layer above the backends (src/cpu, src/cuda) and below the
 * pipeline and the public API: everything that creates a plan (a pipeline
 * stage, mtmi_plan_create, the app's engine measurement) comes here, so a
 * device string means the same everywhere and INT8 is rewritten the same
 * way for every backend. */
#ifndef MT_REGISTRY_H
#define MT_REGISTRY_H

#include "backend/backend.h"

/* The backend of d's kind; NULL with a one-line error when this build has
 * none ("this build has no CUDA support"). */
const mt_backend *mt_backend_for(const mt_devspec *d);
/* Asks d's backend whether it runs d, and g's operators when g is not
 * NULL (mt_backend.supports); MTMI_OK or a one-line error. */
mtmi_status mt_device_supports(const mt_devspec *d, const mt_graph *g);

/* One subgraph compiled for one device through its backend. */
typedef struct mt_plan {
    const mt_backend *be;
    mt_devspec dev;
    void *impl;             /* the backend's plan                               */
    const mt_graph *graph;  /* what the backend compiled: g, or qgraph          */
    mt_graph *qgraph;       /* INT8: g rewritten to QConv / QLinear (owned)     */
} mt_plan;

/* Compiles g (borrowed for the plan's life) for d on backend be (NULL =
 * mt_backend_for(d)).  For INT8 (d->prec) the graph is first rewritten by
 * mt_quant_stage_graph with cfg->calib, unless cfg->graph_quantized says g
 * is already (the plan API's heads-only rewrite). */
mtmi_status mt_plan_create(const mt_backend *be, const mt_devspec *d, const mt_graph *g, const mt_stage_cfg *cfg,
                           mt_plan **out);
/* One synchronous run, host inputs and outputs (mt_backend.run). */
mtmi_status mt_plan_run(mt_plan *p, const mt_tview *in, int nin, mt_tview *out, int nout);
void mt_plan_free(mt_plan *p);

#endif
