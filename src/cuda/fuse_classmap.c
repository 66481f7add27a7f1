/* Fusion pass: a bilinear resize whose only reader is a class map
 * (mtmi.ClassMap) as one MC_RESIZE_ARGMAX step (kernel mtk_resize_argmax).
 *
 * A segmentation head ends in a x4 bilinear resize of its logits; an
 * application that asks for the class map alone (`mtmi run --save
 * classes,...`) would otherwise have the resize write 19 x 1024 x 1024 FP32
 * logits (80 MB) for the argmax to read back.  The fused kernel computes
 * each pixel's 19 values in registers, with the resize kernel's own
 * arithmetic, and writes one byte.  plan_resize keeps such a resize in FP32
 * (as when it writes a float graph output), so the map is the same whether
 * fused or not and equals the argmax of the logits the plan returns when
 * asked for them.
 *
 * The fused step: t[0] the class map (uint8 [N, OH, OW], contiguous), t[1]
 * the resize's input; u.resize as the resize step's. */
#include "core/core.h"
#include "cuda/cuda_internal.h"

static int same_tensor(const mc_tref *a, const mc_tref *b) {
    if (a->buf != b->buf || a->off != b->off || a->st != b->st) return 0;
    for (int d = 0; d < 4; d++)
        if (a->dims[d] != b->dims[d] || a->strides[d] != b->strides[d]) return 0;
    return 1;
}

int mc_fuse_classmap(mc_plan *p) {
    int made = 0;
    for (int k = 0; k < p->nsteps; k++) {
        mc_step *cm = &p->steps[k];
        if (cm->kind != MC_CLASSMAP) continue;
        /* The resize need not come just before: in a plan of the whole
         * network the class map (a node the output-forms pass appends) comes
         * after the depth head's steps. */
        const int j = mc_last_user_before(p, cm->t[1].buf, k);
        if (j < 0) continue;
        mc_step *rs = &p->steps[j];
        if (rs->kind != MC_RESIZE || rs->label != cm->label) continue;
        const mc_tref *y = &rs->t[0], *x = &rs->t[1], *map = &cm->t[0];
        if (y->rank != 4 || x->rank != 4 || !same_tensor(y, &cm->t[1])) continue;
        if (!mtk_resize_argmax_supported((int)rs->u.resize.mode, (int)x->dims[1], x->st == MTMI_FLOAT16, y->st == MTMI_FLOAT16)) continue;
        /* the class map contiguous [N, OH, OW] */
        if (map->st != MTMI_UINT8 || map->rank != 3 || map->dims[0] != y->dims[0] || map->dims[1] != y->dims[2] ||
            map->dims[2] != y->dims[3] || !mc_is_contig(map))
            continue;
        if (mc_buf_used_elsewhere(p, y->buf, j, k)) continue;
        /* The fused step runs at the resize's place (its input is current
         * there) and so writes the map earlier than the class map did: no
         * step in between may touch the map's buffer.  Memory is laid out
         * after the passes, so the map's lifetime follows the new order. */
        int touched = 0;
        for (int s = j + 1; s < k && !touched; s++) touched = mc_step_uses(&p->steps[s], map->buf);
        if (touched) continue;
        mc_step fused = mc_step_like(rs, MC_RESIZE_ARGMAX);
        fused.t[0] = *map;
        fused.t[1] = *x;
        fused.nt = 2;
        fused.u.resize = rs->u.resize;
        *rs = fused;
        cm->kind = MC_DROPPED;
        made++;
    }
    return made;
}
