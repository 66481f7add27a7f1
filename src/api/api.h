/* api: the libmtmi entry points (include/mtmi.h) and the internals that the
 * command-line app shares with them. */
#ifndef MT_API_H
#define MT_API_H

#include "graph/graph.h"
#include "model/model.h" /* struct mtmi_model, mt_model_specialize */

/* mtmi_model_describe with the graph switches of tuning (NULL =
 * defaults) and the nshapes input shapes given (in input order; the rest
 * as declared): `mtmi info [--shape ...]` reports the graph the command
 * line's switches make, at the size asked for. */
char *mt_model_describe_ex(mtmi_model *m, const mtmi_tensor *shapes, int nshapes, const mt_tuning *tuning);

/* Per-node timing of a CPU plan (for `mtmi infer --profile`): switch it on
 * before running; the report (malloc'ed) lists the ops and nodes that took
 * the most time in the last run. */
void mt_plan_set_profile(mtmi_plan *p, int on);
char *mt_plan_profile_report(const mtmi_plan *p, int top);

/* Split and write: encoder.onnx plus one file per head in outdir; on
 * failure nothing is left behind.  `annotated` is the model graph with the
 * inferred shapes the cut tensors were declared with. */
typedef struct mt_split_files {
    mt_graph *annotated;
    mt_split split;
    int npaths;
    char (*paths)[4096];  /* encoder first, then head k at k + 1 */
} mt_split_files;
mtmi_status mt_split_write(const mtmi_model *m, const char *const *cut, int ncut, const char *outdir, mt_split_files *r);
void mt_split_files_free(mt_split_files *r);
/* ", 12.34 GFLOP" of a part, or "" when its shapes cannot be inferred. */
const char *mt_split_part_gflop(const mt_graph *part, char *buf, size_t cap);

#endif
