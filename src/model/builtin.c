/* The default model: trained when its file is found, else random weights
 * (model.h says where it is looked for). */
#include "model/model.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph/mtmi_net.h"

#ifndef MTMI_SOURCE_DIR
#define MTMI_SOURCE_DIR ""
#endif

static int is_file(const char *p) {
    struct stat st;
    return p[0] && !stat(p, &st) && S_ISREG(st.st_mode);
}

/* The folder of the running executable ("" if unknown). */
static void exe_dir(char *dir, size_t cap) {
    char buf[PATH_MAX];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    dir[0] = 0;
    if (n <= 0) return;
    buf[n] = 0;
    char *slash = strrchr(buf, '/');
    if (slash) *slash = 0, snprintf(dir, cap, "%s", buf);
}

int mt_builtin_trained_path(const char *choice, char *path, size_t cap) {
    if (choice && choice[0]) {
        if (!strcmp(choice, "none")) return 0;
        snprintf(path, cap, "%s", choice);
        return 1; /* asked for: loading it reports a missing file */
    }
    char dir[PATH_MAX];
    exe_dir(dir, sizeof dir);
    const char *const rel[2] = {"/../models/" MT_TRAINED_FILE, "/../share/mtmi/" MT_TRAINED_FILE};
    for (int i = 0; i < 2 && dir[0]; i++)
        if ((size_t)snprintf(path, cap, "%s%s", dir, rel[i]) < cap && is_file(path)) return 1;
    if ((size_t)snprintf(path, cap, "%s/models/%s", MTMI_SOURCE_DIR, MT_TRAINED_FILE) < cap && MTMI_SOURCE_DIR[0] && is_file(path))
        return 1;
    path[0] = 0;
    return 0;
}

/* A float weight of a graph: a float initializer, or the float16
 * initializer a Cast makes float (how train_mtmi.py stores them). */
typedef struct wref {
    int value;       /* the value the network reads */
    const mt_value *src;
} wref;

/* The weights of more than 16 values, in the order the nodes first read
 * them: the same in the PyTorch export and in the C network (the export
 * is made from the same module; tests/eval/test_trained_format.py checks
 * it on the reference export). */
static mtmi_status weights_in_order(const mt_graph *g, wref **out, int *n) {
    int *cast_of = malloc(sizeof(int) * (size_t)(g->nvalues + 1));
    unsigned char *seen = calloc((size_t)g->nvalues + 1, 1);
    *out = malloc(sizeof(wref) * (size_t)(g->nvalues + 1));
    *n = 0;
    if (!cast_of || !seen || !*out) {
        free(cast_of), free(seen), free(*out);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory reading the trained weights");
    }
    for (int v = 0; v < g->nvalues; v++) cast_of[v] = -1;
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *nd = &g->nodes[i];
        if (nd->dead || strcmp(nd->op, "Cast") || nd->nin < 1 || nd->nout < 1 || nd->in[0] < 0) continue;
        const mt_value *x = &g->values[nd->in[0]];
        if (x->data && x->is_weight && x->dtype == MTMI_FLOAT16) cast_of[nd->out[0]] = nd->in[0];
    }
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *nd = &g->nodes[i];
        if (nd->dead || (!strcmp(nd->op, "Cast") && nd->nout > 0 && cast_of[nd->out[0]] >= 0)) continue;
        for (int k = 0; k < nd->nin; k++) {
            const int v = nd->in[k];
            if (v < 0 || seen[v]) continue;
            const mt_value *src = cast_of[v] >= 0 ? &g->values[cast_of[v]] : &g->values[v];
            if (cast_of[v] < 0 && !(src->data && src->is_weight && src->dtype == MTMI_FLOAT)) continue;
            if (mt_value_numel(src) <= 16) continue;
            seen[v] = 1;
            (*out)[(*n)++] = (wref){v, src};
        }
    }
    free(cast_of), free(seen);
    return MTMI_OK;
}

/* dst's data := src's (float or float16), same shape required. */
static mtmi_status copy_weight(mt_value *dst, const mt_value *src, const char *path) {
    char a[96], b[96];
    const int64_t n = mt_value_numel(src);
    int same = dst->data && dst->dtype == MTMI_FLOAT && dst->rank == src->rank;
    for (int d = 0; same && d < src->rank; d++) same = dst->dims[d] == src->dims[d];
    if (!same)
        return mt_fail(MTMI_ERR_SHAPE, "%s: weight '%s' is %s, the MTMI network's '%s' is %s: not the MTMI network's weights", path,
                       src->name, mt_shape_str(src->rank, src->dims, a, sizeof a), dst->name, mt_shape_str(dst->rank, dst->dims, b, sizeof b));
    float *o = dst->data;
    if (src->dtype == MTMI_FLOAT) memcpy(o, src->data, sizeof(float) * (size_t)n);
    else
        for (int64_t i = 0; i < n; i++) o[i] = mt_half_to_float(((const uint16_t *)src->data)[i]);
    return MTMI_OK;
}

/* The trained weights (model t, from path) into the C network b: the large
 * ones pairwise in order of use, the small ones (depth.cls.bias) by name. */
static mtmi_status transfer_weights(const mt_graph *t, mt_graph *b, const char *path) {
    wref *wt = NULL, *wb = NULL;
    int nt = 0, nb = 0;
    mtmi_status s = weights_in_order(t, &wt, &nt);
    if (!s) s = weights_in_order(b, &wb, &nb);
    if (!s && nt != nb)
        s = mt_fail(MTMI_ERR_SHAPE, "%s: %d weight tensors, the MTMI network has %d: not the MTMI network's weights", path, nt, nb);
    for (int i = 0; !s && i < nt; i++) s = copy_weight(&b->values[wb[i].value], wt[i].src, path);
    for (int v = 0; !s && v < t->nvalues; v++) {
        const mt_value *x = &t->values[v];
        if (!x->data || !x->is_weight || x->dtype != MTMI_FLOAT || mt_value_numel(x) > 16) continue;
        const int j = mt_graph_find_value(b, x->name);
        if (j >= 0 && b->values[j].data && b->values[j].dtype == MTMI_FLOAT) s = copy_weight(&b->values[j], x, path);
    }
    free(wt), free(wb);
    return s;
}

/* The C network at h x w (any multiple of 32, any batch: what `run --size`
 * needs, where the export's reshapes are fixed to 1024x1024) with the
 * trained weights of the ONNX file at path. */
static mtmi_status trained_model(const char *path, int h, int w, mtmi_model **out) {
    mtmi_model *t = NULL;
    /* no random draws: every weight is overwritten by the file's (they were
     * 40 % of a 256x256 start-up, 2026-12-07) */
    mt_mtmi_net_opts no = {.height = h, .width = w, .init = MT_MTMI_INIT_NONE};
    mtmi_status s = mt_model_load(path, NULL, &t);
    if (!s) s = mt_model_builtin(&no, out);
    if (!s) s = transfer_weights(t->graph, (*out)->graph, path);
    if (!s && mt_graph_add_source((*out)->graph, path)) s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
    mt_model_free(t);
    if (s) {
        mt_model_free(*out);
        *out = NULL;
    }
    return s;
}

mtmi_status mt_builtin_model(const char *choice, uint64_t seed, int h, int w, mtmi_model **out, char *desc, size_t cap) {
    char path[PATH_MAX];
    *out = NULL;
    if (mt_builtin_trained_path(choice, path, sizeof path)) {
        mtmi_status s = trained_model(path, h, w, out);
        if (s) return mt_fail_context(s, "the trained built-in model (MTMI_TRAINED_MODEL or models/%s)", MT_TRAINED_FILE);
        snprintf(desc, cap, "built-in trained MTMI network (%s)", path);
        return MTMI_OK;
    }
    mt_mtmi_net_opts no = {.seed = seed, .height = h, .width = w};
    mtmi_status s = mt_model_builtin(&no, out);
    if (s) return mt_fail_context(s, "building the built-in MTMI network");
    snprintf(desc, cap, "built-in MTMI network (random weights, seed %llu; no trained model found)", (unsigned long long)seed);
    return MTMI_OK;
}
