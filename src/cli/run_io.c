/* The file I/O of `mtmi run`, on worker threads beside the pipeline:
 *
 *   readers:  decode and fit frame k (PNG, or a synthetic scene) into a ring
 *             of R slots; the application thread takes frame k from slot
 *             k % R in order, so decoding runs ahead by at most R frames;
 *   writers:  a pool of J jobs; the application thread copies a finished
 *             frame's results from the pipeline's buffers into a free job
 *             (waiting for one when every job is still being written: the
 *             disk's speed then paces the run, and memory stays bounded)
 *             and the writers turn jobs into files.
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

/* ------------------------------------------------------------- readers */
enum { SLOT_FREE = 0, SLOT_BUSY, SLOT_READY };

typedef struct read_slot {
    int state;
    int64_t index;
    mt_image img;
    int owned;        /* img is this slot's (else the source cache's) */
    mtmi_status err;
    char msg[512];
} read_slot;

struct run_reader {
    char **files;     /* NULL: synthetic scenes */
    int nsrc, w, h;
    int64_t frames, next;
    int nslots, nthreads;
    read_slot *slots;
    /* Sources decoded once and kept (frames cycling through a few sources
     * decode each once): nsrc <= RUN_CACHE_MAX. */
    mt_image *cache;
    int *cache_state; /* 0 none, 1 decoding, 2 ready */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    pthread_t th[RUN_MAX_THREADS];
    int nstarted;
    double decode_ms;  /* summed over frames */
    int64_t decoded;
};

/* Decodes (or synthesizes) source i fitted to w x h. */
static mtmi_status decode_source(const run_reader *r, int i, mt_image *out) {
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

/* Frame k's image into slot sl, from the cache when sources are kept. */
static void fill_slot(run_reader *r, read_slot *sl, int64_t k) {
    const int i = (int)(k % r->nsrc);
    double t0 = mt_now_ms();
    mtmi_status s = MTMI_OK;
    if (r->cache) {
        pthread_mutex_lock(&r->mu);
        while (r->cache_state[i] == 1) pthread_cond_wait(&r->cv, &r->mu);
        int mine = r->cache_state[i] == 0;
        if (mine) r->cache_state[i] = 1;
        pthread_mutex_unlock(&r->mu);
        if (mine) s = decode_source(r, i, &r->cache[i]);
        pthread_mutex_lock(&r->mu);
        if (mine) r->cache_state[i] = s ? 0 : 2;
        pthread_cond_broadcast(&r->cv);
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
    pthread_mutex_unlock(&r->mu);
}

static void *reader_main(void *arg) {
    run_reader *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int64_t k = r->next;
        read_slot *sl = k < r->frames ? &r->slots[k % r->nslots] : NULL;
        while (!r->stop && sl && sl->state != SLOT_FREE) pthread_cond_wait(&r->cv, &r->mu);
        if (r->stop || !sl || r->next != k) { /* another reader took k meanwhile */
            int done = r->stop || !sl;
            pthread_mutex_unlock(&r->mu);
            if (done) return NULL;
            continue;
        }
        r->next++;
        sl->state = SLOT_BUSY;
        sl->index = k;
        pthread_mutex_unlock(&r->mu);
        fill_slot(r, sl, k);
        pthread_mutex_lock(&r->mu);
        sl->state = SLOT_READY;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
}

mtmi_status run_reader_start(char **files, int nsrc, int w, int h, int64_t frames, int nthreads, run_reader **out) {
    *out = NULL;
    run_reader *r = mt_alloc(sizeof *r);
    if (!r) return MTMI_ERR_NOMEM;
    r->files = files;
    r->nsrc = nsrc;
    r->w = w, r->h = h;
    r->frames = frames;
    r->nthreads = nthreads < 1 ? 1 : nthreads > RUN_MAX_THREADS ? RUN_MAX_THREADS : nthreads;
    r->nslots = 2 * r->nthreads + 2;
    r->slots = calloc((size_t)r->nslots, sizeof *r->slots);
    if (nsrc <= RUN_CACHE_MAX && frames > nsrc) { /* frames repeat sources: keep them */
        r->cache = calloc((size_t)nsrc, sizeof *r->cache);
        r->cache_state = calloc((size_t)nsrc, sizeof *r->cache_state);
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (!r->slots || (nsrc <= RUN_CACHE_MAX && frames > nsrc && (!r->cache || !r->cache_state))) {
        run_reader_stop(r);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < r->nthreads; i++) {
        if (pthread_create(&r->th[i], NULL, reader_main, r)) {
            run_reader_stop(r);
            return mt_fail(MTMI_ERR_INTERNAL, "cannot start the image reader threads");
        }
        r->nstarted++;
    }
    *out = r;
    return MTMI_OK;
}

mtmi_status run_reader_take(run_reader *r, int64_t k, mt_image *img, int *owned) {
    read_slot *sl = &r->slots[k % r->nslots];
    pthread_mutex_lock(&r->mu);
    while (!(sl->state == SLOT_READY && sl->index == k)) pthread_cond_wait(&r->cv, &r->mu);
    mtmi_status s = sl->err;
    *img = sl->img;
    *owned = sl->owned;
    memset(&sl->img, 0, sizeof sl->img);
    sl->state = SLOT_FREE;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (s) mt_fail(s, "%s", sl->msg);
    return s;
}

void run_reader_stats(run_reader *r, double *decode_ms, int64_t *decoded, int *threads, int *slots) {
    pthread_mutex_lock(&r->mu);
    *decode_ms = r->decode_ms;
    *decoded = r->decoded;
    pthread_mutex_unlock(&r->mu);
    *threads = r->nthreads;
    *slots = r->nslots;
}

void run_reader_stop(run_reader *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->nstarted; i++) pthread_join(r->th[i], NULL);
    for (int i = 0; r->slots && i < r->nslots; i++)
        if (r->slots[i].owned) mt_image_free(&r->slots[i].img);
    for (int i = 0; r->cache && i < r->nsrc; i++) mt_image_free(&r->cache[i]);
    free(r->cache);
    free(r->cache_state);
    free(r->slots);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

/* ------------------------------------------------------------- writers */
struct run_writer {
    run_write_opts o;
    run_job *jobs;
    int njobs;
    int *free_ids, nfree;   /* a stack of free jobs */
    int *queue, qhead, qcount;
    pthread_mutex_t mu;
    pthread_cond_t cv_free, cv_work, cv_idle;
    int busy, stop;
    pthread_t th[RUN_MAX_THREADS];
    int nthreads, nstarted;
    mtmi_status err;
    char msg[768];
    run_written *written;   /* per written frame index (o.nwrite) */
    double write_ms, wait_ms;
    int64_t jobs_done;
};

/* One file's path "<outdir>/<stem><suffix>", or an error (never cut short). */
int run_output_path(const char *outdir, const char *stem, const char *suffix, char *path, size_t cap) {
    int n = snprintf(path, cap, "%s/%s%s", outdir, stem, suffix);
    if (n < 0 || (size_t)n >= cap)
        return mt_fail(MTMI_ERR_ARG, "output path '%s/%s%s' is longer than %zu bytes", outdir, stem, suffix, cap - 1), -1;
    return 0;
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
static mtmi_status write_job(run_writer *w, run_job *j) {
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

static void *writer_main(void *arg) {
    run_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->qcount && !w->stop) pthread_cond_wait(&w->cv_work, &w->mu);
        if (!w->qcount) break; /* stopping and nothing left */
        const int id = w->queue[w->qhead];
        w->qhead = (w->qhead + 1) % w->njobs;
        w->qcount--;
        w->busy++;
        const int skip = w->err != MTMI_OK || w->jobs[id].index < 0;
        pthread_mutex_unlock(&w->mu);
        run_job *j = &w->jobs[id];
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
        w->busy--;
        w->free_ids[w->nfree++] = id;
        pthread_cond_signal(&w->cv_free);
        if (!w->qcount && !w->busy) pthread_cond_broadcast(&w->cv_idle);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

mtmi_status run_writer_start(const run_write_opts *o, int nthreads, int njobs, run_writer **out) {
    *out = NULL;
    run_writer *w = mt_alloc(sizeof *w);
    if (!w) return MTMI_ERR_NOMEM;
    w->o = *o;
    w->nthreads = nthreads < 1 ? 1 : nthreads > RUN_MAX_THREADS ? RUN_MAX_THREADS : nthreads;
    w->njobs = njobs < w->nthreads ? w->nthreads : njobs;
    w->jobs = calloc((size_t)w->njobs, sizeof *w->jobs);
    w->free_ids = calloc((size_t)w->njobs, sizeof(int));
    w->queue = calloc((size_t)w->njobs, sizeof(int));
    w->written = calloc((size_t)(o->nwrite > 0 ? o->nwrite : 1), sizeof *w->written);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv_free, NULL);
    pthread_cond_init(&w->cv_work, NULL);
    pthread_cond_init(&w->cv_idle, NULL);
    if (!w->jobs || !w->free_ids || !w->queue || !w->written) {
        run_writer_stop(w);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < w->njobs; i++) w->free_ids[w->nfree++] = w->njobs - 1 - i;
    for (int i = 0; i < w->nthreads; i++) {
        if (pthread_create(&w->th[i], NULL, writer_main, w)) {
            run_writer_stop(w);
            return mt_fail(MTMI_ERR_INTERNAL, "cannot start the writer threads");
        }
        w->nstarted++;
    }
    *out = w;
    return MTMI_OK;
}

run_job *run_writer_acquire(run_writer *w) {
    const double t0 = mt_now_ms();
    pthread_mutex_lock(&w->mu);
    while (!w->nfree) pthread_cond_wait(&w->cv_free, &w->mu);
    run_job *j = &w->jobs[w->free_ids[--w->nfree]];
    w->wait_ms += mt_now_ms() - t0;
    pthread_mutex_unlock(&w->mu);
    return j;
}

void run_writer_submit(run_writer *w, run_job *j) {
    pthread_mutex_lock(&w->mu);
    w->queue[(w->qhead + w->qcount) % w->njobs] = (int)(j - w->jobs);
    w->qcount++;
    pthread_cond_signal(&w->cv_work);
    pthread_mutex_unlock(&w->mu);
}

mtmi_status run_writer_error(run_writer *w) {
    pthread_mutex_lock(&w->mu);
    mtmi_status s = w->err;
    char msg[sizeof w->msg];
    memcpy(msg, w->msg, sizeof msg);
    pthread_mutex_unlock(&w->mu);
    if (s) mt_fail(s, "%s", msg);
    return s;
}

mtmi_status run_writer_finish(run_writer *w) {
    pthread_mutex_lock(&w->mu);
    while (w->qcount || w->busy) pthread_cond_wait(&w->cv_idle, &w->mu);
    pthread_mutex_unlock(&w->mu);
    return run_writer_error(w);
}

void run_writer_stats(run_writer *w, run_writer_stat *st) {
    pthread_mutex_lock(&w->mu);
    st->write_ms = w->write_ms;
    st->wait_ms = w->wait_ms;
    st->jobs_done = w->jobs_done;
    pthread_mutex_unlock(&w->mu);
    st->threads = w->nthreads;
    st->jobs = w->njobs;
    st->job_bytes = 0;
    for (int i = 0; i < w->njobs; i++)
        st->job_bytes += w->jobs[i].classes_cap + w->jobs[i].logits_cap + w->jobs[i].depth_cap;
}

const run_written *run_writer_written(const run_writer *w) { return w->written; }

void run_writer_stop(run_writer *w) {
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
    free(w->jobs);
    free(w->free_ids);
    free(w->queue);
    free(w->written);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv_free);
    pthread_cond_destroy(&w->cv_work);
    pthread_cond_destroy(&w->cv_idle);
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
