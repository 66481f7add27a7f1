/* CPU plan: memory planning and the run loop. */
#include "cpu/cpu.h"

#include <cblas.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const mt_cpu_kernel *const g_tables[] = {
    mt_kernels_elementwise,
    mt_kernels_shape,
    mt_kernels_nn,
    mt_kernels_fused,
    mt_kernels_quant,
};

const mt_cpu_kernel *mt_cpu_find_kernel(const char *domain, const char *op) {
    if (!domain || !strcmp(domain, "ai.onnx")) domain = "";
    for (size_t t = 0; t < MT_ARRAY_LEN(g_tables); t++)
        for (const mt_cpu_kernel *k = g_tables[t]; k->op; k++)
            if (!strcmp(k->op, op) && !strcmp(k->domain ? k->domain : "", domain)) return k;
    return NULL;
}

mtmi_status mt_kernel_fail(const mt_graph *g, const mt_node *n, mtmi_status s, const char *fmt, ...) {
    char msg[512], desc[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mt_fail(s, "%s: %s", mt_node_desc(g, n, desc, sizeof desc), msg);
}

static void view_of(const mt_value *v, void *data, mt_tview *t) {
    t->data = data;
    t->dtype = v->dtype;
    t->rank = v->rank;
    memcpy(t->dims, v->dims, sizeof t->dims);
}

mtmi_status mt_cpu_eval(mt_graph *g, mt_node *n, void *ctxp) {
    const mt_cpu_kernel *k = mt_cpu_find_kernel(n->domain, n->op);
    char desc[256];
    if (!k) return mt_fail(MTMI_ERR_UNSUPPORTED, "%s: no CPU kernel", mt_node_desc(g, n, desc, sizeof desc));
    mt_tview in[16], out[8];
    if (n->nin > 16 || n->nout > 8) return mt_fail(MTMI_ERR_UNSUPPORTED, "%s: too many inputs/outputs", mt_node_desc(g, n, desc, sizeof desc));
    for (int i = 0; i < n->nin; i++) {
        if (n->in[i] < 0) memset(&in[i], 0, sizeof in[i]);
        else view_of(&g->values[n->in[i]], g->values[n->in[i]].data, &in[i]);
    }
    for (int i = 0; i < n->nout; i++) {
        if (n->out[i] < 0) { memset(&out[i], 0, sizeof out[i]); continue; }
        mt_value *v = &g->values[n->out[i]];
        size_t b = mt_value_bytes(v);
        v->data = malloc(b ? b : 1);
        if (!v->data) return mt_fail(MTMI_ERR_NOMEM, "out of memory folding %s", n->name);
        view_of(v, v->data, &out[i]);
    }
    mtmi_status s = MTMI_OK;
    void *state = NULL;
    mt_cpu_ctx ctx = {.nthreads = 1, .tuning = ctxp ? (const mt_tuning *)ctxp : mt_tuning_default()};
    if (k->prepare) s = k->prepare(g, n, &ctx, &state);
    if (!s && k->scratch) {
        ctx.scratch_size = k->scratch(g, n, &ctx);
        if (ctx.scratch_size && !(ctx.scratch = mt_alloc_aligned(ctx.scratch_size))) s = MTMI_ERR_NOMEM;
    }
    if (!s) {
        if (k->flags & MT_KERNEL_ALIAS) memcpy(out[0].data, in[0].data, mt_value_bytes(&g->values[n->out[0]]));
        else s = k->run(g, n, state, in, n->nin, out, n->nout, &ctx);
    }
    if (state && k->release) k->release(state);
    free(ctx.scratch);
    if (s)
        for (int i = 0; i < n->nout; i++)
            if (n->out[i] >= 0) mt_value_free_data(&g->values[n->out[i]]);
    return s;
}

/* ------------------------------------------------------------------ plan */
enum { ST_NONE, ST_CONST, ST_INPUT, ST_OUTPUT, ST_ARENA, ST_ALIAS };

typedef struct step {
    const mt_node *node;
    const mt_cpu_kernel *k;
    void *state;
    int alias_copy; /* an alias op whose output is a graph output: copy */
} step;

struct mt_cpu_plan {
    const mt_graph *g;
    int nthreads;
    mt_tuning tuning;   /* a copy: the caller's struct need not outlive the plan */
    step *steps;
    int nsteps;
    int *kind;       /* per value: ST_* */
    int *root;       /* per value: storage root for ST_ALIAS */
    size_t *offset;  /* per value: arena offset for ST_ARENA */
    int *io_index;   /* per value: input/output position */
    void **ptr;      /* per value: resolved pointer for this run */
    uint8_t *arena;
    size_t arena_size;
    mt_cpu_ctx ctx;
    int profile;
    double *node_ms;
    mt_cpu_observer_fn observer;
    void *observer_user;
};

static mtmi_status plan_memory(mt_cpu_plan *p) {
    const mt_graph *g = p->g;
    int nv = g->nvalues;
    int *first = malloc(sizeof(int) * nv), *last = malloc(sizeof(int) * nv);
    mt_live_range *iv = malloc(sizeof(mt_live_range) * (nv + 1));
    if (!first || !last || !iv) {
        free(first); free(last); free(iv);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory planning");
    }
    for (int v = 0; v < nv; v++) first[v] = last[v] = -1;
    for (int s = 0; s < p->nsteps; s++) {
        const mt_node *n = p->steps[s].node;
        for (int k = 0; k < n->nout; k++) {
            int v = n->out[k];
            if (v < 0) continue;
            int r = p->kind[v] == ST_ALIAS ? p->root[v] : v;
            if (first[r] < 0) first[r] = s;
            if (last[r] < s) last[r] = s;
        }
        for (int k = 0; k < n->nin; k++) {
            int v = n->in[k];
            if (v < 0) continue;
            int r = p->kind[v] == ST_ALIAS ? p->root[v] : v;
            if (last[r] < s) last[r] = s;
        }
    }
    int cnt = 0;
    for (int v = 0; v < nv; v++) {
        if (p->kind[v] != ST_ARENA || first[v] < 0) continue;
        iv[cnt].id = v;
        iv[cnt].first = first[v];
        iv[cnt].last = last[v];
        iv[cnt].size = (mt_value_bytes(&g->values[v]) + 63) & ~(size_t)63;
        cnt++;
    }
    size_t total = mt_place_ranges(iv, cnt);
    for (int i = 0; i < cnt; i++) p->offset[iv[i].id] = iv[i].off;
    p->arena_size = total;
    free(first); free(last); free(iv);
    p->arena = mt_alloc_aligned(total ? total : 64);
    return p->arena ? MTMI_OK : MTMI_ERR_NOMEM;
}

mtmi_status mt_cpu_plan_create(const mt_graph *g, int nthreads, mt_cpu_plan **out) {
    mt_cpu_plan_opts o = {.nthreads = nthreads};
    return mt_cpu_plan_create_ex(g, &o, out);
}

mtmi_status mt_cpu_plan_create_ex(const mt_graph *g, const mt_cpu_plan_opts *o, mt_cpu_plan **out) {
    *out = NULL;
    const int nthreads = o->nthreads;
    mt_cpu_plan *p = mt_alloc(sizeof *p);
    if (!p) return MTMI_ERR_NOMEM;
    p->g = g;
    p->tuning = o->tuning ? *o->tuning : *mt_tuning_default();
    p->ctx.tuning = &p->tuning;
    /* More threads than cores never help compute kernels (they thrash). */
    p->nthreads = nthreads > 0 ? MT_MIN(nthreads, mt_cpu_count()) : omp_get_max_threads();
    p->ctx.nthreads = p->nthreads; /* prepare() and scratch() read it */
    int nv = g->nvalues;
    p->kind = calloc(nv + 1, sizeof(int));
    p->root = malloc(sizeof(int) * (nv + 1));
    p->offset = calloc(nv + 1, sizeof(size_t));
    p->io_index = calloc(nv + 1, sizeof(int));
    p->ptr = calloc(nv + 1, sizeof(void *));
    p->steps = calloc(g->nnodes + 1, sizeof(step));
    mtmi_status s = MTMI_OK;
    if (!p->kind || !p->root || !p->offset || !p->io_index || !p->ptr || !p->steps) {
        s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int v = 0; v < nv; v++) {
        const mt_value *val = &g->values[v];
        p->root[v] = v;
        if (val->data) p->kind[v] = ST_CONST;
        else p->kind[v] = ST_ARENA;
    }
    for (int i = 0; i < g->ninputs; i++) {
        p->kind[g->inputs[i]] = ST_INPUT;
        p->io_index[g->inputs[i]] = i;
    }
    for (int i = 0; i < g->noutputs; i++) {
        int v = g->outputs[i];
        if (p->kind[v] == ST_CONST || p->kind[v] == ST_INPUT) continue; /* copied at run */
        p->kind[v] = ST_OUTPUT;
        p->io_index[v] = i;
    }
    size_t scratch = 0;
    char desc[256];
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        if (n->dead) continue;
        const mt_cpu_kernel *k = mt_cpu_find_kernel(n->domain, n->op);
        if (!k) {
            s = mt_fail(MTMI_ERR_UNSUPPORTED, "%s: no CPU kernel for this operator", mt_node_desc(g, n, desc, sizeof desc));
            goto fail;
        }
        for (int j = 0; j < n->nout; j++)
            if (n->out[j] >= 0 && !mt_value_shape_known(&g->values[n->out[j]])) {
                s = mt_fail(MTMI_ERR_SHAPE, "%s: output shape unknown at plan time", mt_node_desc(g, n, desc, sizeof desc));
                goto fail;
            }
        step *st = &p->steps[p->nsteps++];
        st->node = n;
        st->k = k;
        if (k->flags & MT_KERNEL_ALIAS) {
            int o = n->out[0], x = n->in[0];
            if (p->kind[o] == ST_OUTPUT) st->alias_copy = 1;
            else {
                p->kind[o] = ST_ALIAS;
                p->root[o] = p->kind[x] == ST_ALIAS ? p->root[x] : x;
            }
        }
        if (k->prepare) {
            s = k->prepare(g, n, &p->ctx, &st->state);
            if (s) goto fail;
        }
        if (k->scratch) {
            size_t b = k->scratch(g, n, &p->ctx);
            if (b > scratch) scratch = b;
        }
    }
    s = plan_memory(p);
    if (s) goto fail;
    p->ctx.nthreads = p->nthreads;
    p->ctx.scratch_size = scratch;
    if (scratch && !(p->ctx.scratch = mt_alloc_aligned(scratch))) {
        s = MTMI_ERR_NOMEM;
        goto fail;
    }
    *out = p;
    return MTMI_OK;
fail:
    mt_cpu_plan_free(p);
    return s;
}

void mt_cpu_plan_free(mt_cpu_plan *p) {
    if (!p) return;
    for (int i = 0; i < p->nsteps; i++)
        if (p->steps[i].state && p->steps[i].k->release) p->steps[i].k->release(p->steps[i].state);
    free(p->steps);
    free(p->kind);
    free(p->root);
    free(p->offset);
    free(p->io_index);
    free(p->ptr);
    free(p->arena);
    free(p->ctx.scratch);
    free(p->node_ms);
    free(p);
}

size_t mt_cpu_plan_arena_bytes(const mt_cpu_plan *p) { return p->arena_size + p->ctx.scratch_size; }

void mt_cpu_plan_set_profile(mt_cpu_plan *p, int on) {
    p->profile = on;
    if (on && !p->node_ms) p->node_ms = calloc(p->nsteps + 1, sizeof(double));
}

void mt_cpu_plan_set_observer(mt_cpu_plan *p, mt_cpu_observer_fn fn, void *user) {
    p->observer = fn;
    p->observer_user = user;
}

const double *mt_cpu_plan_node_ms(const mt_cpu_plan *p, int *count) {
    *count = p->nsteps;
    return p->node_ms;
}

mtmi_status mt_cpu_plan_run(mt_cpu_plan *p, const mt_tview *in, int nin, mt_tview *out, int nout) {
    const mt_graph *g = p->g;
    char a[128], b[128];
    if (nin != g->ninputs || nout != g->noutputs)
        return mt_fail(MTMI_ERR_ARG, "plan has %d inputs and %d outputs, got %d and %d", g->ninputs, g->noutputs, nin, nout);
    for (int i = 0; i < nin; i++) {
        const mt_value *v = &g->values[g->inputs[i]];
        if (in[i].dtype != v->dtype || in[i].rank != v->rank || memcmp(in[i].dims, v->dims, sizeof(int64_t) * v->rank))
            return mt_fail(MTMI_ERR_SHAPE, "input '%s': plan expects %s %s, got %s %s", v->name, mt_dtype_name(v->dtype),
                           mt_shape_str(v->rank, v->dims, a, sizeof a), mt_dtype_name(in[i].dtype), mt_shape_str(in[i].rank, in[i].dims, b, sizeof b));
        if (!in[i].data) return mt_fail(MTMI_ERR_ARG, "input '%s': no data", v->name);
    }
    for (int i = 0; i < nout; i++) {
        if (!out[i].data) return mt_fail(MTMI_ERR_ARG, "output %d: no buffer", i);
        view_of(&g->values[g->outputs[i]], out[i].data, &out[i]);
    }
    for (int v = 0; v < g->nvalues; v++) {
        switch (p->kind[v]) {
        case ST_CONST: p->ptr[v] = g->values[v].data; break;
        case ST_INPUT: p->ptr[v] = in[p->io_index[v]].data; break;
        case ST_OUTPUT: p->ptr[v] = out[p->io_index[v]].data; break;
        case ST_ARENA: p->ptr[v] = p->arena + p->offset[v]; break;
        default: break;
        }
    }
    for (int v = 0; v < g->nvalues; v++)
        if (p->kind[v] == ST_ALIAS) p->ptr[v] = p->ptr[p->root[v]];
    openblas_set_num_threads(p->nthreads);
    mt_tview iv[16], ov[8];
    for (int s = 0; s < p->nsteps; s++) {
        step *st = &p->steps[s];
        const mt_node *n = st->node;
        double t0 = p->profile ? mt_now_ms() : 0;
        if (st->k->flags & MT_KERNEL_ALIAS) {
            if (st->alias_copy) memcpy(p->ptr[n->out[0]], p->ptr[n->in[0]], mt_value_bytes(&g->values[n->out[0]]));
            if (p->observer) {
                view_of(&g->values[n->out[0]], p->ptr[n->out[0]], &ov[0]);
                mtmi_status so = p->observer(p->observer_user, g, n, ov, 1);
                if (so) return so;
            }
            continue;
        }
        int ni = n->nin < 16 ? n->nin : 16, no = n->nout < 8 ? n->nout : 8;
        for (int i = 0; i < ni; i++) {
            if (n->in[i] < 0) memset(&iv[i], 0, sizeof iv[i]);
            else view_of(&g->values[n->in[i]], p->ptr[n->in[i]], &iv[i]);
        }
        for (int i = 0; i < no; i++) {
            if (n->out[i] < 0) memset(&ov[i], 0, sizeof ov[i]);
            else view_of(&g->values[n->out[i]], p->ptr[n->out[i]], &ov[i]);
        }
        mtmi_status st_ = st->k->run(g, n, st->state, iv, ni, ov, no, &p->ctx);
        if (st_) return st_;
        if (p->profile) p->node_ms[s] = mt_now_ms() - t0;
        if (p->observer && (st_ = p->observer(p->observer_user, g, n, ov, no))) return st_;
    }
    /* Outputs that are constants or inputs themselves. */
    for (int i = 0; i < nout; i++) {
        int v = g->outputs[i];
        if (p->kind[v] == ST_CONST || p->kind[v] == ST_INPUT)
            memcpy(out[i].data, p->ptr[v], mt_value_bytes(&g->values[v]));
    }
    return MTMI_OK;
}
