/* The file I/O of `mtmi run`, on one pool of worker threads beside the
 * pipeline, each worker taking whichever task is due:
 *
 *   decoding: frame k (PNG, or a synthetic scene) decoded and fitted into a
 *             ring of R slots; the application thread takes frame k from
 *             slot k % R in order, so decoding runs ahead by at most R frames;
 *   writing:  a pool of J jobs; the application thread copies a finished
 *             frame's results from the pipeline's buffers into a free job
 *             (waiting for one when every job is still being written: the
 *             disk's speed then paces the run, and memory stays bounded)
 *             and the workers turn jobs into files.
 *
 * Order of preference: the frame the application waits for, then writes
 * (they free jobs and memory), then decoding ahead.  One pool rather than
 * two fixed ones because the mix changes with --save: decoding a 1024x1024
 * PNG costs ~17 ms of a core, writing its class map and depth ~10 ms, and
 * its vis ~110 ms.
 *
 * Every file is written to a temporary name and renamed (mt_write_file_atomic
 * and friends), so an interrupted run leaves only complete files. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/npy.h"
#include "graph/graph.h"
#include "image/image.h"

/* ------------------------------------------------------------- the pool */
enum { SLOT_FREE = 0, SLOT_BUSY, SLOT_READY };

typedef struct read_slot {
    int state;
    int64_t index;
    mt_image img;
    int owned;        /* img is this slot's (else the source cache's) */
    mtmi_status err;
    char msg[512];
} read_slot;

struct run_io {
    pthread_mutex_t mu;
    pthread_cond_t cv_work;   /* a worker may have something to do */
    pthread_cond_t cv_app;    /* the application: a frame decoded, a job freed, all written */
    int stop;
    pthread_t th[RUN_MAX_THREADS];
    int nthreads, nstarted;
    /* decoding */
    char **files;             /* NULL: synthetic scenes */
    int nsrc, w, h;
    int64_t frames, next_decode, wanted;  /* wanted: the frame the application takes next */
    int nslots;
    read_slot *slots;
    /* Sources decoded once and kept when frames repeat them (nsrc <=
     * RUN_CACHE_MAX and frames > nsrc). */
    mt_image *cache;
    int *cache_state;         /* 0 none, 1 decoding, 2 ready */
    double decode_ms;
    int64_t decoded;
    /* writing */
    run_write_opts o;
    run_job *jobs;
    int njobs;
    int *free_ids, nfree;     /* a stack of free jobs */
    int *queue, qhead, qcount;
    int writing;
    mtmi_status err;
    char msg[768];
    run_written *written;     /* per written frame index (o.nwrite) */
    double write_ms, wait_ms;
    int64_t jobs_done;
};

/* Decodes (or synthesizes) source i fitted to w x h. */
static mtmi_status decode_source(const run_io *r, int i, mt_image *out) {
    mt_image src = {0};
    mtmi_status s;
    /* A different synthetic scene per source, at a camera-like 2:1 aspect,
     * so the centre crop and resize run as with real images. */
    if (r->files) s = mt_png_read(r->files[i], &src);
    else s = mt_image_synth_street(r->w * 2, r->h, (uint64_t)i, &src);
    if (s) return s;
    s = mt_image_fit(&src, r->w, r->h, out);
    mt_image_free(&src);
    return s;
}

/* Frame k's image into slot sl (called without the lock), from the cache
 * when sources are kept. */
static void fill_slot(run_io *r, read_slot *sl, int64_t k) {
    const int i = (int)(k % r->nsrc);
    const double t0 = mt_now_ms();
    mtmi_status s = MTMI_OK;
    if (r->cache) {
        pthread_mutex_lock(&r->mu);
        while (r->cache_state[i] == 1) pthread_cond_wait(&r->cv_work, &r->mu);
        const int mine = r->cache_state[i] == 0;
        if (mine) r->cache_state[i] = 1;
        pthread_mutex_unlock(&r->mu);
        if (mine) s = decode_source(r, i, &r->cache[i]);
        pthread_mutex_lock(&r->mu);
        if (mine) r->cache_state[i] = s ? 0 : 2;
        pthread_cond_broadcast(&r->cv_work);
        pthread_mutex_unlock(&r->mu);
        sl->img = r->cache[i];
        sl->owned = 0;
    } else {
        s = decode_source(r, i, &sl->img);
        sl->owned = 1;
    }
    sl->err = s;
    if (s) snprintf(sl->msg, sizeof sl->msg, "%s", mtmi_last_error());
    pthread_mutex_lock(&r->mu);
    r->decode_ms += mt_now_ms() - t0;
    r->decoded++;
    sl->state = SLOT_READY;
    pthread_cond_broadcast(&r->cv_app);
    pthread_mutex_unlock(&r->mu);
}

/* ------------------------------------------------------------- writing */
/* One file's path "<outdir>/<stem><suffix>", or an error (never cut short). */
int run_output_path(const char *outdir, const char *stem, const char *suffix, char *path, size_t cap) {
    char name[2 * MT_NAME_CAP];
    int n = snprintf(name, sizeof name, "%s%s", stem, suffix);
    if (n < 0 || (size_t)n >= sizeof name) return mt_fail(MTMI_ERR_ARG, "output name '%s%s' is too long", stem, suffix), -1;
    return mt_path_join(path, cap, outdir, name) ? -1 : 0;
}

static mtmi_status write_npy(const char *path, int dtype, int rank, const int64_t *dims, void *data) {
    mtmi_tensor t = {.dtype = (mtmi_dtype)dtype, .rank = rank, .data = data};
    memcpy(t.dims, dims, sizeof(int64_t) * rank);
    return mt_npy_write(path, &t);
}

/* Depth as float for the vis (from FP16 when that was asked for). */
static const float *depth_floats(run_job *j, float **tmp) {
    *tmp = NULL;
    if (j->depth_dtype == MTMI_FLOAT) return j->depth;
    const size_t n = (size_t)j->dh * j->dw;
    if (!(*tmp = malloc(n * sizeof(float)))) return NULL;
    for (size_t i = 0; i < n; i++) (*tmp)[i] = mt_half_to_float(((const uint16_t *)j->depth)[i]);
    return *tmp;
}

static mtmi_status write_vis(const run_write_opts *o, run_job *j, const char *path) {
    float *tmp = NULL;
    const float *d = j->depth ? depth_floats(j, &tmp) : NULL;
    if (j->depth && !d) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    mt_image vis;
    mtmi_status s = mt_vis_compose(&j->input, j->classes ? j->classes : NULL, j->cw, j->ch, d, j->dw, j->dh, &vis);
    free(tmp);
    if (s) return s;
    s = mt_png_write(path, &vis);
    mt_image_free(&vis);
    return s;
}

/* Writes the files of job j and records them. */
static mtmi_status write_job(run_io *w, run_job *j) {
    const run_write_opts *o = &w->o;
    run_written *rec = &w->written[j->index];
    char path[RUN_PATH_MAX];
    mtmi_status s = MTMI_OK;
    if (o->test_slow_write_ms > 0) usleep((useconds_t)o->test_slow_write_ms * 1000);
    rec->files = 0;
    if ((o->save & RUN_SAVE_CLASSES) && j->classes) {
        if (run_output_path(o->outdir, j->stem, "_classes.png", path, sizeof path)) return MTMI_ERR_ARG;
        mt_image im = {j->cw, j->ch, 1, j->classes};
        if ((s = mt_png_write(path, &im))) return s;
        rec->files |= RUN_SAVE_CLASSES;
    }
    if ((o->save & RUN_SAVE_LOGITS) && j->logits) {
        const int seed = o->format_seed;
        if (run_output_path(o->outdir, j->stem, seed ? "_seg.bin" : "_logits.npy", path, sizeof path)) return MTMI_ERR_ARG;
        const int64_t dims[3] = {j->lc, j->lh, j->lw};
        const size_t bytes = (size_t)j->lc * j->lh * j->lw * mt_dtype_size(j->logits_dtype);
        if ((s = seed ? mt_write_file_atomic(path, j->logits, bytes) : write_npy(path, j->logits_dtype, 3, dims, j->logits)))
            return s;
        rec->files |= RUN_SAVE_LOGITS;
        rec->scale = j->scale;
    }
    if ((o->save & RUN_SAVE_DEPTH) && j->depth) {
        const int seed = o->format_seed;
        if (run_output_path(o->outdir, j->stem, seed ? "_depth.bin" : "_depth.npy", path, sizeof path)) return MTMI_ERR_ARG;
        const int64_t dims[2] = {j->dh, j->dw};
        const size_t bytes = (size_t)j->dh * j->dw * mt_dtype_size(j->depth_dtype);
        if ((s = seed ? mt_write_file_atomic(path, j->depth, bytes) : write_npy(path, j->depth_dtype, 2, dims, j->depth))) return s;
        rec->files |= RUN_SAVE_DEPTH;
    }
    if (o->save & RUN_SAVE_VIS) {
        if (run_output_path(o->outdir, j->stem, "_vis.png", path, sizeof path)) return MTMI_ERR_ARG;
        if ((s = write_vis(o, j, path))) return s;
        rec->files |= RUN_SAVE_VIS;
    }
    rec->done = 1;
    return MTMI_OK;
}

static void release_input(run_job *j) {
    if (j->input_owned) mt_image_free(&j->input);
    memset(&j->input, 0, sizeof j->input);
    j->input_owned = 0;
}

/* Writes job id (called without the lock). */
static void do_write(run_io *w, int id) {
    run_job *j = &w->jobs[id];
    pthread_mutex_lock(&w->mu);
    const int skip = w->err != MTMI_OK || j->index < 0;
    pthread_mutex_unlock(&w->mu);
    const double t0 = mt_now_ms();
    mtmi_status s = skip ? MTMI_OK : write_job(w, j);
    const double dt = mt_now_ms() - t0;
    char msg[768] = "";
    if (s) snprintf(msg, sizeof msg, "frame %lld (%s): %s", (long long)j->index, j->stem, mtmi_last_error());
    release_input(j);
    pthread_mutex_lock(&w->mu);
    if (s && !w->err) {
        w->err = s;
        memcpy(w->msg, msg, sizeof msg);
    }
    w->write_ms += dt;
    w->jobs_done++;
    w->writing--;
    w->free_ids[w->nfree++] = id;
    pthread_cond_broadcast(&w->cv_app);
    pthread_mutex_unlock(&w->mu);
}

/* The next frame to decode, if its ring slot is free (caller holds mu). */
static read_slot *claim_decode(run_io *r, int64_t *k) {
    if (r->next_decode >= r->frames) return NULL;
    read_slot *sl = &r->slots[r->next_decode % r->nslots];
    if (sl->state != SLOT_FREE) return NULL;
    *k = r->next_decode++;
    sl->state = SLOT_BUSY;
    sl->index = *k;
    return sl;
}

static void *worker_main(void *arg) {
    run_io *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        int64_t k = -1;
        read_slot *sl = NULL;
        /* the frame the application waits for first, then writes, then
         * decoding ahead */
        if (!r->stop && r->next_decode == r->wanted) sl = claim_decode(r, &k);
        if (!sl && r->qcount) {
            const int id = r->queue[r->qhead];
            r->qhead = (r->qhead + 1) % r->njobs;
            r->qcount--;
            r->writing++;
            pthread_mutex_unlock(&r->mu);
            do_write(r, id);
            pthread_mutex_lock(&r->mu);
            continue;
        }
        if (!sl && !r->stop) sl = claim_decode(r, &k);
        if (sl) {
            pthread_mutex_unlock(&r->mu);
            fill_slot(r, sl, k);
            pthread_mutex_lock(&r->mu);
            continue;
        }
        if (r->stop) break; /* stopping, and no write left */
        pthread_cond_wait(&r->cv_work, &r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

mtmi_status run_io_start(char **files, int nsrc, int w, int h, int64_t frames, const run_write_opts *o, int nthreads,
                         run_io **out) {
    *out = NULL;
    run_io *r = mt_alloc(sizeof *r);
    if (!r) return MTMI_ERR_NOMEM;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv_work, NULL);
    pthread_cond_init(&r->cv_app, NULL);
    r->files = files;
    r->nsrc = nsrc;
    r->w = w, r->h = h;
    r->frames = frames;
    r->nthreads = nthreads < 1 ? 1 : nthreads > RUN_MAX_THREADS ? RUN_MAX_THREADS : nthreads;
    r->nslots = r->nthreads + 2;
    r->slots = calloc((size_t)r->nslots, sizeof *r->slots);
    const int keep = nsrc <= RUN_CACHE_MAX && frames > nsrc; /* frames repeat sources: decode each once */
    if (keep) {
        r->cache = calloc((size_t)nsrc, sizeof *r->cache);
        r->cache_state = calloc((size_t)nsrc, sizeof *r->cache_state);
    }
    r->o = *o;
    r->njobs = 2 * r->nthreads;
    r->jobs = calloc((size_t)r->njobs, sizeof *r->jobs);
    r->free_ids = calloc((size_t)r->njobs, sizeof(int));
    r->queue = calloc((size_t)r->njobs, sizeof(int));
    r->written = calloc((size_t)(o->nwrite > 0 ? o->nwrite : 1), sizeof *r->written);
    if (!r->slots || (keep && (!r->cache || !r->cache_state)) || !r->jobs || !r->free_ids || !r->queue || !r->written) {
        run_io_stop(r);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < r->njobs; i++) r->free_ids[r->nfree++] = r->njobs - 1 - i;
    for (int i = 0; i < r->nthreads; i++) {
        if (pthread_create(&r->th[i], NULL, worker_main, r)) {
            run_io_stop(r);
            return mt_fail(MTMI_ERR_INTERNAL, "cannot start the I/O worker threads");
        }
        r->nstarted++;
    }
    *out = r;
    return MTMI_OK;
}

mtmi_status run_io_take(run_io *r, int64_t k, mt_image *img, int *owned) {
    read_slot *sl = &r->slots[k % r->nslots];
    pthread_mutex_lock(&r->mu);
    r->wanted = k;
    pthread_cond_broadcast(&r->cv_work);
    while (!(sl->state == SLOT_READY && sl->index == k)) pthread_cond_wait(&r->cv_app, &r->mu);
    const mtmi_status s = sl->err;
    char msg[sizeof sl->msg];
    memcpy(msg, sl->msg, sizeof msg);
    *img = sl->img;
    *owned = sl->owned;
    memset(&sl->img, 0, sizeof sl->img);
    sl->state = SLOT_FREE;
    r->wanted = k + 1;
    pthread_cond_broadcast(&r->cv_work);
    pthread_mutex_unlock(&r->mu);
    if (s) mt_fail(s, "%s", msg);
    return s;
}

run_job *run_io_acquire(run_io *w) {
    const double t0 = mt_now_ms();
    pthread_mutex_lock(&w->mu);
    while (!w->nfree) pthread_cond_wait(&w->cv_app, &w->mu);
    run_job *j = &w->jobs[w->free_ids[--w->nfree]];
    w->wait_ms += mt_now_ms() - t0;
    pthread_mutex_unlock(&w->mu);
    return j;
}

void run_io_submit(run_io *w, run_job *j) {
    pthread_mutex_lock(&w->mu);
    w->queue[(w->qhead + w->qcount) % w->njobs] = (int)(j - w->jobs);
    w->qcount++;
    pthread_cond_signal(&w->cv_work);
    pthread_mutex_unlock(&w->mu);
}

mtmi_status run_io_error(run_io *w) {
    pthread_mutex_lock(&w->mu);
    const mtmi_status s = w->err;
    char msg[sizeof w->msg];
    memcpy(msg, w->msg, sizeof msg);
    pthread_mutex_unlock(&w->mu);
    if (s) mt_fail(s, "%s", msg);
    return s;
}

mtmi_status run_io_finish(run_io *w) {
    pthread_mutex_lock(&w->mu);
    while (w->qcount || w->writing) pthread_cond_wait(&w->cv_app, &w->mu);
    pthread_mutex_unlock(&w->mu);
    return run_io_error(w);
}

void run_io_stats(run_io *w, run_io_stat *st) {
    pthread_mutex_lock(&w->mu);
    st->write_ms = w->write_ms;
    st->wait_ms = w->wait_ms;
    st->jobs_done = w->jobs_done;
    st->decode_ms = w->decode_ms;
    st->decoded = w->decoded;
    pthread_mutex_unlock(&w->mu);
    st->threads = w->nthreads;
    st->jobs = w->njobs;
    st->slots = w->nslots;
    st->job_bytes = 0;
    for (int i = 0; i < w->njobs; i++) st->job_bytes += w->jobs[i].classes_cap + w->jobs[i].logits_cap + w->jobs[i].depth_cap;
}

const run_written *run_io_written(const run_io *w) { return w->written; }

/* Finishes the writes already queued (only complete files), drops the
 * frames decoded ahead, joins the workers. */
void run_io_stop(run_io *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->cv_work);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->nstarted; i++) pthread_join(w->th[i], NULL);
    for (int i = 0; w->jobs && i < w->njobs; i++) {
        release_input(&w->jobs[i]);
        free(w->jobs[i].classes);
        free(w->jobs[i].logits);
        free(w->jobs[i].depth);
    }
    for (int i = 0; w->slots && i < w->nslots; i++)
        if (w->slots[i].owned) mt_image_free(&w->slots[i].img);
    for (int i = 0; w->cache && i < w->nsrc; i++) mt_image_free(&w->cache[i]);
    free(w->cache);
    free(w->cache_state);
    free(w->slots);
    free(w->jobs);
    free(w->free_ids);
    free(w->queue);
    free(w->written);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv_work);
    pthread_cond_destroy(&w->cv_app);
    free(w);
}

/* Grows *buf to at least n bytes (kept across frames). */
int run_job_reserve(void **buf, size_t *cap, size_t n) {
    if (*cap >= n) return 0;
    void *p = realloc(*buf, n);
    if (!p) return -1;
    *buf = p;
    *cap = n;
    return 0;
}
