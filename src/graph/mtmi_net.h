/* The reference MTMI network (SPEC.md, reference/mtmi_torch.py) built in C
 * with seeded random weights (by default the "spread" initialization of
 * weight_init.c, under which the class map holds many classes and depth
 * spans a wide range; MT_MTMI_INIT_TORCH: mtmi_torch.randomize's
 * distributions, whose outputs are nearly constant): MiT-B0 encoder, slim SegFormer segmentation
 * head, DEST progressive depth head.  It is the model `mtmi run` uses when
 * given none, and `mtmi make-model` writes it as ONNX. */
#ifndef MT_GRAPH_MTMI_NET_H
#define MT_GRAPH_MTMI_NET_H

#include "graph/graph.h"

typedef struct mt_mtmi_net_opts {
    uint64_t seed;
    int height, width;   /* multiples of 32; 0 = 1024 */
    int batch;           /* 0 = 1 */
    int64_t opset;       /* 0 = 17 (LayerNormalization needs 17) */
    int init;            /* MT_MTMI_INIT_SPREAD (0), MT_MTMI_INIT_TORCH or
                          * MT_MTMI_INIT_NONE (zeros: the caller loads weights) */
} mt_mtmi_net_opts;

enum { MT_MTMI_INIT_SPREAD = 0, MT_MTMI_INIT_TORCH = 1, MT_MTMI_INIT_NONE = 2 };

/* What was built, counted while building (no shape inference needed). */
typedef struct mt_mtmi_net_info {
    int64_t params;        /* float weight elements in the graph (BN folded) */
    int64_t torch_params;  /* what the PyTorch module counts */
    double gflop_encoder, gflop_seg, gflop_depth;
} mt_mtmi_net_info;

/* PyTorch's count for the module (its BatchNorm gamma and beta included). */
#define MT_MTMI_TORCH_PARAMS INT64_C(4898068)

/* The graph; as a model (what `mtmi run` uses with no model given):
 * mt_model_builtin (model/model.h). */
mtmi_status mt_make_mtmi_net(const mt_mtmi_net_opts *opt, mt_graph **out, mt_mtmi_net_info *info);

#endif
