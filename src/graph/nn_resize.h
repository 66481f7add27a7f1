/* Resize/Upsample output sizes and per-axis scales, shared by shape
 * inference and the CPU kernel: the coordinate transform must use the same
 * scale that decided the output size (the given scale, not out/in). */
#ifndef MT_GRAPH_NN_RESIZE_H
#define MT_GRAPH_NN_RESIZE_H

#include "graph/graph.h"

/* scales (nscales > 0) or sizes (nsizes > 0), each of len(axes) or rank
 * values, into per-axis out_scales and out_dims.  -1 with err on bad input. */
int mt_resize_setup(const mt_node *n, int64_t opset, int rank, const int64_t *in, const float *scales, int nscales,
                    const int64_t *sizes, int nsizes, float *out_scales, int64_t *out_dims, char *err, size_t errcap);

#endif
