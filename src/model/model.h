/* model: a network as loaded (or built in), and its specialization to
 * input shapes.
 *
 * `struct mtmi_model` (the public handle) is defined here, below the
 * pipeline and the public API that both use it.  Specializing folds
 * constants with the CPU kernels (mt_cpu_eval), so this layer sits above
 * src/cpu; it builds no plans. */
#ifndef MT_MODEL_H
#define MT_MODEL_H

#include "core/tuning.h"
#include "graph/graph.h"
#include "graph/mtmi_net.h"

struct mtmi_model {
    mt_graph *graph;      /* as loaded: Constant nodes folded into values only */
    mtmi_load_options opt;
    int64_t params;       /* float weight elements in the file */
};

/* Loads an ONNX file (external data, the budgets and random fills of opt). */
mtmi_status mt_model_load(const char *path, const mtmi_load_options *opt, mtmi_model **out);
/* The built-in MTMI network (graph/mtmi_net.h) as a model: the one place
 * that makes it (`mtmi run` without a model, make-model's API, tests). */
mtmi_status mt_model_builtin(const mt_mtmi_net_opts *opt, mtmi_model **out);
/* A model around graph g, which it takes over (freed with the model, also
 * on failure). */
mtmi_status mt_model_from_graph(mt_graph *g, mtmi_model **out);
void mt_model_free(mtmi_model *m);

/* The model's graph specialized to input shapes and optimized (caller
 * frees); fuse = 0 folds and infers only.  The _ex form takes the graph
 * switches of `tuning` (NULL = defaults). */
mtmi_status mt_model_specialize(const mtmi_model *m, const mtmi_tensor *shapes, int nshapes, int fuse, mt_graph **out);
mtmi_status mt_model_specialize_ex(const mtmi_model *m, const mtmi_tensor *shapes, int nshapes, int fuse,
                                   const mt_tuning *tuning, mt_graph **out);

#endif
