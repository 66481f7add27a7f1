/* A hash map from strings (owned by the caller) to ints, for checks that
 * must stay linear in the size of an untrusted file (duplicate names in a
 * calibration cache, names looked up in a graph). */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

static size_t slot_of(const mt_strset *s, const char *key) {
    size_t i = (size_t)mt_hash64(MT_HASH_SEED, key, strlen(key)) & (s->cap - 1);
    while (s->keys[i] && strcmp(s->keys[i], key)) i = (i + 1) & (s->cap - 1);
    return i;
}

static int grow(mt_strset *s) {
    mt_strset b = {.cap = s->cap ? s->cap * 2 : 64};
    b.keys = calloc(b.cap, sizeof(char *));
    b.vals = malloc(sizeof(int) * b.cap);
    if (!b.keys || !b.vals) {
        free(b.keys);
        free(b.vals);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory"), -1;
    }
    for (size_t i = 0; i < s->cap; i++)
        if (s->keys[i]) {
            size_t j = slot_of(&b, s->keys[i]);
            b.keys[j] = s->keys[i];
            b.vals[j] = s->vals[i];
        }
    b.n = s->n;
    free(s->keys);
    free(s->vals);
    *s = b;
    return 0;
}

int mt_strset_put(mt_strset *s, const char *key, int val) {
    if ((s->n + 1) * 2 > s->cap && grow(s)) return -1;
    size_t i = slot_of(s, key);
    if (!s->keys[i]) {
        s->keys[i] = key;
        s->n++;
    }
    s->vals[i] = val;
    return 0;
}

int mt_strset_get(const mt_strset *s, const char *key) {
    if (!s->cap) return -1;
    size_t i = slot_of(s, key);
    return s->keys[i] ? s->vals[i] : -1;
}

void mt_strset_free(mt_strset *s) {
    free(s->keys);
    free(s->vals);
    memset(s, 0, sizeof *s);
}
