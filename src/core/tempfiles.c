/* Atomic writes and the registry of their temporary files.
 *
 * Every file is written under "<path>.tmp.<pid>.<n>" and renamed into place,
 * so a failed write never leaves a partial file under the final name.  The
 * temporary names are registered while they exist, so that a signal handler
 * can remove them (mt_temp_cleanup) before the process exits: an interrupted
 * run leaves only complete files.
 *
 * The registry is written by any thread (run's writer threads) under a mutex
 * and read by a signal handler without it: slots are never freed, their state
 * is atomic, and each path is guarded by a sequence counter (odd while it is
 * being rewritten), so the handler never acts on a half-written name. */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { SLOT_FREE = 0, SLOT_USED = 1 };
#define SLOTS_PER_BLOCK 16

typedef struct temp_slot {
    atomic_int state;
    atomic_uint seq;      /* odd while path is being written */
    char path[PATH_MAX];
} temp_slot;

typedef struct temp_block {
    temp_slot slot[SLOTS_PER_BLOCK];
    _Atomic(struct temp_block *) next;
} temp_block;

static temp_block g_first;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_creating; /* threads between registering a name and creating its file */
static atomic_int g_stopping; /* set by mt_temp_cleanup: no new temporaries */
static atomic_uint g_counter; /* makes every temporary name of the process unique */

static temp_slot *find_slot(int state, const char *path) {
    for (temp_block *b = &g_first; b; b = atomic_load(&b->next))
        for (int i = 0; i < SLOTS_PER_BLOCK; i++) {
            temp_slot *s = &b->slot[i];
            if (atomic_load(&s->state) == state && (!path || !strcmp(s->path, path))) return s;
        }
    return NULL;
}

/* A free slot, adding a block when all are taken (caller holds g_lock). */
static temp_slot *free_slot(void) {
    temp_slot *s = find_slot(SLOT_FREE, NULL);
    if (s) return s;
    temp_block *nb = calloc(1, sizeof *nb), *b = &g_first;
    if (!nb) return NULL;
    while (atomic_load(&b->next)) b = atomic_load(&b->next);
    atomic_store(&b->next, nb);
    return &nb->slot[0];
}

int mt_temp_register(const char *path) {
    if (strlen(path) >= PATH_MAX) return mt_fail(MTMI_ERR_ARG, "%s: path too long", path), -1;
    pthread_mutex_lock(&g_lock);
    temp_slot *s = free_slot();
    if (s) {
        atomic_fetch_add(&s->seq, 1);
        memcpy(s->path, path, strlen(path) + 1);
        atomic_fetch_add(&s->seq, 1);
        atomic_store(&s->state, SLOT_USED);
    }
    pthread_mutex_unlock(&g_lock);
    if (!s) return mt_fail(MTMI_ERR_NOMEM, "out of memory"), -1;
    return 0;
}

void mt_temp_unregister(const char *path) {
    pthread_mutex_lock(&g_lock);
    temp_slot *s = find_slot(SLOT_USED, path);
    if (s) atomic_store(&s->state, SLOT_FREE);
    pthread_mutex_unlock(&g_lock);
}

/* Async-signal-safe: atomics, nanosleep and unlink only. */
void mt_temp_cleanup(void) {
    atomic_store(&g_stopping, 1);
    /* A thread may have registered a name and not yet created the file:
     * give it a moment (bounded: the handler may run on that very thread). */
    for (int i = 0; i < 200 && atomic_load(&g_creating) > 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    char copy[PATH_MAX];
    for (temp_block *b = &g_first; b; b = atomic_load(&b->next))
        for (int i = 0; i < SLOTS_PER_BLOCK; i++) {
            temp_slot *s = &b->slot[i];
            for (int tries = 0; tries < 100; tries++) {
                unsigned q = atomic_load(&s->seq);
                if (atomic_load(&s->state) != SLOT_USED || (q & 1)) break;
                size_t n = 0;
                while (n + 1 < sizeof copy && s->path[n]) copy[n] = s->path[n], n++;
                copy[n] = 0;
                if (atomic_load(&s->seq) != q) continue; /* rewritten meanwhile: read again */
                unlink(copy);
                break;
            }
        }
}

int mt_temp_count(void) {
    int n = 0;
    pthread_mutex_lock(&g_lock);
    for (temp_block *b = &g_first; b; b = atomic_load(&b->next))
        for (int i = 0; i < SLOTS_PER_BLOCK; i++) n += atomic_load(&b->slot[i].state) == SLOT_USED;
    pthread_mutex_unlock(&g_lock);
    return n;
}

/* ---------------------------------------------------------- atomic writes */
/* Creates the temporary file: registered first, so that it is never on disk
 * unregistered; O_EXCL | O_NOFOLLOW, so a planted file or link is never
 * written through. */
static FILE *create_temp(const char *path, char *tmp, size_t cap) {
    atomic_fetch_add(&g_creating, 1);
    FILE *f = NULL;
    int fd = -1, err = 0;
    for (int attempt = 0; attempt < 8 && fd < 0; attempt++) {
        if (atomic_load(&g_stopping)) {
            err = EINTR;
            break;
        }
        unsigned n = atomic_fetch_add(&g_counter, 1);
        int len = snprintf(tmp, cap, "%s.tmp.%ld.%u", path, (long)getpid(), n);
        if (len < 0 || (size_t)len >= cap || len >= PATH_MAX) {
            err = ENAMETOOLONG;
            break;
        }
        if (mt_temp_register(tmp)) {
            err = ENOMEM;
            break;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd < 0) {
            err = errno;
            mt_temp_unregister(tmp);
            if (err != EEXIST) break;
        }
    }
    if (fd >= 0 && !(f = fdopen(fd, "wb"))) {
        err = errno;
        close(fd);
        unlink(tmp);
        mt_temp_unregister(tmp);
    }
    atomic_fetch_sub(&g_creating, 1);
    if (!f) mt_fail(MTMI_ERR_IO, "%s: cannot create: %s", path, err == EINTR ? "interrupted" : strerror(err));
    return f;
}

FILE *mt_atomic_open(const char *path, char *tmp, size_t cap) {
    if (!path || !tmp || cap == 0) {
        mt_fail(MTMI_ERR_ARG, "mt_atomic_open: NULL argument");
        return NULL;
    }
    tmp[0] = 0;
    return create_temp(path, tmp, cap);
}

mtmi_status mt_atomic_commit(FILE *f, const char *tmp, const char *path, int ok) {
    int bad = ferror(f);
    if (fclose(f) != 0) bad = 1;
    mtmi_status s = MTMI_OK;
    if (!ok || bad) {
        unlink(tmp);
        s = ok ? mt_fail(MTMI_ERR_IO, "%s: write failed", path) : MTMI_ERR_IO; /* !ok: caller reported why */
    } else if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        s = mt_fail(MTMI_ERR_IO, "%s: cannot rename into place: %s", path, strerror(e));
    }
    /* After the rename: a signal in between finds the name gone, harmless. */
    mt_temp_unregister(tmp);
    return s;
}

mtmi_status mt_write_file_atomic(const char *path, const void *data, size_t size) {
    char tmp[PATH_MAX + 64];
    FILE *f = mt_atomic_open(path, tmp, sizeof tmp);
    if (!f) return MTMI_ERR_IO;
    int ok = fwrite(data, 1, size, f) == size;
    if (!ok) mt_fail(MTMI_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return mt_atomic_commit(f, tmp, path, ok);
}
