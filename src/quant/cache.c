/* Calibration caches in TensorRT's text format:
 *
 *     TRT-8601-EntropyCalibration2
 *     input.72: 3cb9c64a
 *
 * one tensor per line, the scale (amax / 127) as the big-endian hex of its
 * IEEE float32 bits.  Names may themselves hold ':' ("onnx::Conv_12"), so a
 * line splits at its last ':'. */
#include "quant/quant.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void mt_calib_cache_free(mt_calib_cache *c) {
    for (int i = 0; i < c->n; i++) free(c->e[i].name);
    free(c->e);
    free(c->header);
    free(c->path);
    mt_strset_free(&c->index);
    memset(c, 0, sizeof *c);
}

void mt_scale_to_hex(float s, char hex[9]) {
    uint32_t u;
    memcpy(&u, &s, 4);
    snprintf(hex, 9, "%08x", (unsigned)u);
}

int mt_scale_from_hex(const char *hex, float *s) {
    size_t n = strlen(hex);
    if (n == 0 || n > 8) return -1;
    uint32_t u = 0;
    for (size_t i = 0; i < n; i++) {
        int c = tolower((unsigned char)hex[i]), d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return -1;
        u = u << 4 | (uint32_t)d;
    }
    memcpy(s, &u, 4);
    return 0;
}

const char *mt_calib_header(mt_calib_method m) {
    switch (m) {
    case MT_CALIB_ENTROPY: return "TRT-8601-EntropyCalibration2";
    case MT_CALIB_MINMAX: return "TRT-8601-MinMaxCalibration";
    case MT_CALIB_PERCENTILE: return "TRT-8601-PercentileCalibration";
    }
    return "TRT-8601-EntropyCalibration2";
}

static int find(const mt_calib_cache *c, const char *name) { return mt_strset_get(&c->index, name); }

float mt_calib_cache_get(const mt_calib_cache *c, const char *name) {
    int i = c ? find(c, name) : -1;
    return i < 0 ? 0.0f : c->e[i].scale;
}

static mtmi_status add_entry(mt_calib_cache *c, const char *name, float scale, int line) {
    if (mt_grow((void **)&c->e, &c->cap, c->n, sizeof *c->e)) return MTMI_ERR_NOMEM;
    if (!(c->e[c->n].name = mt_strdup(name))) return MTMI_ERR_NOMEM;
    if (mt_strset_put(&c->index, c->e[c->n].name, c->n)) {
        free(c->e[c->n].name);
        return MTMI_ERR_NOMEM;
    }
    c->e[c->n].scale = scale;
    c->e[c->n].line = line;
    c->n++;
    return MTMI_OK;
}

mtmi_status mt_calib_cache_set(mt_calib_cache *c, const char *name, float scale) {
    if (!(scale > 0) || !isfinite(scale))
        return mt_fail(MTMI_ERR_ARG, "scale of '%s' must be a positive finite number, got %g", name, scale);
    int i = find(c, name);
    if (i >= 0) {
        c->e[i].scale = scale;
        c->e[i].line = 0;
        return MTMI_OK;
    }
    return add_entry(c, name, scale, 0);
}

static char *trim(char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

mtmi_status mt_calib_cache_parse(const char *text, size_t len, const char *what, mt_calib_cache *c) {
    memset(c, 0, sizeof *c);
    if (!what) what = "calibration cache";
    mtmi_status s = MTMI_OK;
    char *buf = malloc(len + 1), *line = NULL;
    if (!buf) return mt_fail(MTMI_ERR_NOMEM, "out of memory reading %s", what);
    memcpy(buf, text, len);
    buf[len] = 0;
    if (memchr(buf, 0, len)) {
        s = mt_fail(MTMI_ERR_PARSE, "%s: not a text calibration cache (NUL byte at offset %zu)", what, strlen(buf));
        goto done;
    }
    int lineno = 0;
    char *p = buf;
    while (p && *p) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        lineno++;
        line = trim(p);
        p = nl ? nl + 1 : NULL;
        if (!c->header) {
            /* TensorRT writes "TRT-<version>-<Algorithm>"; anything else
             * means this is not a calibration cache at all. */
            if (strncmp(line, "TRT-", 4) != 0 || strchr(line, ':') || strchr(line, ' ')) {
                s = mt_fail(MTMI_ERR_PARSE, "%s:%d: expected a header like 'TRT-8601-EntropyCalibration2', got '%.60s'", what,
                            lineno, line);
                goto done;
            }
            if (!(c->header = mt_strdup(line))) { s = MTMI_ERR_NOMEM; goto done; }
            continue;
        }
        if (!*line) continue; /* blank lines (a trailing newline) */
        char *colon = strrchr(line, ':');
        if (!colon || colon == line) {
            s = mt_fail(MTMI_ERR_PARSE, "%s:%d: expected 'tensor_name: <8 hex digits>', got '%.60s'", what, lineno, line);
            goto done;
        }
        *colon = 0;
        char *name = trim(line), *hex = trim(colon + 1);
        float scale;
        if (!*name || mt_scale_from_hex(hex, &scale)) {
            s = mt_fail(MTMI_ERR_PARSE, "%s:%d: tensor '%.60s': scale '%.20s' is not 1 to 8 hex digits", what, lineno, name, hex);
            goto done;
        }
        if (!(scale > 0) || !isfinite(scale)) {
            s = mt_fail(MTMI_ERR_PARSE, "%s:%d: tensor '%.60s': scale %s is %g, must be positive and finite", what, lineno, name,
                        hex, scale);
            goto done;
        }
        int dup = find(c, name);
        if (dup >= 0) {
            s = mt_fail(MTMI_ERR_PARSE, "%s:%d: tensor '%.60s' appears twice (first on line %d)", what, lineno, name, c->e[dup].line);
            goto done;
        }
        if ((s = add_entry(c, name, scale, lineno))) goto done;
    }
    if (!c->header) s = mt_fail(MTMI_ERR_PARSE, "%s: empty calibration cache (no TRT- header)", what);
    else if (!(c->path = mt_strdup(what))) s = MTMI_ERR_NOMEM;
done:
    free(buf);
    if (s) mt_calib_cache_free(c);
    return s;
}

mtmi_status mt_calib_cache_read(const char *path, mt_calib_cache *c) {
    memset(c, 0, sizeof *c);
    uint8_t *data;
    size_t size;
    mtmi_status s = mt_read_file(path, &data, &size);
    if (s) return s;
    s = mt_calib_cache_parse((const char *)data, size, path, c);
    free(data);
    return s;
}

mtmi_status mt_calib_cache_write(const char *path, const mt_calib_cache *c) {
    size_t cap = 64 + (c->header ? strlen(c->header) : 0);
    for (int i = 0; i < c->n; i++) cap += strlen(c->e[i].name) + 16;
    char *buf = malloc(cap), hex[9];
    if (!buf) return mt_fail(MTMI_ERR_NOMEM, "out of memory writing %s", path);
    size_t len = (size_t)snprintf(buf, cap, "%s\n", c->header ? c->header : mt_calib_header(MT_CALIB_ENTROPY));
    for (int i = 0; i < c->n; i++) {
        mt_scale_to_hex(c->e[i].scale, hex);
        len += (size_t)snprintf(buf + len, cap - len, "%s: %s\n", c->e[i].name, hex);
    }
    mtmi_status s = mt_write_file_atomic(path, buf, len);
    free(buf);
    return s;
}

/* The value names of g and g2 (hashed: a cache may have many lines). */
static mtmi_status graph_names(const mt_graph *g, const mt_graph *g2, mt_strset *names) {
    for (int k = 0; k < 2; k++) {
        const mt_graph *x = k ? g2 : g;
        for (int v = 0; x && v < x->nvalues; v++)
            if (mt_strset_put(names, x->values[v].name, v)) return MTMI_ERR_NOMEM;
    }
    return MTMI_OK;
}

mtmi_status mt_calib_cache_check(const mt_calib_cache *c, const mt_graph *g, const mt_graph *g2) {
    mt_strset names = {0};
    mtmi_status s = graph_names(g, g2, &names);
    for (int i = 0; i < c->n && !s; i++)
        if (mt_strset_get(&names, c->e[i].name) < 0) {
            if (c->e[i].line)
                s = mt_fail(MTMI_ERR_ARG, "%s:%d: tensor '%s' is not in the model", c->path ? c->path : "calibration cache",
                            c->e[i].line, c->e[i].name);
            else
                s = mt_fail(MTMI_ERR_ARG, "scale override: tensor '%s' is not in the model", c->e[i].name);
        }
    mt_strset_free(&names);
    return s;
}

mtmi_status mt_calib_cache_override(mt_calib_cache *c, const char *spec) {
    const char *eq = strrchr(spec, '=');
    if (!eq || eq == spec || !eq[1]) return mt_fail(MTMI_ERR_ARG, "override '%s': expected name=scale", spec);
    char name[1024];
    size_t nl = (size_t)(eq - spec);
    if (nl >= sizeof name) return mt_fail(MTMI_ERR_ARG, "override: tensor name too long");
    memcpy(name, spec, nl);
    name[nl] = 0;
    const char *v = eq + 1;
    float scale;
    if (!strncmp(v, "0x", 2) || !strncmp(v, "0X", 2)) {
        if (mt_scale_from_hex(v + 2, &scale)) return mt_fail(MTMI_ERR_ARG, "override '%s': bad hex scale", spec);
    } else {
        char *e;
        errno = 0;
        scale = strtof(v, &e);
        if (e == v || *e || errno) return mt_fail(MTMI_ERR_ARG, "override '%s': '%s' is not a number", spec, v);
    }
    if (!(scale > 0) || !isfinite(scale))
        return mt_fail(MTMI_ERR_ARG, "override '%s': scale must be positive and finite", spec);
    return mt_calib_cache_set(c, name, scale);
}

/* ------------------------------------------------------------ header version */
static const char *algorithm_name(mt_calib_method m) {
    /* mt_calib_header's names after "TRT-8601-" */
    return mt_calib_header(m) + strlen("TRT-" MT_CALIB_VERSION "-");
}

mtmi_status mt_calib_check_version(const char *version, const char *what) {
    size_t n = version ? strlen(version) : 0;
    int ok = n >= 1 && n <= 9;
    for (size_t i = 0; ok && i < n; i++) ok = version[i] >= '0' && version[i] <= '9';
    if (!ok)
        return mt_fail(MTMI_ERR_ARG, "%s: TensorRT version '%.40s' must be 1 to 9 digits (e.g. 8601)", what ? what : "cache header",
                       version ? version : "");
    return MTMI_OK;
}

static mtmi_status make_header(const char *version, const char *algorithm, char **out) {
    size_t len = strlen("TRT--") + strlen(version) + strlen(algorithm) + 1;
    if (!(*out = malloc(len))) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    if (*algorithm) snprintf(*out, len, "TRT-%s-%s", version, algorithm);
    else snprintf(*out, len, "TRT-%s", version);
    return MTMI_OK;
}

mtmi_status mt_calib_header_make(mt_calib_method m, const char *version, char **out) {
    *out = NULL;
    if (!version) version = MT_CALIB_VERSION;
    mtmi_status s = mt_calib_check_version(version, NULL);
    return s ? s : make_header(version, algorithm_name(m), out);
}

mtmi_status mt_calib_cache_set_version(mt_calib_cache *c, const char *version) {
    mtmi_status s = mt_calib_check_version(version, c->path);
    if (s) return s;
    /* "TRT-<digits>-<algorithm>"; the parser accepts any "TRT-..." header,
     * so the number may be missing. */
    const char *alg = c->header && !strncmp(c->header, "TRT-", 4) ? c->header + 4 : algorithm_name(MT_CALIB_ENTROPY);
    const char *p = alg;
    while (*p >= '0' && *p <= '9') p++;
    if (p > alg && (*p == '-' || !*p)) alg = *p ? p + 1 : p;
    char *h;
    if ((s = make_header(version, alg, &h))) return s;
    free(c->header);
    c->header = h;
    return MTMI_OK;
}
