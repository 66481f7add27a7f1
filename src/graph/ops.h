/* Shape-inference helpers shared by the per-family schema files
 * (shapes_*.c).  Each family file exports a table ending in {NULL}. */
#ifndef MT_GRAPH_OPS_H
#define MT_GRAPH_OPS_H

#include "graph/graph.h"

extern const mt_op_schema mt_schemas_elementwise[];
extern const mt_op_schema mt_schemas_shape[];
extern const mt_op_schema mt_schemas_nn[];
extern const mt_op_schema mt_schemas_fused[];
extern const mt_op_schema mt_schemas_quant[];

/* Input i's value (NULL if absent). */
static inline mt_value *mt_in(mt_graph *g, const mt_node *n, int i) {
    return i < n->nin && n->in[i] >= 0 ? &g->values[n->in[i]] : NULL;
}
static inline mt_value *mt_out(mt_graph *g, const mt_node *n, int i) {
    return i < n->nout && n->out[i] >= 0 ? &g->values[n->out[i]] : NULL;
}

/* Error with the node named: "node 'x' (Op, opset N): <msg>". */
mtmi_status mt_node_fail(mt_graph *g, const mt_node *n, mtmi_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Checks input count in [lo, hi]. */
mtmi_status mt_check_inputs(mt_graph *g, const mt_node *n, int lo, int hi);
/* Numpy broadcast of a and b into out (rank/dims). */
mtmi_status mt_broadcast_shape(mt_graph *g, const mt_node *n, int ra, const int64_t *da, int rb,
                               const int64_t *db, int *rout, int64_t *dout);
/* Reads a constant integer tensor input (int64 or int32) into v (cap
 * entries); returns the count, or -1 (error set) if not constant. */
int mt_const_ints(mt_graph *g, const mt_node *n, int input, int64_t *v, int cap);
/* Reads a constant float input (float/double/half). */
int mt_const_floats(mt_graph *g, const mt_node *n, int input, float *v, int cap);
/* Normalizes a possibly negative axis against rank; -1 on error. */
int mt_norm_axis(int64_t axis, int rank);

/* Output 0 = same type/shape as input 0. */
mtmi_status mt_infer_same(mt_graph *g, mt_node *n);

#endif
