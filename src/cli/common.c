#include "cli/cli.h"
#include "app/app.h"
#include "model/model.h"

#include <pthread.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cli_error(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n') *p = ' ';
    fprintf(stderr, "mtmi: error: %s\n", msg);
    return 1;
}

int cli_lib_error(void) {
    const char *e = mtmi_last_error();
    return cli_error("%s", e && e[0] ? e : "unknown failure");
}

int cli_parse_shape(const char *s, mtmi_tensor *t) {
    memset(t, 0, sizeof *t);
    const char *p = s;
    while (*p) {
        char *e;
        errno = 0;
        long long v = strtoll(p, &e, 10);
        if (e == p || errno || v <= 0 || t->rank >= MTMI_MAX_RANK) return -1;
        t->dims[t->rank++] = v;
        if (*e == 'x' || *e == 'X' || *e == ',') e++;
        else if (*e) return -1;
        p = e;
    }
    t->dtype = MTMI_FLOAT;
    return t->rank > 0 ? 0 : -1;
}

long cli_parse_long(const char *opt, const char *s, long lo, long hi) {
    char *e;
    errno = 0;
    long v = s ? strtol(s, &e, 10) : 0;
    if (!s || errno || e == s || *e || v < lo || v > hi) {
        cli_error("%s expects an integer in [%ld, %ld], got '%s'", opt, lo, hi, s ? s : "");
        return -1;
    }
    return v;
}

long cli_parse_capped(const char *opt, const char *s, long lo, long cap, const char *why) {
    long v = cli_parse_long(opt, s, lo, 1L << 30);
    if (v > cap) {
        fprintf(stderr, "mtmi: warning: %s %ld is more than %s; using %ld\n", opt, v, why, cap);
        v = cap;
    }
    return v;
}

int cli_threads(const char *opt, const char *s, int lo) {
    /* More threads than cores only thrash: compute kernels never wait. */
    char why[64];
    int n = mt_cpu_count();
    snprintf(why, sizeof why, "the %d core%s here", n, n == 1 ? "" : "s");
    return (int)cli_parse_capped(opt, s, lo, n, why);
}

const char *cli_trained_model(void) { return getenv("MTMI_TRAINED_MODEL"); }

int cli_load_model(const char *path, int random_weights, uint64_t seed, mtmi_model **out) {
    return cli_load_model_sized(path, random_weights, seed, NULL, out);
}

int cli_load_model_sized(const char *path, int random_weights, uint64_t seed, const char *size, mtmi_model **out) {
    if (!path) { /* no model given: the default one (trained if found, builtin.h) at --size */
        int h = 0, w = 0;
        char extra, desc[600];
        if (size && (sscanf(size, "%dx%d%c", &h, &w, &extra) != 2 || h <= 0 || w <= 0 || h % 32 || w % 32 || h > 8192 || w > 8192))
            return cli_error("--size expects HxW in multiples of 32 for the built-in model, got '%s'", size);
        if (mt_builtin_model(cli_trained_model(), seed, h, w, out, desc, sizeof desc) != MTMI_OK) return cli_lib_error();
        fprintf(stderr, "model: %s\n", desc);
        return 0;
    }
    mtmi_load_options lo = {.fill_missing_weights = random_weights, .seed = seed};
    if (mtmi_model_load(path, &lo, out) != MTMI_OK) return cli_lib_error();
    return 0;
}


int cli_quant_option(const char *cmd, int argc, char **argv, int *i, cli_quant_opts *o) {
    const char *a = argv[*i];
    int more = *i + 1 < argc;
    if (!strcmp(a, "--images") && more) {
        if (o->ninputs == 256) return cli_error("%s: too many --images", cmd), -1;
        o->inputs[o->ninputs++] = argv[++*i];
    } else if (!strcmp(a, "--override") && more) {
        if (o->noverrides == 256) return cli_error("%s: too many --override", cmd), -1;
        o->overrides[o->noverrides++] = argv[++*i];
    } else if (!strcmp(a, "--size") && more) o->size = argv[++*i];
    else if (!strcmp(a, "--features") && more) o->featdir = argv[++*i];
    else if (!strcmp(a, "--no-feature-cache")) o->nofeat = 1;
    else if (!strcmp(a, "--threads") && more) {
        if ((o->threads = cli_threads(a, argv[++*i], 0)) < 0) return -1;
    } else if (!strcmp(a, "--random-weights") && more) {
        o->random = 1;
        if ((o->seed = cli_parse_long(a, argv[++*i], 0, 1L << 30)) < 0) return -1;
    } else
        return 0;
    return 1;
}

int cli_app_option(const char *cmd, int argc, char **argv, int *i, mt_app_opts *o, int max_inflight) {
    const char *a = argv[*i];
    int more = *i + 1 < argc;
    if (!strcmp(a, "--model") && more) o->model_path = argv[++*i];
    else if (!strcmp(a, "--random-weights") && more) {
        long v = cli_parse_long(a, argv[++*i], 0, 1L << 30);
        if (v < 0) return -1;
        o->random_weights = 1;
        o->seed = (uint64_t)v;
    } else if (!strcmp(a, "--place") && more) o->place = argv[++*i];
    else if (!strcmp(a, "--inflight") && more) {
        /* Each frame in flight holds its own buffers. */
        if ((o->inflight = (int)cli_parse_capped(a, argv[++*i], 1, max_inflight, "this command keeps in flight")) < 0) return -1;
    } else if (!strcmp(a, "--sync")) o->sync = 1;
    else if (!strcmp(a, "--size") && more) {
        mtmi_tensor t;
        if (cli_parse_shape(argv[++*i], &t) || t.rank != 2 || t.dims[0] > 8192 || t.dims[1] > 8192)
            return cli_error("%s: bad --size '%s' (HxW, e.g. 512x512)", cmd, argv[*i]), -1;
        o->height = (int)t.dims[0];
        o->width = (int)t.dims[1];
    } else if (!strcmp(a, "--cache") && more) o->calib_path = argv[++*i];
    else if (!strcmp(a, "--threads") && more) {
        if ((o->threads = cli_threads(a, argv[++*i], 1)) < 0) return -1;
    } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) o->quiet = 1;
    else if (!strcmp(a, "--host-preprocess")) o->host_preprocess = 1;
    else if (!strcmp(a, "--inject-error") && more) {
        if (mt_app_parse_inject(argv[++*i], o)) return cli_error("%s: bad --inject-error '%s' (STAGE:FRAME)", cmd, argv[*i]), -1;
    }
    else if (!strcmp(a, "--seed") && more) {
        long v = cli_parse_long(a, argv[++*i], 0, 1L << 30);
        if (v < 0) return -1;
        o->seed = (uint64_t)v;
    } else
        return 0;
    return 1;
}

int cli_output_files(const char *dir, const char *const *names, int n, const char *suffix, const char *const *inputs, int ninputs,
                     char (*paths)[PATH_MAX]) {
    char (*base)[MT_NAME_CAP] = malloc(sizeof *base * (size_t)(n ? n : 1));
    if (!base) return cli_error("out of memory");
    /* All names are decided before the first write: a clash is an error
     * here, never a file silently written twice. */
    int rc = mt_file_names(names, n, suffix, base) ? cli_lib_error() : 0;
    for (int i = 0; i < n && !rc; i++)
        if (mt_path_join(paths[i], PATH_MAX, dir, base[i]) || mt_check_not_input(paths[i], inputs, ninputs)) rc = cli_lib_error();
    free(base);
    return rc;
}

const char **cli_inputs_list(const mtmi_model *m, const char *const *more, int nmore, int *n) {
    const mt_graph *g = m ? m->graph : NULL;
    int total = (g ? g->nsources : 0) + nmore;
    const char **list = malloc(sizeof(char *) * (size_t)(total + 2)); /* a spare for the caller */
    if (!list) return cli_error("out of memory"), NULL;
    *n = 0;
    for (int i = 0; g && i < g->nsources; i++) list[(*n)++] = g->sources[i];
    for (int i = 0; i < nmore; i++) list[(*n)++] = more[i];
    return list;
}

/* The environment is the command line's to read: once, mapped onto the
 * library's tuning switches (app/env.c). */
static mt_tuning g_tuning;
static char g_tuning_str[2048];
static pthread_once_t g_tuning_once = PTHREAD_ONCE_INIT;

static void read_tuning(void) {
    mt_app_tuning_from_env(&g_tuning);
    mt_app_tuning_env_string(g_tuning_str, sizeof g_tuning_str);
}

const mt_tuning *cli_tuning(void) {
    pthread_once(&g_tuning_once, read_tuning);
    return &g_tuning;
}

const char *cli_tuning_string(void) {
    pthread_once(&g_tuning_once, read_tuning);
    return g_tuning_str;
}
