/* The core's defences against hostile files and interrupted runs (issue
 * 13), run under ASan/UBSan in CI: overflow-checked sizes, .npy headers
 * that lie, FIFOs that would block, paths leaving a folder, output names
 * that collide, outputs that are inputs, the temporary-file registry under
 * threads, SIGINT / SIGTERM removing temporaries (exit 130 / 143), the
 * graceful mode, JSON escaping and the string map. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "core/npy.h"

#include "check.h"

static char g_dir[256];

static void path_in(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", g_dir, name); }

static int count_temps(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "find '%s' -name '*.tmp.*' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, n, f) == n, "cannot write %s", path);
    if (f) fclose(f);
}

/* ------------------------------------------------------------------ sizes */
static void test_sizes(void) {
    size_t b = 0;
    int64_t ok[3] = {2, 3, 4}, neg[2] = {4, -1}, huge[2] = {INT64_C(4611686018427387905), 4}, zero[2] = {0, INT64_MAX};
    CHECK(mt_checked_bytes(3, ok, 4, &b) == 0 && b == 96, "2x3x4 floats: %zu", b);
    CHECK(mt_checked_bytes(2, neg, 4, &b) == -1, "negative dimension accepted");
    CHECK(mt_checked_bytes(2, huge, 4, &b) == -1, "2^62+1 x 4 x 4 bytes accepted (%zu)", b);
    CHECK(mt_checked_bytes(2, zero, 4, &b) == 0 && b == 0, "0 x INT64_MAX should be 0 bytes");
    CHECK(mt_checked_bytes(0, ok, 8, &b) == 0 && b == 8, "a scalar is one element");
    CHECK(mt_checked_bytes(MT_MAX_RANK + 1, ok, 4, &b) == -1, "rank over the maximum accepted");
    size_t m;
    CHECK(mt_checked_mul(SIZE_MAX / 2 + 1, 2, &m) == -1, "SIZE_MAX overflow accepted");
    CHECK(mt_checked_mul(1u << 20, 1u << 10, &m) == 0 && m == (size_t)1 << 30, "2^30");
}

/* A .npy header claims any shape; the reader must compare it with what is
 * there without overflowing on the way. */
static void npy_with_header(const char *shape, uint8_t *buf, size_t *len) {
    char hdr[200];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
    int total = 10 + n + 1, pad = (64 - total % 64) % 64;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)((n + pad + 1) & 0xff);
    buf[9] = (uint8_t)((n + pad + 1) >> 8);
    memcpy(buf + 10, hdr, n);
    memset(buf + 10 + n, ' ', pad);
    buf[10 + n + pad] = '\n';
    *len = 10 + n + pad + 1;
    memset(buf + *len, 0, 64);
    *len += 64; /* 16 floats of data */
}

static void test_npy(void) {
    uint8_t buf[512];
    size_t len;
    mtmi_tensor t;
    static const char *bad[] = {"(4611686018427387905, 4)", "(9223372036854775807, 9223372036854775807)",
                                "(99999999999999999999,)", "(-1, 4)", "(1, 2, 3, 4, 5, 6, 7, 8, 9)", "(4 x 4)"};
    for (size_t i = 0; i < MT_ARRAY_LEN(bad); i++) {
        npy_with_header(bad[i], buf, &len);
        mtmi_status s = mt_npy_read_buffer(buf, len, "t.npy", &t);
        CHECK(s != MTMI_OK && strstr(mtmi_last_error(), "t.npy"), "shape %s: status %d, %s", bad[i], s, mtmi_last_error());
        if (s == MTMI_OK) free(t.data);
    }
    npy_with_header("(4, 4)", buf, &len);
    CHECK(mt_npy_read_buffer(buf, len, "t.npy", &t) == MTMI_OK && t.rank == 2 && t.dims[1] == 4, "4x4: %s", mtmi_last_error());
    free(t.data);
    npy_with_header("(5, 4)", buf, &len);
    CHECK(mt_npy_read_buffer(buf, len, "t.npy", &t) != MTMI_OK && strstr(mtmi_last_error(), "truncated"), "5x4 in 16 floats: %s",
          mtmi_last_error());
    /* fortran_order True is refused, a bad value is an error. */
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    const char *h = "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }         \n";
    buf[8] = (uint8_t)strlen(h);
    buf[9] = 0;
    memcpy(buf + 10, h, strlen(h));
    CHECK(mt_npy_read_buffer(buf, 10 + strlen(h) + 8, "f.npy", &t) == MTMI_ERR_UNSUPPORTED, "Fortran order: %s", mtmi_last_error());
}

/* ------------------------------------------------------- special files */
static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "FAIL: a read blocked on a FIFO (killed by the test's alarm)\n";
    ssize_t r = write(1, msg, sizeof msg - 1);
    (void)r;
    _exit(1);
}

static void test_special_files(void) {
    char fifo[400], dir[400], reg[400];
    path_in(fifo, sizeof fifo, "fifo.png");
    path_in(dir, sizeof dir, "adir.npy");
    path_in(reg, sizeof reg, "reg.bin");
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo: %s", strerror(errno));
    CHECK(mkdir(dir, 0700) == 0, "mkdir");
    write_bytes(reg, "abc", 3);
    signal(SIGALRM, on_alarm);
    alarm(10); /* a blocking open would hang here: fail instead */
    uint8_t *data;
    size_t n;
    CHECK(mt_read_file(fifo, &data, &n) == MTMI_ERR_IO && strstr(mtmi_last_error(), "FIFO"), "FIFO: %s", mtmi_last_error());
    CHECK(mt_read_file(dir, &data, &n) == MTMI_ERR_IO && strstr(mtmi_last_error(), "folder"), "folder: %s", mtmi_last_error());
    CHECK(mt_read_file("/dev/zero", &data, &n) == MTMI_ERR_IO && strstr(mtmi_last_error(), "device"), "device: %s", mtmi_last_error());
    mtmi_tensor t;
    CHECK(mt_npy_read(fifo, &t) == MTMI_ERR_IO, "npy from a FIFO: %s", mtmi_last_error());
    alarm(0);
    CHECK(mt_read_file(reg, &data, &n) == MTMI_OK && n == 3 && !memcmp(data, "abc", 3), "regular file: %s", mtmi_last_error());
    free(data);
}

/* ----------------------------------------------------------------- paths */
static void test_paths(void) {
    char sub[400], inside[600], outside[400], real[PATH_MAX], link[600];
    path_in(sub, sizeof sub, "model");
    CHECK(mkdir(sub, 0700) == 0, "mkdir model");
    snprintf(inside, sizeof inside, "%s/w..bin", sub);
    write_bytes(inside, "w", 1);
    path_in(outside, sizeof outside, "secret.bin");
    write_bytes(outside, "s", 1);
    snprintf(link, sizeof link, "%s/link.bin", sub);
    CHECK(symlink(outside, link) == 0, "symlink");
    char dirlink[600];
    snprintf(dirlink, sizeof dirlink, "%s/up", sub);
    CHECK(symlink(g_dir, dirlink) == 0, "symlink to the parent");

    CHECK(mt_resolve_inside(sub, "w..bin", real, sizeof real) == MTMI_OK, "w..bin: %s", mtmi_last_error());
    CHECK(mt_resolve_inside(sub, "./w..bin", real, sizeof real) == MTMI_OK, "./w..bin: %s", mtmi_last_error());
    CHECK(mt_resolve_inside(sub, "link.bin", real, sizeof real) == MTMI_ERR_ARG && strstr(mtmi_last_error(), "outside"),
          "link out: %s", mtmi_last_error());
    CHECK(mt_resolve_inside(sub, "../secret.bin", real, sizeof real) == MTMI_ERR_ARG, "../: %s", mtmi_last_error());
    CHECK(mt_resolve_inside(sub, "up/secret.bin", real, sizeof real) == MTMI_ERR_ARG, "through a linked folder: %s", mtmi_last_error());
    CHECK(mt_resolve_inside(sub, outside, real, sizeof real) == MTMI_ERR_ARG, "absolute: %s", mtmi_last_error());
    CHECK(mt_resolve_inside(sub, "missing.bin", real, sizeof real) == MTMI_ERR_IO && errno == ENOENT, "missing: %s",
          mtmi_last_error());
    /* A sibling folder whose name starts like the model's ("model2") is
     * not inside "model". */
    char sib[400];
    path_in(sib, sizeof sib, "model2");
    CHECK(mkdir(sib, 0700) == 0, "mkdir model2");
    snprintf(sib, sizeof sib, "%s/model2/x.bin", g_dir);
    write_bytes(sib, "x", 1);
    CHECK(mt_resolve_inside(sub, "../model2/x.bin", real, sizeof real) == MTMI_ERR_ARG, "prefix sibling: %s", mtmi_last_error());

    char buf[PATH_MAX], longname[300];
    memset(longname, 'n', 299);
    longname[299] = 0;
    CHECK(mt_path_join(buf, sizeof buf, g_dir, longname) == MTMI_ERR_ARG, "300-byte component accepted");
    CHECK(mt_path_join(buf, 64, g_dir, "a-name-that-does-not-fit-in-sixty-four-bytes-together.npy") == MTMI_ERR_ARG,
          "truncation accepted");
    CHECK(mt_path_join(buf, sizeof buf, "d", "x.npy") == MTMI_OK && !strcmp(buf, "d/x.npy"), "join: %s", buf);
}

static void test_same_file(void) {
    char a[400], b[400], c[400];
    path_in(a, sizeof a, "in.onnx");
    path_in(b, sizeof b, "hard.onnx");
    path_in(c, sizeof c, "other.onnx");
    write_bytes(a, "m", 1);
    write_bytes(c, "m", 1);
    CHECK(link(a, b) == 0, "link");
    char dotted[450];
    snprintf(dotted, sizeof dotted, "%s/./in.onnx", g_dir);
    CHECK(mt_same_file(a, dotted), "another spelling");
    CHECK(mt_same_file(a, b), "hard link");
    CHECK(!mt_same_file(a, c), "same bytes, other file");
    char missing[400];
    path_in(missing, sizeof missing, "nope.onnx");
    CHECK(!mt_same_file(missing, missing), "a missing file is no input");
    const char *ins[] = {c, a};
    CHECK(mt_check_not_input(b, ins, 2) == MTMI_ERR_ARG && strstr(mtmi_last_error(), "refusing"), "%s", mtmi_last_error());
    CHECK(mt_check_not_input(missing, ins, 2) == MTMI_OK, "new output refused");
}

/* -------------------------------------------------------- output names */
static void test_file_names(void) {
    char out[8][MT_NAME_CAP];
    const char *n1[] = {"a/b", "a_b"};
    CHECK(mt_file_names(n1, 2, ".npy", out) == MTMI_OK, "%s", mtmi_last_error());
    CHECK(!strcmp(out[0], "a_b_0.npy") && !strcmp(out[1], "a_b.npy"), "a/b, a_b -> %s, %s", out[0], out[1]);
    const char *n2[] = {"A", "a", "x:y", "..", ".hidden", ""};
    CHECK(mt_file_names(n2, 6, ".npy", out) == MTMI_OK, "%s", mtmi_last_error());
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < i; j++) CHECK(strcasecmp(out[i], out[j]), "%d and %d both %s", i, j, out[i]);
    for (int i = 0; i < 6; i++) CHECK(out[i][0] != '.' && !strchr(out[i], '/'), "unsafe name %s", out[i]);
    /* Deterministic: the same names give the same files. */
    char again[8][MT_NAME_CAP];
    mt_file_names(n2, 6, ".npy", again);
    for (int i = 0; i < 6; i++) CHECK(!strcmp(out[i], again[i]), "not deterministic: %s / %s", out[i], again[i]);
    /* Long names stay apart and fit a component. */
    char l1[400], l2[400];
    memset(l1, 'x', 399);
    l1[399] = 0;
    memcpy(l2, l1, sizeof l2);
    l2[398] = 'y';
    const char *n3[] = {l1, l2};
    CHECK(mt_file_names(n3, 2, ".npy", out) == MTMI_OK, "%s", mtmi_last_error());
    CHECK(strlen(out[0]) + 11 + 24 <= NAME_MAX && strcmp(out[0], out[1]), "long names: %zu, equal %d", strlen(out[0]),
          !strcmp(out[0], out[1]));
    /* A clash that remains is an error naming both. */
    const char *n4[] = {"a/b", "a_b", "a_b_0"};
    CHECK(mt_file_names(n4, 3, ".npy", out) == MTMI_ERR_ARG && strstr(mtmi_last_error(), "a/b"), "%s", mtmi_last_error());
}

/* ---------------------------------------------------- temporary files */
typedef struct writer_arg {
    int id, fails;
} writer_arg;

static void *writer(void *p) {
    writer_arg *a = p;
    char path[400];
    for (int k = 0; k < 200; k++) {
        snprintf(path, sizeof path, "%s/w%d_%d.bin", g_dir, a->id, k % 5);
        int v = a->id * 1000 + k;
        if (mt_write_file_atomic(path, &v, sizeof v)) a->fails++;
    }
    return NULL;
}

static void test_temp_registry(void) {
    char path[400], tmp[PATH_MAX + 64];
    path_in(path, sizeof path, "atomic.bin");
    int before = mt_temp_count();
    FILE *f = mt_atomic_open(path, tmp, sizeof tmp);
    CHECK(f && strstr(tmp, ".tmp.") && mt_temp_count() == before + 1, "open: %s", mtmi_last_error());
    if (f) {
        fputs("data", f);
        CHECK(mt_atomic_commit(f, tmp, path, 1) == MTMI_OK, "%s", mtmi_last_error());
    }
    CHECK(mt_temp_count() == before && access(tmp, F_OK) != 0 && access(path, F_OK) == 0, "after commit");
    f = mt_atomic_open(path, tmp, sizeof tmp);
    if (f) mt_atomic_commit(f, tmp, path, 0);
    CHECK(mt_temp_count() == before && access(tmp, F_OK) != 0, "after a failed write");
    /* A temporary name that does not fit the caller's buffer is an error,
     * never a truncated name. */
    char small[8];
    CHECK(!mt_atomic_open(path, small, sizeof small), "a temporary name that does not fit was accepted");
    /* Several threads writing at once (run's writer threads). */
    pthread_t th[4];
    writer_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (writer_arg){i, 0};
        pthread_create(&th[i], NULL, writer, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].fails == 0, "thread %d: %d failed writes", i, args[i].fails);
    }
    CHECK(mt_temp_count() == before, "registry not empty after the threads: %d", mt_temp_count());
    CHECK(count_temps(g_dir) == 0, "%d temporary files left", count_temps(g_dir));
}

/* A child that installs the handlers, leaves temporaries open (one from
 * each of two threads) and is signalled: every temporary goes, the exit
 * status is 128 + signal. */
static void *hold_open(void *p) {
    char tmp[PATH_MAX + 64];
    FILE *f = mt_atomic_open((const char *)p, tmp, sizeof tmp);
    if (f) fputs("partial", f), fflush(f);
    pause();
    return NULL;
}

static void test_signal(int sig, int graceful) {
    char d[400];
    snprintf(d, sizeof d, "%s/sig%d_%d", g_dir, sig, graceful);
    mkdir(d, 0700);
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        signal(SIGINT, SIG_DFL); /* as a shell would give it */
        mt_signals_install(graceful);
        static char p1[450], p2[450];
        snprintf(p1, sizeof p1, "%s/a.bin", d);
        snprintf(p2, sizeof p2, "%s/b.bin", d);
        pthread_t t1, t2;
        pthread_create(&t1, NULL, hold_open, p1);
        pthread_create(&t2, NULL, hold_open, p2);
        while (mt_temp_count() < 2) usleep(1000);
        if (write(fds[1], "r", 1) != 1) _exit(3);
        if (graceful) { /* the first signal only asks to stop */
            while (!mt_stop_requested()) usleep(1000);
            if (write(fds[1], "s", 1) != 1) _exit(3);
        }
        for (;;) pause();
    }
    close(fds[1]);
    char c;
    CHECK(read(fds[0], &c, 1) == 1, "child did not start");
    CHECK(count_temps(d) == 2, "%d temporaries while writing", count_temps(d));
    kill(pid, sig);
    if (graceful) {
        CHECK(read(fds[0], &c, 1) == 1 && c == 's', "graceful: the stop request was not seen");
        CHECK(count_temps(d) == 2, "graceful: temporaries removed on the first signal");
        kill(pid, sig); /* the second one exits */
    }
    int st = 0;
    waitpid(pid, &st, 0);
    close(fds[0]);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 128 + sig, "signal %d: status %d (exited %d, code %d)", sig, st, WIFEXITED(st),
          WEXITSTATUS(st));
    CHECK(count_temps(d) == 0, "signal %d: %d temporaries left", sig, count_temps(d));
}

/* ------------------------------------------------------------------ misc */
static void test_json(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mt_json_string(f, "a\"b\\c\n\x01\xff\xc3\xa9");
    fclose(f);
    CHECK(buf && !strcmp(buf, "\"a\\\"b\\\\c\\u000a\\u0001\\ufffd\xc3\xa9\""), "json: %s", buf ? buf : "");
    free(buf);
}

static void test_strset(void) {
    enum { N = 200000 };
    char (*names)[16] = malloc(sizeof *names * N);
    mt_strset s = {0};
    int bad = 0;
    for (int i = 0; i < N; i++) {
        snprintf(names[i], 16, "t%d", i);
        bad += mt_strset_put(&s, names[i], i) != 0;
    }
    CHECK(bad == 0, "%d puts failed", bad);
    bad = 0;
    for (int i = 0; i < N; i++) bad += mt_strset_get(&s, names[i]) != i;
    CHECK(bad == 0 && s.n == N, "%d lookups wrong, %zu keys", bad, s.n);
    CHECK(mt_strset_get(&s, "absent") == -1, "absent key found");
    mt_strset_put(&s, names[7], 70);
    CHECK(mt_strset_get(&s, names[7]) == 70 && s.n == N, "replace");
    mt_strset_free(&s);
    free(names);
    CHECK(mt_hash64(MT_HASH_SEED, "abc", 3) != mt_hash64(MT_HASH_SEED, "abd", 3), "hash");
}

int main(void) {
    test_tmp_template(g_dir, sizeof g_dir, "mtmi_core_");
    if (!mkdtemp(g_dir)) return 1;
    test_sizes();
    test_npy();
    test_special_files();
    test_paths();
    test_same_file();
    test_file_names();
    test_temp_registry();
    test_signal(SIGINT, 0);
    test_signal(SIGTERM, 0);
    test_signal(SIGINT, 1);
    test_json();
    test_strset();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (!failures && system(cmd) != 0) printf("note: could not remove %s\n", g_dir);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
