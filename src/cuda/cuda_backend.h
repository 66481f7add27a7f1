/* cuda: the GPU backend.  Compiles an optimized, shape-specialized graph
 * (the IR of graph/graph.h after mt_model_specialize: ONNX ops plus the
 * mtmi.* fused ops) into a plan for one GPU: a layout pass that turns
 * Transpose / Reshape / Slice / Gather-by-constant into strided views,
 * device memory planned once by lifetime, FP16 (or FP32) storage with FP32
 * accumulation, GEMMs through cuBLASLt, convolutions through cuDNN or our
 * own kernels, fused elementwise chains, LayerNorm, flash attention and
 * resize kernels; the whole plan replayed as one CUDA graph.
 *
 * Everything here is plain C; kernels live in *.cu behind extern "C". */
#ifndef MT_CUDA_BACKEND_H
#define MT_CUDA_BACKEND_H

#include "cpu/cpu.h" /* mt_tview */
#include "graph/graph.h"

typedef struct mt_cuda_plan mt_cuda_plan;

/* Parses "cuda" / "cuda:N" into N; -1 if malformed. */
int mt_cuda_parse_device(const char *dev);

/* MTMI_OK if GPU `device` exists and can be used; otherwise a one-line
 * error ("no CUDA GPU is visible ...", "only 1 GPU ..."). */
mtmi_status mt_cuda_check_device(int device);

/* Compiles g (all shapes concrete; the plan borrows g) for GPU `device`,
 * FP16 storage when fp16 != 0, else FP32. */
mtmi_status mt_cuda_plan_create(const mt_graph *g, int device, int fp16, mt_cuda_plan **out);
void mt_cuda_plan_free(mt_cuda_plan *p);

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
mtmi_status mt_cuda_plan_profile(mt_cuda_plan *p, FILE *f);

#endif
