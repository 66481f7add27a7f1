/* api: the libmtmi entry points (include/mtmi.h) and the internals that the
 * command-line app shares with them. */
#ifndef MT_API_H
#define MT_API_H

#include "graph/graph.h"

struct mtmi_model {
    mt_graph *graph;      /* as loaded: Constant nodes folded into values only */
    mtmi_load_options opt;
    int64_t params;       /* float weight elements in the file */
};

/* The model's graph specialized to input shapes and optimized (caller frees). */
mtmi_status mt_model_specialize(const mtmi_model *m, const mtmi_tensor *shapes, int nshapes, int fuse,
                                mt_graph **out);

/* Per-node timing of a CPU plan (for `mtmi infer --profile`): switch it on
 * before running; the report (malloc'ed) lists the ops and nodes that took
 * the most time in the last run. */
void mt_plan_set_profile(mtmi_plan *p, int on);
char *mt_plan_profile_report(const mtmi_plan *p, int top);

#endif
