/* cli: the `mtmi` command-line app.  One file per command; this header has
 * the command table's entries and the helpers they share. */
#ifndef MT_CLI_H
#define MT_CLI_H

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
/* Loads a model honoring --random-weights. */
int cli_load_model(const char *path, int random_weights, uint64_t seed, mtmi_model **out);
/* Makes a directory (and parents); 0 on success. */
int cli_mkdirs(const char *path);

/* Inputs of calibrate and accuracy (cmd_calibrate.c): .png/.npy files of
 * folders and files (sorted), one loaded as normalized CHW at shape HxW,
 * the model's input shape (--size HxW overrides), a progress bar on
 * stderr (TTY only), and the feature-cache file of one input. */
int cli_list_inputs(char *const *args, int nargs, char ***files, int *count);
int cli_load_input(const char *path, const mtmi_tensor *shape, float *chw);
int cli_input_shape(mtmi_model *m, const char *size, mtmi_tensor *shape);
void cli_progress(const char *what, int i, int n, const char *item, double t0);
void cli_feature_path(const char *dir, const char *model, int random, long seed, const mtmi_tensor *shape, const char *input,
                      char *out, size_t cap);

#endif
