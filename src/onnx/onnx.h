/* onnx: reading and writing ONNX model files through protobuf-c, with
 * external-data initializers.  Converts to and from the graph IR. */
#ifndef MT_ONNX_H
#define MT_ONNX_H

#include "graph/graph.h"

/* What the loader accepts (anything else is refused with a one-line error):
 * - messages nested at most MT_ONNX_MAX_NESTING deep (checked on the wire
 *   before protobuf-c, which recurses, unpacks anything);
 * - IR versions MT_ONNX_MIN_IR..MT_ONNX_MAX_IR (3 introduced opset_import;
 *   14 is ONNX 1.23's) and a default-domain opset import of
 *   1..MT_ONNX_MAX_OPSET (ONNX 1.23's newest);
 * - external data only as regular files inside the model's folder (after
 *   symbolic links), opened without blocking. */
#define MT_ONNX_MAX_NESTING 64
#define MT_ONNX_MIN_IR 3
#define MT_ONNX_MAX_IR 14
#define MT_ONNX_MAX_OPSET 28
/* Sanity bound on one tensor as declared (the data must be there too). */
#define MT_ONNX_MAX_TENSOR ((size_t)1 << 42)
/* Default budget of fill_missing_weights: the reference network's 4.9 M
 * weights take 19.6 MB; 512 MiB is 128 M float weights. */
#define MT_ONNX_RANDOM_BUDGET ((size_t)512 << 20)

typedef struct mt_onnx_load_opts {
    int fill_missing_weights; /* random weights for missing external data */
    uint64_t seed;
    size_t max_random_bytes;  /* all random-filled tensors together (0 = MT_ONNX_RANDOM_BUDGET) */
} mt_onnx_load_opts;

/* Fails unless protobuf messages in buf nest at most MT_ONNX_MAX_NESTING
 * deep (wire.c). */
mtmi_status mt_onnx_check_nesting(const uint8_t *buf, size_t len, const char *what);

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
