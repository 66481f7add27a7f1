"""mtmi simplify against ONNX Runtime: the simplified model has fewer nodes
and the same outputs (per element, TOL) on both reference exports at
1024x1024 (discriminative references: many classes, depth spread),
on an opset-13 variant (LayerNormalization fused, opset raised to 17) and on
the built-in model; --keep-fused writes "mtmi"-domain ops that mtmi runs."""
import collections
import os
import sys

import numpy as np
import onnx

from preputil import check, finish, mtmi_ok, tmpdir
from mtmi_testutil import (REFERENCE, compare, fill_external_weights, need_shared, nondegenerate, run_mtmi, run_ort,
                           save_model, test_seed)
from make_variants import make_variant

need_shared("test_simplify.py")
SEED = test_seed(0)
tmp = tmpdir()
# Per element (atol, rtol), ORT on the simplified model against ORT on the
# original (and mtmi on a --keep-fused model against ORT).  Measured: seg
# logits max abs 3.8e-6 (opset 13), 4.8e-6 (keep-fused, mtmi), depth
# 9e-7; the tolerances are ~4x those.
TOL = {"seg": (2e-5, 0.0), "depth": (4e-6, 0.0)}


def nodes(path):
    return len(onnx.load(path, load_external_data=False).graph.node)


def same_outputs(a, b, shape, tag):
    m = onnx.load(a, load_external_data=False)
    x = np.random.default_rng(SEED + 7).standard_normal(shape).astype(np.float32)
    ra, rb = run_ort(a, {m.graph.input[0].name: x}, threads=2), run_ort(b, {m.graph.input[0].name: x}, threads=2)
    ok = set(ra) == set(rb) and nondegenerate(tag, ra["seg"], ra["depth"])
    for k in ra:
        ok &= compare(f"{tag}/{k}", rb[k], ra[k], TOL[k][1], TOL[k][0])
    return ok


def simplify(src, dst, *extra):
    out = mtmi_ok("simplify", src, dst, *extra)
    print("   " + out.strip().splitlines()[-2])
    return out


for tag, f in (("torchscript", "mtmi_torchscript_opset17.graph.onnx"), ("dynamo", "mtmi_dynamo_opset17.graph.onnx")):
    src = os.path.join(tmp, tag + ".onnx")
    m = onnx.load(os.path.join(REFERENCE, f), load_external_data=False)
    save_model(fill_external_weights(m, SEED), src)
    dst = os.path.join(tmp, tag + "_simp.onnx")
    simplify(src, dst)
    onnx.checker.check_model(onnx.load(dst), full_check=True)
    n0, n1 = nodes(src), nodes(dst)
    check(n1 < n0, f"{tag}: {n0} -> {n1} nodes")
    check(same_outputs(src, dst, (1, 3, 1024, 1024), tag), f"{tag} 1024x1024: ORT outputs equal within 1e-5")

# opset 13 (LayerNormalization decomposed): fused and written at opset 17
src = os.path.join(tmp, "ts_op13.onnx")
make_variant(os.path.join(REFERENCE, "mtmi_torchscript_opset17.graph.onnx"), src, (64, 96), 2, True, fill_seed=SEED)
dst = os.path.join(tmp, "ts_op13_simp.onnx")
simplify(src, dst)
sm = onnx.load(dst, load_external_data=False)
ops = collections.Counter(n.op_type for n in sm.graph.node)
check(sm.opset_import[0].version == 17 and ops["LayerNormalization"] == 30 and "ReduceMean" not in ops,
      f"opset 13 in, opset {sm.opset_import[0].version} with {ops['LayerNormalization']} LayerNormalization out")
check(nodes(dst) < nodes(src), f"opset 13, 64x96 batch 2: {nodes(src)} -> {nodes(dst)} nodes")
check(same_outputs(src, dst, (2, 3, 64, 96), "op13"), "opset 13 variant: ORT outputs equal per element")

# the built-in model; --shape picks the size of a dynamic... (fixed here)
src = os.path.join(tmp, "mm.onnx")
mtmi_ok("make-model", "-o", src, "--size", "64x64", "--seed", str(SEED + 2))
dst = os.path.join(tmp, "mm_simp.onnx")
simplify(src, dst, "--external-data", "4096")
check(os.path.exists(dst + ".data"), "--external-data writes OUT.data")
check(nodes(dst) < nodes(src), f"built-in model: {nodes(src)} -> {nodes(dst)} nodes")
check(same_outputs(src, dst, (1, 3, 64, 64), "builtin"), "built-in model: ORT outputs equal per element")

keep = os.path.join(tmp, "mm_keep.onnx")
simplify(src, keep, "--keep-fused")
km = onnx.load(keep, load_external_data=False)
doms = {o.domain for o in km.opset_import}
check("mtmi" in doms and any(n.domain == "mtmi" for n in km.graph.node), "--keep-fused: mtmi-domain ops and opset import")
x = np.random.default_rng(SEED + 3).standard_normal((1, 3, 64, 64)).astype(np.float32)
ref = run_ort(src, {"input": x})
check(nondegenerate("keep-fused", ref["seg"], ref["depth"]), "--keep-fused: discriminative reference")
try:
    os.makedirs(os.path.join(tmp, "run_keep"), exist_ok=True)
    got = run_mtmi(keep, [x], workdir=os.path.join(tmp, "run_keep"))
    check(all(compare(f"keep-fused/{k}", got[k], ref[k], TOL[k][1], TOL[k][0]) for k in ref), "--keep-fused model runs in mtmi like the original in ORT")
except RuntimeError as e:
    check(False, f"mtmi infer on the --keep-fused model: {e}")

# a given shape specializes a model to it
dst = os.path.join(tmp, "mm_shape.onnx")
mtmi_ok("simplify", src, dst, "--shape", "1x3x64x64")
check(nodes(dst) < nodes(src), "--shape 1x3x64x64 accepted")
# LayerNormalization written out as primitives (opset 11 with Flatten, whose
# meaning changed at 13, so the opset cannot be raised), or raised to 17.
from onnx import helper as oh, numpy_helper as nh, TensorProto as TP  # noqa: E402
for opset, flatten in ((11, True), (13, False)):
    rng = np.random.default_rng(SEED + opset)
    inits = [nh.from_array(rng.standard_normal(8).astype(np.float32), "w"), nh.from_array(rng.standard_normal(8).astype(np.float32), "b"),
             nh.from_array(np.array(2, np.float32), "two"), nh.from_array(np.array(1e-5, np.float32), "eps")]
    ns = [oh.make_node("ReduceMean", ["x"], ["m"], axes=[-1]), oh.make_node("Sub", ["x", "m"], ["d"]),
          oh.make_node("Pow", ["d", "two"], ["p"]), oh.make_node("ReduceMean", ["p"], ["v"], axes=[-1]),
          oh.make_node("Add", ["v", "eps"], ["ve"]), oh.make_node("Sqrt", ["ve"], ["s"]), oh.make_node("Div", ["d", "s"], ["n"]),
          oh.make_node("Mul", ["n", "w"], ["nw"]), oh.make_node("Add", ["nw", "b"], ["y0" if flatten else "y"])]
    out_shape = [2, 4, 8]
    if flatten:
        ns.append(oh.make_node("Flatten", ["y0"], ["y"], axis=1))
        out_shape = [2, 32]
    g = oh.make_graph(ns, "ln", [oh.make_tensor_value_info("x", TP.FLOAT, [2, 4, 8])], [oh.make_tensor_value_info("y", TP.FLOAT, out_shape)], inits)
    lm = oh.make_model(g, opset_imports=[oh.make_opsetid("", opset)])
    lm.ir_version = 6 if opset == 11 else 7
    src, dst = os.path.join(tmp, f"ln{opset}.onnx"), os.path.join(tmp, f"ln{opset}_simp.onnx")
    onnx.save(lm, src)
    mtmi_ok("simplify", src, dst)
    sm = onnx.load(dst)
    onnx.checker.check_model(sm, full_check=True)
    ops = [n.op_type for n in sm.graph.node]
    want = (11, False) if flatten else (17, True)
    check((sm.opset_import[0].version, "LayerNormalization" in ops) == want,
          f"LayerNorm at opset {opset}: written at opset {sm.opset_import[0].version} as {ops}")
    x = np.random.default_rng(SEED + 1).standard_normal((2, 4, 8)).astype(np.float32)
    # measured max abs 2.4e-7 on values up to ~3
    check(compare(f"ln{opset}", run_ort(dst, {"x": x})["y"], run_ort(src, {"x": x})["y"], 1e-6, 1e-6), f"LayerNorm at opset {opset}: ORT outputs equal")
finish()
