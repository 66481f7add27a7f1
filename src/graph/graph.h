/* graph: the intermediate representation (values, nodes, attributes), shape
 * inference with constant folding, and the optimization passes.
 *
 * A graph is a flat array of values (tensors) and a flat array of nodes that
 * refer to values by index.  A value with data != NULL is a constant
 * (initializer or folded).  Passes mark nodes dead and mt_graph_compact()
 * removes them, so indices stay stable while a pass runs. */
#ifndef MT_GRAPH_H
#define MT_GRAPH_H

#include "core/core.h"
#include "core/tuning.h"

typedef struct mt_value {
    char *name;
    int dtype;                   /* ONNX code; 0 = not yet known        */
    int rank;                    /* -1 = not yet known                  */
    int64_t dims[MT_MAX_RANK];   /* -1 = dynamic                        */
    char *dim_param[MT_MAX_RANK];/* symbolic names of dynamic dims      */
    void *data;                  /* constant contents, or NULL          */
    int producer;                /* node index, or -1                   */
    int is_input, is_output;     /* graph input / output                */
    int is_weight;               /* an initializer (a learned weight)   */
} mt_value;

enum {
    MT_ATTR_FLOAT = 1,
    MT_ATTR_INT = 2,
    MT_ATTR_STRING = 3,
    MT_ATTR_TENSOR = 4,
    MT_ATTR_FLOATS = 6,
    MT_ATTR_INTS = 7,
    MT_ATTR_STRINGS = 8
};

typedef struct mt_attr {
    char *name;
    int type;
    int64_t i;
    float f;
    char *s;
    int n;            /* count of ints / floats / strings */
    int64_t *ints;
    float *floats;
    char **strings;
    mt_value *t;      /* tensor attribute (owned, detached from the graph) */
} mt_attr;

typedef struct mt_node {
    char *name;
    char *op;
    char *domain;     /* "" for the ONNX domain, "mtmi" for our fused ops */
    int nin, nout;
    int *in;          /* value indices; -1 = absent optional input */
    int *out;
    int nattr;
    mt_attr *attrs;
    int dead;
} mt_node;

typedef struct mt_graph {
    mt_value *values;
    int nvalues, cap_values;
    mt_node *nodes;
    int nnodes, cap_nodes;
    int *inputs, ninputs;     /* graph inputs (non-initializer)  */
    int *outputs, noutputs;
    int64_t opset;            /* default-domain opset version    */
    int64_t ir_version;
    char *name;
    char *producer;
    char *path;               /* file it was loaded from, for messages */
    size_t max_tensor_bytes;  /* inference rejects bigger tensors (0 = 16 GiB) */
    /* Bytes constant folding may create in one mt_graph_infer, all folded
     * tensors together (0 = MT_FOLD_BUDGET plus twice the weights the
     * graph holds): a small file must not make every command (even
     * `info`) allocate gigabytes. */
    size_t fold_budget;
    /* The files the graph was read from (model, external data), so that
     * no output replaces one of them. */
    char **sources;
    int nsources;
} mt_graph;

/* Default fold budget.  The reference network at 1024x1024 folds well
 * under 1 MB (shape computations; weights are not folded by inference). */
#define MT_FOLD_BUDGET ((size_t)256 << 20)
/* Adds a source file (copied) to g->sources. */
int mt_graph_add_source(mt_graph *g, const char *path);

mt_graph *mt_graph_new(void);
void mt_graph_free(mt_graph *g);
mt_graph *mt_graph_clone(const mt_graph *g);

/* Adds a value; returns its index or -1.  Names must be unique. */
int mt_graph_add_value(mt_graph *g, const char *name);
int mt_graph_find_value(const mt_graph *g, const char *name);
/* A fresh unique name "<base>_<k>". */
int mt_graph_add_value_unique(mt_graph *g, const char *base);
/* Adds a node with the given value indices; returns its index or -1. */
int mt_graph_add_node(mt_graph *g, const char *op, const char *name, const int *in,
                      int nin, const int *out, int nout);

/* Stage-boundary edits (the pipeline's handovers of the encoder's
 * features, src/quant/handover.c and src/pipeline/handover.c): */
/* index in g->inputs of the input value named `name`, or -1 */
int mt_graph_find_input(const mt_graph *g, const char *name);
/* a new value `name` of type dtype with the dims of the NCHW value x in
 * NHWC order ([N,H,W,C]); its index, or -1 (out of memory, or the name is
 * taken) */
int mt_graph_add_nhwc_value(mt_graph *g, const char *name, int dtype, int x);
/* node "<name>_<op>" of domain mtmi from value in to value out (made its
 * producer); its index or -1 */
int mt_graph_add_mtmi_node(mt_graph *g, const char *op, const char *name, int in, int out);
/* value v becomes (or stops being) a graph output */
mtmi_status mt_graph_add_output(mt_graph *g, int v);
void mt_graph_drop_output(mt_graph *g, int v);
/* Copies an attribute onto a node. */
int mt_node_set_attr(mt_node *n, const mt_attr *a);
int mt_node_set_int(mt_node *n, const char *name, int64_t v);
int mt_node_set_float(mt_node *n, const char *name, float v);
int mt_node_set_ints(mt_node *n, const char *name, const int64_t *v, int count);
int mt_node_set_string(mt_node *n, const char *name, const char *s);

const mt_attr *mt_node_attr(const mt_node *n, const char *name);
int64_t mt_attr_int(const mt_node *n, const char *name, int64_t def);
float mt_attr_float(const mt_node *n, const char *name, float def);
const char *mt_attr_string(const mt_node *n, const char *name, const char *def);
/* Number of ints (or -1 if absent); *v points into the node. */
int mt_attr_ints(const mt_node *n, const char *name, const int64_t **v);

void mt_attr_free(mt_attr *a);
void mt_value_free_data(mt_value *v);

/* Sets a value's type, shape and (owned) data. */
void mt_value_set_shape(mt_value *v, int dtype, int rank, const int64_t *dims);
int64_t mt_value_numel(const mt_value *v);
size_t mt_value_bytes(const mt_value *v);
int mt_value_shape_known(const mt_value *v);

/* Consumers of value v among live nodes (indices into g->nodes). */
int mt_graph_consumers(const mt_graph *g, int v, int *out, int cap);
/* Recomputes producer links and sorts live nodes topologically (stable),
 * removing dead nodes.  Fails on cycles. */
mtmi_status mt_graph_compact(mt_graph *g);

/* Makes input `input` (float [N,3,H,W], known sizes) an image input:
 * a new graph input uint8 [N,H,W,3] (RGB) feeds mtmi.Preprocess, which
 * computes the old input as (x - mean[c]) / std[c] (image_input.c). */
mtmi_status mt_graph_image_input(mt_graph *g, int input, const float mean[3], const float stdv[3]);

/* ------------------------------------------------------- result forms
 * What an application takes of a float output: the values (FLOAT), the
 * values as FP16, int8 with a symmetric per-frame scale (INT8: two
 * results, the int8 values and the scales [N]), or the class map (CLASSES:
 * uint8, the argmax over axis 1).  Computing the form inside the graph puts
 * it on the head's device, so only what was asked for leaves the device. */
enum { MT_FORM_FLOAT = 1, MT_FORM_FP16 = 2, MT_FORM_INT8 = 4, MT_FORM_CLASSES = 8, MT_FORM_ALL = 15 };
/* Replaces each graph output i by its forms[i] (a set of MT_FORM_*; 0
 * drops the output), in the order FLOAT "<name>", FP16 "<name>:fp16",
 * INT8 "<name>:int8" and "<name>:scale", CLASSES "<name>:classes"; nodes
 * that then reach no output are removed.  src_output / form_of (cap
 * entries, may be NULL) get, per new output, the index of the old output
 * it comes from and its MT_FORM_* bit (the scales: MT_FORM_INT8 too).
 * Returns the new number of outputs, or -1 with the error set. */
int mt_graph_output_forms(mt_graph *g, const unsigned *forms, int *src_output, unsigned *form_of, int cap);
/* The arithmetic of mtmi.SymQuant (every backend follows it): the scale of
 * a batch element from m = max |x| over it (NaN ignored, inf kept), and one
 * value's int8 code.  Division, clamp and rounding (half to even) in
 * double, as `mtmi run` always wrote its int8 logits. */
static inline double mt_symquant_scale(float m) { return m > 0 && m <= 3.402823466e+38f ? m / 127.0 : 1.0; }
static inline int8_t mt_symquant_value(float x, double scale) {
    double v = x / scale;
    v = v > 127 ? 127 : v < -127 ? -127 : v;
    return (int8_t)(v == v ? __builtin_rint(v) : 0);
}
/* "float", "fp16", "int8", "scale", "classes": the suffix of a form's name. */
const char *mt_form_name(unsigned form);

/* "node 'name' (Op)" for error messages. */
const char *mt_node_desc(const mt_graph *g, const mt_node *n, char *buf, size_t cap);

/* ---------------------------------------------------------------- ops */
/* Shape/type inference of one node: sets dtype, rank and dims of outputs.
 * Data-dependent ops (Reshape, Resize sizes, ...) read constant inputs. */
typedef mtmi_status (*mt_infer_fn)(mt_graph *g, mt_node *n);

typedef struct mt_op_schema {
    const char *op;
    const char *domain;   /* "" or "mtmi" */
    mt_infer_fn infer;
    int min_opset;        /* oldest opset of the default domain we handle */
} mt_op_schema;

const mt_op_schema *mt_op_find(const char *domain, const char *op);

/* An evaluator of one node on constant inputs, supplied by a backend (the
 * CPU one) so that the graph layer can fold without depending on it. */
typedef mtmi_status (*mt_eval_fn)(mt_graph *g, mt_node *n, void *ctx);

/* Specializes the graph to concrete input shapes (shapes[i] for input i,
 * rank 0 = keep declared), infers every value's shape and folds every node
 * whose inputs are all known (Shape of a known shape included). */
mtmi_status mt_graph_infer(mt_graph *g, const mtmi_tensor *shapes, int nshapes,
                           mt_eval_fn eval, void *eval_ctx);

/* ------------------------------------------------------------- passes */
/* Removes nodes whose outputs reach no graph output, and unused values. */
mtmi_status mt_pass_dce(mt_graph *g);
/* Pattern fusion: LayerNorm decomposition, Erf-GELU, attention,
 * Conv+BatchNorm, Conv/Gemm/MatMul+bias, +Relu/Sigmoid.  tuning (NULL =
 * defaults): no_fuse turns patterns off, fuse_concat turns the opt-in one
 * on. */
mtmi_status mt_pass_fuse(mt_graph *g, const mt_tuning *tuning);
/* Full pipeline: infer+fold, DCE, fuse, DCE, infer. */
mtmi_status mt_graph_optimize(mt_graph *g, const mtmi_tensor *shapes, int nshapes,
                              mt_eval_fn eval, void *eval_ctx, int fuse);
typedef struct mt_optimize_opts {
    int fuse;                 /* 0: infer, fold and DCE only */
    const mt_tuning *tuning;  /* graph switches; NULL = defaults */
} mt_optimize_opts;
mtmi_status mt_graph_optimize_ex(mt_graph *g, const mtmi_tensor *shapes, int nshapes, mt_eval_fn eval, void *eval_ctx,
                                 const mt_optimize_opts *o);

/* Re-draws every float weight of g by its role (LayerNorm scale, conv
 * weight, classifier, bias...) so that a network's outputs are
 * discriminative: the "spread" initialization of weight_init.c. */
mtmi_status mt_graph_spread_weights(mt_graph *g, uint64_t seed);

/* label[i] for node i: -1 = in the cone of several outputs (shared, the
 * encoder), k = only in output k's cone (a head), -2 = reaches no output. */
mtmi_status mt_graph_cone_labels(const mt_graph *g, int *label);

/* ------------------------------------------------------- fused operators
 * Passes rewrite patterns into these ops of domain "mtmi" (plus ONNX's own
 * LayerNormalization, which the opset-13 decomposition fuses into).  Every
 * backend implements them; `simplify` writes them back as standard ONNX.
 *
 *  mtmi.FusedConv(X, W, B?)  Conv (all Conv attributes) followed by the
 *      activation named by string attribute "activation": "" (none),
 *      "Relu", "Sigmoid" or "Gelu" (erf form).  BatchNormalization after a
 *      Conv is folded into W and B before this.
 *  mtmi.Linear(X, W, B?)     Y = X @ W + B with X [..., K], W [K, N]
 *      (constant), B [N]; then "activation" as above.  From MatMul+Add
 *      and Gemm.
 *  mtmi.Gelu(X)              0.5 x (1 + erf(x / sqrt 2)).
 *  mtmi.Attention(Q, K, V)   softmax(Q K^T * scale) V over the last axis,
 *      Q [B,H,N,d], K and V [B,H,M,d], float attribute "scale"; output
 *      [B,H,N,d].  The N x M score matrix is never stored whole.
 */

/* ------------------------------------------------------------------ split
 * Cuts g at the shared features: the encoder maps the graph inputs to the
 * cut tensors; head k maps the cut tensors it reads to output k.  With
 * cut == NULL the cut is found automatically: the tensors produced in the
 * shared part (mt_graph_cone_labels == -1) and read by a head's part. */
typedef struct mt_split {
    mt_graph *encoder;
    int nheads;
    mt_graph **heads;     /* heads[k] computes original output k */
    int ncut;
    char **cut_names;     /* the shared features, encoder output order */
} mt_split;
mtmi_status mt_graph_split(const mt_graph *g, const char *const *cut, int ncut, mt_split *out);
void mt_split_free(mt_split *s);

/* FLOPs of one node (multiply-add = 2), by its inferred shapes. */
double mt_node_flops(const mt_graph *g, const mt_node *n);

#endif
