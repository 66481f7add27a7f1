/* A recursive-descent JSON reader (json.h).  The text comes from the server,
 * which wrote it from a config file an operator wrote, so it is checked
 * like any input: bounded depth, every allocation checked, no read past
 * len. */
#include "triton/json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MTJ_MAX_DEPTH 64

typedef struct parser {
    const char *s;
    size_t len, pos;
    char *err;
    size_t cap;
} parser;

static int fail(parser *p, const char *fmt, ...) {
    if (p->err && p->cap && !p->err[0]) {
        int n = snprintf(p->err, p->cap, "model config JSON, byte %zu: ", p->pos);
        if (n > 0 && (size_t)n < p->cap) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err + n, p->cap - n, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

/* c is one of set (never the terminating NUL: strchr would find it). */
static int one_of(char c, const char *set) { return c && strchr(set, c); }

static void skip_ws(parser *p) {
    while (p->pos < p->len && one_of(p->s[p->pos], " \t\r\n")) p->pos++;
}

static int peek(parser *p) { return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1; }

static int literal(parser *p, const char *word) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n)) return fail(p, "unexpected text");
    p->pos += n;
    return 0;
}

static int hex4(parser *p, unsigned *u) {
    if (p->len - p->pos < 4) return fail(p, "short \\u escape");
    *u = 0;
    for (int i = 0; i < 4; i++) {
        int c = p->s[p->pos++];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return fail(p, "bad \\u escape");
        *u = *u * 16 + (unsigned)d;
    }
    return 0;
}

/* UTF-8 of code point u into o (at least 4 bytes); bytes written. */
static int utf8(unsigned u, char *o) {
    if (u < 0x80) return o[0] = (char)u, 1;
    if (u < 0x800) return o[0] = (char)(0xC0 | u >> 6), o[1] = (char)(0x80 | (u & 0x3F)), 2;
    if (u < 0x10000)
        return o[0] = (char)(0xE0 | u >> 12), o[1] = (char)(0x80 | ((u >> 6) & 0x3F)), o[2] = (char)(0x80 | (u & 0x3F)), 3;
    o[0] = (char)(0xF0 | u >> 18), o[1] = (char)(0x80 | ((u >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((u >> 6) & 0x3F)), o[3] = (char)(0x80 | (u & 0x3F));
    return 4;
}

/* One escape after the backslash, appended at o; bytes written or -1. */
static int escape(parser *p, char *o) {
    if (p->pos >= p->len) return fail(p, "unterminated string");
    char c = p->s[p->pos++];
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *k = c ? strchr(from, c) : NULL;
    if (k) return o[0] = to[k - from], 1;
    if (c != 'u') return fail(p, "bad escape '\\%c'", c);
    unsigned u;
    if (hex4(p, &u)) return -1;
    if (u >= 0xD800 && u < 0xDC00 && p->len - p->pos >= 6 && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u') {
        unsigned lo;
        p->pos += 2;
        if (hex4(p, &lo)) return -1;
        if (lo >= 0xDC00 && lo < 0xE000) u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    }
    return utf8(u, o);
}

/* A string after its opening quote; *out is malloc'ed. */
static int string(parser *p, char **out) {
    /* The unescaped text is never longer than the escaped one. */
    size_t start = p->pos, end = start;
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len) return fail(p, "unterminated string");
    char *o = malloc(end - start + 4);
    if (!o) return fail(p, "out of memory");
    size_t n = 0;
    while (p->pos < p->len && p->s[p->pos] != '"') {
        char c = p->s[p->pos++];
        if ((unsigned char)c < 0x20) {
            free(o);
            return fail(p, "control character in a string");
        }
        if (c != '\\') {
            o[n++] = c;
            continue;
        }
        int k = escape(p, o + n);
        if (k < 0) {
            free(o);
            return -1;
        }
        n += (size_t)k;
    }
    p->pos++; /* the closing quote */
    o[n] = 0;
    *out = o;
    return 0;
}

static int number(parser *p, mtj_value *v) {
    size_t start = p->pos;
    while (p->pos < p->len && one_of(p->s[p->pos], "+-0123456789.eE")) p->pos++;
    size_t n = p->pos - start;
    if (!n || n > 63) return fail(p, "bad number");
    char buf[64];
    memcpy(buf, p->s + start, n);
    buf[n] = 0;
    char *end;
    errno = 0;
    v->number = strtod(buf, &end);
    if (*end || !isfinite(v->number)) return fail(p, "bad number '%s'", buf);
    v->type = MTJ_NUMBER;
    v->string = malloc(n + 1);
    if (!v->string) return fail(p, "out of memory");
    memcpy(v->string, buf, n + 1);
    return 0;
}

static int value(parser *p, mtj_value *v, int depth);

/* Appends a zeroed item (and key slot) to an array or object. */
static mtj_value *grow(parser *p, mtj_value *v, int *cap) {
    if (v->n == *cap) {
        int nc = *cap ? *cap * 2 : 8;
        mtj_value *it = realloc(v->items, (size_t)nc * sizeof *it);
        if (!it) return fail(p, "out of memory"), NULL;
        v->items = it;
        if (v->type == MTJ_OBJECT) {
            char **k = realloc(v->keys, (size_t)nc * sizeof *k);
            if (!k) return fail(p, "out of memory"), NULL;
            v->keys = k;
        }
        *cap = nc;
    }
    memset(&v->items[v->n], 0, sizeof v->items[0]);
    if (v->type == MTJ_OBJECT) v->keys[v->n] = NULL;
    return &v->items[v->n++];
}

/* An array or object after its opening bracket. */
static int container(parser *p, mtj_value *v, int depth, char close) {
    int cap = 0;
    skip_ws(p);
    if (peek(p) == close) return p->pos++, 0;
    for (;;) {
        skip_ws(p);
        char *key = NULL;
        if (close == '}') {
            if (peek(p) != '"') return fail(p, "expected a key");
            p->pos++;
            if (string(p, &key)) return -1;
            skip_ws(p);
            if (peek(p) != ':') return free(key), fail(p, "expected ':'");
            p->pos++;
        }
        mtj_value *it = grow(p, v, &cap);
        if (!it) return free(key), -1;
        if (close == '}') v->keys[v->n - 1] = key;
        if (value(p, it, depth + 1)) return -1;
        skip_ws(p);
        int c = peek(p);
        p->pos++;
        if (c == close) return 0;
        if (c != ',') return p->pos--, fail(p, "expected ',' or '%c'", close);
    }
}

static int value(parser *p, mtj_value *v, int depth) {
    if (depth > MTJ_MAX_DEPTH) return fail(p, "nested more than %d deep", MTJ_MAX_DEPTH);
    skip_ws(p);
    int c = peek(p);
    switch (c) {
    case '{': p->pos++, v->type = MTJ_OBJECT; return container(p, v, depth, '}');
    case '[': p->pos++, v->type = MTJ_ARRAY; return container(p, v, depth, ']');
    case '"': p->pos++, v->type = MTJ_STRING; return string(p, &v->string);
    case 't': v->type = MTJ_BOOL, v->boolean = 1; return literal(p, "true");
    case 'f': v->type = MTJ_BOOL; return literal(p, "false");
    case 'n': v->type = MTJ_NULL; return literal(p, "null");
    case -1: return fail(p, "unexpected end");
    default: return number(p, v);
    }
}

int mtj_parse(const char *text, size_t len, mtj_value *out, char *err, size_t cap) {
    memset(out, 0, sizeof *out);
    if (err && cap) err[0] = 0;
    parser p = {text, len, 0, err, cap};
    if (!text) return fail(&p, "no text");
    int rc = value(&p, out, 0);
    if (!rc) {
        skip_ws(&p);
        if (p.pos != len) rc = fail(&p, "text after the value");
    }
    if (rc) mtj_free(out);
    return rc;
}

void mtj_free(mtj_value *v) {
    if (!v) return;
    for (int i = 0; i < v->n; i++) {
        mtj_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
    memset(v, 0, sizeof *v);
}

const mtj_value *mtj_get(const mtj_value *v, const char *key) {
    if (!v || v->type != MTJ_OBJECT) return NULL;
    for (int i = 0; i < v->n; i++)
        if (v->keys[i] && !strcmp(v->keys[i], key)) return &v->items[i];
    return NULL;
}

const char *mtj_get_str(const mtj_value *v, const char *key) {
    const mtj_value *s = mtj_get(v, key);
    return s && s->type == MTJ_STRING ? s->string : NULL;
}

int mtj_int(const mtj_value *v, int64_t *out) {
    if (!v || (v->type != MTJ_NUMBER && v->type != MTJ_STRING) || !v->string || !v->string[0]) return -1;
    char *end;
    errno = 0;
    long long x = strtoll(v->string, &end, 10);
    if (*end || errno) return -1;
    *out = x;
    return 0;
}

int mtj_get_int(const mtj_value *v, const char *key, int64_t *out) { return mtj_int(mtj_get(v, key), out); }
