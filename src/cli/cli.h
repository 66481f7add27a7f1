/* cli: the `mtmi` command-line app.  One file per command; this header has
 * the command table's entries and the helpers they share. */
#ifndef MT_CLI_H
#define MT_CLI_H

#include <limits.h>

#include "api/api.h"
#include "core/core.h"

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
/* Loads a model honoring --random-weights. */
int cli_load_model(const char *path, int random_weights, uint64_t seed, mtmi_model **out);

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

#endif
