/* json.h - a small JSON reader for the model configuration Triton hands the
 * backend (TRITONSERVER_MessageSerializeToJson).  A tree of values; bounded
 * nesting; strings unescaped to UTF-8.  Enough for a config, not a general
 * library: no streaming, numbers kept as double and as written. */
#ifndef MTMI_TRITON_JSON_H
#define MTMI_TRITON_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum { MTJ_NULL, MTJ_BOOL, MTJ_NUMBER, MTJ_STRING, MTJ_ARRAY, MTJ_OBJECT } mtj_type;

typedef struct mtj_value {
    mtj_type type;
    int boolean;
    double number;
    char *string;              /* MTJ_STRING; also the text of an MTJ_NUMBER */
    int n;                     /* MTJ_ARRAY / MTJ_OBJECT: how many items */
    struct mtj_value *items;   /* the items (for an object, the values) */
    char **keys;               /* MTJ_OBJECT: the keys, in order */
} mtj_value;

/* Parses text[0..len); 0, or -1 with a one-line message in err. */
int mtj_parse(const char *text, size_t len, mtj_value *out, char *err, size_t cap);
void mtj_free(mtj_value *v);
/* The member `key` of an object (NULL if v is not an object or lacks it). */
const mtj_value *mtj_get(const mtj_value *v, const char *key);
/* A string member, or NULL. */
const char *mtj_get_str(const mtj_value *v, const char *key);
/* An integer member written as a number or as a decimal string (protobuf's
 * JSON writes int64 either way); 0 if found, -1 if not or not an integer. */
int mtj_int(const mtj_value *v, int64_t *out);
int mtj_get_int(const mtj_value *v, const char *key, int64_t *out);

#endif
