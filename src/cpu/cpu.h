/* cpu: the FP32 (and INT8 reference) executor and the CPU backend.
 * Kernels are looked up by op in per-family tables (kernels_*.c, the INT8
 * ones in kernels_quant.c); the executor plans memory once per compiled
 * graph and runs the nodes in order with OpenMP threads; backend.c is the
 * CPU's mt_backend (backend/backend.h). */
#ifndef MT_CPU_H
#define MT_CPU_H

#include "backend/backend.h" /* mt_tview, mt_backend */
#include "graph/graph.h"

typedef struct mt_cpu_ctx {
    int nthreads;
    void *scratch;          /* per-plan scratch, max over nodes of kernel->scratch() */
    size_t scratch_size;
    const mt_tuning *tuning; /* the plan's switches (never NULL in a run) */
} mt_cpu_ctx;

typedef mtmi_status (*mt_cpu_run_fn)(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in,
                                     int nin, mt_tview *out, int nout, mt_cpu_ctx *ctx);
/* Bytes of scratch the node needs at run time (optional); ctx has the
 * plan's thread count and switches (no scratch yet). */
typedef size_t (*mt_cpu_scratch_fn)(const mt_graph *g, const mt_node *n, const mt_cpu_ctx *ctx);
/* Builds per-node state once per plan, e.g. packed weights (optional). */
typedef mtmi_status (*mt_cpu_prepare_fn)(const mt_graph *g, const mt_node *n, const mt_cpu_ctx *ctx, void **state);

enum {
    MT_KERNEL_ALIAS = 1, /* output 0 is input 0's bytes reinterpreted (Reshape...) */
};

typedef struct mt_cpu_kernel {
    const char *op;
    const char *domain;
    mt_cpu_run_fn run;
    mt_cpu_scratch_fn scratch;
    mt_cpu_prepare_fn prepare;
    void (*release)(void *state);
    int flags;
} mt_cpu_kernel;

extern const mt_cpu_kernel mt_kernels_elementwise[];
extern const mt_cpu_kernel mt_kernels_shape[];
extern const mt_cpu_kernel mt_kernels_nn[];
extern const mt_cpu_kernel mt_kernels_fused[];
extern const mt_cpu_kernel mt_kernels_quant[];

const mt_cpu_kernel *mt_cpu_find_kernel(const char *domain, const char *op);

/* Evaluates one node on constant inputs into its outputs' data (for
 * folding); ctx: the const mt_tuning * of the kernels, or NULL. */
mtmi_status mt_cpu_eval(mt_graph *g, mt_node *n, void *ctx);

/* ---------------------------------------------------------------- plans */
typedef struct mt_cpu_plan mt_cpu_plan;

/* Compiles an inferred graph (all shapes concrete).  The plan borrows g. */
mtmi_status mt_cpu_plan_create(const mt_graph *g, int nthreads, mt_cpu_plan **out);
typedef struct mt_cpu_plan_opts {
    int nthreads;              /* 0 = all cores                             */
    const mt_tuning *tuning;   /* experimental switches; NULL = defaults    */
} mt_cpu_plan_opts;
mtmi_status mt_cpu_plan_create_ex(const mt_graph *g, const mt_cpu_plan_opts *o, mt_cpu_plan **out);
void mt_cpu_plan_free(mt_cpu_plan *p);
/* in[i]/out[i] are the graph inputs/outputs in order; out data must be
 * caller memory of the right size. */
mtmi_status mt_cpu_plan_run(mt_cpu_plan *p, const mt_tview *in, int nin, mt_tview *out, int nout);
size_t mt_cpu_plan_arena_bytes(const mt_cpu_plan *p);
/* Per-node times of the last run in ms (NULL if not profiling). */
void mt_cpu_plan_set_profile(mt_cpu_plan *p, int on);
const double *mt_cpu_plan_node_ms(const mt_cpu_plan *p, int *count);
/* Calls fn after every node of a run with the node's output views (for
 * calibration statistics); a failure stops the run.  fn == NULL: off. */
typedef mtmi_status (*mt_cpu_observer_fn)(void *user, const mt_graph *g, const mt_node *n, const mt_tview *out, int nout);
void mt_cpu_plan_set_observer(mt_cpu_plan *p, mt_cpu_observer_fn fn, void *user);

/* Helpers for kernels. */
mtmi_status mt_kernel_fail(const mt_graph *g, const mt_node *n, mtmi_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
