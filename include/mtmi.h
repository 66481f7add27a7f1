/*
 * mtmi.h - the one public header of libmtmi.
 *
 * libmtmi loads a multi-task vision network exported to ONNX, optimizes it,
 * compiles it for a device and precision, and runs it.  Every object is an
 * opaque handle owned by the caller; nothing here keeps global state, so two
 * models (or two plans of one model on two devices) can be used at once, also
 * from different threads (one thread per plan at a time).
 *
 * Errors: every function that can fail returns an mtmi_status.  On failure
 * mtmi_last_error() returns a one-line message saying what and where (file,
 * node, op, tensor).  The message is kept per thread, so it is valid until the
 * next failing call on the same thread.
 */
#ifndef MTMI_H
#define MTMI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header.  The shared library's SONAME carries the
 * major version (libmtmi.so.0): a program built against one major version
 * needs that one.  mtmi_version() says which library a program actually
 * runs with.  CMake reads the version from these three lines (project(),
 * SOVERSION, mtmi.pc, mtmiConfigVersion.cmake), so they are its one source. */
#define MTMI_VERSION_MAJOR 0
#define MTMI_VERSION_MINOR 1
#define MTMI_VERSION_PATCH 0
#define MTMI_STRINGIFY_(x) #x
#define MTMI_STRINGIFY(x) MTMI_STRINGIFY_(x)
#define MTMI_VERSION                                                                    \
    MTMI_STRINGIFY(MTMI_VERSION_MAJOR) "." MTMI_STRINGIFY(MTMI_VERSION_MINOR) "." \
        MTMI_STRINGIFY(MTMI_VERSION_PATCH)
#define MTMI_MAX_RANK 8

/* What libmtmi.so exports: the library is compiled with hidden visibility
 * (-fvisibility=hidden), so only the functions declared here with MTMI_API
 * are visible to programs; the internal mt_* functions are not (a linker
 * version script, src/api/libmtmi.map, keeps anything else out too). */
#if defined(__GNUC__) || defined(__clang__)
#define MTMI_API __attribute__((visibility("default")))
#else
#define MTMI_API
#endif

typedef enum mtmi_status {
    MTMI_OK = 0,
    MTMI_ERR_IO = 1,          /* file missing, unreadable or unwritable   */
    MTMI_ERR_PARSE = 2,       /* corrupt or truncated ONNX / PNG / cache   */
    MTMI_ERR_UNSUPPORTED = 3, /* operator, attribute or dtype we lack      */
    MTMI_ERR_SHAPE = 4,       /* shapes that do not fit together           */
    MTMI_ERR_DEVICE = 5,      /* device missing or failing                 */
    MTMI_ERR_NOMEM = 6,
    MTMI_ERR_ARG = 7,         /* bad argument from the caller              */
    MTMI_ERR_INTERNAL = 8
} mtmi_status;

/* Element types use ONNX's TensorProto codes so they round-trip unchanged. */
typedef enum mtmi_dtype {
    MTMI_UNDEFINED = 0,
    MTMI_FLOAT = 1,
    MTMI_UINT8 = 2,
    MTMI_INT8 = 3,
    MTMI_INT32 = 6,
    MTMI_INT64 = 7,
    MTMI_BOOL = 9,
    MTMI_FLOAT16 = 10,
    MTMI_DOUBLE = 11
} mtmi_dtype;

/* A caller-owned tensor descriptor used to pass data in and out. */
typedef struct mtmi_tensor {
    mtmi_dtype dtype;
    int rank;
    int64_t dims[MTMI_MAX_RANK];
    void *data;
} mtmi_tensor;

/* The message of the last failure on this thread ("" if none). */
MTMI_API const char *mtmi_last_error(void);
/* A short fixed name for a status code. */
MTMI_API const char *mtmi_status_name(mtmi_status s);
/* The version of the library in use ("0.1.0"), which may differ from the
 * MTMI_VERSION a program was compiled with (same major version). */
MTMI_API const char *mtmi_version(void);

/* ------------------------------------------------------------------ model */
typedef struct mtmi_model mtmi_model;

typedef struct mtmi_load_options {
    /* External-data initializers whose weights file is missing are normally
     * an error.  With fill_missing_weights set they are filled with seeded
     * random values (normal / sqrt(fan_in)): for graph-only exports used in
     * benchmarks and tests. */
    int fill_missing_weights;
    uint64_t seed;
    /* Skip optimization passes (folding, fusion); for debugging. */
    int no_optimize;
    /* Budgets that keep a small hostile file from allocating gigabytes
     * (0 = the default; the error names the node or tensor and the size):
     * bytes of random weights fill_missing_weights may create in all
     * (default 512 MiB), and bytes of constants that folding may create
     * each time the model is specialized to shapes (default 256 MiB plus
     * twice the model's weights; the reference network at 1024x1024 folds
     * less than 1 MiB). */
    size_t max_random_bytes;
    size_t max_fold_bytes;
} mtmi_load_options;

MTMI_API mtmi_status mtmi_model_load(const char *path, const mtmi_load_options *opt,
                                     mtmi_model **out);
MTMI_API void mtmi_model_free(mtmi_model *m);

MTMI_API int mtmi_model_num_inputs(const mtmi_model *m);
MTMI_API int mtmi_model_num_outputs(const mtmi_model *m);
MTMI_API const char *mtmi_model_input_name(const mtmi_model *m, int i);
MTMI_API const char *mtmi_model_output_name(const mtmi_model *m, int i);
/* Declared shape of an input; dynamic dimensions are reported as -1. */
MTMI_API mtmi_status mtmi_model_input_shape(const mtmi_model *m, int i, int *rank,
                                            int64_t dims[MTMI_MAX_RANK]);

/* A human-readable report (inputs, outputs, op histogram, parameters, FLOPs
 * per subgraph).  Returns a malloc'ed string the caller frees. */
MTMI_API char *mtmi_model_describe(mtmi_model *m);

/* ------------------------------------------------------ model preparation */
typedef enum mtmi_weight_init {
    /* Weights drawn by role (LayerNorm scales near 1, He convolutions,
     * zero-mean classifier rows): the class map holds many classes and the
     * depth map spans a wide range, so results can be told apart. */
    MTMI_INIT_SPREAD = 0,
    /* The distributions of reference/mtmi_torch.py's randomize(): nearly
     * constant outputs (one class, depth within ~0.01). */
    MTMI_INIT_TORCH = 1
} mtmi_weight_init;

typedef struct mtmi_reference_options {
    uint64_t seed;       /* seeded random weights */
    int height, width;   /* multiples of 32; 0 = 1024 */
    int batch;           /* 0 = 1 */
    mtmi_weight_init init;
} mtmi_reference_options;

/* The reference MTMI network of SPEC.md (MiT-B0 encoder, segmentation and
 * depth heads) built in C with seeded random weights, with the structure
 * and ops of a PyTorch export: what `mtmi run` uses when given no model. */
MTMI_API mtmi_status mtmi_model_make_reference(const mtmi_reference_options *opt, mtmi_model **out);

typedef struct mtmi_save_options {
    /* Fold, fuse and tidy before writing (`mtmi simplify`); the fused ops
     * are written back as standard ONNX unless keep_fused is set (then
     * they stay in the "mtmi" domain, which only mtmi runs). */
    int simplify;
    int keep_fused;
    /* Weights over this many bytes go to "<path>.data" (0 = all inline). */
    size_t external_threshold;
    /* Concrete input shapes for simplify, as in mtmi_plan_options. */
    int num_input_shapes;
    const mtmi_tensor *input_shapes;
} mtmi_save_options;

/* Writes the model as ONNX, atomically (no partial file on failure). */
MTMI_API mtmi_status mtmi_model_save(mtmi_model *m, const char *path, const mtmi_save_options *opt);

/* Cuts the model at its shared features (found automatically: the tensors
 * computed by the part common to several outputs and read by a head; or the
 * ncut tensors named in cut) and writes outdir/encoder.onnx and one
 * outdir/<output>.onnx per head, each a model ONNX Runtime runs.  Running
 * the encoder then the heads reproduces the model's outputs exactly.  On
 * failure no file of the set is left behind. */
MTMI_API mtmi_status mtmi_model_split(mtmi_model *m, const char *const *cut, int ncut, const char *outdir);

/* ------------------------------------------------------------ calibration */
typedef enum mtmi_calib_method {
    MTMI_CALIB_ENTROPY = 0,    /* TensorRT EntropyCalibrator2 (KL, 2048 bins, 128 levels) */
    MTMI_CALIB_MINMAX = 1,     /* max |x| */
    MTMI_CALIB_PERCENTILE = 2  /* a percentile of |x| */
} mtmi_calib_method;

typedef struct mtmi_calibrate_options {
    mtmi_calib_method method;
    double percentile;     /* for MTMI_CALIB_PERCENTILE; 0 = 99.99 */
    /* "heads" (default: every node of a single output), "seg", "depth",
     * "encoder", "all", or an output's name. */
    const char *subgraph;
    int threads;           /* CPU threads; 0 = all cores */
    /* Experimental switches, as mtmi_plan_options.tuning (e.g.
     * "calib_hist_dir=DIR" writes every tensor's histogram there). */
    const char *tuning;
} mtmi_calibrate_options;

/* Runs the model in FP32 on the CPU over nframes inputs (each a whole model
 * input, already preprocessed; all of one shape), collects statistics of
 * every float activation of the subgraph and writes the per-tensor scales
 * as a TensorRT-format calibration cache (atomically). */
MTMI_API mtmi_status mtmi_calibrate(mtmi_model *m, const mtmi_tensor *frames, int nframes,
                                    const mtmi_calibrate_options *opt, const char *cache_path);

/* ----------------------------------------------------------------- images */
/* Reads a PNG (gray, palette, RGB, with or without alpha, 8 or 16 bits)
 * and makes it the reference network's input, as `mtmi run
 * --host-preprocess` and `mtmi calibrate` do: centre-cropped to the aspect
 * of width x height, resized (bilinear) to that, and normalized per RGB
 * channel as (pixel - mean) / std with ImageNet's mean (123.675, 116.28,
 * 103.53) and std (58.395, 57.12, 57.375) on 0..255 values.  Writes
 * 3 * height * width floats, channel-major (CHW), to chw: one frame of an
 * NCHW float input. */
MTMI_API mtmi_status mtmi_image_load(const char *path, int height, int width, float *chw);

/* ------------------------------------------------------------------- plan */
typedef struct mtmi_plan mtmi_plan;

typedef struct mtmi_plan_options {
    /* A device in the grammar every device string of mtmi follows:
     * "cpu", "cpu:N" (the N-th share of the cores), "cuda:N" (GPU N),
     * "cuda:N.smK" (K multiprocessors of GPU N), optionally with
     * "/fp32", "/fp16" or "/int8" (then precision, if given, must agree).
     * NULL = "cpu". */
    const char *device;
    /* "fp32" (default), "fp16" (CUDA), "int8" (needs a calibration cache,
     * or a model with QuantizeLinear / DequantizeLinear nodes, for which
     * int8 is the default). */
    const char *precision;
    /* CPU threads; 0 = all cores (more than the online cores are not used). */
    int threads;
    /* Concrete input shapes; rank 0 = use the model's declared shape. */
    int num_input_shapes;
    const mtmi_tensor *input_shapes;
    /* Precision "int8": a calibration cache in TensorRT's text format
     * (mtmi calibrate, or TensorRT's own).  The heads (nodes not shared
     * by several outputs; every node of a one-output model) run in INT8.
     * NULL with a Q/DQ model: the layers the model quantized run in INT8
     * with its own scales (a cache given wins over them). */
    const char *calibration_cache;
    /* Experimental switches for measurements, "key=value;key=value"
     * (e.g. "cuda_no_fuse=mlp,upconv;pdl=1"; the keys are documented in
     * src/core/tuning.h, where they may change between versions).  NULL =
     * the defaults, which are what mtmi is tuned and tested with. */
    const char *tuning;
} mtmi_plan_options;

MTMI_API mtmi_status mtmi_plan_create(mtmi_model *m, const mtmi_plan_options *opt,
                                      mtmi_plan **out);
MTMI_API void mtmi_plan_free(mtmi_plan *p);

/* Shape of output i of the plan (all dims concrete). */
MTMI_API mtmi_status mtmi_plan_output_shape(const mtmi_plan *p, int i, int *rank,
                                            int64_t dims[MTMI_MAX_RANK]);

/* Runs the plan.  inputs[i].data must hold the plan's input i (dtype and
 * shape checked); outputs[i].data must point to caller memory of the size of
 * output i (dims are filled in). */
MTMI_API mtmi_status mtmi_plan_run(mtmi_plan *p, const mtmi_tensor *inputs, int ninputs,
                                   mtmi_tensor *outputs, int noutputs);

/* --------------------------------------------------------------- pipeline */
/* The model split at its shared features into an encoder and one stage per
 * head, each stage on its own device and precision, with several frames in
 * flight: the heads of frame t run while the encoder runs frame t+1. */
typedef struct mtmi_pipeline mtmi_pipeline;
#define MTMI_MAX_FRAMES_IN_FLIGHT 64

/* What an application takes of a float model output, made on the device of
 * the head that computes it, so that only that crosses to the host (a
 * 19-class 1024x1024 segmentation: 1 MB of class map, 19 MB of int8
 * logits, 80 MB of float32 logits).  Bits of mtmi_result_request.forms. */
typedef enum mtmi_result_form {
    MTMI_RESULT_FLOAT = 1,    /* the output as computed, float32                     */
    MTMI_RESULT_FP16 = 2,     /* float16 (round to nearest even)                      */
    MTMI_RESULT_INT8 = 4,     /* int8 codes q and, as a second result, float32 scales
                               * [N]: per batch element scale = max|x| / 127 (1 when
                               * that is 0 or infinite), q = round-half-even(clamp(x /
                               * scale, -127, 127)), NaN -> 0; x ~ q * scale          */
    MTMI_RESULT_CLASSES = 8   /* uint8 [N, d2, ...]: the index of the largest value
                               * along axis 1 (a class map); the first of equal
                               * maxima, NaN never wins; at most 256 channels        */
} mtmi_result_form;

typedef struct mtmi_result_request {
    const char *output;       /* a model output's name                               */
    unsigned forms;           /* MTMI_RESULT_* bits; 0 = not wanted (a head that makes
                               * nothing wanted does not run)                          */
    int on_device;            /* 1 = the results stay in the GPU's memory (see
                               * mtmi_pipeline_collect_results); the head must run on
                               * a GPU                                                 */
} mtmi_result_request;

typedef struct mtmi_pipeline_options {
    /* "encoder=cpu/fp32,seg=cpu:1/int8,depth=cuda:0/fp16" (stages named
     * "encoder" and after the head outputs; a bare device applies to all);
     * NULL or "auto" = a heuristic choice for the devices present. */
    const char *placement;
    int frames_in_flight;            /* 0 = 2; 1 = one frame at a time; at most
                                        MTMI_MAX_FRAMES_IN_FLIGHT */
    int threads;                     /* cores the CPU devices share; 0 = all */
    const char *calibration_cache;   /* for int8 stages (NULL: a Q/DQ model's own
                                        scales; its quantized stages then run int8
                                        under the automatic placement) */
    const mtmi_tensor *input_shape;  /* concrete input shape; NULL = declared */
    /* The results: outputs not named here come as float32 on the host
     * (nresults = 0: every output so, the model's output order). */
    const mtmi_result_request *results;
    int nresults;
    /* Experimental switches for every stage, as mtmi_plan_options.tuning. */
    const char *tuning;
    /* 1 = input 0 takes 8-bit RGB frames, uint8 [N, H, W, 3] (HWC, the
     * pixels of input_shape's N x 3 x H x W), normalized with the model's
     * mean and std on the encoder's device, bit for bit as the host would
     * (what `mtmi run` feeds); 0 = the model's own float input. */
    int image_input;
    /* A saved plan (mtmi_pipeline_save_plan, `mtmi build`): the stages take
     * the algorithm choices it holds instead of searching them again (most
     * of a GPU stage's build time).  Its placement and input shape are
     * used when placement / input_shape are NULL; given ones must agree.
     * Refused, with a one-line error naming the difference, when it was
     * made for another model, calibration cache, input kind, mtmi version,
     * GPU, driver or cuBLASLt / cuDNN version.  NULL = search. */
    const char *saved_plan;
} mtmi_pipeline_options;

MTMI_API mtmi_status mtmi_pipeline_create(mtmi_model *m, const mtmi_pipeline_options *opt, mtmi_pipeline **out);
/* Writes the pipeline's saved plan to path (atomically): every stage's
 * algorithm choices with what they were made for (see
 * mtmi_pipeline_options.saved_plan). */
MTMI_API mtmi_status mtmi_pipeline_save_plan(const mtmi_pipeline *p, const char *path);
MTMI_API void mtmi_pipeline_free(mtmi_pipeline *p);
MTMI_API int mtmi_pipeline_frames_in_flight(const mtmi_pipeline *p);

/* The pipeline's results, head by head in the model's output order, each
 * head's in the order FLOAT, FP16, INT8 (codes, then scales), CLASSES.
 * Without result requests: the model's outputs, in order, float32. */
MTMI_API int mtmi_pipeline_num_results(const mtmi_pipeline *p);
typedef struct mtmi_result_info {
    const char *name;         /* "<output>", "<output>:fp16", ":int8", ":scale", ":classes" */
    int output;               /* the model output it is made of                       */
    mtmi_result_form form;    /* the scales of an INT8 result: MTMI_RESULT_INT8 too     */
    int is_scale;
    mtmi_dtype dtype;
    int rank;
    int64_t dims[MTMI_MAX_RANK];
    int on_device;            /* in the memory of GPU `device`                         */
    int device;
} mtmi_result_info;
MTMI_API mtmi_status mtmi_pipeline_result_info(const mtmi_pipeline *p, int i, mtmi_result_info *info);
/* Result i's shape (as mtmi_pipeline_result_info). */
MTMI_API mtmi_status mtmi_pipeline_output_shape(const mtmi_pipeline *p, int i, int *rank, int64_t dims[MTMI_MAX_RANK]);
/* Copies the inputs into a free frame slot and starts the frame; `user` comes
 * back with its results.  With all slots in flight, collect one first. */
MTMI_API mtmi_status mtmi_pipeline_submit(mtmi_pipeline *p, const mtmi_tensor *inputs, int ninputs, void *user);
/* Waits for the oldest frame (frames finish in order) and copies its
 * results into the caller's buffers (one per result, in result order; dims
 * are filled in).  Results left on a GPU are not copied: take those with
 * mtmi_pipeline_collect_results.  A failure in any stage is reported here,
 * naming the frame and the stage.  The frame's slot is free again when this
 * returns. */
MTMI_API mtmi_status mtmi_pipeline_collect(mtmi_pipeline *p, mtmi_tensor *outputs, int noutputs, void **user);

/* The results of the oldest frame without a copy.
 *
 * Ownership and lifetime: every results[i].tensor.data points into the
 * pipeline's own buffers for that frame: pinned host memory, or (on_device)
 * device memory of GPU `device`.  They belong to the pipeline; the caller
 * reads them, never frees them, and gives the frame back with
 * mtmi_pipeline_release before the next mtmi_pipeline_collect_results (a
 * frame can be held while more frames are submitted, up to the frames in
 * flight).  After release the buffers are reused by a later frame.
 *
 * Device results: ready_event (a cudaEvent_t) was recorded on the head's
 * stream once the result was written, and has completed when this returns;
 * a consumer on its own stream may read the buffer at once (or
 * cudaStreamWaitEvent on it, which returns immediately).  To keep reading
 * asynchronously after giving the frame back, pass mtmi_pipeline_release an
 * event recorded on the consumer's stream after its reads: the pipeline's
 * later writes into those buffers wait for it on the GPU (no host sync). */
typedef struct mtmi_result {
    mtmi_tensor tensor;
    int on_device, device;
    void *ready_event;        /* device results: cudaEvent_t; NULL otherwise */
} mtmi_result;
MTMI_API mtmi_status mtmi_pipeline_collect_results(mtmi_pipeline *p, mtmi_result *results, int nresults, void **user);
/* Gives back the frame of the last mtmi_pipeline_collect_results.
 * after_event: NULL, or a cudaEvent_t the pipeline's next writes into this
 * frame's device buffers wait for on the GPU; it must stay valid until as
 * many more frames as there are frames in flight have been collected. */
MTMI_API mtmi_status mtmi_pipeline_release(mtmi_pipeline *p, void *after_event);

#ifdef __cplusplus
}
#endif
#endif /* MTMI_H */
