"""make-model: the built-in MTMI network against the reference exports'
structure (op histogram, weight shapes, parameter count), its FLOPs per part
(make-model's own count and `mtmi info`'s), and ONNX Runtime running it
(batch 2, non-square, external data, 1024x1024)."""
import collections
import os
import re

import numpy as np
import onnx

from preputil import check, finish, mtmi_ok, tmpdir
from mtmi_testutil import REFERENCE, compare, need_shared, nondegenerate, run_ort, test_seed

need_shared("test_make_model.py")
SEED = test_seed(0)
tmp = tmpdir()
ref = onnx.load(os.path.join(REFERENCE, "mtmi_dynamo_opset17.graph.onnx"), load_external_data=False)
ts = onnx.load(os.path.join(REFERENCE, "mtmi_torchscript_opset17.graph.onnx"), load_external_data=False)

p = os.path.join(tmp, "mtmi.onnx")
out = mtmi_ok("make-model", "-o", p)
print(out.strip())
m = onnx.load(p)
onnx.checker.check_model(m, full_check=True)
check(True, "ONNX checker (full, with shape inference) accepts the model")

hist = collections.Counter(n.op_type for n in m.graph.node)
href = collections.Counter(n.op_type for n in ref.graph.node)
check(hist == href, f"op histogram equals the dynamo export's ({sum(hist.values())} nodes): {dict(hist)}")
shape_ops = {"Shape", "Slice", "Constant"}  # TorchScript's shape chains, folded to constants here
check(set(hist) == {n.op_type for n in ts.graph.node} - shape_ops, "op vocabulary equals the TorchScript export's minus its shape-chain ops")


def big(model):
    return sorted(tuple(t.dims) for t in model.graph.initializer if t.data_type == 1 and int(np.prod(t.dims)) > 16)


check(big(m) == big(ref), "float weights over 16 elements: same shapes as the export's external tensors")
n_ext = sum(int(np.prod(d)) for d in big(m))
check(n_ext == 4896403, f"{n_ext} weights in tensors over 16 elements (exports: 4,896,403 external)")
mp = re.search(r"parameters: (\d+) .*counts (\d+)", out)
check(mp and int(mp.group(1)) == 4896404 and int(mp.group(2)) == 4898068,
      "parameters 4,896,404 (BN folded) and PyTorch's 4,898,068 reported")
mf = re.search(r"encoder ([\d.]+), seg ([\d.]+), depth ([\d.]+)", out)
want = (50.6, 9.9, 56.5)
check(mf and all(abs(float(mf.group(i + 1)) - want[i]) < 0.1 for i in range(3)), f"make-model GFLOP {mf.groups() if mf else None} vs {want}")

info = mtmi_ok("info", p)
enc = re.search(r"shared \(encoder\): ([\d.]+) GFLOP", info)
seg = re.search(r"head 'seg': ([\d.]+) GFLOP", info)
dep = re.search(r"head 'depth': ([\d.]+) GFLOP", info)
got = tuple(float(x.group(1)) if x else -1 for x in (enc, seg, dep))
check(all(abs(got[i] - want[i]) < 0.1 for i in range(3)), f"mtmi info GFLOP per part {got} vs {want}")

x = np.random.default_rng(SEED).standard_normal((1, 3, 1024, 1024)).astype(np.float32)
r = run_ort(p, {"input": x}, threads=2)
check(r["seg"].shape == (1, 19, 1024, 1024) and r["depth"].shape == (1, 1, 1024, 1024), "ORT runs it at 1024x1024")

# The same network as the export: the dynamo export given make-model's
# weights computes the same outputs.  Its MatMul weights are anonymous
# (val_N): each is named here through the bias its MatMul's Add reads.
from onnx import numpy_helper  # noqa: E402
mine = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
consumers = {}
for n in ref.graph.node:
    for i in n.input:
        consumers.setdefault(i, []).append(n)
alias = {}
for n in ref.graph.node:
    if n.op_type == "MatMul" and n.input[1].startswith("val_"):
        add = consumers[n.output[0]][0]
        bias = [i for i in add.input if i != n.output[0]][0]
        alias[n.input[1]] = bias[: -len(".bias")] + ".weight_t"
mapped, unmapped = 0, []
for t in ref.graph.initializer:
    if t.data_location != onnx.TensorProto.EXTERNAL and t.name != "depth.cls.bias":
        continue
    name = alias.get(t.name, t.name)
    if name not in mine or tuple(mine[name].shape) != tuple(t.dims):
        unmapped.append(t.name)
        continue
    t.CopyFrom(numpy_helper.from_array(mine[name], t.name))
    mapped += 1
check(not unmapped, f"every export weight has a make-model weight of the same name and shape ({mapped} mapped, unmapped {unmapped[:5]})")
refp = os.path.join(tmp, "dynamo_with_make_model_weights.onnx")
onnx.save(ref, refp)
rr = run_ort(refp, {"input": x}, threads=2)
check(nondegenerate("make-model 1024", r["seg"], r["depth"]), "make-model's default (spread) weights give a discriminative output")
# per element; measured max abs 3.3e-6 (seg), 9e-7 (depth)
check(all(compare(f"vs export/{k}", r[k], rr[k], 0.0, 2e-5 if k == "seg" else 4e-6) for k in r),
      "make-model computes what the dynamo export computes with the same weights")

# small, batch 2, non-square; inline vs external data; seeds
p2, p3, p4, p5 = (os.path.join(tmp, f) for f in ("s.onnx", "s_ext.onnx", "s_same.onnx", "s_other.onnx"))
mtmi_ok("make-model", "-o", p2, "--size", "64x128", "--batch", "2", "--seed", "5")
mtmi_ok("make-model", "-o", p3, "--size", "64x128", "--batch", "2", "--seed", "5", "--external-data", "1024")
mtmi_ok("make-model", "-o", p4, "--size", "64x128", "--batch", "2", "--seed", "5")
mtmi_ok("make-model", "-o", p5, "--size", "64x128", "--batch", "2", "--seed", "6")
x = np.random.default_rng(SEED + 1).standard_normal((2, 3, 64, 128)).astype(np.float32)
a, b, c = run_ort(p2, {"input": x}), run_ort(p3, {"input": x}), run_ort(p5, {"input": x})
check(a["seg"].shape == (2, 19, 64, 128) and a["depth"].shape == (2, 1, 64, 128), "batch 2, 64x128: output shapes")
check(all(np.all(np.isfinite(v)) for v in a.values()) and 0 < a["depth"].min() and a["depth"].max() < 1, "outputs finite, depth in (0, 1)")
check(os.path.exists(p3 + ".data") and os.path.getsize(p3) < 200000, "external data written beside the model")
check(all(np.array_equal(a[k], b[k]) for k in a), "external-data model gives identical outputs")
check(open(p2, "rb").read() == open(p4, "rb").read(), "same seed: byte-identical file")
check(not np.array_equal(a["seg"], c["seg"]), "another seed: other weights")
finish()
