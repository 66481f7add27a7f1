/* The multi-frame pipeline: frame slots, one thread per stage, bounded
 * queues between them, completion callbacks, clean shutdown on errors. */
#include "pipeline/pipeline.h"
#include "backend/choices.h"
#include "image/image.h"
#include "quant/quant.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A FIFO of slot indices.  Its capacity is the number of slots and a slot is
 * in at most one queue per consumer, so a push never has to wait; a pop
 * waits on the queue's condition variable (all queues share the pipeline's
 * mutex, which keeps the state machine simple and the shutdown race-free). */
typedef struct queue {
    int *buf;
    int cap, head, count;
    pthread_cond_t cv;
} queue;

struct mt_pipeline;

typedef struct cbarg {
    struct mt_pipeline *p;
    int slot, stage;
} cbarg;

typedef struct stage {
    char name[64];
    mt_devspec dev;
    const mt_backend *be;
    mt_plan *mp;                  /* the stage's plan (registry.h)           */
    void *plan;                   /* mp->impl: the backend's own             */
    int threads;
    const mt_graph *g;
    int nin, nout;
    int in_kind[MT_STAGE_MAX_IO]; /* 0 = model input, 1 = cut tensor */
    int in_idx[MT_STAGE_MAX_IO];
    int out_idx[MT_STAGE_MAX_IO]; /* encoder: cut index; head: model output index */
    queue q;
    pthread_t th;
    int started;
    int devlock;                  /* index into p->devlocks, or -1 */
    /* A head that gets its frames when the encoder has queued them, not
     * when it has finished: both on devices with events (GPUs), so the
     * head's stream waits for the encoder's on the device and no host
     * round trip sits between them (gpu_ordered). */
    int gpu_ordered;
    double last_end;              /* when its previous frame finished (under mu) */
    mt_choices choices;           /* its plan's decisions (recorded or replayed) */
} stage;

typedef struct buf {
    void *ptr;
    size_t bytes;
    int mem;                      /* MT_MEM_* */
    const mt_backend *be;         /* who allocated it */
    mt_devspec dev;
} buf;

/* Device events of one stage's run in one slot (NULL where the stage's
 * backend has none): see mt_stage_io. */
typedef struct slot_events {
    void *ready, *copy_begin, *copy_end;
} slot_events;

typedef struct slot {
    mt_frame f;
    buf *in, *cut, *out;
    /* out_dev[o]: the device buffer a GPU head writes output o into when
     * the application takes it on the host (then out[o] is pinned host
     * memory, filled by the stage's copy); ptr NULL otherwise. */
    buf *out_dev;
    /* in_dev[i]: model input i in the encoder's GPU memory, uploaded from
     * in[i] by the encoder stage on a stream of its own (p->in_on_dev), so
     * that frame t+1's upload overlaps frame t's encoder. */
    buf *in_dev;
    int callbacks_left;           /* stages whose completion is still to come */
    double t_start[MT_PLACE_MAX], t_end[MT_PLACE_MAX], copy_ms[MT_PLACE_MAX];
    cbarg cb[MT_PLACE_MAX];
    mt_tview *in_views, *out_views;
    uint8_t *out_mem;
    void **out_ready;
    slot_events ev[MT_PLACE_MAX];
    void *consumer_event;     /* mt_pipeline_release_after's, until the next run */
} slot;

struct mt_pipeline {
    int nstages;
    stage st[MT_PLACE_MAX];
    int nslots;
    slot *slots;
    /* model I/O and cut tensors: shapes (data = NULL) */
    int nin, ncut, nout;
    mt_tview *in_shape, *cut_shape, *out_shape;
    char **in_names, **cut_names, **out_names;
    int *cut_mem;
    /* per output: delivered in device memory; made from which model output
     * in which form (mt_pipeline_output_form) */
    uint8_t *out_on_dev;
    int *out_src;
    unsigned *out_form;
    size_t d2h_bytes;
    int in_on_dev;                /* model inputs uploaded per slot (slot.in_dev) */
    /* GPUs: device memory in use before the plans were made */
    int ngpus;
    mt_devspec gpu_dev[MT_PLACE_MAX];
    const mt_backend *gpu_be[MT_PLACE_MAX];
    size_t gpu_base[MT_PLACE_MAX];
    /* synchronization */
    pthread_mutex_t mu;
    queue free_q, done_q;
    pthread_mutex_t devlocks[MT_PLACE_MAX];
    int ndevlocks;
    int stop;
    int failed;
    mtmi_status err;
    char err_msg[768];
    int64_t next_index;           /* next frame index to hand out          */
    int64_t next_done;            /* next frame index expected from done_q */
    int pending;                  /* begun, not yet released               */
    int submitted;                /* submitted, not yet returned by wait    */
    mt_pipeline_opts opt;
    /* owned when made by mt_pipeline_from_model */
    mt_graph *spec;
    mt_split split;
    int own_split;
    mt_graph *qheads[MT_PLACE_MAX]; /* INT8 heads rewritten before the handover (owned) */
};

/* ----------------------------------------------------------------- queues */
static int q_init(queue *q, int cap) {
    q->buf = calloc(cap, sizeof(int));
    q->cap = cap;
    q->head = q->count = 0;
    pthread_cond_init(&q->cv, NULL);
    return q->buf ? 0 : -1;
}

static void q_free(queue *q) {
    if (!q->buf) return;
    free(q->buf);
    q->buf = NULL;
    pthread_cond_destroy(&q->cv);
}

/* Caller holds p->mu. */
static void q_push(queue *q, int v) {
    /* Cannot overflow: see the comment on `queue`. */
    q->buf[(q->head + q->count) % q->cap] = v;
    q->count++;
    pthread_cond_signal(&q->cv);
}

/* Caller holds p->mu.  -1 once the pipeline stops. */
static int q_pop(mt_pipeline *p, queue *q) {
    while (!q->count && !p->stop) pthread_cond_wait(&q->cv, &p->mu);
    if (p->stop) return -1;
    int v = q->buf[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    return v;
}

/* Caller holds p->mu: wakes every waiter so that all threads see `stop`. */
static void stop_all(mt_pipeline *p) {
    p->stop = 1;
    for (int s = 0; s < p->nstages; s++) pthread_cond_broadcast(&p->st[s].q.cv);
    pthread_cond_broadcast(&p->free_q.cv);
    pthread_cond_broadcast(&p->done_q.cv);
}

/* Caller holds p->mu.  The first failure wins; later ones are consequences. */
static void fail_locked(mt_pipeline *p, mtmi_status s, const char *fmt, ...) {
    if (!p->failed) {
        p->failed = 1;
        p->err = s ? s : MTMI_ERR_INTERNAL;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err_msg, sizeof p->err_msg, fmt, ap);
        va_end(ap);
        for (char *c = p->err_msg; *c; c++)
            if (*c == '\n') *c = ' ';
    }
    stop_all(p);
}

/* ------------------------------------------------------------- stage run */
static void on_done(void *arg, mtmi_status s, const char *msg) {
    cbarg *cb = arg;
    mt_pipeline *p = cb->p;
    slot *sl = &p->slots[cb->slot];
    stage *st = &p->st[cb->stage];
    pthread_mutex_lock(&p->mu);
    /* Read the clock under the lock: the head that completes a frame then
     * never has an earlier time than the other heads' ends. */
    double t = mt_now_ms();
    sl->t_end[cb->stage] = t;
    /* A stage runs its frames in order: on an asynchronous device a frame
     * submitted while the previous one still ran starts when that one ends
     * (what the trace and the stage percentiles should show), not when it
     * was queued. */
    if (sl->t_start[cb->stage] < st->last_end) sl->t_start[cb->stage] = st->last_end;
    st->last_end = t;
    if (s) {
        char dev[64];
        fail_locked(p, s, "frame %lld, stage '%s' on %s: %s", (long long)sl->f.index, st->name,
                    mt_devspec_str(&st->dev, dev, sizeof dev), msg && *msg ? msg : mtmi_status_name(s));
    } else if (!p->stop) {
        if (cb->stage == 0)
            for (int h = 1; h < p->nstages; h++)
                if (!p->st[h].gpu_ordered) q_push(&p->st[h].q, cb->slot);
        /* A frame is done when every stage has reported, the encoder too
         * (its report can come after a GPU-ordered head's). */
        if (--sl->callbacks_left == 0) {
            for (int h = 1; h < p->nstages; h++) /* a GPU-ordered head ran once the encoder had */
                if (sl->t_start[h] < sl->t_end[0]) sl->t_start[h] = sl->t_end[0];
            sl->f.t_done = t;
            q_push(&p->done_q, cb->slot);
        }
    }
    pthread_mutex_unlock(&p->mu);
}

static void fill_io(mt_pipeline *p, stage *st, slot *sl, mt_stage_io *io) {
    memset(io, 0, sizeof *io);
    io->nin = st->nin;
    io->nout = st->nout;
    for (int i = 0; i < st->nin; i++) {
        const int up = !st->in_kind[i] && p->in_on_dev;
        const buf *b = st->in_kind[i] ? &sl->cut[st->in_idx[i]] : up ? &sl->in_dev[st->in_idx[i]] : &sl->in[st->in_idx[i]];
        io->in[i] = st->in_kind[i] ? p->cut_shape[st->in_idx[i]] : p->in_shape[st->in_idx[i]];
        io->in[i].data = b->ptr;
        io->in_mem[i] = (uint8_t)b->mem;
        if (up) io->in_host[i] = sl->in[st->in_idx[i]].ptr;
    }
    const int head = st != &p->st[0];
    for (int i = 0; i < st->nout; i++) {
        const int o = st->out_idx[i];
        const buf *b = !head ? &sl->cut[o] : sl->out_dev[o].ptr ? &sl->out_dev[o] : &sl->out[o];
        io->out[i] = !head ? p->cut_shape[o] : p->out_shape[o];
        io->out[i].data = b->ptr;
        io->out_mem[i] = (uint8_t)b->mem;
        if (head && sl->out_dev[o].ptr) io->out_host[i] = sl->out[o].ptr; /* NULL: the result stays on the device */
    }
    const slot_events *ev = &sl->ev[st - p->st];
    io->ready_event = ev->ready;
    io->copy_begin = ev->copy_begin;
    io->copy_end = ev->copy_end;
    /* A GPU-ordered head waits for the encoder's run on the device; only
     * the heads write what an application may still be reading. */
    int nw = 0;
    if (head && st->gpu_ordered) io->wait_events[nw++] = sl->ev[0].ready;
    if (head && sl->consumer_event) io->wait_events[nw++] = sl->consumer_event;
}

/* The encoder has queued slot k's run: the GPU-ordered heads take it now
 * (their runs wait for the encoder's ready event on the device). */
static void hand_on_queued(mt_pipeline *p, int k) {
    pthread_mutex_lock(&p->mu);
    if (!p->stop)
        for (int h = 1; h < p->nstages; h++)
            if (p->st[h].gpu_ordered) q_push(&p->st[h].q, k);
    pthread_mutex_unlock(&p->mu);
}

static void *stage_main(void *arg) {
    cbarg *a = arg;
    mt_pipeline *p = a->p;
    const int si = a->stage;
    stage *st = &p->st[si];
    char dev[64];
    if (st->be->bind_thread && st->be->bind_thread(st->plan) != MTMI_OK) {
        pthread_mutex_lock(&p->mu);
        fail_locked(p, MTMI_ERR_DEVICE, "stage '%s' on %s: %s", st->name, mt_devspec_str(&st->dev, dev, sizeof dev),
                    mtmi_last_error());
        pthread_mutex_unlock(&p->mu);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int k = q_pop(p, &st->q);
        pthread_mutex_unlock(&p->mu);
        if (k < 0) break;
        slot *sl = &p->slots[k];
        mt_stage_io io;
        fill_io(p, st, sl, &io);
        /* The slot's fields this thread reads were written before the slot
         * was pushed to this queue, under p->mu: the pop orders them. */
        if (st->devlock >= 0) pthread_mutex_lock(&p->devlocks[st->devlock]);
        sl->t_start[si] = mt_now_ms();
        if (p->opt.inject_stage == si && sl->f.index == p->opt.inject_frame) {
            if (st->devlock >= 0) pthread_mutex_unlock(&p->devlocks[st->devlock]);
            on_done(&sl->cb[si], MTMI_ERR_INTERNAL, "injected failure (test hook)");
            continue;
        }
        mtmi_status s = st->be->submit(st->plan, &io, on_done, &sl->cb[si]);
        if (st->devlock >= 0) pthread_mutex_unlock(&p->devlocks[st->devlock]);
        if (s) on_done(&sl->cb[si], s, mtmi_last_error());
        else if (si == 0) hand_on_queued(p, k);
    }
    return NULL;
}

/* ---------------------------------------------------------------- create */
static int value_view(const mt_graph *g, int v, mt_tview *t) {
    const mt_value *val = &g->values[v];
    memset(t, 0, sizeof *t);
    if (!mt_value_shape_known(val) || !mt_dtype_size(val->dtype)) return -1;
    t->dtype = val->dtype;
    t->rank = val->rank;
    memcpy(t->dims, val->dims, sizeof t->dims);
    return 0;
}

static size_t view_bytes(const mt_tview *t) { return (size_t)mt_tview_numel(t) * mt_dtype_size(t->dtype); }

static int same_shape(const mt_tview *a, const mt_tview *b) {
    return a->dtype == b->dtype && a->rank == b->rank && !memcmp(a->dims, b->dims, sizeof(int64_t) * a->rank);
}

static mtmi_status alloc_buf(buf *b, const mt_backend *be, const mt_devspec *dev, size_t bytes, int mem, const char *what) {
    b->be = be;
    b->dev = *dev;
    b->mem = mem;
    b->bytes = bytes;
    b->ptr = be->alloc(dev, bytes, mem);
    if (!b->ptr) return mt_fail(MTMI_ERR_NOMEM, "out of %s memory for %s (%zu bytes)", mem ? "device" : "host", what, bytes);
    return MTMI_OK;
}

static void free_buf(buf *b) {
    if (b->ptr) b->be->release(&b->dev, b->ptr, b->mem);
    b->ptr = NULL;
}

static char *dupname(const char *s) { return mt_strdup(s ? s : ""); }

static mtmi_status setup_io(mt_pipeline *p) {
    const mt_graph *enc = p->st[0].g;
    char sh[128];
    p->nin = enc->ninputs;
    p->ncut = enc->noutputs;
    p->nout = 0;
    for (int s = 1; s < p->nstages; s++) p->nout += p->st[s].g->noutputs;
    if (p->nstages == 1) p->nout = p->ncut; /* a lone encoder: its outputs are the model's */
    if (p->nin > MT_STAGE_MAX_IO || p->ncut > MT_STAGE_MAX_IO || p->nout > 64)
        return mt_fail(MTMI_ERR_UNSUPPORTED, "pipeline: too many inputs, cut tensors or outputs");
    p->in_shape = calloc(p->nin + 1, sizeof(mt_tview));
    p->cut_shape = calloc(p->ncut + 1, sizeof(mt_tview));
    p->out_shape = calloc(p->nout + 1, sizeof(mt_tview));
    p->in_names = calloc(p->nin + 1, sizeof(char *));
    p->cut_names = calloc(p->ncut + 1, sizeof(char *));
    p->out_names = calloc(p->nout + 1, sizeof(char *));
    p->cut_mem = calloc(p->ncut + 1, sizeof(int));
    p->out_on_dev = calloc(p->nout + 1, 1);
    p->out_src = calloc(p->nout + 1, sizeof(int));
    p->out_form = calloc(p->nout + 1, sizeof(unsigned));
    if (!p->in_shape || !p->cut_shape || !p->out_shape || !p->in_names || !p->cut_names || !p->out_names || !p->cut_mem ||
        !p->out_on_dev || !p->out_src || !p->out_form)
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->nout; i++) {
        p->out_src[i] = i;
        p->out_form[i] = MT_FORM_FLOAT;
        p->out_on_dev[i] = p->opt.on_device && p->opt.on_device[i];
    }
    for (int i = 0; i < p->nin; i++) {
        p->in_names[i] = dupname(enc->values[enc->inputs[i]].name);
        if (value_view(enc, enc->inputs[i], &p->in_shape[i]))
            return mt_fail(MTMI_ERR_SHAPE, "pipeline: model input '%s' has no concrete shape", p->in_names[i]);
    }
    stage *e = &p->st[0];
    e->nin = p->nin;
    for (int i = 0; i < p->nin; i++) e->in_kind[i] = 0, e->in_idx[i] = i;
    e->nout = p->ncut;
    for (int i = 0; i < p->ncut; i++) {
        p->cut_names[i] = dupname(enc->values[enc->outputs[i]].name);
        if (value_view(enc, enc->outputs[i], &p->cut_shape[i]))
            return mt_fail(MTMI_ERR_SHAPE, "pipeline: cut tensor '%s' has no concrete shape", p->cut_names[i]);
        e->out_idx[i] = i;
    }
    int o = 0;
    if (p->nstages == 1)
        for (int i = 0; i < p->ncut; i++) {
            p->out_names[i] = dupname(p->cut_names[i]);
            p->out_shape[i] = p->cut_shape[i];
        }
    for (int s = 1; s < p->nstages; s++) {
        stage *st = &p->st[s];
        const mt_graph *g = st->g;
        if (g->ninputs > MT_STAGE_MAX_IO || g->noutputs > MT_STAGE_MAX_IO)
            return mt_fail(MTMI_ERR_UNSUPPORTED, "stage '%s': too many inputs or outputs", st->name);
        st->nin = g->ninputs;
        for (int i = 0; i < g->ninputs; i++) {
            const mt_value *v = &g->values[g->inputs[i]];
            mt_tview want;
            int found = 0;
            for (int c = 0; c < p->ncut && !found; c++)
                if (!strcmp(v->name, p->cut_names[c])) st->in_kind[i] = 1, st->in_idx[i] = c, found = 1;
            for (int c = 0; c < p->nin && !found; c++)
                if (!strcmp(v->name, p->in_names[c])) st->in_kind[i] = 0, st->in_idx[i] = c, found = 1;
            if (!found)
                return mt_fail(MTMI_ERR_SHAPE, "stage '%s': input '%s' is neither a model input nor one of the encoder's outputs",
                               st->name, v->name);
            const mt_tview *have = st->in_kind[i] ? &p->cut_shape[st->in_idx[i]] : &p->in_shape[st->in_idx[i]];
            if (value_view(g, g->inputs[i], &want) || !same_shape(&want, have))
                return mt_fail(MTMI_ERR_SHAPE, "stage '%s': input '%s' is %s %s, the encoder gives %s %s", st->name, v->name,
                               mt_dtype_name(want.dtype), mt_shape_str(want.rank, want.dims, sh, sizeof sh),
                               mt_dtype_name(have->dtype), mt_shape_str(have->rank, have->dims, sh + 64, 64));
        }
        st->nout = g->noutputs;
        for (int i = 0; i < g->noutputs; i++, o++) {
            p->out_names[o] = dupname(g->values[g->outputs[i]].name);
            if (value_view(g, g->outputs[i], &p->out_shape[o]))
                return mt_fail(MTMI_ERR_SHAPE, "stage '%s': output '%s' has no concrete shape", st->name, p->out_names[o]);
            st->out_idx[i] = o;
            if (p->out_on_dev[o] && st->dev.kind != MT_DEV_CUDA) {
                char dv[64];
                return mt_fail(MTMI_ERR_DEVICE, "output '%s': device-memory results need a GPU stage; stage '%s' runs on %s",
                               p->out_names[o], st->name, mt_devspec_str(&st->dev, dv, sizeof dv));
            }
        }
    }
    for (int i = 0; i < p->nin; i++)
        if (!p->in_names[i]) return MTMI_ERR_NOMEM;
    return MTMI_OK;
}

/* The backend that allocates a tensor and its memory kind: device memory
 * when the producer and every consumer are on one GPU; otherwise host
 * memory, from a CUDA backend if any user is a GPU (pinned, for fast
 * copies), else from the CPU backend. */
static void pick_memory(mt_pipeline *p, int producer, const int *consumers, int nc, const mt_backend **be,
                        mt_devspec *dev, int *mem) {
    const stage *ps = &p->st[producer];
    int all_same_gpu = ps->dev.kind == MT_DEV_CUDA;
    for (int i = 0; i < nc && all_same_gpu; i++) {
        const mt_devspec *d = &p->st[consumers[i]].dev;
        all_same_gpu = d->kind == MT_DEV_CUDA && d->index == ps->dev.index;
    }
    if (all_same_gpu) {
        *be = ps->be, *dev = ps->dev, *mem = MT_MEM_DEVICE;
        return;
    }
    *mem = MT_MEM_HOST;
    if (ps->dev.kind == MT_DEV_CUDA) {
        *be = ps->be, *dev = ps->dev;
        return;
    }
    for (int i = 0; i < nc; i++)
        if (p->st[consumers[i]].dev.kind == MT_DEV_CUDA) {
            *be = p->st[consumers[i]].be, *dev = p->st[consumers[i]].dev;
            return;
        }
    *be = ps->be, *dev = ps->dev;
}

/* Cut tensor c: its allocator, device and memory kind. */
static void cut_placement(mt_pipeline *p, int c, const mt_backend **be, mt_devspec *dev, int *mem) {
    int consumers[MT_PLACE_MAX], nc = 0;
    for (int h = 1; h < p->nstages; h++)
        for (int i = 0; i < p->st[h].nin; i++)
            if (p->st[h].in_kind[i] && p->st[h].in_idx[i] == c && nc < MT_PLACE_MAX) consumers[nc++] = h;
    pick_memory(p, 0, consumers, nc, be, dev, mem);
    if (p->nstages == 1) *mem = MT_MEM_HOST; /* read by the application */
}

/* Output o of head stage st in slot sl.  A GPU head writes its outputs to
 * device memory of the slot: left there when the application takes them on
 * the device, else copied to pinned host memory by the stage (its copy
 * stream overlaps the next frame's kernels).  A CPU head writes host
 * memory directly. */
static mtmi_status setup_result(mt_pipeline *p, const stage *st, int o, slot *sl) {
    mtmi_status s;
    const size_t bytes = view_bytes(&p->out_shape[o]);
    const int gpu = st->dev.kind == MT_DEV_CUDA;
    if (gpu && (s = alloc_buf(&sl->out_dev[o], st->be, &st->dev, bytes, MT_MEM_DEVICE, p->out_names[o]))) return s;
    sl->out_views[o] = p->out_shape[o];
    if (gpu && p->out_on_dev[o]) { /* out[o] stays empty: nothing to copy */
        sl->out_mem[o] = MT_MEM_DEVICE;
        sl->out_ready[o] = sl->ev[st - p->st].ready;
        sl->out_views[o].data = sl->out_dev[o].ptr;
        return MTMI_OK;
    }
    if ((s = alloc_buf(&sl->out[o], st->be, &st->dev, bytes, MT_MEM_HOST, p->out_names[o]))) return s;
    if (gpu && sl == p->slots) p->d2h_bytes += bytes;
    sl->out_mem[o] = MT_MEM_HOST;
    sl->out_views[o].data = sl->out[o].ptr;
    return MTMI_OK;
}

/* The device events of every stage's runs in slot sl. */
static mtmi_status make_slot_events(mt_pipeline *p, slot *sl) {
    for (int i = 0; i < p->nstages; i++) {
        const stage *st = &p->st[i];
        if (!st->be->event_create) continue;
        slot_events *e = &sl->ev[i];
        e->ready = st->be->event_create(st->plan, 0);
        e->copy_begin = st->be->event_create(st->plan, 1);
        e->copy_end = st->be->event_create(st->plan, 1);
        if (!e->ready || !e->copy_begin || !e->copy_end)
            return mt_fail(MTMI_ERR_DEVICE, "stage '%s': cannot create its device events", st->name);
    }
    return MTMI_OK;
}

static mtmi_status setup_slots(mt_pipeline *p) {
    p->slots = calloc(p->nslots, sizeof(slot));
    if (!p->slots) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    int consumers[MT_PLACE_MAX], nc;
    for (int k = 0; k < p->nslots; k++) {
        slot *sl = &p->slots[k];
        sl->f.slot = k;
        mtmi_status s;
        sl->in = calloc(p->nin + 1, sizeof(buf));
        sl->cut = calloc(p->ncut + 1, sizeof(buf));
        sl->out = calloc(p->nout + 1, sizeof(buf));
        sl->out_dev = calloc(p->nout + 1, sizeof(buf));
        sl->in_dev = calloc(p->nin + 1, sizeof(buf));
        sl->in_views = calloc(p->nin + 1, sizeof(mt_tview));
        sl->out_views = calloc(p->nout + 1, sizeof(mt_tview));
        sl->out_mem = calloc(p->nout + 1, 1);
        sl->out_ready = calloc(p->nout + 1, sizeof(void *));
        sl->f.t_start = sl->t_start;
        sl->f.t_end = sl->t_end;
        sl->f.copy_ms = sl->copy_ms;
        sl->f.out_mem = sl->out_mem;
        sl->f.out_ready = sl->out_ready;
        if (!sl->in || !sl->cut || !sl->out || !sl->out_dev || !sl->in_dev || !sl->in_views || !sl->out_views || !sl->out_mem ||
            !sl->out_ready)
            return mt_fail(MTMI_ERR_NOMEM, "out of memory");
        if ((s = make_slot_events(p, sl))) return s;
        for (int s = 0; s < p->nstages; s++) sl->cb[s] = (cbarg){p, k, s};
        const mt_backend *be;
        mt_devspec dev;
        int mem;
        for (int i = 0; i < p->nin; i++) {
            /* Filled by the application on the host. */
            nc = 0;
            consumers[nc++] = 0;
            pick_memory(p, 0, consumers, 0, &be, &dev, &mem);
            if ((s = alloc_buf(&sl->in[i], be, &dev, view_bytes(&p->in_shape[i]), MT_MEM_HOST, p->in_names[i]))) return s;
            if (p->in_on_dev &&
                (s = alloc_buf(&sl->in_dev[i], be, &dev, view_bytes(&p->in_shape[i]), MT_MEM_DEVICE, p->in_names[i])))
                return s;
            sl->in_views[i] = p->in_shape[i];
            sl->in_views[i].data = sl->in[i].ptr;
        }
        for (int c = 0; c < p->ncut; c++) {
            cut_placement(p, c, &be, &dev, &mem);
            if ((s = alloc_buf(&sl->cut[c], be, &dev, view_bytes(&p->cut_shape[c]), mem, p->cut_names[c]))) return s;
        }
        if (p->nstages == 1)
            for (int i = 0; i < p->nout; i++) {
                sl->out_views[i] = p->out_shape[i];
                sl->out_views[i].data = sl->cut[i].ptr;
            }
        for (int h = 1; h < p->nstages; h++)
            for (int i = 0; i < p->st[h].nout; i++)
                if ((s = setup_result(p, &p->st[h], p->st[h].out_idx[i], sl))) return s;
        sl->f.ninputs = p->nin;
        sl->f.noutputs = p->nout;
        sl->f.inputs = sl->in_views;
        sl->f.outputs = sl->out_views;
    }
    return MTMI_OK;
}

mtmi_status mt_pipeline_create(const mt_stage_desc *stages, int nstages, const mt_pipeline_opts *opt, mt_pipeline **out) {
    *out = NULL;
    if (!stages || nstages < 1 || nstages > MT_PLACE_MAX)
        return mt_fail(MTMI_ERR_ARG, "pipeline: %d stages (1 to %d)", nstages, MT_PLACE_MAX);
    mt_pipeline *p = mt_alloc(sizeof *p);
    if (!p) return MTMI_ERR_NOMEM;
    mt_pipeline_opts def = MT_PIPELINE_OPTS_DEFAULT;
    p->opt = opt ? *opt : def;
    p->nslots = p->opt.inflight > 0 ? p->opt.inflight : 2;
    if (p->nslots > 64) p->nslots = 64;
    pthread_mutex_init(&p->mu, NULL);
    p->nstages = nstages;
    mtmi_status s = MTMI_OK;
    char dev[64];
    /* Devices: backends, and the cores split among distinct CPU devices. */
    int cpu_ids[MT_PLACE_MAX], ncpu = 0;
    for (int i = 0; i < nstages; i++) {
        stage *st = &p->st[i];
        snprintf(st->name, sizeof st->name, "%s", stages[i].name ? stages[i].name : (i ? "head" : "encoder"));
        st->dev = stages[i].dev;
        st->g = stages[i].graph;
        st->devlock = -1;
        st->be = stages[i].backend ? stages[i].backend : mt_backend_for(&st->dev);
        if (!st->be) {
            s = mt_fail_context(MTMI_ERR_DEVICE, "stage '%s'", st->name);
            goto fail;
        }
        if (!st->g) {
            s = mt_fail(MTMI_ERR_ARG, "stage '%s': no graph", st->name);
            goto fail;
        }
        /* Asked before anything is built: a device that is not there or
         * an operator its backend lacks fails here, naming the stage. */
        if (st->be->supports && (s = st->be->supports(&st->dev, st->g))) {
            s = mt_fail_context(s, "stage '%s'", st->name);
            goto fail;
        }
        if (st->dev.kind == MT_DEV_CPU) {
            int j;
            for (j = 0; j < ncpu; j++)
                if (cpu_ids[j] == st->dev.index) break;
            if (j == ncpu) {
                cpu_ids[ncpu++] = st->dev.index;
                pthread_mutex_init(&p->devlocks[j], NULL);
                p->ndevlocks = ncpu;
            }
            st->devlock = j;
        }
    }
    int cores = p->opt.total_threads > 0 ? p->opt.total_threads : mt_num_cores();
    for (int i = 0; i < nstages; i++) {
        stage *st = &p->st[i];
        if (stages[i].threads > 0) st->threads = stages[i].threads;
        else if (st->dev.kind == MT_DEV_CPU) {
            /* Equal shares (a remainder of cores stays idle): then every CPU
             * plan sets OpenBLAS's process-global thread count to the same
             * value, so concurrent devices never change each other's GEMMs
             * (see pipeline.h). */
            st->threads = cores / ncpu;
            if (st->threads < 1) st->threads = 1;
        }
    }
    if ((s = setup_io(p))) goto fail;
    for (int i = 1; i < nstages; i++)
        p->st[i].gpu_ordered = p->st[0].be->event_create && p->st[i].be->event_create;
    /* Model inputs go to the encoder's GPU per slot, uploaded by the stage
     * (unless a head reads them too: then they stay in host memory). */
    p->in_on_dev = p->st[0].dev.kind == MT_DEV_CUDA;
    for (int i = 1; i < nstages; i++)
        for (int k = 0; k < p->st[i].nin; k++)
            if (!p->st[i].in_kind[k]) p->in_on_dev = 0;
    /* Device memory baseline per GPU, after supports() made its context. */
    for (int i = 0; i < nstages; i++) {
        stage *st = &p->st[i];
        if (!st->be->device_used) continue;
        int j;
        for (j = 0; j < p->ngpus; j++)
            if (p->gpu_dev[j].kind == st->dev.kind && p->gpu_dev[j].index == st->dev.index) break;
        if (j < p->ngpus) continue;
        p->gpu_dev[j] = st->dev;
        p->gpu_dev[j].sms = 0;
        p->gpu_be[j] = st->be;
        p->gpu_base[j] = st->be->device_used(&st->dev);
        p->ngpus++;
    }
    /* Where each cut tensor lives, known before the plans are made so that
     * a backend can skip staging for tensors that stay on its device. */
    for (int c = 0; c < p->ncut; c++) {
        const mt_backend *be;
        mt_devspec dv;
        cut_placement(p, c, &be, &dv, &p->cut_mem[c]);
    }
    for (int i = 0; i < nstages; i++) {
        stage *st = &p->st[i];
        unsigned char in_mem[MT_STAGE_MAX_IO] = {0}, out_mem[MT_STAGE_MAX_IO] = {0};
        for (int k = 0; k < st->nin; k++)
            in_mem[k] = st->in_kind[k] ? (unsigned char)p->cut_mem[st->in_idx[k]] : p->in_on_dev ? MT_MEM_DEVICE : MT_MEM_HOST;
        if (i == 0)
            for (int k = 0; k < st->nout; k++) out_mem[k] = (unsigned char)p->cut_mem[st->out_idx[k]];
        else if (st->dev.kind == MT_DEV_CUDA) /* a GPU head writes the slot's device buffers (setup_result) */
            for (int k = 0; k < st->nout; k++) out_mem[k] = MT_MEM_DEVICE;
        if (p->opt.replay && i < p->opt.nreplay &&
            (s = mt_choices_load(&st->choices, p->opt.replay[i].data, p->opt.replay[i].len)))
            goto fail;
        mt_stage_cfg cfg = {.threads = st->threads, .calib = p->opt.calib, .in_mem = in_mem, .out_mem = out_mem,
                            .tuning = p->opt.tuning, .choices = &st->choices, .graph_quantized = stages[i].graph_quantized};
        if ((s = mt_plan_create(st->be, &st->dev, st->g, &cfg, &st->mp))) {
            s = mt_fail_context(s, "stage '%s' on %s", st->name, mt_devspec_str(&st->dev, dev, sizeof dev));
            goto fail;
        }
        st->plan = st->mp->impl;
    }
    p->opt.tuning = NULL; /* the plans hold copies; the caller's struct may go */
    p->opt.replay = NULL;
    p->opt.nreplay = 0;
    if ((s = setup_slots(p))) goto fail;
    if (q_init(&p->free_q, p->nslots) || q_init(&p->done_q, p->nslots)) {
        s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < nstages; i++)
        if (q_init(&p->st[i].q, p->nslots)) {
            s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
            goto fail;
        }
    for (int k = 0; k < p->nslots; k++) q_push(&p->free_q, k);
    for (int i = 0; i < nstages; i++) {
        /* The thread's argument only names the pipeline and the stage; slot
         * 0's callback argument for the stage does that and lives as long. */
        if (pthread_create(&p->st[i].th, NULL, stage_main, &p->slots[0].cb[i]) != 0) {
            s = mt_fail(MTMI_ERR_INTERNAL, "stage '%s': cannot start its thread", p->st[i].name);
            goto fail;
        }
        p->st[i].started = 1;
    }
    *out = p;
    return MTMI_OK;
fail:
    mt_pipeline_free(p);
    return s;
}

void mt_pipeline_free(mt_pipeline *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    stop_all(p);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nstages; i++)
        if (p->st[i].started) pthread_join(p->st[i].th, NULL);
    /* Plans go first: an asynchronous backend's destroy waits for the work it
     * still has queued, which may write into the slots' buffers and call
     * on_done (harmless once stopped: it only records a time). */
    for (int i = 0; i < p->nstages; i++) {
        mt_plan_free(p->st[i].mp);
        mt_choices_free(&p->st[i].choices);
    }
    for (int k = 0; p->slots && k < p->nslots; k++) {
        slot *sl = &p->slots[k];
        for (int i = 0; sl->in && i < p->nin; i++) free_buf(&sl->in[i]);
        for (int i = 0; sl->cut && i < p->ncut; i++) free_buf(&sl->cut[i]);
        for (int i = 0; sl->out && i < p->nout; i++) free_buf(&sl->out[i]);
        for (int i = 0; sl->out_dev && i < p->nout; i++) free_buf(&sl->out_dev[i]);
        for (int i = 0; sl->in_dev && i < p->nin; i++) free_buf(&sl->in_dev[i]);
        for (int i = 0; i < p->nstages; i++) {
            void *evs[3] = {sl->ev[i].ready, sl->ev[i].copy_begin, sl->ev[i].copy_end};
            for (int k = 0; k < 3; k++)
                if (evs[k]) p->st[i].be->event_destroy(evs[k]);
        }
        free(sl->in);
        free(sl->cut);
        free(sl->out);
        free(sl->out_dev);
        free(sl->in_dev);
        free(sl->in_views);
        free(sl->out_views);
        free(sl->out_mem);
        free(sl->out_ready);
    }
    free(p->slots);
    for (int i = 0; i < p->nstages; i++) q_free(&p->st[i].q);
    q_free(&p->free_q);
    q_free(&p->done_q);
    for (int i = 0; i < p->ndevlocks; i++) pthread_mutex_destroy(&p->devlocks[i]);
    pthread_mutex_destroy(&p->mu);
    for (int i = 0; p->in_names && i < p->nin; i++) free(p->in_names[i]);
    for (int i = 0; p->cut_names && i < p->ncut; i++) free(p->cut_names[i]);
    for (int i = 0; p->out_names && i < p->nout; i++) free(p->out_names[i]);
    free(p->in_names);
    free(p->cut_names);
    free(p->out_names);
    free(p->in_shape);
    free(p->cut_shape);
    free(p->out_shape);
    free(p->cut_mem);
    free(p->out_on_dev);
    free(p->out_src);
    free(p->out_form);
    if (p->own_split) mt_split_free(&p->split);
    for (int i = 0; i < MT_PLACE_MAX; i++) mt_graph_free(p->qheads[i]);
    mt_graph_free(p->spec);
    free(p);
}

/* ------------------------------------------------------------ frame flow */
static mtmi_status failed_status(mt_pipeline *p) {
    /* Called with p->mu held; copies the message into this thread's error. */
    char msg[sizeof p->err_msg];
    memcpy(msg, p->err_msg, sizeof msg);
    mtmi_status s = p->err ? p->err : MTMI_ERR_INTERNAL;
    int failed = p->failed;
    pthread_mutex_unlock(&p->mu);
    mt_fail(s, "%s", failed ? msg : "pipeline stopped");
    return s;
}

mtmi_status mt_pipeline_begin(mt_pipeline *p, mt_frame **f) {
    *f = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->failed) return failed_status(p);
    if (p->pending >= p->nslots) {
        pthread_mutex_unlock(&p->mu);
        return mt_fail(MTMI_ERR_ARG, "pipeline: all %d slots are taken; wait for and release a frame first", p->nslots);
    }
    int k = q_pop(p, &p->free_q);
    if (k < 0) return failed_status(p);
    slot *sl = &p->slots[k];
    sl->f.index = p->next_index++;
    sl->f.user = NULL;
    sl->f.t_submit = sl->f.t_done = 0;
    memset(sl->t_start, 0, sizeof sl->t_start);
    memset(sl->t_end, 0, sizeof sl->t_end);
    p->pending++;
    pthread_mutex_unlock(&p->mu);
    *f = &sl->f;
    return MTMI_OK;
}

mtmi_status mt_pipeline_submit(mt_pipeline *p, mt_frame *f) {
    slot *sl = &p->slots[f->slot];
    pthread_mutex_lock(&p->mu);
    if (p->failed) return failed_status(p);
    sl->callbacks_left = p->nstages;
    sl->f.t_submit = mt_now_ms();
    p->submitted++;
    q_push(&p->st[0].q, f->slot);
    pthread_mutex_unlock(&p->mu);
    return MTMI_OK;
}

/* Does stage st copy results of slot sl to the host? */
static int stage_copies(const mt_pipeline *p, const stage *st, const slot *sl) {
    if (st == &p->st[0]) return 0;
    for (int i = 0; i < st->nout; i++)
        if (sl->out_dev[st->out_idx[i]].ptr && sl->out[st->out_idx[i]].ptr) return 1;
    return 0;
}

mtmi_status mt_pipeline_wait(mt_pipeline *p, mt_frame **f) {
    *f = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->failed) return failed_status(p);
    if (!p->submitted) {
        /* Nothing could ever arrive: fail instead of waiting forever. */
        pthread_mutex_unlock(&p->mu);
        return mt_fail(MTMI_ERR_ARG, "pipeline: wait with no frame submitted");
    }
    int k = q_pop(p, &p->done_q);
    if (k < 0) return failed_status(p);
    slot *sl = &p->slots[k];
    if (sl->f.index != p->next_done) {
        fail_locked(p, MTMI_ERR_INTERNAL, "pipeline: frame %lld finished before frame %lld", (long long)sl->f.index,
                    (long long)p->next_done);
        return failed_status(p);
    }
    p->next_done++;
    p->submitted--;
    pthread_mutex_unlock(&p->mu);
    /* The frame is complete, so are its events: how long its copies took. */
    for (int i = 0; i < p->nstages; i++) {
        const stage *st = &p->st[i];
        sl->copy_ms[i] = -1;
        if (st->be->event_elapsed_ms && sl->ev[i].copy_begin && stage_copies(p, st, sl))
            sl->copy_ms[i] = st->be->event_elapsed_ms(sl->ev[i].copy_begin, sl->ev[i].copy_end);
    }
    *f = &sl->f;
    return MTMI_OK;
}

void mt_pipeline_release_after(mt_pipeline *p, mt_frame *f, void *event) {
    if (!f) return;
    pthread_mutex_lock(&p->mu);
    p->slots[f->slot].consumer_event = event;
    p->pending--;
    q_push(&p->free_q, f->slot);
    pthread_mutex_unlock(&p->mu);
}

void mt_pipeline_release(mt_pipeline *p, mt_frame *f) { mt_pipeline_release_after(p, f, NULL); }

mtmi_status mt_pipeline_restart(mt_pipeline *p) {
    pthread_mutex_lock(&p->mu);
    if (p->failed) return failed_status(p);
    if (p->pending) {
        int n = p->pending;
        pthread_mutex_unlock(&p->mu);
        return mt_fail(MTMI_ERR_ARG, "pipeline: cannot restart with %d frames pending", n);
    }
    p->next_index = p->next_done = 0;
    pthread_mutex_unlock(&p->mu);
    return MTMI_OK;
}

int mt_pipeline_pending(const mt_pipeline *p) {
    pthread_mutex_lock((pthread_mutex_t *)&p->mu);
    int n = p->pending;
    pthread_mutex_unlock((pthread_mutex_t *)&p->mu);
    return n;
}

int mt_pipeline_inflight(const mt_pipeline *p) { return p->nslots; }
int mt_pipeline_num_stages(const mt_pipeline *p) { return p->nstages; }
const char *mt_pipeline_stage_name(const mt_pipeline *p, int s) { return p->st[s].name; }
const mt_devspec *mt_pipeline_stage_dev(const mt_pipeline *p, int s) { return &p->st[s].dev; }
int mt_pipeline_stage_threads(const mt_pipeline *p, int s) { return p->st[s].threads; }
const mt_graph *mt_pipeline_stage_graph(const mt_pipeline *p, int s) { return p->st[s].g; }
const mt_choices *mt_pipeline_stage_choices(const mt_pipeline *p, int s) { return &p->st[s].choices; }
const mt_backend *mt_pipeline_stage_backend(const mt_pipeline *p, int s) { return p->st[s].be; }
int mt_pipeline_num_outputs(const mt_pipeline *p) { return p->nout; }
const char *mt_pipeline_output_name(const mt_pipeline *p, int i) { return p->out_names[i]; }
const mt_tview *mt_pipeline_output_shape(const mt_pipeline *p, int i) { return &p->out_shape[i]; }
int mt_pipeline_output_mem(const mt_pipeline *p, int i) { return p->out_on_dev[i] ? MT_MEM_DEVICE : MT_MEM_HOST; }

int mt_pipeline_output_device(const mt_pipeline *p, int i) {
    for (int s = 1; s < p->nstages; s++)
        for (int k = 0; k < p->st[s].nout; k++)
            if (p->st[s].out_idx[k] == i) return p->st[s].dev.index;
    return p->st[0].dev.index;
}
size_t mt_pipeline_d2h_bytes(const mt_pipeline *p) { return p->d2h_bytes; }

void mt_pipeline_output_form(const mt_pipeline *p, int i, int *model_output, unsigned *form) {
    if (model_output) *model_output = p->out_src[i];
    if (form) *form = p->out_form[i];
}

int mt_pipeline_find_output(const mt_pipeline *p, int model_output, unsigned form) {
    for (int i = 0; i < p->nout; i++)
        if (p->out_src[i] == model_output && p->out_form[i] == form) return i;
    return -1;
}

int mt_pipeline_can_overlap(const mt_pipeline *p) {
    for (int i = 1; i < p->nstages; i++)
        if (p->st[i].dev.kind != MT_DEV_CPU || !mt_devspec_same_device(&p->st[i].dev, &p->st[0].dev)) return 1;
    return p->st[0].dev.kind != MT_DEV_CPU;
}
int mt_pipeline_num_inputs(const mt_pipeline *p) { return p->nin; }
const mt_tview *mt_pipeline_input_shape(const mt_pipeline *p, int i) { return &p->in_shape[i]; }

size_t mt_pipeline_stage_memory(const mt_pipeline *p, int s) {
    return p->st[s].be->memory && p->st[s].plan ? p->st[s].be->memory(p->st[s].plan) : 0;
}

int mt_pipeline_num_gpus(const mt_pipeline *p) { return p->ngpus; }

size_t mt_pipeline_gpu_memory(const mt_pipeline *p, int k, int *gpu) {
    if (k < 0 || k >= p->ngpus) return 0;
    if (gpu) *gpu = p->gpu_dev[k].index;
    size_t now = p->gpu_be[k]->device_used(&p->gpu_dev[k]);
    return now > p->gpu_base[k] ? now - p->gpu_base[k] : 0;
}

size_t mt_pipeline_memory(const mt_pipeline *p) {
    size_t b = 0;
    for (int i = 0; i < p->nstages; i++)
        if (p->st[i].be->memory) b += p->st[i].be->memory(p->st[i].plan);
    for (int k = 0; k < p->nslots; k++) {
        for (int i = 0; i < p->nin; i++) b += p->slots[k].in[i].bytes + p->slots[k].in_dev[i].bytes;
        for (int i = 0; i < p->ncut; i++) b += p->slots[k].cut[i].bytes;
        for (int i = 0; i < p->nout; i++) b += p->slots[k].out[i].bytes + p->slots[k].out_dev[i].bytes;
    }
    return b;
}

/* ------------------------------------------------------------ from model */
/* Whether a stage may run INT8: a device of the placement says so, or
 * `auto` has a calibration cache (or a Q/DQ model's scales) to choose INT8
 * stages with. */
static int may_run_int8(const mt_placement *pl, const mt_pipeline_opts *opt, const mtmi_model *m) {
    const int calib = (opt && (opt->calib || opt->calib_path)) || m->qdq;
    if (!pl || pl->is_auto) return calib;
    int any = pl->has_default && pl->def.prec == MT_PREC_INT8;
    for (int i = 0; i < pl->n; i++) any |= pl->dev[i].prec == MT_PREC_INT8;
    return any;
}

/* Whether d's backend runs the INT8 rewrite of stage (a question: the
 * CUDA backend has no grouped INT8 convolution yet). */
static int runs_int8(const mt_devspec *d, const mt_graph *stage, const mt_calib_cache *c) {
    mt_graph *q = NULL;
    int ok = !mt_quant_stage_graph(stage, c, "stage", &q) && !mt_device_supports(d, q);
    mt_graph_free(q);
    mt_clear_error();
    return ok;
}

/* The device of a stage of a Q/DQ model under automatic placement: int8
 * where the model quantized some of the stage's layers and the device
 * runs them, else the device's float precision (fp16 on a GPU, fp32 on
 * the CPU). */
static mt_devspec qdq_auto_dev(mt_devspec d, const mt_graph *stage, const mt_calib_cache *c) {
    mt_devspec d8 = d;
    d8.prec = MT_PREC_INT8;
    if (mt_quant_count(stage, c) > 0 && (d.kind == MT_DEV_CPU || runs_int8(&d8, stage, c))) return d8;
    if (d.prec == MT_PREC_INT8) d.prec = d.kind == MT_DEV_CUDA ? MT_PREC_FP16 : MT_PREC_FP32;
    return d;
}

/* INT8 heads get the encoder's features as int8 where they read them only
 * through QConvs (mt_quant_handover): the INT8 heads are rewritten here,
 * as mt_plan_create would, so that the handover sees their QConvs; their
 * stages then take the rewritten graphs (qheads[i], owned by the caller).
 * Where the rewrite fails the stages are left as they were, and
 * mt_plan_create reports the error. */
static void handover_int8(mt_split *sp, mt_stage_desc *d, int ndesc, const mt_calib_cache *c, const mt_tuning *tn,
                          mt_graph **qheads) {
    if (!c || tn->no_int8_handover) return;
    mt_graph *graphs[MT_PLACE_MAX];
    int nh = 0, nq = 0;
    for (int i = 1; i < ndesc; i++) {
        graphs[nh] = (mt_graph *)d[i].graph; /* the split's heads, owned by the pipeline-to-be */
        if (d[i].dev.prec == MT_PREC_INT8) {
            if (mt_quant_stage_graph(d[i].graph, c, "stage", &qheads[i]) || mt_quant_apply_tuning(qheads[i], tn)) {
                mt_clear_error();
                for (int k = 0; k < MT_PLACE_MAX; k++) mt_graph_free(qheads[k]), qheads[k] = NULL;
                return;
            }
            graphs[nh] = qheads[i];
            nq++;
        }
        nh++;
    }
    int made = 0;
    if (!nq || mt_quant_handover(sp->encoder, graphs, nh, &made)) {
        /* nothing to hand over, or the graphs could not be changed (out of
         * memory: the encoder may be half changed, so fail it at create) */
        mt_clear_error();
        for (int k = 0; k < MT_PLACE_MAX; k++) mt_graph_free(qheads[k]), qheads[k] = NULL;
        return;
    }
    for (int i = 1; i < ndesc; i++)
        if (qheads[i]) d[i].graph = qheads[i], d[i].graph_quantized = 1;
}

/* The features a GPU encoder hands to heads on the same GPU in FP16 or
 * INT8 storage go as float16 NHWC (mt_pipeline_handover_f16; off with
 * tuning.no_f16_handover), those INT8 heads read only through QConvs
 * having gone as int8 already.  On failure (out of memory) the graphs may
 * be half changed: mt_pipeline_create then fails to match the stages'
 * tensors and says so. */
static void handover_f16(mt_split *sp, mt_stage_desc *d, int ndesc, const mt_tuning *tn) {
    const mt_devspec *e = &d[0].dev;
    if (tn->no_f16_handover || e->kind != MT_DEV_CUDA || e->prec == MT_PREC_FP32) return;
    mt_graph *graphs[MT_PLACE_MAX];
    unsigned char take[MT_PLACE_MAX];
    int nh = 0;
    for (int i = 1; i < ndesc; i++, nh++) {
        graphs[nh] = (mt_graph *)d[i].graph; /* the split's heads or their INT8 rewrites, owned by the pipeline-to-be */
        take[nh] = d[i].dev.kind == MT_DEV_CUDA && d[i].dev.index == e->index && d[i].dev.prec != MT_PREC_FP32;
    }
    if (mt_pipeline_handover_f16(sp->encoder, graphs, take, nh, NULL)) mt_clear_error();
}

mtmi_status mt_pipeline_from_model(const mtmi_model *m, const mtmi_tensor *shape, const mt_placement *place,
                                   const mt_pipeline_opts *opt, mt_pipeline **out) {
    *out = NULL;
    mt_graph *g = NULL;
    /* A calibration cache names the standard graph's tensors: with INT8
     * stages, no opt-in graph rewrite (core/tuning.h). */
    mt_tuning tn = opt && opt->tuning ? *opt->tuning : *mt_tuning_default();
    if (may_run_int8(place, opt, m)) tn.fuse_concat = 0;
    mtmi_status s = mt_model_specialize_ex(m, shape, shape ? 1 : 0, 1, &tn, &g);
    if (s) return s;
    if (opt && opt->image_input && (s = mt_graph_image_input(g, 0, mt_image_mean, mt_image_std))) {
        mt_graph_free(g);
        return s;
    }
    if (g->noutputs < 2) {
        mt_graph_free(g);
        return mt_fail(MTMI_ERR_SHAPE, "pipeline: the model has %d output(s); a multi-task model has an encoder and 2+ heads",
                       g->noutputs);
    }
    mt_split sp;
    memset(&sp, 0, sizeof sp);
    if ((s = mt_graph_split(g, NULL, 0, &sp))) {
        mt_graph_free(g);
        return mt_fail_context(s, "splitting the model");
    }
    int nst = 1 + sp.nheads;
    if (nst > MT_PLACE_MAX) {
        mt_split_free(&sp);
        mt_graph_free(g);
        return mt_fail(MTMI_ERR_UNSUPPORTED, "pipeline: %d heads, at most %d", sp.nheads, MT_PLACE_MAX - 1);
    }
    const char *names[MT_PLACE_MAX];
    names[0] = "encoder";
    for (int k = 0; k < sp.nheads; k++) names[k + 1] = g->values[g->outputs[k]].name;
    mt_placement auto_pl;
    const mt_placement *pl = place;
    /* A Q/DQ model placed automatically without a calibration cache runs
     * INT8 exactly where it holds quantized layers (qdq_auto_dev). */
    const mt_calib_cache *qdq_auto = NULL;
    if (!pl || pl->is_auto) {
        const int calib = opt && (opt->calib || opt->calib_path);
        if (!calib && m->qdq) qdq_auto = &m->qdq->scales;
        mt_placement_auto(names, nst, calib || m->qdq, &auto_pl);
        pl = &auto_pl;
    } else if ((s = mt_placement_check(pl, names, nst))) {
        mt_split_free(&sp);
        mt_graph_free(g);
        return s;
    }
    mt_stage_desc d[MT_PLACE_MAX];
    memset(d, 0, sizeof d);
    int any_int8 = 0;
    /* The results asked of each head, made on its device (a head asked for
     * nothing is not run); per pipeline output, its model output and form. */
    enum { MAX_RESULTS = 64 };
    int res_src[MAX_RESULTS], nres = 0, ndesc = 0;
    unsigned res_form[MAX_RESULTS];
    unsigned char res_dev[MAX_RESULTS];
    for (int i = 0; i < nst; i++) {
        if (i) {
            const unsigned forms = opt && opt->model_forms ? opt->model_forms[i - 1] : MT_FORM_FLOAT;
            int src[MAX_RESULTS];
            const int n = mt_graph_output_forms(sp.heads[i - 1], &forms, src, res_form + nres, MAX_RESULTS - nres);
            if (n < 0 || nres + n > MAX_RESULTS) {
                s = n < 0 ? mt_fail_context(MTMI_ERR_ARG, "head '%s'", names[i])
                          : mt_fail(MTMI_ERR_UNSUPPORTED, "pipeline: more than %d results", MAX_RESULTS);
                mt_split_free(&sp);
                mt_graph_free(g);
                return s;
            }
            if (!n) continue;
            for (int k = 0; k < n; k++) {
                res_src[nres + k] = i - 1;
                res_dev[nres + k] = opt && opt->model_on_device && opt->model_on_device[i - 1];
            }
            nres += n;
        }
        d[ndesc].name = names[i];
        d[ndesc].graph = i ? sp.heads[i - 1] : sp.encoder;
        d[ndesc].dev = mt_placement_lookup(pl, names[i]);
        if (qdq_auto) d[ndesc].dev = qdq_auto_dev(d[ndesc].dev, d[ndesc].graph, qdq_auto);
        any_int8 |= d[ndesc].dev.prec == MT_PREC_INT8;
        ndesc++;
    }
    if (ndesc < 2) {
        mt_split_free(&sp);
        mt_graph_free(g);
        return mt_fail(MTMI_ERR_ARG, "pipeline: no result asked of any head");
    }
    mt_pipeline_opts o2 = MT_PIPELINE_OPTS_DEFAULT;
    if (opt) o2 = *opt;
    o2.on_device = res_dev;
    mt_calib_cache cache;
    memset(&cache, 0, sizeof cache);
    int own_cache = 0;
    if (any_int8 && !o2.calib && o2.calib_path) {
        /* Names are checked against the model as loaded and as optimized. */
        s = mt_calib_cache_read(o2.calib_path, &cache);
        if (!s) s = mt_calib_cache_check(&cache, m->graph, g);
        if (s) {
            mt_calib_cache_free(&cache);
            mt_split_free(&sp);
            mt_graph_free(g);
            return s;
        }
        own_cache = 1;
        o2.calib = &cache;
    } else if (any_int8 && !o2.calib && m->qdq)
        o2.calib = &m->qdq->scales; /* a calibration cache, when given, wins */
    mt_graph *qheads[MT_PLACE_MAX] = {NULL};
    handover_int8(&sp, d, ndesc, o2.calib, &tn, qheads);
    handover_f16(&sp, d, ndesc, &tn);
    mt_pipeline *p = NULL;
    s = mt_pipeline_create(d, ndesc, &o2, &p);
    if (p) memcpy(p->qheads, qheads, sizeof qheads);
    else
        for (int i = 0; i < MT_PLACE_MAX; i++) mt_graph_free(qheads[i]);
    /* Plans hold their rewritten graphs; the cache is not needed after. */
    if (own_cache) mt_calib_cache_free(&cache);
    if (p) p->opt.calib = NULL;
    if (s) {
        mt_split_free(&sp);
        mt_graph_free(g);
        return s;
    }
    p->spec = g;
    p->split = sp;
    p->own_split = 1;
    p->opt.on_device = NULL; /* res_dev was read at creation */
    p->opt.model_forms = NULL;
    p->opt.model_on_device = NULL;
    for (int i = 0; i < p->nout && i < nres; i++) p->out_src[i] = res_src[i], p->out_form[i] = res_form[i];
    *out = p;
    return MTMI_OK;
}
