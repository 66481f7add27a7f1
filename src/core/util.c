#include "core/core.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void *mt_alloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (!p) mt_fail(MTMI_ERR_NOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *mt_alloc_aligned(size_t n) {
    void *p = NULL;
    size_t r = (n + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, r ? r : 64) != 0) {
        mt_fail(MTMI_ERR_NOMEM, "out of memory allocating %zu bytes", n);
        return NULL;
    }
    return p;
}

void *mt_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) mt_fail(MTMI_ERR_NOMEM, "out of memory allocating %zu bytes", n);
    return q;
}

char *mt_strdup(const char *s) {
    if (!s) s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (!d) {
        mt_fail(MTMI_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(d, s, n);
    return d;
}

int mt_grow(void **arr, int *cap, int need, size_t esz) {
    if (need < *cap) return 0;
    int nc = *cap ? *cap : 16;
    while (nc <= need) nc *= 2;
    void *p = realloc(*arr, (size_t)nc * esz);
    if (!p) {
        mt_fail(MTMI_ERR_NOMEM, "out of memory");
        return -1;
    }
    memset((char *)p + (size_t)*cap * esz, 0, (size_t)(nc - *cap) * esz);
    *arr = p;
    *cap = nc;
    return 0;
}

int mt_mkdirs(const char *path) {
    char buf[4096];
    if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf) {
        errno = ENAMETOOLONG; /* never create a truncated path */
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    struct stat st;
    if (stat(buf, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) { /* an existing file of that name */
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

size_t mt_dtype_size(int t) {
    switch (t) {
    case MTMI_FLOAT: return 4;
    case MTMI_UINT8: return 1;
    case MTMI_INT8: return 1;
    case 4: return 2; /* uint16 */
    case 5: return 2; /* int16 */
    case MTMI_INT32: return 4;
    case MTMI_INT64: return 8;
    case MTMI_BOOL: return 1;
    case MTMI_FLOAT16: return 2;
    case MTMI_DOUBLE: return 8;
    case 12: return 4; /* uint32 */
    case 13: return 8; /* uint64 */
    case 16: return 2; /* bfloat16 */
    default: return 0;
    }
}

const char *mt_dtype_name(int t) {
    static const char *names[] = {"undefined", "float", "uint8", "int8", "uint16", "int16",
                                  "int32", "int64", "string", "bool", "float16", "double",
                                  "uint32", "uint64", "complex64", "complex128", "bfloat16"};
    if (t >= 0 && t < (int)MT_ARRAY_LEN(names)) return names[t];
    return "unknown";
}

int64_t mt_numel(int rank, const int64_t *dims) {
    /* Saturates instead of overflowing: corrupt shapes then fail the size
     * checks cleanly. */
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        if (__builtin_mul_overflow(n, dims[i], &n)) return INT64_MAX;
    return n;
}

const char *mt_shape_str(int rank, const int64_t *dims, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = 0;
    if (rank == 0) {
        snprintf(buf, cap, "scalar");
        return buf;
    }
    for (int i = 0; i < rank && o < cap; i++) {
        if (dims[i] < 0)
            o += snprintf(buf + o, cap - o, "%s?", i ? "x" : "");
        else
            o += snprintf(buf + o, cap - o, "%s%lld", i ? "x" : "", (long long)dims[i]);
    }
    return buf;
}

float mt_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal */
            float f = ldexpf((float)man, -24);
            return sign ? -f : f;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000 | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t mt_float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        int shift = 14 - exp;
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = (uint32_t)(exp << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* may carry into exp: fine */
    return (uint16_t)(sign | h);
}

void mt_rng_seed(mt_rng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ull + 1; }

uint64_t mt_rng_next(mt_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float mt_rng_uniform(mt_rng *r) { return (float)((mt_rng_next(r) >> 40) * (1.0 / 16777216.0)); }

float mt_rng_normal(mt_rng *r) {
    float u1 = mt_rng_uniform(r), u2 = mt_rng_uniform(r);
    if (u1 < 1e-7f) u1 = 1e-7f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
}

double mt_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* ------------------------------------------------------ memory planning */
static int by_size_desc(const void *a, const void *b) {
    const mt_live_range *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->first - y->first;
}

size_t mt_place_ranges(mt_live_range *r, int n) {
    qsort(r, n, sizeof *r, by_size_desc);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t off = 0;
        int moved = 1;
        while (moved) {
            moved = 0;
            for (int j = 0; j < i; j++) {
                if (r[j].last < r[i].first || r[i].last < r[j].first) continue;
                if (off < r[j].off + r[j].size && r[j].off < off + r[i].size) {
                    off = r[j].off + r[j].size;
                    moved = 1;
                }
            }
        }
        r[i].off = off;
        if (off + r[i].size > total) total = off + r[i].size;
    }
    return total;
}
