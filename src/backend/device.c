/* The one device grammar (backend.h): every device string in the library,
 * the command line and the public API goes through mt_devspec_parse. */
#include "backend/backend.h"

#include <ctype.h>
#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *mt_precision_name(mt_precision p) {
    switch (p) {
    case MT_PREC_FP16: return "fp16";
    case MT_PREC_INT8: return "int8";
    default: return "fp32";
    }
}

mtmi_status mt_precision_parse(const char *s, mt_precision *p) {
    if (s && !strcmp(s, "fp32")) *p = MT_PREC_FP32;
    else if (s && !strcmp(s, "fp16")) *p = MT_PREC_FP16;
    else if (s && !strcmp(s, "int8")) *p = MT_PREC_INT8;
    else return mt_fail(MTMI_ERR_ARG, "unknown precision '%s' (fp32, fp16 or int8)", s ? s : "");
    return MTMI_OK;
}

static int parse_uint(const char **s, int *v) {
    if (!isdigit((unsigned char)**s)) return -1;
    errno = 0;
    char *e;
    long x = strtol(*s, &e, 10);
    if (errno || x < 0 || x > 4096) return -1;
    *v = (int)x;
    *s = e;
    return 0;
}

/* "cpu" / "cuda" / "gpu": the kind, and how many characters it took. */
static int parse_kind(const char *s, mt_dev_kind *k) {
    if (!strncmp(s, "cpu", 3)) return *k = MT_DEV_CPU, 3;
    if (!strncmp(s, "cuda", 4)) return *k = MT_DEV_CUDA, 4;
    if (!strncmp(s, "gpu", 3)) return *k = MT_DEV_CUDA, 3;
    return 0;
}

/* ":N" and ".smK" after the kind. */
static mtmi_status parse_index(const char *str, const char **s, mt_devspec *d) {
    if (**s != ':') return MTMI_OK;
    (*s)++;
    if (parse_uint(s, &d->index)) return mt_fail(MTMI_ERR_ARG, "device '%s': bad index", str);
    if (**s != '.') return MTMI_OK;
    (*s)++;
    if (d->kind != MT_DEV_CUDA || strncmp(*s, "sm", 2))
        return mt_fail(MTMI_ERR_ARG, "device '%s': only cuda:N.smK takes an SM partition", str);
    *s += 2;
    if (parse_uint(s, &d->sms) || d->sms == 0)
        return mt_fail(MTMI_ERR_ARG, "device '%s': bad SM count (cuda:N.smK, K > 0)", str);
    return MTMI_OK;
}

mtmi_status mt_devspec_parse(const char *str, mt_devspec *d) {
    memset(d, 0, sizeof *d);
    if (!str || !*str) return mt_fail(MTMI_ERR_ARG, "empty device (expected cpu[:N][/fp32] or cuda:N[.smK][/fp16|int8])");
    int n = parse_kind(str, &d->kind);
    if (!n) return mt_fail(MTMI_ERR_ARG, "unknown device '%s' (expected cpu[:N] or cuda:N[.smK])", str);
    const char *s = str + n;
    mtmi_status st = parse_index(str, &s, d);
    if (st) return st;
    d->prec = d->kind == MT_DEV_CUDA ? MT_PREC_FP16 : MT_PREC_FP32;
    if (*s == '/') {
        if (mt_precision_parse(s + 1, &d->prec))
            return mt_fail(MTMI_ERR_ARG, "device '%s': unknown precision '%s' (fp32, fp16 or int8)", str, s + 1);
        s += strlen(s);
    }
    if (*s) return mt_fail(MTMI_ERR_ARG, "device '%s': unexpected '%s'", str, s);
    return MTMI_OK;
}

int mt_devspec_has_precision(const char *s) { return s && strchr(s, '/') != NULL; }

const char *mt_device_str(const mt_devspec *d, char *buf, size_t cap) {
    if (d->kind == MT_DEV_CPU) {
        if (d->index) snprintf(buf, cap, "cpu:%d", d->index);
        else snprintf(buf, cap, "cpu");
    } else if (d->sms) snprintf(buf, cap, "cuda:%d.sm%d", d->index, d->sms);
    else snprintf(buf, cap, "cuda:%d", d->index);
    return buf;
}

const char *mt_devspec_str(const mt_devspec *d, char *buf, size_t cap) {
    char dev[48];
    snprintf(buf, cap, "%s/%s", mt_device_str(d, dev, sizeof dev), mt_precision_name(d->prec));
    return buf;
}

int mt_devspec_same_device(const mt_devspec *a, const mt_devspec *b) {
    return a->kind == b->kind && a->index == b->index && a->sms == b->sms;
}

int mt_num_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    int m = omp_get_num_procs();
    if (m > 0 && m < n) n = m;
    return n > 0 ? (int)n : 1;
}
