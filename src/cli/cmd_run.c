/* mtmi run: the multi-task app (SPEC 6).  Frames (PNG files, or synthetic
 * street scenes) go through the pipeline: encoder, then the heads on their
 * devices, N frames in flight; per frame it writes <stem>_seg.bin (int8
 * logits), <stem>_depth.bin (float32) and <stem>_vis.png, all atomically. */
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "image/image.h"
#include "pipeline/app.h"

#define RUN_MAX_SLOTS 64
#define RUN_CACHE_MAX 64  /* fitted sources kept in memory (3 MiB each at 1024x1024) */

typedef struct run_ctx {
    char **files;
    int nfiles;
    const char *outdir;
    int nwrite;               /* frames whose outputs are written (first pass) */
    int seg, depth;           /* output indices or -1 */
    /* Each source decoded and fitted once (frames cycle through them); up
     * to RUN_CACHE_MAX of them, decoded per frame beyond that.  A slot
     * points at its frame's image until the frame is written. */
    mt_image *cache;
    int ncache;
    mt_image own[RUN_MAX_SLOTS];
    const mt_image *fitted[RUN_MAX_SLOTS];
    char stem[RUN_MAX_SLOTS][256];
    char *json_outputs;       /* ",\n  \"outputs\": [...]" member for --json */
    size_t json_len, json_cap;
} run_ctx;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int has_png_ext(const char *n) {
    size_t l = strlen(n);
    return l > 4 && n[l - 4] == '.' && tolower((unsigned char)n[l - 3]) == 'p' && tolower((unsigned char)n[l - 2]) == 'n' &&
           tolower((unsigned char)n[l - 1]) == 'g';
}

static int list_pngs(const char *dir, run_ctx *c) {
    DIR *d = opendir(dir);
    if (!d) return cli_error("run: cannot open image folder '%s'", dir);
    struct dirent *e;
    int cap = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !has_png_ext(e->d_name)) continue;
        if (c->nfiles == cap) {
            cap = cap ? cap * 2 : 16;
            char **f = realloc(c->files, sizeof(char *) * cap);
            if (!f) break;
            c->files = f;
        }
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(n);
        if (!p) break;
        snprintf(p, n, "%s/%s", dir, e->d_name);
        c->files[c->nfiles++] = p;
    }
    closedir(d);
    if (!c->nfiles) return cli_error("run: no PNG images in '%s'", dir);
    qsort(c->files, c->nfiles, sizeof(char *), cmp_str);
    return 0;
}

static void stem_of(const char *path, char *out, size_t cap) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, cap, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

/* Loads (or synthesizes) frame `index`, fits it to the model's input and
 * normalizes it into the frame's input tensor (every batch element). */
static int prepare_frame(run_ctx *c, mt_app *app, mt_frame *f) {
    mt_image src = {0};
    mtmi_status s = MTMI_OK;
    int k = f->slot;
    int nsrc = c->nfiles ? c->nfiles : 8;
    int i = (int)(f->index % nsrc);
    if (c->nfiles) stem_of(c->files[i], c->stem[k], sizeof c->stem[k]);
    else snprintf(c->stem[k], sizeof c->stem[k], "synth_%03d", i);
    mt_image *dst = i < c->ncache ? &c->cache[i] : &c->own[k];
    if (dst == &c->own[k]) mt_image_free(dst); /* not cached: this slot's previous frame */
    if (!dst->px) {
        if (c->nfiles) s = mt_png_read(c->files[i], &src);
        /* A different scene per frame, at a camera-like 2:1 aspect, so the
         * centre crop and resize are exercised as with real images. */
        else s = mt_image_synth_street(app->width * 2, app->height, (uint64_t)i, &src);
        if (s) return cli_lib_error();
        s = mt_image_fit(&src, app->width, app->height, dst);
        mt_image_free(&src);
        if (s) return cli_lib_error();
    }
    c->fitted[k] = dst;
    mt_app_fill_input(app->pipe, f, dst);
    return 0;
}

static void json_add(run_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void json_add(run_ctx *c, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (c->json_len + n + 1 > c->json_cap) {
        size_t nc = (c->json_cap + n + 1) * 2;
        char *p = realloc(c->json_outputs, nc);
        if (!p) return;
        c->json_outputs = p;
        c->json_cap = nc;
    }
    memcpy(c->json_outputs + c->json_len, buf, n + 1);
    c->json_len += n;
}

/* Writes the frame's three files.  The seg logits are quantized to int8
 * symmetrically per tensor: scale = max|logit| / 127, q = round(x / scale).
 * The scale (printed and in the JSON report) dequantizes them; the argmax,
 * which is what the class map needs, survives except between logits closer
 * than one step. */
static int write_outputs(run_ctx *c, mt_app *app, mt_frame *f, int quiet) {
    int k = f->slot;
    char path[4096];
    int h = app->height, w = app->width;
    mt_image parts[3];
    int nparts = 0;
    parts[nparts++] = *c->fitted[k];
    uint8_t *cls = NULL, *crgb = NULL, *drgb = NULL;
    int8_t *q = NULL;
    mt_image cimg = {0}, dimg = {0}, cfit = {0}, dfit = {0}, vis = {0};
    int rc = 1;
    double scale = 0;
    if (c->seg >= 0) {
        const mt_tview *t = &f->outputs[c->seg];
        int nc = (int)t->dims[1], oh = (int)t->dims[2], ow = (int)t->dims[3];
        size_t n = (size_t)nc * oh * ow;
        const float *x = t->data;
        float mx = 0;
        for (size_t i = 0; i < n; i++)
            if (fabsf(x[i]) > mx) mx = fabsf(x[i]);
        scale = mx > 0 && isfinite(mx) ? mx / 127.0 : 1.0;
        q = malloc(n);
        cls = malloc((size_t)oh * ow);
        crgb = malloc((size_t)oh * ow * 3);
        if (!q || !cls || !crgb) goto oom;
        for (size_t i = 0; i < n; i++) {
            double v = x[i] / scale;
            v = v > 127 ? 127 : v < -127 ? -127 : v;
            q[i] = (int8_t)lrint(isfinite(v) ? v : 0);
        }
        snprintf(path, sizeof path, "%s/%s_seg.bin", c->outdir, c->stem[k]);
        if (mt_write_file_atomic(path, q, n)) goto lib_fail;
        mt_argmax_chw(x, nc, ow, oh, cls);
        mt_colorize_classes(cls, ow, oh, crgb);
        cimg = (mt_image){ow, oh, 3, crgb};
        crgb = NULL;
        if (oh != h || ow != w) {
            if (mt_image_fit(&cimg, w, h, &cfit)) goto lib_fail;
            parts[nparts++] = cfit;
        } else parts[nparts++] = cimg;
        json_add(c, "%s\n    {\"frame\": %lld, \"stem\": \"%s\", \"seg\": \"%s_seg.bin\", \"seg_shape\": [%d, %d, %d], \"seg_scale\": %.9g",
                 c->json_len ? "," : "", (long long)f->index, c->stem[k], c->stem[k], nc, oh, ow, scale);
    } else {
        json_add(c, "%s\n    {\"frame\": %lld, \"stem\": \"%s\"", c->json_len ? "," : "", (long long)f->index, c->stem[k]);
    }
    if (c->depth >= 0) {
        const mt_tview *t = &f->outputs[c->depth];
        int oh = (int)t->dims[2], ow = (int)t->dims[3];
        snprintf(path, sizeof path, "%s/%s_depth.bin", c->outdir, c->stem[k]);
        if (mt_write_file_atomic(path, t->data, (size_t)oh * ow * sizeof(float))) goto lib_fail;
        drgb = malloc((size_t)oh * ow * 3);
        if (!drgb) goto oom;
        mt_colorize_depth(t->data, ow, oh, drgb);
        dimg = (mt_image){ow, oh, 3, drgb};
        drgb = NULL;
        if (oh != h || ow != w) {
            if (mt_image_fit(&dimg, w, h, &dfit)) goto lib_fail;
            parts[nparts++] = dfit;
        } else parts[nparts++] = dimg;
        json_add(c, ", \"depth\": \"%s_depth.bin\", \"depth_shape\": [%d, %d]", c->stem[k], oh, ow);
    }
    json_add(c, ", \"vis\": \"%s_vis.png\"}", c->stem[k]);
    if (mt_image_hconcat(parts, nparts, &vis)) goto lib_fail;
    snprintf(path, sizeof path, "%s/%s_vis.png", c->outdir, c->stem[k]);
    if (mt_png_write(path, &vis)) goto lib_fail;
    if (!quiet) {
        if (c->seg >= 0) printf("wrote %s/%s_{seg.bin (int8, scale %.6g),depth.bin,vis.png}\n", c->outdir, c->stem[k], scale);
        else printf("wrote %s/%s_vis.png\n", c->outdir, c->stem[k]);
    }
    rc = 0;
    goto done;
oom:
    cli_error("run: out of memory writing frame %lld", (long long)f->index);
    goto done;
lib_fail:
    cli_lib_error();
done:
    free(q);
    free(cls);
    free(crgb);
    free(drgb);
    mt_image_free(&cimg);
    mt_image_free(&dimg);
    mt_image_free(&cfit);
    mt_image_free(&dfit);
    mt_image_free(&vis);
    return rc;
}

static void usage(void) {
    printf("usage: mtmi run [--model M.onnx [--random-weights SEED]] [--images DIR] [--place P] [--cache F]\n"
           "                [--frames N] [--inflight N | --sync] [--size HxW] [--threads N] [--host-preprocess]\n"
           "                [-o results/] [--trace trace.json] [--json report.json] [--quiet]\n"
           "The multi-task app: each frame goes through the encoder and then the heads, on\n"
           "the devices of the placement, with N frames in flight (default 2; --sync = 1).\n"
           "  --model M        ONNX model; default: the built-in MTMI network (seeded weights)\n"
           "  --images DIR     PNG frames (any PNG kind; centre-cropped and resized to the\n"
           "                   model's input); default: synthetic street scenes\n"
           "  --place P        e.g. encoder=cpu/fp32,depth=cpu:1/fp32,seg=cpu:2/fp32, or\n"
           "                   encoder=cuda:0/fp16,depth=cuda:0.sm16/int8,...; `auto` builds\n"
           "                   and times the candidate placements and keeps the fastest;\n"
           "                   default: the GPU when there is one, else the CPU split\n"
           "                   into a device per stage (two cores or more each)\n"
           "  --cache F        calibration cache (mtmi calibrate) for int8 stages, e.g.\n"
           "                   --place encoder=cpu,seg=cpu:1/int8,depth=cpu:1/int8\n"
           "  --frames N       frames to run (images repeat); default: one per image, or 4\n"
           "  --size HxW       input size (multiples of 32); default: the model's\n"
           "  --threads N      CPU threads, split equally among CPU devices; default all\n"
           "  --host-preprocess  normalize frames on this thread (default: the encoder's\n"
           "                   device does it, from the 8-bit pixels)\n"
           "  -o DIR           writes <stem>_seg.bin (int8 logits CxHxW, symmetric per-tensor\n"
           "                   scale max|x|/127, printed and in the JSON), <stem>_depth.bin\n"
           "                   (float32 HxW) and <stem>_vis.png (input | classes | depth)\n"
           "                   for the first pass over the frames; default results/\n"
           "  --trace F        Chrome trace-event timeline (open in ui.perfetto.dev)\n"
           "  --json F         summary and per-frame outputs as JSON\n"
           "  --inject-error S:F  testing: make stage S (0 = encoder) fail at frame F\n");
}

int mt_cmd_run(int argc, char **argv) {
    mt_app_opts o = {.inject_stage = -1};
    const char *images = NULL, *trace = NULL, *json = NULL;
    run_ctx c;
    memset(&c, 0, sizeof c);
    c.outdir = "results";
    long frames = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        }
        int took = cli_app_option("run", argc, argv, &i, &o, RUN_MAX_SLOTS);
        if (took < 0) return 1;
        if (took) continue;
        if (!strcmp(a, "--images") && more) images = argv[++i];
        else if (!strcmp(a, "--frames") && more) {
            if ((frames = cli_parse_long(a, argv[++i], 1, 100000000)) < 0) return 1;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output-dir")) && more) c.outdir = argv[++i];
        else if (!strcmp(a, "--trace") && more) trace = argv[++i];
        else if (!strcmp(a, "--json") && more) json = argv[++i];
        else return cli_error("run: unknown or incomplete option '%s' (try mtmi run --help)", a);
    }
    int rc = 1;
    mt_app app;
    memset(&app, 0, sizeof app);
    mt_stats st;
    memset(&st, 0, sizeof st);
    if (images && list_pngs(images, &c)) goto out;
    if (!frames) frames = c.nfiles ? c.nfiles : 4;
    c.nwrite = (int)(c.nfiles ? MT_MIN(frames, c.nfiles) : MT_MIN(frames, 8));
    if (mt_mkdirs(c.outdir)) {
        cli_error("run: cannot create output folder '%s'", c.outdir);
        goto out;
    }
    if (mt_app_open(&o, &app)) {
        cli_lib_error();
        goto out;
    }
    c.seg = mt_app_seg_output(app.pipe);
    c.depth = mt_app_depth_output(app.pipe);
    c.ncache = c.nfiles ? (c.nfiles < RUN_CACHE_MAX ? c.nfiles : RUN_CACHE_MAX) : 8;
    if (!(c.cache = calloc(c.ncache, sizeof *c.cache))) {
        cli_error("run: out of memory");
        goto out;
    }
    printf("model: %s, input %dx%dx%dx%d\n", app.model_desc, app.batch, app.channels, app.height, app.width);
    printf("placement: %s; %d frame%s in flight; %s; built in %.0f ms\n", app.placement, mt_pipeline_inflight(app.pipe),
           mt_pipeline_inflight(app.pipe) > 1 ? "s" : "", c.nfiles ? "PNG frames" : "synthetic frames", app.build_ms);
    mt_stats_init(&st, app.pipe);
    long sub = 0, done = 0;
    const int inflight = mt_pipeline_inflight(app.pipe);
    while (done < frames) {
        mt_frame *f;
        if (sub < frames && mt_pipeline_pending(app.pipe) < inflight) {
            if (mt_pipeline_begin(app.pipe, &f)) {
                cli_lib_error();
                goto out;
            }
            if (prepare_frame(&c, &app, f)) goto out;
            if (mt_pipeline_submit(app.pipe, f)) {
                cli_lib_error();
                goto out;
            }
            sub++;
            continue;
        }
        if (mt_pipeline_wait(app.pipe, &f)) {
            cli_lib_error();
            goto out;
        }
        mt_stats_add(&st, f);
        if (!o.quiet) {
            char line[256];
            mt_stats_loop_line(&st, st.n - 1, line, sizeof line);
            printf("%s\n", line);
            fflush(stdout);
        }
        /* While this frame's files are written, the pipeline goes on with
         * the frames still in flight. */
        if (f->index < c.nwrite && write_outputs(&c, &app, f, o.quiet)) goto out;
        mt_pipeline_release(app.pipe, f);
        done++;
    }
    mt_summary sm;
    mt_stats_summary(&st, st.n > 2 ? 1 : 0, &sm);
    mt_app_print_summary(stdout, &app, &st, &sm);
    if (trace) {
        if (mt_stats_write_trace(&st, trace)) {
            cli_lib_error();
            goto out;
        }
        printf("trace: %s (open in ui.perfetto.dev)\n", trace);
    }
    if (json) {
        char *extra = malloc(c.json_len + 64);
        if (!extra) {
            cli_error("run: out of memory");
            goto out;
        }
        snprintf(extra, c.json_len + 64, ",\n  \"outputs\": [%s\n  ]", c.json_outputs ? c.json_outputs : "");
        mtmi_status s = mt_app_write_json(json, "run", &app, &st, &sm, extra);
        free(extra);
        if (s) {
            cli_lib_error();
            goto out;
        }
    }
    rc = 0;
out:
    mt_stats_free(&st);
    mt_app_close(&app);
    for (int i = 0; i < RUN_MAX_SLOTS; i++) mt_image_free(&c.own[i]);
    for (int i = 0; i < c.ncache; i++) mt_image_free(&c.cache[i]);
    free(c.cache);
    for (int i = 0; i < c.nfiles; i++) free(c.files[i]);
    free(c.files);
    free(c.json_outputs);
    return rc;
}
