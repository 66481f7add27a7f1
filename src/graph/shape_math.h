/* Parameter resolution shared by shape inference (graph/shapes_shape.c) and
 * the CPU kernels (cpu/kernels_shape.c), so that both read a node's starts,
 * axes and pads the same way.  Each returns NULL on success or a static
 * message naming what is wrong. */
#ifndef MT_SHAPE_MATH_H
#define MT_SHAPE_MATH_H

#include <stdint.h>
#include <string.h>

#include "core/core.h"

/* ONNX Slice (opset 10 semantics, which opset 1 shares with steps of 1):
 * resolves per-dimension start, step and length.  Dimensions that no axis
 * names are taken whole.  n = number of entries in starts/ends (axes and
 * steps may be NULL for the defaults). */
static inline const char *mt_slice_resolve(int rank, const int64_t *dims, int n, const int64_t *starts, const int64_t *ends,
                                           const int64_t *axes, const int64_t *steps, int64_t *start_out, int64_t *step_out,
                                           int64_t *len_out) {
    int seen[MT_MAX_RANK] = {0};
    for (int d = 0; d < rank; d++) {
        start_out[d] = 0;
        step_out[d] = 1;
        len_out[d] = dims[d];
    }
    for (int i = 0; i < n; i++) {
        int64_t ax = axes ? axes[i] : i;
        if (ax < 0) ax += rank;
        if (ax < 0 || ax >= rank) return "axis out of range";
        if (seen[ax]++) return "an axis is repeated";
        int64_t step = steps ? steps[i] : 1, dim = dims[ax];
        if (step == 0) return "a step is 0";
        int64_t s = starts[i], e = ends[i];
        if (s < 0) s += dim;
        if (e < 0) e += dim;
        int64_t len;
        if (step > 0) {
            s = s < 0 ? 0 : (s > dim ? dim : s);
            e = e < 0 ? 0 : (e > dim ? dim : e);
            len = e > s ? (e - s + step - 1) / step : 0;
        } else {
            s = s < 0 ? 0 : (s > dim - 1 ? dim - 1 : s);
            e = e < -1 ? -1 : (e > dim - 1 ? dim - 1 : e);
            len = s > e ? (s - e + (-step) - 1) / (-step) : 0;
        }
        start_out[ax] = s;
        step_out[ax] = step;
        len_out[ax] = len;
    }
    return NULL;
}

/* Marks reduced dimensions in mask[] from a list of (possibly negative)
 * axes; with no axes, all dimensions unless noop_empty. */
static inline const char *mt_reduce_axes(int rank, int n, const int64_t *axes, int noop_empty, int *mask) {
    for (int d = 0; d < rank; d++) mask[d] = n == 0 && !noop_empty;
    for (int i = 0; i < n; i++) {
        int64_t a = axes[i];
        if (a < 0) a += rank;
        if (a < 0 || a >= rank) return "axis out of range";
        if (mask[a]) return "an axis is repeated";
        mask[a] = 1;
    }
    return NULL;
}

/* ONNX Pad: pads holds n begins then n ends for the listed axes (all axes
 * when axes is NULL); fills begin[] and end[] per dimension. */
static inline const char *mt_pad_resolve(int rank, int n2, const int64_t *pads, int naxes, const int64_t *axes, int64_t *begin,
                                         int64_t *end) {
    int count = axes ? naxes : rank;
    if (n2 != 2 * count) return "pads must have two entries per axis";
    for (int d = 0; d < rank; d++) begin[d] = end[d] = 0;
    for (int i = 0; i < count; i++) {
        int64_t a = axes ? axes[i] : i;
        if (a < 0) a += rank;
        if (a < 0 || a >= rank) return "axis out of range";
        begin[a] = pads[i];
        end[a] = pads[i + count];
    }
    return NULL;
}

#endif
