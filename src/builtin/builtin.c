/* The default model: trained when its file is found, else random weights
 * (builtin.h says where it is looked for). */
#include "builtin/builtin.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph/mtmi_net.h"

#ifndef MTMI_SOURCE_DIR
#define MTMI_SOURCE_DIR ""
#endif

static int is_file(const char *p) {
    struct stat st;
    return p[0] && !stat(p, &st) && S_ISREG(st.st_mode);
}

/* The folder of the running executable ("" if unknown). */
static void exe_dir(char *dir, size_t cap) {
    char buf[PATH_MAX];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    dir[0] = 0;
    if (n <= 0) return;
    buf[n] = 0;
    char *slash = strrchr(buf, '/');
    if (slash) *slash = 0, snprintf(dir, cap, "%s", buf);
}

int mt_builtin_trained_path(char *path, size_t cap) {
    const char *env = getenv("MTMI_TRAINED_MODEL");
    if (env && env[0]) {
        if (!strcmp(env, "none")) return 0;
        snprintf(path, cap, "%s", env);
        return 1; /* asked for: loading it reports a missing file */
    }
    char dir[PATH_MAX];
    exe_dir(dir, sizeof dir);
    const char *const rel[2] = {"/../models/" MT_TRAINED_FILE, "/../share/mtmi/" MT_TRAINED_FILE};
    for (int i = 0; i < 2 && dir[0]; i++)
        if ((size_t)snprintf(path, cap, "%s%s", dir, rel[i]) < cap && is_file(path)) return 1;
    if ((size_t)snprintf(path, cap, "%s/models/%s", MTMI_SOURCE_DIR, MT_TRAINED_FILE) < cap && MTMI_SOURCE_DIR[0] && is_file(path))
        return 1;
    path[0] = 0;
    return 0;
}

mtmi_status mt_builtin_model(uint64_t seed, int h, int w, mtmi_model **out, char *desc, size_t cap) {
    char path[PATH_MAX];
    if (mt_builtin_trained_path(path, sizeof path)) {
        mtmi_status s = mtmi_model_load(path, NULL, out);
        if (s) return mt_fail_context(s, "the trained built-in model (MTMI_TRAINED_MODEL or models/%s)", MT_TRAINED_FILE);
        snprintf(desc, cap, "built-in trained MTMI network (%s)", path);
        return MTMI_OK;
    }
    mt_mtmi_net_opts no = {.seed = seed, .height = h, .width = w};
    mtmi_status s = mt_mtmi_net_model(&no, out);
    if (s) return mt_fail_context(s, "building the built-in MTMI network");
    snprintf(desc, cap, "built-in MTMI network (random weights, seed %llu; no trained model found)", (unsigned long long)seed);
    return MTMI_OK;
}
