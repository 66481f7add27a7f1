/* planfile.c: saved plans (planfile.h). */
#include "pipeline/planfile.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/registry.h"
#include "core/core.h"

static const char MAGIC[] = "MTMI saved plan ";

mtmi_status mt_planfile_from_pipeline(const mt_pipeline *p, mt_planfile *pf) {
    int n = mt_pipeline_num_stages(p);
    if (n > MT_PLACE_MAX) return mt_fail(MTMI_ERR_ARG, "saved plan: %d stages, at most %d", n, MT_PLACE_MAX);
    snprintf(pf->mtmi_version, sizeof pf->mtmi_version, "%s", MTMI_VERSION);
    pf->nstages = n;
    size_t used = 0;
    pf->placement[0] = 0;
    for (int i = 0; i < n; i++) {
        const mt_devspec *d = mt_pipeline_stage_dev(p, i);
        const mt_backend *be = mt_pipeline_stage_backend(p, i);
        snprintf(pf->stage_name[i], sizeof pf->stage_name[i], "%s", mt_pipeline_stage_name(p, i));
        mt_devspec_str(d, pf->stage_dev[i], sizeof pf->stage_dev[i]);
        pf->identity[i][0] = 0;
        if (be && be->identity) {
            mtmi_status s = be->identity(d, pf->identity[i], sizeof pf->identity[i]);
            if (s) return mt_fail_context(s, "saved plan: stage '%s'", pf->stage_name[i]);
        }
        const mt_choices *c = mt_pipeline_stage_choices(p, i);
        mtmi_status s = mt_choices_load(&pf->choices[i], c->data, c->len);
        if (s) return s;
        int w = snprintf(pf->placement + used, sizeof pf->placement - used, "%s%s=%s", i ? "," : "", pf->stage_name[i],
                         pf->stage_dev[i]);
        if (w < 0 || (size_t)w >= sizeof pf->placement - used) return mt_fail(MTMI_ERR_ARG, "saved plan: placement too long");
        used += (size_t)w;
    }
    return MTMI_OK;
}

/* ------------------------------------------------------------------ write */
typedef struct sbuf {
    char *d;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_add(sbuf *b, const void *data, size_t n) {
    if (b->failed || !n) return; /* n 0: data may be NULL (a stage without decisions) */
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *d = realloc(b->d, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->d = d;
        b->cap = cap;
    }
    memcpy(b->d + b->len, data, n);
    b->len += n;
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line) {
        b->failed = 1;
        return;
    }
    sb_add(b, line, (size_t)n);
}

/* one token for the header: no spaces or line breaks (names and devices
 * are made of [A-Za-z0-9_.:/=-]; anything else is refused at write) */
static int token_ok(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s == 0x7f) return 0;
    return 1;
}
static int line_ok(const char *s) {
    for (; *s; s++)
        if (*s == '\n' || *s == '\r') return 0;
    return 1;
}

mtmi_status mt_planfile_write(const char *path, const mt_planfile *pf) {
    for (int i = 0; i < pf->nstages; i++)
        if (!token_ok(pf->stage_name[i]) || !token_ok(pf->stage_dev[i]) || !line_ok(pf->identity[i]))
            return mt_fail(MTMI_ERR_ARG, "saved plan: stage %d's name or device cannot be written ('%s' on '%s')", i,
                           pf->stage_name[i], pf->stage_dev[i]);
    if (!token_ok(pf->placement) || !line_ok(pf->tuning) || pf->rank < 1 || pf->rank > MT_MAX_RANK)
        return mt_fail(MTMI_ERR_ARG, "saved plan: placement, tuning or input shape cannot be written");
    sbuf b = {0};
    sb_printf(&b, "%s%d\nmtmi %s\nmodel %016" PRIx64 "\n", MAGIC, MT_PLANFILE_FORMAT, pf->mtmi_version, pf->model_key);
    if (pf->has_cache) sb_printf(&b, "cache %016" PRIx64 "\n", pf->cache_key);
    else sb_printf(&b, "cache none\n");
    sb_printf(&b, "input ");
    for (int k = 0; k < pf->rank; k++) sb_printf(&b, "%s%" PRId64, k ? "x" : "", pf->dims[k]);
    sb_printf(&b, "\nimage_input %d\nplacement %s\ntuning %s\nstages %d\n", pf->image_input ? 1 : 0, pf->placement,
              pf->tuning[0] ? pf->tuning : "-", pf->nstages);
    for (int i = 0; i < pf->nstages; i++)
        sb_printf(&b, "stage %s %s %zu %s\n", pf->stage_name[i], pf->stage_dev[i], pf->choices[i].len,
                  pf->identity[i][0] ? pf->identity[i] : "-");
    sb_printf(&b, "end\n");
    for (int i = 0; i < pf->nstages; i++) sb_add(&b, pf->choices[i].data, pf->choices[i].len);
    if (!b.failed) sb_printf(&b, "checksum %016" PRIx64 "\n", mt_hash64(MT_HASH_SEED, b.d, b.len));
    if (b.failed) {
        free(b.d);
        return mt_fail(MTMI_ERR_NOMEM, "saved plan: out of memory (or a header line too long)");
    }
    mtmi_status s = mt_write_file_atomic(path, b.d, b.len);
    free(b.d);
    return s;
}

/* ------------------------------------------------------------------- read */
typedef struct reader {
    const unsigned char *d;
    size_t n, pos;
    const char *name;
    char line[2048];
} reader;

/* the next header line (without its '\n') into r->line; 0 at a missing
 * or overlong line, or one holding a NUL */
static int next_line(reader *r) {
    size_t i = r->pos;
    while (i < r->n && r->d[i] != '\n') {
        if (!r->d[i]) return 0;
        i++;
    }
    if (i >= r->n || i - r->pos >= sizeof r->line) return 0;
    memcpy(r->line, r->d + r->pos, i - r->pos);
    r->line[i - r->pos] = 0;
    r->pos = i + 1;
    return 1;
}

static mtmi_status bad(const reader *r, const char *what) {
    return mt_fail(MTMI_ERR_PARSE, "%s: not a valid saved plan: %s (make it again with mtmi build)", r->name, what);
}

/* "key value" with the expected key: the value's start, or NULL */
static const char *field(reader *r, const char *key) {
    if (!next_line(r)) return NULL;
    size_t k = strlen(key);
    if (strncmp(r->line, key, k) || r->line[k] != ' ') return NULL;
    return r->line + k + 1;
}

static int parse_hex64(const char *s, uint64_t *v) {
    if (strlen(s) != 16) return 0;
    uint64_t x = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return 0;
        x = x << 4 | (uint64_t)d;
    }
    *v = x;
    return 1;
}

static int parse_dims(const char *s, int *rank, int64_t *dims) {
    int r = 0;
    while (*s) {
        if (r == MT_MAX_RANK || *s < '0' || *s > '9') return 0;
        int64_t v = 0;
        while (*s >= '0' && *s <= '9') {
            if (v > (INT64_MAX - 9) / 10) return 0;
            v = v * 10 + (*s++ - '0');
        }
        if (v < 1) return 0;
        dims[r++] = v;
        if (*s == 'x') {
            s++;
            if (!*s) return 0;
        } else if (*s) {
            return 0;
        }
    }
    *rank = r;
    return r > 0;
}

static int copy_str(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap) return 0;
    memcpy(dst, src, n + 1);
    return 1;
}

static mtmi_status parse_stage(reader *r, mt_planfile *pf, int i, size_t *bytes) {
    const char *v = field(r, "stage");
    if (!v) return bad(r, "a stage line is missing");
    char name[64], dev[64];
    unsigned long long nb = 0;
    int used = 0;
    if (sscanf(v, "%63s %63s %llu %n", name, dev, &nb, &used) != 3 || used <= 0)
        return bad(r, "a stage line is malformed");
    const char *ident = v + used;
    if (!strcmp(ident, "-")) ident = "";
    if (!copy_str(pf->stage_name[i], sizeof pf->stage_name[i], name) || !copy_str(pf->stage_dev[i], sizeof pf->stage_dev[i], dev) ||
        !copy_str(pf->identity[i], sizeof pf->identity[i], ident))
        return bad(r, "a stage line is too long");
    if (nb > MT_PLANFILE_MAX_BYTES) return bad(r, "a stage's decisions are too large");
    *bytes = (size_t)nb;
    return MTMI_OK;
}

mtmi_status mt_planfile_parse(const unsigned char *data, size_t n, const char *name, mt_planfile *pf) {
    memset(pf, 0, sizeof *pf);
    reader r = {.d = data, .n = n, .name = name};
    if (n < sizeof MAGIC - 1 || memcmp(data, MAGIC, sizeof MAGIC - 1))
        return mt_fail(MTMI_ERR_PARSE, "%s: not a saved plan (mtmi build writes them)", name);
    /* the checksum line closes the file: everything before it is covered */
    static const char CK[] = "checksum ";
    size_t ck_line = sizeof CK - 1 + 16 + 1;
    uint64_t want = 0, got;
    if (n < ck_line || memcmp(data + n - ck_line, CK, sizeof CK - 1) || data[n - 1] != '\n')
        return bad(&r, "it is truncated (no checksum at its end)");
    char hex[17];
    memcpy(hex, data + n - 17, 16);
    hex[16] = 0;
    if (!parse_hex64(hex, &want)) return bad(&r, "its checksum line is malformed");
    got = mt_hash64(MT_HASH_SEED, data, n - ck_line);
    if (got != want) return bad(&r, "its checksum does not match (the file was changed or damaged)");
    r.n = n - ck_line;
    int format = 0;
    if (!next_line(&r) || sscanf(r.line + sizeof MAGIC - 1, "%d", &format) != 1) return bad(&r, "no format line");
    if (format != MT_PLANFILE_FORMAT)
        return mt_fail(MTMI_ERR_PARSE, "%s: saved plan format %d, this mtmi reads format %d: make it again with mtmi build",
                       name, format, MT_PLANFILE_FORMAT);
    const char *v;
    if (!(v = field(&r, "mtmi")) || !copy_str(pf->mtmi_version, sizeof pf->mtmi_version, v)) return bad(&r, "no mtmi line");
    if (!(v = field(&r, "model")) || !parse_hex64(v, &pf->model_key)) return bad(&r, "no model line");
    if (!(v = field(&r, "cache"))) return bad(&r, "no cache line");
    if (strcmp(v, "none")) {
        if (!parse_hex64(v, &pf->cache_key)) return bad(&r, "a malformed cache line");
        pf->has_cache = 1;
    }
    if (!(v = field(&r, "input")) || !parse_dims(v, &pf->rank, pf->dims)) return bad(&r, "no input line");
    if (!(v = field(&r, "image_input")) || (strcmp(v, "0") && strcmp(v, "1"))) return bad(&r, "no image_input line");
    pf->image_input = v[0] == '1';
    if (!(v = field(&r, "placement")) || !copy_str(pf->placement, sizeof pf->placement, v)) return bad(&r, "no placement line");
    if (!(v = field(&r, "tuning")) || !copy_str(pf->tuning, sizeof pf->tuning, strcmp(v, "-") ? v : ""))
        return bad(&r, "no tuning line");
    int ns = 0;
    if (!(v = field(&r, "stages")) || sscanf(v, "%d", &ns) != 1 || ns < 1 || ns > MT_PLACE_MAX)
        return bad(&r, "no stages line");
    size_t bytes[MT_PLACE_MAX] = {0}, total = 0;
    for (int i = 0; i < ns; i++) {
        mtmi_status s = parse_stage(&r, pf, i, &bytes[i]);
        if (s) return s;
        total += bytes[i];
    }
    if (!next_line(&r) || strcmp(r.line, "end")) return bad(&r, "no end line after the stages");
    if (r.n - r.pos != total) return bad(&r, "its decisions do not add up to the sizes its stages give");
    for (int i = 0; i < ns; i++) {
        mtmi_status s = mt_choices_load(&pf->choices[i], data + r.pos, bytes[i]);
        if (s) {
            pf->nstages = i;
            mt_planfile_free(pf);
            return mt_fail_context(s, "%s: stage '%s'", name, pf->stage_name[i]);
        }
        r.pos += bytes[i];
    }
    pf->nstages = ns;
    return MTMI_OK;
}

mtmi_status mt_planfile_read(const char *path, mt_planfile *pf) {
    memset(pf, 0, sizeof *pf);
    uint8_t *data;
    size_t n;
    mtmi_status s = mt_read_file(path, &data, &n);
    if (s) return s;
    if (n > MT_PLANFILE_MAX_BYTES) {
        free(data);
        return mt_fail(MTMI_ERR_PARSE, "%s: %zu bytes, more than a saved plan can be (%zu)", path, n, MT_PLANFILE_MAX_BYTES);
    }
    s = mt_planfile_parse(data, n, path, pf);
    free(data);
    return s;
}

mtmi_status mt_planfile_check_machine(const mt_planfile *pf, const char *name) {
    if (strcmp(pf->mtmi_version, MTMI_VERSION))
        return mt_fail(MTMI_ERR_ARG, "%s: saved plan made by mtmi %s, this is mtmi %s: make it again with mtmi build", name,
                       pf->mtmi_version, MTMI_VERSION);
    for (int i = 0; i < pf->nstages; i++) {
        mt_devspec d;
        mtmi_status s = mt_devspec_parse(pf->stage_dev[i], &d);
        if (s) return mt_fail_context(s, "%s: stage '%s'", name, pf->stage_name[i]);
        const mt_backend *be = mt_backend_for(&d);
        if (!be) return mt_fail_context(MTMI_ERR_DEVICE, "%s: stage '%s'", name, pf->stage_name[i]);
        char now[256] = "";
        if (be->identity && (s = be->identity(&d, now, sizeof now)))
            return mt_fail_context(s, "%s: stage '%s'", name, pf->stage_name[i]);
        if (strcmp(now, pf->identity[i]))
            return mt_fail(MTMI_ERR_ARG, "%s: saved plan made on another machine for stage '%s' (%s: '%s'; here: '%s'): make it "
                           "again with mtmi build",
                           name, pf->stage_name[i], pf->stage_dev[i], pf->identity[i][0] ? pf->identity[i] : "-",
                           now[0] ? now : "-");
    }
    return MTMI_OK;
}

mtmi_status mt_planfile_check_run(const mt_planfile *pf, const char *name, uint64_t model_key, int has_cache, uint64_t cache_key,
                                  int image_input) {
    if (pf->model_key != model_key)
        return mt_fail(MTMI_ERR_ARG, "%s: saved plan made for another model (content %016" PRIx64 ", this one %016" PRIx64
                       "): make it again with mtmi build",
                       name, pf->model_key, model_key);
    if (pf->has_cache != has_cache || (has_cache && pf->cache_key != cache_key))
        return mt_fail(MTMI_ERR_ARG, "%s: saved plan made %s, this run has %s: give the same --cache or make it again with "
                       "mtmi build",
                       name, pf->has_cache ? "with another calibration cache" : "without a calibration cache",
                       has_cache ? "one" : "none");
    if (!pf->image_input != !image_input)
        return mt_fail(MTMI_ERR_ARG, "%s: saved plan made for %s input, this run feeds %s", name,
                       pf->image_input ? "8-bit image" : "float", image_input ? "8-bit images" : "floats");
    return MTMI_OK;
}

mtmi_status mt_planfile_cache_key(const char *path, uint64_t *key) {
    uint8_t *data;
    size_t n;
    mtmi_status s = mt_read_file(path, &data, &n);
    if (s) return s;
    *key = mt_hash64(MT_HASH_SEED, data, n);
    free(data);
    return MTMI_OK;
}

mtmi_status mt_plan_subject_of(const mtmi_model *m, const char *calib_path, int image_input, mt_plan_subject *out) {
    memset(out, 0, sizeof *out);
    out->model_key = mt_model_content_key(m);
    out->has_cache = calib_path != NULL;
    out->image_input = image_input != 0;
    return calib_path ? mt_planfile_cache_key(calib_path, &out->cache_key) : MTMI_OK;
}

mtmi_status mt_planfile_open(const char *path, mt_planfile *pf) {
    mtmi_status s = mt_planfile_read(path, pf);
    return s ? s : mt_planfile_check_machine(pf, path);
}

mtmi_status mt_planfile_check_placement(const mt_planfile *pf, const char *name, const char *given) {
    if (!strcmp(given, pf->placement)) return MTMI_OK;
    mt_placement g, saved;
    mtmi_status s;
    if ((s = mt_placement_parse(given, &g)) || (s = mt_placement_parse(pf->placement, &saved))) return s;
    int same = !g.is_auto;
    for (int i = 0; same && i < pf->nstages; i++) {
        mt_devspec a = mt_placement_lookup(&g, pf->stage_name[i]), b = mt_placement_lookup(&saved, pf->stage_name[i]);
        same = mt_devspec_same_device(&a, &b) && a.prec == b.prec;
    }
    if (!same)
        return mt_fail(MTMI_ERR_ARG, "%s: saved plan made for placement %s, not %s: leave the placement out or make it again "
                       "with mtmi build",
                       name, pf->placement, given);
    return MTMI_OK;
}

mtmi_status mt_planfile_save(const mt_pipeline *p, const mt_plan_subject *subject, const char *tuning, const char *path) {
    mt_planfile *pf = calloc(1, sizeof *pf);
    if (!pf) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    mtmi_status s = mt_planfile_from_pipeline(p, pf);
    if (!s) {
        pf->model_key = subject->model_key;
        pf->has_cache = subject->has_cache;
        pf->cache_key = subject->cache_key;
        pf->image_input = subject->image_input;
        pf->rank = subject->rank;
        memcpy(pf->dims, subject->dims, sizeof pf->dims);
        snprintf(pf->tuning, sizeof pf->tuning, "%s", tuning ? tuning : "");
        s = mt_planfile_write(path, pf);
    }
    mt_planfile_free(pf);
    free(pf);
    return s;
}

void mt_planfile_free(mt_planfile *pf) {
    if (!pf) return;
    for (int i = 0; i < MT_PLACE_MAX; i++) mt_choices_free(&pf->choices[i]);
    pf->nstages = 0;
}
