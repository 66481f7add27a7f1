/* The MTMI reference network built with the graph builder; layer for layer
 * the module of reference/mtmi_torch.py (attention written out as
 * MatMul/Mul/Softmax/MatMul, i.e. the sdpa=False path), with the op
 * vocabulary of its PyTorch exports (dynamo's: constant shapes, no
 * Shape/Slice chains).
 *
 * Parameter count.  The PyTorch module has 4,898,068 parameters.  Like the
 * exporters we fold every BatchNorm into the convolution before it: each of
 * the 13 conv+BN+ReLU blocks (5 in the seg head: 4 x 128 + 128 channels; 8 in
 * the depth head: 2 x (32+64+160+256) channels; 1,664 channels in all) loses
 * BN's gamma and beta (2 per channel) and gains a conv bias (1 per channel),
 * so the graph holds 4,898,068 - 1,664 = 4,896,404 weights.  The reference
 * exports hold 4,896,403 of those in external tensors: their graph_only.py
 * keeps float tensors of at most 16 elements inline, and the one such
 * weight is the depth classifier's bias (1 element).  BatchNorm's running
 * mean and variance are buffers, not parameters, in both counts. */
#include "graph/mtmi_net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/builder.h"

static const int g_dims[4] = {32, 64, 160, 256};
static const int g_heads[4] = {1, 2, 5, 8};
static const int g_srs[4] = {8, 4, 2, 1};

typedef struct net {
    mt_builder *b;
    int64_t B;
} net;

/* x [B, N, C] (tokens of an H x W map) through one transformer block. */
static int block(net *t, int x, int stage, int j, int64_t H, int64_t W) {
    mt_builder *b = t->b;
    int64_t B = t->B, C = g_dims[stage], h = g_heads[stage], d = C / h, sr = g_srs[stage], N = H * W;
    char p[128], nm[256];
    snprintf(p, sizeof p, "enc.blocks.%d.%d", stage, j);

    mt_b_scope(b, "/enc/blocks.%d.%d/n1", stage, j);
    snprintf(nm, sizeof nm, "%s.n1", p);
    int x1 = mt_b_layernorm(b, x, nm, (int)C, 1e-6f);

    mt_b_scope(b, "/enc/blocks.%d.%d/attn", stage, j);
    snprintf(nm, sizeof nm, "%s.attn.q", p);
    int q = mt_b_linear(b, x1, nm, (int)C, (int)C, B * N);
    int64_t qs[4] = {B, N, h, d}, p0213[4] = {0, 2, 1, 3};
    q = mt_b_transpose(b, mt_b_reshape(b, q, qs, 4), p0213, 4);
    int y = x1;
    int64_t M = N;
    if (sr > 1) {
        int64_t p021[3] = {0, 2, 1}, img[4] = {B, C, H, W};
        y = mt_b_reshape(b, mt_b_transpose(b, x1, p021, 3), img, 4);
        snprintf(nm, sizeof nm, "%s.attn.srconv", p);
        M = (H / sr) * (W / sr);
        y = mt_b_conv(b, y, nm, (int)C, (int)C, (int)sr, (int)sr, 0, 1, 1, B * M);
        int64_t flat[3] = {B, C, M};
        y = mt_b_transpose(b, mt_b_reshape(b, y, flat, 3), p021, 3);
        snprintf(nm, sizeof nm, "%s.attn.norm", p);
        y = mt_b_layernorm(b, y, nm, (int)C, 1e-5f);
    }
    snprintf(nm, sizeof nm, "%s.attn.kv", p);
    int kv = mt_b_linear(b, y, nm, (int)C, (int)(2 * C), B * M);
    int64_t kvs[5] = {B, -1, 2, h, d}, p20314[5] = {2, 0, 3, 1, 4};
    kv = mt_b_transpose(b, mt_b_reshape(b, kv, kvs, 5), p20314, 5);
    int k = mt_b_gather(b, kv, 0, 0), v = mt_b_gather(b, kv, 1, 0);
    int o = mt_b_attention(b, q, k, v, 1.0f / sqrtf((float)d), B * h, N, M, d);
    int64_t os[3] = {B, N, C};
    o = mt_b_reshape(b, mt_b_transpose(b, o, p0213, 4), os, 3);
    snprintf(nm, sizeof nm, "%s.attn.proj", p);
    o = mt_b_linear(b, o, nm, (int)C, (int)C, B * N);
    mt_b_scope(b, "/enc/blocks.%d.%d", stage, j);
    x = mt_b_binary(b, "Add", x, o);

    mt_b_scope(b, "/enc/blocks.%d.%d/n2", stage, j);
    snprintf(nm, sizeof nm, "%s.n2", p);
    int x2 = mt_b_layernorm(b, x, nm, (int)C, 1e-6f);
    mt_b_scope(b, "/enc/blocks.%d.%d/ffn", stage, j);
    int64_t hid = 4 * C, p021[3] = {0, 2, 1}, img[4] = {B, hid, H, W}, flat[3] = {B, hid, N};
    snprintf(nm, sizeof nm, "%s.ffn.fc1", p);
    int f = mt_b_linear(b, x2, nm, (int)C, (int)hid, B * N);
    f = mt_b_reshape(b, mt_b_transpose(b, f, p021, 3), img, 4);
    snprintf(nm, sizeof nm, "%s.ffn.dw", p);
    f = mt_b_conv(b, f, nm, (int)hid, (int)hid, 3, 1, 1, (int)hid, 1, B * N);
    f = mt_b_gelu(b, mt_b_transpose(b, mt_b_reshape(b, f, flat, 3), p021, 3));
    snprintf(nm, sizeof nm, "%s.ffn.fc2", p);
    f = mt_b_linear(b, f, nm, (int)hid, (int)C, B * N);
    mt_b_scope(b, "/enc/blocks.%d.%d", stage, j);
    return mt_b_binary(b, "Add", x, f);
}

mtmi_status mt_make_mtmi_net(const mt_mtmi_net_opts *opt, mt_graph **out, mt_mtmi_net_info *info) {
    mt_mtmi_net_opts o = opt ? *opt : (mt_mtmi_net_opts){0};
    if (!out) return mt_fail(MTMI_ERR_ARG, "mt_make_mtmi_net: NULL argument");
    *out = NULL;
    if (!o.height) o.height = 1024;
    if (!o.width) o.width = 1024;
    if (!o.batch) o.batch = 1;
    if (o.height < 32 || o.width < 32 || o.height % 32 || o.width % 32 || o.height > 16384 || o.width > 16384)
        return mt_fail(MTMI_ERR_ARG, "MTMI network: size %dx%d must be multiples of 32 (32..16384)", o.height, o.width);
    if (o.batch < 1 || o.batch > 1024) return mt_fail(MTMI_ERR_ARG, "MTMI network: batch %d out of range (1..1024)", o.batch);
    if (o.init != MT_MTMI_INIT_SPREAD && o.init != MT_MTMI_INIT_TORCH && o.init != MT_MTMI_INIT_NONE)
        return mt_fail(MTMI_ERR_ARG, "MTMI network: unknown weight initialization %d", o.init);
    if (o.opset && o.opset < 17)
        return mt_fail(MTMI_ERR_ARG, "MTMI network: opset %lld has no LayerNormalization (need 17 or later)", (long long)o.opset);

    mt_builder bb, *b = &bb;
    mtmi_status s = mt_builder_init(b, o.seed, o.opset ? o.opset : 17);
    if (s) return s;
    b->no_draws = o.init == MT_MTMI_INIT_NONE;
    net t = {b, o.batch};
    int64_t B = o.batch;
    int64_t in_dims[4] = {B, 3, o.height, o.width};
    int x = mt_b_input(b, "input", MTMI_FLOAT, 4, in_dims);

    /* Encoder: MiT-B0. */
    int feats[4];
    int64_t H = o.height, W = o.width;
    int cin = 3;
    for (int i = 0; i < 4; i++) {
        int k = i == 0 ? 7 : 3, st = i == 0 ? 4 : 2, C = g_dims[i];
        H /= st;
        W /= st;
        char nm[128];
        mt_b_scope(b, "/enc/embeds.%d/proj", i);
        snprintf(nm, sizeof nm, "enc.embeds.%d.proj", i);
        x = mt_b_conv(b, x, nm, cin, C, k, st, k / 2, 1, 1, B * H * W);
        mt_b_scope(b, "/enc/embeds.%d", i);
        int64_t flat[3] = {B, C, H * W}, p021[3] = {0, 2, 1};
        x = mt_b_transpose(b, mt_b_reshape(b, x, flat, 3), p021, 3);
        mt_b_scope(b, "/enc/embeds.%d/norm", i);
        snprintf(nm, sizeof nm, "enc.embeds.%d.norm", i);
        x = mt_b_layernorm(b, x, nm, C, 1e-6f);
        for (int j = 0; j < 2; j++) x = block(&t, x, i, j, H, W);
        mt_b_scope(b, "/enc/norms.%d", i);
        snprintf(nm, sizeof nm, "enc.norms.%d", i);
        x = mt_b_layernorm(b, x, nm, C, 1e-6f);
        mt_b_scope(b, "/enc");
        int64_t img[4] = {B, H, W, -1}, p0312[4] = {0, 3, 1, 2};
        x = mt_b_transpose(b, mt_b_reshape(b, x, img, 4), p0312, 4);
        feats[i] = x;
        cin = C;
    }
    double f_enc = b->flops;

    /* Segmentation head: slim SegFormer. */
    int64_t H0 = o.height / 4, W0 = o.width / 4;
    int ys[4];
    for (int i = 0; i < 4; i++) {
        int64_t hi = o.height >> (2 + i), wi = o.width >> (2 + i);
        char nm[128];
        mt_b_scope(b, "/seg/convs.%d", i);
        snprintf(nm, sizeof nm, "seg.convs.%d.0", i);
        int y = mt_b_unary(b, "Relu", mt_b_conv_bn(b, feats[i], nm, g_dims[i], 128, 1, 0, B * hi * wi));
        mt_b_scope(b, "/seg");
        int64_t sz[4] = {B, 128, H0, W0};
        ys[i] = mt_b_resize_sizes(b, y, sz, 4);
    }
    int y = mt_b_concat(b, ys, 4, 1);
    mt_b_scope(b, "/seg/fuse");
    y = mt_b_unary(b, "Relu", mt_b_conv_bn(b, y, "seg.fuse.0", 512, 128, 1, 0, B * H0 * W0));
    mt_b_scope(b, "/seg/cls");
    y = mt_b_conv(b, y, "seg.cls", 128, 19, 1, 1, 0, 1, 1, B * H0 * W0);
    mt_b_scope(b, "/seg");
    float x4[4] = {1, 1, 4, 4}, x2[4] = {1, 1, 2, 2};
    int seg = mt_b_output(b, mt_b_resize_scales(b, y, x4, 4), "seg");
    int64_t seg_dims[4] = {B, 19, o.height, o.width};
    if (seg >= 0) mt_value_set_shape(&b->g->values[seg], MTMI_FLOAT, 4, seg_dims);
    double f_seg = b->flops - f_enc;

    /* Depth head: DEST progressive decoder, deepest feature first. */
    int feat = -1;
    for (int i = 3; i >= 0; i--) {
        int64_t hi = o.height >> (2 + i), wi = o.width >> (2 + i);
        int C = g_dims[i], fin = C + (i < 3 ? g_dims[i + 1] : 0);
        char nm[128];
        mt_b_scope(b, "/depth/convs.%d", i);
        snprintf(nm, sizeof nm, "depth.convs.%d.0", i);
        int d = mt_b_unary(b, "Relu", mt_b_conv_bn(b, feats[i], nm, C, C, 1, 0, B * hi * wi));
        mt_b_scope(b, "/depth");
        if (feat >= 0) {
            int two[2] = {feat, d};
            d = mt_b_concat(b, two, 2, 1);
        }
        d = mt_b_resize_scales(b, d, x2, 4);
        mt_b_scope(b, "/depth/fuse.%d", i);
        snprintf(nm, sizeof nm, "depth.fuse.%d.0", i);
        feat = mt_b_unary(b, "Relu", mt_b_conv_bn(b, d, nm, fin, C, 3, 1, B * hi * wi * 4));
    }
    mt_b_scope(b, "/depth/cls");
    int d = mt_b_conv(b, feat, "depth.cls", 32, 1, 1, 1, 0, 1, 1, B * H0 * W0 * 4);
    mt_b_scope(b, "/depth");
    d = mt_b_unary(b, "Sigmoid", d);
    d = mt_b_output(b, mt_b_resize_scales(b, d, x2, 4), "depth");
    int64_t depth_dims[4] = {B, 1, o.height, o.width};
    if (d >= 0) mt_value_set_shape(&b->g->values[d], MTMI_FLOAT, 4, depth_dims);
    double f_depth = b->flops - f_enc - f_seg;

    int64_t params = b->params, bn = b->bn_folded;
    s = mt_builder_finish(b, out);
    if (s) return mt_fail_context(s, "building the MTMI network: ");
    if (o.init == MT_MTMI_INIT_SPREAD && (s = mt_graph_spread_weights(*out, o.seed))) {
        mt_graph_free(*out);
        *out = NULL;
        return s;
    }
    free((*out)->name);
    (*out)->name = mt_strdup("mtmi");
    if (info) {
        info->params = params;
        info->torch_params = params + bn;
        info->gflop_encoder = f_enc / 1e9;
        info->gflop_seg = f_seg / 1e9;
        info->gflop_depth = f_depth / 1e9;
    }
    return MTMI_OK;
}
