#include "core/npy.h"

#include <stdlib.h>
#include <string.h>

static int descr_dtype(const char *d) {
    static const struct { const char *s; int t; } map[] = {
        {"<f4", MTMI_FLOAT}, {"<f8", MTMI_DOUBLE}, {"<f2", MTMI_FLOAT16}, {"<i8", MTMI_INT64},
        {"<i4", MTMI_INT32}, {"|i1", MTMI_INT8},   {"|u1", MTMI_UINT8},   {"|b1", MTMI_BOOL},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(map); i++)
        if (!strcmp(d, map[i].s)) return map[i].t;
    return 0;
}

static const char *dtype_descr(int t) {
    switch (t) {
    case MTMI_FLOAT: return "<f4";
    case MTMI_DOUBLE: return "<f8";
    case MTMI_FLOAT16: return "<f2";
    case MTMI_INT64: return "<i8";
    case MTMI_INT32: return "<i4";
    case MTMI_INT8: return "|i1";
    case MTMI_UINT8: return "|u1";
    case MTMI_BOOL: return "|b1";
    default: return NULL;
    }
}

mtmi_status mt_npy_read_buffer(const uint8_t *buf, size_t len, const char *what, mtmi_tensor *t) {
    memset(t, 0, sizeof *t);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) return mt_fail(MTMI_ERR_PARSE, "%s: not a .npy file (bad magic)", what);
    size_t hl, ho;
    if (buf[6] == 1) { hl = buf[8] | (buf[9] << 8); ho = 10; }
    else if (buf[6] == 2 || buf[6] == 3) {
        if (len < 12) return mt_fail(MTMI_ERR_PARSE, "%s: truncated .npy header", what);
        hl = buf[8] | (buf[9] << 8) | ((size_t)buf[10] << 16) | ((size_t)buf[11] << 24);
        ho = 12;
    } else return mt_fail(MTMI_ERR_PARSE, "%s: unsupported .npy version %d", what, buf[6]);
    if (hl > 65536 || ho + hl > len) return mt_fail(MTMI_ERR_PARSE, "%s: truncated .npy header", what);
    char hdr[65537];
    memcpy(hdr, buf + ho, hl);
    hdr[hl] = 0;
    char *d = strstr(hdr, "'descr'"), *f = strstr(hdr, "'fortran_order'"), *s = strstr(hdr, "'shape'");
    if (!d || !f || !s) return mt_fail(MTMI_ERR_PARSE, "%s: bad .npy header", what);
    char descr[16] = {0};
    char *q = strchr(d + 7, '\'');
    if (!q || sscanf(q + 1, "%15[^']", descr) != 1) return mt_fail(MTMI_ERR_PARSE, "%s: bad .npy descr", what);
    t->dtype = descr_dtype(descr);
    if (!t->dtype) return mt_fail(MTMI_ERR_UNSUPPORTED, "%s: .npy element type '%s' not supported", what, descr);
    const char *fv = f + strlen("'fortran_order'");
    while (*fv == ' ' || *fv == ':') fv++;
    if (!strncmp(fv, "True", 4)) return mt_fail(MTMI_ERR_UNSUPPORTED, "%s: Fortran-order .npy not supported", what);
    if (strncmp(fv, "False", 5)) return mt_fail(MTMI_ERR_PARSE, "%s: bad .npy fortran_order", what);
    char *p = strchr(s, '(');
    if (!p) return mt_fail(MTMI_ERR_PARSE, "%s: bad .npy shape", what);
    p++;
    t->rank = 0;
    while (*p && *p != ')') {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        char *e;
        long long v = strtoll(p, &e, 10);
        if (e == p || v < 0 || t->rank >= MTMI_MAX_RANK) return mt_fail(MTMI_ERR_PARSE, "%s: bad .npy shape", what);
        t->dims[t->rank++] = v;
        p = e;
    }
    size_t bytes;
    char sh[160];
    /* The header is the file's claim: its size is checked against what is
     * there, without overflowing on the way. */
    if (mt_checked_bytes(t->rank, t->dims, mt_dtype_size(t->dtype), &bytes))
        return mt_fail(MTMI_ERR_PARSE, "%s: .npy shape %s is too large", what, mt_shape_str(t->rank, t->dims, sh, sizeof sh));
    if (len - ho - hl < bytes)
        return mt_fail(MTMI_ERR_PARSE, "%s: .npy data truncated (%zu bytes, %zu needed)", what, len - ho - hl, bytes);
    t->data = malloc(bytes ? bytes : 1);
    if (!t->data) return mt_fail(MTMI_ERR_NOMEM, "%s: out of memory", what);
    memcpy(t->data, buf + ho + hl, bytes);
    return MTMI_OK;
}

mtmi_status mt_npy_read(const char *path, mtmi_tensor *t) {
    uint8_t *buf;
    size_t len;
    mtmi_status s = mt_read_file(path, &buf, &len);
    if (s) return s;
    s = mt_npy_read_buffer(buf, len, path, t);
    free(buf);
    return s;
}

mtmi_status mt_npy_write(const char *path, const mtmi_tensor *t) {
    const char *descr = dtype_descr(t->dtype);
    if (!descr) return mt_fail(MTMI_ERR_UNSUPPORTED, "%s: cannot write element type %s as .npy", path, mt_dtype_name(t->dtype));
    char hdr[512], shape[256] = "";
    size_t o = 0;
    for (int i = 0; i < t->rank; i++) o += snprintf(shape + o, sizeof shape - o, "%lld,%s", (long long)t->dims[i], i + 1 < t->rank ? " " : "");
    int hl = snprintf(hdr + 10, sizeof hdr - 10, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shape);
    int total = 10 + hl + 1;
    int pad = (64 - total % 64) % 64;
    memset(hdr + 10 + hl, ' ', pad);
    hdr[10 + hl + pad] = '\n';
    int hlen = hl + pad + 1;
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (char)(hlen & 0xff);
    hdr[9] = (char)(hlen >> 8);
    char tmp[4096];
    FILE *f = mt_atomic_open(path, tmp, sizeof tmp);
    if (!f) return MTMI_ERR_IO;
    size_t bytes = (size_t)mt_numel(t->rank, t->dims) * mt_dtype_size(t->dtype);
    int ok = fwrite(hdr, 1, 10 + hlen, f) == (size_t)(10 + hlen) && fwrite(t->data, 1, bytes, f) == bytes;
    if (!ok) mt_fail(MTMI_ERR_IO, "%s: write failed", path);
    return mt_atomic_commit(f, tmp, path, ok);
}
