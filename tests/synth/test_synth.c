/* The scene generator (src/synth): deterministic (a golden hash of a small
 * scene's pixels, labels and depth; the same with 1 or 2 threads and on a
 * second render), and its labels agree with its geometry, checked from the
 * scene description with independently written rays: the point at each
 * pixel's depth lies on the surface its label names (road and terrain on
 * their planes, sidewalks on the curb's top or face, objects inside a
 * primitive of their class), sky exactly where rays miss everything, and
 * the road's depth grows towards the horizon in every column. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "image/image.h"
#include "oracle.h"
#include "synth/synth.h"

/* FNV-1a 64 over the rendered bytes (rgb, labels, depth as mtmi synth
 * writes it: 16-bit metres x 256) of scene mt_synth_scene_seed(7, 0) at
 * 96x64.  Any change to the generator's output changes it: update it
 * then, and say so in the commit. */
#define GOLDEN_HASH UINT64_C(0xa76db4c56f628a0c)

typedef struct rendered {
    mt_synth_scene *s;
    uint8_t *rgb, *lab;
    float *depth;
} rendered;

static int render(uint64_t seed, int w, int h, rendered *r) {
    memset(r, 0, sizeof *r);
    if (mt_synth_scene_make(seed, w, h, &r->s)) return -1;
    const size_t n = (size_t)w * h;
    r->rgb = malloc(n * 3), r->lab = malloc(n), r->depth = malloc(n * sizeof(float));
    if (!r->rgb || !r->lab || !r->depth) return -1;
    return mt_synth_render(r->s, r->rgb, r->lab, r->depth) ? -1 : 0;
}
static void rendered_free(rendered *r) {
    mt_synth_scene_free(r->s);
    free(r->rgb), free(r->lab), free(r->depth);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * UINT64_C(0x100000001b3);
    return h;
}
static uint64_t hash_rendered(const rendered *r) {
    const size_t n = (size_t)r->s->w * r->s->h;
    uint64_t h = fnv(UINT64_C(0xcbf29ce484222325), r->rgb, n * 3);
    h = fnv(h, r->lab, n);
    for (size_t i = 0; i < n; i++) {
        const uint16_t d = mt_synth_depth_u16(r->depth[i]);
        const uint8_t le[2] = {(uint8_t)(d & 255), (uint8_t)(d >> 8)};
        h = fnv(h, le, 2);
    }
    return h;
}

static void test_determinism(void) {
    rendered a, b, c;
    omp_set_num_threads(2);
    const int ok = !render(mt_synth_scene_seed(7, 0), 96, 64, &a) && !render(mt_synth_scene_seed(7, 0), 96, 64, &b);
    omp_set_num_threads(1);
    const int ok1 = !render(mt_synth_scene_seed(7, 0), 96, 64, &c);
    omp_set_num_threads(2);
    CHECK(ok && ok1, "render: %s", mtmi_last_error());
    if (ok && ok1) {
        const uint64_t ha = hash_rendered(&a), hb = hash_rendered(&b), hc = hash_rendered(&c);
        printf("determinism: scene (7, 0) at 96x64: hash %016llx (golden %016llx), again %016llx, one thread %016llx\n",
               (unsigned long long)ha, (unsigned long long)GOLDEN_HASH, (unsigned long long)hb, (unsigned long long)hc);
        CHECK(ha == hb && ha == hc, "the same scene rendered three times differs");
        CHECK(ha == GOLDEN_HASH, "scene (7, 0) hash %016llx, golden %016llx: the generator's output changed", (unsigned long long)ha,
              (unsigned long long)GOLDEN_HASH);
    }
    rendered_free(&a), rendered_free(&b), rendered_free(&c);
    /* distinct scenes for distinct (seed, index) */
    CHECK(mt_synth_scene_seed(7, 0) != mt_synth_scene_seed(7, 1) && mt_synth_scene_seed(7, 0) != mt_synth_scene_seed(8, 0),
          "scene seeds collide");
    /* run's synthetic frames are the generator's scenes of seed 0 */
    mt_image img;
    rendered s0;
    CHECK(!mt_image_synth_street(80, 48, 3, &img) && !render(mt_synth_scene_seed(0, 3), 80, 48, &s0), "synth street");
    if (img.px && s0.rgb) CHECK(!memcmp(img.px, s0.rgb, 80 * 48 * 3), "mt_image_synth_street is not scene (0, 3)");
    mt_image_free(&img);
    rendered_free(&s0);
}

static void test_depth_u16(void) {
    CHECK(mt_synth_depth_u16(0) == 0 && mt_synth_depth_u16(-1) == 0, "no depth is 0");
    CHECK(mt_synth_depth_u16(1.0f) == 256 && mt_synth_depth_u16(10.5f) == 2688, "metres x 256");
    CHECK(mt_synth_depth_u16(1.0f / 512) == 1 && mt_synth_depth_u16(1.0f / 1024) == 0, "rounding to nearest");
    CHECK(mt_synth_depth_u16(255.99f) == 65533 && mt_synth_depth_u16(256.1f) == 0, "beyond 255.99 m: none");
    /* the depth encoding's ends and its inverse */
    CHECK(fabs(mt_depth_metres(1) - MT_DEPTH_NEAR) < 1e-12 && fabs(mt_depth_metres(0) - MT_DEPTH_FAR) < 1e-9, "encoding ends");
    CHECK(fabs(mt_depth_metres(0.5) - sqrt(MT_DEPTH_NEAR * MT_DEPTH_FAR)) < 1e-9, "encoding middle is the geometric mean");
    double worst = 0;
    for (double z = 0.6; z < 79; z *= 1.1) worst = fmax(worst, fabs(mt_depth_metres(mt_depth_unit(z)) / z - 1));
    CHECK(worst < 1e-12, "encoding round trip %.3g", worst);
    CHECK(fabs(mt_depth_metres(NAN) - MT_DEPTH_FAR) < 1e-9 && mt_depth_unit(0) == 1 && mt_depth_unit(1000) == 0, "encoding clips");
}

/* The ray through pixel (u, v)'s centre from the camera description,
 * written again here. */
static void ray(const mt_synth_scene *s, int u, int v, double d[3]) {
    const double a = (u + 0.5 - s->cx) / s->focal, b = (s->cy - (v + 0.5)) / s->focal;
    for (int k = 0; k < 3; k++) d[k] = a * s->right[k] + b * s->up[k] + s->fwd[k];
}

static int inside(const mt_synth_prim *p, const double P[3], double tol) {
    for (int k = 0; k < 3; k++)
        if (P[k] < p->lo[k] - tol || P[k] > p->hi[k] + tol) return 0;
    return 1;
}

typedef struct geo_stats {
    long wrong, pixels, classes[256];
    int first_bad;
} geo_stats;

/* Why pixel i disagrees with the geometry ("" if it agrees). */
static const char *disagrees(const mt_synth_scene *s, int label, double depth, const double d[3], const double P[3], double tol) {
    const double ax = fabs(P[0]), rh = s->road_half;
    if (label == MT_CLS_SKY) return depth != 0 ? "sky with a depth" : d[1] < 0 ? "sky below the horizon (the ground is infinite)" : "";
    if (!(depth > 0)) return "no depth off the sky";
    if (label == MT_CLS_ROAD) return fabs(P[1]) > tol || ax > rh + tol ? "road off the road plane" : "";
    const int side = P[0] > 0, beyond = ax - rh > s->walk[side] - tol;
    if (label == MT_CLS_SIDEWALK) {
        const int top = fabs(P[1] - s->curb_h) < tol && ax > rh - tol && ax < rh + s->walk[side] + tol;
        const int face = fabs(ax - rh) < tol && P[1] > -tol && P[1] < s->curb_h + tol;
        return top || face ? "" : "sidewalk off the curb's top and face";
    }
    if (label == MT_CLS_TERRAIN) return fabs(P[1] - s->curb_h) > tol || !beyond ? "terrain off the grass" : "";
    for (int i = 0; i < s->nprims; i++)
        if (s->prims[i].label == label && inside(&s->prims[i], P, tol)) return "";
    return "no primitive of the class there";
}

static void check_geometry(const rendered *r, geo_stats *st) {
    const mt_synth_scene *s = r->s;
    for (int v = 0; v < s->h; v++)
        for (int u = 0; u < s->w; u++) {
            const size_t i = (size_t)v * s->w + u;
            double d[3], P[3];
            ray(s, u, v, d);
            for (int k = 0; k < 3; k++) P[k] = s->cam[k] + r->depth[i] * d[k];
            const double tol = 1e-4 * (1 + r->depth[i]);
            const char *why = disagrees(s, r->lab[i], r->depth[i], d, P, tol);
            st->classes[r->lab[i]]++;
            st->pixels++;
            if (why[0]) {
                if (!st->wrong++)
                    printf("geometry: scene %016llx pixel (%d, %d) label %d depth %.4f at (%.3f %.3f %.3f): %s\n",
                           (unsigned long long)s->seed, u, v, r->lab[i], r->depth[i], P[0], P[1], P[2], why);
            }
        }
}

/* Along every column the road's depth grows strictly towards the horizon
 * (upwards); returns the columns checked with at least 8 road pixels. */
static int check_road_depth(const rendered *r, long *bad) {
    const mt_synth_scene *s = r->s;
    int cols = 0;
    for (int u = 0; u < s->w; u++) {
        double prev = 0;
        int n = 0;
        for (int v = s->h - 1; v >= 0; v--) {
            const size_t i = (size_t)v * s->w + u;
            if (r->lab[i] != MT_CLS_ROAD) continue;
            if (n++ && !(r->depth[i] > prev)) ++*bad;
            prev = r->depth[i];
        }
        cols += n >= 8;
    }
    return cols;
}

static void test_geometry(uint64_t seed) {
    geo_stats st = {0};
    long road_bad = 0;
    int road_cols = 0, nscenes = 6, min_classes = 99;
    for (int k = 0; k < nscenes; k++) {
        rendered r;
        const int w = k % 2 ? 256 : 192, h = k % 2 ? 160 : 192;
        if (render(mt_synth_scene_seed(seed, (uint64_t)k), w, h, &r)) {
            CHECK(0, "render: %s", mtmi_last_error());
            rendered_free(&r);
            continue;
        }
        long before[256];
        memcpy(before, st.classes, sizeof before);
        check_geometry(&r, &st);
        road_cols += check_road_depth(&r, &road_bad);
        int ncls = 0;
        for (int c = 0; c < 256; c++) ncls += st.classes[c] > before[c];
        min_classes = ncls < min_classes ? ncls : min_classes;
        rendered_free(&r);
    }
    int present = 0;
    for (int c = 0; c < MT_SYNTH_CLASSES; c++) present += st.classes[c] > 0;
    printf("geometry: %ld pixels of %d scenes, %ld disagree with the scene; %d of 19 classes present (at least %d a scene), "
           "road %.1f %%, sky %.1f %%; road depth not growing upwards at %ld pixels of %d columns\n",
           st.pixels, nscenes, st.wrong, present, min_classes, 100.0 * st.classes[MT_CLS_ROAD] / st.pixels,
           100.0 * st.classes[MT_CLS_SKY] / st.pixels, road_bad, road_cols);
    CHECK(st.wrong == 0, "%ld pixels' labels disagree with the geometry", st.wrong);
    CHECK(road_bad == 0 && road_cols > 100, "road depth towards the horizon: %ld bad, %d columns", road_bad, road_cols);
    /* discriminative: many classes, none swamping the frame */
    CHECK(present >= 14 && min_classes >= 7, "classes: %d present, %d in the poorest scene", present, min_classes);
    CHECK(st.classes[MT_CLS_ROAD] < 0.6 * st.pixels && st.classes[MT_CLS_SKY] > 0.02 * st.pixels, "class balance");
}

/* Different lighting and content between scenes: the images differ in
 * brightness and the sky's colour is not constant. */
static void test_variety(uint64_t seed) {
    double lo = 1e9, hi = 0;
    for (int k = 0; k < 8; k++) {
        rendered r;
        if (render(mt_synth_scene_seed(seed + 1, (uint64_t)k), 64, 64, &r)) {
            CHECK(0, "render: %s", mtmi_last_error());
            rendered_free(&r);
            continue;
        }
        double m = 0;
        for (int i = 0; i < 64 * 64 * 3; i++) m += r.rgb[i];
        m /= 64 * 64 * 3;
        lo = m < lo ? m : lo, hi = m > hi ? m : hi;
        rendered_free(&r);
    }
    printf("variety: mean brightness of 8 scenes %.1f..%.1f\n", lo, hi);
    CHECK(hi - lo > 10, "scenes barely differ in brightness (%.1f..%.1f)", lo, hi);
}

int main(void) {
    const uint64_t seed = oracle_seed(11);
    test_depth_u16();
    test_determinism();
    test_geometry(seed);
    test_variety(seed);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
