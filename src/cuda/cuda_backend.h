/* cuda: the GPU backend.  Compiles an optimized, shape-specialized graph
 * (the IR of graph/graph.h after mt_model_specialize: ONNX ops plus the
 * mtmi.* fused ops) into a plan for one GPU: a layout pass that turns
 * Transpose / Reshape / Slice / Gather-by-constant into strided views,
 * device memory planned once by lifetime, FP16 (or FP32) storage with FP32
 * accumulation, GEMMs through cuBLASLt, convolutions through cuDNN or our
 * own kernels, fused elementwise chains, LayerNorm, flash attention and
 * resize kernels; the whole plan replayed as one CUDA graph.
 *
 * Everything here is plain C; kernels live in *.cu behind extern "C".
 * backend.c is the CUDA mt_backend (backend/backend.h) over these plans. */
#ifndef MT_CUDA_BACKEND_H
#define MT_CUDA_BACKEND_H

#include "backend/backend.h" /* mt_tview, mt_tuning */
#include "graph/graph.h"

typedef struct mt_cuda_plan mt_cuda_plan;

/* MTMI_OK if GPU `device` exists and can be used; otherwise a one-line
 * error ("no CUDA GPU is visible ...", "only 1 GPU ..."). */
mtmi_status mt_cuda_check_device(int device);

/* MTMI_OK if the planner has a handler for every live node of g (the
 * operator level: attributes a handler refuses still fail at creation). */
mtmi_status mt_cuda_graph_supported(const mt_graph *g);

/* Compiles g (all shapes concrete; the plan borrows g) for GPU `device`,
 * FP16 storage when fp16 != 0, else FP32. */
mtmi_status mt_cuda_plan_create(const mt_graph *g, int device, int fp16, mt_cuda_plan **out);
void mt_cuda_plan_free(mt_cuda_plan *p);

/* Plan settings beyond the graph (mt_cuda_plan_create_ex). */
#define MT_MAX_IO_BIND 16
typedef struct mt_cuda_plan_opts {
    int fp16;       /* FP16 storage (else FP32), FP32 accumulation either way */
    void *stream;   /* cudaStream_t the plan runs on (not owned); NULL = its own */
    void *ctx;      /* CUcontext made current instead of the device's primary
                     * context (a green context's, for an SM partition) */
    int sms;        /* that partition's multiprocessors (0 = the whole GPU):
                     * persistent kernels size their grids by it */
    /* Inputs / outputs always given in device memory (mt_cuda_plan_enqueue
     * with dev[i] = 1; NULL = none): the plan keeps no staging buffer for
     * them, and every run must bind them. */
    const unsigned char *in_dev, *out_dev;
    const mt_tuning *tuning; /* experimental switches; NULL = defaults (copied) */
    /* Saved plans (backend/choices.h): the algorithm choices are recorded
     * here, or with choices->replay taken from here instead of searched;
     * NULL = search and keep nothing.  Borrowed during create only. */
    struct mt_choices *choices;
} mt_cuda_plan_opts;
mtmi_status mt_cuda_plan_create_ex(const mt_graph *g, int device, const mt_cuda_plan_opts *o, mt_cuda_plan **out);

/* Queues one run on the plan's stream and returns without waiting.  For
 * each input and output, dev[i] says where its buffer is: 0 = host memory
 * (pinned, for asynchronous copies: copied to / from the plan's own staging
 * buffer on the stream), 1 = device memory of this GPU, read or written in
 * place (no copy: the plan captures one CUDA graph per distinct set of
 * device pointers, up to 16 sets, and runs step by step beyond that).
 * Buffers must stay valid until the stream reaches the end of this run. */
mtmi_status mt_cuda_plan_enqueue(mt_cuda_plan *p, const mt_tview *in, const unsigned char *in_dev, int nin,
                                 const mt_tview *out, const unsigned char *out_dev, int nout);
/* The stream runs are queued on (cudaStream_t). */
void *mt_cuda_plan_stream(const mt_cuda_plan *p);
int mt_cuda_plan_device(const mt_cuda_plan *p);

/* A pipeline stage of the CUDA backend (src/cuda/backend.c, the plan behind
 * mt_backend_cuda()): the multiprocessors it may use (its green context's
 * for `cuda:N.smK`; 0 = the whole GPU) and its stream, for tests. */
int mt_cuda_stage_sms(const void *stage);
void *mt_cuda_stage_stream(const void *stage);

/* Runs with host inputs and outputs (graph inputs/outputs in order, dtype
 * and shape as in the graph; outputs are written as the graph's dtypes). */
mtmi_status mt_cuda_plan_run(mt_cuda_plan *p, const mt_tview *in, int nin, mt_tview *out, int nout);

/* --- measurement helpers (benchmarks and tests) --- */
/* Number of parts: 1 + number of heads (part 0 = encoder / shared nodes,
 * part k = nodes only graph output k-1 needs); -1 means the whole plan. */
int mt_cuda_plan_num_parts(const mt_cuda_plan *p);
/* Median milliseconds of `iters` CUDA-graph replays of a part (or -1 for
 * the whole plan) on the inputs already on the device. */
mtmi_status mt_cuda_plan_bench(mt_cuda_plan *p, int part, int iters, double *median_ms);
/* Device bytes the plan holds: arena (activations), weights, workspaces. */
void mt_cuda_plan_memory(const mt_cuda_plan *p, size_t *arena, size_t *weights, size_t *workspace);
/* Device memory the plan took (cudaMemGetInfo before and after creation,
 * the CUDA context excluded). */
size_t mt_cuda_plan_device_delta(const mt_cuda_plan *p);
/* Number of kernel steps, and a per-step profile (ms, op label) of one
 * eager run, printed to f. */
int mt_cuda_plan_num_steps(const mt_cuda_plan *p);
/* How many matches fusion pass `pass` (a name of src/cuda/fuse.c, as
 * MTMI_CUDA_NO_FUSE takes) made when the plan was built; -1 if it did not
 * run (switched off, opt-in, or not for this storage).  For tests: a
 * fusion checked for its bits must also be shown to have fired. */
int mt_cuda_plan_fusions(const mt_cuda_plan *p, const char *pass);
/* The step kinds (names as in the profile listing: "layernorm", "mlp-fused"
 * ...) and how many steps of each kind the plan runs: counts has
 * mt_cuda_num_step_kinds() entries (tests/cuda/test_backend_ops.c). */
int mt_cuda_num_step_kinds(void);
const char *mt_cuda_step_kind_name(int kind);
void mt_cuda_plan_step_counts(const mt_cuda_plan *p, int *counts);
mtmi_status mt_cuda_plan_profile(mt_cuda_plan *p, FILE *f);
/* One line: where creating the plan spent its time, by phase (ms), and how
 * many algorithm searches (timed cuBLASLt candidates, cuDNN Find) it ran. */
void mt_cuda_plan_build_report(const mt_cuda_plan *p, FILE *f);

#endif
