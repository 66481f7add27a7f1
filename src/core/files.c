/* Files from untrusted places: sizes that cannot overflow, opening without
 * blocking on FIFOs and devices, paths that must stay inside a folder, and
 * outputs that must not replace an input or each other. */
#include "core/core.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ sizes */
int mt_checked_mul(size_t a, size_t b, size_t *out) {
    size_t r;
    if (__builtin_mul_overflow(a, b, &r)) return -1;
    *out = r;
    return 0;
}

int mt_checked_bytes(int rank, const int64_t *dims, size_t esz, size_t *bytes) {
    size_t n = esz;
    if (rank < 0 || rank > MT_MAX_RANK) return -1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0 || (uint64_t)dims[i] > SIZE_MAX) return -1;
        if (mt_checked_mul(n, (size_t)dims[i], &n)) return -1;
    }
    *bytes = n;
    return 0;
}

/* ------------------------------------------------------------ safe reading */
static const char *kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a folder";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

mtmi_status mt_open_regular(const char *path, int *fd_out, uint64_t *size) {
    *fd_out = -1;
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer forever.  Whether it is a plain file is decided by fstat on
     * what was opened, so nothing can be swapped in between. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return mt_fail(MTMI_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return mt_fail(MTMI_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        const char *k = kind_of(st.st_mode);
        return mt_fail(MTMI_ERR_IO, "%s: is %s, not a regular file", path, k);
    }
    /* Regular files ignore O_NONBLOCK, but clear it for any later reader. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *fd_out = fd;
    *size = (uint64_t)st.st_size;
    return MTMI_OK;
}

mtmi_status mt_read_fd(int fd, const char *path, uint64_t off, void *dst, size_t n) {
    uint8_t *p = dst;
    while (n) {
        ssize_t r = pread(fd, p, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return mt_fail(MTMI_ERR_IO, "%s: read error: %s", path, strerror(errno));
        if (r == 0) return mt_fail(MTMI_ERR_IO, "%s: file ended early (changed while reading?)", path);
        p += r;
        off += (uint64_t)r;
        n -= (size_t)r;
    }
    return MTMI_OK;
}

mtmi_status mt_read_file(const char *path, uint8_t **data, size_t *size) {
    *data = NULL;
    *size = 0;
    int fd;
    uint64_t sz;
    mtmi_status s = mt_open_regular(path, &fd, &sz);
    if (s) return s;
    if (sz > SIZE_MAX - 1) {
        close(fd);
        return mt_fail(MTMI_ERR_NOMEM, "%s: too large to read (%llu bytes)", path, (unsigned long long)sz);
    }
    size_t n = (size_t)sz;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return mt_fail(MTMI_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    s = mt_read_fd(fd, path, 0, buf, n);
    close(fd);
    if (s) {
        free(buf);
        return s;
    }
    *data = buf;
    *size = n;
    return MTMI_OK;
}

/* ------------------------------------------------------------------ paths */
mtmi_status mt_path_join(char *buf, size_t cap, const char *dir, const char *name) {
    int n = dir && dir[0] ? snprintf(buf, cap, "%s/%s", dir, name) : snprintf(buf, cap, "%s", name);
    if (n < 0 || (size_t)n >= cap || (size_t)n >= PATH_MAX)
        return mt_fail(MTMI_ERR_ARG, "path '%.60s...' (in '%.60s...') is longer than the system allows (%d bytes)", name,
                       dir ? dir : "", PATH_MAX - 1);
    /* Each component must fit too: the kernel would refuse it, and some
     * writers would otherwise cut names into colliding ones. */
    const char *base = strrchr(buf, '/');
    base = base ? base + 1 : buf;
    if (strlen(base) > NAME_MAX)
        return mt_fail(MTMI_ERR_ARG, "file name '%.40s...' is longer than the system allows (%d bytes)", base, NAME_MAX);
    return MTMI_OK;
}

mtmi_status mt_resolve_inside(const char *dir, const char *rel, char *out, size_t cap) {
    char rdir[PATH_MAX], joined[PATH_MAX], real[PATH_MAX];
    if (!rel[0] || rel[0] == '/')
        return mt_fail(MTMI_ERR_ARG, "'%s' must be a path relative to the model's folder", rel);
    if (!realpath(dir && dir[0] ? dir : ".", rdir)) return mt_fail(MTMI_ERR_IO, "%s: cannot resolve: %s", dir, strerror(errno));
    if (mt_path_join(joined, sizeof joined, rdir, rel)) return MTMI_ERR_ARG;
    if (!realpath(joined, real)) {
        int e = errno; /* kept for the caller: ENOENT means "missing" */
        mt_fail(MTMI_ERR_IO, "'%s': %s", rel, strerror(e));
        errno = e;
        return MTMI_ERR_IO;
    }
    /* Inside means below rdir by whole components: "/m/ab" is not in "/m/a".
     * Names that merely contain ".." ("w..bin") resolve to themselves. */
    size_t n = strlen(rdir);
    int inside = strcmp(rdir, "/") == 0 ? real[0] == '/' : (strncmp(real, rdir, n) == 0 && real[n] == '/');
    if (!inside) return mt_fail(MTMI_ERR_ARG, "'%s' resolves to '%s', outside the model's folder '%s'", rel, real, rdir);
    if (strlen(real) >= cap) return mt_fail(MTMI_ERR_ARG, "'%s': resolved path too long", rel);
    memcpy(out, real, strlen(real) + 1);
    return MTMI_OK;
}

/* ------------------------------------------------------- inputs vs outputs */
int mt_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0) return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

mtmi_status mt_check_not_input(const char *out, const char *const *inputs, int n) {
    for (int i = 0; i < n; i++)
        if (inputs[i] && mt_same_file(out, inputs[i]))
            return mt_fail(MTMI_ERR_ARG, "output '%s' is the input '%s': refusing to overwrite it", out, inputs[i]);
    return MTMI_OK;
}

/* --------------------------------------------------- output names of tensors */
/* Characters that cannot or should not be in one file name component. */
static void sanitize(char *s) {
    for (; *s; s++)
        if (*s == '/' || *s == '\\' || *s == ':' || *s == ' ' || (unsigned char)*s < 0x20 || *s == 0x7f) *s = '_';
}

/* Names longer than a component allows keep a prefix and a hash of the
 * whole name, so two long names stay apart. */
static void shorten(char *s, size_t max, const char *whole) {
    if (strlen(s) <= max) return;
    char tail[24];
    snprintf(tail, sizeof tail, "~%016llx", (unsigned long long)mt_hash64(MT_HASH_SEED, whole, strlen(whole)));
    snprintf(s + max - strlen(tail), strlen(tail) + 1, "%s", tail);
}

static int name_taken(char (*out)[MT_NAME_CAP], const int *done, int n, const char *cand) {
    for (int j = 0; j < n; j++)
        if (done[j] && strcasecmp(out[j], cand) == 0) return j;
    return -1;
}

mtmi_status mt_file_names(const char *const *names, int n, const char *suffix, char (*out)[MT_NAME_CAP]) {
    int *done = calloc(n ? n : 1, sizeof(int));
    if (!done) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    /* A "_<index>" (up to 11) and the temporary suffix ".tmp.<pid>.<n>" (up
     * to 24) must fit after the name in one component. */
    size_t room = NAME_MAX - strlen(suffix) - 40;
    if (room > MT_NAME_CAP - 1) room = MT_NAME_CAP - 1;
    mtmi_status s = MTMI_OK;
    /* Names that need no change claim their file first; the others take
     * theirs in order, with "_<index>" when it is already taken.  Case is
     * ignored so that the set also holds on case-insensitive disks. */
    for (int pass = 0; pass < 2 && !s; pass++)
        for (int i = 0; i < n && !s; i++) {
            char c[MT_NAME_CAP];
            snprintf(c, sizeof c, "%s", names[i] && names[i][0] ? names[i] : "unnamed");
            sanitize(c);
            if (c[0] == '.') c[0] = '_'; /* no hidden files, no "." or ".." */
            shorten(c, room, names[i] ? names[i] : "");
            int plain = names[i] && !strcmp(c, names[i]);
            if (plain != !pass) continue;
            snprintf(out[i], MT_NAME_CAP, "%s%s", c, suffix);
            if (name_taken(out, done, n, out[i]) >= 0) snprintf(out[i], MT_NAME_CAP, "%s_%d%s", c, i, suffix);
            int j = name_taken(out, done, n, out[i]);
            if (j >= 0)
                s = mt_fail(MTMI_ERR_ARG, "outputs '%s' and '%s' would both be written as '%s'", names[j], names[i], out[i]);
            done[i] = 1;
        }
    free(done);
    return s;
}

/* ------------------------------------------------------------------- misc */
uint64_t mt_hash64(uint64_t h, const void *data, size_t n) {
    /* FNV-1a over 8-byte words (then the tail), with a final mix: fast
     * enough to key caches by content (several GB/s), not cryptographic. */
    const uint8_t *p = data;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    while (n--) h = (h ^ *p++) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* Length of the valid UTF-8 sequence at s (0 if invalid). */
static int utf8_len(const unsigned char *s) {
    int n = s[0] < 0x80 ? 1 : (s[0] >> 5) == 6 ? 2 : (s[0] >> 4) == 14 ? 3 : (s[0] >> 3) == 30 ? 4 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return n;
}

void mt_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;) {
        int n = utf8_len(p);
        if (n == 0) { /* file names need not be UTF-8; JSON must be */
            fputs("\\ufffd", f);
            p++;
        } else if (n > 1) {
            fwrite(p, 1, (size_t)n, f);
            p += n;
        } else {
            if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
            else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
            p++;
        }
    }
    fputc('"', f);
}

void mt_json_number(FILE *f, const char *fmt, double v) {
    if (!isfinite(v)) fputs("null", f);
    else fprintf(f, fmt, v);
}

const char *mt_bytes_str(double b, char *buf, size_t cap) {
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (b >= 1024 && u < 6) b /= 1024, u++;
    if (u == 0) snprintf(buf, cap, "%.0f B", b);
    else snprintf(buf, cap, "%.2f %s", b, unit[u]);
    return buf;
}

int mt_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)MT_MIN(n, 4096) : 1;
}
