/* Which output cones each node belongs to: the shared part (in the cone of
 * more than one graph output: the encoder) and each output's own part (the
 * heads).  Used by `info` for FLOPs per subgraph and by `split`. */
#include "graph/ops.h"

#include <stdlib.h>
#include <string.h>

mtmi_status mt_graph_cone_labels(const mt_graph *g, int *label) {
    /* mask[node] = bitset of outputs whose cone holds the node (<= 64 outputs) */
    uint64_t *vmask = calloc(g->nvalues + 1, sizeof(uint64_t));
    if (!vmask) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->noutputs && i < 64; i++) vmask[g->outputs[i]] |= 1ull << i;
    for (int i = g->nnodes - 1; i >= 0; i--) {
        const mt_node *n = &g->nodes[i];
        uint64_t m = 0;
        for (int k = 0; k < n->nout; k++)
            if (n->out[k] >= 0) m |= vmask[n->out[k]];
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] >= 0) vmask[n->in[k]] |= m;
        if (!m) label[i] = -2; /* dead */
        else if (m & (m - 1)) label[i] = -1;
        else label[i] = __builtin_ctzll(m);
    }
    free(vmask);
    return MTMI_OK;
}
