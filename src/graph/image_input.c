/* Images in, normalization inside: prepends mtmi.Preprocess to a model so
 * that its first input is taken as uint8 RGB pixels [N,H,W,3] and the
 * normalization runs on the encoder's device (one GPU kernel, or the CPU
 * stage's threads) instead of on the application's thread; a 1024x1024 frame
 * then crosses the bus as 3 MB of pixels, not 12 MB of floats. */
#include "graph/graph.h"

#include <stdlib.h>
#include <string.h>

mtmi_status mt_graph_image_input(mt_graph *g, int input, const float mean[3], const float stdv[3]) {
    if (input < 0 || input >= g->ninputs) return mt_fail(MTMI_ERR_ARG, "image input: model has no input %d", input);
    int x = g->inputs[input];
    const mt_value *xv = &g->values[x];
    char a[128];
    if (xv->dtype != MTMI_FLOAT || xv->rank != 4 || xv->dims[1] != 3 || xv->dims[0] < 1 || xv->dims[2] < 1 || xv->dims[3] < 1)
        return mt_fail(MTMI_ERR_SHAPE, "image input: input '%s' is %s %s, not float Nx3xHxW with known sizes", xv->name,
                       mt_dtype_name(xv->dtype), mt_shape_str(xv->rank, xv->dims, a, sizeof a));
    char name[300];
    snprintf(name, sizeof name, "%s_rgb8", xv->name);
    int img = mt_graph_add_value_unique(g, name);
    if (img < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    xv = &g->values[x]; /* the value array may have moved */
    int64_t dims[4] = {xv->dims[0], xv->dims[2], xv->dims[3], 3};
    mt_value_set_shape(&g->values[img], MTMI_UINT8, 4, dims);
    snprintf(name, sizeof name, "%s_normalize", xv->name);
    int nd = mt_graph_add_node(g, "Preprocess", name, &img, 1, &x, 1);
    if (nd < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    mt_node *n = &g->nodes[nd];
    free(n->domain);
    n->domain = mt_strdup("mtmi");
    mt_attr m = {.name = "mean", .type = MT_ATTR_FLOATS, .n = 3, .floats = (float *)mean};
    mt_attr d = {.name = "std", .type = MT_ATTR_FLOATS, .n = 3, .floats = (float *)stdv};
    if (!n->domain || mt_node_set_attr(n, &m) || mt_node_set_attr(n, &d)) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    g->values[x].is_input = 0;
    g->values[x].producer = nd;
    g->values[img].is_input = 1;
    g->inputs[input] = img;
    return mt_graph_compact(g);
}
