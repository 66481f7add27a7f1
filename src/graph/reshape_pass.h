/* Export-time clean-up of layout ops, run by `mtmi simplify` after the
 * optimizer: Transposes that only move size-1 axes become Reshapes, chains
 * of Reshapes collapse into one, and Reshapes to the shape they already have
 * disappear.  Needs every value's shape inferred. */
#ifndef MT_GRAPH_RESHAPE_PASS_H
#define MT_GRAPH_RESHAPE_PASS_H

#include "graph/graph.h"

/* Returns the number of nodes removed in *removed (may be NULL). */
mtmi_status mt_pass_reshape_chains(mt_graph *g, int *removed);

#endif
