"""Small onnx.helper-built graphs, one per fusion pattern (and a few that
must not fuse): mtmi's output against ONNX Runtime, and the op histogram of
the optimized graph (`mtmi info`) showing that the fusion did (not) happen.

Usage: test_fusion_patterns.py [case ...]  (default: all)."""
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mtmi_testutil import compare, optimized_ops, run_mtmi, run_ort, test_seed

# Per element |mtmi - ORT| <= ATOL + RTOL |ORT|.  Measured: the worst
# element of all cases (conv_bn, BatchNorm folded into the weights) is off
# by 1.07 x (1e-6 + 1e-6 |ref|), 3.8e-6 absolute; the tolerance is ~4x.
ATOL, RTOL = 4e-6, 4e-6
rng = np.random.default_rng(test_seed(1234))


def const(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def f32(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def model(nodes, inputs, outputs, inits, opset=17):
    used = {i for n in nodes for i in n.input}
    inits = [t for t in inits if t.name in used]
    g = helper.make_graph(nodes, "pattern", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    # outputs are left without shapes, which the checker rejects; ORT loads it
    return m


# ---------------------------------------------------------------- cases
def gelu_case(form, x_shape=(2, 37, 53)):
    x = "x"
    inits = [const("sqrt2", np.float32(1.4142135)), const("rsqrt2", np.float32(0.70710678)),
             const("one", np.float32(1.0)), const("half", np.float32(0.5))]
    if form == "torchscript":  # (x * (1 + erf(x / sqrt2))) * 0.5
        nodes = [helper.make_node("Div", [x, "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
                 helper.make_node("Add", ["e", "one"], ["a"]), helper.make_node("Mul", [x, "a"], ["m"]),
                 helper.make_node("Mul", ["m", "half"], ["y"])]
    elif form == "dynamo":  # x * (0.5 * (1 + erf(x / sqrt2)))
        nodes = [helper.make_node("Div", [x, "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
                 helper.make_node("Add", ["e", "one"], ["a"]), helper.make_node("Mul", ["half", "a"], ["m"]),
                 helper.make_node("Mul", [x, "m"], ["y"])]
    else:  # (x * 0.5) * (1 + erf(x * 1/sqrt2))
        nodes = [helper.make_node("Mul", ["rsqrt2", x], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
                 helper.make_node("Add", ["one", "e"], ["a"]), helper.make_node("Mul", [x, "half"], ["h"]),
                 helper.make_node("Mul", ["a", "h"], ["y"])]
    return model(nodes, [("x", x_shape)], ["y"], inits), [f32(*x_shape, scale=2.0)]


def gelu_shared_erf():
    """Erf's output is also a graph output: must not fuse."""
    m, xs = gelu_case("torchscript")
    m.graph.output.append(helper.make_tensor_value_info("e", TensorProto.FLOAT, None))
    return m, xs


def attention_case(B, H, N, M, d, dv, op="Mul", scale=0.25):
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["q", "kt"], ["s"]),
             helper.make_node(op, ["s", "c"], ["ss"]),
             helper.make_node("Softmax", ["ss"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["y"])]
    c = scale if op == "Mul" else 1.0 / scale
    m = model(nodes, [("q", (B, H, N, d)), ("k", (B, H, M, d)), ("v", (B, H, M, dv))], ["y"],
              [const("c", np.float32(c))])
    return m, [f32(B, H, N, d), f32(B, H, M, d), f32(B, H, M, dv)]


def attention_wrong_perm():
    """K transposed over other axes: not an attention, must not fuse."""
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 3, 1]),
             helper.make_node("MatMul", ["q", "kt"], ["s"]),
             helper.make_node("Softmax", ["s"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["y"])]
    m = model(nodes, [("q", (1, 4, 10, 4)), ("k", (1, 4, 4, 4)), ("v", (1, 4, 4, 6))], ["y"], [])
    return m, [f32(1, 4, 10, 4), f32(1, 4, 4, 4), f32(1, 4, 4, 6)]


def attention_probs_output():
    """The softmax probabilities are also a graph output: must not fuse."""
    m, xs = attention_case(1, 2, 20, 12, 8, 8)
    m.graph.output.append(helper.make_tensor_value_info("p", TensorProto.FLOAT, None))
    return m, xs


def layernorm_mean_used():
    """The mean feeds another node too: must not fuse."""
    m, xs = layernorm_case("Pow", 2)
    m.graph.node.append(helper.make_node("Neg", ["mean"], ["negmean"]))
    m.graph.output.append(helper.make_tensor_value_info("negmean", TensorProto.FLOAT, None))
    return m, xs


def conv_output_shared():
    """The Conv output feeds the BatchNorm and a graph output: no folding."""
    m, xs = conv_bn_case("Relu")
    m.graph.output.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, None))
    return m, xs


def resize_same_size(mode):
    """Resize to the input's own size is the identity: an alias."""
    inits = [const("sizes", np.array([1, 5, 12, 9], np.int64))]
    nodes = [helper.make_node("Resize", ["x", "", "", "sizes"], ["r"], mode=mode,
                              coordinate_transformation_mode="half_pixel"),
             helper.make_node("Relu", ["r"], ["y"])]
    return model(nodes, [("x", (1, 5, 12, 9))], ["y"], inits), [f32(1, 5, 12, 9)]


def seg_fuse_case(act="Relu", use_scales=False):
    """Conv1x1(Concat(Resize(x0), Resize(x1), x2)) [+ act], the seg head's fuse
    conv: split into per-input convs, resized after the conv, summed."""
    H = W = 16
    inits = [const("w", f32(6, 8 + 8 + 4, 1, 1, scale=0.3)), const("b", f32(6)),
             const("sa", np.array([1, 8, H, W], np.int64)), const("scb", np.array([1, 1, 4, 4], np.float32))]
    nodes = [helper.make_node("Resize", ["x0", "", "", "sa"], ["ra"], mode="linear"),
             helper.make_node("Resize", ["x1", "", "scb"], ["rb"], mode="linear") if use_scales else
             helper.make_node("Resize", ["x1", "", "", "sa2"], ["rb"], mode="linear"),
             helper.make_node("Concat", ["ra", "rb", "x2"], ["cat"], axis=1),
             helper.make_node("Conv", ["cat", "w", "b"], ["cv"], kernel_shape=[1, 1])]
    inits.append(const("sa2", np.array([1, 8, H, W], np.int64)))
    out = "cv"
    if act:
        nodes.append(helper.make_node(act, ["cv"], ["y"]))
        out = "y"
    m = model(nodes, [("x0", (1, 8, 8, 8)), ("x1", (1, 8, 4, 4)), ("x2", (1, 4, H, W))], [out], inits)
    return m, [f32(1, 8, 8, 8), f32(1, 8, 4, 4), f32(1, 4, H, W)]


def layernorm_case(square="Pow", affine=2, shape=(2, 50, 40), opset=13, eps=1e-6):
    C = shape[-1]
    inits = [const("two", np.float32(2.0)), const("eps", np.float32(eps)),
             const("gamma", f32(C)), const("beta", f32(C))]
    if opset >= 18:
        inits.append(const("axes", np.array([-1], np.int64)))
        rm = lambda i, o: helper.make_node("ReduceMean", [i, "axes"], [o])
    else:
        rm = lambda i, o: helper.make_node("ReduceMean", [i], [o], axes=[-1])
    nodes = [rm("x", "mean"), helper.make_node("Sub", ["x", "mean"], ["d"]),
             helper.make_node("Pow", ["d", "two"], ["p"]) if square == "Pow" else helper.make_node("Mul", ["d", "d"], ["p"]),
             rm("p", "var"), helper.make_node("Add", ["var", "eps"], ["ve"]),
             helper.make_node("Sqrt", ["ve"], ["s"]), helper.make_node("Div", ["d", "s"], ["n"])]
    out = "n"
    if affine >= 1:
        nodes.append(helper.make_node("Mul", ["n", "gamma"], ["g"]))
        out = "g"
    if affine >= 2:
        nodes.append(helper.make_node("Add", ["beta", "g"], ["y"]))
        out = "y"
    x = f32(*shape, scale=3.0) + 1.5
    return model(nodes, [("x", shape)], [out], inits, opset=opset), [x]


def conv_bn_case(act):
    cin, cout = 6, 10
    inits = [const("w", f32(cout, cin, 3, 3, scale=0.3)), const("b", f32(cout)),
             const("s", f32(cout) * 0.2 + 1.0), const("sh", f32(cout)), const("mu", f32(cout)),
             const("var", np.abs(f32(cout)) + 0.5)]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("BatchNormalization", ["c", "s", "sh", "mu", "var"], ["n"], epsilon=1e-5)]
    out = "n"
    if act:
        nodes.append(helper.make_node(act, ["n"], ["y"]))
        out = "y"
    return model(nodes, [("x", (2, cin, 17, 19))], [out], inits), [f32(2, cin, 17, 19)]


def linear_case(act, bias_first=False):
    inits = [const("w", f32(32, 48, scale=0.2)), const("b", f32(48))]
    add = ["b", "mm"] if bias_first else ["mm", "b"]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"]), helper.make_node("Add", add, ["a"])]
    out = "a"
    if act:
        nodes.append(helper.make_node(act, ["a"], ["y"]))
        out = "y"
    return model(nodes, [("x", (2, 10, 32))], [out], inits), [f32(2, 10, 32)]


def gemm_case():
    inits = [const("w", f32(24, 32, scale=0.2)), const("c", f32(24))]
    nodes = [helper.make_node("Gemm", ["x", "w", "c"], ["y"], transB=1, alpha=0.5, beta=2.0)]
    return model(nodes, [("x", (7, 32))], ["y"], inits), [f32(7, 32)]


# name: (builder, ops that must be in the optimized graph (count or None =
# any), ops that must be absent)
CASES = {
    "gelu_torchscript": (lambda: gelu_case("torchscript"), {"Gelu": 1}, ["Erf", "Div", "Mul"]),
    "gelu_dynamo": (lambda: gelu_case("dynamo"), {"Gelu": 1}, ["Erf", "Div", "Mul"]),
    "gelu_mul_form": (lambda: gelu_case("mul"), {"Gelu": 1}, ["Erf", "Mul"]),
    "gelu_erf_is_output": (gelu_shared_erf, {"Erf": 1}, ["Gelu"]),
    "attention_mul": (lambda: attention_case(2, 3, 100, 70, 16, 24), {"Attention": 1}, ["Softmax", "MatMul", "Transpose"]),
    "attention_div_blocks": (lambda: attention_case(1, 2, 130, 600, 20, 12, op="Div", scale=0.3),
                             {"Attention": 1}, ["Softmax", "Div"]),
    "attention_segformer": (lambda: attention_case(1, 1, 1024, 64, 32, 32, scale=32 ** -0.5), {"Attention": 1}, ["Softmax"]),
    "attention_wrong_perm": (attention_wrong_perm, {"Softmax": 1}, ["Attention"]),
    "attention_probs_output": (attention_probs_output, {"Softmax": 1}, ["Attention"]),
    "layernorm_mean_used": (layernorm_mean_used, {"ReduceMean": 2}, ["LayerNormalization"]),
    "conv_output_shared": (conv_output_shared, {"BatchNormalization": 1}, []),
    "resize_same_size_linear": (lambda: resize_same_size("linear"), {}, ["Resize"]),
    "resize_same_size_cubic": (lambda: resize_same_size("cubic"), {}, ["Resize"]),
    "seg_fuse_conv_relu": (lambda: seg_fuse_case("Relu"), {"Conv": 3, "Relu": 1, "Add": 2}, ["Concat"]),
    "seg_fuse_conv_scales": (lambda: seg_fuse_case(None, use_scales=True), {"Conv": 3, "Add": 2}, ["Concat"]),
    "layernorm_op13_pow": (lambda: layernorm_case("Pow", 2), {"LayerNormalization": 1}, ["ReduceMean", "Sqrt", "Pow"]),
    "layernorm_op13_mul": (lambda: layernorm_case("Mul", 2), {"LayerNormalization": 1}, ["ReduceMean", "Sqrt"]),
    "layernorm_no_affine": (lambda: layernorm_case("Pow", 0, eps=1e-5), {"LayerNormalization": 1}, ["ReduceMean", "Div"]),
    "layernorm_gamma_only": (lambda: layernorm_case("Pow", 1), {"LayerNormalization": 1}, ["ReduceMean", "Mul"]),
    "layernorm_op18_axes_input": (lambda: layernorm_case("Pow", 2, opset=18), {"LayerNormalization": 1}, ["ReduceMean"]),
    "conv_bn_relu": (lambda: conv_bn_case("Relu"), {"FusedConv": 1}, ["BatchNormalization", "Relu", "Conv"]),
    "conv_bn_sigmoid": (lambda: conv_bn_case("Sigmoid"), {"FusedConv": 1}, ["BatchNormalization", "Sigmoid"]),
    "conv_bn": (lambda: conv_bn_case(None), {}, ["BatchNormalization"]),
    "linear_relu": (lambda: linear_case("Relu"), {"Linear": 1}, ["MatMul", "Add", "Relu"]),
    "linear_bias_first": (lambda: linear_case(None, bias_first=True), {"Linear": 1}, ["MatMul", "Add"]),
    "gemm": (gemm_case, {"Linear": 1}, ["Gemm"]),
}

def run_case(name, tmp):
    # the seg-head conv split is opt-in (MTMI_FUSE_CONCAT=1)
    if name.startswith("seg_fuse"):
        os.environ["MTMI_FUSE_CONCAT"] = "1"
    else:
        os.environ.pop("MTMI_FUSE_CONCAT", None)
    build, must, absent = CASES[name]
    m, xs = build()
    path = os.path.join(tmp, name + ".onnx")
    onnx.save(m, path)
    feeds = {i.name: x for i, x in zip(m.graph.input, xs)}
    ref = run_ort(path, feeds)
    os.makedirs(os.path.join(tmp, name), exist_ok=True)
    try:
        got = run_mtmi(path, xs, workdir=os.path.join(tmp, name))
        ops = optimized_ops(path)
    except RuntimeError as e:  # a missing kernel too: every case here must run
        print(f"{name}: FAIL {e}")
        return False
    ok = True
    for k, v in ref.items():
        ok &= compare(f"{name}/{k}", got[k], v, RTOL, ATOL)
    for op, cnt in must.items():
        if ops.get(op, 0) != cnt:
            print(f"  {name}: expected {op}={cnt} in the optimized graph, got {ops}")
            ok = False
    for op in absent:
        if op in ops:
            print(f"  {name}: {op} should have been fused away, got {ops}")
            ok = False
    print(f"{name}: {'ok' if ok else 'FAIL'}  optimized ops {ops}")
    return ok


def main():
    names = sys.argv[1:] or list(CASES)
    tmp = tempfile.mkdtemp(prefix="mtmi_fuse_")
    results = {n: run_case(n, tmp) for n in names}
    failed = [n for n, r in results.items() if not r]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        print("failed:", " ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
