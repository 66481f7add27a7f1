/* core: error reporting, allocation, files, element types, random numbers.
 * Everything else in libmtmi builds on these. */
#ifndef MT_CORE_H
#define MT_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "mtmi.h"

#define MT_MAX_RANK MTMI_MAX_RANK
#define MT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MT_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Records a one-line message for mtmi_last_error() on this thread and returns
 * the status, so callers write `return mt_fail(MTMI_ERR_IO, "...", ...)`. */
mtmi_status mt_fail(mtmi_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prepends context ("loading model.onnx: ") to the current message. */
mtmi_status mt_fail_context(mtmi_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mt_clear_error(void);

/* Allocation that reports failures through mt_fail.  NULL on failure. */
void *mt_alloc(size_t n);        /* zeroed */
void *mt_alloc_aligned(size_t n); /* 64-byte aligned, not zeroed; free() it */
void *mt_realloc(void *p, size_t n);
char *mt_strdup(const char *s);
/* Grows *arr (element size esz) so that index `need` fits. */
int mt_grow(void **arr, int *cap, int need, size_t esz);

/* Reads a whole file. */
mtmi_status mt_read_file(const char *path, uint8_t **data, size_t *size);
/* Writes a file atomically: to "<path>.tmp.<pid>" then rename, so a failed
 * write never leaves a partial file under the final name. */
mtmi_status mt_write_file_atomic(const char *path, const void *data, size_t size);
/* Opens "<path>.tmp.<pid>" for writing; mt_atomic_commit renames it (or
 * removes it when ok == 0). */
FILE *mt_atomic_open(const char *path, char *tmp_path, size_t tmp_cap);
mtmi_status mt_atomic_commit(FILE *f, const char *tmp_path, const char *path, int ok);

/* mkdir -p: creates path and its missing parents (0 on success). */
int mt_mkdirs(const char *path);

/* Memory planning shared by the backends: tensors with lifetimes [first,
 * last] (step indices) and sizes get offsets in one arena, greedily by size
 * (largest first, ties by first use): each at the lowest offset that no
 * already placed tensor with an overlapping lifetime occupies.  Reorders r
 * (sorts it), sets each off, returns the arena's size. */
typedef struct mt_live_range {
    int id;            /* the caller's tensor / buffer index */
    int first, last;
    size_t size, off;
} mt_live_range;
size_t mt_place_ranges(mt_live_range *r, int n);

/* Element types (ONNX codes). */
size_t mt_dtype_size(int dtype);            /* 0 for unsupported */
const char *mt_dtype_name(int dtype);

int64_t mt_numel(int rank, const int64_t *dims);
/* "1x3x224x224" into buf. */
const char *mt_shape_str(int rank, const int64_t *dims, char *buf, size_t cap);

/* IEEE half <-> float. */
float mt_half_to_float(uint16_t h);
uint16_t mt_float_to_half(float f);

/* Small seeded generator (splitmix64 + Box-Muller). */
typedef struct mt_rng { uint64_t s; } mt_rng;
void mt_rng_seed(mt_rng *r, uint64_t seed);
uint64_t mt_rng_next(mt_rng *r);
float mt_rng_uniform(mt_rng *r);   /* [0,1) */
float mt_rng_normal(mt_rng *r);

double mt_now_ms(void);

#endif
