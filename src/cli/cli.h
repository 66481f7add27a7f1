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
int mt_cmd_build(int argc, char **argv);

/* Prints "mtmi: error: <message>" (the library's last error if msg is
 * NULL) on one line and returns the exit status 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_lib_error(void);
/* Parses "1x3x512x512" into t (rank, dims). */
int cli_parse_shape(const char *s, mtmi_tensor *t);
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

/* ------------------------------------------------ options (options.c)
 * One parser for every command.  A command describes its options once, as
 * a table of cli_opt rows (rows may share an id: other names of one
 * option); the parser, `mtmi CMD --help` and docs/CLI.md's option lists
 * come from it.  `--name VALUE`, `--name=VALUE`, `-o VALUE`, `-oVALUE`;
 * `--` ends the options; long names match exactly.  Usage errors (unknown
 * option, missing or malformed value, number out of range, extra or
 * missing arguments) are one line naming the command and the option, and
 * exit with CLI_USAGE; errors of the files and the run exit with 1. */
#define CLI_USAGE 2
#define CLI_MAX_ARGS 8
enum { CLI_FLAG, CLI_STR, CLI_INT, CLI_REAL, CLI_CHOICE };
typedef struct cli_opt {
    int id;           /* > 0, what cli_next returns; 0 ends a table */
    const char *name; /* long name, without "--" */
    char sname;       /* short name ('o'), or 0 */
    int type;         /* CLI_FLAG (no value), CLI_STR, CLI_INT, CLI_REAL, CLI_CHOICE */
    const char *meta; /* the value in help ("DIR"); CLI_CHOICE: the choices, "npy|seed" */
    double lo, hi;    /* CLI_INT / CLI_REAL: the accepted range */
    const char *help; /* '\n' between lines */
} cli_opt;
typedef struct cli_command {
    const char *name;    /* "simplify" */
    const char *args;    /* the positional arguments' synopsis ("IN [OUT]"), "" if none */
    int max_args;        /* how many positional arguments it takes (<= CLI_MAX_ARGS) */
    const char *summary; /* one line in `mtmi --help` */
    const char *about;   /* `mtmi CMD --help`'s text after the usage line */
    const cli_opt *opts; /* ends with a row of id 0 */
    const char *footer;  /* after the options, or NULL */
} cli_command;
/* Every command's table (in its cmd_*.c file), in `mtmi --help`'s order. */
extern const cli_command cli_cmd_info, cli_cmd_ops, cli_cmd_infer, cli_cmd_calibrate, cli_cmd_accuracy, cli_cmd_simplify,
    cli_cmd_split, cli_cmd_make_model, cli_cmd_run, cli_cmd_synth, cli_cmd_eval, cli_cmd_bench, cli_cmd_triton_repo,
    cli_cmd_build;

typedef struct cli_parser {
    const cli_command *cmd;
    int argc, i, dashdash;
    char **argv;
    const cli_opt *row;  /* the row of the option returned */
    const char *value;   /* its value (NULL for a flag) */
    long num;            /* CLI_INT's value, checked against the row's range */
    double real;         /* CLI_REAL's */
    char opt[64];        /* the option as written ("--json", "-o"), for messages */
    char *args[CLI_MAX_ARGS]; /* positional arguments, in order */
    int nargs;
} cli_parser;
enum { CLI_END = 0, CLI_HELP = -1, CLI_ERROR = -2 };
void cli_parser_init(cli_parser *p, const cli_command *cmd, int argc, char **argv);
/* The next option's id (its value in p->value / num / real); CLI_END when
 * argv is done (positional arguments in p->args); CLI_HELP after printing
 * the help (the command then returns 0; it may print more lines first);
 * CLI_ERROR after reporting a usage error (the command returns CLI_USAGE). */
int cli_next(cli_parser *p);
void cli_help(const cli_command *c, FILE *f);
/* "mtmi simplify IN [OUT] [options]" into buf. */
const char *cli_synopsis(const cli_command *c, char *buf, size_t cap);
/* "mtmi: error: <command>: <message>"; returns CLI_USAGE. */
int cli_usage(const cli_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* v capped at cap with a warning ("--inflight 99 is more than <why>"). */
long cli_cap(const cli_parser *p, long v, long cap, const char *why);
/* A thread count capped at the online cores, with a warning. */
int cli_cap_threads(const cli_parser *p, long v);
/* "HxW" with both in [1, max]; -1 if not. */
int cli_hxw(const char *s, int max, int *h, int *w);

/* JSON reports: --json FILE writes the report to FILE (atomically), or
 * with "-" to stdout.  cli_json_stdout (right after parsing) gives the
 * real stdout to the report alone when json is "-": everything else the
 * command prints goes to stderr from then on.  All JSON goes through
 * mt_json_string / mt_json_number (core.h). */
typedef struct cli_json_file {
    FILE *f;
    int to_stdout;
    char tmp[PATH_MAX + 64];
} cli_json_file;
void cli_json_stdout(const char *json);
FILE *cli_json_open(const char *path, cli_json_file *j);
/* Commits (or with !ok drops) the report; 0, or 1 after reporting. */
int cli_json_close(cli_json_file *j, const char *path, int ok);
/* Report outputs (--json, --trace: NULL and "-" skipped): none of them an
 * input nor two of them the same file.  0, or 1 after reporting. */
int cli_check_report_paths(const char *cmd, const char *const *outs, int nouts, const char *const *inputs, int ninputs);

/* Rows shared by several commands, and their handlers.  Each handler
 * takes the option of id if it is one of its rows: 1 if taken, 0 if not
 * its option, -1 after a usage error (reported; the command returns
 * CLI_USAGE). */
enum {
    /* mt_app_opts, cli_app_take: run, bench, eval */
    CLI_A_MODEL = 1000, CLI_A_RANDOM, CLI_A_PLACE, CLI_A_INFLIGHT, CLI_A_SYNC, CLI_A_SIZE, CLI_A_CACHE, CLI_A_THREADS, CLI_A_QUIET,
    CLI_A_HOST_PRE, CLI_A_INJECT, CLI_A_SEED, CLI_A_PLAN,
    /* cli_quant_opts, cli_quant_take: calibrate, accuracy */
    CLI_Q_IMAGES = 1100, CLI_Q_OVERRIDE, CLI_Q_SIZE, CLI_Q_FEATURES, CLI_Q_NO_FEAT, CLI_Q_THREADS, CLI_Q_RANDOM,
};
#define CLI_ROW_RANDOM_WEIGHTS(id)                                                                                                   \
    {id, "random-weights", 0, CLI_INT, "SEED", 0, 1 << 30,                                                                            \
     "fill the model's missing external weights (a graph-only\nexport) with seeded random values"}
#define CLI_ROW_JSON(id, what) {id, "json", 0, CLI_STR, "FILE", 0, 0, what " as JSON to FILE (- = stdout;\nthe text report then goes to stderr)"}
#define CLI_ROWS_APP_MODEL                                                                                                           \
    {CLI_A_MODEL, "model", 0, CLI_STR, "M.onnx", 0, 0,                                                                                \
     "ONNX model; default: the built-in MTMI network (the trained\none when models/mtmi_trained.onnx is found)"},                  \
        CLI_ROW_RANDOM_WEIGHTS(CLI_A_RANDOM),                                                                                        \
        {CLI_A_SEED, "seed", 0, CLI_INT, "N", 0, 1 << 30, "the built-in network's weight seed when it has random weights"}
#define CLI_ROW_APP_PLACE                                                                                                            \
    {CLI_A_PLACE, "place", 0, CLI_STR, "P", 0, 0,                                                                                     \
     "device and precision per stage, e.g. encoder=cpu/fp32,\ndepth=cpu:1/fp32,seg=cpu:2/fp32 or encoder=cuda:0/fp16,\n"            \
     "depth=cuda:0.sm16/int8,...; `auto` builds and times the\ncandidates and keeps the fastest; default: the GPU when\n"             \
     "there is one, else the CPU split into a device per stage;\na Q/DQ model's quantized stages in int8"}
#define CLI_ROW_APP_CACHE                                                                                                            \
    {CLI_A_CACHE, "cache", 0, CLI_STR, "FILE", 0, 0,                                                                                  \
     "calibration cache (mtmi calibrate) for int8 stages; a Q/DQ\nmodel uses its own scales without one (with one: the cache's)"}
#define CLI_ROW_APP_SIZE {CLI_A_SIZE, "size", 0, CLI_STR, "HxW", 0, 0, "input size (multiples of 32); default: the model's"}
#define CLI_ROW_APP_THREADS {CLI_A_THREADS, "threads", 0, CLI_INT, "N", 1, 1 << 30, "CPU threads, split among the CPU devices; default all"}
#define CLI_ROWS_APP_FLIGHT                                                                                                          \
    {CLI_A_INFLIGHT, "inflight", 0, CLI_INT, "N", 1, 1 << 30, "frames in flight (default 2)"},                                       \
        {CLI_A_SYNC, "sync", 0, CLI_FLAG, NULL, 0, 0, "one frame at a time (--inflight 1)"}
#define CLI_ROW_APP_PLAN                                                                                                             \
    {CLI_A_PLAN, "plan", 0, CLI_STR, "FILE", 0, 0,                                                                                    \
     "a saved plan (mtmi build): its placement and size, and its\nalgorithm choices instead of searching them (fast start)"}
#define CLI_ROW_APP_QUIET {CLI_A_QUIET, "quiet", 'q', CLI_FLAG, NULL, 0, 0, "no line per frame"}
#define CLI_ROW_APP_HOST_PRE                                                                                                         \
    {CLI_A_HOST_PRE, "host-preprocess", 0, CLI_FLAG, NULL, 0, 0,                                                                      \
     "normalize frames on the host (default: the encoder's\ndevice does it, from the 8-bit pixels)"}
#define CLI_ROW_APP_INJECT                                                                                                           \
    {CLI_A_INJECT, "inject-error", 0, CLI_STR, "S:F", 0, 0, "testing: make stage S (0 = encoder) fail at frame F"}
struct mt_app_opts;
struct mt_app;
int cli_app_take(cli_parser *p, int id, struct mt_app_opts *o, int max_inflight);
/* cli_check_report_paths against what app was opened from (the model's
 * files and the calibration cache). */
int cli_check_app_report(const struct mt_app *app, const struct mt_app_opts *o, const char *cmd, const char *const *outs, int nouts);
/* run's and bench's report (mt_app_write_json) to path ("-" = stdout);
 * 0, or 1 after reporting. */
struct mt_stats;
struct mt_summary;
int cli_write_app_json(const char *path, const char *command, const struct mt_app *app, const struct mt_stats *st,
                       const struct mt_summary *s, const char *extra);

/* The options calibrate and accuracy share: --images and --override (256
 * of each), --size, --features, --no-feature-cache, --threads and
 * --random-weights. */
typedef struct cli_quant_opts {
    char *inputs[256], *overrides[256];
    int ninputs, noverrides, random, threads, nofeat;
    long seed;
    const char *size, *featdir;
} cli_quant_opts;
#define CLI_ROWS_QUANT                                                                                                               \
    {CLI_Q_IMAGES, "images", 0, CLI_STR, "DIR|FILE", 0, 0, "PNG images or .npy tensors (normalized CHW): a folder or a\nfile; repeatable"}, \
        {CLI_Q_OVERRIDE, "override", 0, CLI_STR, "NAME=SCALE", 0, 0, "set one tensor's scale; repeatable"},                         \
        {CLI_Q_SIZE, "size", 0, CLI_STR, "HxW", 0, 0, "input size; default: the model's"},                                          \
        {CLI_Q_THREADS, "threads", 0, CLI_INT, "N", 0, 1 << 30, "CPU threads (default: all cores)"},                                 \
        {CLI_Q_FEATURES, "features", 0, CLI_STR, "DIR", 0, 0, "where each image's shared features are kept\n(default: CACHE.features, or MODEL.features\nfor a Q/DQ model without a cache)"}, \
        {CLI_Q_NO_FEAT, "no-feature-cache", 0, CLI_FLAG, NULL, 0, 0, "neither read nor keep shared features"},                      \
        CLI_ROW_RANDOM_WEIGHTS(CLI_Q_RANDOM)
int cli_quant_take(cli_parser *p, int id, cli_quant_opts *o);
/* Loads frame f of files (batch shape->dims[0]; a last partial batch
 * repeats its last image) into input and gets its encoder features: from
 * the feature cache o->featdir when reuse is set and the batch is 1, else
 * by running the encoder (and keeping its features there).  1 if the
 * features came from the cache, 0 if encoded, -1 on an error (reported). */
struct mt_qrunner;
int cli_frame_features(struct mt_qrunner *r, const cli_quant_opts *o, uint64_t model_key, char **files, int nfiles, int f,
                       const mtmi_tensor *shape, float *input, int reuse);

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
