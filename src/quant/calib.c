/* Calibration statistics: histograms of |x|, the three ways of turning them
 * into a threshold, and the per-tensor collector fed by a CPU plan. */
#include "quant/quant.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"

void mt_hist_free(mt_hist *h) {
    free(h->count);
    memset(h, 0, sizeof *h);
}

static mtmi_status hist_resize(mt_hist *h, int nbins) {
    double *c = realloc(h->count, sizeof(double) * (size_t)nbins);
    if (!c) return mt_fail(MTMI_ERR_NOMEM, "out of memory growing a histogram to %d bins", nbins);
    for (int i = h->nbins; i < nbins; i++) c[i] = 0;
    h->count = c;
    h->nbins = nbins;
    return MTMI_OK;
}

mtmi_status mt_hist_add(mt_hist *h, const float *x, int64_t n) {
    /* Pass 1: the batch's max |x| (NaN ignored). */
    float mx = 0;
#pragma omp parallel for reduction(max : mx) schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > mx) mx = a; /* false for NaN */
    }
    if (!isfinite(mx)) return mt_fail(MTMI_ERR_ARG, "infinite activation value");
    h->total += (uint64_t)n;
    if (mx > h->amax) h->amax = mx;
    if (h->width == 0) {
        if (mx == 0) {
            /* All zeros before any range is known: keep them for bin 0. */
            if (!h->count && hist_resize(h, 1)) return MTMI_ERR_NOMEM;
            h->count[0] += (double)n;
            return MTMI_OK;
        }
        /* The first batch with data fixes the bin width: 2048 bins over
         * [0, max of this batch]. */
        double pending = h->count ? h->count[0] : 0;
        free(h->count);
        h->count = NULL;
        h->nbins = 0;
        if (hist_resize(h, MT_HIST_BINS)) return MTMI_ERR_NOMEM;
        h->count[0] = pending;
        h->width = mx / (float)MT_HIST_BINS;
    } else if (mx > h->width * (float)h->nbins) {
        /* Larger than the range so far: append bins of the same width. */
        double need = ceil((double)mx / (double)h->width);
        if (need > 1 << 22) return mt_fail(MTMI_ERR_ARG, "activation range grew %.0fx beyond the first batch's", need / MT_HIST_BINS);
        if (hist_resize(h, (int)need)) return MTMI_ERR_NOMEM;
    }
    double inv = 1.0 / (double)h->width;
    int last = h->nbins - 1;
    /* Pass 2: per-thread integer counts, summed after (exact in any order). */
    int nt = n > (1 << 16) ? omp_get_max_threads() : 1;
    uint32_t *local = calloc((size_t)nt * (size_t)h->nbins, sizeof(uint32_t));
    if (!local) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    int64_t chunk = (n + nt - 1) / nt;
    if (chunk > INT32_MAX) chunk = INT32_MAX; /* uint32 counts cannot wrap */
    int64_t nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t ch = 0; ch < nchunks; ch++) {
        uint32_t *c = local + (size_t)omp_get_thread_num() * (size_t)h->nbins;
        int64_t e = MT_MIN(n, (ch + 1) * chunk);
        for (int64_t i = ch * chunk; i < e; i++) {
            float a = fabsf(x[i]);
            if (!(a == a)) continue;
            double b = (double)a * inv;
            int k = b >= last ? last : (int)b;
            c[k]++;
        }
    }
    for (int t = 0; t < nt; t++)
        for (int k = 0; k < h->nbins; k++) h->count[k] += local[(size_t)t * h->nbins + k];
    free(local);
    return MTMI_OK;
}

float mt_entropy_threshold(const double *bins, int nbins, float width, int *best_i) {
    const int levels = 128;
    if (nbins <= levels) {
        if (best_i) *best_i = nbins;
        return (float)((double)nbins * width);
    }
    double *p = malloc(sizeof(double) * nbins);
    double *suffix = malloc(sizeof(double) * (nbins + 1));
    double lsum[128], lcnt[128];
    if (!p || !suffix) {
        free(p);
        free(suffix);
        if (best_i) *best_i = nbins;
        return (float)((double)nbins * width);
    }
    memcpy(p, bins, sizeof(double) * nbins);
    p[0] = p[1]; /* the spike at zero (ReLU) would dominate otherwise */
    suffix[nbins] = 0;
    for (int j = nbins - 1; j >= 0; j--) suffix[j] = suffix[j + 1] + p[j];
    double best = INFINITY;
    int arg = nbins;
    for (int i = levels; i <= nbins; i++) {
        /* Q: the first i bins merged into 128 levels, each level's mass
         * spread evenly over its nonzero bins. */
        memset(lsum, 0, sizeof lsum);
        memset(lcnt, 0, sizeof lcnt);
        for (int j = 0; j < i; j++)
            if (p[j] != 0) {
                int l = (int)((int64_t)j * levels / i);
                lsum[l] += p[j];
                lcnt[l] += 1;
            }
        double sp = suffix[0];            /* P's mass: everything (outliers clipped in) */
        double sq = suffix[0] - suffix[i]; /* Q's mass: the nonzero bins below i */
        double d = 0;
        for (int j = 0; j < i; j++) {
            double pj = p[j] + (j == i - 1 ? suffix[i] : 0);
            if (pj <= 0) continue;
            double qj = 0;
            if (p[j] != 0) {
                int l = (int)((int64_t)j * levels / i);
                qj = lsum[l] / lcnt[l];
            }
            if (qj <= 0 || sq <= 0) {
                d = INFINITY;
                break;
            }
            double pn = pj / sp, qn = qj / sq;
            d += pn * log(pn / qn);
        }
        if (d <= best) { /* "<=": the last minimum, as the reference does */
            best = d;
            arg = i;
        }
    }
    free(p);
    free(suffix);
    if (best_i) *best_i = arg;
    return (float)((double)arg * width);
}

float mt_hist_amax_entropy(const mt_hist *h) {
    if (h->width == 0) return 0;
    float t = mt_entropy_threshold(h->count, h->nbins, h->width, NULL);
    return t > h->amax ? h->amax : t;
}

float mt_hist_amax_percentile(const mt_hist *h, double percentile) {
    if (h->width == 0) return 0;
    double total = 0;
    for (int i = 0; i < h->nbins; i++) total += h->count[i];
    double want = total * percentile / 100.0, cum = 0;
    for (int i = 0; i < h->nbins; i++) {
        cum += h->count[i];
        if (cum >= want) {
            /* The upper edge of the bin the percentile falls in, so that a
             * threshold is never 0 while there is data. */
            float t = (float)((double)(i + 1) * h->width);
            return t > h->amax ? h->amax : t;
        }
    }
    return h->amax;
}

/* ------------------------------------------------------------ collector */
void mt_calib_stats_free(mt_calib_stats *st) {
    for (int i = 0; i < st->n; i++) {
        free(st->names[i]);
        mt_hist_free(&st->hist[i]);
    }
    free(st->names);
    free(st->hist);
    memset(st, 0, sizeof *st);
}

static int is_activation(const mt_graph *g, int v) {
    if (v < 0) return 0;
    const mt_value *val = &g->values[v];
    return val->dtype == MTMI_FLOAT && !val->data && !val->is_weight;
}

mtmi_status mt_calib_stats_init(mt_calib_stats *st, const mt_graph *g, const unsigned char *sel) {
    memset(st, 0, sizeof *st);
    unsigned char *want = calloc(g->nvalues + 1, 1);
    if (!want) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        if (n->dead || !sel[i]) continue;
        for (int k = 0; k < n->nout; k++)
            if (is_activation(g, n->out[k])) want[n->out[k]] = 1;
        for (int k = 0; k < n->nin; k++)
            if (is_activation(g, n->in[k])) want[n->in[k]] = 1;
    }
    int cnt = 0;
    for (int v = 0; v < g->nvalues; v++) cnt += want[v];
    st->names = calloc(cnt + 1, sizeof(char *));
    st->hist = calloc(cnt + 1, sizeof(mt_hist));
    if (!st->names || !st->hist) {
        free(want);
        mt_calib_stats_free(st);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    for (int v = 0; v < g->nvalues; v++) {
        if (!want[v]) continue;
        if (!(st->names[st->n] = mt_strdup(g->values[v].name))) {
            free(want);
            mt_calib_stats_free(st);
            return MTMI_ERR_NOMEM;
        }
        st->n++;
    }
    free(want);
    return MTMI_OK;
}

int mt_calib_stats_find(const mt_calib_stats *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->names[i], name)) return i;
    return -1;
}

mtmi_status mt_calib_stats_add(mt_calib_stats *st, const char *name, const float *x, int64_t n) {
    int i = mt_calib_stats_find(st, name);
    if (i < 0) return MTMI_OK;
    mtmi_status s = mt_hist_add(&st->hist[i], x, n);
    if (s) return mt_fail_context(s, "tensor '%s'", name);
    return MTMI_OK;
}

/* MTMI_CALIB_HIST_DIR=dir: each tensor's histogram as dir/<name>.hist
 * ("width nbins amax" then the counts), for checking the threshold search
 * against other implementations. */
static void dump_hist(const char *dir, const char *name, const mt_hist *h) {
    char fn[4096], nm[1024];
    snprintf(nm, sizeof nm, "%s", name);
    for (char *p = nm; *p; p++)
        if (*p == '/' || *p == ':' || *p == ' ') *p = '_';
    snprintf(fn, sizeof fn, "%s/%s.hist", dir, nm);
    FILE *f = fopen(fn, "w");
    if (!f) return;
    fprintf(f, "%.9g %d %.9g\n", (double)h->width, h->nbins, (double)h->amax);
    for (int k = 0; k < h->nbins; k++) fprintf(f, "%.17g\n", h->count[k]);
    fclose(f);
}

mtmi_status mt_calib_stats_scales(const mt_calib_stats *st, mt_calib_method m, double percentile, const char *dump,
                                  mt_calib_cache *c) {
    if (dump && !*dump) dump = NULL;
    float *amax = malloc(sizeof(float) * (st->n + 1));
    if (!amax) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    /* The entropy search is O(bins^2) per tensor: tensors in parallel. */
#pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < st->n; i++) {
        const mt_hist *h = &st->hist[i];
        float a = 0;
        switch (m) {
        case MT_CALIB_ENTROPY: a = mt_hist_amax_entropy(h); break;
        case MT_CALIB_MINMAX: a = h->amax; break;
        case MT_CALIB_PERCENTILE: a = mt_hist_amax_percentile(h, percentile); break;
        }
        amax[i] = a;
    }
    mtmi_status s = MTMI_OK;
    for (int i = 0; i < st->n && !s; i++) {
        if (dump && st->hist[i].width > 0) dump_hist(dump, st->names[i], &st->hist[i]);
        if (!(amax[i] > 0) || !isfinite(amax[i])) continue;
        s = mt_calib_cache_set(c, st->names[i], amax[i] / 127.0f);
    }
    free(amax);
    return s;
}

/* ------------------------------------------------------------ observer */
static mtmi_status observe(void *user, const mt_graph *g, const mt_node *n, const mt_tview *out, int nout) {
    mt_calib_observer *o = user;
    for (int k = 0; k < nout && k < n->nout; k++) {
        int v = n->out[k];
        if (v < 0 || o->slot[v] < 0 || out[k].dtype != MTMI_FLOAT) continue;
        mtmi_status s = mt_hist_add(&o->st->hist[o->slot[v]], out[k].data, mt_tview_numel(&out[k]));
        if (s) return mt_fail_context(s, "calibrating tensor '%s'", g->values[v].name);
    }
    return MTMI_OK;
}

mtmi_status mt_calib_observer_attach(mt_calib_observer *o, mt_calib_stats *st, const mt_graph *g, mt_cpu_plan *plan) {
    memset(o, 0, sizeof *o);
    o->st = st;
    o->g = g;
    o->slot = malloc(sizeof(int) * (g->nvalues + 1));
    if (!o->slot) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    for (int v = 0; v < g->nvalues; v++) o->slot[v] = mt_calib_stats_find(st, g->values[v].name);
    mt_cpu_plan_set_observer(plan, observe, o);
    return MTMI_OK;
}

void mt_calib_observer_free(mt_calib_observer *o) {
    free(o->slot);
    o->slot = NULL;
}
