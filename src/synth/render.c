/* Rendering a synthetic scene: one ray through every pixel centre, the
 * nearest surface wins (ground analytically, then every primitive over the
 * screen rectangle its bounds project to), and from that hit the label,
 * the depth along the camera axis and the shaded colour.  Rows are
 * independent (OpenMP); results do not depend on the thread count. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "synth/synth_impl.h"

#define EPS 1e-6
#define FAR_T 1e30 /* no hit */
/* Hit ids: >= 0 a primitive, else one of these. */
enum { HIT_SKY = -1, HIT_ROAD = -2, HIT_WALK = -3, HIT_CURB = -4, HIT_TERRAIN = -5 };

/* ------------------------------------------------------------- textures */
static inline uint32_t h32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}
static inline double lattice(int64_t x, int64_t y, int64_t z, uint32_t seed) {
    uint32_t h = h32((uint32_t)x * 0x8da6b343u ^ h32((uint32_t)y * 0xd8163841u ^ h32((uint32_t)z * 0xcb1ab31fu ^ seed)));
    return (double)(h >> 8) * (1.0 / 16777216.0);
}
/* Value noise in [0, 1): smoothed trilinear interpolation of hashed
 * lattice values (floor is exact, the rest + - *). */
static double vnoise(double x, double y, double z, uint32_t seed) {
    if (!(x > -1e6 && x < 1e6 && y > -1e6 && y < 1e6 && z > -1e6 && z < 1e6)) return 0.5;
    const double fx = floor(x), fy = floor(y), fz = floor(z);
    const int64_t ix = (int64_t)fx, iy = (int64_t)fy, iz = (int64_t)fz;
    double tx = x - fx, ty = y - fy, tz = z - fz;
    tx = tx * tx * (3 - 2 * tx), ty = ty * ty * (3 - 2 * ty), tz = tz * tz * (3 - 2 * tz);
    double c[2][2];
    for (int j = 0; j < 2; j++)
        for (int k = 0; k < 2; k++) {
            const double a = lattice(ix, iy + j, iz + k, seed), b = lattice(ix + 1, iy + j, iz + k, seed);
            c[j][k] = a + (b - a) * tx;
        }
    const double e = c[0][0] + (c[1][0] - c[0][0]) * ty, f = c[0][1] + (c[1][1] - c[0][1]) * ty;
    return e + (f - e) * tz;
}
static double frac(double x) { return x - floor(x); }
static double clamp01(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }
static double smooth(double a, double b, double x) {
    double t = clamp01((x - a) / (b - a));
    return t * t * (3 - 2 * t);
}
static void mix3(double c[3], const float to[3], double k) {
    for (int i = 0; i < 3; i++) c[i] += (to[i] - c[i]) * k;
}
static void set3(double c[3], const float a[3], double g) {
    for (int i = 0; i < 3; i++) c[i] = a[i] * g;
}

/* What a surface point looks like: albedo, emission, glossiness. */
typedef struct surf {
    double alb[3], emit[3], gloss;
} surf;

static void tex_road(const mt_synth_scene *s, const double P[3], surf *o) {
    const double n1 = vnoise(P[0] * 5, 0, P[2] * 5, 11), n2 = vnoise(P[0] * 0.3, 0, P[2] * 0.3, 12);
    const double g = s->asphalt * (0.82 + 0.3 * n1) * (0.85 + 0.3 * n2);
    o->alb[0] = g, o->alb[1] = g, o->alb[2] = g * 1.04;
    const double x = P[0], ax = x < 0 ? -x : x;
    int mark = 0, yellow = 0;
    if (ax > s->road_half - 0.32 && ax < s->road_half - 0.18) mark = 1; /* edge lines */
    for (int k = 1; k < s->lanes; k++) {
        const double xk = -s->road_half + k * s->lane_w, dx = x - xk;
        const int centre = 2 * k == s->lanes;
        if (centre && s->yellow_centre) {
            if ((dx > -0.2 && dx < -0.08) || (dx > 0.08 && dx < 0.2)) mark = yellow = 1;
        } else if (dx > -0.075 && dx < 0.075 && (centre || frac((P[2] + s->dash_phase) / 9.0) < 0.36))
            mark = 1;
    }
    if (s->crosswalk && P[2] > s->cross_z0 && P[2] < s->cross_z1 && ax < s->road_half - 0.5 && frac((P[0] + 50.25) / 1.1) < 0.5)
        mark = 1;
    if (mark && vnoise(P[0] * 3, 1, P[2] * 3, 13) > 0.22) {
        static const float yel[3] = {0.80f, 0.64f, 0.18f};
        const double wear = 0.8 + 0.2 * n1;
        set3(o->alb, yellow ? yel : s->line_col, wear);
    }
}

static void tex_walk(const mt_synth_scene *s, const double P[3], surf *o) {
    const double gx = frac(P[0] * 2), gz = frac(P[2] * 2), n = vnoise(P[0] * 6, 2, P[2] * 6, 21);
    double g = 0.85 + 0.25 * n;
    if (gx < 0.05 || gz < 0.05) g *= 0.72; /* joints of 0.5 m slabs */
    g *= 0.9 + 0.2 * lattice((int64_t)floor(P[0] * 2), 0, (int64_t)floor(P[2] * 2), 22);
    set3(o->alb, s->walk_col, g);
}

static void tex_grass(const mt_synth_scene *s, const double P[3], surf *o) {
    const double n1 = vnoise(P[0] * 7, 3, P[2] * 7, 31), n2 = vnoise(P[0] * 0.6, 3, P[2] * 0.6, 32);
    set3(o->alb, s->grass_col, 0.65 + 0.55 * n1);
    static const float dirt[3] = {0.42f, 0.36f, 0.26f};
    mix3(o->alb, dirt, 0.5 * smooth(0.6, 0.85, n2));
}

/* Local coordinates on a box face: a along the face horizontally, b up. */
static void face_ab(const mt_synth_prim *p, int face, const double P[3], double *a, double *b) {
    *a = face < 2 ? P[2] - p->lo[2] : P[0] - p->lo[0];
    *b = P[1] - p->lo[1];
}

static void tex_facade(const mt_synth_prim *p, int face, const double P[3], surf *o) {
    const double n = vnoise(P[0] * 3, P[1] * 3, P[2] * 3, 41);
    set3(o->alb, p->col, 0.88 + 0.22 * n);
    if (face == 2 || face == 3) {
        set3(o->alb, p->col, 0.6);
        return;
    }
    double a, b;
    face_ab(p, face, P, &a, &b);
    const double fu = frac(a / p->p[0]), fv = frac(b / p->p[1]);
    const double wr = p->p[2], hr = p->p[3];
    const int floor_i = (int)floor(b / p->p[1]);
    if (fv < 0.04) set3(o->alb, p->col, 0.7); /* floor ledge */
    if (b > p->hi[1] - p->lo[1] - 0.6) return; /* parapet */
    int win;
    if (floor_i == 0) win = fu > 0.08 && fu < 0.92 && fv > 0.12 && fv < 0.8; /* shop fronts */
    else win = fu > (1 - wr) / 2 && fu < (1 + wr) / 2 && fv > 0.3 && fv < 0.3 + hr;
    if (win) {
        const double cell = lattice((int64_t)floor(a / p->p[0]), floor_i, face, (uint32_t)(p->lo[0] * 7 + p->lo[2] * 13));
        set3(o->alb, p->col2, 0.6 + 0.8 * cell);
        o->gloss = 0.5;
    }
}

static void tex_paint(const mt_synth_prim *p, int face, const double P[3], surf *o) {
    set3(o->alb, p->col, 1);
    o->gloss = 0.25;
    if (face != 4 && face != 5) return;
    /* lamps of a car's size at the corners, on a truck's cargo box too */
    const double w = p->hi[0] - p->lo[0], x = P[0] - p->lo[0], y = P[1] - p->lo[1], hgt = p->hi[1] - p->lo[1];
    const double lh = hgt < 0.7 ? hgt : 0.7, lw = 0.22 * (w < 2 ? w : 2);
    const int lamp = (x < lw || x > w - lw) && y > 0.45 * lh && y < 0.8 * lh;
    if (!lamp) return;
    const int front = (face == 4) == (p->p[0] > 0.5);
    static const float red[3] = {0.7f, 0.05f, 0.04f}, white[3] = {0.9f, 0.9f, 0.85f};
    set3(o->alb, front ? white : red, 1);
    set3(o->emit, front ? white : red, 0.25);
}

static void tex_cabin(const mt_synth_prim *p, int face, const double P[3], surf *o) {
    if (face == 3) {
        set3(o->alb, p->col, 1);
        o->gloss = 0.25;
        return;
    }
    const double h = (P[1] - p->lo[1]) / (p->hi[1] - p->lo[1]);
    set3(o->alb, p->col2, 0.8 + 0.5 * h);
    o->gloss = 0.7;
    /* pillars between the side windows */
    if (face < 2) {
        const double a = (P[2] - p->lo[2]) / (p->hi[2] - p->lo[2]);
        if (a < 0.06 || a > 0.94 || (a > 0.47 && a < 0.53)) set3(o->alb, p->col, 1), o->gloss = 0.25;
    }
}

static void tex_bus(const mt_synth_prim *p, int face, const double P[3], surf *o) {
    set3(o->alb, p->col, 1);
    o->gloss = 0.2;
    const double y = P[1] - p->lo[1], hgt = p->hi[1] - p->lo[1];
    if (face == 2 || face == 3 || y < 0.38 * hgt || y > 0.86 * hgt) return;
    int win = 1;
    if (face < 2) win = frac((P[2] - p->lo[2]) / 1.45) < 0.86;
    else win = y > 0.5 * hgt;
    if (win) set3(o->alb, p->col2, 0.9 + 0.4 * (y / hgt)), o->gloss = 0.7;
}

static void tex_tyre(const mt_synth_prim *p, int face, const double P[3], surf *o) {
    static const float rubber[3] = {0.05f, 0.05f, 0.055f}, rim[3] = {0.45f, 0.45f, 0.47f};
    set3(o->alb, rubber, 1);
    if (face > 1) return;
    const double cy = 0.5 * (p->lo[1] + p->hi[1]), cz = 0.5 * (p->lo[2] + p->hi[2]), r = 0.5 * (p->hi[2] - p->lo[2]);
    const double dy = P[1] - cy, dz = P[2] - cz;
    if (dy * dy + dz * dz < 0.36 * r * r) set3(o->alb, rim, 1);
}

static void tex_sign(const mt_synth_prim *p, int face, const double P[3], const double N[3], surf *o) {
    static const float back[3] = {0.5f, 0.5f, 0.52f};
    if (N[2] > 0.3 || (p->kind == MT_PRIM_BOX && face != 4)) {
        set3(o->alb, back, 1);
        return;
    }
    const double cx = 0.5 * (p->lo[0] + p->hi[0]), cy = 0.5 * (p->lo[1] + p->hi[1]);
    const double dx = (P[0] - cx) / (0.5 * (p->hi[0] - p->lo[0])), dy = (P[1] - cy) / (0.5 * (p->hi[1] - p->lo[1]));
    const double adx = dx < 0 ? -dx : dx, ady = dy < 0 ? -dy : dy;
    const int rim = p->p[0] < 0.5 ? dx * dx + dy * dy > 0.62 : (adx > 0.8 || ady > 0.8);
    const int glyph = !rim && adx < 0.45 && ady < 0.14;
    set3(o->alb, rim || glyph ? p->col : p->col2, 1);
    o->gloss = 0.3;
}

static void tex_tlight(const mt_synth_prim *p, int face, const double P[3], surf *o) {
    set3(o->alb, p->col, 1);
    if (face != 4) return;
    const double w = p->hi[0] - p->lo[0], h = p->hi[1] - p->lo[1];
    const double dx = P[0] - (p->lo[0] + 0.5 * w), y = P[1] - p->lo[1];
    static const float lamp[3][3] = {{0.95f, 0.1f, 0.05f}, {0.95f, 0.65f, 0.05f}, {0.1f, 0.9f, 0.35f}};
    for (int k = 0; k < 3; k++) {
        const double dy = y - h * (5 - 2 * k) / 6.0, r = 0.34 * w;
        if (dx * dx + dy * dy < r * r) {
            const int lit = (int)p->p[0] == k;
            set3(o->alb, lamp[k], lit ? 1 : 0.2);
            if (lit) set3(o->emit, lamp[k], 0.7);
        }
    }
}

static void tex_head(const mt_synth_prim *p, const double P[3], surf *o) {
    const double cy = 0.5 * (p->lo[1] + p->hi[1]), ry = 0.5 * (p->hi[1] - p->lo[1]);
    const double cz = 0.5 * (p->lo[2] + p->hi[2]), rz = 0.5 * (p->hi[2] - p->lo[2]);
    /* hair (or a helmet) over the top and the back of the head */
    const int hair = P[1] > cy + (p->p[0] > 0.5 ? -0.1 : 0.25) * ry || (p->p[1] > 0.5 ? P[2] > cz + 0.2 * rz : P[2] < cz - 0.2 * rz);
    set3(o->alb, hair ? p->col2 : p->col, 1);
    if (hair && p->p[0] > 0.5) o->gloss = 0.5;
}

static void tex_prim(const mt_synth_prim *p, int face, const double P[3], const double N[3], surf *o) {
    const double n = vnoise(P[0] * 6, P[1] * 6, P[2] * 6, 51);
    switch (p->tex) {
    case TEX_FACADE: tex_facade(p, face, P, o); break;
    case TEX_FOLIAGE: {
        const double m = vnoise(P[0] * 3.3, P[1] * 3.3, P[2] * 3.3, 52), f = vnoise(P[0] * 11, P[1] * 11, P[2] * 11, 53);
        set3(o->alb, p->col, 0.55 + 0.75 * f);
        mix3(o->alb, p->col2, smooth(0.35, 0.75, m));
        break;
    }
    case TEX_BARK: set3(o->alb, p->col, 0.7 + 0.5 * vnoise(P[0] * 9, P[1] * 2, P[2] * 9, 54)); break;
    case TEX_PAINT: tex_paint(p, face, P, o); break;
    case TEX_CABIN: tex_cabin(p, face, P, o); break;
    case TEX_BUS: tex_bus(p, face, P, o); break;
    case TEX_TYRE: tex_tyre(p, face, P, o); break;
    case TEX_METAL: set3(o->alb, p->col, 0.9 + 0.15 * n), o->gloss = 0.3; break;
    case TEX_SIGN: tex_sign(p, face, P, N, o); break;
    case TEX_TLIGHT: tex_tlight(p, face, P, o); break;
    case TEX_CLOTH: set3(o->alb, p->col, 0.8 + 0.35 * vnoise(P[0] * 14, P[1] * 14, P[2] * 14, 55)); break;
    case TEX_HEAD: tex_head(p, P, o); break;
    case TEX_CONCRETE: {
        set3(o->alb, p->col, 0.8 + 0.3 * n);
        const double a = face < 2 ? P[2] : P[0];
        if (frac(a / 2.5) < 0.015) set3(o->alb, p->col, 0.6);
        break;
    }
    case TEX_LAMP: set3(o->alb, p->col, 1), set3(o->emit, p->col, 0.8); break;
    default: set3(o->alb, p->col, 0.9 + 0.2 * n); break;
    }
}

/* ------------------------------------------------------------ geometry */
/* Fence panels: bars along the panel's long horizontal axis and rails at
 * the top, middle and bottom; the rest is open. */
static int fence_solid(const mt_synth_prim *p, const double P[3]) {
    const int along_z = p->hi[2] - p->lo[2] > p->hi[0] - p->lo[0];
    const double a = along_z ? P[2] : P[0], y = P[1] - p->lo[1], h = p->hi[1] - p->lo[1];
    if (y < 0.07 || y > h - 0.07 || (y > 0.5 * h - 0.035 && y < 0.5 * h + 0.035)) return 1;
    return frac(a / p->p[0]) < p->p[1];
}

/* Ray o + t d against an axis-aligned box: the entry (t, face) and exit;
 * faces 2a / 2a+1 are the low / high side of axis a. */
static int slab(const double lo[3], const double hi[3], const double o[3], const double d[3], double *tin, int *fin,
                double *tout, int *fout) {
    double t0 = -FAR_T, t1 = FAR_T;
    int f0 = 0, f1 = 0;
    for (int a = 0; a < 3; a++) {
        if (d[a] == 0) {
            if (o[a] < lo[a] || o[a] > hi[a]) return 0;
            continue;
        }
        double ta = (lo[a] - o[a]) / d[a], tb = (hi[a] - o[a]) / d[a];
        int fa = 2 * a, fb = 2 * a + 1;
        if (ta > tb) {
            double t = ta;
            ta = tb, tb = t;
            fa = 2 * a + 1, fb = 2 * a;
        }
        if (ta > t0) t0 = ta, f0 = fa;
        if (tb < t1) t1 = tb, f1 = fb;
    }
    if (t0 > t1 || t0 <= EPS) return 0; /* missed, or the camera is inside */
    *tin = t0, *fin = f0, *tout = t1, *fout = f1;
    return 1;
}

static double hit_box(const mt_synth_prim *p, const double o[3], const double d[3], int *face) {
    double t0, t1;
    int f0, f1;
    if (!slab(p->lo, p->hi, o, d, &t0, &f0, &t1, &f1)) return FAR_T;
    if (!p->cutout) return *face = f0, t0;
    double P[3];
    for (int k = 0; k < 3; k++) P[k] = o[k] + t0 * d[k];
    if (fence_solid(p, P)) return *face = f0, t0;
    for (int k = 0; k < 3; k++) P[k] = o[k] + t1 * d[k];
    if (fence_solid(p, P)) return *face = f1, t1;
    return FAR_T;
}

/* Vertical cylinder inscribed in the bounds: side (face 0) or the top /
 * bottom cap (faces 3 / 2). */
static double hit_cyl(const mt_synth_prim *p, const double o[3], const double d[3], int *face) {
    const double cx = 0.5 * (p->lo[0] + p->hi[0]), cz = 0.5 * (p->lo[2] + p->hi[2]), r = 0.5 * (p->hi[0] - p->lo[0]);
    const double ox = o[0] - cx, oz = o[2] - cz, a = d[0] * d[0] + d[2] * d[2];
    double best = FAR_T;
    if (a > 0) {
        const double b = ox * d[0] + oz * d[2], c = ox * ox + oz * oz - r * r, disc = b * b - a * c;
        if (disc >= 0) {
            const double t = (-b - sqrt(disc)) / a, y = o[1] + t * d[1];
            if (t > EPS && y >= p->lo[1] && y <= p->hi[1]) best = t, *face = 0;
        }
    }
    for (int cap = 0; cap < 2 && d[1] != 0; cap++) {
        const double yc = cap ? p->hi[1] : p->lo[1], t = (yc - o[1]) / d[1];
        if (t <= EPS || t >= best) continue;
        const double x = ox + t * d[0], z = oz + t * d[2];
        if (x * x + z * z <= r * r) best = t, *face = 2 + cap;
    }
    return best;
}

static double hit_ell(const mt_synth_prim *p, const double o[3], const double d[3], int *face) {
    double oc[3], dc[3];
    for (int k = 0; k < 3; k++) {
        const double c = 0.5 * (p->lo[k] + p->hi[k]), r = 0.5 * (p->hi[k] - p->lo[k]);
        oc[k] = (o[k] - c) / r;
        dc[k] = d[k] / r;
    }
    const double a = dc[0] * dc[0] + dc[1] * dc[1] + dc[2] * dc[2];
    const double b = oc[0] * dc[0] + oc[1] * dc[1] + oc[2] * dc[2];
    const double c = oc[0] * oc[0] + oc[1] * oc[1] + oc[2] * oc[2] - 1, disc = b * b - a * c;
    if (disc < 0) return FAR_T;
    const double t = (-b - sqrt(disc)) / a;
    *face = 0;
    return t > EPS ? t : FAR_T;
}

static double hit_prim(const mt_synth_prim *p, const double o[3], const double d[3], int *face) {
    return p->kind == MT_PRIM_BOX ? hit_box(p, o, d, face) : p->kind == MT_PRIM_CYL ? hit_cyl(p, o, d, face) : hit_ell(p, o, d, face);
}

static void prim_normal(const mt_synth_prim *p, int face, const double P[3], double N[3]) {
    N[0] = N[1] = N[2] = 0;
    if (p->kind == MT_PRIM_BOX || (p->kind == MT_PRIM_CYL && face >= 2)) {
        N[face / 2] = face & 1 ? 1 : -1;
        return;
    }
    if (p->kind == MT_PRIM_CYL) {
        const double r = 0.5 * (p->hi[0] - p->lo[0]);
        N[0] = (P[0] - 0.5 * (p->lo[0] + p->hi[0])) / r;
        N[2] = (P[2] - 0.5 * (p->lo[2] + p->hi[2])) / r;
    } else {
        for (int k = 0; k < 3; k++) {
            const double r = 0.5 * (p->hi[k] - p->lo[k]);
            N[k] = (P[k] - 0.5 * (p->lo[k] + p->hi[k])) / (r * r);
        }
    }
    const double n = sqrt(N[0] * N[0] + N[1] * N[1] + N[2] * N[2]);
    if (n > 0)
        for (int k = 0; k < 3; k++) N[k] /= n;
}

/* The ground: the road at y = 0 between the curbs, sidewalks and grass at
 * the curb's height outside, and the curb faces between. */
static int ground_kind(const mt_synth_scene *s, double x) {
    const int side = x > 0;
    const double o = side ? x : -x;
    return o - s->road_half < s->walk[side] ? HIT_WALK : HIT_TERRAIN;
}

static double hit_ground(const mt_synth_scene *s, const double d[3], int *id, int *face) {
    const double *o = s->cam;
    *face = 3;
    if (!(d[1] < 0)) return *id = HIT_SKY, FAR_T;
    const double tc = (s->curb_h - o[1]) / d[1], xc = o[0] + tc * d[0];
    if (xc <= -s->road_half || xc >= s->road_half) return *id = ground_kind(s, xc), tc;
    const double t0 = -o[1] / d[1], x0 = o[0] + t0 * d[0];
    if (x0 > -s->road_half && x0 < s->road_half) return *id = HIT_ROAD, t0;
    /* over the road at curb height, beyond it on the ground: the curb face */
    *id = HIT_CURB;
    *face = x0 > 0 ? 0 : 1;
    return ((x0 > 0 ? s->road_half : -s->road_half) - o[0]) / d[0];
}

/* ------------------------------------------------------------ rendering */
typedef struct rect {
    int u0, u1, v0, v1;
    double zmin; /* nearest camera depth of the bounds */
} rect;

/* The screen rectangle (pixel indices, inclusive) the primitive's bounds
 * project into, widened by a pixel; the whole screen when the bounds reach
 * behind the camera; empty (u0 > u1) when all of them are behind it. */
static rect prim_rect(const mt_synth_scene *s, const mt_synth_prim *p) {
    rect r = {s->w, -1, s->h, -1, FAR_T};
    double umin = FAR_T, umax = -FAR_T, vmin = FAR_T, vmax = -FAR_T;
    int behind = 0;
    for (int c = 0; c < 8; c++) {
        const double q[3] = {(c & 1 ? p->hi[0] : p->lo[0]) - s->cam[0], (c & 2 ? p->hi[1] : p->lo[1]) - s->cam[1],
                             (c & 4 ? p->hi[2] : p->lo[2]) - s->cam[2]};
        const double xc = q[0] * s->right[0] + q[1] * s->right[1] + q[2] * s->right[2];
        const double yc = q[0] * s->up[0] + q[1] * s->up[1] + q[2] * s->up[2];
        const double zc = q[0] * s->fwd[0] + q[1] * s->fwd[1] + q[2] * s->fwd[2];
        if (zc < r.zmin) r.zmin = zc;
        if (zc <= 1e-3) {
            behind++;
            continue;
        }
        const double u = s->cx + s->focal * xc / zc, v = s->cy - s->focal * yc / zc;
        umin = u < umin ? u : umin, umax = u > umax ? u : umax;
        vmin = v < vmin ? v : vmin, vmax = v > vmax ? v : vmax;
    }
    if (behind == 8) return r;
    if (behind) umin = vmin = -2, umax = s->w + 2, vmax = s->h + 2;
    const double cu0 = umin - 1.5 < 0 ? 0 : umin - 1.5, cv0 = vmin - 1.5 < 0 ? 0 : vmin - 1.5;
    r.u0 = cu0 > s->w ? s->w : (int)cu0;
    r.v0 = cv0 > s->h ? s->h : (int)cv0;
    r.u1 = umax + 1.5 >= s->w ? s->w - 1 : umax + 1.5 < 0 ? -1 : (int)(umax + 1.5);
    r.v1 = vmax + 1.5 >= s->h ? s->h - 1 : vmax + 1.5 < 0 ? -1 : (int)(vmax + 1.5);
    if (r.zmin < 0) r.zmin = 0;
    return r;
}

typedef struct frame_buf {
    double *t;   /* hit depth per pixel */
    int32_t *id; /* HIT_* or a primitive */
    uint8_t *face;
    float *lin;  /* shaded colour, 3 per pixel */
    int *foot, nfoot; /* vehicle bodies (ground_shade) */
} frame_buf;

static void row_rays(const mt_synth_scene *s, int v, double *dirs) {
    for (int u = 0; u < s->w; u++) mt_synth_ray(s, u + 0.5, v + 0.5, dirs + 3 * u);
}

/* Nearest hit of every pixel of row v. */
static void trace_row(const mt_synth_scene *s, const rect *rects, int v, const double *dirs, frame_buf *fb) {
    const size_t row = (size_t)v * s->w;
    for (int u = 0; u < s->w; u++) {
        int id, face;
        fb->t[row + u] = hit_ground(s, dirs + 3 * u, &id, &face);
        fb->id[row + u] = id;
        fb->face[row + u] = (uint8_t)face;
    }
    for (int i = 0; i < s->nprims; i++) {
        const rect *r = &rects[i];
        if (v < r->v0 || v > r->v1) continue;
        const mt_synth_prim *p = &s->prims[i];
        for (int u = r->u0; u <= r->u1; u++) {
            if (r->zmin >= fb->t[row + u]) continue;
            int face = 0;
            const double t = hit_prim(p, s->cam, dirs + 3 * u, &face);
            if (t < fb->t[row + u]) {
                fb->t[row + u] = t;
                fb->id[row + u] = i;
                fb->face[row + u] = (uint8_t)face;
            }
        }
    }
}

static int label_of(const mt_synth_scene *s, int id) {
    switch (id) {
    case HIT_SKY: return MT_CLS_SKY;
    case HIT_ROAD: return MT_CLS_ROAD;
    case HIT_WALK:
    case HIT_CURB: return MT_CLS_SIDEWALK;
    case HIT_TERRAIN: return MT_CLS_TERRAIN;
    default: return s->prims[id].label;
    }
}

static void sky_colour(const mt_synth_scene *s, const double d[3], double c[3]) {
    const double len = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]), e = d[1] > 0 ? d[1] / len : 0, m = sqrt(e);
    for (int k = 0; k < 3; k++) c[k] = s->sky_hor[k] + (s->sky_top[k] - s->sky_hor[k]) * m;
    if (e < 0.01) return;
    /* clouds on a layer 1 km up */
    const double k = 1000.0 / d[1], x = (s->cam[0] + k * d[0]) / 700.0, z = (s->cam[2] + k * d[2]) / 700.0;
    const double n = 0.65 * vnoise(x, 0, z, (uint32_t)s->seed) + 0.35 * vnoise(3 * x, 1, 3 * z, (uint32_t)s->seed + 1);
    const double cover = smooth(s->overcast ? 0.3 : 0.5, s->overcast ? 0.9 : 0.8, n) * (e / (e + 0.08));
    static const float cloud[3] = {0.93f, 0.93f, 0.95f}, grey[3] = {0.62f, 0.63f, 0.66f};
    mix3(c, s->overcast ? grey : cloud, 0.85 * cover);
}

/* Vehicles darken the ground below them (no sun shadows, a contact
 * shadow): 1 outside every vehicle footprint (the bodies in foot[]), less
 * under one. */
static double ground_shade(const mt_synth_scene *s, const int *foot, int nfoot, const double P[3]) {
    for (int i = 0; i < nfoot; i++) {
        const mt_synth_prim *p = &s->prims[foot[i]];
        if (P[0] > p->lo[0] - 0.1 && P[0] < p->hi[0] + 0.1 && P[2] > p->lo[2] - 0.1 && P[2] < p->hi[2] + 0.1) return 0.35;
    }
    return 1;
}

static int is_footprint(const mt_synth_prim *p) {
    const int veh = p->label == MT_CLS_CAR || p->label == MT_CLS_TRUCK || p->label == MT_CLS_BUS;
    return veh && p->kind == MT_PRIM_BOX && p->lo[1] <= 0.7 && p->tex != TEX_TYRE;
}

static void shade_pixel(const mt_synth_scene *s, const int *foot, int nfoot, const double d[3], double t, int id, int face, double c[3]) {
    if (id == HIT_SKY) {
        sky_colour(s, d, c);
        return;
    }
    double P[3], N[3] = {0, 1, 0};
    for (int k = 0; k < 3; k++) P[k] = s->cam[k] + t * d[k];
    surf o = {{0}, {0}, 0};
    double occl = 1;
    if (id >= 0) {
        prim_normal(&s->prims[id], face, P, N);
        tex_prim(&s->prims[id], face, P, N, &o);
    } else {
        if (id == HIT_ROAD) tex_road(s, P, &o);
        else if (id == HIT_WALK) tex_walk(s, P, &o);
        else if (id == HIT_TERRAIN) tex_grass(s, P, &o);
        else set3(o.alb, s->curb_col, 0.8 + 0.3 * vnoise(P[0] * 8, P[1] * 8, P[2] * 8, 61)), N[1] = 0, N[0] = face ? 1 : -1;
        if (id == HIT_ROAD || id == HIT_WALK) occl = ground_shade(s, foot, nfoot, P);
    }
    const double ndl = N[0] * s->sun[0] + N[1] * s->sun[1] + N[2] * s->sun[2];
    const double light = occl * (s->amb_i * (0.75 + 0.25 * N[1]) + s->sun_i * (ndl > 0 ? ndl : 0));
    double spec = 0;
    if (o.gloss > 0) { /* the sky reflected at grazing angles */
        const double len = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
        double nd = (N[0] * d[0] + N[1] * d[1] + N[2] * d[2]) / len;
        nd = 1 - (nd < 0 ? -nd : nd);
        spec = o.gloss * (0.08 + 0.5 * nd * nd * nd);
    }
    const double fog = t / (t + s->haze_d);
    for (int k = 0; k < 3; k++) {
        const double v = (o.alb[k] * light + spec * s->sky_hor[k]) * s->tint[k] + o.emit[k];
        c[k] = v + (s->haze[k] - v) * fog;
    }
}

static void shade_row(const mt_synth_scene *s, int v, const double *dirs, const frame_buf *fb, uint8_t *labels, float *depth) {
    const int *foot = fb->foot, nfoot = fb->nfoot;
    const size_t row = (size_t)v * s->w;
    for (int u = 0; u < s->w; u++) {
        const int id = fb->id[row + u];
        const double t = fb->t[row + u];
        if (labels) labels[row + u] = (uint8_t)label_of(s, id);
        if (depth) depth[row + u] = id == HIT_SKY ? 0.0f : (float)t;
        if (fb->lin) {
            double c[3];
            shade_pixel(s, foot, nfoot, dirs + 3 * u, t, id, fb->face[row + u], c);
            for (int k = 0; k < 3; k++) fb->lin[3 * (row + u) + k] = (float)c[k];
        }
    }
}

/* The camera: a slight blur (binomial 3x3: optics), vignetting, sensor
 * noise (hashed per pixel: triangular, s->noise levels of 255), 8 bits. */
static void develop_row(const mt_synth_scene *s, int v, const float *lin, uint8_t *rgb) {
    const int w = s->w, h = s->h;
    const double r2max = s->cx * s->cx + s->cy * s->cy;
    for (int u = 0; u < w; u++) {
        double acc[3] = {0, 0, 0};
        for (int dv = -1; dv <= 1; dv++) {
            const int y = v + dv < 0 ? 0 : v + dv >= h ? h - 1 : v + dv, wy = dv ? 1 : 2;
            for (int du = -1; du <= 1; du++) {
                const int x = u + du < 0 ? 0 : u + du >= w ? w - 1 : u + du, wgt = wy * (du ? 1 : 2);
                const float *p = lin + 3 * ((size_t)y * w + x);
                for (int k = 0; k < 3; k++) acc[k] += wgt * (double)p[k];
            }
        }
        const double du = u + 0.5 - s->cx, dv = v + 0.5 - s->cy, vig = 1 - 0.22 * (du * du + dv * dv) / r2max;
        for (int k = 0; k < 3; k++) {
            const uint32_t hsh = h32((uint32_t)(v * 73856093u) ^ h32((uint32_t)u * 19349663u ^ (uint32_t)k * 83492791u ^ (uint32_t)s->seed));
            const double n = ((double)(hsh & 0xffff) + (double)(hsh >> 16)) * (1.0 / 65536.0) - 1.0; /* triangular in (-1, 1) */
            const double x = acc[k] * (1.0 / 16.0) * vig * 255.0 + n * s->noise * 1.7 + 0.5;
            rgb[3 * ((size_t)v * w + u) + k] = (uint8_t)(x < 0 ? 0 : x >= 255 ? 255 : x);
        }
    }
}

mtmi_status mt_synth_render(const mt_synth_scene *s, uint8_t *rgb, uint8_t *labels, float *depth) {
    const size_t n = (size_t)s->w * s->h;
    const size_t np = (size_t)(s->nprims ? s->nprims : 1);
    frame_buf fb = {malloc(n * sizeof(double)), malloc(n * sizeof(int32_t)), malloc(n), rgb ? malloc(n * 3 * sizeof(float)) : NULL,
                    malloc(np * sizeof(int)), 0};
    rect *rects = malloc(sizeof *rects * np);
    mtmi_status st = MTMI_OK;
    if (!fb.t || !fb.id || !fb.face || (rgb && !fb.lin) || !rects || !fb.foot) {
        st = mt_fail(MTMI_ERR_NOMEM, "out of memory rendering a %dx%d synthetic scene", s->w, s->h);
        goto done;
    }
    for (int i = 0; i < s->nprims; i++) {
        rects[i] = prim_rect(s, &s->prims[i]);
        if (is_footprint(&s->prims[i])) fb.foot[fb.nfoot++] = i;
    }
    int bad = 0;
    /* one thread when called from a parallel region (mtmi synth renders
     * scenes in parallel) */
#pragma omp parallel if (!omp_in_parallel())
    {
        double *dirs = malloc(sizeof(double) * 3 * (size_t)s->w);
        if (!dirs) {
#pragma omp atomic write
            bad = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (int v = 0; v < s->h; v++) {
            if (!dirs) continue;
            row_rays(s, v, dirs);
            trace_row(s, rects, v, dirs, &fb);
            shade_row(s, v, dirs, &fb, labels, depth);
        }
        if (rgb) { /* the same on every thread: each meets the loop */
#pragma omp for schedule(static)
            for (int v = 0; v < s->h; v++) develop_row(s, v, fb.lin, rgb);
        }
        free(dirs);
    }
    if (bad) st = mt_fail(MTMI_ERR_NOMEM, "out of memory rendering a synthetic scene");
done:
    free(fb.t);
    free(fb.id);
    free(fb.face);
    free(fb.lin);
    free(fb.foot);
    free(rects);
    return st;
}
