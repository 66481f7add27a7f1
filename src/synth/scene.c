/* The layout of a synthetic street scene: camera, street cross-section,
 * lighting, and the primitives of every object (objects.c builds the
 * composite ones).  Every choice comes from one splitmix64 stream seeded
 * by the scene's seed, drawn in a fixed order, with only + - * / sqrt on
 * doubles (see synth.h on determinism). */
#include "synth/synth_impl.h"

#include <stdlib.h>
#include <string.h>

uint64_t mt_synth_scene_seed(uint64_t seed, uint64_t i) {
    /* Two rounds of splitmix64's finalizer over (seed, i): neighbouring
     * seeds and indices give unrelated scenes. */
    uint64_t z = seed * 0x9E3779B97F4A7C15ull ^ (i + 0x632BE59BD9B4E019ull) * 0xD1B54A32D192ED03ull;
    for (int k = 0; k < 2; k++) {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
    }
    return z;
}

uint64_t syn_next(syn_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
double syn_u(syn_rng *r, double lo, double hi) { return lo + (hi - lo) * ((double)(syn_next(r) >> 11) * (1.0 / 9007199254740992.0)); }
int syn_i(syn_rng *r, int lo, int hi) { return lo + (int)(syn_next(r) % (uint64_t)(hi - lo + 1)); }
int syn_p(syn_rng *r, double p) { return syn_u(r, 0, 1) < p; }

mt_synth_prim *syn_add(mt_synth_scene *s, int kind, int label, int tex, double x0, double y0, double z0, double x1, double y1,
                       double z1, const float col[3]) {
    if (s->cap < 0) return NULL; /* an earlier allocation failed */
    if (s->nprims == s->cap) {
        int cap = s->cap ? s->cap * 2 : 256;
        mt_synth_prim *p = realloc(s->prims, sizeof *p * (size_t)cap);
        if (!p) {
            s->cap = -1;
            return NULL;
        }
        s->prims = p;
        s->cap = cap;
    }
    mt_synth_prim *p = &s->prims[s->nprims++];
    memset(p, 0, sizeof *p);
    p->kind = (uint8_t)kind;
    p->label = (uint8_t)label;
    p->tex = (uint8_t)tex;
    p->lo[0] = x0 < x1 ? x0 : x1, p->hi[0] = x0 < x1 ? x1 : x0;
    p->lo[1] = y0 < y1 ? y0 : y1, p->hi[1] = y0 < y1 ? y1 : y0;
    p->lo[2] = z0 < z1 ? z0 : z1, p->hi[2] = z0 < z1 ? z1 : z0;
    for (int k = 0; k < 3; k++) p->col[k] = p->col2[k] = col[k];
    return p;
}

void syn_jitter(syn_rng *r, const float base[3], double amount, float out[3]) {
    const double g = syn_u(r, 1 - amount, 1 + amount);
    for (int k = 0; k < 3; k++) {
        double v = base[k] * g * syn_u(r, 1 - amount / 2, 1 + amount / 2);
        out[k] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
    }
}

/* v / |v| (sqrt is correctly rounded: deterministic). */
static void normalize3(double v[3]) {
    double n = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    for (int k = 0; k < 3; k++) v[k] /= n;
}

/* Pinhole camera in a lane: height, pitch and yaw as slopes (no
 * trigonometry), focal length MT_SYNTH_FOCAL of the image height so a wider
 * image of the same scene shows more at the sides and nothing changes in
 * the middle (what `run`'s centre crop relies on). */
static void make_camera(mt_synth_scene *s, syn_rng *r) {
    const int lane = syn_i(r, s->lanes / 2, s->lanes - 1);
    s->cam[0] = -s->road_half + (lane + 0.5) * s->lane_w + syn_u(r, -0.35, 0.35);
    s->cam[1] = syn_u(r, 1.3, 1.75);
    s->cam[2] = 0;
    const double tp = syn_u(r, -0.01, 0.07), ty = syn_u(r, -0.07, 0.07);
    const double cp = 1 / sqrt(1 + tp * tp), sp = tp * cp, cy = 1 / sqrt(1 + ty * ty), sy = ty * cy;
    const double f0[3] = {0, -sp, cp}, u0[3] = {0, cp, sp}, r0[3] = {1, 0, 0};
    /* yaw about +y */
    s->fwd[0] = f0[0] * cy + f0[2] * sy, s->fwd[1] = f0[1], s->fwd[2] = -f0[0] * sy + f0[2] * cy;
    s->up[0] = u0[0] * cy + u0[2] * sy, s->up[1] = u0[1], s->up[2] = -u0[0] * sy + u0[2] * cy;
    s->right[0] = r0[0] * cy + r0[2] * sy, s->right[1] = r0[1], s->right[2] = -r0[0] * sy + r0[2] * cy;
    /* One camera for every scene, as a data set recorded with one rig: the
     * depth of a single picture is defined only for a known focal length
     * (a scene seen with focal f looks like one stretched along the view
     * seen with f'), and the earlier draw of 0.62-0.95 h left any network
     * an AbsRel floor of ~0.106 (docs/GROUND_TRUTH.md).  The draw stays so
     * that every later draw, and so the layout of each seed, is unchanged. */
    (void)syn_u(r, 0.62, 0.95);
    s->focal = MT_SYNTH_FOCAL * s->h;
    s->cx = 0.5 * s->w;
    s->cy = 0.5 * s->h;
}

static void make_street(mt_synth_scene *s, syn_rng *r) {
    s->lanes = syn_i(r, 2, 4);
    s->lane_w = syn_u(r, 3.0, 3.6);
    s->road_half = 0.5 * s->lanes * s->lane_w;
    s->curb_h = syn_u(r, 0.10, 0.18);
    for (int side = 0; side < 2; side++) {
        s->walk[side] = syn_u(r, 1.8, 5.0);
        s->terrain[side] = syn_p(r, 0.55) ? syn_u(r, 1.0, 5.0) : 0;
    }
    s->crosswalk = syn_p(r, 0.45);
    s->cross_z0 = syn_u(r, 9, 30);
    s->cross_z1 = s->cross_z0 + syn_u(r, 3, 4.5);
    s->dash_phase = syn_u(r, 0, 9);
    s->asphalt = (float)syn_u(r, 0.17, 0.33);
    static const float walks[4][3] = {{0.62f, 0.60f, 0.57f}, {0.70f, 0.64f, 0.55f}, {0.55f, 0.50f, 0.50f}, {0.50f, 0.52f, 0.56f}};
    static const float grass[3][3] = {{0.30f, 0.45f, 0.16f}, {0.42f, 0.48f, 0.22f}, {0.48f, 0.45f, 0.28f}};
    static const float curb[3] = {0.66f, 0.66f, 0.64f}, white[3] = {0.86f, 0.86f, 0.84f};
    syn_jitter(r, walks[syn_i(r, 0, 3)], 0.12, s->walk_col);
    syn_jitter(r, grass[syn_i(r, 0, 2)], 0.15, s->grass_col);
    syn_jitter(r, curb, 0.1, s->curb_col);
    syn_jitter(r, white, 0.08, s->line_col);
    s->yellow_centre = syn_p(r, 0.3);
}

/* Clear, overcast or dusk light; the white balance, exposure, haze and
 * sensor noise vary in each. */
static void make_light(mt_synth_scene *s, syn_rng *r) {
    const double kind = syn_u(r, 0, 1);
    s->overcast = kind < 0.3;
    const int dusk = kind > 0.85;
    double sun[3] = {syn_u(r, -1, 1), dusk ? syn_u(r, 0.08, 0.25) : syn_u(r, 0.3, 1.4), syn_u(r, -1, 1)};
    normalize3(sun);
    memcpy(s->sun, sun, sizeof sun);
    s->sun_i = s->overcast ? syn_u(r, 0.1, 0.25) : dusk ? syn_u(r, 0.4, 0.7) : syn_u(r, 0.6, 0.95);
    s->amb_i = s->overcast ? syn_u(r, 0.65, 0.95) : dusk ? syn_u(r, 0.25, 0.4) : syn_u(r, 0.3, 0.5);
    static const float top_clear[3] = {0.22f, 0.42f, 0.82f}, hor_clear[3] = {0.68f, 0.80f, 0.95f};
    static const float top_over[3] = {0.62f, 0.64f, 0.68f}, hor_over[3] = {0.80f, 0.81f, 0.83f};
    static const float top_dusk[3] = {0.25f, 0.30f, 0.55f}, hor_dusk[3] = {0.95f, 0.62f, 0.38f};
    syn_jitter(r, s->overcast ? top_over : dusk ? top_dusk : top_clear, 0.12, s->sky_top);
    syn_jitter(r, s->overcast ? hor_over : dusk ? hor_dusk : hor_clear, 0.08, s->sky_hor);
    const double expo = syn_u(r, 0.8, 1.2);
    s->tint[0] = (float)(expo * (dusk ? syn_u(r, 1.05, 1.2) : syn_u(r, 0.93, 1.07)));
    s->tint[1] = (float)expo;
    s->tint[2] = (float)(expo * (dusk ? syn_u(r, 0.8, 0.95) : syn_u(r, 0.93, 1.07)));
    memcpy(s->haze, s->sky_hor, sizeof s->haze);
    s->haze_d = syn_u(r, 150, 900);
    s->noise = (float)syn_u(r, 0.8, 5.0);
}

mtmi_status mt_synth_scene_make(uint64_t seed, int w, int h, mt_synth_scene **out) {
    *out = NULL;
    if (w < 1 || h < 1 || w > 16384 || h > 16384) return mt_fail(MTMI_ERR_ARG, "synthetic scene: bad size %dx%d", w, h);
    mt_synth_scene *s = calloc(1, sizeof *s);
    if (!s) return mt_fail(MTMI_ERR_NOMEM, "out of memory for a synthetic scene");
    s->w = w;
    s->h = h;
    s->seed = seed;
    syn_rng r = {seed};
    make_street(s, &r);
    make_camera(s, &r);
    make_light(s, &r);
    syn_populate(s, &r);
    if (s->cap < 0) {
        mt_synth_scene_free(s);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory for a synthetic scene's objects");
    }
    *out = s;
    return MTMI_OK;
}

void mt_synth_scene_free(mt_synth_scene *s) {
    if (!s) return;
    free(s->prims);
    free(s);
}

void mt_synth_ray(const mt_synth_scene *s, double u, double v, double dir[3]) {
    const double xn = (u - s->cx) / s->focal, yn = (v - s->cy) / s->focal;
    for (int k = 0; k < 3; k++) dir[k] = s->fwd[k] + xn * s->right[k] - yn * s->up[k];
}
