/* choices.c: the decision list of backend/choices.h.
 * Record layout: u8 kind, u8 siglen, u16 vallen (little-endian),
 * signature, value. */
#include "backend/choices.h"

#include <stdlib.h>
#include <string.h>

#include "core/core.h"

enum { REC_HEAD = 4 };

static mtmi_status grow(mt_choices *c, size_t need) {
    if (c->len + need <= c->cap) return MTMI_OK;
    size_t cap = c->cap ? c->cap : 256;
    while (cap < c->len + need) cap *= 2;
    unsigned char *d = realloc(c->data, cap);
    if (!d) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    c->data = d;
    c->cap = cap;
    return MTMI_OK;
}

/* the record at off: 0 if it does not fit in len */
static int record_at(const mt_choices *c, size_t off, int *kind, const unsigned char **sig, size_t *siglen,
                     const unsigned char **val, size_t *vallen) {
    if (off > c->len || c->len - off < REC_HEAD) return 0;
    const unsigned char *p = c->data + off;
    size_t sl = p[1], vl = (size_t)p[2] | ((size_t)p[3] << 8);
    if (c->len - off - REC_HEAD < sl + vl) return 0;
    *kind = p[0];
    *sig = p + REC_HEAD;
    *siglen = sl;
    *val = p + REC_HEAD + sl;
    *vallen = vl;
    return 1;
}

int mt_choices_find(mt_choices *c, int kind, const void *sig, size_t siglen, void *val, size_t vallen) {
    int k;
    const unsigned char *rs, *rv;
    size_t rsl, rvl;
    for (size_t off = 0; record_at(c, off, &k, &rs, &rsl, &rv, &rvl); off += REC_HEAD + rsl + rvl)
        if (k == kind && rsl == siglen && rvl == vallen && (!siglen || !memcmp(rs, sig, siglen))) {
            if (vallen) memcpy(val, rv, vallen);
            c->found++;
            return 1;
        }
    return 0;
}

mtmi_status mt_choices_put(mt_choices *c, int kind, const void *sig, size_t siglen, const void *val, size_t vallen) {
    if (kind < 0 || kind > 255 || siglen > MT_CHOICE_MAX_SIG || vallen > MT_CHOICE_MAX_VALUE)
        return mt_fail(MTMI_ERR_INTERNAL, "choices: record too large (kind %d, %zu + %zu bytes)", kind, siglen, vallen);
    mtmi_status s = grow(c, REC_HEAD + siglen + vallen);
    if (s) return s;
    unsigned char *p = c->data + c->len;
    p[0] = (unsigned char)kind;
    p[1] = (unsigned char)siglen;
    p[2] = (unsigned char)(vallen & 0xff);
    p[3] = (unsigned char)(vallen >> 8);
    if (siglen) memcpy(p + REC_HEAD, sig, siglen);
    if (vallen) memcpy(p + REC_HEAD + siglen, val, vallen);
    c->len += REC_HEAD + siglen + vallen;
    c->count++;
    c->measured++;
    return MTMI_OK;
}

mtmi_status mt_choices_load(mt_choices *c, const void *data, size_t n) {
    mt_choices_free(c);
    mtmi_status s = grow(c, n);
    if (s) return s;
    if (n) memcpy(c->data, data, n);
    c->len = n;
    int k;
    const unsigned char *rs, *rv;
    size_t rsl, rvl, off = 0;
    while (off < c->len) {
        if (!record_at(c, off, &k, &rs, &rsl, &rv, &rvl)) {
            mt_choices_free(c);
            return mt_fail(MTMI_ERR_PARSE, "a decision record runs past the end of its list (byte %zu of %zu)", off, n);
        }
        off += REC_HEAD + rsl + rvl;
        c->count++;
    }
    return MTMI_OK;
}

void mt_choices_free(mt_choices *c) {
    if (!c) return;
    free(c->data);
    memset(c, 0, sizeof *c);
}
