/* Per-frame timing records, summaries (throughput, percentiles), the
 * per-loop line, Chrome trace-event output and process memory. */
#include "pipeline/pipeline.h"

#include <stdlib.h>
#include <string.h>

void mt_stats_init(mt_stats *st, const mt_pipeline *p) {
    memset(st, 0, sizeof *st);
    st->nstages = mt_pipeline_num_stages(p);
    for (int s = 0; s < st->nstages; s++) {
        snprintf(st->stage_names[s], sizeof st->stage_names[s], "%s", mt_pipeline_stage_name(p, s));
        mt_devspec_str(mt_pipeline_stage_dev(p, s), st->stage_devs[s], sizeof st->stage_devs[s]);
    }
}

int mt_stats_add(mt_stats *st, const mt_frame *f) {
    if (st->n == st->cap && st->cap < MT_STATS_KEEP) {
        int64_t nc = st->cap ? st->cap * 2 : 256;
        if (nc > MT_STATS_KEEP) nc = MT_STATS_KEEP;
        mt_frame_rec *r = realloc(st->recs, nc * sizeof *r);
        if (!r) return -1;
        st->recs = r;
        st->cap = nc;
    }
    mt_frame_rec *r = &st->recs[st->n % MT_STATS_KEEP];
    st->n++;
    memset(r, 0, sizeof *r);
    r->index = f->index;
    r->t_submit = f->t_submit;
    r->t_done = f->t_done;
    r->copy_ms = -1;
    for (int s = 0; s < st->nstages; s++) {
        r->t_start[s] = f->t_start[s];
        r->t_end[s] = f->t_end[s];
        if (f->copy_ms && f->copy_ms[s] >= 0) r->copy_ms = (r->copy_ms < 0 ? 0 : r->copy_ms) + f->copy_ms[s];
    }
    return 0;
}

const mt_frame_rec *mt_stats_rec(const mt_stats *st, int64_t i) {
    if (i < 0 || i >= st->n || i < st->n - MT_STATS_KEEP) return NULL;
    return &st->recs[i % MT_STATS_KEEP];
}

void mt_stats_free(mt_stats *st) {
    free(st->recs);
    memset(st, 0, sizeof *st);
}

/* Wall time of the heads of one frame: first head start to last head end. */
static double heads_span(const mt_stats *st, const mt_frame_rec *r) {
    if (st->nstages < 2) return 0;
    double a = r->t_start[1], b = r->t_end[1];
    for (int s = 2; s < st->nstages; s++) {
        if (r->t_start[s] < a) a = r->t_start[s];
        if (r->t_end[s] > b) b = r->t_end[s];
    }
    return b - a;
}

void mt_stats_loop_line(const mt_stats *st, int64_t i, char *buf, size_t cap) {
    const mt_frame_rec *r = mt_stats_rec(st, i), *prev = mt_stats_rec(st, i - 1);
    if (!r) {
        snprintf(buf, cap, "loop: %lld (no record)", (long long)i);
        return;
    }
    /* "frame" is the time between this frame's completion and the previous
     * one's: the pipeline's period, which is below encoder + heads when they
     * overlap.  The first frame has no predecessor: its latency is shown. */
    double period = prev ? r->t_done - prev->t_done : r->t_done - r->t_submit;
    snprintf(buf, cap, "loop: %lld encoder: %.2f ms heads: %.2f ms frame: %.2f ms latency: %.2f ms", (long long)r->index,
             r->t_end[0] - r->t_start[0], heads_span(st, r), period, r->t_done - r->t_submit);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, int64_t n, double q) {
    if (n <= 0) return 0;
    int64_t k = (int64_t)(q / 100.0 * n + 0.999999) - 1;
    if (k < 0) k = 0;
    if (k >= n) k = n - 1;
    return v[k];
}

static void describe(double *v, int64_t n, double *p50, double *p99, double *mean) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += v[i];
    qsort(v, n, sizeof *v, cmp_double);
    *p50 = pct(v, n, 50);
    *p99 = pct(v, n, 99);
    *mean = n ? sum / n : 0;
}

void mt_stats_summary(const mt_stats *st, int64_t warmup, mt_summary *s) {
    memset(s, 0, sizeof *s);
    int64_t first = st->n > MT_STATS_KEEP ? st->n - MT_STATS_KEEP : 0;
    if (warmup >= st->n) warmup = st->n > 1 ? st->n - 1 : 0;
    if (warmup < first) warmup = first;
    int64_t n = st->n - warmup;
    s->frames = n;
    if (n <= 0) return;
    double *v = malloc(sizeof(double) * n);
    if (!v) return;
#define REC(i) mt_stats_rec(st, warmup + (i))
    for (int k = 0; k < st->nstages; k++) {
        for (int64_t i = 0; i < n; i++) v[i] = REC(i)->t_end[k] - REC(i)->t_start[k];
        describe(v, n, &s->p50[k], &s->p99[k], &s->mean[k]);
    }
    for (int64_t i = 0; i < n; i++) v[i] = REC(i)->t_done - REC(i)->t_submit;
    describe(v, n, &s->e2e_p50, &s->e2e_p99, &s->e2e_mean);
    double dummy;
    for (int64_t i = 0; i < n; i++) v[i] = heads_span(st, REC(i));
    describe(v, n, &s->heads_p50, &s->heads_p99, &dummy);
    int64_t nc = 0;
    for (int64_t i = 0; i < n; i++)
        if (REC(i)->copy_ms >= 0) v[nc++] = REC(i)->copy_ms;
    s->copy_mean = -1;
    if (nc) describe(v, nc, &s->copy_p50, &dummy, &s->copy_mean);
    /* Throughput over the measured frames: from the completion of the frame
     * before the first measured one (or the first submit) to the last one. */
    const mt_frame_rec *before = mt_stats_rec(st, warmup - 1);
    double t0 = before ? before->t_done : REC(0)->t_submit;
    s->wall_ms = REC(n - 1)->t_done - t0;
#undef REC
    s->fps = s->wall_ms > 0 ? n * 1000.0 / s->wall_ms : 0;
    s->period_mean = s->wall_ms / n;
    free(v);
}

/* Names go into JSON strings through core's one writer. */
static void json_str(FILE *f, const char *s) { mt_json_string(f, s); }

mtmi_status mt_stats_write_trace(const mt_stats *st, const char *path) {
    char tmp[4200];
    FILE *f = mt_atomic_open(path, tmp, sizeof tmp);
    if (!f) return mt_fail(MTMI_ERR_IO, "%s: cannot write the trace", path);
    /* One process per device (pid), one thread per stage (tid): Perfetto
     * shows a track per stage grouped by device.  Timestamps in us from the
     * first submit. */
    int pid[MT_PLACE_MAX];
    int npid = 0;
    char devs[MT_PLACE_MAX][48];
    for (int s = 0; s < st->nstages; s++) {
        char d[48];
        snprintf(d, sizeof d, "%s", st->stage_devs[s]);
        char *slash = strchr(d, '/');
        if (slash) *slash = 0;
        int j;
        for (j = 0; j < npid; j++)
            if (!strcmp(devs[j], d)) break;
        if (j == npid) strcpy(devs[npid++], d);
        pid[s] = j + 1;
    }
    int64_t first = st->n > MT_STATS_KEEP ? st->n - MT_STATS_KEEP : 0;
    double t0 = st->n ? mt_stats_rec(st, first)->t_submit : 0;
    fprintf(f, "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n");
    fprintf(f, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":0,\"tid\":0,\"args\":{\"name\":\"frames\"}},\n");
    /* Frames overlap each other, so they take turns on 8 tracks. */
    for (int k = 0; k < 8 && k < st->n; k++)
        fprintf(f, "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":0,\"tid\":%d,\"args\":{\"name\":\"frames %d mod 8 (submit to done)\"}},\n",
                k + 1, k);
    for (int j = 0; j < npid; j++) {
        fprintf(f, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,\"tid\":0,\"args\":{\"name\":", j + 1);
        json_str(f, devs[j]);
        fprintf(f, "}},\n");
    }
    for (int s = 0; s < st->nstages; s++) {
        char name[128];
        snprintf(name, sizeof name, "%s (%s)", st->stage_names[s], st->stage_devs[s]);
        fprintf(f, "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":", pid[s], s + 1);
        json_str(f, name);
        fprintf(f, "}},\n");
    }
    for (int64_t i = first; i < st->n; i++) {
        const mt_frame_rec *r = mt_stats_rec(st, i);
        fprintf(f, "{\"ph\":\"X\",\"name\":\"frame %lld\",\"cat\":\"frame\",\"pid\":0,\"tid\":%lld,\"ts\":%.3f,\"dur\":%.3f},\n",
                (long long)r->index, (long long)(r->index % 8) + 1, (r->t_submit - t0) * 1e3, (r->t_done - r->t_submit) * 1e3);
        for (int s = 0; s < st->nstages; s++) {
            fprintf(f, "{\"ph\":\"X\",\"name\":");
            json_str(f, st->stage_names[s]);
            fprintf(f, ",\"cat\":\"stage\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"frame\":%lld}},\n", pid[s],
                    s + 1, (r->t_start[s] - t0) * 1e3, (r->t_end[s] - r->t_start[s]) * 1e3, (long long)r->index);
        }
    }
    /* A final metadata event so that every real event ends with a comma. */
    fprintf(f, "{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":0,\"tid\":0,\"args\":{\"sort_index\":-1}}\n]}\n");
    return mt_atomic_commit(f, tmp, path, !ferror(f));
}

static size_t status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0, n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) {
            kb = strtoull(line + n, NULL, 10);
            break;
        }
    fclose(f);
    return kb * 1024;
}

size_t mt_rss_bytes(void) { return status_kb("VmRSS:"); }
size_t mt_peak_rss_bytes(void) { return status_kb("VmHWM:"); }
