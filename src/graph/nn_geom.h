/* Window geometry of Conv, ConvTranspose and the pools, shared by shape
 * inference (shapes_nn.c) and the CPU kernels so that both read the ONNX
 * attributes (kernel_shape, strides, dilations, pads, auto_pad, ceil_mode,
 * output_padding, output_shape) the same way. */
#ifndef MT_GRAPH_NN_GEOM_H
#define MT_GRAPH_NN_GEOM_H

#include "graph/graph.h"

#define MT_GEOM_MAX_SP 3

enum { MT_GEOM_CONV = 0, MT_GEOM_POOL = 1, MT_GEOM_CONVT = 2 };

typedef struct mt_geom {
    int nsp;                         /* spatial dims (1..3)             */
    int64_t in[MT_GEOM_MAX_SP];      /* input spatial size              */
    int64_t k[MT_GEOM_MAX_SP];       /* kernel                          */
    int64_t out[MT_GEOM_MAX_SP];     /* output spatial size             */
    int64_t stride[MT_GEOM_MAX_SP];
    int64_t dil[MT_GEOM_MAX_SP];
    int64_t pb[MT_GEOM_MAX_SP];      /* pad at the beginning            */
    int64_t pe[MT_GEOM_MAX_SP];      /* pad at the end                  */
    int64_t group;
} mt_geom;

/* Fills geo from the node's attributes, the input's spatial dims (in_sp)
 * and, for Conv/ConvTranspose, the weight's spatial dims (k_sp; NULL for
 * pools, whose kernel_shape attribute is required).  On a bad attribute
 * returns -1 with a message in err. */
int mt_geom_get(const mt_node *n, int kind, int nsp, const int64_t *in_sp, const int64_t *k_sp, mt_geom *geo,
                char *err, size_t errcap);

#endif
