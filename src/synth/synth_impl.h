/* Shared by the synth sources only (scene.c, objects.c, render.c): the
 * scene's random stream, primitive construction and the texture kinds. */
#ifndef MT_SYNTH_IMPL_H
#define MT_SYNTH_IMPL_H

#include "synth/synth.h"

/* How a primitive's surface is coloured (render.c). */
enum {
    TEX_PLAIN,    /* col with a little noise */
    TEX_FACADE,   /* building: col walls, col2 windows on a grid (p: spacing, floor height, width and height ratios) */
    TEX_FOLIAGE,  /* leaves: col and col2 mottled */
    TEX_BARK,
    TEX_PAINT,    /* vehicle body: col, lights on the ends (p[0]: 1 = front towards -z) */
    TEX_CABIN,    /* vehicle cabin: col2 glass on the sides, col roof */
    TEX_BUS,      /* bus / tram body: col with a col2 window band */
    TEX_TYRE,
    TEX_METAL,    /* poles, arms */
    TEX_SIGN,     /* sign plate: col rim, col2 inside (p[0]: 0 round, 1 square) */
    TEX_TLIGHT,   /* traffic-light housing, p[0] the lit lamp (0 red, 1 amber, 2 green) */
    TEX_CLOTH,
    TEX_HEAD,     /* col skin, col2 hair or helmet on top and back */
    TEX_CONCRETE,
    TEX_LAMP      /* bright lamp */
};

typedef struct syn_rng {
    uint64_t s;
} syn_rng;
uint64_t syn_next(syn_rng *r);
double syn_u(syn_rng *r, double lo, double hi); /* uniform in [lo, hi) */
int syn_i(syn_rng *r, int lo, int hi);          /* integer in [lo, hi] */
int syn_p(syn_rng *r, double p);                /* 1 with probability p */
/* base scaled by a random gain within +-amount (and per channel by half of
 * it), clipped to [0, 1]. */
void syn_jitter(syn_rng *r, const float base[3], double amount, float out[3]);

/* Appends a primitive with bounds (x0, y0, z0)-(x1, y1, z1) (any order);
 * NULL once an allocation failed (s->cap is then -1). */
mt_synth_prim *syn_add(mt_synth_scene *s, int kind, int label, int tex, double x0, double y0, double z0, double x1, double y1,
                       double z1, const float col[3]);
/* Every object of the scene (objects.c). */
void syn_populate(mt_synth_scene *s, syn_rng *r);

#endif
