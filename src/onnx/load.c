/* ONNX -> IR.  Every field read from the file is checked: a corrupt or
 * hostile file must produce an error, never a crash. */
#include "onnx/onnx.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"

/* ------------------------------------------------------------ name index */
/* Open-addressing hash from value name to index, used while loading so that
 * big graphs load in linear time. */
typedef struct name_index {
    int *slots;
    int cap;
    mt_graph *g;
} name_index;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int index_init(name_index *ix, mt_graph *g, int expect) {
    ix->cap = 64;
    while (ix->cap < expect * 2) ix->cap *= 2;
    ix->slots = malloc(sizeof(int) * ix->cap);
    if (!ix->slots) return -1;
    for (int i = 0; i < ix->cap; i++) ix->slots[i] = -1;
    ix->g = g;
    return 0;
}

static int index_find(name_index *ix, const char *name) {
    uint64_t h = hash_str(name) & (ix->cap - 1);
    for (;;) {
        int v = ix->slots[h];
        if (v < 0) return -1;
        if (strcmp(ix->g->values[v].name, name) == 0) return v;
        h = (h + 1) & (ix->cap - 1);
    }
}

static int index_put(name_index *ix, int v);

static int index_rehash(name_index *ix) {
    int oldcap = ix->cap;
    int *old = ix->slots;
    ix->cap *= 2;
    ix->slots = malloc(sizeof(int) * ix->cap);
    if (!ix->slots) {
        ix->slots = old;
        ix->cap = oldcap;
        return -1;
    }
    for (int i = 0; i < ix->cap; i++) ix->slots[i] = -1;
    for (int i = 0; i < oldcap; i++)
        if (old[i] >= 0) index_put(ix, old[i]);
    free(old);
    return 0;
}

static int index_put(name_index *ix, int v) {
    if (ix->g->nvalues * 2 >= ix->cap && index_rehash(ix)) return -1;
    uint64_t h = hash_str(ix->g->values[v].name) & (ix->cap - 1);
    while (ix->slots[h] >= 0) h = (h + 1) & (ix->cap - 1);
    ix->slots[h] = v;
    return 0;
}

/* Value by name, created if new. */
static int value_get(name_index *ix, const char *name) {
    int v = index_find(ix, name);
    if (v >= 0) return v;
    v = mt_graph_add_value(ix->g, name);
    if (v < 0 || index_put(ix, v)) return -1;
    return v;
}

/* --------------------------------------------------------------- tensors */
typedef struct load_ctx {
    const char *what;     /* file name for messages */
    const char *base_dir;
    const mt_onnx_load_opts *opt; /* never NULL */
    mt_rng rng;
    size_t random_used;   /* bytes of random weights so far */
    mt_graph *g;          /* gets the external files read as sources */
} load_ctx;

static int is_supported_dtype(int t) {
    return t == MTMI_FLOAT || t == MTMI_UINT8 || t == MTMI_INT8 || t == MTMI_INT32 ||
           t == MTMI_INT64 || t == MTMI_BOOL || t == MTMI_FLOAT16 || t == MTMI_DOUBLE || t == 4 ||
           t == 5 || t == 12 || t == 13;
}

static void fill_random(load_ctx *c, mt_value *v) {
    int64_t n = mt_value_numel(v);
    int64_t fan = v->rank > 1 ? n / (v->dims[0] ? v->dims[0] : 1) : n;
    float scale = 1.0f / sqrtf((float)(fan > 0 ? fan : 1));
    if (v->dtype == MTMI_FLOAT) {
        float *p = v->data;
        for (int64_t i = 0; i < n; i++) p[i] = mt_rng_normal(&c->rng) * scale;
    } else {
        memset(v->data, 0, mt_value_bytes(v));
    }
}

/* Parses the external_data entries of t. */
static mtmi_status external_fields(load_ctx *c, const Onnx__TensorProto *t, const char *name, const char **loc, long long *off,
                                   long long *len) {
    *loc = NULL;
    *off = 0;
    *len = -1;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = t->external_data[i];
        if (!e->key || !e->value) continue;
        char *end;
        long long *dst = !strcmp(e->key, "offset") ? off : !strcmp(e->key, "length") ? len : NULL;
        if (!strcmp(e->key, "location")) *loc = e->value;
        if (!dst) continue;
        errno = 0;
        *dst = strtoll(e->value, &end, 10);
        if (errno || *end || end == e->value || *dst < 0)
            return mt_fail(MTMI_ERR_PARSE, "%s: tensor '%s': bad external %s '%s'", c->what, name, e->key, e->value);
    }
    if (!*loc || !(*loc)[0]) return mt_fail(MTMI_ERR_PARSE, "%s: tensor '%s': external data without location", c->what, name);
    return MTMI_OK;
}

/* Reads external data into a new buffer *dstp (allocated only once the
 * file is known to hold the bytes).  The location must resolve, links
 * followed, to a regular file inside the model's folder; *missing is set
 * when there is no such file at all (for fill_missing_weights). */
static mtmi_status read_external(load_ctx *c, const Onnx__TensorProto *t, const char *name, void **dstp, size_t bytes, int *missing) {
    const char *loc;
    long long off, len;
    *missing = 0;
    mtmi_status s = external_fields(c, t, name, &loc, &off, &len);
    if (s) return s;
    if (!c->base_dir)
        return mt_fail(MTMI_ERR_PARSE, "%s: tensor '%s': external data '%s' cannot be read (no model folder)", c->what, name, loc);
    if (len >= 0 && (unsigned long long)len != bytes)
        return mt_fail(MTMI_ERR_PARSE, "%s: tensor '%s': external length %lld but shape needs %zu bytes", c->what, name, len, bytes);
    char real[PATH_MAX];
    if ((s = mt_resolve_inside(c->base_dir, loc, real, sizeof real))) {
        *missing = s == MTMI_ERR_IO && (errno == ENOENT || errno == ENOTDIR);
        if (*missing)
            return mt_fail(MTMI_ERR_IO, "%s: tensor '%s': external data file '%s' missing: %s", c->what, name, loc, strerror(ENOENT));
        return mt_fail_context(s, "%s: tensor '%s': external data", c->what, name);
    }
    int fd;
    uint64_t size;
    if ((s = mt_open_regular(real, &fd, &size))) return mt_fail_context(s, "%s: tensor '%s': external data '%s'", c->what, name, loc);
    if (size < (unsigned long long)off || size - (unsigned long long)off < bytes) {
        close(fd);
        return mt_fail(MTMI_ERR_PARSE, "%s: tensor '%s': external data file '%s' (%llu bytes) too short for offset %lld + %zu bytes",
                       c->what, name, loc, (unsigned long long)size, off, bytes);
    }
    void *dst = malloc(bytes ? bytes : 1);
    if (!dst) {
        close(fd);
        return mt_fail(MTMI_ERR_NOMEM, "%s: tensor '%s': out of memory (%zu bytes)", c->what, name, bytes);
    }
    *dstp = dst;
    s = mt_read_fd(fd, real, (uint64_t)off, dst, bytes);
    close(fd);
    if (s) return mt_fail_context(s, "%s: tensor '%s'", c->what, name);
    return c->g && mt_graph_add_source(c->g, real) ? MTMI_ERR_NOMEM : MTMI_OK;
}

/* Random weights for a missing external tensor, within the load's budget:
 * a tiny graph-only file must not make us allocate gigabytes. */
static mtmi_status fill_missing(load_ctx *c, const char *name, mt_value *v, size_t bytes) {
    size_t budget = c->opt->max_random_bytes ? c->opt->max_random_bytes : MT_ONNX_RANDOM_BUDGET;
    if (bytes > budget - c->random_used) {
        char a[32], b[32];
        return mt_fail(MTMI_ERR_NOMEM, "%s: tensor '%s': filling its missing external data (%s) with random values would exceed the budget of %s for all such tensors (mtmi_load_options.max_random_bytes)",
                       c->what, name, mt_bytes_str((double)bytes, a, sizeof a), mt_bytes_str((double)budget, b, sizeof b));
    }
    mt_clear_error();
    v->data = malloc(bytes ? bytes : 1);
    if (!v->data) return mt_fail(MTMI_ERR_NOMEM, "%s: tensor '%s': out of memory (%zu bytes)", c->what, name, bytes);
    c->random_used += bytes;
    fill_random(c, v);
    return MTMI_OK;
}

/* Copies the tensor's contents (any storage field) into v->data. */
static mtmi_status tensor_to_value(load_ctx *c, const Onnx__TensorProto *t, mt_value *v) {
    const char *name = t->name ? t->name : "<unnamed>";
    if (t->n_dims > MT_MAX_RANK)
        return mt_fail(MTMI_ERR_UNSUPPORTED, "%s: tensor '%s': rank %zu over %d", c->what, name, t->n_dims, MT_MAX_RANK);
    if (!is_supported_dtype(t->data_type))
        return mt_fail(MTMI_ERR_UNSUPPORTED, "%s: tensor '%s': element type %s (%d) not supported", c->what, name, mt_dtype_name(t->data_type), t->data_type);
    int64_t dims[MT_MAX_RANK];
    for (size_t i = 0; i < t->n_dims; i++) dims[i] = t->dims[i];
    size_t esz = mt_dtype_size(t->data_type), bytes;
    char sh[160];
    if (mt_checked_bytes((int)t->n_dims, dims, esz, &bytes) || bytes > MT_ONNX_MAX_TENSOR)
        return mt_fail(MTMI_ERR_PARSE, "%s: tensor '%s': bad or too large shape %s", c->what, name,
                       mt_shape_str((int)t->n_dims, dims, sh, sizeof sh));
    int64_t n = (int64_t)(bytes / esz);
    mt_value_set_shape(v, t->data_type, (int)t->n_dims, dims);
    int external = t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    /* Validate that the data is really there before allocating for it: a
     * corrupt shape must not make us ask for terabytes. */
    if (!external) {
        size_t have;
        if (t->has_raw_data) have = t->raw_data.len / (esz ? esz : 1);
        else switch (t->data_type) {
            case MTMI_FLOAT: have = t->n_float_data; break;
            case MTMI_DOUBLE: have = t->n_double_data; break;
            case MTMI_INT64: have = t->n_int64_data; break;
            case 12: case 13: have = t->n_uint64_data; break;
            default: have = t->n_int32_data; break;
            }
        if ((t->has_raw_data && t->raw_data.len != bytes) || have != (size_t)n)
            return mt_fail(MTMI_ERR_PARSE, "%s: tensor '%s': holds %zu elements, its shape needs %lld", c->what, name, have, (long long)n);
    } else {
        int missing = 0;
        mtmi_status s = read_external(c, t, name, &v->data, bytes, &missing);
        if (s != MTMI_OK && missing && c->opt->fill_missing_weights) return fill_missing(c, name, v, bytes);
        return s;
    }
    v->data = malloc(bytes ? bytes : 1);
    if (!v->data) return mt_fail(MTMI_ERR_NOMEM, "%s: tensor '%s': out of memory (%zu bytes)", c->what, name, bytes);
    if (t->has_raw_data) {
        if (t->raw_data.len != bytes)
            return mt_fail(MTMI_ERR_PARSE, "%s: tensor '%s': raw_data has %zu bytes, shape %s needs %zu", c->what, name, t->raw_data.len, "", bytes);
        if (bytes) memcpy(v->data, t->raw_data.data, bytes);
        return MTMI_OK;
    }
    size_t have;
    switch (t->data_type) {
    case MTMI_FLOAT:
        have = t->n_float_data;
        if (have == (size_t)n && bytes) memcpy(v->data, t->float_data, bytes);
        break;
    case MTMI_DOUBLE:
        have = t->n_double_data;
        if (have == (size_t)n && bytes) memcpy(v->data, t->double_data, bytes);
        break;
    case MTMI_INT64:
        have = t->n_int64_data;
        if (have == (size_t)n && bytes) memcpy(v->data, t->int64_data, bytes);
        break;
    case 12: case 13:
        have = t->n_uint64_data;
        if (have == (size_t)n) {
            for (int64_t i = 0; i < n; i++) {
                if (esz == 8) ((uint64_t *)v->data)[i] = t->uint64_data[i];
                else ((uint32_t *)v->data)[i] = (uint32_t)t->uint64_data[i];
            }
        }
        break;
    default: /* int32, int16, int8, uint8, uint16, bool, float16 live in int32_data */
        have = t->n_int32_data;
        if (have == (size_t)n) {
            for (int64_t i = 0; i < n; i++) {
                int32_t x = t->int32_data[i];
                if (esz == 4) ((int32_t *)v->data)[i] = x;
                else if (esz == 2) ((uint16_t *)v->data)[i] = (uint16_t)x;
                else ((uint8_t *)v->data)[i] = (uint8_t)x;
            }
        }
        break;
    }
    if (have != (size_t)n)
        return mt_fail(MTMI_ERR_PARSE, "%s: tensor '%s': has %zu elements, shape needs %lld", c->what, name, have, (long long)n);
    return MTMI_OK;
}

/* ------------------------------------------------------------ attributes */
static mtmi_status convert_attr(load_ctx *c, const Onnx__NodeProto *np, const Onnx__AttributeProto *ap, mt_attr *a) {
    memset(a, 0, sizeof *a);
    a->name = mt_strdup(ap->name ? ap->name : "");
    if (!a->name) return MTMI_ERR_NOMEM;
    int type = ap->has_type ? ap->type : 0;
    if (!type) { /* old files omit type: infer from which field is set */
        if (ap->has_f) type = MT_ATTR_FLOAT;
        else if (ap->has_i) type = MT_ATTR_INT;
        else if (ap->has_s) type = MT_ATTR_STRING;
        else if (ap->t) type = MT_ATTR_TENSOR;
        else if (ap->n_floats) type = MT_ATTR_FLOATS;
        else if (ap->n_ints) type = MT_ATTR_INTS;
        else if (ap->n_strings) type = MT_ATTR_STRINGS;
    }
    a->type = type;
    switch (type) {
    case MT_ATTR_FLOAT: a->f = ap->f; break;
    case MT_ATTR_INT: a->i = ap->i; break;
    case MT_ATTR_STRING:
        a->s = malloc(ap->s.len + 1);
        if (!a->s) return MTMI_ERR_NOMEM;
        if (ap->s.len) memcpy(a->s, ap->s.data, ap->s.len);
        a->s[ap->s.len] = 0;
        break;
    case MT_ATTR_FLOATS:
        a->n = (int)ap->n_floats;
        a->floats = malloc(sizeof(float) * (a->n ? a->n : 1));
        if (!a->floats) return MTMI_ERR_NOMEM;
        if (a->n) memcpy(a->floats, ap->floats, sizeof(float) * a->n);
        break;
    case MT_ATTR_INTS:
        a->n = (int)ap->n_ints;
        a->ints = malloc(sizeof(int64_t) * (a->n ? a->n : 1));
        if (!a->ints) return MTMI_ERR_NOMEM;
        if (a->n) memcpy(a->ints, ap->ints, sizeof(int64_t) * a->n);
        break;
    case MT_ATTR_STRINGS:
        a->n = (int)ap->n_strings;
        a->strings = calloc(a->n ? a->n : 1, sizeof(char *));
        if (!a->strings) return MTMI_ERR_NOMEM;
        for (int i = 0; i < a->n; i++) {
            a->strings[i] = malloc(ap->strings[i].len + 1);
            if (!a->strings[i]) return MTMI_ERR_NOMEM;
            if (ap->strings[i].len) memcpy(a->strings[i], ap->strings[i].data, ap->strings[i].len);
            a->strings[i][ap->strings[i].len] = 0;
        }
        break;
    case MT_ATTR_TENSOR: {
        if (!ap->t) return mt_fail(MTMI_ERR_PARSE, "%s: node '%s': tensor attribute '%s' is empty", c->what, np->name, a->name);
        a->t = mt_alloc(sizeof(mt_value));
        if (!a->t) return MTMI_ERR_NOMEM;
        a->t->name = mt_strdup(ap->t->name ? ap->t->name : "");
        a->t->producer = -1;
        mtmi_status s = tensor_to_value(c, ap->t, a->t);
        if (s) return s;
        break;
    }
    default:
        /* graphs, sparse tensors, type protos: only control-flow ops carry
         * those and we reject such ops at inference with a clear message. */
        a->type = 0;
        break;
    }
    return MTMI_OK;
}

/* Turns a Constant node into constant data on its output value. */
static mtmi_status constant_node(load_ctx *c, mt_graph *g, const Onnx__NodeProto *np, mt_attr *attrs, int nattr, int out) {
    mt_value *v = &g->values[out];
    for (int i = 0; i < nattr; i++) {
        mt_attr *a = &attrs[i];
        int64_t d1[1];
        if (strcmp(a->name, "value") == 0 && a->t) {
            v->dtype = a->t->dtype;
            v->rank = a->t->rank;
            memcpy(v->dims, a->t->dims, sizeof v->dims);
            v->data = a->t->data;
            a->t->data = NULL;
            return MTMI_OK;
        } else if (strcmp(a->name, "value_float") == 0) {
            mt_value_set_shape(v, MTMI_FLOAT, 0, d1);
            v->data = malloc(4);
            if (!v->data) return MTMI_ERR_NOMEM;
            *(float *)v->data = a->f;
            return MTMI_OK;
        } else if (strcmp(a->name, "value_int") == 0) {
            mt_value_set_shape(v, MTMI_INT64, 0, d1);
            v->data = malloc(8);
            if (!v->data) return MTMI_ERR_NOMEM;
            *(int64_t *)v->data = a->i;
            return MTMI_OK;
        } else if (strcmp(a->name, "value_floats") == 0 || strcmp(a->name, "value_ints") == 0) {
            int isf = a->type == MT_ATTR_FLOATS;
            d1[0] = a->n;
            mt_value_set_shape(v, isf ? MTMI_FLOAT : MTMI_INT64, 1, d1);
            v->data = malloc((isf ? 4 : 8) * (a->n ? a->n : 1));
            if (!v->data) return MTMI_ERR_NOMEM;
            memcpy(v->data, isf ? (void *)a->floats : (void *)a->ints, (isf ? 4 : 8) * a->n);
            return MTMI_OK;
        }
    }
    return mt_fail(MTMI_ERR_UNSUPPORTED, "%s: node '%s' (Constant): no supported value attribute (sparse or string constants are not supported)", c->what, np->name ? np->name : "");
}

static mtmi_status type_to_shape(load_ctx *c, const Onnx__ValueInfoProto *vi, mt_value *v) {
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return mt_fail(MTMI_ERR_UNSUPPORTED, "%s: graph input/output '%s' is not a tensor", c->what, vi->name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    v->dtype = tt->has_elem_type ? tt->elem_type : 0;
    if (!tt->shape) {
        v->rank = -1;
        return MTMI_OK;
    }
    if (tt->shape->n_dim > MT_MAX_RANK)
        return mt_fail(MTMI_ERR_UNSUPPORTED, "%s: '%s' has rank %zu over %d", c->what, vi->name, tt->shape->n_dim, MT_MAX_RANK);
    v->rank = (int)tt->shape->n_dim;
    for (int i = 0; i < v->rank; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value > 0) {
            v->dims[i] = d->dim_value;
        } else {
            v->dims[i] = -1;
            if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param)
                v->dim_param[i] = mt_strdup(d->dim_param);
        }
    }
    return MTMI_OK;
}

/* ----------------------------------------------------------------- model */
static mtmi_status convert_graph(load_ctx *c, const Onnx__ModelProto *mp, mt_graph *g) {
    const Onnx__GraphProto *gp = mp->graph;
    name_index ix;
    mtmi_status s = MTMI_OK;
    if (index_init(&ix, g, (int)(gp->n_node * 2 + gp->n_initializer + gp->n_input + 16)))
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    g->name = mt_strdup(gp->name ? gp->name : "");

    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        if (!t->name || !t->name[0]) { s = mt_fail(MTMI_ERR_PARSE, "%s: initializer %zu has no name", c->what, i); goto done; }
        int v = value_get(&ix, t->name);
        if (v < 0) { s = MTMI_ERR_NOMEM; goto done; }
        if (g->values[v].data) { s = mt_fail(MTMI_ERR_PARSE, "%s: initializer '%s' defined twice", c->what, t->name); goto done; }
        s = tensor_to_value(c, t, &g->values[v]);
        if (s) goto done;
        g->values[v].is_weight = 1;
    }
    g->inputs = malloc(sizeof(int) * (gp->n_input + 1));
    g->outputs = malloc(sizeof(int) * (gp->n_output + 1));
    if (!g->inputs || !g->outputs) { s = MTMI_ERR_NOMEM; goto done; }
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name) { s = mt_fail(MTMI_ERR_PARSE, "%s: graph input %zu has no name", c->what, i); goto done; }
        int v = value_get(&ix, vi->name);
        if (v < 0) { s = MTMI_ERR_NOMEM; goto done; }
        if (g->values[v].data) continue; /* initializer listed as input (IR < 4): a constant */
        s = type_to_shape(c, vi, &g->values[v]);
        if (s) goto done;
        g->values[v].is_input = 1;
        g->inputs[g->ninputs++] = v;
    }

    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        const char *op = np->op_type ? np->op_type : "";
        const char *nname = np->name ? np->name : "";
        if (!op[0]) { s = mt_fail(MTMI_ERR_PARSE, "%s: node %zu ('%s') has no op_type", c->what, i, nname); goto done; }
        if (np->n_output == 0) { s = mt_fail(MTMI_ERR_PARSE, "%s: node %zu ('%s', %s) has no outputs", c->what, i, nname, op); goto done; }
        int nattr = (int)np->n_attribute;
        mt_attr *attrs = nattr ? calloc(nattr, sizeof(mt_attr)) : NULL;
        if (nattr && !attrs) { s = MTMI_ERR_NOMEM; goto done; }
        for (int k = 0; k < nattr && !s; k++) s = convert_attr(c, np, np->attribute[k], &attrs[k]);
        int *in = malloc(sizeof(int) * (np->n_input + 1)), *out = malloc(sizeof(int) * (np->n_output + 1));
        if (!in || !out) s = s ? s : MTMI_ERR_NOMEM;
        for (size_t k = 0; !s && k < np->n_input; k++) {
            const char *nm = np->input[k];
            in[k] = (!nm || !nm[0]) ? -1 : value_get(&ix, nm);
            if (nm && nm[0] && in[k] < 0) s = MTMI_ERR_NOMEM;
        }
        for (size_t k = 0; !s && k < np->n_output; k++) {
            const char *nm = np->output[k];
            out[k] = (!nm || !nm[0]) ? -1 : value_get(&ix, nm);
            if (out[k] >= 0 && (g->values[out[k]].producer >= 0 || g->values[out[k]].data || g->values[out[k]].is_input))
                s = mt_fail(MTMI_ERR_PARSE, "%s: node '%s' (%s): output '%s' is already defined elsewhere", c->what, nname, op, nm);
        }
        int is_const = !s && strcmp(op, "Constant") == 0 && (!np->domain || !np->domain[0] || !strcmp(np->domain, "ai.onnx"));
        if (is_const) {
            if (np->n_output != 1 || out[0] < 0) s = mt_fail(MTMI_ERR_PARSE, "%s: node '%s' (Constant) needs one output", c->what, nname);
            else s = constant_node(c, g, np, attrs, nattr, out[0]);
        }
        if (!s && !is_const) {
            int n = mt_graph_add_node(g, op, nname, in, (int)np->n_input, out, (int)np->n_output);
            if (n < 0) s = MTMI_ERR_NOMEM;
            else {
                mt_node *nd = &g->nodes[n];
                if (np->domain && np->domain[0] && strcmp(np->domain, "ai.onnx") != 0) {
                    free(nd->domain);
                    nd->domain = mt_strdup(np->domain);
                }
                nd->attrs = attrs;
                nd->nattr = nattr;
                attrs = NULL;
                nattr = 0;
            }
        }
        for (int k = 0; k < nattr; k++) mt_attr_free(&attrs[k]);
        free(attrs);
        free(in);
        free(out);
        if (s) goto done;
    }

    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        int v = vi->name ? index_find(&ix, vi->name) : -1;
        if (v < 0) { s = mt_fail(MTMI_ERR_PARSE, "%s: graph output '%s' is produced by no node", c->what, vi->name ? vi->name : ""); goto done; }
        g->values[v].is_output = 1;
        g->outputs[g->noutputs++] = v;
        /* The declared type is informative only (inference recomputes it). */
        if (vi->type && vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && !g->values[v].data) {
            s = type_to_shape(c, vi, &g->values[v]);
            if (s) goto done;
        }
    }
    /* Every consumed value must come from somewhere. */
    for (int i = 0; i < g->nnodes; i++) {
        mt_node *n = &g->nodes[i];
        for (int k = 0; k < n->nin; k++) {
            int v = n->in[k];
            if (v < 0) continue;
            mt_value *val = &g->values[v];
            if (!val->data && !val->is_input && val->producer < 0) {
                s = mt_fail(MTMI_ERR_PARSE, "%s: node '%s' (%s): input '%s' is produced by no node, initializer or graph input", c->what, n->name, n->op, val->name);
                goto done;
            }
        }
    }
    if (g->noutputs == 0) s = mt_fail(MTMI_ERR_PARSE, "%s: graph has no outputs", c->what);
done:
    free(ix.slots);
    return s;
}

/* The versions this build reads (see onnx.h): a file from the future, or
 * without the opset that says what its operators mean, is refused rather
 * than run with guessed semantics. */
static mtmi_status check_versions(const Onnx__ModelProto *mp, const char *what, int64_t *opset) {
    if (!mp->graph || !mp->has_ir_version || mp->ir_version <= 0)
        return mt_fail(MTMI_ERR_PARSE, "%s: not an ONNX model (no graph or IR version)", what);
    if (mp->ir_version < MT_ONNX_MIN_IR)
        return mt_fail(MTMI_ERR_UNSUPPORTED, "%s: IR version %lld predates opset imports (IR %d): re-export the model", what,
                       (long long)mp->ir_version, MT_ONNX_MIN_IR);
    if (mp->ir_version > MT_ONNX_MAX_IR)
        return mt_fail(MTMI_ERR_UNSUPPORTED, "%s: IR version %lld is newer than this build reads (up to %d)", what,
                       (long long)mp->ir_version, MT_ONNX_MAX_IR);
    int found = 0;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if (o->domain && o->domain[0] && strcmp(o->domain, "ai.onnx")) continue;
        if (found && o->version != *opset)
            return mt_fail(MTMI_ERR_PARSE, "%s: the ONNX domain is imported twice (opsets %lld and %lld)", what, (long long)*opset,
                           (long long)o->version);
        *opset = o->has_version ? o->version : 0;
        found = 1;
    }
    if (!found) return mt_fail(MTMI_ERR_PARSE, "%s: no opset_import for the ONNX domain: operator versions unknown", what);
    if (*opset < 1 || *opset > MT_ONNX_MAX_OPSET)
        return mt_fail(MTMI_ERR_UNSUPPORTED, "%s: opset %lld is not one this build knows (1 to %d)", what, (long long)*opset,
                       MT_ONNX_MAX_OPSET);
    return MTMI_OK;
}

mtmi_status mt_onnx_load_buffer(const uint8_t *buf, size_t len, const char *base_dir, const char *what,
                                const mt_onnx_load_opts *opt, mt_graph **out) {
    *out = NULL;
    static const mt_onnx_load_opts defaults;
    if (!opt) opt = &defaults;
    if (len == 0) return mt_fail(MTMI_ERR_PARSE, "%s: empty file, not an ONNX model", what);
    mtmi_status s = mt_onnx_check_nesting(buf, len, what);
    if (s) return s;
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!mp) return mt_fail(MTMI_ERR_PARSE, "%s: not a valid ONNX model (protobuf does not parse: truncated or corrupt)", what);
    int64_t opset = 0;
    mt_graph *g = NULL;
    if ((s = check_versions(mp, what, &opset)) || !(g = mt_graph_new())) {
        onnx__model_proto__free_unpacked(mp, NULL);
        return s ? s : MTMI_ERR_NOMEM;
    }
    g->ir_version = mp->ir_version;
    g->opset = opset;
    g->producer = mt_strdup(mp->producer_name ? mp->producer_name : "");
    g->path = mt_strdup(what);
    load_ctx c = {.what = what, .base_dir = base_dir, .opt = opt, .g = g};
    mt_rng_seed(&c.rng, opt->seed);
    s = convert_graph(&c, mp, g);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (s == MTMI_OK) s = mt_graph_compact(g);
    if (s != MTMI_OK) {
        if (s == MTMI_ERR_NOMEM && !mtmi_last_error()[0]) mt_fail(s, "%s: out of memory", what);
        mt_graph_free(g);
        return s;
    }
    *out = g;
    return MTMI_OK;
}

mtmi_status mt_onnx_load(const char *path, const mt_onnx_load_opts *opt, mt_graph **out) {
    uint8_t *buf;
    size_t len;
    *out = NULL;
    char dir[PATH_MAX];
    if (strlen(path) >= sizeof dir) return mt_fail(MTMI_ERR_ARG, "%.60s...: path too long", path);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[slash == dir] = 0; /* "/m.onnx" lives in "/" */
    else snprintf(dir, sizeof dir, ".");
    mtmi_status s = mt_read_file(path, &buf, &len);
    if (s) return s;
    s = mt_onnx_load_buffer(buf, len, dir, path, opt, out);
    free(buf);
    if (!s && mt_graph_add_source(*out, path)) {
        mt_graph_free(*out);
        *out = NULL;
        s = MTMI_ERR_NOMEM;
    }
    return s;
}
