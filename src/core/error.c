#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* One message per thread: two models used from two threads never see each
 * other's errors, and there is no global state to lock. */
static _Thread_local char g_err[1024];

const char *mtmi_last_error(void) { return g_err; }

void mt_clear_error(void) { g_err[0] = 0; }

const char *mtmi_status_name(mtmi_status s) {
    switch (s) {
    case MTMI_OK: return "ok";
    case MTMI_ERR_IO: return "i/o error";
    case MTMI_ERR_PARSE: return "parse error";
    case MTMI_ERR_UNSUPPORTED: return "unsupported";
    case MTMI_ERR_SHAPE: return "shape error";
    case MTMI_ERR_DEVICE: return "device error";
    case MTMI_ERR_NOMEM: return "out of memory";
    case MTMI_ERR_ARG: return "bad argument";
    case MTMI_ERR_INTERNAL: return "internal error";
    }
    return "unknown";
}

/* Messages quote names from untrusted files: control characters would
 * break the one-line contract (line feeds, vertical tabs, escapes). */
static void strip_newlines(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

mtmi_status mt_fail(mtmi_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    strip_newlines(g_err);
    return s;
}

mtmi_status mt_fail_context(mtmi_status s, const char *fmt, ...) {
    char prefix[512], old[sizeof g_err];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_err, sizeof old);
    /* A context and message longer than the buffer are cut: the error
     * stays one line, its end lost (the return value is looked at so that
     * the compiler knows the cut is meant). */
    if (snprintf(g_err, sizeof g_err, "%s: %s", prefix, old) >= (int)sizeof g_err) g_err[sizeof g_err - 1] = '\0';
    strip_newlines(g_err);
    return s;
}
