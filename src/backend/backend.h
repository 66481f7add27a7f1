/* backend: what every device backend shares, and the one contract between
 * a backend and whoever runs plans on it (the pipeline, the plan API, the
 * app).
 *
 *  - the device spec and its grammar: "cpu", "cpu:2/fp32", "cuda:0/fp16",
 *    "cuda:1.sm16/int8" mean the same in a placement, the plan API and the
 *    command line (mt_devspec_parse is the only parser);
 *  - the tensor view (mt_tview) every kernel and backend reads and writes;
 *  - the backend interface (mt_backend, versioned): supports(), create(),
 *    a synchronous run() and a stream-ordered submit(), memory and events;
 *  - the experimental tuning switches (core/tuning.h) reach a backend
 *    through mt_stage_cfg.
 *
 * The registry (which backend runs which device) and the one-stage plan
 * over this interface are in backend/registry.h: they sit above the
 * backends (src/cpu, src/cuda), this header below them. */
#ifndef MT_BACKEND_H
#define MT_BACKEND_H

#include "core/tuning.h"
#include "graph/graph.h"

/* ------------------------------------------------------------ tensor view
 * A tensor as a kernel or a backend sees it: concrete shape, data in a
 * plan's arena, the caller's buffers, device memory or a constant. */
typedef struct mt_tview {
    void *data;
    int dtype;
    int rank;
    int64_t dims[MT_MAX_RANK];
} mt_tview;

static inline int64_t mt_tview_numel(const mt_tview *t) { return mt_numel(t->rank, t->dims); }

/* ---------------------------------------------------------------- devices */
typedef enum mt_dev_kind { MT_DEV_CPU = 0, MT_DEV_CUDA = 1 } mt_dev_kind;
typedef enum mt_precision { MT_PREC_FP32 = 0, MT_PREC_FP16 = 1, MT_PREC_INT8 = 2 } mt_precision;

/* "cpu", "cpu:2/fp32", "cuda:0/fp16", "cuda:1.sm16/int8" ("gpu" = "cuda"). */
typedef struct mt_devspec {
    mt_dev_kind kind;
    int index;         /* cpu:N -> the N-th share of the cores; cuda:N -> GPU N */
    int sms;           /* cuda:N.smK -> a green context of K multiprocessors; 0 = whole GPU */
    mt_precision prec;
} mt_devspec;

/* The one device grammar:
 *   device    := cpu[:N] | cuda[:N][.smK] | gpu[:N][.smK]
 *   devspec   := device[/fp32|/fp16|/int8]
 * Without a precision: fp32 on the CPU, fp16 on CUDA (the placement's
 * default); mt_devspec_has_precision tells whether one was written. */
mtmi_status mt_devspec_parse(const char *s, mt_devspec *d);
int mt_devspec_has_precision(const char *s);
mtmi_status mt_precision_parse(const char *s, mt_precision *p);
const char *mt_devspec_str(const mt_devspec *d, char *buf, size_t cap);
/* The device part only ("cuda:0.sm16"), without the precision. */
const char *mt_device_str(const mt_devspec *d, char *buf, size_t cap);
const char *mt_precision_name(mt_precision p);
/* Same executor: kind, index and SM partition equal (precision aside). */
int mt_devspec_same_device(const mt_devspec *a, const mt_devspec *b);
/* Cores this process may use. */
int mt_num_cores(void);

/* --------------------------------------------------------------- backends
 * One mt_backend per device kind; a plan is one subgraph compiled for one
 * device and precision.  INT8 is a graph rewrite done before create()
 * (mt_plan_create, backend/registry.h): a backend gets QConv / QLinear
 * nodes in its graph and d->prec = MT_PREC_INT8 says to keep the float
 * tensors between them in its reduced precision. */

/* Bumped when an entry changes meaning; the registry refuses a backend
 * built against another version. */
#define MT_BACKEND_VERSION 3

/* Where a tensor exchanged between stages lives. */
enum { MT_MEM_HOST = 0,   /* host memory any backend reads (CUDA: pinned) */
       MT_MEM_DEVICE = 1  /* the device's own memory (CUDA: cudaMalloc)  */ };

#define MT_STAGE_MAX_IO 16
/* One run's inputs and outputs, in the order of the subgraph's inputs and
 * outputs, with the memory kind of each buffer. */
typedef struct mt_stage_io {
    int nin, nout;
    mt_tview in[MT_STAGE_MAX_IO];
    mt_tview out[MT_STAGE_MAX_IO];
    uint8_t in_mem[MT_STAGE_MAX_IO];
    uint8_t out_mem[MT_STAGE_MAX_IO];
    /* Device outputs the application wants on the host: after the run,
     * out[i] (device memory) is copied to out_host[i] (pinned host memory)
     * on a stream of its own, so that the copy overlaps the stage's next
     * run instead of queueing before it; done is called once the copies
     * are complete.  NULL = none. */
    void *out_host[MT_STAGE_MAX_IO];
    /* Host inputs to upload first: in[i] (device memory) is filled from
     * in_host[i] (pinned host memory) on a stream of the stage's own, so
     * the upload overlaps the stage's previous run.  NULL = none. */
    const void *in_host[MT_STAGE_MAX_IO];
    /* Device events (backend->event_create; NULL = none, and always NULL
     * for backends without events):
     *   wait_events   the run waits for both (NULL entries skipped) on
     *                 the device: the encoder's ready_event of the same
     *                 frame (a head that got the frame as soon as the
     *                 encoder had queued it), and an application still
     *                 reading the slot's previous results on its stream,
     *   ready_event   recorded once the run's outputs are written,
     *   copy_begin / copy_end  recorded around the out_host copies (timing
     *                 events: the pipeline reports the copy time). */
    void *wait_events[2], *ready_event, *copy_begin, *copy_end;
} mt_stage_io;

/* Completion signal: called exactly once per submit, with the run's status
 * and (on failure) its one-line message.  An asynchronous device calls it
 * from whatever thread notices completion (e.g. a stream callback): it
 * only takes a mutex and signals condition variables, so it is safe there,
 * but it must not be called with the backend's own locks held. */
typedef void (*mt_done_fn)(void *arg, mtmi_status s, const char *msg);

struct mt_calib_cache;
/* Per-plan settings a backend gets at create time. */
typedef struct mt_stage_cfg {
    int threads;                          /* CPU threads for this plan      */
    /* INT8: activation scales (TensorRT calibration cache, see
     * src/quant/quant.h); read by mt_plan_create's rewrite, not by the
     * backends. */
    const struct mt_calib_cache *calib;
    /* Where each of the stage's inputs / outputs will be in every run
     * (MT_MEM_*, in the subgraph's order; NULL = all host): a backend may
     * skip staging for tensors that stay in its device memory. */
    const unsigned char *in_mem, *out_mem;
    /* The graph already holds its INT8 rewrite (the plan API quantizes
     * only the heads): mt_plan_create does not rewrite it again. */
    int graph_quantized;
    /* Experimental switches (NULL = defaults). */
    const mt_tuning *tuning;
    /* Saved plans (backend/choices.h): the backend records the decisions
     * it measured here, or with choices->replay takes them from here
     * instead of measuring.  NULL = measure, keep nothing. */
    struct mt_choices *choices;
} mt_stage_cfg;

typedef struct mt_backend {
    int version;         /* MT_BACKEND_VERSION */
    const char *name;
    /* Can this backend run device d (present, precision taken) and, when
     * g is not NULL, every operator of g?  A question, not an attempt: no
     * plan is made.  One-line error ("cuda:1: no such GPU (this machine
     * has 1)", "node 'x' (Foo): not supported by ...") if not. */
    mtmi_status (*supports)(const mt_devspec *d, const mt_graph *g);
    /* Compiles subgraph g (all shapes concrete; borrowed for the plan's
     * life) for d, with the settings in cfg (may be NULL). */
    mtmi_status (*create)(const mt_devspec *d, const mt_graph *g, const struct mt_stage_cfg *cfg, void **plan);
    /* Called once on a thread before it runs the plan: the CPU backend
     * sets the OpenMP thread count, CUDA makes its context current. */
    mtmi_status (*bind_thread)(void *plan);
    /* One synchronous run with every input and output in host memory (the
     * plan API): returns when the outputs are written.  out[i].data is the
     * caller's buffer; dtype and dims are filled in. */
    mtmi_status (*run)(void *plan, const mt_tview *in, int nin, mt_tview *out, int nout);
    /* Stream-ordered: starts one run of the plan on io and calls done
     * when it has finished.  Synchronous devices run and call done before
     * returning; asynchronous ones queue the work (a stream) and return at
     * once.  The buffers in io stay untouched by the caller until done is
     * called.  A submit that cannot even start returns non-zero and does
     * NOT call done. */
    mtmi_status (*submit)(void *plan, const mt_stage_io *io, mt_done_fn done, void *arg);
    /* Memory for stage-to-stage tensors (mem = MT_MEM_*); 64-byte aligned. */
    void *(*alloc)(const mt_devspec *d, size_t bytes, int mem);
    void (*release)(const mt_devspec *d, void *ptr, int mem);
    /* Bytes the plan holds on its device (arena, scratch, packed weights). */
    size_t (*memory)(void *plan);
    /* Bytes in use on the device now, all users together (CUDA:
     * cudaMemGetInfo); NULL for devices that share the host's memory. */
    size_t (*device_used)(const mt_devspec *d);
    /* Device events (optional; NULL entries = a device without them): an
     * event the plan's streams can record, with timing when `timing`;
     * milliseconds between two completed timing events (negative if
     * unknown). */
    void *(*event_create)(void *plan, int timing);
    void (*event_destroy)(void *event);
    double (*event_elapsed_ms)(void *begin, void *end);
    /* Measurement (optional): median ms of `iters` runs of the whole plan
     * on the inputs already in place, with nothing around it (CUDA: graph
     * replays). */
    mtmi_status (*bench)(void *plan, int iters, double *median_ms);
    /* Per-node timing (optional): switch it on, then the last run's time
     * per graph node (NULL when off). */
    void (*set_profile)(void *plan, int on);
    const double *(*node_ms)(void *plan, int *count);
    /* Waits for the plan's outstanding work (whose done callbacks may still
     * fire during the wait), then frees it.  Called before the caller
     * frees the buffers that work used. */
    void (*destroy)(void *plan);
    /* Saved plans (optional): one line naming what the backend's recorded
     * decisions for device d depend on beyond the graph (CUDA: the GPU
     * model, driver and library versions), stored in a saved plan and
     * compared when it is loaded.  NULL = nothing (decisions that do not
     * depend on the machine, or none). */
    mtmi_status (*identity)(const mt_devspec *d, char *buf, size_t cap);
} mt_backend;

/* The backends (src/cpu/backend.c, src/cuda/backend.c); the registry
 * (backend/registry.h) chooses among them. */
const mt_backend *mt_backend_cpu(void);
const mt_backend *mt_backend_cuda(void);

#endif
