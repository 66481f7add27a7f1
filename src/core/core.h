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

/* ------------------------------------------------------ untrusted files
 * (files.c)  Every size computed from a file's contents goes through
 * mt_checked_bytes / mt_checked_mul; every file is opened by
 * mt_open_regular, which never blocks on a FIFO or device and accepts
 * regular files only. */

/* a * b into *out; -1 (out untouched) on overflow. */
int mt_checked_mul(size_t a, size_t b, size_t *out);
/* Bytes of a tensor: product of dims times esz; -1 if a dimension is
 * negative, rank is out of range or the product overflows. */
int mt_checked_bytes(int rank, const int64_t *dims, size_t esz, size_t *bytes);

/* Opens path for reading without blocking (O_NONBLOCK, then fstat on the
 * descriptor); fails with a one-line error unless it is a regular file.
 * The caller closes *fd. */
mtmi_status mt_open_regular(const char *path, int *fd, uint64_t *size);
/* Reads n bytes at off (EINTR and short reads handled; a file that ends
 * early is an error). */
mtmi_status mt_read_fd(int fd, const char *path, uint64_t off, void *dst, size_t n);
/* Reads a whole regular file (FIFO-safe: mt_open_regular). */
mtmi_status mt_read_file(const char *path, uint8_t **data, size_t *size);

/* "dir/name" into buf; an error instead of a truncated path when it does
 * not fit buf, PATH_MAX or (last component) NAME_MAX. */
mtmi_status mt_path_join(char *buf, size_t cap, const char *dir, const char *name);
/* realpath of dir/rel, required to lie inside realpath(dir) (symbolic links
 * followed; a name that merely contains ".." is fine).  rel must be
 * relative.  MTMI_ERR_IO when it does not exist (errno kept), MTMI_ERR_ARG
 * when it leaves the folder. */
mtmi_status mt_resolve_inside(const char *dir, const char *rel, char *out, size_t cap);

/* 1 if both paths exist and are the same file (device and inode: links and
 * other spellings of one file included). */
int mt_same_file(const char *a, const char *b);
/* Fails (one line) if out is one of the n existing inputs. */
mtmi_status mt_check_not_input(const char *out, const char *const *inputs, int n);

/* File names for n tensors ("<name><suffix>", e.g. ".npy"), distinct even
 * on a case-insensitive disk: characters that cannot be in a file name
 * (and a leading '.') become '_', names too long for a component are cut
 * and keep a hash; names
 * that needed no change keep theirs, the others get "_<index>" on a clash
 * (deterministic).  An error (naming both) if a clash remains. */
#define MT_NAME_CAP 256
mtmi_status mt_file_names(const char *const *names, int n, const char *suffix, char (*out)[MT_NAME_CAP]);

/* Content hash for cache keys (not cryptographic); chain by passing the
 * previous value as h. */
#define MT_HASH_SEED 0xcbf29ce484222325ull
uint64_t mt_hash64(uint64_t h, const void *data, size_t n);
/* s as a JSON string (quotes, backslashes, control characters and invalid
 * UTF-8 escaped). */
void mt_json_string(FILE *f, const char *s);
/* v as a JSON number with printf format fmt ("%.4f"), or null when it is
 * not finite (JSON has no NaN or infinity). */
void mt_json_number(FILE *f, const char *fmt, double v);
/* String -> int hash map (strset.c); keys are not copied and must outlive
 * the map.  Zero-initialize; put replaces an existing key's value. */
typedef struct mt_strset {
    const char **keys;
    int *vals;
    size_t cap, n;
} mt_strset;
int mt_strset_put(mt_strset *s, const char *key, int val); /* -1 out of memory */
int mt_strset_get(const mt_strset *s, const char *key);    /* -1 absent */
void mt_strset_free(mt_strset *s);

/* "1.50 GiB" (B, KiB, MiB, GiB, TiB) into buf. */
const char *mt_bytes_str(double bytes, char *buf, size_t cap);
/* Online CPUs (at least 1). */
int mt_cpu_count(void);

/* ------------------------------------------- atomic writes (tempfiles.c) */
/* Writes a file atomically: to "<path>.tmp.<pid>.<n>" then rename, so a
 * failed write never leaves a partial file under the final name. */
mtmi_status mt_write_file_atomic(const char *path, const void *data, size_t size);
/* Opens a new "<path>.tmp.<pid>.<n>" for writing (registered, see below);
 * mt_atomic_commit renames it into place (or removes it when ok == 0).
 * Thread-safe. */
FILE *mt_atomic_open(const char *path, char *tmp_path, size_t tmp_cap);
mtmi_status mt_atomic_commit(FILE *f, const char *tmp_path, const char *path, int ok);
/* The registry of temporary files that must not outlive the process:
 * mt_atomic_open registers, mt_atomic_commit unregisters; other code that
 * makes a temporary file (mkstemp) may register it too.  mt_temp_cleanup
 * removes every registered file; it is async-signal-safe (for a signal
 * handler) and refuses new temporaries afterwards. */
int mt_temp_register(const char *path);
void mt_temp_unregister(const char *path);
void mt_temp_cleanup(void);
int mt_temp_count(void); /* registered now (for tests) */

/* --------------------------------------------------- signals (signals.c)
 * For programs (the CLI), never called by the library: SIGINT, SIGTERM and
 * SIGHUP remove every registered temporary and exit with 128 + signal
 * (130, 143, 129).  graceful: the first signal only sets the flag that
 * mt_stop_requested returns (the signal number), for loops that finish the
 * unit in progress and then exit with 128 + it; a second one exits at once.
 * Signals ignored at start stay ignored. */
int mt_signals_install(int graceful);
void mt_signals_set_graceful(int on);
int mt_stop_requested(void);

/* mkdir -p: creates path and its missing parents (0 on success; -1 with
 * errno for a path too long or an existing file that is not a folder). */
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
