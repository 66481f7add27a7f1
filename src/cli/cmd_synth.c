/* mtmi synth -o DIR --count N [--size HxW] [--seed S] [--first I]:
 * synthetic street scenes with exact ground truth (src/synth), written as
 * a Cityscapes-style folder:
 *   DIR/images/<stem>.png   RGB
 *   DIR/labels/<stem>.png   8-bit train IDs 0-18, 255 = ignore
 *   DIR/depth/<stem>.png    16-bit metres x 256, 0 = no depth (KITTI)
 *   DIR/synth.json          what was made, and the pixels of each class
 *   DIR/vis/<stem>.png      with --vis: image | labels | depth, as run's vis
 * Scene i of seed S is mt_synth_scene_seed(S, i): a set can be extended
 * with --first, and sets of different seeds do not share scenes. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "synth/synth.h"

typedef struct synth_opts {
    const char *outdir;
    long count, first, seed;
    int w, h, vis;
} synth_opts;

enum { O_OUTPUT = 1, O_COUNT, O_FIRST, O_SEED, O_SIZE, O_VIS };
static const cli_opt g_opts[] = {
    {O_OUTPUT, "output", 'o', CLI_STR, "DIR", 0, 0, "the folder of the data set (required; made if missing)"},
    {O_OUTPUT, "output-dir", 0, CLI_STR, "DIR", 0, 0, "the same as --output (its older name)"},
    {O_COUNT, "count", 0, CLI_INT, "N", 1, 10000000, "how many scenes (required)"},
    {O_SIZE, "size", 0, CLI_STR, "HxW", 0, 0, "image size (default 1024x1024)"},
    {O_SEED, "seed", 0, CLI_INT, "S", 0, 1099511627776.0,
     "the set's seed (default 0); the same seed gives the same\npixels on every machine"},
    {O_FIRST, "first", 0, CLI_INT, "I", 0, 1000000000, "index of the first scene (default 0): stems s<S>_<index>"},
    {O_VIS, "vis", 0, CLI_FLAG, NULL, 0, 0,
     "also DIR/vis/<stem>.png: image | labels | depth in the colours\nof `mtmi run`'s vis (what a trained model should draw)"},
    {0},
};
const cli_command cli_cmd_synth = {
    "synth", "", 0, "street scenes with exact labels and depth (a Cityscapes-style folder)",
    "Renders N street scenes (road, sidewalks, buildings, vegetation, sky, poles,\n"
    "signs, traffic lights, walls, fences, cars, trucks, buses, pedestrians, riders)\n"
    "with exact per-pixel labels and depth, as a Cityscapes-style folder:\n"
    "  DIR/images/<stem>.png   RGB\n"
    "  DIR/labels/<stem>.png   8-bit Cityscapes train IDs, 255 = ignore\n"
    "  DIR/depth/<stem>.png    16-bit depth along the camera axis, metres x 256,\n"
    "                          0 = none (sky, or beyond 255.99 m)\n"
    "  DIR/synth.json          seed, size, stems and pixels per class",
    g_opts, NULL};

static int parse(int argc, char **argv, synth_opts *o) {
    o->count = -1;
    o->w = o->h = 1024;
    cli_parser p;
    cli_parser_init(&p, &cli_cmd_synth, argc, argv);
    int id;
    while ((id = cli_next(&p)) > 0) {
        switch (id) {
        case O_OUTPUT: o->outdir = p.value; break;
        case O_COUNT: o->count = p.num; break;
        case O_FIRST: o->first = p.num; break;
        case O_SEED: o->seed = p.num; break;
        case O_VIS: o->vis = 1; break;
        case O_SIZE:
            if (cli_hxw(p.value, 16384, &o->h, &o->w)) return cli_usage(&p, "bad --size '%s' (HxW, e.g. 1024x1024)", p.value);
            break;
        }
    }
    if (id == CLI_HELP) return -1;
    if (id == CLI_ERROR) return CLI_USAGE;
    if (!o->outdir) return cli_usage(&p, "no output folder given (-o DIR)");
    if (o->count < 0) return cli_usage(&p, "no scene count given (--count N)");
    return 0;
}

typedef struct scene_bufs {
    mt_image rgb, lab;
    float *depth, *unit; /* metres; the depth head's encoding of them (--vis) */
    uint16_t *d16;
} scene_bufs;

static int bufs_alloc(scene_bufs *b, int w, int h) {
    const size_t n = (size_t)w * h;
    b->rgb = (mt_image){w, h, 3, malloc(n * 3)};
    b->lab = (mt_image){w, h, 1, malloc(n)};
    b->depth = malloc(n * sizeof(float));
    b->d16 = malloc(n * sizeof(uint16_t));
    b->unit = malloc(n * sizeof(float));
    return b->rgb.px && b->lab.px && b->depth && b->d16 && b->unit ? 0 : -1;
}
static void bufs_free(scene_bufs *b) {
    mt_image_free(&b->rgb);
    mt_image_free(&b->lab);
    free(b->depth);
    free(b->d16);
    free(b->unit);
}

/* image | labels | depth (sky and beyond the encoding's far end drawn as
 * far), through run's vis. */
static mtmi_status write_vis(const char *path, scene_bufs *b, size_t n) {
    for (size_t i = 0; i < n; i++) b->unit[i] = b->depth[i] > 0 ? (float)mt_depth_unit(b->depth[i]) : 0.0f;
    mt_image vis;
    mtmi_status s = mt_vis_compose(&b->rgb, b->lab.px, b->rgb.w, b->rgb.h, b->unit, b->rgb.w, b->rgb.h, &vis);
    if (!s) s = mt_png_write(path, &vis);
    mt_image_free(&vis);
    return s;
}

/* Renders scene `index` and writes its three files; counts its pixels per
 * class into hist (256 bins). */
static mtmi_status make_scene(const synth_opts *o, long index, scene_bufs *b, double *hist) {
    mt_synth_scene *sc = NULL;
    mtmi_status s = mt_synth_scene_make(mt_synth_scene_seed((uint64_t)o->seed, (uint64_t)index), o->w, o->h, &sc);
    if (!s) s = mt_synth_render(sc, b->rgb.px, b->lab.px, b->depth);
    mt_synth_scene_free(sc);
    if (s) return s;
    const size_t n = (size_t)o->w * o->h;
    for (size_t i = 0; i < n; i++) {
        b->d16[i] = mt_synth_depth_u16(b->depth[i]);
        hist[b->lab.px[i]]++;
    }
    char stem[64], path[4][PATH_MAX];
    snprintf(stem, sizeof stem, "s%ld_%06ld.png", o->seed, index);
    static const char *const sub[4] = {"images", "labels", "depth", "vis"};
    for (int k = 0; k < 3 + o->vis; k++) {
        char rel[96];
        snprintf(rel, sizeof rel, "%s/%s", sub[k], stem);
        if ((s = mt_path_join(path[k], PATH_MAX, o->outdir, rel))) return s;
    }
    if ((s = mt_png_write(path[0], &b->rgb)) || (s = mt_png_write(path[1], &b->lab))) return s;
    if ((s = mt_png_write_gray16(path[2], o->w, o->h, b->d16)) || !o->vis) return s;
    return write_vis(path[3], b, n);
}

static int write_manifest(const synth_opts *o, const double *hist, double secs) {
    char path[PATH_MAX], tmp[PATH_MAX + 64];
    if (mt_path_join(path, sizeof path, o->outdir, "synth.json")) return cli_lib_error();
    FILE *f = mt_atomic_open(path, tmp, sizeof tmp);
    if (!f) return cli_lib_error();
    fprintf(f, "{\n  \"generator\": \"mtmi synth %s\",\n  \"seed\": %ld,\n  \"first\": %ld,\n  \"count\": %ld,\n", MTMI_VERSION,
            o->seed, o->first, o->count);
    fprintf(f, "  \"height\": %d,\n  \"width\": %d,\n  \"stems\": \"s%ld_<index, 6 digits>\",\n", o->h, o->w, o->seed);
    fprintf(f, "  \"depth_png\": \"16-bit metres x 256 along the camera axis, 0 = none\",\n  \"seconds\": %.3f,\n", secs);
    fprintf(f, "  \"pixels\": {");
    for (int c = 0; c < MT_SYNTH_CLASSES; c++) {
        fprintf(f, "%s", c ? ", " : "");
        mt_json_string(f, mt_cityscapes_names[c]);
        fprintf(f, ": %.0f", hist[c]);
    }
    fprintf(f, ", \"ignore\": %.0f}\n}\n", hist[MT_SYNTH_IGNORE]);
    if (mt_atomic_commit(f, tmp, path, !ferror(f))) return cli_lib_error();
    return 0;
}

int mt_cmd_synth(int argc, char **argv) {
    synth_opts o = {0};
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    static const char *const sub[4] = {"images", "labels", "depth", "vis"};
    for (int k = 0; k < 3 + o.vis; k++) {
        char d[PATH_MAX];
        if (mt_path_join(d, sizeof d, o.outdir, sub[k])) return cli_lib_error();
        if (mt_mkdirs(d)) return cli_error("synth: cannot create folder '%s'", d);
    }
    /* Scenes in parallel (each renders on one thread: the PNG encoding is
     * serial, so this keeps every core busy); the files do not depend on
     * the thread count. */
    double hist[256] = {0}, t0 = mt_now_ms();
    long done = 0;
    int failed = 0;
    char err[1024] = "";
    mt_signals_set_graceful(1);
#pragma omp parallel
    {
        scene_bufs b = {0};
        double h[256] = {0};
        int ok = !bufs_alloc(&b, o.w, o.h);
#pragma omp for schedule(dynamic, 1)
        for (long i = 0; i < o.count; i++) {
            if (failed || mt_stop_requested()) continue;
            mtmi_status s = ok ? make_scene(&o, o.first + i, &b, h) : mt_fail(MTMI_ERR_NOMEM, "synth: out of memory for a %dx%d scene", o.w, o.h);
#pragma omp critical(synth_progress)
            {
                if (s && !failed) snprintf(err, sizeof err, "%s", mtmi_last_error()), failed = 1;
                cli_progress("synth", (int)++done, (int)o.count, "", t0);
            }
        }
#pragma omp critical(synth_hist)
        for (int k = 0; k < 256; k++) hist[k] += h[k];
        bufs_free(&b);
    }
    if (failed) return cli_error("synth: %s", err);
    if (mt_stop_requested()) return 1;
    const double secs = (mt_now_ms() - t0) / 1000;
    if (write_manifest(&o, hist, secs)) return 1;
    printf("synth: %ld scene%s of %dx%d (seed %ld, first %ld) in %s/ in %.2f s (%.0f ms a scene on %d threads)\n", o.count,
           o.count == 1 ? "" : "s", o.h, o.w, o.seed, o.first, o.outdir, secs, 1000 * secs * omp_get_max_threads() / o.count,
           omp_get_max_threads());
    return 0;
}
