/* Pattern fusion passes. */
#include "graph/ops.h"

mtmi_status mt_pass_fuse(mt_graph *g) { return MTMI_OK; }
