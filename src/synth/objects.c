/* The objects of a synthetic street, each a few primitives: buildings
 * along both sides and across the far end, parks and trees, walls and
 * fences, street lights, signs and traffic lights, parked and moving
 * vehicles, cyclists and motorcyclists, pedestrians, and clutter without a
 * training class (label 255).  Off the road things stand on the curb's
 * height.  Objects keep clear of the camera (nothing within 3 m ahead in
 * its lane). */
#include "synth/synth_impl.h"

#define MAX_OCC 40

typedef struct lane_occ {
    double z0[MAX_OCC], z1[MAX_OCC];
    int n;
} lane_occ;

typedef struct layout {
    mt_synth_scene *s;
    syn_rng *r;
    double zend; /* the far end of the street */
    double bl[2];  /* the building line (outward distance) left / right */
    double gy;     /* ground height off the road */
    int cam_lane;
    lane_occ occ[4];
} layout;

static const float k_facades[9][3] = {{0.75f, 0.68f, 0.55f}, {0.55f, 0.55f, 0.57f}, {0.55f, 0.30f, 0.22f},
                                      {0.85f, 0.84f, 0.80f}, {0.32f, 0.32f, 0.35f}, {0.46f, 0.50f, 0.58f},
                                      {0.80f, 0.70f, 0.42f}, {0.76f, 0.60f, 0.56f}, {0.62f, 0.56f, 0.48f}};
static const float k_glass[4][3] = {{0.10f, 0.13f, 0.18f}, {0.20f, 0.26f, 0.34f}, {0.35f, 0.42f, 0.50f}, {0.15f, 0.15f, 0.16f}};
static const float k_leaves[4][3] = {{0.20f, 0.38f, 0.12f}, {0.28f, 0.45f, 0.15f}, {0.16f, 0.30f, 0.14f}, {0.36f, 0.42f, 0.18f}};
static const float k_leaf_dark[3] = {0.08f, 0.17f, 0.06f}, k_bark[3] = {0.35f, 0.27f, 0.20f};
static const float k_paint[10][3] = {{0.88f, 0.88f, 0.88f}, {0.06f, 0.06f, 0.07f}, {0.62f, 0.63f, 0.66f}, {0.35f, 0.36f, 0.38f},
                                     {0.65f, 0.08f, 0.07f}, {0.12f, 0.25f, 0.60f}, {0.08f, 0.12f, 0.28f}, {0.15f, 0.35f, 0.20f},
                                     {0.85f, 0.70f, 0.10f}, {0.70f, 0.62f, 0.48f}};
static const float k_skin[4][3] = {{0.95f, 0.80f, 0.68f}, {0.85f, 0.65f, 0.50f}, {0.60f, 0.42f, 0.30f}, {0.38f, 0.26f, 0.19f}};
static const float k_hair[4][3] = {{0.05f, 0.04f, 0.04f}, {0.30f, 0.18f, 0.10f}, {0.75f, 0.62f, 0.35f}, {0.60f, 0.60f, 0.60f}};
static const float k_cloth[10][3] = {{0.80f, 0.10f, 0.10f}, {0.10f, 0.20f, 0.60f}, {0.90f, 0.90f, 0.88f}, {0.08f, 0.08f, 0.09f},
                                     {0.20f, 0.50f, 0.25f}, {0.85f, 0.75f, 0.20f}, {0.50f, 0.30f, 0.60f}, {0.55f, 0.55f, 0.55f},
                                     {0.90f, 0.45f, 0.15f}, {0.55f, 0.40f, 0.28f}};
static const float k_trousers[4][3] = {{0.20f, 0.25f, 0.42f}, {0.07f, 0.07f, 0.08f}, {0.40f, 0.40f, 0.42f}, {0.55f, 0.48f, 0.35f}};
static const float k_metal[3] = {0.42f, 0.43f, 0.45f}, k_dark[3] = {0.10f, 0.10f, 0.11f}, k_tyre[3] = {0.05f, 0.05f, 0.05f};

static double sgn(int side) { return side ? 1.0 : -1.0; }

/* A box at outward distances o0..o1 from the street's axis on one side. */
static mt_synth_prim *side_box(layout *L, int side, double o0, double o1, double y0, double y1, double z0, double z1, int label,
                               int tex, const float col[3]) {
    return syn_add(L->s, MT_PRIM_BOX, label, tex, sgn(side) * o0, y0, z0, sgn(side) * o1, y1, z1, col);
}
static mt_synth_prim *cyl(layout *L, int label, int tex, double x, double z, double rad, double y0, double y1, const float col[3]) {
    return syn_add(L->s, MT_PRIM_CYL, label, tex, x - rad, y0, z - rad, x + rad, y1, z + rad, col);
}
static mt_synth_prim *ell(layout *L, int label, int tex, double x, double y, double z, double rx, double ry, double rz,
                          const float col[3]) {
    return syn_add(L->s, MT_PRIM_ELL, label, tex, x - rx, y - ry, z - rz, x + rx, y + ry, z + rz, col);
}
static void set_col2(mt_synth_prim *p, const float c[3]) {
    if (p)
        for (int k = 0; k < 3; k++) p->col2[k] = c[k];
}

/* ------------------------------------------------------------ buildings */
static void building(layout *L, int side, double o0, double o1, double z0, double z1, double height) {
    syn_rng *r = L->r;
    float col[3], win[3];
    syn_jitter(r, k_facades[syn_i(r, 0, 8)], 0.1, col);
    syn_jitter(r, k_glass[syn_i(r, 0, 3)], 0.15, win);
    const double p0 = syn_u(r, 2.2, 4.0), p1 = syn_u(r, 2.9, 3.8), p2 = syn_u(r, 0.35, 0.75), p3 = syn_u(r, 0.35, 0.62);
    mt_synth_prim *p = side_box(L, side, o0, o1, 0, height, z0, z1, MT_CLS_BUILDING, TEX_FACADE, col);
    if (!p) return;
    set_col2(p, win);
    p->p[0] = p0, p->p[1] = p1, p->p[2] = p2, p->p[3] = p3;
}

static void tree(layout *L, double x, double z, double ground, double scale) {
    syn_rng *r = L->r;
    float bark[3], leaf[3], dark[3];
    syn_jitter(r, k_bark, 0.2, bark);
    syn_jitter(r, k_leaves[syn_i(r, 0, 3)], 0.15, leaf);
    syn_jitter(r, k_leaf_dark, 0.2, dark);
    const double rt = syn_u(r, 0.12, 0.25) * scale, ht = syn_u(r, 1.8, 3.4) * scale;
    cyl(L, MT_CLS_VEGETATION, TEX_BARK, x, z, rt, ground, ground + ht + 0.6 * scale, bark);
    const int k = syn_i(r, 1, 3);
    for (int i = 0; i < k; i++) {
        const double rx = syn_u(r, 1.1, 2.6) * scale, rz = syn_u(r, 1.1, 2.6) * scale, ry = syn_u(r, 1.1, 2.4) * scale;
        const double cx = x + syn_u(r, -0.6, 0.6) * scale, cz = z + syn_u(r, -0.7, 0.7) * scale;
        set_col2(ell(L, MT_CLS_VEGETATION, TEX_FOLIAGE, cx, ground + ht + ry * syn_u(r, 0.4, 0.8), cz, rx, ry, rz, leaf), dark);
    }
}

static void hedge(layout *L, int side, double o0, double o1, double z0, double z1) {
    float leaf[3], dark[3];
    syn_jitter(L->r, k_leaves[syn_i(L->r, 0, 3)], 0.15, leaf);
    syn_jitter(L->r, k_leaf_dark, 0.2, dark);
    const double h = syn_u(L->r, 0.6, 1.6);
    set_col2(side_box(L, side, o0, o1, L->gy, L->gy + h, z0, z1, MT_CLS_VEGETATION, TEX_FOLIAGE, leaf), dark);
}

static void park(layout *L, int side, double z0, double z1) {
    const int n = syn_i(L->r, 1, 4);
    for (int i = 0; i < n; i++) {
        const double o = L->bl[side] + syn_u(L->r, 2, 14), z = syn_u(L->r, z0, z1);
        tree(L, sgn(side) * o, z, L->gy, syn_u(L->r, 1.0, 1.6));
    }
    if (syn_p(L->r, 0.5)) hedge(L, side, L->bl[side] + 0.2, L->bl[side] + 1.0, z0, z1);
}

static void side_buildings(layout *L, int side) {
    syn_rng *r = L->r;
    const double bl = L->bl[side];
    double z = syn_u(r, -16, -6);
    while (z < L->zend + 5) {
        const double len = syn_u(r, 7, 28);
        if (syn_p(r, 0.12)) park(L, side, z, z + len);
        else {
            const double set = syn_p(r, 0.5) ? syn_u(r, 0, 2.5) : 0, depth = syn_u(r, 8, 20);
            const double hgt = syn_p(r, 0.15) ? syn_u(r, 30, 60) : syn_u(r, 6, 30);
            building(L, side, bl + set, bl + set + depth, z, z + len, hgt);
        }
        z += len;
        if (syn_p(r, 0.3)) { /* a gap, often with a building behind it */
            const double gap = syn_u(r, 2, 9);
            if (syn_p(r, 0.6)) building(L, side, bl + syn_u(r, 14, 25), bl + 40, z - 4, z + gap + 4, syn_u(r, 8, 40));
            z += gap;
        }
    }
}

/* The far end: a row of buildings (and trees) across the street. */
static void backdrop(layout *L) {
    syn_rng *r = L->r;
    double x = -(L->bl[0] + 70);
    while (x < L->bl[1] + 70) {
        const double len = syn_u(r, 8, 25), z0 = L->zend + syn_u(r, 0, 6);
        if (syn_p(r, 0.2)) {
            for (int k = syn_i(r, 2, 3); k > 0; k--) tree(L, x + syn_u(r, 0, len), z0 + syn_u(r, 2, 6), L->gy, syn_u(r, 1.2, 1.8));
        } else
            building(L, 1, x, x + len, z0, z0 + syn_u(r, 10, 20), syn_u(r, 6, 35));
        x += len;
    }
}

/* ------------------------------------------------- street furniture */
static void wall_or_fence(layout *L, int side) {
    syn_rng *r = L->r;
    const double z0 = syn_u(r, 4, L->zend * 0.7), z1 = z0 + syn_u(r, 5, 25), o = L->bl[side] - 0.1;
    if (syn_p(r, 0.45)) {
        static const float concrete[3] = {0.62f, 0.60f, 0.56f};
        float col[3];
        syn_jitter(r, concrete, 0.2, col);
        side_box(L, side, o - 0.3, o, L->gy, L->gy + syn_u(r, 0.5, 2.2), z0, z1, MT_CLS_WALL, TEX_CONCRETE, col);
    } else {
        static const float metal[3][3] = {{0.15f, 0.30f, 0.18f}, {0.12f, 0.12f, 0.13f}, {0.55f, 0.56f, 0.58f}};
        float col[3];
        syn_jitter(r, metal[syn_i(r, 0, 2)], 0.15, col);
        const double h = syn_u(r, 1.0, 2.0), sp = syn_u(r, 0.1, 0.25), ratio = syn_u(r, 0.2, 0.45);
        mt_synth_prim *p = side_box(L, side, o - 0.05, o, L->gy, L->gy + h, z0, z1, MT_CLS_FENCE, TEX_METAL, col);
        if (p) p->cutout = 1, p->p[0] = sp, p->p[1] = ratio;
    }
}

static void vegetation(layout *L, int side) {
    mt_synth_scene *s = L->s;
    syn_rng *r = L->r;
    const double walk = s->walk[side], terr = s->terrain[side], rh = s->road_half;
    for (int n = syn_i(r, 0, 5); n > 0; n--) { /* street trees near the curb */
        const double o = terr > 0 && syn_p(r, 0.5) ? rh + walk + syn_u(r, 0.5, terr > 1 ? terr - 0.5 : 0.5)
                                                    : rh + syn_u(r, 0.5, walk > 1.4 ? 1.2 : walk - 0.2);
        tree(L, sgn(side) * o, syn_u(r, 7, L->zend - 4), L->gy, syn_u(r, 0.8, 1.3));
    }
    if (terr > 0.8)
        for (int n = syn_i(r, 0, 4); n > 0; n--) { /* bushes */
            const double rx = syn_u(r, 0.4, 1.0), ry = syn_u(r, 0.35, 0.9), o = rh + walk + syn_u(r, rx, terr > rx ? terr : rx + 0.01);
            float leaf[3], dark[3];
            syn_jitter(r, k_leaves[syn_i(r, 0, 3)], 0.15, leaf);
            syn_jitter(r, k_leaf_dark, 0.2, dark);
            set_col2(ell(L, MT_CLS_VEGETATION, TEX_FOLIAGE, sgn(side) * o, L->gy + 0.6 * ry, syn_u(r, 5, L->zend - 4), rx, ry,
                         syn_u(r, 0.4, 1.2), leaf),
                     dark);
        }
    if (syn_p(r, 0.3)) {
        const double z0 = syn_u(r, 3, L->zend * 0.7);
        hedge(L, side, L->bl[side] - 0.9, L->bl[side] - 0.1, z0, z0 + syn_u(r, 4, 18));
    }
}

static void street_lights(layout *L, int side) {
    mt_synth_scene *s = L->s;
    syn_rng *r = L->r;
    if (!syn_p(r, 0.8)) return;
    float metal[3];
    syn_jitter(r, k_metal, 0.3, metal);
    const double H = syn_u(r, 6, 9), rad = syn_u(r, 0.08, 0.13), arm = syn_u(r, 1.2, 2.5), o = s->road_half + 0.45, gy = L->gy;
    for (double z = syn_u(r, 5, 15); z < L->zend - 4; z += syn_u(r, 18, 32)) {
        cyl(L, MT_CLS_POLE, TEX_METAL, sgn(side) * o, z, rad, gy, gy + H, metal);
        side_box(L, side, o - arm, o, gy + H - 0.14, gy + H, z - 0.06, z + 0.06, MT_CLS_POLE, TEX_METAL, metal);
        side_box(L, side, o - arm - 0.1, o - arm + 0.5, gy + H - 0.3, gy + H - 0.1, z - 0.16, z + 0.16, MT_CLS_POLE, TEX_METAL, metal);
    }
}

/* A traffic sign: a pole with one or two plates facing the camera. */
static void sign(layout *L, int side, double z) {
    mt_synth_scene *s = L->s;
    syn_rng *r = L->r;
    static const float red[3] = {0.75f, 0.08f, 0.07f}, white[3] = {0.92f, 0.92f, 0.90f}, blue[3] = {0.08f, 0.25f, 0.65f},
                       yellow[3] = {0.92f, 0.75f, 0.10f};
    const double o = s->road_half + syn_u(r, 0.3, 1.0), x = sgn(side) * o, top = L->gy + syn_u(r, 2.3, 3.2), pr = syn_u(r, 0.04, 0.07);
    float metal[3];
    syn_jitter(r, k_metal, 0.2, metal);
    cyl(L, MT_CLS_POLE, TEX_METAL, x, z, pr, L->gy, top, metal);
    double y = top;
    for (int plate = syn_p(r, 0.3) ? 2 : 1; plate > 0; plate--) {
        const int kind = syn_i(r, 0, 4);
        const float *rim = kind == 1 ? white : kind == 3 ? blue : kind == 4 ? white : red;
        const float *in = kind == 1 || kind == 3 ? blue : kind == 4 ? yellow : white;
        mt_synth_prim *p;
        double hgt;
        if (kind <= 1) {
            const double rad = syn_u(r, 0.3, 0.42);
            p = ell(L, MT_CLS_SIGN, TEX_SIGN, x, y - rad, z - pr - 0.05, rad, rad, 0.03, rim);
            hgt = 2 * rad;
        } else {
            const double a = kind == 3 ? syn_u(r, 0.35, 0.5) : syn_u(r, 0.28, 0.38), b = kind == 3 ? syn_u(r, 0.22, 0.32) : a;
            p = syn_add(s, MT_PRIM_BOX, MT_CLS_SIGN, TEX_SIGN, x - a, y - 2 * b, z - pr - 0.07, x + a, y, z - pr - 0.02, rim);
            hgt = 2 * b;
        }
        if (p) set_col2(p, in), p->p[0] = kind <= 1 ? 0 : 1;
        y -= hgt + 0.08;
    }
}

static void traffic_light(layout *L, int side, double z, int lit) {
    mt_synth_scene *s = L->s;
    syn_rng *r = L->r;
    float housing[3], metal[3];
    syn_jitter(r, k_dark, 0.3, housing);
    syn_jitter(r, k_metal, 0.2, metal);
    const double o = s->road_half + 0.5, x = sgn(side) * o, top = L->gy + syn_u(r, 2.6, 3.3);
    if (syn_p(r, 0.4)) { /* a mast over the road with a light hanging from it */
        const double mh = L->gy + syn_u(r, 5.5, 6.5), reach = syn_u(r, 3, s->road_half + 0.5);
        cyl(L, MT_CLS_POLE, TEX_METAL, x, z, 0.12, L->gy, mh, metal);
        side_box(L, side, o - reach, o, mh - 0.16, mh, z - 0.07, z + 0.07, MT_CLS_POLE, TEX_METAL, metal);
        mt_synth_prim *p = side_box(L, side, o - reach, o - reach + 0.34, mh - 1.05, mh - 0.16, z - 0.13, z + 0.13, MT_CLS_LIGHT,
                                    TEX_TLIGHT, housing);
        if (p) p->p[0] = lit;
    } else
        cyl(L, MT_CLS_POLE, TEX_METAL, x, z, 0.07, L->gy, top, metal);
    mt_synth_prim *p = syn_add(s, MT_PRIM_BOX, MT_CLS_LIGHT, TEX_TLIGHT, x - 0.17, top, z - 0.13, x + 0.17, top + 0.88, z + 0.13, housing);
    if (p) p->p[0] = lit;
}

static void furniture(layout *L) {
    mt_synth_scene *s = L->s;
    syn_rng *r = L->r;
    for (int side = 0; side < 2; side++) street_lights(L, side);
    for (int n = syn_i(r, 1, 4); n > 0; n--) sign(L, syn_i(r, 0, 1), syn_u(r, 6, L->zend * 0.7));
    const int lit = syn_i(r, 0, 2);
    if (s->crosswalk) {
        for (int side = 0; side < 2; side++)
            if (side || syn_p(r, 0.7)) traffic_light(L, side, s->cross_z1 + 0.6, lit);
    } else if (syn_p(r, 0.6)) {
        const double z = syn_u(r, 12, 45);
        for (int side = 0; side < 2; side++)
            if (side || syn_p(r, 0.5)) traffic_light(L, side, z, lit);
    }
    for (int n = syn_i(r, 0, 3); n > 0; n--) { /* bins and boxes: no training class */
        const int side = syn_i(r, 0, 1);
        const double o = s->road_half + syn_u(r, 0.5, s->walk[side] > 0.9 ? s->walk[side] - 0.4 : 0.5), z = syn_u(r, 5, L->zend * 0.6);
        static const float bins[3][3] = {{0.15f, 0.30f, 0.18f}, {0.35f, 0.35f, 0.37f}, {0.60f, 0.45f, 0.15f}};
        float col[3];
        syn_jitter(r, bins[syn_i(r, 0, 2)], 0.2, col);
        if (syn_p(r, 0.5)) cyl(L, MT_SYNTH_IGNORE, TEX_PLAIN, sgn(side) * o, z, syn_u(r, 0.22, 0.32), L->gy, L->gy + syn_u(r, 0.8, 1.1), col);
        else side_box(L, side, o - 0.25, o + 0.25, L->gy, L->gy + syn_u(r, 0.8, 1.4), z, z + syn_u(r, 0.4, 0.9), MT_SYNTH_IGNORE, TEX_PLAIN, col);
    }
}

/* ------------------------------------------------------------- vehicles */
static void wheels(layout *L, int label, double cx, double half_w, double z0, double len, double rad, int axles) {
    for (int a = 0; a < axles; a++) {
        const double zc = axles == 1 ? z0 + len / 2 : z0 + 0.2 * len + (0.6 * len) * a / (axles - 1);
        for (int side = 0; side < 2; side++) {
            const double x0 = side ? cx + half_w - 0.26 : cx - half_w + 0.02;
            syn_add(L->s, MT_PRIM_BOX, label, TEX_TYRE, x0, 0, zc - rad, x0 + 0.24, 2 * rad, zc + rad, k_tyre);
        }
    }
}

static void car(layout *L, double cx, double z0, double len, int oncoming) {
    syn_rng *r = L->r;
    float paint[3], glass[3];
    syn_jitter(r, k_paint[syn_i(r, 0, 9)], 0.08, paint);
    syn_jitter(r, k_glass[syn_i(r, 0, 3)], 0.1, glass);
    const double w = syn_u(r, 1.65, 1.95), y0 = syn_u(r, 0.28, 0.36), top = y0 + syn_u(r, 0.5, 0.72), cab = syn_u(r, 0.42, 0.6);
    const double c0 = syn_u(r, 0.2, 0.32), c1 = syn_u(r, 0.7, 0.82), wr = syn_u(r, 0.29, 0.34);
    mt_synth_prim *p = syn_add(L->s, MT_PRIM_BOX, MT_CLS_CAR, TEX_PAINT, cx - w / 2, y0, z0, cx + w / 2, top, z0 + len, paint);
    if (p) p->p[0] = oncoming;
    p = syn_add(L->s, MT_PRIM_BOX, MT_CLS_CAR, TEX_CABIN, cx - w / 2 + 0.08, top, z0 + len * c0, cx + w / 2 - 0.08, top + cab,
                z0 + len * c1, paint);
    set_col2(p, glass);
    wheels(L, MT_CLS_CAR, cx, w / 2, z0 - 0.1 * len, 1.2 * len, wr, 2);
}

static void truck(layout *L, double cx, double z0, double len, int oncoming) {
    syn_rng *r = L->r;
    float cabc[3], cargo[3], glass[3];
    syn_jitter(r, k_paint[syn_i(r, 0, 9)], 0.1, cabc);
    syn_jitter(r, k_paint[syn_i(r, 0, 3)], 0.1, cargo);
    syn_jitter(r, k_glass[0], 0.1, glass);
    const double w = syn_u(r, 2.3, 2.5), ch = syn_u(r, 2.6, 3.0), bh = syn_u(r, 3.0, 3.8), cl = 2.2;
    const double cab0 = oncoming ? z0 : z0 + len - cl, box0 = oncoming ? z0 + cl + 0.2 : z0;
    set_col2(syn_add(L->s, MT_PRIM_BOX, MT_CLS_TRUCK, TEX_BUS, cx - w / 2, 0.5, cab0, cx + w / 2, ch, cab0 + cl, cabc), glass);
    mt_synth_prim *p = syn_add(L->s, MT_PRIM_BOX, MT_CLS_TRUCK, TEX_PAINT, cx - w / 2, 0.65, box0, cx + w / 2, bh, box0 + len - cl - 0.2, cargo);
    if (p) p->p[0] = oncoming;
    syn_add(L->s, MT_PRIM_BOX, MT_CLS_TRUCK, TEX_PLAIN, cx - w / 2 + 0.3, 0.45, z0 + 0.3, cx + w / 2 - 0.3, 0.7, z0 + len - 0.3, k_dark);
    wheels(L, MT_CLS_TRUCK, cx, w / 2, z0, len, 0.5, 3);
}

static void bus(layout *L, double cx, double z0, double len) {
    syn_rng *r = L->r;
    static const float buses[5][3] = {{0.85f, 0.70f, 0.10f}, {0.70f, 0.10f, 0.08f}, {0.88f, 0.88f, 0.86f}, {0.10f, 0.30f, 0.65f},
                                      {0.15f, 0.50f, 0.25f}};
    float col[3], glass[3];
    syn_jitter(r, buses[syn_i(r, 0, 4)], 0.08, col);
    syn_jitter(r, k_glass[syn_i(r, 0, 1)], 0.1, glass);
    set_col2(syn_add(L->s, MT_PRIM_BOX, MT_CLS_BUS, TEX_BUS, cx - 1.27, syn_u(r, 0.3, 0.36), z0, cx + 1.27, syn_u(r, 3.0, 3.2), z0 + len, col),
             glass);
    wheels(L, MT_CLS_BUS, cx, 1.27, z0, len, 0.5, 2);
}

/* A person standing or walking (label person), or seated on a two-wheeler
 * (label rider, seat at y0).  Boxes in (across, along) coordinates: along
 * is z when facing along the street, else x. */
typedef struct body {
    layout *L;
    int label, along_z;
    double x, z;
} body;
static mt_synth_prim *body_box(const body *b, double a0, double a1, double y0, double y1, double l0, double l1, int tex,
                               const float col[3]) {
    return b->along_z ? syn_add(b->L->s, MT_PRIM_BOX, b->label, tex, b->x + a0, y0, b->z + l0, b->x + a1, y1, b->z + l1, col)
                      : syn_add(b->L->s, MT_PRIM_BOX, b->label, tex, b->x + l0, y0, b->z + a0, b->x + l1, y1, b->z + a1, col);
}

static void person(layout *L, double x, double z, double ground, int label, int along_z, double seat, int helmet) {
    syn_rng *r = L->r;
    float top[3], legs[3], skin[3], hair[3];
    syn_jitter(r, k_cloth[syn_i(r, 0, 9)], 0.15, top);
    syn_jitter(r, k_trousers[syn_i(r, 0, 3)], 0.15, legs);
    syn_jitter(r, k_skin[syn_i(r, 0, 3)], 0.08, skin);
    syn_jitter(r, helmet ? k_cloth[syn_i(r, 0, 9)] : k_hair[syn_i(r, 0, 3)], 0.1, hair);
    const double H = syn_u(r, 1.55, 1.95), sw = syn_u(r, 0.16, 0.22), stride = seat > 0 ? 0 : syn_u(r, -0.16, 0.16);
    const body b = {L, label, along_z, x, z};
    const double hip = seat > 0 ? seat : ground + 0.47 * H, shoulder = hip + 0.35 * H, head = shoulder + 0.1 * H;
    for (int s = -1; s <= 1; s += 2) {
        const double lo = seat > 0 ? seat - 0.5 : ground;
        body_box(&b, s * 0.09 - 0.065, s * 0.09 + 0.065, lo, hip, s * stride - 0.07, s * stride + 0.07, TEX_CLOTH, legs);
        body_box(&b, s > 0 ? sw : -sw - 0.08, s > 0 ? sw + 0.08 : -sw, hip + 0.03 * H, shoulder - 0.02 * H,
                 -s * 0.7 * stride - 0.05 + (seat > 0 ? 0.2 : 0), -s * 0.7 * stride + 0.05 + (seat > 0 ? 0.45 : 0), TEX_CLOTH, top);
    }
    body_box(&b, -sw, sw, hip, shoulder, -0.11, 0.11 + (seat > 0 ? 0.08 : 0), TEX_CLOTH, top);
    const double hr = 0.062 * H;
    mt_synth_prim *p = along_z ? ell(L, label, TEX_HEAD, x, head + hr, z + (seat > 0 ? 0.08 : 0), 0.8 * hr, hr, 0.9 * hr, skin)
                               : ell(L, label, TEX_HEAD, x, head + hr, z, 0.9 * hr, hr, 0.8 * hr, skin);
    if (p) set_col2(p, hair), p->p[0] = helmet, p->p[1] = syn_p(r, 0.5);
}

static void two_wheeler(layout *L, double cx, double z0, double len, int motor) {
    syn_rng *r = L->r;
    const int label = motor ? MT_CLS_MOTORCYCLE : MT_CLS_BICYCLE;
    float frame[3];
    syn_jitter(r, k_paint[syn_i(r, 0, 9)], 0.1, frame);
    const double wr = motor ? 0.32 : 0.34, ww = motor ? 0.06 : 0.035, zf = z0 + wr, zb = z0 + len - wr;
    ell(L, label, TEX_TYRE, cx, wr, zf, ww, wr, wr, k_tyre);
    ell(L, label, TEX_TYRE, cx, wr, zb, ww, wr, wr, k_tyre);
    if (motor) {
        syn_add(L->s, MT_PRIM_BOX, label, TEX_PAINT, cx - 0.18, 0.35, zf, cx + 0.18, 0.85, zb, frame);
    } else {
        syn_add(L->s, MT_PRIM_BOX, label, TEX_METAL, cx - 0.04, 0.77, zf, cx + 0.04, 0.85, zb, frame);
        syn_add(L->s, MT_PRIM_BOX, label, TEX_METAL, cx - 0.04, 0.34, 0.5 * (zf + zb) - 0.06, cx + 0.04, 0.85, 0.5 * (zf + zb) + 0.06, frame);
    }
    syn_add(L->s, MT_PRIM_BOX, label, TEX_METAL, cx - 0.3, 0.98, zb - 0.05, cx + 0.3, 1.03, zb + 0.02, k_dark); /* handlebar */
    person(L, cx, 0.5 * (zf + zb) - 0.15, 0, MT_CLS_RIDER, 1, motor ? 0.85 : 0.95, motor || syn_p(r, 0.3));
}

static int lane_free(const lane_occ *o, double z0, double z1) {
    for (int i = 0; i < o->n; i++)
        if (z0 < o->z1[i] && z1 > o->z0[i]) return 0;
    return o->n < MAX_OCC;
}
static void lane_take(lane_occ *o, double z0, double z1) {
    if (o->n < MAX_OCC) o->z0[o->n] = z0, o->z1[o->n++] = z1;
}

/* One vehicle of a random kind in lane k at z0 if the lane is free there
 * (kinds: car, truck, bus, motorcycle, bicycle; parked: car or truck). */
static void vehicle(layout *L, int k, double z0, int parked) {
    mt_synth_scene *s = L->s;
    syn_rng *r = L->r;
    const double u = syn_u(r, 0, 1);
    const int kind = parked ? (u < 0.9 ? 0 : 1) : u < 0.62 ? 0 : u < 0.74 ? 1 : u < 0.84 ? 2 : u < 0.92 ? 3 : 4;
    static const double lo[5] = {3.9, 7.5, 10.5, 1.9, 1.6}, hi[5] = {4.9, 10.5, 12.5, 2.2, 1.8};
    const double len = syn_u(r, lo[kind], hi[kind]);
    double cx = -s->road_half + (k + 0.5) * s->lane_w + syn_u(r, -0.3, 0.3);
    if (parked) cx = k ? s->road_half - 0.3 - 1.2 : -s->road_half + 0.3 + 1.2;
    if (!lane_free(&L->occ[k], z0 - 1.2, z0 + len + 1.2)) return;
    lane_take(&L->occ[k], z0 - 1.2, z0 + len + 1.2);
    const int oncoming = cx < 0;
    switch (kind) {
    case 0: car(L, cx, z0, len, oncoming); break;
    case 1: truck(L, cx, z0, len, oncoming); break;
    case 2: bus(L, cx, z0, len); break;
    default: two_wheeler(L, cx, z0, len, kind == 3); break;
    }
}

static void traffic(layout *L) {
    mt_synth_scene *s = L->s;
    syn_rng *r = L->r;
    const double zmax = L->zend - 14 < 90 ? L->zend - 14 : 90;
    for (int k = 0; k < s->lanes; k++) {
        lane_take(&L->occ[k], -100, k == L->cam_lane ? 9 : 1);
        if (s->crosswalk) lane_take(&L->occ[k], s->cross_z0 - 1, s->cross_z1 + 0.5);
    }
    for (int side = 0; side < 2; side++) { /* parked along the curbs */
        if (!syn_p(r, 0.6)) continue;
        for (double z = syn_u(r, 3, 12); z < zmax; z += syn_u(r, 5, 14))
            if (syn_p(r, 0.7)) vehicle(L, side ? s->lanes - 1 : 0, z, 1);
    }
    /* moving traffic, nearer more often (u^2: a distant vehicle is a few pixels) */
    for (int k = 0; k < s->lanes; k++)
        for (int n = syn_i(r, 0, 3); n > 0; n--) {
            const double u = syn_u(r, 0, 1);
            vehicle(L, k, 2 + (zmax - 2) * u * u, 0);
        }
    if (syn_p(r, 0.35)) { /* a motorcyclist or cyclist near by: rare classes, seen large enough to learn */
        const int k = syn_i(r, 0, s->lanes - 1), motor = syn_p(r, 0.5);
        const double z = syn_u(r, 6, 25), len = motor ? syn_u(r, 1.9, 2.2) : syn_u(r, 1.6, 1.8);
        if (lane_free(&L->occ[k], z - 1, z + len + 1)) {
            lane_take(&L->occ[k], z - 1, z + len + 1);
            two_wheeler(L, -s->road_half + (k + 0.5) * s->lane_w + syn_u(r, -0.4, 0.4), z, len, motor);
        }
    }
    for (int n = syn_p(r, 0.55) ? syn_i(r, 1, 2) : 0; n > 0; n--) { /* cyclists by the right curb */
        const double z = syn_u(r, 6, 40), len = syn_u(r, 1.6, 1.8);
        if (lane_free(&L->occ[s->lanes - 1], z - 1, z + len + 1)) {
            lane_take(&L->occ[s->lanes - 1], z - 1, z + len + 1);
            two_wheeler(L, s->road_half - 0.7, z, len, 0);
        }
    }
}

static void pedestrians(layout *L) {
    mt_synth_scene *s = L->s;
    syn_rng *r = L->r;
    for (int n = syn_i(r, 0, 10); n > 0; n--) {
        const int side = syn_i(r, 0, 1), along = syn_p(r, 0.7);
        const double walk = s->walk[side], o = s->road_half + syn_u(r, 0.4, walk - 0.3);
        const double z = syn_u(r, 4, L->zend - 3 < 70 ? L->zend - 3 : 70);
        person(L, sgn(side) * o, z, L->gy, MT_CLS_PERSON, along, 0, 0);
        if (syn_p(r, 0.3)) person(L, sgn(side) * (o + syn_u(r, -0.6, 0.6)), z + syn_u(r, 0.6, 1.3), L->gy, MT_CLS_PERSON, along, 0, 0);
    }
    if (s->crosswalk)
        for (int n = syn_i(r, 0, 4); n > 0; n--)
            person(L, syn_u(r, -s->road_half + 0.5, s->road_half - 0.5), syn_u(r, s->cross_z0 + 0.4, s->cross_z1 - 0.4), 0,
                   MT_CLS_PERSON, 0, 0, 0);
}

void syn_populate(mt_synth_scene *s, syn_rng *r) {
    layout L = {.s = s, .r = r, .gy = s->curb_h};
    for (int side = 0; side < 2; side++) L.bl[side] = s->road_half + s->walk[side] + s->terrain[side];
    int lane = (int)floor((s->cam[0] + s->road_half) / s->lane_w);
    L.cam_lane = lane < 0 ? 0 : lane >= s->lanes ? s->lanes - 1 : lane;
    const int closed = syn_p(r, 0.72);
    L.zend = closed ? syn_u(r, 45, 110) : syn_u(r, 140, 200);
    for (int side = 0; side < 2; side++) side_buildings(&L, side);
    if (closed) backdrop(&L);
    for (int side = 0; side < 2; side++) {
        if (syn_p(r, 0.5)) wall_or_fence(&L, side); /* walls and fences are rare on real streets: more here, to learn them */
        vegetation(&L, side);
    }
    furniture(&L);
    traffic(&L);
    pedestrians(&L);
}
