"""One-node ONNX models for every nn operator and attribute combination
(Conv, ConvTranspose, MatMul, Gemm, LayerNormalization, BatchNormalization,
Resize, Upsample, pools), run through `mtmi infer` and ONNX Runtime; per
element |mtmi - ORT| <= ATOL + RTOL |ORT| (measured: see ATOL).  Includes the MTMI network's shapes at
reduced resolution.  Usage: test_nn_ops.py [substring filter]"""
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mtmi_testutil import compare, run_mtmi, run_ort, test_seed

# Per element.  Measured: the worst element of all cases is 1.97 x
# (1e-6 + 1e-6 |ref|) off (2.3e-6 on a value of 6e-4, Winograd), the largest
# absolute error 4.8e-6 (the k=s=8 spatial-reduction conv, 2048-term sums);
# with 1e-5 + 1e-5 |ref| they use 23 % and 31 % of the tolerance.
ATOL, RTOL = 1e-5, 1e-5
rng = np.random.default_rng(test_seed(1234))
WORK = tempfile.mkdtemp(prefix="mtmi_nn_")


def rnd(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def model(op, inputs, consts, out_ranks=1, attrs=None, opset=17, nout=1, domain=""):
    """inputs: [(name, array)] fed at run time; consts: [(name, array or None)]
    initializers in input order after the runtime inputs (None = absent
    optional input, written as '')."""
    names, inits, vis = [], [], []
    for nm, a in inputs:
        names.append(nm)
        vis.append(helper.make_tensor_value_info(nm, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape))
    for nm, a in consts:
        if a is None:
            names.append("")
            continue
        names.append(nm)
        inits.append(numpy_helper.from_array(a, nm))
    outs = [f"y{i}" for i in range(nout)]
    node = helper.make_node(op, names, outs, **(attrs or {}))
    ovis = [helper.make_tensor_value_info(o, TensorProto.FLOAT if i == 0 or op != "MaxPool" else TensorProto.INT64, None)
            for i, o in enumerate(outs)]
    g = helper.make_graph([node], "t", vis, ovis, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid(domain, opset)])
    m.ir_version = 8
    return m


results = []


def check(name, m, inputs):
    flt = sys.argv[1] if len(sys.argv) > 1 else ""
    if flt and flt not in name:
        return
    d = os.path.join(WORK, name.replace(" ", "_").replace("/", "_"))
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "m.onnx")
    onnx.save(m, path)
    feeds = {nm: a for nm, a in inputs}
    print(f"{name}:")
    try:
        ref = run_ort(path, feeds, threads=1)
    except Exception as e:  # a case ORT itself rejects is a bug in the test
        print(f"  ORT failed: {e}")
        results.append((name, False))
        return
    try:
        got = run_mtmi(path, [a for _, a in inputs], extra=["--threads", "2"], workdir=d)
    except Exception as e:
        print(f"  mtmi failed: {e}")
        results.append((name, False))
        return
    ok = True
    for k, v in ref.items():
        if v.dtype == np.int64:
            same = got[k].shape == v.shape and np.array_equal(got[k], v)
            print(f"  {k}: indices {'ok' if same else 'FAIL'}")
            ok = ok and same
        else:
            ok = compare(k, got[k], v, RTOL, ATOL) and ok
    results.append((name, ok))


def conv(name, x_shape, w_shape, bias=True, opset=17, **attrs):
    x = rnd(*x_shape)
    w = rnd(*w_shape, scale=1.0 / np.sqrt(np.prod(w_shape[1:])))
    consts = [("w", w), ("b", rnd(w_shape[0]))] if bias else [("w", w)]
    check(name, model("Conv", [("x", x)], consts, attrs=attrs, opset=opset), [("x", x)])


def convt(name, x_shape, w_shape, bias=True, **attrs):
    x = rnd(*x_shape)
    w = rnd(*w_shape, scale=0.3)
    g = attrs.get("group", 1)
    consts = [("w", w), ("b", rnd(w_shape[1] * g))] if bias else [("w", w)]
    check(name, model("ConvTranspose", [("x", x)], consts, attrs=attrs), [("x", x)])


# ----------------------------------------------------------------- Conv
conv("conv 3x3 pad1", (1, 8, 13, 11), (16, 8, 3, 3), pads=[1, 1, 1, 1])
conv("conv 3x3 nobias", (2, 5, 9, 10), (7, 5, 3, 3), bias=False)
conv("conv 1x1", (2, 24, 9, 7), (12, 24, 1, 1))
conv("conv 1x1 stride2", (1, 6, 9, 8), (5, 6, 1, 1), strides=[2, 2])
conv("conv 5x3 strides dil", (1, 4, 17, 15), (6, 4, 5, 3), strides=[2, 3], dilations=[2, 1], pads=[2, 1, 3, 0])
conv("conv asym pads", (1, 3, 10, 10), (4, 3, 3, 3), pads=[0, 2, 1, 0])
conv("conv same_upper", (1, 3, 10, 9), (4, 3, 4, 3), auto_pad="SAME_UPPER", strides=[2, 2])
conv("conv same_lower", (1, 3, 10, 9), (4, 3, 4, 3), auto_pad="SAME_LOWER", strides=[2, 2])
conv("conv valid", (1, 3, 10, 9), (4, 3, 3, 2), auto_pad="VALID", strides=[2, 1])
conv("conv groups", (2, 8, 9, 9), (12, 2, 3, 3), group=4, pads=[1, 1, 1, 1])
conv("conv depthwise 3x3", (1, 16, 12, 19), (16, 1, 3, 3), group=16, pads=[1, 1, 1, 1])
conv("conv depthwise 3x3 s2", (1, 8, 12, 19), (8, 1, 3, 3), group=8, pads=[1, 1, 1, 1], strides=[2, 2])
conv("conv depthwise 5x5 mult2", (1, 4, 11, 9), (8, 1, 5, 5), group=4, pads=[2, 2, 2, 2])
conv("conv depthwise 3x3 nopad", (1, 4, 6, 7), (4, 1, 3, 3), group=4)
conv("conv depthwise 3x3 w1", (1, 4, 6, 1), (4, 1, 3, 3), group=4, pads=[1, 1, 1, 1])
conv("conv 1d", (2, 5, 23), (6, 5, 3), pads=[1, 1], strides=[2])
conv("conv 1d 1x1", (1, 5, 23), (6, 5, 1))
conv("conv 1d dw", (1, 6, 20), (6, 1, 5), group=6, pads=[2, 2], dilations=[2])
conv("conv 3d", (1, 4, 6, 7, 8), (5, 4, 3, 2, 3), pads=[1, 0, 1, 1, 1, 0], strides=[1, 2, 1])
conv("conv 3d groups dil", (2, 4, 7, 6, 5), (6, 2, 2, 3, 2), group=2, dilations=[2, 1, 1], pads=[1, 1, 0, 0, 1, 1])
conv("conv 3d same_lower", (1, 2, 5, 6, 7), (3, 2, 3, 2, 2), auto_pad="SAME_LOWER", strides=[2, 2, 1])
conv("conv kernel_shape attr", (1, 3, 8, 8), (4, 3, 3, 3), kernel_shape=[3, 3])
# MTMI shapes at 1/8 resolution (128x128 input).
conv("mtmi stem 7x7 s4", (1, 3, 128, 128), (32, 3, 7, 7), strides=[4, 4], pads=[3, 3, 3, 3])
conv("mtmi embed 3x3 s2", (1, 32, 32, 32), (64, 32, 3, 3), strides=[2, 2], pads=[1, 1, 1, 1])
conv("mtmi dwconv 128ch", (1, 128, 32, 32), (128, 1, 3, 3), group=128, pads=[1, 1, 1, 1])
conv("mtmi sr conv k=s=8", (1, 32, 32, 32), (32, 32, 8, 8), strides=[8, 8])
conv("mtmi sr conv k=s=4", (1, 64, 16, 16), (64, 64, 4, 4), strides=[4, 4])
conv("mtmi sr conv k=s=2", (1, 160, 8, 8), (160, 160, 2, 2), strides=[2, 2])
conv("mtmi 1x1 512->128", (1, 512, 32, 32), (128, 512, 1, 1))
conv("mtmi depth 3x3 416->160", (1, 416, 16, 16), (160, 416, 3, 3), pads=[1, 1, 1, 1])
conv("mtmi depth 3x3 96->32 big", (1, 96, 64, 64), (32, 96, 3, 3), pads=[1, 1, 1, 1])
# Winograd F(2x2,3x3) path: 3x3 stride 1, >= 8 channels, >= 256 outputs.
conv("wino odd sizes", (1, 12, 23, 17), (10, 12, 3, 3), pads=[1, 1, 1, 1])
conv("wino no pads", (2, 9, 20, 19), (8, 9, 3, 3))
conv("wino asym pads", (1, 16, 18, 21), (24, 16, 3, 3), pads=[0, 2, 1, 0])
conv("wino big pads", (1, 8, 16, 16), (8, 8, 3, 3), pads=[3, 2, 2, 3], bias=False)
conv("wino wide", (1, 8, 9, 100), (9, 8, 3, 3), pads=[1, 1, 1, 1])
conv("conv batch2 big tile", (2, 64, 40, 40), (16, 64, 3, 3), pads=[1, 1, 1, 1])

# ---------------------------------------------------------- ConvTranspose
convt("convt basic", (1, 3, 5, 4), (3, 4, 3, 3))
convt("convt stride pads", (2, 4, 5, 6), (4, 3, 3, 3), strides=[2, 2], pads=[1, 1, 1, 1])
convt("convt output_padding", (1, 2, 4, 4), (2, 3, 3, 3), strides=[3, 2], output_padding=[1, 1])
convt("convt output_shape", (1, 2, 4, 4), (2, 3, 3, 3), strides=[3, 2], output_shape=[14, 9])
convt("convt same_lower", (1, 2, 5, 4), (2, 3, 3, 3), strides=[2, 2], auto_pad="SAME_LOWER")
convt("convt same_upper", (1, 2, 5, 4), (2, 3, 3, 3), strides=[2, 2], auto_pad="SAME_UPPER")
convt("convt groups dil", (1, 4, 5, 5), (4, 2, 3, 2), group=2, dilations=[2, 1], bias=False)
convt("convt 1d", (1, 3, 7), (3, 2, 4), strides=[2])
convt("convt chunked rows", (1, 8, 40, 64), (8, 64, 5, 5), strides=[2, 2], pads=[2, 1, 1, 2])
convt("convt 3d", (1, 3, 4, 5, 3), (3, 2, 3, 3, 2), strides=[2, 1, 2], pads=[1, 0, 0, 1, 1, 0])
convt("convt 3d groups", (1, 4, 3, 4, 3), (4, 1, 2, 2, 2), group=2, strides=[2, 2, 2])
convt("convt k=s=2 upsampler", (1, 16, 8, 8), (16, 8, 2, 2), strides=[2, 2])

# ------------------------------------------------------------- MatMul
def matmul(name, sa, sb, const_b=False):
    a, b = rnd(*sa), rnd(*sb)
    if const_b:
        check(name, model("MatMul", [("a", a)], [("b", b)]), [("a", a)])
    else:
        check(name, model("MatMul", [("a", a), ("b", b)], []), [("a", a), ("b", b)])


matmul("matmul 2d", (7, 5), (5, 9))
matmul("matmul batched", (3, 7, 5), (3, 5, 4))
matmul("matmul bcast A", (2, 1, 6, 5), (1, 3, 5, 4))
matmul("matmul bcast B 2d", (2, 3, 6, 5), (5, 4), const_b=True)
matmul("matmul 1d x 2d", (5,), (5, 3))
matmul("matmul 2d x 1d", (4, 5), (5,))
matmul("matmul 1d x 1d", (6,), (6,))
matmul("matmul 1d x 3d", (5,), (2, 5, 3))
matmul("matmul 3d x 1d", (2, 4, 5), (5,))
matmul("matmul rank 4 x 3", (2, 3, 4, 5), (3, 5, 2))
matmul("mtmi q proj", (1, 1024, 32), (32, 32), const_b=True)
matmul("mtmi attn scores", (1, 2, 256, 32), (1, 2, 32, 64))


def gemm(name, sa, sb, sc=None, **attrs):
    a, b = rnd(*sa), rnd(*sb)
    consts = [("b", b)] + ([("c", rnd(*sc))] if sc is not None else [])
    check(name, model("Gemm", [("a", a)], consts, attrs=attrs), [("a", a)])


gemm("gemm plain", (4, 6), (6, 5))
gemm("gemm bias N", (4, 6), (6, 5), (5,))
gemm("gemm transB bias 1xN", (4, 6), (5, 6), (1, 5), transB=1)
gemm("gemm transA Mx1 alpha beta", (6, 4), (6, 5), (4, 1), transA=1, alpha=0.5, beta=2.0)
gemm("gemm both trans MxN", (6, 4), (5, 6), (4, 5), transA=1, transB=1)
gemm("gemm scalar C", (3, 6), (6, 2), (), beta=0.25)

# ------------------------------------------------------ normalizations
def layernorm(name, shape, axis=-1, bias=True, nout=1, opset=17, pshape=None, **attrs):
    x = rnd(*shape) + 3.0
    ax = axis if axis >= 0 else len(shape) + axis
    ps = pshape or shape[ax:]
    consts = [("s", rnd(*ps)), ("b", rnd(*ps))] if bias else [("s", rnd(*ps))]
    check(name, model("LayerNormalization", [("x", x)], consts, attrs=dict(axis=axis, **attrs), nout=nout, opset=opset), [("x", x)])


layernorm("layernorm last", (2, 50, 32), epsilon=1e-6)
layernorm("layernorm axis1", (2, 5, 4, 3), axis=1)
layernorm("layernorm nobias", (3, 20), bias=False)
layernorm("layernorm odd width", (7, 13))
layernorm("layernorm mean invstd", (4, 5, 6), nout=3)
layernorm("layernorm bcast scale", (4, 5, 6), axis=1, pshape=(1, 6))
layernorm("mtmi layernorm 160", (1, 1024, 160), epsilon=1e-6)


def batchnorm(name, shape, opset=15):
    c = shape[1]
    x = rnd(*shape)
    consts = [("s", rnd(c)), ("b", rnd(c)), ("m", rnd(c)), ("v", (rng.random(c) + 0.5).astype(np.float32))]
    check(name, model("BatchNormalization", [("x", x)], consts, attrs=dict(epsilon=1e-3), opset=opset), [("x", x)])


batchnorm("batchnorm 4d", (2, 5, 6, 7))
batchnorm("batchnorm 2d", (3, 4))
batchnorm("batchnorm 3d opset9", (2, 3, 5), opset=9)

# -------------------------------------------------------------- pooling
def pool(name, op, shape, nout=1, **attrs):
    x = rnd(*shape)
    check(name, model(op, [("x", x)], [], attrs=attrs, nout=nout), [("x", x)])


pool("maxpool 3x3 s2", "MaxPool", (1, 3, 11, 12), kernel_shape=[3, 3], strides=[2, 2])
pool("maxpool pads ceil", "MaxPool", (1, 2, 10, 9), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)
pool("maxpool dilation", "MaxPool", (1, 2, 10, 9), kernel_shape=[2, 2], dilations=[2, 2])
pool("maxpool same_upper", "MaxPool", (1, 2, 10, 9), kernel_shape=[3, 2], strides=[2, 2], auto_pad="SAME_UPPER")
pool("maxpool indices", "MaxPool", (2, 2, 6, 7), nout=2, kernel_shape=[2, 2], strides=[2, 2])
pool("maxpool 1d", "MaxPool", (1, 3, 15), kernel_shape=[4], strides=[3], pads=[1, 2])
pool("maxpool 3d", "MaxPool", (1, 2, 5, 6, 7), kernel_shape=[2, 3, 2], strides=[1, 2, 2])
for dt in (np.uint8, np.int8):
    x8 = rng.integers(-128 if dt == np.int8 else 0, 128 if dt == np.int8 else 256, (1, 3, 9, 10)).astype(dt)
    m8 = model("MaxPool", [("x", x8)], [], attrs=dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    m8.graph.output[0].type.tensor_type.elem_type = helper.np_dtype_to_tensor_dtype(np.dtype(dt))
    check(f"maxpool {np.dtype(dt).name}", m8, [("x", x8)])
pool("avgpool basic", "AveragePool", (1, 3, 11, 12), kernel_shape=[3, 3], strides=[2, 2])
pool("avgpool pads exclude", "AveragePool", (1, 3, 9, 8), kernel_shape=[3, 3], pads=[1, 1, 1, 1])
pool("avgpool pads include", "AveragePool", (1, 3, 9, 8), kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)
pool("avgpool ceil", "AveragePool", (1, 2, 10, 9), kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
pool("avgpool ceil include pads", "AveragePool", (1, 2, 10, 9), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
     ceil_mode=1, count_include_pad=1)
pool("avgpool same_lower", "AveragePool", (1, 2, 9, 9), kernel_shape=[2, 2], auto_pad="SAME_LOWER")
pool("globalavgpool", "GlobalAveragePool", (2, 5, 7, 6))
pool("globalmaxpool", "GlobalMaxPool", (2, 5, 7, 6))
pool("globalavgpool 3d", "GlobalAveragePool", (1, 3, 4, 5, 6))

# --------------------------------------------------------------- Resize
def resize(name, shape, opset=13, scales=None, sizes=None, roi=None, **attrs):
    x = rnd(*shape)
    if opset < 11:
        consts = [("scales", np.array(scales, np.float32))]
    else:
        consts = [("roi", np.array(roi, np.float32) if roi is not None else None),
                  ("scales", np.array(scales, np.float32) if scales is not None else None),
                  ("sizes", np.array(sizes, np.int64) if sizes is not None else None)]
        while consts and consts[-1][1] is None:
            consts.pop()
        if opset == 11:  # roi and scales are required inputs in opset 11
            consts = [(n, a if a is not None else np.array([], np.float32)) for n, a in consts]
    check(name, model("Resize", [("x", x)], consts, attrs=attrs, opset=opset), [("x", x)])


for ct in ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]:
    resize(f"resize linear x2 {ct}", (1, 3, 7, 9), scales=[1, 1, 2, 2], mode="linear", coordinate_transformation_mode=ct)
    resize(f"resize linear down {ct}", (1, 3, 15, 17), scales=[1, 1, 0.6, 0.45], mode="linear", coordinate_transformation_mode=ct)
    resize(f"resize linear sizes {ct}", (2, 2, 7, 9), sizes=[2, 2, 12, 5], mode="linear", coordinate_transformation_mode=ct)
for nm in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]:
    for ct in ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"]:
        resize(f"resize nearest up {nm} {ct}", (1, 2, 5, 6), scales=[1, 1, 2.5, 3], mode="nearest", nearest_mode=nm,
               coordinate_transformation_mode=ct)
        resize(f"resize nearest down {nm} {ct}", (1, 2, 11, 9), sizes=[1, 2, 4, 5], mode="nearest", nearest_mode=nm,
               coordinate_transformation_mode=ct)
resize("resize linear x4 half_pixel big", (1, 19, 64, 64), scales=[1, 1, 4, 4], mode="linear")
resize("resize mtmi to sizes", (1, 128, 8, 8), sizes=[1, 128, 32, 32], mode="linear")
resize("resize mtmi x2", (1, 96, 16, 16), scales=[1, 1, 2, 2], mode="linear")
resize("resize trilinear 5d", (1, 2, 4, 5, 6), scales=[1, 1, 2, 1.5, 0.5], mode="linear")
resize("resize linear 1d", (3, 10), scales=[1, 1.7], mode="linear")
resize("resize nearest all axes", (2, 3, 4, 5), scales=[2, 1, 0.5, 1.5], mode="nearest")
resize("resize cubic up", (1, 2, 6, 7), scales=[1, 1, 2, 1.5], mode="cubic")
resize("resize cubic down exclude", (1, 2, 12, 11), scales=[1, 1, 0.5, 0.7], mode="cubic", exclude_outside=1, cubic_coeff_a=-0.5)
resize("resize cubic align", (1, 2, 6, 7), sizes=[1, 2, 9, 4], mode="cubic", coordinate_transformation_mode="align_corners")
resize("resize tf_crop_and_resize linear", (1, 2, 8, 8), sizes=[1, 2, 5, 6], roi=[0, 0, 0.2, 0.1, 1, 1, 0.9, 1.2],
       mode="linear", coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=-3.0)
resize("resize tf_crop_and_resize nearest", (1, 2, 8, 8), sizes=[1, 2, 5, 6], roi=[0, 0, -0.2, 0.1, 1, 1, 0.9, 0.8],
       mode="nearest", coordinate_transformation_mode="tf_crop_and_resize")
resize("resize opset10 nearest", (1, 2, 4, 5), opset=10, scales=[1, 1, 2, 3], mode="nearest")
resize("resize opset10 linear", (1, 2, 4, 5), opset=10, scales=[1, 1, 2, 1.5], mode="linear")
resize("resize opset11 linear", (1, 2, 4, 5), opset=11, scales=[1, 1, 2, 2], mode="linear")
resize("resize opset18 axes", (1, 2, 6, 5), opset=18, scales=[2, 1.5], axes=[2, 3], mode="linear")
resize("resize opset18 not_larger", (1, 2, 6, 5), opset=18, sizes=[8, 8], axes=[2, 3], mode="linear",
       keep_aspect_ratio_policy="not_larger")
resize("resize opset18 not_smaller", (1, 2, 6, 5), opset=18, sizes=[8, 8], axes=[2, 3], mode="nearest",
       keep_aspect_ratio_policy="not_smaller")
resize("resize opset19 half_pixel_symmetric", (1, 2, 6, 5), opset=19, scales=[1, 1, 1.5, 2.5], mode="linear",
       coordinate_transformation_mode="half_pixel_symmetric")

x = rnd(1, 2, 3, 4)
check("upsample opset9 nearest", model("Upsample", [("x", x)], [("s", np.array([1, 1, 2, 3], np.float32))],
                                       attrs=dict(mode="nearest"), opset=9), [("x", x)])
check("upsample opset9 linear", model("Upsample", [("x", x)], [("s", np.array([1, 1, 2, 2], np.float32))],
                                      attrs=dict(mode="linear"), opset=9), [("x", x)])

# ------------------------------------------- fused kernels via the graph
# The fusion pass turns these into mtmi.FusedConv / mtmi.Linear, whose CPU
# kernels live with the convolutions and GEMMs.
def graph(name, nodes, x, inits):
    used = {i for nd in nodes for i in nd.input}
    inits = [(n, a) for n, a in inits if n in used]
    g = helper.make_graph(nodes, "f", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    check(name, m, [("x", x)])


def gelu_nodes(src, dst):
    return [helper.make_node("Div", [src, "sq2"], [src + "_d"]), helper.make_node("Erf", [src + "_d"], [src + "_e"]),
            helper.make_node("Add", [src + "_e", "one"], [src + "_f"]), helper.make_node("Mul", [src, src + "_f"], [src + "_g"]),
            helper.make_node("Mul", [src + "_g", "half"], [dst])]


GELU_C = [("sq2", np.array(1.4142135, np.float32)), ("one", np.array(1.0, np.float32)), ("half", np.array(0.5, np.float32))]
for act in ["Relu", "Sigmoid", "Gelu"]:
    for k, grp, cin, cout in [(1, 1, 16, 24), (3, 1, 12, 20), (3, 16, 16, 16), (3, 2, 8, 6)]:
        x = rnd(1, cin, 19, 21)
        w = rnd(cout, cin // grp, k, k, scale=1.0 / np.sqrt(cin // grp * k * k))
        conv_node = helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[k, k], pads=[k // 2] * 4, group=grp)
        tail = gelu_nodes("c", "y") if act == "Gelu" else [helper.make_node(act, ["c"], ["y"])]
        graph(f"fused conv{k}x{k} g{grp} +{act}", [conv_node] + tail, x, [("w", w), ("b", rnd(cout))] + GELU_C)
for act in ["", "Relu", "Gelu"]:
    x = rnd(2, 37, 24)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["a" if act else "y"])]
    if act == "Relu":
        nodes.append(helper.make_node("Relu", ["a"], ["y"]))
    elif act == "Gelu":
        nodes += gelu_nodes("a", "y")
    graph(f"fused linear +{act or 'none'}", nodes, x, [("w", rnd(24, 40, scale=0.2)), ("b", rnd(40))] + GELU_C)
x = rnd(300, 64)
graph("fused gemm linear", [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], x, [("w", rnd(48, 64, scale=0.1)), ("b", rnd(48))])
x = rnd(1, 4096, 32)
graph("fused linear mtmi fc1+gelu", [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["a"])]
      + gelu_nodes("a", "y"), x, [("w", rnd(32, 128, scale=0.2)), ("b", rnd(128))] + GELU_C)

x = rnd(1, 2, 3, 4)
for mode in ("nearest", "linear"):
    check(f"upsample opset7 {mode}", model("Upsample", [("x", x)], [], attrs=dict(mode=mode, scales=[1.0, 1.0, 2.0, 3.0]), opset=7),
          [("x", x)])

bad = [n for n, ok in results if not ok]
print(f"\n{len(results) - len(bad)}/{len(results)} cases passed")
for n in bad:
    print(f"FAILED: {n}")
sys.exit(1 if bad or not results else 0)
