/* Cityscapes-style evaluation folders (eval.h): images/, labels/ and
 * optionally depth/, one <stem>.png in each per frame. */
#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/eval.h"

static int is_png(const char *n) {
    const size_t l = strlen(n);
    return l > 4 && n[l - 4] == '.' && tolower((unsigned char)n[l - 3]) == 'p' && tolower((unsigned char)n[l - 2]) == 'n' &&
           tolower((unsigned char)n[l - 1]) == 'g';
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int is_dir(const char *p) {
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}

/* "<dir>/<sub>/<stem>.png", malloc'ed; NULL (error set) when too long. */
static char *path3(const char *dir, const char *sub, const char *stem) {
    char rel[1200], full[4096];
    if (snprintf(rel, sizeof rel, "%s/%s.png", sub, stem) >= (int)sizeof rel || mt_path_join(full, sizeof full, dir, rel)) {
        mt_fail(MTMI_ERR_ARG, "%s/%s/%s.png: path too long", dir, sub, stem);
        return NULL;
    }
    char *p = strdup(full);
    if (!p) mt_fail(MTMI_ERR_NOMEM, "out of memory listing '%s'", dir);
    return p;
}

/* The stems of the PNG files in dir/images, sorted. */
static mtmi_status list_stems(const char *dir, mt_eval_set *set) {
    char img[4096];
    mtmi_status s = mt_path_join(img, sizeof img, dir, "images");
    if (s) return s;
    DIR *d = opendir(img);
    if (!d) return mt_fail(MTMI_ERR_IO, "%s: cannot open the images folder (expected %s/images, labels and depth)", img, dir);
    struct dirent *e;
    int cap = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !is_png(e->d_name)) continue;
        if (mt_grow((void **)&set->stems, &cap, set->n, sizeof(char *)) || !(set->stems[set->n] = strdup(e->d_name))) {
            closedir(d);
            return mt_fail(MTMI_ERR_NOMEM, "out of memory listing '%s'", img);
        }
        set->stems[set->n++][strlen(e->d_name) - 4] = 0;
    }
    closedir(d);
    if (!set->n) return mt_fail(MTMI_ERR_IO, "%s: no PNG images", img);
    qsort(set->stems, (size_t)set->n, sizeof(char *), cmp_str);
    return MTMI_OK;
}

static mtmi_status need_file(const char *path, const char *what) {
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode)) return mt_fail(MTMI_ERR_IO, "%s: missing (%s)", path, what);
    return MTMI_OK;
}

mtmi_status mt_eval_set_open(const char *dir, mt_eval_set *set) {
    memset(set, 0, sizeof *set);
    mtmi_status s = list_stems(dir, set);
    char dd[4096];
    if (!s) s = mt_path_join(dd, sizeof dd, dir, "depth");
    if (!s) {
        set->has_depth = is_dir(dd);
        set->images = calloc((size_t)set->n, sizeof(char *));
        set->labels = calloc((size_t)set->n, sizeof(char *));
        set->depth = calloc((size_t)set->n, sizeof(char *));
        if (!set->images || !set->labels || !set->depth) s = mt_fail(MTMI_ERR_NOMEM, "out of memory listing '%s'", dir);
    }
    for (int i = 0; !s && i < set->n; i++) {
        if (!(set->images[i] = path3(dir, "images", set->stems[i])) || !(set->labels[i] = path3(dir, "labels", set->stems[i])) ||
            (set->has_depth && !(set->depth[i] = path3(dir, "depth", set->stems[i]))))
            s = MTMI_ERR_ARG;
        if (!s) s = need_file(set->labels[i], "every image needs its label map");
        if (!s && set->has_depth) s = need_file(set->depth[i], "the depth folder exists, so every image needs its depth map");
    }
    if (s) mt_eval_set_free(set);
    return s;
}

void mt_eval_set_free(mt_eval_set *set) {
    for (int i = 0; i < set->n; i++) {
        if (set->images) free(set->images[i]);
        if (set->labels) free(set->labels[i]);
        if (set->depth) free(set->depth[i]);
        free(set->stems[i]);
    }
    free(set->images);
    free(set->labels);
    free(set->depth);
    free(set->stems);
    memset(set, 0, sizeof *set);
}
