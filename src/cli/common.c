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


int cli_quant_take(cli_parser *p, int id, cli_quant_opts *o) {
    switch (id) {
    case CLI_Q_IMAGES:
        if (o->ninputs == 256) return cli_usage(p, "more than 256 --images"), -1;
        o->inputs[o->ninputs++] = (char *)p->value;
        break;
    case CLI_Q_OVERRIDE:
        if (o->noverrides == 256) return cli_usage(p, "more than 256 --override"), -1;
        o->overrides[o->noverrides++] = (char *)p->value;
        break;
    case CLI_Q_SIZE: o->size = p->value; break;
    case CLI_Q_FEATURES: o->featdir = p->value; break;
    case CLI_Q_NO_FEAT: o->nofeat = 1; break;
    case CLI_Q_THREADS: o->threads = cli_cap_threads(p, p->num); break;
    case CLI_Q_RANDOM:
        o->random = 1;
        o->seed = p->num;
        break;
    default: return 0;
    }
    return 1;
}

int cli_app_take(cli_parser *p, int id, mt_app_opts *o, int max_inflight) {
    switch (id) {
    case CLI_A_MODEL: o->model_path = p->value; break;
    case CLI_A_RANDOM:
        o->random_weights = 1;
        o->seed = (uint64_t)p->num;
        break;
    case CLI_A_SEED: o->seed = (uint64_t)p->num; break;
    case CLI_A_PLACE: o->place = p->value; break;
    case CLI_A_INFLIGHT: /* each frame in flight holds its own buffers */
        o->inflight = (int)cli_cap(p, p->num, max_inflight, "this command keeps in flight");
        break;
    case CLI_A_SYNC: o->sync = 1; break;
    case CLI_A_SIZE:
        if (cli_hxw(p->value, 8192, &o->height, &o->width)) return cli_usage(p, "bad --size '%s' (HxW, e.g. 512x512)", p->value), -1;
        break;
    case CLI_A_CACHE: o->calib_path = p->value; break;
    case CLI_A_PLAN: o->saved_plan = p->value; break;
    case CLI_A_THREADS: o->threads = cli_cap_threads(p, p->num); break;
    case CLI_A_QUIET: o->quiet = 1; break;
    case CLI_A_HOST_PRE: o->host_preprocess = 1; break;
    case CLI_A_INJECT:
        if (mt_app_parse_inject(p->value, o)) return cli_usage(p, "bad --inject-error '%s' (STAGE:FRAME)", p->value), -1;
        break;
    default: return 0;
    }
    return 1;
}

int cli_check_app_report(const mt_app *app, const mt_app_opts *o, const char *cmd, const char *const *outs, int nouts) {
    int n;
    const char *more[1] = {o->calib_path};
    const char **ins = cli_inputs_list(app->model, more, o->calib_path ? 1 : 0, &n);
    if (!ins) return 1;
    const int rc = cli_check_report_paths(cmd, outs, nouts, ins, n);
    free(ins);
    return rc;
}

int cli_write_app_json(const char *path, const char *command, const mt_app *app, const mt_stats *st, const mt_summary *s,
                       const char *extra) {
    cli_json_file j;
    FILE *f = cli_json_open(path, &j);
    if (!f) return 1;
    mt_app_write_json(f, command, app, st, s, extra);
    return cli_json_close(&j, path, 1);
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
