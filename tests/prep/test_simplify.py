"""mtmi simplify against ONNX Runtime: the simplified model has fewer nodes
and the same outputs (1e-5 relative) on both reference exports at 1024x1024,
on an opset-13 variant (LayerNormalization fused, opset raised to 17) and on
the built-in model; --keep-fused writes "mtmi"-domain ops that mtmi runs."""
import collections
import os
import sys

import numpy as np
import onnx

from preputil import check, finish, mtmi_ok, tmpdir
from mtmi_testutil import REFERENCE, compare, fill_external_weights, run_mtmi, run_ort, save_model
from make_variants import make_variant

tmp = tmpdir()


def nodes(path):
    return len(onnx.load(path, load_external_data=False).graph.node)


def same_outputs(a, b, shape, tag, tol=1e-5):
    m = onnx.load(a, load_external_data=False)
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    ra, rb = run_ort(a, {m.graph.input[0].name: x}, threads=2), run_ort(b, {m.graph.input[0].name: x}, threads=2)
    ok = set(ra) == set(rb)
    for k in ra:
        ok &= compare(f"{tag}/{k}", rb[k], ra[k], tol)
    return ok


def simplify(src, dst, *extra):
    out = mtmi_ok("simplify", src, dst, *extra)
    print("   " + out.strip().splitlines()[-2])
    return out


for tag, f in (("torchscript", "mtmi_torchscript_opset17.graph.onnx"), ("dynamo", "mtmi_dynamo_opset17.graph.onnx")):
    src = os.path.join(tmp, tag + ".onnx")
    m = onnx.load(os.path.join(REFERENCE, f), load_external_data=False)
    save_model(fill_external_weights(m, 0), src)
    dst = os.path.join(tmp, tag + "_simp.onnx")
    simplify(src, dst)
    onnx.checker.check_model(onnx.load(dst), full_check=True)
    n0, n1 = nodes(src), nodes(dst)
    check(n1 < n0, f"{tag}: {n0} -> {n1} nodes")
    check(same_outputs(src, dst, (1, 3, 1024, 1024), tag), f"{tag} 1024x1024: ORT outputs equal within 1e-5")

# opset 13 (LayerNormalization decomposed): fused and written at opset 17
src = os.path.join(tmp, "ts_op13.onnx")
make_variant(os.path.join(REFERENCE, "mtmi_torchscript_opset17.graph.onnx"), src, (64, 96), 2, True, fill_seed=0)
dst = os.path.join(tmp, "ts_op13_simp.onnx")
simplify(src, dst)
sm = onnx.load(dst, load_external_data=False)
ops = collections.Counter(n.op_type for n in sm.graph.node)
check(sm.opset_import[0].version == 17 and ops["LayerNormalization"] == 30 and "ReduceMean" not in ops,
      f"opset 13 in, opset {sm.opset_import[0].version} with {ops['LayerNormalization']} LayerNormalization out")
check(nodes(dst) < nodes(src), f"opset 13, 64x96 batch 2: {nodes(src)} -> {nodes(dst)} nodes")
check(same_outputs(src, dst, (2, 3, 64, 96), "op13"), "opset 13 variant: ORT outputs equal within 1e-5")

# the built-in model; --shape picks the size of a dynamic... (fixed here)
src = os.path.join(tmp, "mm.onnx")
mtmi_ok("make-model", "-o", src, "--size", "64x64", "--seed", "2")
dst = os.path.join(tmp, "mm_simp.onnx")
simplify(src, dst, "--external-data", "4096")
check(os.path.exists(dst + ".data"), "--external-data writes OUT.data")
check(nodes(dst) < nodes(src), f"built-in model: {nodes(src)} -> {nodes(dst)} nodes")
check(same_outputs(src, dst, (1, 3, 64, 64), "builtin"), "built-in model: ORT outputs equal within 1e-5")

keep = os.path.join(tmp, "mm_keep.onnx")
simplify(src, keep, "--keep-fused")
km = onnx.load(keep, load_external_data=False)
doms = {o.domain for o in km.opset_import}
check("mtmi" in doms and any(n.domain == "mtmi" for n in km.graph.node), "--keep-fused: mtmi-domain ops and opset import")
x = np.random.default_rng(3).standard_normal((1, 3, 64, 64)).astype(np.float32)
ref = run_ort(src, {"input": x})
try:
    os.makedirs(os.path.join(tmp, "run_keep"), exist_ok=True)
    got = run_mtmi(keep, [x], workdir=os.path.join(tmp, "run_keep"))
    check(all(compare(f"keep-fused/{k}", got[k], ref[k], 1e-4) for k in ref), "--keep-fused model runs in mtmi like the original in ORT")
except RuntimeError as e:
    check(False, f"mtmi infer on the --keep-fused model: {e}")

# a given shape specializes a model to it
dst = os.path.join(tmp, "mm_shape.onnx")
mtmi_ok("simplify", src, dst, "--shape", "1x3x64x64")
check(nodes(dst) < nodes(src), "--shape 1x3x64x64 accepted")
finish()
