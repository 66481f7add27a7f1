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
    /* A Q/DQ model (quant/quant.h, "Q/DQ import"): its Q/DQ nodes were
     * imported at load, graph is the float graph and these are the
     * activation scales its INT8 stages use when no calibration cache is
     * given.  NULL for a float model. */
    struct mt_qdq_info *qdq;
};

/* Loads an ONNX file (external data, the budgets and random fills of opt);
 * imports its Q/DQ nodes, if any (mt_qdq_import). */
/* A key of the model's content (the loaded graph: every value's name,
 * type, shape and constant bytes, every node's operator, wiring and
 * attributes): what a saved plan (pipeline/planfile.h) was made of.  Not
 * cryptographic; the same for the same file loaded anywhere. */
uint64_t mt_model_content_key(const mtmi_model *m);
mtmi_status mt_model_load(const char *path, const mtmi_load_options *opt, mtmi_model **out);
/* The built-in MTMI network (graph/mtmi_net.h) as a model: the one place
 * that makes it (`mtmi run` without a model, make-model's API, tests). */
mtmi_status mt_model_builtin(const mt_mtmi_net_opts *opt, mtmi_model **out);
/* The default model of `mtmi run`, `bench`, `calibrate`, `accuracy` and
 * `eval` when no model is given (builtin.c): the trained MTMI network
 * (models/mtmi_trained.onnx, made by scripts/train_mtmi.py on `mtmi synth`
 * scenes) when its file is found, else the network with seeded random
 * ("spread") weights, as before any training.  Where the trained file is
 * looked for, first found wins:
 *   1. choice: a path (an error if it cannot be loaded), or "none" for the
 *      random-weight network (the CLI passes $MTMI_TRAINED_MODEL: the
 *      library reads no environment);
 *   2. <folder of the executable>/../models/mtmi_trained.onnx (a build
 *      folder inside the source tree: build/mtmi);
 *   3. <folder of the executable>/../share/mtmi/mtmi_trained.onnx (installed);
 *   4. <source tree at build time>/models/mtmi_trained.onnx. */
#define MT_TRAINED_FILE "mtmi_trained.onnx"
/* The trained model's file into path (cap bytes): 1 if found, 0 if not
 * (or choice is "none"); choice NULL or "" = look in the places above. */
int mt_builtin_trained_path(const char *choice, char *path, size_t cap);
/* The default model at h x w (multiples of 32; 0 = 1024): the MTMI network
 * built in C at that size, with the trained weights when the file is found
 * (the export's float or float16 weights, matched in the order the network
 * reads them), else with seeded random weights.  desc (cap bytes) says
 * which. */
mtmi_status mt_builtin_model(const char *choice, uint64_t seed, int h, int w, mtmi_model **out, char *desc, size_t cap);
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
