/* pipeline: devices, placement, and the multi-frame pipeline of SPEC 6-8.
 *
 * A multi-task model is split (mt_graph_split) into an encoder and one head
 * per output.  Each of these subgraphs is a *stage* with its own device and
 * precision (the placement) and its own thread.  A *frame slot* holds one
 * frame's input, its shared features and its head outputs; with N slots, N
 * frames are in flight: while the heads of frame t run, the encoder already
 * works on frame t+1.  Stages hand slots to each other through bounded queues
 * (mutex + condition variables: nobody spins), and a frame is done when its
 * last head finishes.  N = 1 is `--sync`: one frame at a time.
 *
 * Devices plug in through mt_backend (backend/backend.h): the CPU backend
 * is src/cpu/backend.c, the CUDA one src/cuda/backend.c; each stage is an
 * mt_plan (backend/registry.h) on its device.
 *
 * CPU threads.  Several CPU devices (`cpu`, `cpu:1`, ...) split the cores in
 * equal shares: each distinct CPU device gets cores/ndevices threads (at
 * least 1; a remainder stays idle), its plans are compiled with that count
 * (the CPU kernels pass it to every OpenMP region), and the stage thread also
 * sets it with omp_set_num_threads() (a per-thread ICV, so devices do not
 * disturb each other).  Two stages on one CPU device take turns (a device
 * lock): a device is a set of cores.
 *
 * OpenBLAS.  Its thread count is process-global, and the CPU executor sets it
 * to its plan's count before every run (openblas_set_num_threads).  With
 * unequal counts, concurrent devices would flip it under each other's GEMMs,
 * and OpenBLAS 0.3.21's sgemm results differ in the last bit between thread
 * counts (measured: 68 of 200 outputs off by 1 ulp), so a pipelined run
 * would no longer reproduce the serial one.  Equal shares make every CPU plan
 * set the same value: the global never changes while frames run, results are
 * exactly the serial run's, and the BLAS threads never exceed the cores.  An
 * explicit per-stage count (mt_stage_desc.threads) overrides the share and
 * gives up that guarantee.  (OpenBLAS >= 0.3.27 has a thread-local count,
 * openblas_set_num_threads_local, which would lift the restriction.)
 */
#ifndef MT_PIPELINE_H
#define MT_PIPELINE_H

#include "backend/registry.h"
#include "model/model.h"

/* ------------------------------------------------------------- placement
 * "encoder=cpu/fp32,depth=cpu:1/fp32,seg=cpu:2/fp32" (commas or spaces);
 * a bare device ("cpu/fp32", "cuda:0/fp16") applies to every stage not
 * named; "auto" leaves the choice to mt_placement_auto. */
#define MT_PLACE_MAX 16
typedef struct mt_placement {
    int is_auto;
    int has_default;
    mt_devspec def;
    int n;
    char names[MT_PLACE_MAX][64];
    mt_devspec dev[MT_PLACE_MAX];
} mt_placement;

mtmi_status mt_placement_parse(const char *s, mt_placement *p);
/* The device of the stage called `stage` ("encoder" or a head's output
 * name): an exact name, else a name that the stage's name contains
 * ("seg" for "seg_logits"), else the default, else cpu/fp32. */
mt_devspec mt_placement_lookup(const mt_placement *p, const char *stage);
/* Fails if the placement names a stage that is not among `stages`. */
mtmi_status mt_placement_check(const mt_placement *p, const char *const *stages, int nstages);
/* "auto": every stage on cuda:0 (FP16 encoder; INT8 heads when there is a
 * calibration cache, else FP16) when a GPU is there, else the encoder on
 * `cpu` and each head on its own CPU device when there are cores for it. */
mtmi_status mt_placement_auto(const char *const *stages, int nstages, int have_calib, mt_placement *p);
/* The placements `auto` measures: on a GPU, everything on cuda:0 (fp16;
 * int8 heads; with two heads or more, each head alone in int8; heads on
 * an SM partition when the backend takes them); on
 * the CPU, all stages on one device, encoder apart from the heads, a
 * device per stage, and with a calibration cache the heads in INT8 (on the
 * encoder's device or apart).  Returns how many were written to out (at
 * most cap). */
int mt_placement_candidates(const char *const *stages, int nstages, int have_calib, mt_placement *out, int cap);
const char *mt_placement_str(const mt_placement *p, const char *const *stages, int nstages, char *buf, size_t cap);

/* ---------------------------------------------------------------- pipeline */
typedef struct mt_pipeline mt_pipeline;

typedef struct mt_stage_desc {
    const char *name;          /* "encoder", or the head's output name      */
    const mt_graph *graph;     /* subgraph, borrowed for the pipeline's life */
    mt_devspec dev;
    const mt_backend *backend; /* NULL = mt_backend_for(&dev); tests plug their own */
    int threads;               /* CPU threads; 0 = this CPU device's share  */
    int graph_quantized;       /* INT8: graph is already the INT8 rewrite (mt_stage_cfg) */
} mt_stage_desc;

typedef struct mt_pipeline_opts {
    int inflight;              /* frames in flight; 0 = 2; 1 = --sync        */
    int total_threads;         /* cores split among CPU devices; 0 = all     */
    /* Test hook: stage index whose run fails at frame inject_frame
     * (inject_stage < 0 = off).  Exercises the shutdown path. */
    int inject_stage;
    int64_t inject_frame;
    /* INT8 stages: a calibration cache, parsed (calib) or a file to read
     * (calib_path; mt_pipeline_from_model checks its names against the
     * model). */
    const struct mt_calib_cache *calib;
    const char *calib_path;
    /* mt_pipeline_from_model: take input 0 as uint8 RGB images [N,H,W,3]
     * and normalize them in the encoder stage (mt_graph_image_input), on
     * its device. */
    int image_input;
    /* mt_pipeline_from_model: per model output (the model's order), the
     * results made of it on its head's device (MT_FORM_* of graph.h, see
     * mt_graph_output_forms; NULL = MT_FORM_FLOAT each), and whether they
     * stay in device memory (1) or come to the host (0; NULL = host). */
    const unsigned *model_forms;
    const unsigned char *model_on_device;
    /* mt_pipeline_create: per pipeline output, 1 = leave it in device
     * memory (its stage must be on a GPU); NULL = every output to the host. */
    const unsigned char *on_device;
    /* Experimental switches for every stage's plan (core/tuning.h; NULL =
     * defaults); mt_pipeline_from_model also specializes the model with
     * them. */
    const mt_tuning *tuning;
    /* Saved plans (pipeline/planfile.h): per stage, in stage order, the
     * decisions its backend uses instead of measuring (backend/choices.h;
     * copied); NULL = measure everything.  Either way each stage keeps its
     * decisions (mt_pipeline_stage_choices: what `mtmi build` saves). */
    const struct mt_choices *replay;
    int nreplay;
} mt_pipeline_opts;
#define MT_PIPELINE_OPTS_DEFAULT {.inflight = 2, .inject_stage = -1}

/* A frame slot as the application sees it. */
typedef struct mt_frame {
    int64_t index;        /* 0, 1, 2, ... in submission order               */
    int slot;
    void *user;           /* the application's own data for this frame      */
    int ninputs, noutputs;
    mt_tview *inputs;     /* host buffers: fill them, then submit           */
    mt_tview *outputs;    /* host results, in the model's output order      */
    double t_submit, t_done;  /* ms on the mt_now_ms clock                  */
    double *t_start, *t_end;  /* per stage (0 = encoder, 1.. = heads)       */
    /* Per stage: ms its device-to-host result copies took (measured by
     * device events; -1 = no copy or no measurement). */
    double *copy_ms;
    /* Per output: where outputs[i].data is (MT_MEM_HOST or MT_MEM_DEVICE)
     * and, for device results, the event recorded once it was written (a
     * cudaEvent_t; complete when wait returns the frame). */
    const uint8_t *out_mem;
    void *const *out_ready;
} mt_frame;

/* stages[0] is the encoder: its graph inputs are the model inputs and its
 * outputs the cut tensors.  stages[1..] are the heads: each reads cut
 * tensors, matched to the encoder's outputs by name; the model outputs are
 * the heads' graph outputs, head after head. */
mtmi_status mt_pipeline_create(const mt_stage_desc *stages, int nstages, const mt_pipeline_opts *opt,
                               mt_pipeline **out);
/* From a model: specialize to `shape` (NULL = declared), split, place and
 * compile.  The pipeline owns the graphs it made. */
mtmi_status mt_pipeline_from_model(const mtmi_model *m, const mtmi_tensor *shape, const mt_placement *place,
                                   const mt_pipeline_opts *opt, mt_pipeline **out);
/* FP16 features from a GPU encoder to GPU heads (handover.c): each float
 * rank-4 output of `enc` read by a head k with take[k] becomes, for those
 * heads, "<name>.f16_nhwc" (float16 [N,H,W,C], made by mtmi.HalfNHWC in
 * enc and read through mtmi.FromHalfNHWC in the head: a copy and a view in
 * CUDA FP16 plans, where a float cut took two conversions).  The float
 * output stays only while a head without take[] reads it.  *made: features
 * handed over.  Graphs are changed in place. */
mtmi_status mt_pipeline_handover_f16(mt_graph *enc, mt_graph *const *heads, const unsigned char *take, int nheads, int *made);
/* Stops every stage thread (queued frames are dropped) and frees all. */
void mt_pipeline_free(mt_pipeline *p);

/* Waits (blocking, no spinning) for a free slot; *f's inputs are then the
 * application's to fill.  Fails with the pipeline's error once a stage
 * failed.  Never call it with all slots taken and none released: take a
 * done frame first (mt_pipeline_pending tells). */
mtmi_status mt_pipeline_begin(mt_pipeline *p, mt_frame **f);
mtmi_status mt_pipeline_submit(mt_pipeline *p, mt_frame *f);
/* Waits for the oldest submitted frame to finish (frames finish in order). */
mtmi_status mt_pipeline_wait(mt_pipeline *p, mt_frame **f);
/* Gives a finished frame's slot back. */
void mt_pipeline_release(mt_pipeline *p, mt_frame *f);
/* The same, for an application still reading the frame's device results
 * on its own stream: the slot's next run does not write them before
 * `event` (a cudaEvent_t the application recorded after its reads). */
void mt_pipeline_release_after(mt_pipeline *p, mt_frame *f, void *event);
/* With no frame pending, numbers the next frame 0 again (after a warm-up
 * or a measurement run). */
mtmi_status mt_pipeline_restart(mt_pipeline *p);
int mt_pipeline_pending(const mt_pipeline *p);   /* submitted, not yet released */
int mt_pipeline_inflight(const mt_pipeline *p);

int mt_pipeline_num_stages(const mt_pipeline *p);
const char *mt_pipeline_stage_name(const mt_pipeline *p, int s);
const mt_devspec *mt_pipeline_stage_dev(const mt_pipeline *p, int s);
int mt_pipeline_stage_threads(const mt_pipeline *p, int s);
const mt_graph *mt_pipeline_stage_graph(const mt_pipeline *p, int s);
/* The decisions stage s's backend made (or replayed) building its plan. */
const struct mt_choices *mt_pipeline_stage_choices(const mt_pipeline *p, int s);
const mt_backend *mt_pipeline_stage_backend(const mt_pipeline *p, int s);
/* Model input/output names and shapes. */
int mt_pipeline_num_outputs(const mt_pipeline *p);
const char *mt_pipeline_output_name(const mt_pipeline *p, int i);
const mt_tview *mt_pipeline_output_shape(const mt_pipeline *p, int i);
/* Output i is result form *form (MT_FORM_*) of model output *model_output
 * (what mt_pipeline_from_model made; plain pipelines: output i, FLOAT). */
void mt_pipeline_output_form(const mt_pipeline *p, int i, int *model_output, unsigned *form);
/* Where output i is delivered: MT_MEM_HOST or MT_MEM_DEVICE; the index of
 * the device of the stage that makes it (the GPU of a device result). */
int mt_pipeline_output_mem(const mt_pipeline *p, int i);
int mt_pipeline_output_device(const mt_pipeline *p, int i);
/* Output i by model output and form; -1 if the pipeline does not make it. */
int mt_pipeline_find_output(const mt_pipeline *p, int model_output, unsigned form);
/* Bytes a frame's results bring from devices to the host (copies that
 * leave a GPU; 0 when everything runs on the CPU or stays on the GPU). */
size_t mt_pipeline_d2h_bytes(const mt_pipeline *p);
/* Whether stages of different frames can run at the same time: 0 when
 * every stage is on the same CPU device (they take turns), 1 otherwise. */
int mt_pipeline_can_overlap(const mt_pipeline *p);
const mt_tview *mt_pipeline_input_shape(const mt_pipeline *p, int i);
int mt_pipeline_num_inputs(const mt_pipeline *p);
/* Bytes: plans' own memory plus the frame slots' buffers. */
size_t mt_pipeline_memory(const mt_pipeline *p);
/* GPUs the stages use, and device memory in use on the k-th of them now
 * beyond what was in use before the pipeline made its plans (its CUDA
 * context excluded): plans, frame slots' device buffers, library
 * workspaces, green contexts.  *gpu gets the GPU's index. */
int mt_pipeline_num_gpus(const mt_pipeline *p);
size_t mt_pipeline_gpu_memory(const mt_pipeline *p, int k, int *gpu);
/* Bytes one stage's plan holds on its device. */
size_t mt_pipeline_stage_memory(const mt_pipeline *p, int s);

/* ------------------------------------------------------ statistics, trace */
typedef struct mt_frame_rec {
    int64_t index;
    double t_submit, t_done;
    double t_start[MT_PLACE_MAX], t_end[MT_PLACE_MAX];
    double copy_ms;       /* the frame's device-to-host copies; -1 = none */
} mt_frame_rec;

/* Records of the last MT_STATS_KEEP frames (a ring: a long run's memory
 * stays bounded, ~18 MiB); percentiles and the trace cover those. */
#define MT_STATS_KEEP 65536
typedef struct mt_stats {
    int nstages;
    char stage_names[MT_PLACE_MAX][64];
    char stage_devs[MT_PLACE_MAX][48];
    mt_frame_rec *recs;   /* frame i at recs[i % MT_STATS_KEEP] */
    int64_t n, cap;       /* frames added; records allocated */
} mt_stats;
/* Record of frame i (0 <= i < n), NULL when it has left the ring. */
const mt_frame_rec *mt_stats_rec(const mt_stats *st, int64_t i);

void mt_stats_init(mt_stats *st, const mt_pipeline *p);
int mt_stats_add(mt_stats *st, const mt_frame *f);
void mt_stats_free(mt_stats *st);
/* Per-loop line: "loop: 12 encoder: 0.41 ms heads: 0.33 ms frame: 0.52 ms". */
void mt_stats_loop_line(const mt_stats *st, int64_t i, char *buf, size_t cap);

typedef struct mt_summary {
    int64_t frames;
    double wall_ms, fps;
    /* 0 = encoder, 1.. = heads; then end-to-end latency and the heads' span */
    double p50[MT_PLACE_MAX], p99[MT_PLACE_MAX], mean[MT_PLACE_MAX];
    double e2e_p50, e2e_p99, e2e_mean;
    double heads_p50, heads_p99;
    double period_mean;   /* mean time between frame completions */
    /* Device-to-host result copies per frame (summed over stages), as the
     * device timed them; copy_mean < 0 when no frame copied. */
    double copy_p50, copy_mean;
} mt_summary;
/* Skips the first `warmup` frames (no fewer than 1 frame is kept), and
 * frames no longer kept. */
void mt_stats_summary(const mt_stats *st, int64_t warmup, mt_summary *s);
/* Chrome trace-event JSON (Perfetto opens it): a process per device, a
 * thread (track) per stage, one slice per frame and stage. Atomic write. */
mtmi_status mt_stats_write_trace(const mt_stats *st, const char *path);

/* Resident set size now and at peak, in bytes (from /proc/self/status). */
size_t mt_rss_bytes(void);
size_t mt_peak_rss_bytes(void);

#endif
