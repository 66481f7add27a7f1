/* quant: INT8 post-training quantization.
 *
 *  - statistics of float activations (histograms of |x|, max |x|) collected
 *    by observing a CPU FP32 plan node by node;
 *  - calibration methods: entropy (TensorRT EntropyCalibrator2), min-max,
 *    percentile;
 *  - calibration caches in TensorRT's text format (read and write);
 *  - the INT8 graph rewrite (FusedConv / Conv / Linear -> mtmi.QConv /
 *    mtmi.QLinear with int8 weights, int32 bias and float multipliers);
 *  - helpers to cut a graph into encoder and heads for calibration.
 *
 *
 * The INT8 arithmetic contract every backend follows (QConv / QLinear, the
 * operators this rewrite makes) is graph/qops.h: the operators belong to
 * the graph, below the backends that run them. */
#ifndef MT_QUANT_H
#define MT_QUANT_H

#include "graph/graph.h"
#include "graph/qops.h"

/* ------------------------------------------------------------ histograms */
#define MT_HIST_BINS 2048

typedef enum mt_calib_method {
    MT_CALIB_ENTROPY = 0,
    MT_CALIB_MINMAX = 1,
    MT_CALIB_PERCENTILE = 2
} mt_calib_method;

/* Histogram of |x| as TensorRT / pytorch-quantization's HistogramCalibrator
 * keep it: the first batch with a nonzero max fixes the bin width
 * (max / 2048); later batches with a larger max append bins of the same
 * width, so there can be more than 2048 bins. */
typedef struct mt_hist {
    double *count;   /* nbins counts */
    int nbins;
    float width;     /* 0 until the first nonzero batch */
    float amax;      /* exact max |x| seen */
    uint64_t total;  /* elements seen (including NaN-free zeros) */
} mt_hist;

void mt_hist_free(mt_hist *h);
/* Adds one batch of n floats. */
mtmi_status mt_hist_add(mt_hist *h, const float *x, int64_t n);
/* The threshold (amax) by each method; percentile in (0, 100]. */
float mt_hist_amax_entropy(const mt_hist *h);
float mt_hist_amax_percentile(const mt_hist *h, double percentile);
/* The KL-divergence search on a bare histogram (bins[0..nbins), bin
 * width w): returns the threshold i*w of the last minimizing i in
 * [128, nbins]; *best_i gets i.  The algorithm, for the record:
 *   p = bins with bins[0] := bins[1] (suppresses the spike of ReLU zeros);
 *   for i in 128..nbins:
 *     P = p[0..i), P[i-1] += sum p[i..]            (clipped outliers)
 *     level(j) = floor(j * 128 / i) for j < i
 *     Q[j] = 0 if p[j] == 0, else the mean of the nonzero p in j's level
 *     D(i) = sum_{P>0} P/|P| * ln((P/|P|) / (Q/|Q|))   (inf if Q = 0 there)
 *   i* = the last argmin.  Identical to pytorch-quantization's
 *   _compute_amax_entropy (NVIDIA's open reference of EntropyCalibrator2). */
float mt_entropy_threshold(const double *bins, int nbins, float width, int *best_i);

/* ------------------------------------------------------------ cache */
typedef struct mt_calib_entry {
    char *name;
    float scale;
    int line;        /* line number in the file it came from (0 = set) */
} mt_calib_entry;

typedef struct mt_calib_cache {
    char *header;    /* e.g. "TRT-8601-EntropyCalibration2" */
    mt_calib_entry *e;
    int n, cap;
    char *path;      /* where it was read from, for messages */
    mt_strset index; /* name -> entry: linear-time parsing of big caches */
    /* The scales of a Q/DQ model (mt_qdq_import; NULL for caches read from
     * files), which the rewrite follows where they say more than a cache:
     * its own weight scales, its float layers, its quantized outputs (see
     * "Q/DQ import" below).  Not owned. */
    const struct mt_qdq_info *qdq;
} mt_calib_cache;

void mt_calib_cache_free(mt_calib_cache *c);
/* Parses TensorRT's text format; `what` names the source in errors, which
 * say "<what>:<line>: ...".  Non-positive, NaN or infinite scales, bad hex,
 * lines without "name: hex" and duplicate names are errors. */
mtmi_status mt_calib_cache_parse(const char *text, size_t len, const char *what, mt_calib_cache *c);
mtmi_status mt_calib_cache_read(const char *path, mt_calib_cache *c);
/* Writes atomically (temporary file + rename). */
mtmi_status mt_calib_cache_write(const char *path, const mt_calib_cache *c);
/* Sets (adds or replaces) a scale. */
mtmi_status mt_calib_cache_set(mt_calib_cache *c, const char *name, float scale);
/* Scale of a tensor, or 0 if absent. */
float mt_calib_cache_get(const mt_calib_cache *c, const char *name);
/* Every name must be a tensor of g (the model as loaded) or of g2 (its
 * optimized form, whose fusions may name new tensors; may be NULL):
 * "<path>:<line>: tensor 'x' is not in the model". */
mtmi_status mt_calib_cache_check(const mt_calib_cache *c, const mt_graph *g, const mt_graph *g2);
/* Parses "name=scale" (scale a float, or 0x<8 hex digits>) into the cache. */
mtmi_status mt_calib_cache_override(mt_calib_cache *c, const char *spec);
/* "TRT-8601-EntropyCalibration2" etc. for a method. */
const char *mt_calib_header(mt_calib_method m);

/* float <-> "3cb9c64a" (big-endian bytes of the IEEE single). */
void mt_scale_to_hex(float s, char hex[9]);
int mt_scale_from_hex(const char *hex, float *s); /* 0 ok, -1 bad */

/* ------------------------------------------------------------ collector */
/* Statistics of a chosen set of tensors, by name, across graphs (the full
 * graph, or an encoder and a head cut from it). */
typedef struct mt_calib_stats {
    int n;
    char **names;
    mt_hist *hist;
} mt_calib_stats;

/* Chooses the tensors to observe in g: the float activations (outputs of
 * nodes with sel[node] != 0, and their non-constant float inputs). */
mtmi_status mt_calib_stats_init(mt_calib_stats *st, const mt_graph *g, const unsigned char *sel);
void mt_calib_stats_free(mt_calib_stats *st);
/* Adds data for a tensor by name (ignored if not chosen). */
mtmi_status mt_calib_stats_add(mt_calib_stats *st, const char *name, const float *x, int64_t n);
int mt_calib_stats_find(const mt_calib_stats *st, const char *name);
/* Scales (amax / 127) of every tensor with data into c.  Tensors that were
 * all zeros get no entry (nothing to quantize).  hist_dir (NULL or "" =
 * none; tuning.calib_hist_dir, MTMI_CALIB_HIST_DIR): every histogram is
 * also written there. */
mtmi_status mt_calib_stats_scales(const mt_calib_stats *st, mt_calib_method m, double percentile, const char *hist_dir,
                                  mt_calib_cache *c);

/* Hooks a CPU plan of graph g so that every node output chosen in st is
 * added after the node runs (mt_cpu_plan_set_observer). */
struct mt_cpu_plan;
typedef struct mt_calib_observer {
    mt_calib_stats *st;
    const struct mt_graph *g;
    int *slot;        /* per value of g: index in st, or -1 */
    mtmi_status status;
} mt_calib_observer;
mtmi_status mt_calib_observer_attach(mt_calib_observer *o, mt_calib_stats *st, const mt_graph *g,
                                     struct mt_cpu_plan *plan);
void mt_calib_observer_free(mt_calib_observer *o);

/* ------------------------------------------------------------ graph side */
/* Which nodes form a subgraph: "encoder" (shared, cone label -1), "all",
 * "heads" (every node of a single output), or a head by name: "seg"
 * (output with more than one channel or named *seg*), "depth" (one
 * channel or named *depth*) or an output's name.  sel[i] = 1 for chosen
 * nodes. */
mtmi_status mt_quant_select(const mt_graph *g, const char *subgraph, unsigned char *sel);
/* Index of the graph output that is the seg / depth head (-1 if none). */
int mt_quant_find_head(const mt_graph *g, const char *which);

/* A new graph computing `outputs` of g from `inputs` (value names of g;
 * inputs become graph inputs, everything not needed is removed). */
mtmi_status mt_graph_extract(const mt_graph *g, char *const *inputs, int ninputs, char *const *outputs,
                             int noutputs, mt_graph **out);
/* The shared features: values made by shared nodes (or graph inputs) that
 * head nodes read, in value order.  names are malloc'ed. */
mtmi_status mt_quant_cut(const mt_graph *g, char ***names, int *count);
void mt_free_names(char **names, int count);

typedef struct mt_quant_report {
    int quantized;       /* nodes turned into QConv / QLinear */
    int skipped;         /* candidate nodes left in float (no input scale) */
    char first_skipped[256];
} mt_quant_report;

/* Rewrites the chosen nodes (sel[node] != 0, or every node if sel is NULL)
 * of an inferred graph to INT8: FusedConv / Conv / Linear whose input has a
 * scale in c become mtmi.QConv / mtmi.QLinear (see the contract above). */
mtmi_status mt_quant_rewrite(mt_graph *g, const mt_calib_cache *c, const unsigned char *sel, mt_quant_report *rep);

/* The head nodes of g to run in INT8 for a plan: every node not shared by
 * several outputs (cone label >= 0).  sel has g->nnodes entries. */
mtmi_status mt_quant_head_nodes(const mt_graph *g, unsigned char *sel);

/* What mtmi_plan_create does for precision "int8": reads the cache (names
 * checked against the model as loaded), then rewrites the head nodes of the
 * optimized graph g.  rep may be NULL. */
mtmi_status mt_quant_plan_graph(const mt_graph *loaded, mt_graph *g, const char *cache_path, mt_quant_report *rep);
/* A pipeline stage's INT8 graph: a copy of subgraph g with every
 * convolution / linear layer whose input has a scale in c rewritten to
 * QConv / QLinear (the rest stays float).  `what` names the stage's device
 * in errors ("device 'cuda:0/int8'"); fails if c is NULL or nothing could
 * be quantized. */
mtmi_status mt_quant_stage_graph(const mt_graph *g, const mt_calib_cache *c, const char *what, mt_graph **out);

/* The 1x1 QConvs over a concat of bilinear-upsampled maps, reassociated in
 * exact integers (reassoc.c; graph/qops.h, mtmi.QUpsampleSum): per-map
 * projections at their own resolution and the exact upsample-sum.  Run
 * on a graph mt_quant_rewrite made; *made (may be NULL): QConvs rewritten. */
mtmi_status mt_quant_reassociate(mt_graph *g, int *made);
/* A new constant of g (a quantized weight, bias or multiplier) named
 * after base, taking over data (freed on failure): its index, or -1. */
int mt_quant_add_const(mt_graph *g, const char *base, int dtype, int rank, const int64_t *dims, void *data);
/* The INT8 rewrite's opt-in passes that tuning t asks for (NULL: none):
 * int8_reassoc (both backends run mtmi.QUpsampleSum: the CPU's
 * kernels_quant.c, the CUDA one's qupsum.cu and fuse_qupsum.c). */
mtmi_status mt_quant_apply_tuning(mt_graph *g, const mt_tuning *t);

/* The encoder's features handed to INT8 heads as int8 (handover.c): for
 * each output of the encoder stage graph `enc` that some heads (their
 * graphs as they will be compiled: INT8 ones already rewritten) read only
 * through QConvs of one scale (rank 4, channels a multiple of 32), enc
 * gets mtmi.QuantizeNHWC(feature) -> "<name>.int8_nhwc" (int8 [N,H,W,C])
 * as an output, and those heads read it instead, their QConvs taking the
 * codes in place (graph/qops.h: the same integers, so the same outputs).
 * The float feature stays an output only while some head still reads it.
 * *made: features handed over.  Graphs are changed in place. */
mtmi_status mt_quant_handover(mt_graph *enc, mt_graph *const *heads, int nheads, int *made);

/* ------------------------------------------------------------ Q/DQ import
 * A model quantized elsewhere (explicit QuantizeLinear / DequantizeLinear,
 * e.g. ONNX Runtime's quantize_static in QDQ format) becomes, at load, a
 * plain float graph plus the per-tensor activation scales that the INT8
 * rewrite above reads, exactly as if they came from a calibration cache
 * (qdq_import.c):
 *  - DequantizeLinear of a constant (int8 weights, int32 biases; per tensor
 *    or per output channel) folds into the float constant q * s, and the
 *    weights' scales are kept for the rewrite (mt_qdq_weight);
 *  - QuantizeLinear(x, s) -> DequantizeLinear(s) pairs go away: their
 *    readers read x, and x gets the scale s.  A Relu of a scaled tensor
 *    gets its input's scale when it has none of its own (symmetric
 *    quantization commutes with Relu), so that a fused Conv+Relu is
 *    requantized where the model quantized the convolution's output; other
 *    readers of a layer's rounded output read it through an Identity, so
 *    that mtmi does not fuse them into the layer past the rounding.
 * Only symmetric int8 is taken (int8 data, zero point 0, positive finite
 * scales, one scale per activation, weights per tensor or along the output
 * channels); anything else is a one-line error naming the node. */

/* A weight of a Q/DQ model, by the name of its float tensor after the
 * import.  The rewrite takes the model's scales (one, or one per output
 * channel) instead of deriving max |w| / 127, so its int8 values are the
 * model's whatever its weight scales were; a weight the model left in
 * float (scale NULL) keeps the layer that reads it float, as the model
 * says, even when the layer's input has a scale. */
typedef struct mt_qdq_weight {
    char *name;
    float *scale;     /* NULL: not quantized by the model */
    int64_t count;    /* 1 (per tensor) or one per output channel */
} mt_qdq_weight;

typedef struct mt_qdq_info {
    mt_calib_cache scales;  /* header "QDQ-model": one entry per quantized tensor;
                             * scales.qdq points back here */
    int pairs;              /* QuantizeLinear -> DequantizeLinear pairs removed */
    int weights;            /* DequantizeLinear of constants folded to float */
    mt_qdq_weight *w;       /* the weights of convolutions and matrix products */
    int nw, capw;
    mt_strset windex;       /* name -> index in w */
} mt_qdq_info;

/* The model's record of weight `name`, or NULL. */
const mt_qdq_weight *mt_qdq_weight_find(const mt_qdq_info *q, const char *name);

/* Imports the Q/DQ nodes of a graph as loaded (topologically sorted), in
 * place.  *out = NULL when g has none (g untouched); else the scales, for
 * mt_qdq_free. */
mtmi_status mt_qdq_import(mt_graph *g, mt_qdq_info **out);
void mt_qdq_free(mt_qdq_info *q);
/* What mtmi_plan_create does for precision "int8" on a Q/DQ model without
 * a calibration cache: every convolution / linear layer of the optimized
 * graph g that the model quantized (its input has a scale in c) is
 * rewritten, encoder included; fails if there is none. */
mtmi_status mt_quant_qdq_plan_graph(mt_graph *g, const mt_calib_cache *c, mt_quant_report *rep);
/* How many nodes of g mt_quant_rewrite(g, c, NULL) would quantize: a
 * pipeline stage of a Q/DQ model holds a quantized region when > 0. */
int mt_quant_count(const mt_graph *g, const mt_calib_cache *c);

/* ------------------------------------------------------------ runner
 * The model cut at its shared features into an encoder and the heads, each
 * a CPU FP32 plan, plus (optionally) the heads in INT8: what `calibrate`
 * and `accuracy` run.  Features can be saved to / loaded from disk so that
 * calibrating a head again does not rerun the encoder. */
typedef struct mt_qrunner {
    mt_graph *full;               /* optimized at the run's input shape */
    char **cut;                   /* shared features (names) */
    int ncut;
    int *cut_is_input;            /* cut[i] is a graph input of full */
    mt_graph *enc, *heads, *heads_q;
    struct mt_cpu_plan *enc_plan, *head_plan, *head_qplan;
    float **feat;                 /* per cut tensor, this frame */
    int64_t *feat_numel;
    float **out, **out_q;         /* per head output, FP32 and INT8 */
    int64_t *out_numel;
    mt_calib_observer obs_enc, obs_head;
    int observing;
    mt_tuning tuning;             /* the switches of its plans (a copy) */
} mt_qrunner;

/* shapes: the input shape (one float input, rank 4).  threads 0 = all.
 * tuning: graph and kernel switches (NULL = defaults); the opt-in graph
 * rewrite (fuse_concat) never applies, so the tensors a cache names are
 * always the standard graph's. */
mtmi_status mt_qrunner_init(mt_qrunner *r, const mt_graph *loaded, const mtmi_tensor *shape, int threads,
                            const mt_tuning *tuning);
void mt_qrunner_free(mt_qrunner *r);
/* Records statistics of st while running (encoder only if with_encoder). */
mtmi_status mt_qrunner_observe(mt_qrunner *r, mt_calib_stats *st, int with_encoder);
/* Builds the INT8 head plan from a cache (names checked against loaded). */
mtmi_status mt_qrunner_quantize(mt_qrunner *r, const mt_graph *loaded, const mt_calib_cache *c, int threads,
                                mt_quant_report *rep);
/* Runs the encoder on input (the graph's input, full shape) into r->feat,
 * then adds the cut tensors to st (if observing). */
mtmi_status mt_qrunner_encode(mt_qrunner *r, const float *input);
/* Runs the FP32 heads (and INT8 heads if built) on r->feat. */
mtmi_status mt_qrunner_heads(mt_qrunner *r, int fp32, int int8);
/* Feature files: a small binary of the cut tensors keyed by the caller. */
mtmi_status mt_qrunner_save_features(const mt_qrunner *r, const char *path);
/* 1 = loaded, 0 = absent or stale (not an error), or an error status < 0 is
 * never returned: unreadable or mismatching files count as absent. */
int mt_qrunner_load_features(mt_qrunner *r, const char *path);

/* ============================================================ issue 15: export
 * Kept apart from the blocks above (the Q/DQ import lives elsewhere). */

/* ------------------------------------------------------------ cache header version
 * TensorRT writes its version number into a cache's header ("TRT-8601-..."
 * from TensorRT 8.6.1; TensorRT 10 writes its own, longer number).  A cache read and written again keeps
 * its header as read (mt_calib_cache_write writes c->header); a new cache
 * gets MT_CALIB_VERSION unless the writer chooses another number. */
#define MT_CALIB_VERSION "8601"
/* version must be 1 to 9 decimal digits: "<what>: '<v>' ..." otherwise. */
mtmi_status mt_calib_check_version(const char *version, const char *what);
/* "TRT-<version>-<algorithm of m>" (malloc'ed; version NULL = MT_CALIB_VERSION). */
mtmi_status mt_calib_header_make(mt_calib_method m, const char *version, char **out);
/* Replaces the version number of c's header, keeping its algorithm
 * ("TRT-8601-MinMaxCalibration" -> "TRT-10300-MinMaxCalibration"); a
 * header without a number ("TRT-EntropyCalibration2") gets one. */
mtmi_status mt_calib_cache_set_version(mt_calib_cache *c, const char *version);

/* ------------------------------------------------------------ Q/DQ export (qdq_export.c)
 * The optimized graph g (as calibration runs it: BatchNorm folded, fused
 * ops) with QuantizeLinear / DequantizeLinear wherever mt_quant_rewrite(g,
 * c, sel) quantizes: a pair (s_x, int8 zero point 0) on the input of every
 * quantized convolution / linear layer, its int8 weights per output
 * channel behind DequantizeLinear(s_w[c], axis 0; axis 1 for a Linear's
 * [K, N]), its bias in float as the int32 arithmetic applies it
 * (Bq[c] * s_x * s_w[c]), and a pair (s_y) on every output the contract
 * requantizes (y_scale > 0), read by all its consumers.  Everything else
 * stays float; fused ops are written as standard ONNX; the opset is raised
 * to 13 if lower (refused when an op changed meaning).  So ONNX Runtime or
 * TensorRT running the file compute what our INT8 plan computes. */
typedef struct mt_qdq_report {
    int quantized;        /* convolutions / linears with int8 weights */
    int activation_pairs; /* QuantizeLinear -> DequantizeLinear pairs on activations */
    int requantized;      /* of which on requantized outputs (y_scale) */
    int skipped;          /* candidates of sel left float (no input scale) */
    int64_t opset;        /* the default-domain opset written */
} mt_qdq_report;
/* The export graph (fails if nothing is quantized); *out is the caller's. */
mtmi_status mt_qdq_graph(const mt_graph *g, const mt_calib_cache *c, const unsigned char *sel, mt_graph **out,
                         mt_qdq_report *rep);
/* mt_qdq_graph written as ONNX to path (atomically; never over a file g
 * was read from). */
mtmi_status mt_qdq_export(const mt_graph *g, const mt_calib_cache *c, const unsigned char *sel, const char *path,
                          mt_qdq_report *rep);

#endif
