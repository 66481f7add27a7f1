/* synth: procedurally generated street scenes with exact ground truth
 * (`mtmi synth`, the synthetic frames of `mtmi run` and `bench`), and the
 * depth encoding of the MTMI depth head that the trained built-in model,
 * `mtmi eval` and the visualization share.
 *
 * A scene is a simple 3-D layout: a street along +z (road with lanes and
 * markings, raised sidewalks, grass strips), box buildings with facades,
 * trees, poles with signs and traffic lights, walls, fences, cars, trucks,
 * buses, pedestrians and riders on bicycles or motorcycles, seen by a
 * pinhole camera about 1.5 m above the road.  Every pixel casts one ray
 * through its centre; the label is the class of the surface hit and the
 * depth its distance along the camera axis, so both are exact for the
 * pixel centre.  The image is shading (sun, sky light, haze), textures and
 * sensor noise on top of the same hits.
 *
 * Determinism: a scene depends only on (seed, width, height).  The code
 * uses integer hashing for every random choice and texture, and IEEE
 * double arithmetic restricted to + - * / sqrt floor (correctly rounded or
 * exact everywhere) in fixed evaluation order; the sources are compiled
 * with -ffp-contract=off so that no compiler fuses a*b+c into an FMA on
 * one machine and not on another.  No libm transcendental (whose last bit
 * varies between C libraries) is used in the generator.  The same seed
 * therefore gives the same pixels, labels and depth on every IEEE-754
 * machine; PNG files are then byte-identical where zlib is the same. */
#ifndef MT_SYNTH_H
#define MT_SYNTH_H

#include <math.h>

#include "core/core.h"

/* ------------------------------------------------------ the depth encoding
 * The depth head ends in a sigmoid: d in (0, 1), 1 = near.  Metres are
 * log-linear in d between MT_DEPTH_NEAR and MT_DEPTH_FAR:
 *     z(d) = NEAR * (FAR / NEAR) ^ (1 - d),   d(z) = 1 - ln(z / NEAR) / ln(FAR / NEAR)
 * so an error in d is the same relative error at every distance (what
 * AbsRel and delta < 1.25 measure): 0.01 in d is 5.2 % of the depth.  The
 * training script (scripts/train_mtmi.py) reads these two constants from
 * this header, `eval` converts the head's output with mt_depth_metres, and
 * the visualization colours ln(z) (the same as 1 - d) in a jet map. */
#define MT_DEPTH_NEAR 0.5
#define MT_DEPTH_FAR 80.0

/* Sigmoid output -> metres, clipped to [NEAR, FAR] (NaN -> FAR). */
static inline double mt_depth_metres(double d) {
    if (!(d > 0)) d = 0;
    if (d > 1) d = 1;
    return MT_DEPTH_NEAR * exp((1.0 - d) * log(MT_DEPTH_FAR / MT_DEPTH_NEAR));
}
/* Metres -> the sigmoid output that encodes them, clipped to [0, 1]. */
static inline double mt_depth_unit(double z) {
    if (!(z > MT_DEPTH_NEAR)) return 1;
    if (z >= MT_DEPTH_FAR) return 0;
    return 1.0 - log(z / MT_DEPTH_NEAR) / log(MT_DEPTH_FAR / MT_DEPTH_NEAR);
}

/* The camera's focal length, relative to the image height (one camera for
 * every scene: monocular depth is defined for a known camera; a depth
 * network deployed on another focal length f scales its depth by
 * f / (MT_SYNTH_FOCAL h)).  0.785 h: a 65-degree vertical field of view. */
#define MT_SYNTH_FOCAL 0.785

/* --------------------------------------------------------------- labels */
#define MT_SYNTH_CLASSES 19
#define MT_SYNTH_IGNORE 255 /* clutter without a Cityscapes training class */
enum {
    MT_CLS_ROAD, MT_CLS_SIDEWALK, MT_CLS_BUILDING, MT_CLS_WALL, MT_CLS_FENCE, MT_CLS_POLE, MT_CLS_LIGHT, MT_CLS_SIGN,
    MT_CLS_VEGETATION, MT_CLS_TERRAIN, MT_CLS_SKY, MT_CLS_PERSON, MT_CLS_RIDER, MT_CLS_CAR, MT_CLS_TRUCK, MT_CLS_BUS,
    MT_CLS_TRAIN, MT_CLS_MOTORCYCLE, MT_CLS_BICYCLE
};
/* Depth ground truth as KITTI stores it: 16-bit metres x 256, 0 = none
 * (sky, or farther than 255.99 m). */
static inline uint16_t mt_synth_depth_u16(float z) {
    double v = (double)z * 256.0 + 0.5;
    return v >= 1.0 && v < 65536.0 ? (uint16_t)v : 0;
}

/* ---------------------------------------------------------------- scene */
enum { MT_PRIM_BOX, MT_PRIM_CYL, MT_PRIM_ELL };

/* One primitive, given by its axis-aligned bounds (world metres, x right,
 * y up, z along the street): a box; a vertical cylinder inscribed in the
 * bounds' x-z footprint (x and z extents equal); or the ellipsoid inscribed
 * in the bounds. */
typedef struct mt_synth_prim {
    uint8_t kind, label, tex, cutout; /* cutout: a fence panel with gaps */
    double lo[3], hi[3];
    float col[3], col2[3];            /* base and secondary albedo (0..1) */
    double p[4];                      /* texture parameters */
} mt_synth_prim;

typedef struct mt_synth_scene {
    int w, h;
    uint64_t seed;
    /* Pinhole camera: pixel (u, v) (u right, v down, centres at +0.5) looks
     * along  fwd + ((u - cx) / focal) right - ((v - cy) / focal) up;
     * right, up, fwd are orthonormal, so the ray parameter of a hit on this
     * unnormalized direction is its depth along the camera axis. */
    double cam[3], right[3], up[3], fwd[3], focal, cx, cy;
    /* The street's cross-section (x): road |x| < road_half, lanes of
     * lane_w, raised sidewalks (curb_h) of walk[0] (left) / walk[1]
     * (right), then grass of terrain[side], then the building line. */
    double road_half, lane_w, curb_h, walk[2], terrain[2];
    int lanes, crosswalk;
    double cross_z0, cross_z1, dash_phase;
    /* Lighting: sun direction (unit, towards the sun), sun and ambient
     * intensities, sky colours, white balance, haze, noise. */
    double sun[3], sun_i, amb_i, haze_d;
    float sky_top[3], sky_hor[3], tint[3], haze[3], asphalt, noise;
    float walk_col[3], curb_col[3], grass_col[3], line_col[3];
    int overcast, yellow_centre;
    int nprims, cap;
    mt_synth_prim *prims;
} mt_synth_scene;

/* The scene of seed for a w x h image (1..16384 each). */
mtmi_status mt_synth_scene_make(uint64_t seed, int w, int h, mt_synth_scene **out);
void mt_synth_scene_free(mt_synth_scene *s);
/* The unnormalized camera ray through (u, v) (pixel centres at +0.5). */
void mt_synth_ray(const mt_synth_scene *s, double u, double v, double dir[3]);
/* Renders the scene: rgb (h*w*3), labels (h*w train IDs, 255 = ignore) and
 * depth (h*w metres along the camera axis, 0 = none); any may be NULL. */
mtmi_status mt_synth_render(const mt_synth_scene *s, uint8_t *rgb, uint8_t *labels, float *depth);
/* Scene i of a data set made with seed: distinct scenes for distinct (seed, i). */
uint64_t mt_synth_scene_seed(uint64_t seed, uint64_t i);

#endif
