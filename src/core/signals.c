/* SIGINT / SIGTERM / SIGHUP for programs built on libmtmi (the library itself
 * installs nothing: a host application owns its signals).
 *
 * Immediate mode (the default): the handler removes every registered
 * temporary file and exits with 128 + the signal (130 for SIGINT, 143 for
 * SIGTERM).  Graceful mode: the first signal only sets a flag that work loops
 * poll (mt_stop_requested) so the unit in progress (a frame) completes; a
 * second signal falls back to the immediate exit. */
#include "core/core.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;
static atomic_int g_graceful;

static void on_signal(int sig) {
    if (atomic_load(&g_graceful) && !g_stop) {
        g_stop = sig;
        return;
    }
    g_stop = sig;
    mt_temp_cleanup();
    _exit(128 + sig);
}

int mt_signals_install(int graceful) {
    atomic_store(&g_graceful, graceful != 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    /* Other signals wait while the handler removes files. */
    sigfillset(&sa.sa_mask);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < MT_ARRAY_LEN(sigs); i++) {
        struct sigaction old;
        /* A signal ignored at start (nohup, background jobs) stays ignored. */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        if (sigaction(sigs[i], &sa, NULL) != 0) return -1;
    }
    return 0;
}

void mt_signals_set_graceful(int on) { atomic_store(&g_graceful, on != 0); }

int mt_stop_requested(void) { return (int)g_stop; }
