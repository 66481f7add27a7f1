/* CPU kernels for the elementwise operator family.
 *
 * Every broadcasting op goes through one driver (run_broadcast): it folds the
 * output shape and the inputs' strides into the fewest dimensions whose
 * innermost one is contiguous (stride 1) or broadcast (stride 0) for every
 * input, then calls a typed inner loop per row.  Inner loops are generated
 * per (op, element type) by macros, with the four stride cases spelled out so
 * that the compiler vectorizes each of them. */
#include "cpu/cpu.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/vmath.h"
#include "graph/ops.h"

/* The integer loops are instantiated for uint8 too, where tests like x < 0
 * are constant: that is intended, not a bug to warn about. */
#pragma GCC diagnostic ignored "-Wtype-limits"

/* An inner loop: o[i] = f(in[0][i*s[0]], in[1][i*s[1]], ...) for i < n, with
 * each s[k] 0 or 1. */
typedef void (*loop_fn)(void *o, const void *const *in, const int *s, int64_t n, const void *prm);

typedef struct unary_params {
    float alpha, beta, gamma;
} unary_params;

/* ----------------------------------------------------------- broadcasting */
#define MAX_BIN 3

typedef struct bcast {
    int rank;
    int64_t dims[MT_MAX_RANK];
    int64_t st[MAX_BIN][MT_MAX_RANK]; /* element strides of each input */
} bcast;

static void bcast_build(bcast *b, const mt_tview *out, const mt_tview *const *in, int nin) {
    int r = out->rank;
    int64_t st[MAX_BIN][MT_MAX_RANK], dims[MT_MAX_RANK];
    for (int d = 0; d < r; d++) dims[d] = out->dims[d];
    for (int k = 0; k < nin; k++) {
        int off = r - in[k]->rank;
        int64_t acc = 1;
        for (int d = r - 1; d >= 0; d--) {
            int64_t id = d - off >= 0 ? in[k]->dims[d - off] : 1;
            st[k][d] = id == 1 ? 0 : acc;
            acc *= id;
        }
    }
    /* Drop size-1 dimensions, then merge neighbours whose strides chain. */
    int nr = 0;
    for (int d = 0; d < r; d++) {
        if (dims[d] == 1) continue;
        if (nr > 0) {
            int chain = 1;
            for (int k = 0; k < nin; k++)
                if (b->st[k][nr - 1] != st[k][d] * dims[d]) chain = 0;
            if (chain) {
                b->dims[nr - 1] *= dims[d];
                for (int k = 0; k < nin; k++) b->st[k][nr - 1] = st[k][d];
                continue;
            }
        }
        b->dims[nr] = dims[d];
        for (int k = 0; k < nin; k++) b->st[k][nr] = st[k][d];
        nr++;
    }
    if (nr == 0) {
        b->dims[0] = 1;
        for (int k = 0; k < nin; k++) b->st[k][0] = 1;
        nr = 1;
    }
    b->rank = nr;
}

/* Runs fn over the broadcast of in[0..nin) into out.  Rows are the innermost
 * dimension; long rows are cut into chunks so that few rows still spread over
 * all threads. */
static void run_broadcast(const mt_tview *out, const mt_tview *const *in, int nin, loop_fn fn, const void *prm, int nthreads) {
    bcast b;
    bcast_build(&b, out, in, nin);
    int64_t total = mt_tview_numel(out);
    if (total == 0) return;
    int64_t inner = b.dims[b.rank - 1], outer = total / inner;
    int64_t chunk = inner;
    if (outer < (int64_t)nthreads * 4 && inner > 16384) chunk = 16384;
    int64_t nchunks = (inner + chunk - 1) / chunk, tasks = outer * nchunks;
    size_t esz[MAX_BIN], oesz = mt_dtype_size(out->dtype);
    int s[MAX_BIN];
    for (int k = 0; k < nin; k++) {
        esz[k] = mt_dtype_size(in[k]->dtype);
        s[k] = b.st[k][b.rank - 1] ? 1 : 0;
    }
#pragma omp parallel for num_threads(nthreads) if (total > 32768 && tasks > 1) schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t row = t / nchunks, c0 = (t % nchunks) * chunk;
        int64_t cnt = MT_MIN(chunk, inner - c0);
        const void *ptr[MAX_BIN];
        int64_t rem = row;
        int64_t off[MAX_BIN] = {0};
        for (int d = b.rank - 2; d >= 0; d--) {
            int64_t idx = rem % b.dims[d];
            rem /= b.dims[d];
            for (int k = 0; k < nin; k++) off[k] += idx * b.st[k][d];
        }
        for (int k = 0; k < nin; k++) ptr[k] = (const char *)in[k]->data + (size_t)(off[k] + c0 * s[k]) * esz[k];
        fn((char *)out->data + (size_t)(row * inner + c0) * oesz, ptr, s, cnt, prm);
    }
}

/* ------------------------------------------------------------ loop makers */
#define BIN_LOOP(name, T, TO, expr)                                                         \
    static void name(void *o_, const void *const *in, const int *s, int64_t n, const void *prm) { \
        const T *A = in[0], *B = in[1];                                                     \
        TO *o = o_;                                                                         \
        (void)prm;                                                                          \
        if (s[0] && s[1]) {                                                                 \
            for (int64_t i = 0; i < n; i++) {                                               \
                T a = A[i], b = B[i];                                                       \
                o[i] = (TO)(expr);                                                          \
            }                                                                               \
        } else if (s[0]) {                                                                  \
            T b = B[0];                                                                     \
            for (int64_t i = 0; i < n; i++) {                                               \
                T a = A[i];                                                                 \
                o[i] = (TO)(expr);                                                          \
            }                                                                               \
        } else if (s[1]) {                                                                  \
            T a = A[0];                                                                     \
            for (int64_t i = 0; i < n; i++) {                                               \
                T b = B[i];                                                                 \
                o[i] = (TO)(expr);                                                          \
            }                                                                               \
        } else {                                                                            \
            T a = A[0], b = B[0];                                                           \
            TO r = (TO)(expr);                                                              \
            for (int64_t i = 0; i < n; i++) o[i] = r;                                       \
        }                                                                                   \
    }

/* One op over the six arithmetic element types: float expression ef, integer
 * expression ei (which must guard division by zero: integers trap). */
#define BIN_ARITH(op, ef, ei)                       \
    BIN_LOOP(op##_f32, float, float, ef)            \
    BIN_LOOP(op##_f64, double, double, ef)          \
    BIN_LOOP(op##_i32, int32_t, int32_t, ei)        \
    BIN_LOOP(op##_i64, int64_t, int64_t, ei)        \
    BIN_LOOP(op##_i8, int8_t, int8_t, ei)           \
    BIN_LOOP(op##_u8, uint8_t, uint8_t, ei)

#define BIN_CMP(op, e)                              \
    BIN_LOOP(op##_f32, float, uint8_t, e)           \
    BIN_LOOP(op##_f64, double, uint8_t, e)          \
    BIN_LOOP(op##_i32, int32_t, uint8_t, e)         \
    BIN_LOOP(op##_i64, int64_t, uint8_t, e)         \
    BIN_LOOP(op##_i8, int8_t, uint8_t, e)           \
    BIN_LOOP(op##_u8, uint8_t, uint8_t, e)

static inline int64_t ipow(int64_t a, int64_t b) {
    if (b < 0) return a == 1 ? 1 : (a == -1 ? (b & 1 ? -1 : 1) : 0);
    uint64_t r = 1, x = (uint64_t)a;
    while (b) {
        if (b & 1) r *= x;
        x *= x;
        b >>= 1;
    }
    return (int64_t)r;
}

/* b == -1 is split off because INT_MIN / -1 traps on x86. */
#define IDIV(a, b) ((b) == 0 ? 0 : ((b) == -1 ? (int64_t)(0 - (uint64_t)(a)) : (a) / (b)))

/* Integer arithmetic wraps (through uint64_t) instead of overflowing, which
 * C leaves undefined: shape arithmetic can meet INT64_MAX sentinels. */
#define WRAP(op, a, b) ((uint64_t)(a) op (uint64_t)(b))
BIN_ARITH(add, a + b, WRAP(+, a, b))
BIN_ARITH(sub, a - b, WRAP(-, a, b))
BIN_ARITH(mul, a * b, WRAP(*, a, b))
BIN_ARITH(div, a / b, IDIV(a, b))
BIN_ARITH(max, a > b ? a : b, a > b ? a : b)
BIN_ARITH(min, a < b ? a : b, a < b ? a : b)
/* Mod with fmod=0 takes the divisor's sign (Python's %), with fmod=1 the
 * dividend's (C's fmod and %).  Divisors 0 and -1 give 0: x86 traps on
 * x % 0 and on INT_MIN % -1. */
#define IMOD(a, b) ((b) == 0 || (b) == -1 ? 0 : ((a) % (b) != 0 && (((a) % (b) < 0) != ((b) < 0)) ? (a) % (b) + (b) : (a) % (b)))
#define IFMOD(a, b) ((b) == 0 || (b) == -1 ? 0 : (a) % (b))
static inline double float_mod(double a, double b) {
    double r = fmod(a, b);
    return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
}
BIN_ARITH(mod, float_mod(a, b), IMOD(a, b))
BIN_ARITH(fmod, fmodf(a, b), IFMOD(a, b))
BIN_ARITH(prelu, a < 0 ? a * b : a, a < 0 ? WRAP(*, a, b) : (uint64_t)a)
BIN_LOOP(pow_f32, float, float, powf(a, b))
BIN_LOOP(pow_f64, double, double, pow(a, b))
BIN_LOOP(pow_i32, int32_t, int32_t, ipow(a, b))
BIN_LOOP(pow_i64, int64_t, int64_t, ipow(a, b))
BIN_LOOP(pow_i8, int8_t, int8_t, ipow(a, b))
BIN_LOOP(pow_u8, uint8_t, uint8_t, ipow(a, b))
BIN_CMP(eq, a == b)
BIN_CMP(lt, a < b)
BIN_CMP(gt, a > b)
BIN_CMP(le, a <= b)
BIN_CMP(ge, a >= b)
/* Bitwise ops: the four integer types only. */
#define BIN_INT(op, e)                              \
    BIN_LOOP(op##_i32, int32_t, int32_t, e)         \
    BIN_LOOP(op##_i64, int64_t, int64_t, e)         \
    BIN_LOOP(op##_i8, int8_t, int8_t, e)            \
    BIN_LOOP(op##_u8, uint8_t, uint8_t, e)
BIN_INT(bitand, a & b)
BIN_INT(bitor, a | b)
BIN_INT(bitxor, a ^ b)
BIN_LOOP(and_b, uint8_t, uint8_t, a && b)
BIN_LOOP(or_b, uint8_t, uint8_t, a || b)
BIN_LOOP(xor_b, uint8_t, uint8_t, (a != 0) != (b != 0))

typedef struct typed_loops {
    const char *op;
    loop_fn f32, f64, i32, i64, i8, u8, b;
} typed_loops;

#define ALL6(p) .f32 = p##_f32, .f64 = p##_f64, .i32 = p##_i32, .i64 = p##_i64, .i8 = p##_i8, .u8 = p##_u8

static const typed_loops g_binary[] = {
    {.op = "Add", ALL6(add)},
    {.op = "Sum", ALL6(add)},
    {.op = "Mean", ALL6(add)},
    {.op = "Sub", ALL6(sub)},
    {.op = "Mul", ALL6(mul)},
    {.op = "Div", ALL6(div)},
    {.op = "Max", ALL6(max)},
    {.op = "Min", ALL6(min)},
    {.op = "Mod", ALL6(mod)},
    {.op = "ModF", ALL6(fmod)}, /* Mod with fmod=1 */
    {.op = "PRelu", ALL6(prelu)},
    {.op = "BitwiseAnd", .i32 = bitand_i32, .i64 = bitand_i64, .i8 = bitand_i8, .u8 = bitand_u8},
    {.op = "BitwiseOr", .i32 = bitor_i32, .i64 = bitor_i64, .i8 = bitor_i8, .u8 = bitor_u8},
    {.op = "BitwiseXor", .i32 = bitxor_i32, .i64 = bitxor_i64, .i8 = bitxor_i8, .u8 = bitxor_u8},
    {.op = "Pow", ALL6(pow)},
    {.op = "Equal", ALL6(eq), .b = eq_u8},
    {.op = "Less", ALL6(lt), .b = lt_u8},
    {.op = "Greater", ALL6(gt), .b = gt_u8},
    {.op = "LessOrEqual", ALL6(le), .b = le_u8},
    {.op = "GreaterOrEqual", ALL6(ge), .b = ge_u8},
    {.op = "And", .b = and_b},
    {.op = "Or", .b = or_b},
    {.op = "Xor", .b = xor_b},
};

static loop_fn pick_loop(const typed_loops *tab, size_t count, const char *op, int dtype) {
    for (size_t i = 0; i < count; i++) {
        if (strcmp(tab[i].op, op)) continue;
        switch (dtype) {
        case MTMI_FLOAT: return tab[i].f32;
        case MTMI_DOUBLE: return tab[i].f64;
        case MTMI_INT32: return tab[i].i32;
        case MTMI_INT64: return tab[i].i64;
        case MTMI_INT8: return tab[i].i8;
        case MTMI_UINT8: return tab[i].u8;
        case MTMI_BOOL: return tab[i].b;
        default: return NULL;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ conversion */
static int is_int_like(int t) {
    return t == MTMI_INT64 || t == MTMI_INT32 || t == MTMI_INT8 || t == MTMI_UINT8 || t == MTMI_BOOL;
}

static inline int64_t read_int(const void *p, int t, int64_t i) {
    switch (t) {
    case MTMI_INT64: return ((const int64_t *)p)[i];
    case MTMI_INT32: return ((const int32_t *)p)[i];
    case MTMI_INT8: return ((const int8_t *)p)[i];
    default: return ((const uint8_t *)p)[i]; /* uint8, bool */
    }
}

static inline double read_float(const void *p, int t, int64_t i) {
    switch (t) {
    case MTMI_FLOAT: return ((const float *)p)[i];
    case MTMI_DOUBLE: return ((const double *)p)[i];
    default: return mt_half_to_float(((const uint16_t *)p)[i]);
    }
}

/* Float to integer as numpy's astype does on x86: truncation; NaN and values
 * out of int64's range (undefined behaviour in C) become 0 / the bound. */
static inline int64_t float_to_int(double v) {
    if (v != v) return 0;
    if (v >= 9.2233720368547758e18) return INT64_MAX;
    if (v <= -9.2233720368547758e18) return INT64_MIN;
    return (int64_t)v;
}

static void write_int(void *p, int t, int64_t i, int64_t v) {
    switch (t) {
    case MTMI_INT64: ((int64_t *)p)[i] = v; break;
    case MTMI_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case MTMI_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
    case MTMI_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case MTMI_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    case MTMI_FLOAT: ((float *)p)[i] = (float)v; break;
    case MTMI_DOUBLE: ((double *)p)[i] = (double)v; break;
    case MTMI_FLOAT16: ((uint16_t *)p)[i] = mt_float_to_half((float)v); break;
    }
}

static void write_float(void *p, int t, int64_t i, double v) {
    switch (t) {
    case MTMI_FLOAT: ((float *)p)[i] = (float)v; break;
    case MTMI_DOUBLE: ((double *)p)[i] = v; break;
    case MTMI_FLOAT16: ((uint16_t *)p)[i] = mt_float_to_half((float)v); break;
    case MTMI_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: write_int(p, t, i, float_to_int(v)); break;
    }
}

/* Converts n elements between any two of the supported element types. */
static void convert(void *dst, int dt, const void *src, int st, int64_t n, int nthreads) {
    if (dt == st) {
        memcpy(dst, src, (size_t)n * mt_dtype_size(dt));
        return;
    }
    if (st == MTMI_FLOAT && dt == MTMI_INT64) { /* the common index cast, kept tight */
#pragma omp parallel for num_threads(nthreads) if (n > 65536)
        for (int64_t i = 0; i < n; i++) ((int64_t *)dst)[i] = float_to_int(((const float *)src)[i]);
        return;
    }
    if (is_int_like(st)) {
#pragma omp parallel for num_threads(nthreads) if (n > 65536)
        for (int64_t i = 0; i < n; i++) write_int(dst, dt, i, read_int(src, st, i));
    } else {
#pragma omp parallel for num_threads(nthreads) if (n > 65536)
        for (int64_t i = 0; i < n; i++) write_float(dst, dt, i, read_float(src, st, i));
    }
}

/* --------------------------------------------------------------- kernels */
static mtmi_status k_binary(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                            int nout, mt_cpu_ctx *ctx) {
    const char *op = n->op;
    if (!strcmp(op, "Mod") && mt_attr_int(n, "fmod", 0)) op = "ModF";
    loop_fn fn = pick_loop(g_binary, MT_ARRAY_LEN(g_binary), op, in[0].dtype);
    if (!fn) return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "element type %s is not supported", mt_dtype_name(in[0].dtype));
    const mt_tview *ins[2] = {&in[0], &in[1]};
    mt_tview conv = in[1];
    void *tmp = NULL;
    if (in[1].dtype != in[0].dtype) { /* Pow with an exponent of another type */
        int64_t cnt = mt_tview_numel(&in[1]);
        tmp = malloc((size_t)(cnt ? cnt : 1) * mt_dtype_size(in[0].dtype));
        if (!tmp) return mt_kernel_fail(g, n, MTMI_ERR_NOMEM, "out of memory");
        convert(tmp, in[0].dtype, in[1].data, in[1].dtype, cnt, 1);
        conv.data = tmp;
        conv.dtype = in[0].dtype;
        ins[1] = &conv;
    }
    run_broadcast(&out[0], ins, 2, fn, NULL, ctx->nthreads);
    free(tmp);
    return MTMI_OK;
}

/* Max, Min, Sum, Mean over any number of inputs: folded pairwise into the
 * output, which always has the full broadcast shape. */
static mtmi_status k_variadic(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                              int nout, mt_cpu_ctx *ctx) {
    loop_fn fn = pick_loop(g_binary, MT_ARRAY_LEN(g_binary), n->op, in[0].dtype);
    if (!fn) return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "element type %s is not supported", mt_dtype_name(in[0].dtype));
    int cnt = 0;
    const mt_tview *acc = NULL;
    for (int i = 0; i < nin; i++) {
        if (!in[i].data && mt_tview_numel(&in[i]) != 0) continue;
        if (!acc) {
            acc = &in[i];
            cnt = 1;
            continue;
        }
        const mt_tview *ins[2] = {acc, &in[i]};
        run_broadcast(&out[0], ins, 2, fn, NULL, ctx->nthreads);
        acc = &out[0];
        cnt++;
    }
    if (acc != &out[0]) { /* one input: broadcast copy (max with itself) */
        const mt_tview *ins[2] = {acc, acc};
        run_broadcast(&out[0], ins, 2, pick_loop(g_binary, MT_ARRAY_LEN(g_binary), "Max", in[0].dtype), NULL, ctx->nthreads);
    }
    if (!strcmp(n->op, "Mean") && cnt > 1) {
        int64_t total = mt_tview_numel(&out[0]);
        if (out[0].dtype == MTMI_FLOAT)
            for (int64_t i = 0; i < total; i++) ((float *)out[0].data)[i] /= (float)cnt;
        else if (out[0].dtype == MTMI_DOUBLE)
            for (int64_t i = 0; i < total; i++) ((double *)out[0].data)[i] /= cnt;
        else
            for (int64_t i = 0; i < total; i++) write_int(out[0].data, out[0].dtype, i, read_int(out[0].data, out[0].dtype, i) / cnt);
    }
    return MTMI_OK;
}

static void where_loop(void *o, const void *const *in, const int *s, int64_t n, const void *prm) {
    size_t esz = *(const size_t *)prm;
    const uint8_t *c = in[0];
    switch (esz) {
#define WHERE_CASE(SZ, T)                                                                         \
    case SZ: {                                                                                    \
        const T *x = in[1], *y = in[2];                                                           \
        T *r = o;                                                                                 \
        for (int64_t i = 0; i < n; i++) r[i] = c[i * s[0]] ? x[i * s[1]] : y[i * s[2]];           \
        break;                                                                                    \
    }
        WHERE_CASE(1, uint8_t)
        WHERE_CASE(2, uint16_t)
        WHERE_CASE(4, uint32_t)
        WHERE_CASE(8, uint64_t)
#undef WHERE_CASE
    }
}

static mtmi_status k_where(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                           int nout, mt_cpu_ctx *ctx) {
    size_t esz = mt_dtype_size(out[0].dtype);
    if (esz != 1 && esz != 2 && esz != 4 && esz != 8)
        return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "element type %s is not supported", mt_dtype_name(out[0].dtype));
    const mt_tview *ins[3] = {&in[0], &in[1], &in[2]};
    run_broadcast(&out[0], ins, 3, where_loop, &esz, ctx->nthreads);
    return MTMI_OK;
}

/* Unary float maps: x is the element, p the node's parameters. */
#define UN_LOOP(name, T, expr)                                                                      \
    static void name(void *o_, const void *const *in, const int *s, int64_t n, const void *prm_) {   \
        const T *X = in[0];                                                                         \
        T *o = o_;                                                                                  \
        const unary_params *p = prm_;                                                               \
        (void)p;                                                                                    \
        for (int64_t i = 0; i < n; i++) {                                                           \
            T x = X[i];                                                                             \
            o[i] = (T)(expr);                                                                       \
        }                                                                                           \
    }
#define UN_FLOAT(op, ef, ed) UN_LOOP(op##_f32, float, ef) UN_LOOP(op##_f64, double, ed)
#define UN_INT(op, e)                                                                               \
    UN_LOOP(op##_i32, int32_t, e) UN_LOOP(op##_i64, int64_t, e) UN_LOOP(op##_i8, int8_t, e)          \
        UN_LOOP(op##_u8, uint8_t, e)

UN_LOOP(sqrt_f64, double, sqrt(x))
UN_FLOAT(erf, erff(x), erf(x))
UN_FLOAT(relu, x > 0 ? x : 0, x > 0 ? x : 0)
UN_LOOP(sigmoid_f64, double, 1.0 / (1.0 + exp(-x)))

/* Sqrt and Sigmoid on floats are spelled out in AVX2: the compiler leaves
 * sqrtf's errno branch and expf's call in the loop otherwise. */
static void sqrt_f32(void *o_, const void *const *in, const int *s, int64_t n, const void *prm) {
    const float *x = in[0];
    float *o = o_;
    int64_t i = 0;
#ifdef __AVX2__
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, _mm256_sqrt_ps(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++) o[i] = sqrtf(x[i]);
}

/* Exp: the vector exp where all 8 lanes lie in its exact range, expf for
 * the rest (overflow to inf, underflow to 0 and denormals, NaN). */
static void exp_f32(void *o_, const void *const *in, const int *s, int64_t n, const void *prm) {
    const float *x = in[0];
    float *o = o_;
    int64_t i = 0;
#ifdef __AVX2__
    const __m256 lo = _mm256_set1_ps(MT_EXP_LO), hi = _mm256_set1_ps(MT_EXP_HI);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 inside = _mm256_and_ps(_mm256_cmp_ps(v, lo, _CMP_GE_OQ), _mm256_cmp_ps(v, hi, _CMP_LE_OQ));
        if (_mm256_movemask_ps(inside) == 0xff) _mm256_storeu_ps(o + i, mt_vexp8(v));
        else
            for (int k = 0; k < 8; k++) o[i + k] = expf(x[i + k]);
    }
#endif
    for (; i < n; i++) o[i] = expf(x[i]);
}

static void sigmoid_f32(void *o_, const void *const *in, const int *s, int64_t n, const void *prm) {
    const float *x = in[0];
    float *o = o_;
    int64_t i = 0;
#ifdef __AVX2__
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, mt_vsigmoid8(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++) o[i] = mt_vsigmoidf(x[i]);
}
UN_FLOAT(tanh, tanhf(x), tanh(x))
UN_LOOP(exp_f64, double, exp(x))
UN_FLOAT(log, logf(x), log(x))
UN_FLOAT(neg, -x, -x)
UN_FLOAT(abs, fabsf(x), fabs(x))
UN_FLOAT(sign, (x > 0) - (x < 0), (x > 0) - (x < 0))
UN_FLOAT(recip, 1.0f / x, 1.0 / x)
UN_FLOAT(floor, floorf(x), floor(x))
UN_FLOAT(ceil, ceilf(x), ceil(x))
UN_FLOAT(round, nearbyintf(x), nearbyint(x))
UN_FLOAT(sin, sinf(x), sin(x))
UN_FLOAT(cos, cosf(x), cos(x))
UN_FLOAT(softplus, x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)), x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)))
UN_FLOAT(elu, x < 0 ? p->alpha * (expf(x) - 1) : x, x < 0 ? p->alpha * (exp(x) - 1) : x)
UN_FLOAT(selu, x > 0 ? p->gamma * x : p->gamma * (p->alpha * expf(x) - p->alpha),
         x > 0 ? p->gamma * x : p->gamma * (p->alpha * exp(x) - p->alpha))
UN_FLOAT(leaky, x < 0 ? p->alpha * x : x, x < 0 ? p->alpha * x : x)
UN_FLOAT(hsig, fmaxf(0.f, fminf(1.f, p->alpha * x + p->beta)), fmax(0., fmin(1., p->alpha * x + p->beta)))
UN_FLOAT(hswish, x * fmaxf(0.f, fminf(1.f, x / 6.f + 0.5f)), x * fmax(0., fmin(1., x / 6. + 0.5)))
UN_FLOAT(celu, x > 0 ? x : p->alpha * (expf(x / p->alpha) - 1), x > 0 ? x : p->alpha * (exp(x / p->alpha) - 1))
UN_FLOAT(softsign, x / (1 + fabsf(x)), x / (1 + fabs(x)))
UN_FLOAT(threlu, x > p->alpha ? x : 0, x > p->alpha ? x : 0)
UN_FLOAT(shrink, x < -p->beta ? x + p->alpha : (x > p->beta ? x - p->alpha : 0),
         x < -p->beta ? x + p->alpha : (x > p->beta ? x - p->alpha : 0))
UN_FLOAT(mish, x * tanhf(x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x))), x * tanh(x > 0 ? x + log1p(exp(-x)) : log1p(exp(x))))
UN_FLOAT(swish, x / (1 + expf(-p->alpha * x)), x / (1 + exp(-p->alpha * x)))
/* Gelu: beta = 1 selects the tanh approximation */
UN_FLOAT(gelu, p->beta != 0 ? 0.5f * x * (1 + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))) : 0.5f * x * (1 + erff(x * 0.7071067811865476f)),
         p->beta != 0 ? 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) : 0.5 * x * (1 + erf(x * 0.7071067811865476)))
UN_FLOAT(tan, tanf(x), tan(x))
UN_FLOAT(asin, asinf(x), asin(x))
UN_FLOAT(acos, acosf(x), acos(x))
UN_FLOAT(atan, atanf(x), atan(x))
UN_FLOAT(sinh, sinhf(x), sinh(x))
UN_FLOAT(cosh, coshf(x), cosh(x))
UN_FLOAT(asinh, asinhf(x), asinh(x))
UN_FLOAT(acosh, acoshf(x), acosh(x))
UN_FLOAT(atanh, atanhf(x), atanh(x))
UN_INT(neg, 0 - (uint64_t)x)
UN_INT(abs, x < 0 ? 0 - (uint64_t)x : (uint64_t)x)
UN_INT(relu, x > 0 ? x : 0)
UN_INT(sign, (x > 0) - (x < 0))
UN_INT(bitnot, ~x)

static const typed_loops g_unary[] = {
    {.op = "Sqrt", .f32 = sqrt_f32, .f64 = sqrt_f64},
    {.op = "Erf", .f32 = erf_f32, .f64 = erf_f64},
    {.op = "Relu", .f32 = relu_f32, .f64 = relu_f64, .i32 = relu_i32, .i64 = relu_i64, .i8 = relu_i8, .u8 = relu_u8},
    {.op = "Sigmoid", .f32 = sigmoid_f32, .f64 = sigmoid_f64},
    {.op = "Tanh", .f32 = tanh_f32, .f64 = tanh_f64},
    {.op = "Exp", .f32 = exp_f32, .f64 = exp_f64},
    {.op = "Log", .f32 = log_f32, .f64 = log_f64},
    {.op = "Neg", .f32 = neg_f32, .f64 = neg_f64, .i32 = neg_i32, .i64 = neg_i64, .i8 = neg_i8, .u8 = neg_u8},
    {.op = "Abs", .f32 = abs_f32, .f64 = abs_f64, .i32 = abs_i32, .i64 = abs_i64, .i8 = abs_i8, .u8 = abs_u8},
    {.op = "BitwiseNot", .i32 = bitnot_i32, .i64 = bitnot_i64, .i8 = bitnot_i8, .u8 = bitnot_u8},
    {.op = "Sign", .f32 = sign_f32, .f64 = sign_f64, .i32 = sign_i32, .i64 = sign_i64, .i8 = sign_i8, .u8 = sign_u8},
    {.op = "Reciprocal", .f32 = recip_f32, .f64 = recip_f64},
    {.op = "Floor", .f32 = floor_f32, .f64 = floor_f64},
    {.op = "Ceil", .f32 = ceil_f32, .f64 = ceil_f64},
    {.op = "Round", .f32 = round_f32, .f64 = round_f64},
    {.op = "Sin", .f32 = sin_f32, .f64 = sin_f64},
    {.op = "Cos", .f32 = cos_f32, .f64 = cos_f64},
    {.op = "Softplus", .f32 = softplus_f32, .f64 = softplus_f64},
    {.op = "Elu", .f32 = elu_f32, .f64 = elu_f64},
    {.op = "Selu", .f32 = selu_f32, .f64 = selu_f64},
    {.op = "LeakyRelu", .f32 = leaky_f32, .f64 = leaky_f64},
    {.op = "HardSigmoid", .f32 = hsig_f32, .f64 = hsig_f64},
    {.op = "HardSwish", .f32 = hswish_f32, .f64 = hswish_f64},
    {.op = "Celu", .f32 = celu_f32, .f64 = celu_f64},
    {.op = "Softsign", .f32 = softsign_f32, .f64 = softsign_f64},
    {.op = "ThresholdedRelu", .f32 = threlu_f32, .f64 = threlu_f64},
    {.op = "Shrink", .f32 = shrink_f32, .f64 = shrink_f64},
    {.op = "Mish", .f32 = mish_f32, .f64 = mish_f64},
    {.op = "Swish", .f32 = swish_f32, .f64 = swish_f64},
    {.op = "Gelu", .f32 = gelu_f32, .f64 = gelu_f64},
    {.op = "Tan", .f32 = tan_f32, .f64 = tan_f64},
    {.op = "Asin", .f32 = asin_f32, .f64 = asin_f64},
    {.op = "Acos", .f32 = acos_f32, .f64 = acos_f64},
    {.op = "Atan", .f32 = atan_f32, .f64 = atan_f64},
    {.op = "Sinh", .f32 = sinh_f32, .f64 = sinh_f64},
    {.op = "Cosh", .f32 = cosh_f32, .f64 = cosh_f64},
    {.op = "Asinh", .f32 = asinh_f32, .f64 = asinh_f64},
    {.op = "Acosh", .f32 = acosh_f32, .f64 = acosh_f64},
    {.op = "Atanh", .f32 = atanh_f32, .f64 = atanh_f64},
};

static mtmi_status k_unary(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                           int nout, mt_cpu_ctx *ctx) {
    loop_fn fn = pick_loop(g_unary, MT_ARRAY_LEN(g_unary), n->op, in[0].dtype);
    if (!fn) return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "element type %s is not supported", mt_dtype_name(in[0].dtype));
    unary_params p = {0};
    if (!strcmp(n->op, "LeakyRelu")) p.alpha = mt_attr_float(n, "alpha", 0.01f);
    else if (!strcmp(n->op, "Elu")) p.alpha = mt_attr_float(n, "alpha", 1.0f);
    else if (!strcmp(n->op, "HardSigmoid")) {
        p.alpha = mt_attr_float(n, "alpha", 0.2f);
        p.beta = mt_attr_float(n, "beta", 0.5f);
    } else if (!strcmp(n->op, "Selu")) {
        p.alpha = mt_attr_float(n, "alpha", 1.67326319217681884765625f);
        p.gamma = mt_attr_float(n, "gamma", 1.05070102214813232421875f);
    } else if (!strcmp(n->op, "Celu") || !strcmp(n->op, "ThresholdedRelu") || !strcmp(n->op, "Swish")) {
        p.alpha = mt_attr_float(n, "alpha", 1.0f);
    } else if (!strcmp(n->op, "Shrink")) {
        p.alpha = mt_attr_float(n, "bias", 0.0f);
        p.beta = mt_attr_float(n, "lambd", 0.5f);
    } else if (!strcmp(n->op, "Gelu")) {
        const char *approx = mt_attr_string(n, "approximate", "none");
        if (strcmp(approx, "none") && strcmp(approx, "tanh"))
            return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "approximate='%s' is not supported", approx);
        p.beta = !strcmp(approx, "tanh");
    }
    const mt_tview *ins[1] = {&in[0]};
    run_broadcast(&out[0], ins, 1, fn, &p, ctx->nthreads);
    return MTMI_OK;
}

/* IsNaN, IsInf: float in, bool out. */
static mtmi_status k_isnan_isinf(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin,
                                 mt_tview *out, int nout, mt_cpu_ctx *ctx) {
    int64_t cnt = mt_tview_numel(&in[0]);
    uint8_t *y = out[0].data;
    int isnan_op = !strcmp(n->op, "IsNaN");
    int neg = (int)mt_attr_int(n, "detect_negative", 1), pos = (int)mt_attr_int(n, "detect_positive", 1);
    for (int64_t i = 0; i < cnt; i++) {
        double v = in[0].dtype == MTMI_FLOAT ? ((const float *)in[0].data)[i] : ((const double *)in[0].data)[i];
        y[i] = isnan_op ? v != v : ((v == INFINITY && pos) || (v == -INFINITY && neg));
    }
    return MTMI_OK;
}

static mtmi_status k_not(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                         int nout, mt_cpu_ctx *ctx) {
    int64_t cnt = mt_tview_numel(&in[0]);
    const uint8_t *x = in[0].data;
    uint8_t *y = out[0].data;
    for (int64_t i = 0; i < cnt; i++) y[i] = !x[i];
    return MTMI_OK;
}

/* Clip: bounds from attributes (opset < 11) or optional scalar inputs. */
#define CLIP_CASE(DT, T)                                                                   \
    case DT: {                                                                             \
        const T *x = in[0].data;                                                           \
        T *y = out[0].data;                                                                \
        T lo = have_lo ? (T)lo_v : 0, hi = have_hi ? (T)hi_v : 0;                         \
        if (nin > 1 && in[1].data) lo = *(const T *)in[1].data;                            \
        if (nin > 2 && in[2].data) hi = *(const T *)in[2].data;                            \
        int use_lo = have_lo || (nin > 1 && in[1].data), use_hi = have_hi || (nin > 2 && in[2].data); \
        _Pragma("omp parallel for num_threads(ctx->nthreads) if (cnt > 65536)")            \
        for (int64_t i = 0; i < cnt; i++) {                                                \
            T v = x[i];                                                                    \
            if (use_lo && v < lo) v = lo;                                                  \
            if (use_hi && v > hi) v = hi;                                                  \
            y[i] = v;                                                                      \
        }                                                                                  \
        break;                                                                             \
    }

static mtmi_status k_clip(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                          int nout, mt_cpu_ctx *ctx) {
    int64_t cnt = mt_tview_numel(&in[0]);
    int have_lo = 0, have_hi = 0;
    double lo_v = 0, hi_v = 0;
    if (g->opset < 11) { /* attributes default to the float range */
        have_lo = have_hi = 1;
        lo_v = mt_attr_float(n, "min", -3.402823466e38f);
        hi_v = mt_attr_float(n, "max", 3.402823466e38f);
    }
    switch (in[0].dtype) {
        CLIP_CASE(MTMI_FLOAT, float)
        CLIP_CASE(MTMI_DOUBLE, double)
        CLIP_CASE(MTMI_INT32, int32_t)
        CLIP_CASE(MTMI_INT64, int64_t)
        CLIP_CASE(MTMI_INT8, int8_t)
        CLIP_CASE(MTMI_UINT8, uint8_t)
    default: return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "element type %s is not supported", mt_dtype_name(in[0].dtype));
    }
    return MTMI_OK;
}

static mtmi_status k_cast(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                          int nout, mt_cpu_ctx *ctx) {
    convert(out[0].data, out[0].dtype, in[0].data, in[0].dtype, mt_tview_numel(&in[0]), ctx->nthreads);
    return MTMI_OK;
}

const mt_cpu_kernel mt_kernels_elementwise[] = {
    {"Add", "", k_binary, NULL, NULL, NULL, 0},
    {"Sub", "", k_binary, NULL, NULL, NULL, 0},
    {"Mul", "", k_binary, NULL, NULL, NULL, 0},
    {"Div", "", k_binary, NULL, NULL, NULL, 0},
    {"Pow", "", k_binary, NULL, NULL, NULL, 0},
    {"Equal", "", k_binary, NULL, NULL, NULL, 0},
    {"Less", "", k_binary, NULL, NULL, NULL, 0},
    {"Greater", "", k_binary, NULL, NULL, NULL, 0},
    {"LessOrEqual", "", k_binary, NULL, NULL, NULL, 0},
    {"GreaterOrEqual", "", k_binary, NULL, NULL, NULL, 0},
    {"And", "", k_binary, NULL, NULL, NULL, 0},
    {"Or", "", k_binary, NULL, NULL, NULL, 0},
    {"Xor", "", k_binary, NULL, NULL, NULL, 0},
    {"Not", "", k_not, NULL, NULL, NULL, 0},
    {"IsNaN", "", k_isnan_isinf, NULL, NULL, NULL, 0},
    {"IsInf", "", k_isnan_isinf, NULL, NULL, NULL, 0},
    {"Mod", "", k_binary, NULL, NULL, NULL, 0},
    {"PRelu", "", k_binary, NULL, NULL, NULL, 0},
    {"BitwiseAnd", "", k_binary, NULL, NULL, NULL, 0},
    {"BitwiseOr", "", k_binary, NULL, NULL, NULL, 0},
    {"BitwiseXor", "", k_binary, NULL, NULL, NULL, 0},
    {"BitwiseNot", "", k_unary, NULL, NULL, NULL, 0},
    {"Max", "", k_variadic, NULL, NULL, NULL, 0},
    {"Min", "", k_variadic, NULL, NULL, NULL, 0},
    {"Sum", "", k_variadic, NULL, NULL, NULL, 0},
    {"Mean", "", k_variadic, NULL, NULL, NULL, 0},
    {"Where", "", k_where, NULL, NULL, NULL, 0},
    {"Sqrt", "", k_unary, NULL, NULL, NULL, 0},
    {"Erf", "", k_unary, NULL, NULL, NULL, 0},
    {"Relu", "", k_unary, NULL, NULL, NULL, 0},
    {"Sigmoid", "", k_unary, NULL, NULL, NULL, 0},
    {"Tanh", "", k_unary, NULL, NULL, NULL, 0},
    {"Exp", "", k_unary, NULL, NULL, NULL, 0},
    {"Log", "", k_unary, NULL, NULL, NULL, 0},
    {"Neg", "", k_unary, NULL, NULL, NULL, 0},
    {"Abs", "", k_unary, NULL, NULL, NULL, 0},
    {"Sign", "", k_unary, NULL, NULL, NULL, 0},
    {"Reciprocal", "", k_unary, NULL, NULL, NULL, 0},
    {"Floor", "", k_unary, NULL, NULL, NULL, 0},
    {"Ceil", "", k_unary, NULL, NULL, NULL, 0},
    {"Round", "", k_unary, NULL, NULL, NULL, 0},
    {"Sin", "", k_unary, NULL, NULL, NULL, 0},
    {"Cos", "", k_unary, NULL, NULL, NULL, 0},
    {"Softplus", "", k_unary, NULL, NULL, NULL, 0},
    {"Elu", "", k_unary, NULL, NULL, NULL, 0},
    {"Selu", "", k_unary, NULL, NULL, NULL, 0},
    {"LeakyRelu", "", k_unary, NULL, NULL, NULL, 0},
    {"HardSigmoid", "", k_unary, NULL, NULL, NULL, 0},
    {"HardSwish", "", k_unary, NULL, NULL, NULL, 0},
    {"Celu", "", k_unary, NULL, NULL, NULL, 0},
    {"Softsign", "", k_unary, NULL, NULL, NULL, 0},
    {"ThresholdedRelu", "", k_unary, NULL, NULL, NULL, 0},
    {"Shrink", "", k_unary, NULL, NULL, NULL, 0},
    {"Mish", "", k_unary, NULL, NULL, NULL, 0},
    {"Swish", "", k_unary, NULL, NULL, NULL, 0},
    {"Gelu", "", k_unary, NULL, NULL, NULL, 0},
    {"Tan", "", k_unary, NULL, NULL, NULL, 0},
    {"Asin", "", k_unary, NULL, NULL, NULL, 0},
    {"Acos", "", k_unary, NULL, NULL, NULL, 0},
    {"Atan", "", k_unary, NULL, NULL, NULL, 0},
    {"Sinh", "", k_unary, NULL, NULL, NULL, 0},
    {"Cosh", "", k_unary, NULL, NULL, NULL, 0},
    {"Asinh", "", k_unary, NULL, NULL, NULL, 0},
    {"Acosh", "", k_unary, NULL, NULL, NULL, 0},
    {"Atanh", "", k_unary, NULL, NULL, NULL, 0},
    {"Clip", "", k_clip, NULL, NULL, NULL, 0},
    {"Cast", "", k_cast, NULL, NULL, NULL, 0},
    {"CastLike", "", k_cast, NULL, NULL, NULL, 0},
    {"Identity", "", NULL, NULL, NULL, NULL, MT_KERNEL_ALIAS},
    {NULL, NULL, NULL, NULL, NULL, NULL, 0},
};
