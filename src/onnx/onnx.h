/* onnx: reading and writing ONNX model files through protobuf-c, with
 * external-data initializers.  Converts to and from the graph IR. */
#ifndef MT_ONNX_H
#define MT_ONNX_H

#include "graph/graph.h"

typedef struct mt_onnx_load_opts {
    int fill_missing_weights; /* random weights for missing external data */
    uint64_t seed;
} mt_onnx_load_opts;

/* Parses an ONNX file into a new graph.  Constant nodes become constant
 * values; initializers become weights. */
mtmi_status mt_onnx_load(const char *path, const mt_onnx_load_opts *opt, mt_graph **out);
/* Same from a buffer; base_dir locates external data (NULL: none allowed). */
mtmi_status mt_onnx_load_buffer(const uint8_t *buf, size_t len, const char *base_dir,
                                const char *what, const mt_onnx_load_opts *opt, mt_graph **out);

typedef struct mt_onnx_save_opts {
    /* Weights larger than this many bytes go to "<file>.data" beside the
     * model (0 = everything inline).  Models over 2 GiB need it. */
    size_t external_threshold;
    /* Keep fused ops (FusedConv, Linear, Gelu, Attention) as "mtmi"-domain
     * nodes instead of writing them back as standard ONNX ops. */
    int keep_fused;
} mt_onnx_save_opts;

/* Writes a graph as ONNX (atomically; the "<file>.data" file too).  A NULL
 * opt writes everything inline unless the weights exceed protobuf's 2 GiB. */
mtmi_status mt_onnx_save(const mt_graph *g, const char *path, const mt_onnx_save_opts *opt);

#endif
