/* builder: constructing graphs in C with the op vocabulary of a PyTorch
 * export (Conv, MatMul+Add, LayerNormalization, the Erf GELU, attention as
 * MatMul/Mul/Softmax/MatMul, Reshape/Transpose with constant shapes...), so
 * that a model built here goes through the same loader-facing passes as a
 * real export.  Weights are seeded random (normal / sqrt(fan_in), as
 * mtmi_torch.randomize does).
 *
 * Errors are sticky: after the first failure every call returns -1 and does
 * nothing, and mt_builder_finish reports the first error.  So network code
 * can be written straight through without checking each call. */
#ifndef MT_GRAPH_BUILDER_H
#define MT_GRAPH_BUILDER_H

#include "graph/graph.h"

typedef struct mt_builder {
    mt_graph *g;
    mt_rng rng;
    int no_draws;       /* weights left zero (the caller loads trained ones) */
    mtmi_status err;    /* first failure, MTMI_OK while fine */
    char scope[256];    /* prefix of node and tensor names, e.g. "/enc/blocks.0.0/attn" */
    int64_t params;     /* float elements in weights added so far */
    int64_t bn_folded;  /* BatchNorm channels folded into convolutions */
    double flops;       /* multiply-add = 2, of the ops added with known shapes */
} mt_builder;

mtmi_status mt_builder_init(mt_builder *b, uint64_t seed, int64_t opset);
/* Compacts and hands over the graph (NULL and the first error on failure). */
mtmi_status mt_builder_finish(mt_builder *b, mt_graph **out);
void mt_builder_abort(mt_builder *b);
/* Sets the name scope ("" for none). */
void mt_b_scope(mt_builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Graph inputs and outputs.  mt_b_output renames v to `name`. */
int mt_b_input(mt_builder *b, const char *name, int dtype, int rank, const int64_t *dims);
int mt_b_output(mt_builder *b, int v, const char *name);

/* A learned float weight with seeded values normal * scale (scale 0:
 * 1/sqrt(fan_in), fan_in = numel / dims[0] for rank > 1, numel otherwise). */
int mt_b_weight(mt_builder *b, const char *name, int rank, const int64_t *dims, float scale);
/* A float weight with given values (copied). */
int mt_b_weight_data(mt_builder *b, const char *name, int rank, const int64_t *dims, const float *data);
/* Non-learned constants; identical constants are shared, as exporters do.
 * rank 0 = scalar (n must be 1). */
int mt_b_const_i64(mt_builder *b, int rank, const int64_t *v, int n);
int mt_b_const_f32(mt_builder *b, int rank, const float *v, int n);

/* A node with one output; returns the output value.  mt_b_last() is the
 * node just added, for setting attributes. */
int mt_b_node(mt_builder *b, const char *op, const int *in, int nin);
mt_node *mt_b_last(mt_builder *b);
int mt_b_unary(mt_builder *b, const char *op, int x);
int mt_b_binary(mt_builder *b, const char *op, int x, int y);

/* Layers.  Shapes the builder cannot see are passed in, which also lets it
 * count FLOPs (out_hw = output height * width for convolutions, rows = the
 * product of the leading dims for linear layers). */
int mt_b_conv(mt_builder *b, int x, const char *name, int cin, int cout, int k, int stride, int pad, int groups,
              int bias, int64_t out_hw_batch);
/* Conv(no bias) + BatchNorm (eval) folded into one Conv with bias, weights
 * named "<name>.weight" and "<name>.weight_bias" like the exporters. */
int mt_b_conv_bn(mt_builder *b, int x, const char *name, int cin, int cout, int k, int pad, int64_t out_hw_batch);
/* x @ W + b with W [in, out] named "<name>.weight_t" (PyTorch's weight,
 * transposed), b named "<name>.bias". */
int mt_b_linear(mt_builder *b, int x, const char *name, int in, int out, int64_t rows);
int mt_b_layernorm(mt_builder *b, int x, const char *name, int dim, float eps);
int mt_b_gelu(mt_builder *b, int x);
/* softmax(q k^T * scale) v for q [B,h,N,d], k, v [B,h,M,d]. */
int mt_b_attention(mt_builder *b, int q, int k, int v, float scale, int64_t bh, int64_t n, int64_t m, int64_t d);
int mt_b_reshape(mt_builder *b, int x, const int64_t *shape, int n);
int mt_b_transpose(mt_builder *b, int x, const int64_t *perm, int n);
int mt_b_gather(mt_builder *b, int x, int64_t index, int axis);
int mt_b_concat(mt_builder *b, const int *xs, int n, int axis);
/* Bilinear (half-pixel) Resize by scales or to sizes, as F.interpolate. */
int mt_b_resize_scales(mt_builder *b, int x, const float *scales, int n);
int mt_b_resize_sizes(mt_builder *b, int x, const int64_t *sizes, int n);

#endif
