"""Opset-dependent forms of the elementwise and shape operators against ONNX
Runtime: attributes that became inputs (Clip, Pad, Slice, Squeeze,
Unsqueeze, Split, ReduceSum, ReduceMean), Softmax's axis semantics before
and after opset 13, Split's num_outputs, and integer shape arithmetic
(Shape -> Gather -> Concat -> Reshape) as exporters write it.  The node tests
run every op at the newest opset only; these cover the older ones.  Then bad
models (overflowing Tile, runtime Reshape shapes, bad perms, axes, indices,
splits): a one-line error naming the op, a non-zero exit, no crash."""
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, TensorProto, numpy_helper

import mtmi_testutil as tu

rng = np.random.default_rng(tu.test_seed(3))
tmp = tempfile.mkdtemp(prefix="mtmi_opsets_")
failures = []
count = 0


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def check(name, opset, nodes, inputs, outputs, inits=(), feeds=()):
    """inputs: [(name, array)] fed at run time; outputs: [name]."""
    global count
    count += 1
    vis = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in inputs]
    outs = [helper.make_empty_tensor_value_info(n) for n in outputs]
    g = helper.make_graph(nodes, name, vis, outs, initializer=[numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8 if opset <= 18 else 9
    # output types from ONNX's own shape inference (ONNX Runtime wants them)
    inferred = onnx.shape_inference.infer_shapes(m)
    known = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for o in m.graph.output:
        if o.name in known and known[o.name].type.tensor_type.elem_type:
            o.type.tensor_type.elem_type = known[o.name].type.tensor_type.elem_type
    path = os.path.join(tmp, name + ".onnx")
    onnx.save(m, path)
    try:
        ref = tu.run_ort(path, {n: a for n, a in inputs})
        work = os.path.join(tmp, f"{name}_{opset}")
        os.makedirs(work, exist_ok=True)
        got = tu.run_mtmi(path, [a for _, a in inputs], workdir=work)
    except Exception as e:  # report and go on: one broken case must not hide the others
        print(f"FAIL {name} (opset {opset}): {str(e).strip().splitlines()[-1]}")
        failures.append(name)
        return
    ok = True
    for o in outputs:
        a, b = np.asarray(got[o]), np.asarray(ref[o])
        if a.shape != b.shape or a.dtype != b.dtype or not np.allclose(a, b, rtol=1e-5, atol=1e-6):
            ok = False
            print(f"FAIL {name} (opset {opset}) output {o}: got {a.dtype}{a.shape}, want {b.dtype}{b.shape}, "
                  f"max diff {np.max(np.abs(a.astype(np.float64) - b)) if a.shape == b.shape else 'n/a'}")
    if ok:
        print(f"ok   {name} (opset {opset})")
    else:
        failures.append(name)


x4 = f32(2, 3, 4, 5)
i64 = lambda *v: np.array(v, dtype=np.int64)

check("clip_attrs", 6, [helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.7)], [("x", x4)], ["y"])
check("clip_inputs", 13, [helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], [("x", x4)], ["y"],
      inits=[("lo", np.array(-0.3, np.float32)), ("hi", np.array(0.4, np.float32))])
check("clip_min_only", 13, [helper.make_node("Clip", ["x", "lo"], ["y"])], [("x", x4)], ["y"],
      inits=[("lo", np.array(0.1, np.float32))])
check("pad_attrs", 2, [helper.make_node("Pad", ["x"], ["y"], pads=[0, 1, 2, 0, 1, 0, 1, 3], value=1.5)],
      [("x", x4)], ["y"])
for mode in ("constant", "reflect", "edge"):
    check(f"pad_{mode}", 13, [helper.make_node("Pad", ["x", "p", "v"], ["y"], mode=mode)], [("x", x4)], ["y"],
          inits=[("p", i64(0, 0, 2, 1, 0, 1, 3, 2)), ("v", np.array(-2.0, np.float32))])
check("pad_axes", 18, [helper.make_node("Pad", ["x", "p", "", "a"], ["y"], mode="reflect")], [("x", x4)], ["y"],
      inits=[("p", i64(1, 2, 2, 1)), ("a", i64(-1, 2))])
check("slice_attrs", 9, [helper.make_node("Slice", ["x"], ["y"], starts=[1, -4], ends=[3, 1000], axes=[1, 3])],
      [("x", x4)], ["y"])
check("slice_neg_steps", 13, [helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])], [("x", x4)], ["y"],
      inits=[("s", i64(-1, 3)), ("e", i64(-1000, 0)), ("a", i64(3, 2)), ("st", i64(-2, -1))])
check("squeeze_attr", 11, [helper.make_node("Squeeze", ["x"], ["y"], axes=[0, -2])], [("x", f32(1, 3, 1, 5))], ["y"])
check("squeeze_input", 13, [helper.make_node("Squeeze", ["x", "a"], ["y"])], [("x", f32(1, 3, 1, 5))], ["y"],
      inits=[("a", i64(2))])
check("squeeze_all", 13, [helper.make_node("Squeeze", ["x"], ["y"])], [("x", f32(1, 3, 1, 5))], ["y"])
check("unsqueeze_attr", 11, [helper.make_node("Unsqueeze", ["x"], ["y"], axes=[0, -1])], [("x", f32(3, 5))], ["y"])
check("unsqueeze_input", 13, [helper.make_node("Unsqueeze", ["x", "a"], ["y"])], [("x", f32(3, 5))], ["y"],
      inits=[("a", i64(1, 3))])
check("split_attr", 11, [helper.make_node("Split", ["x"], ["a", "b"], axis=3, split=[2, 3])], [("x", x4)], ["a", "b"])
check("split_input", 13, [helper.make_node("Split", ["x", "s"], ["a", "b", "c"], axis=-1)], [("x", x4)],
      ["a", "b", "c"], inits=[("s", i64(1, 1, 3))])
check("split_even", 13, [helper.make_node("Split", ["x"], ["a", "b"], axis=2)], [("x", x4)], ["a", "b"])
check("split_num_outputs", 18, [helper.make_node("Split", ["x"], ["a", "b"], axis=3, num_outputs=2)], [("x", x4)],
      ["a", "b"])
check("reducemean_attr", 13, [helper.make_node("ReduceMean", ["x"], ["y"], axes=[1, -1], keepdims=0)], [("x", x4)], ["y"])
check("reducemean_input", 18, [helper.make_node("ReduceMean", ["x", "a"], ["y"])], [("x", x4)], ["y"],
      inits=[("a", i64(-1))])
check("reducesum_attr", 11, [helper.make_node("ReduceSum", ["x"], ["y"], axes=[0, 2])], [("x", x4)], ["y"])
check("reducesum_input", 13, [helper.make_node("ReduceSum", ["x", "a"], ["y"], keepdims=0)], [("x", x4)], ["y"],
      inits=[("a", i64(1, 2))])
check("reducesum_all", 13, [helper.make_node("ReduceSum", ["x"], ["y"])], [("x", x4)], ["y"])
check("reducemax_min", 13, [helper.make_node("ReduceMax", ["x"], ["a"], axes=[2]),
                            helper.make_node("ReduceMin", ["x"], ["b"], axes=[0, 3], keepdims=0)], [("x", x4)], ["a", "b"])
for opset in (11, 13):
    for axis in (1, -1, 2):
        check(f"softmax_axis{axis}", opset, [helper.make_node("Softmax", ["x"], ["y"], axis=axis)], [("x", x4)], ["y"])
        check(f"logsoftmax_axis{axis}", opset, [helper.make_node("LogSoftmax", ["x"], ["y"], axis=axis)], [("x", x4)], ["y"])
check("softmax_default", 11, [helper.make_node("Softmax", ["x"], ["y"])], [("x", x4)], ["y"])
check("softmax_default", 13, [helper.make_node("Softmax", ["x"], ["y"])], [("x", x4)], ["y"])
check("argmax_last", 13, [helper.make_node("ArgMax", ["x"], ["y"], axis=1, keepdims=0, select_last_index=1)],
      [("x", np.round(x4))], ["y"])
check("argmin", 13, [helper.make_node("ArgMin", ["x"], ["y"], axis=-1)], [("x", x4)], ["y"])
check("argmin_wide_last", 13, [helper.make_node("ArgMin", ["x"], ["y"], axis=1, select_last_index=1)],
      [("x", np.round(f32(2, 4, 7, 13)))], ["y"])
check("gather_neg", 13, [helper.make_node("Gather", ["x", "i"], ["y"], axis=2)], [("x", x4)], ["y"],
      inits=[("i", np.array([[-1, 0], [2, -3]], np.int64))])
check("gather_runtime_idx", 13, [helper.make_node("Gather", ["x", "i"], ["y"], axis=0)],
      [("x", x4), ("i", np.array([1, 0, -1], np.int64))], ["y"])
check("reshape_allowzero0", 14, [helper.make_node("Reshape", ["x", "s"], ["y"])], [("x", x4)], ["y"],
      inits=[("s", i64(0, -1, 5))])
check("flatten_axis", 13, [helper.make_node("Flatten", ["x"], ["y"], axis=-2)], [("x", x4)], ["y"])
check("expand_tile", 13, [helper.make_node("Expand", ["x", "s"], ["e"]), helper.make_node("Tile", ["e", "r"], ["y"])],
      [("x", f32(3, 1, 5))], ["y"], inits=[("s", i64(2, 1, 4, 1)), ("r", i64(1, 2, 1, 3))])
check("transpose_default", 13, [helper.make_node("Transpose", ["x"], ["y"])], [("x", x4)], ["y"])
check("where_bcast", 13, [helper.make_node("Greater", ["x", "z"], ["c"]), helper.make_node("Where", ["c", "x", "w"], ["y"])],
      [("x", x4), ("w", f32(4, 1))], ["y"], inits=[("z", np.array(0.0, np.float32))])
check("max_min_3way", 13, [helper.make_node("Max", ["a", "b", "c"], ["y"]), helper.make_node("Min", ["a", "b"], ["z"])],
      [("a", f32(3, 1, 5)), ("b", f32(4, 1)), ("c", f32(5))], ["y", "z"])
check("pow_int_exponent", 15, [helper.make_node("Pow", ["x", "e"], ["y"])], [("x", x4)], ["y"],
      inits=[("e", np.array(3, np.int64))])
# Exporter-style shape arithmetic on a runtime tensor, folded at planning.
check("shape_arith", 15, [
    helper.make_node("Shape", ["x"], ["s"]),
    helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
    helper.make_node("Shape", ["x"], ["s2"], start=2),
    helper.make_node("ReduceProd", ["s2"], ["hw"], keepdims=1),
    helper.make_node("Unsqueeze", ["n", "a0"], ["n1"]),
    helper.make_node("Concat", ["n1", "m1", "hw"], ["shape"], axis=0),
    helper.make_node("Reshape", ["x", "shape"], ["r"]),
    helper.make_node("Cast", ["hw"], ["hwf"], to=TensorProto.FLOAT),
    helper.make_node("Div", ["r", "hwf"], ["y"]),
    helper.make_node("Range", ["z0", "n", "one"], ["rg"]),
    helper.make_node("Shape", ["r"], ["rs"]),
    helper.make_node("ConstantOfShape", ["rs"], ["c"], value=numpy_helper.from_array(np.array([2.5], np.float32))),
    helper.make_node("Add", ["y", "c"], ["out"]),
], [("x", x4)], ["out", "rg"], inits=[("i0", np.array(0, np.int64)), ("a0", i64(0)), ("m1", i64(-1)),
                                      ("z0", np.array(0, np.int64)), ("one", np.array(1, np.int64))])



def expect_error(name, opset, nodes, inputs, outputs, inits, words):
    """Bad models: a one-line error naming the node's op, a non-zero exit."""
    global count
    count += 1
    import subprocess
    vis = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in inputs]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs]
    g = helper.make_graph(nodes, name, vis, outs, initializer=[numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    path = os.path.join(tmp, name + ".onnx")
    onnx.save(m, path)
    args = [tu.MTMI_BIN, "infer", path, "-o", os.path.join(tmp, name + "_out")]
    for i, (_, a) in enumerate(inputs):
        f = os.path.join(tmp, f"{name}_in{i}.npy")
        np.save(f, a)
        args += ["--input", f]
    r = subprocess.run(args, capture_output=True)
    err = r.stderr.decode("utf-8", "replace").strip()
    ok = r.returncode > 0 and len(err.splitlines()) == 1 and all(w in err for w in words)
    print(f"{'ok  ' if ok else 'FAIL'} error {name}: exit {r.returncode}: {err}")
    if not ok:
        failures.append(name)


expect_error("huge_tile", 13, [helper.make_node("Tile", ["x", "r"], ["y"])], [("x", f32(2, 3))], ["y"],
             [("r", i64(1 << 40, 1 << 40))], ["Tile", "elements"])
expect_error("reshape_runtime_shape", 13, [helper.make_node("Reshape", ["x", "s"], ["y"])],
             [("x", f32(2, 3)), ("s", i64(3, 2))], ["y"], [], ["Reshape", "constant"])
expect_error("reshape_mismatch", 13, [helper.make_node("Reshape", ["x", "s"], ["y"])], [("x", f32(2, 3))], ["y"],
             [("s", i64(4, 2))], ["Reshape", "2x3"])
expect_error("bad_perm", 13, [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 0])], [("x", f32(2, 3))], ["y"], [],
             ["Transpose", "perm"])
expect_error("bad_axis", 13, [helper.make_node("Softmax", ["x"], ["y"], axis=5)], [("x", f32(2, 3))], ["y"], [],
             ["Softmax", "axis"])
expect_error("no_broadcast", 13, [helper.make_node("Add", ["x", "z"], ["y"])], [("x", f32(2, 3)), ("z", f32(4))], ["y"], [],
             ["Add", "broadcast"])
expect_error("gather_oob", 13, [helper.make_node("Gather", ["x", "i"], ["y"])], [("x", f32(2, 3))], ["y"],
             [("i", i64(5))], ["Gather", "out of range"])
expect_error("gather_oob_runtime", 13, [helper.make_node("Gather", ["x", "i"], ["y"])], [("x", f32(2, 3)), ("i", i64(-3))],
             ["y"], [], ["Gather", "out of range"])
expect_error("squeeze_non1", 13, [helper.make_node("Squeeze", ["x", "a"], ["y"])], [("x", f32(2, 3))], ["y"],
             [("a", i64(0))], ["Squeeze", "size"])
expect_error("slice_step0", 13, [helper.make_node("Slice", ["x", "s", "e", "a", "p"], ["y"])], [("x", f32(2, 3))], ["y"],
             [("s", i64(0)), ("e", i64(2)), ("a", i64(0)), ("p", i64(0))], ["Slice", "step"])
expect_error("split_sum", 13, [helper.make_node("Split", ["x", "s"], ["y", "z"], axis=1)], [("x", f32(2, 3))], ["y", "z"],
             [("s", i64(1, 1))], ["Split", "sum"])
print(f"{count - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
