/* cli: the `mtmi` command-line app.  One file per command; this header has
 * the command table's entries and the helpers they share. */
#ifndef MT_CLI_H
#define MT_CLI_H

#include <limits.h>

#include "api/api.h"
#include "core/core.h"
#include "core/tuning.h"
#include "image/image.h"

int mt_cmd_info(int argc, char **argv);
int mt_cmd_infer(int argc, char **argv);
int mt_cmd_calibrate(int argc, char **argv);
int mt_cmd_accuracy(int argc, char **argv);
int mt_cmd_ops(int argc, char **argv);
int mt_cmd_simplify(int argc, char **argv);
int mt_cmd_split(int argc, char **argv);
int mt_cmd_make_model(int argc, char **argv);
int mt_cmd_run(int argc, char **argv);
int mt_cmd_bench(int argc, char **argv);
int mt_cmd_synth(int argc, char **argv);
int mt_cmd_eval(int argc, char **argv);
int mt_cmd_triton_repo(int argc, char **argv);

/* Prints "mtmi: error: <message>" (the library's last error if msg is
 * NULL) on one line and returns the exit status 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_lib_error(void);
/* Parses "1x3x512x512" into t (rank, dims). */
int cli_parse_shape(const char *s, mtmi_tensor *t);
/* Parses a non-negative integer option value; -1 on error. */
long cli_parse_long(const char *opt, const char *s, long lo, long hi);
/* Parses an integer option of at least lo; above cap it warns (why: "the 2
 * cores here") and gives cap.  -1 on a bad value (reported). */
long cli_parse_capped(const char *opt, const char *s, long lo, long cap, const char *why);
/* --threads N: at least lo, capped at the online cores with a warning. */
int cli_threads(const char *opt, const char *s, int lo);
/* The files "<dir>/<name><suffix>" of n tensors, decided before anything
 * is written: distinct (mt_file_names), within the system's path limits
 * and none of them one of the inputs.  0, or 1 after reporting. */
int cli_output_files(const char *dir, const char *const *names, int n, const char *suffix, const char *const *inputs, int ninputs,
                     char (*paths)[PATH_MAX]);
/* A malloc'ed list of the files no output may replace: those model m was
 * read from (model, external data; m may be NULL) and nmore others, with
 * room for one more.  NULL after reporting when out of memory. */
const char **cli_inputs_list(const mtmi_model *m, const char *const *more, int nmore, int *n);
/* The tuning switches the MTMI_* environment variables ask for (read once,
 * app/env.c): as the struct the internal layers take, and as the string
 * the public API takes. */
const mt_tuning *cli_tuning(void);
const char *cli_tuning_string(void);
/* $MTMI_TRAINED_MODEL (NULL if unset): the built-in network's trained
 * weights file, or "none" (model/model.h); the library reads no environment. */
const char *cli_trained_model(void);
/* Loads a model honoring --random-weights; no path: the built-in default
 * (model/model.h), built at size ("HxW"; NULL = 1024x1024). */
int cli_load_model(const char *path, int random_weights, uint64_t seed, mtmi_model **out);
int cli_load_model_sized(const char *path, int random_weights, uint64_t seed, const char *size, mtmi_model **out);

/* Inputs of calibrate and accuracy (cmd_calibrate.c): .png/.npy files of
 * folders and files (sorted), one loaded as normalized CHW at shape HxW,
 * the model's input shape (--size HxW overrides), a progress bar on
 * stderr (TTY only), and the feature-cache file of one input. */
int cli_list_inputs(char *const *args, int nargs, char ***files, int *count);
int cli_load_input(const char *path, const mtmi_tensor *shape, float *chw);
int cli_input_shape(mtmi_model *m, const char *size, mtmi_tensor *shape);
void cli_progress(const char *what, int i, int n, const char *item, double t0);
/* Feature-cache keys by content: of the model (every file it was read from,
 * and the random-weight seed) and of one input tensor as the encoder sees
 * it; the path is dir/<hash>.feat. */
int cli_model_key(const mtmi_model *m, int random, long seed, uint64_t *key);
void cli_feature_path(const char *dir, uint64_t model_key, const mtmi_tensor *shape, const float *input, char *out, size_t cap);

/* The options calibrate and accuracy share: --images and --override (256
 * of each), --size, --features, --no-feature-cache, --threads and
 * --random-weights. */
typedef struct cli_quant_opts {
    char *inputs[256], *overrides[256];
    int ninputs, noverrides, random, threads, nofeat;
    long seed;
    const char *size, *featdir;
} cli_quant_opts;
/* Takes argv[*i] (and its value) into o if it is one of those options:
 * 1 if taken, 0 if not, -1 on a bad value (reported; "cmd: ..."). */
int cli_quant_option(const char *cmd, int argc, char **argv, int *i, cli_quant_opts *o);
/* Loads frame f of files (batch shape->dims[0]; a last partial batch
 * repeats its last image) into input and gets its encoder features: from
 * the feature cache o->featdir when reuse is set and the batch is 1, else
 * by running the encoder (and keeping its features there).  1 if the
 * features came from the cache, 0 if encoded, -1 on an error (reported). */
struct mt_qrunner;
int cli_frame_features(struct mt_qrunner *r, const cli_quant_opts *o, uint64_t model_key, char **files, int nfiles, int f,
                       const mtmi_tensor *shape, float *input, int reuse);

/* The options run and bench share, into o: --model, --random-weights,
 * --place, --inflight (1 to max_inflight), --sync, --size HxW, --cache,
 * --threads, --quiet (-q) and --seed.  1 if argv[*i] (and its value) was
 * one, 0 if not, -1 on a bad value (reported; "cmd: ..."). */
struct mt_app_opts;
int cli_app_option(const char *cmd, int argc, char **argv, int *i, struct mt_app_opts *o, int max_inflight);

/* ------------------------------------------------- run: I/O threads (run_io.c) */
#define RUN_MAX_THREADS 64
#define RUN_CACHE_MAX 64      /* sources kept decoded when frames repeat them */
#define RUN_PATH_MAX 4096
enum { RUN_SAVE_CLASSES = 1, RUN_SAVE_DEPTH = 2, RUN_SAVE_VIS = 4, RUN_SAVE_LOGITS = 8 };

/* Writing: what a job's frame writes, and where. */
typedef struct run_write_opts {
    const char *outdir;
    unsigned save;          /* RUN_SAVE_* */
    int format_seed;        /* _seg.bin / _depth.bin instead of .npy */
    int nwrite;             /* frames 0 .. nwrite-1 are written */
    int test_slow_write_ms; /* test hook: each job sleeps first */
} run_write_opts;
/* One frame's results, owned by the job (buffers kept across frames). */
typedef struct run_job {
    int64_t index;
    char stem[MT_NAME_CAP];
    mt_image input;         /* the fitted frame, for the vis */
    int input_owned;
    uint8_t *classes;       /* cw x ch, or NULL */
    size_t classes_cap;
    int cw, ch;
    void *logits;           /* lc x lh x lw of logits_dtype, or NULL */
    size_t logits_cap;
    int logits_dtype, lc, lh, lw;
    double scale;           /* int8 logits' scale */
    void *depth;            /* dh x dw of depth_dtype, or NULL */
    size_t depth_cap;
    int depth_dtype, dh, dw;
} run_job;
typedef struct run_written {
    int done;
    unsigned files;         /* RUN_SAVE_* written */
    double scale;
} run_written;
typedef struct run_io_stat {
    double decode_ms, write_ms, wait_ms; /* summed over frames / jobs; the application's waits for a free job */
    int64_t decoded, jobs_done;
    int threads, jobs, slots;
    size_t job_bytes;          /* result buffers held by the jobs */
} run_io_stat;
/* The I/O workers (run_io.c): nthreads threads decode frames (frame k is
 * source k % nsrc, files[] or synthetic scenes when files is NULL, fitted
 * to w x h) a few frames ahead of the application and write the jobs it
 * hands them (2 per thread at most: then acquire waits). */
typedef struct run_io run_io;
mtmi_status run_io_start(char **files, int nsrc, int w, int h, int64_t frames, const run_write_opts *o, int nthreads,
                         run_io **out);
/* Frame k (frames are taken in order): *owned says whether *img is the
 * caller's to free (else it belongs to the decoded-source cache). */
mtmi_status run_io_take(run_io *r, int64_t k, mt_image *img, int *owned);
/* A free job (waits while every job is queued or being written). */
run_job *run_io_acquire(run_io *w);
void run_io_submit(run_io *w, run_job *j);
/* The first write error so far (set as the last error), else MTMI_OK. */
mtmi_status run_io_error(run_io *w);
/* Waits until every submitted job is written. */
mtmi_status run_io_finish(run_io *w);
void run_io_stats(run_io *w, run_io_stat *st);
const run_written *run_io_written(const run_io *w);
/* Finishes the queued writes (only complete files), joins, frees. */
void run_io_stop(run_io *w);
int run_job_reserve(void **buf, size_t *cap, size_t n);
/* "<outdir>/<stem><suffix>" into path; -1 (error set) when it does not fit. */
int run_output_path(const char *outdir, const char *stem, const char *suffix, char *path, size_t cap);

#endif
