"""mtmi split against ONNX Runtime: encoder then heads reproduce the whole
model's outputs exactly on both reference exports at 1024x1024, with the
automatic cut and with named cuts."""
import os
import re

import numpy as np
import onnx

from preputil import check, finish, mtmi_ok, tmpdir
from mtmi_testutil import REFERENCE, fill_external_weights, need_shared, nondegenerate, run_ort, save_model, test_seed

need_shared("test_split.py")
SEED = test_seed(0)
tmp = tmpdir()


def split_matches(model, outdir, shape, tag, cut=None):
    args = ["split", model, "-o", outdir] + (["--cut", ",".join(cut)] if cut else [])
    out = mtmi_ok(*args)
    cuts = re.findall(r"^  (\S+)\s+float\s+(\S+)\s+read by (.*)$", out, re.M)
    x = np.random.default_rng(SEED + 11).standard_normal(shape).astype(np.float32)
    ref = run_ort(model, {"input": x}, threads=2)
    ok = "seg" not in ref or nondegenerate(tag, ref["seg"], ref["depth"])  # the MTMI network's outputs
    enc_path = os.path.join(outdir, "encoder.onnx")
    feats = run_ort(enc_path, {"input": x}, threads=2)
    for name, r in ref.items():
        hp = os.path.join(outdir, name + ".onnx")
        h = onnx.load(hp, load_external_data=False)
        onnx.checker.check_model(onnx.load(hp))
        got = run_ort(hp, {i.name: feats[i.name] for i in h.graph.input}, threads=2)[name]
        diff = float(np.abs(got - r).max())
        print(f"  {tag}/{name}: max abs diff {diff}")
        ok &= got.shape == r.shape and diff == 0.0
    split_matches.gflop = {os.path.basename(f)[:-5]: float(g) for f, g in re.findall(r"^wrote (\S+) \(\d+ nodes, ([\d.]+) GFLOP\)", out, re.M)}
    return ok, cuts, feats


full = (1, 3, 1024, 1024)
want_shapes = ["1x32x256x256", "1x64x128x128", "1x160x64x64", "1x256x32x32"]
for tag, f in (("torchscript", "mtmi_torchscript_opset17.graph.onnx"), ("dynamo", "mtmi_dynamo_opset17.graph.onnx")):
    src = os.path.join(tmp, tag + ".onnx")
    save_model(fill_external_weights(onnx.load(os.path.join(REFERENCE, f), load_external_data=False), SEED), src)
    ok, cuts, feats = split_matches(src, os.path.join(tmp, tag), full, tag)
    check([c[1] for c in cuts] == want_shapes and all(c[2].split() == ["seg", "depth"] for c in cuts),
          f"{tag}: cut at the 4 shared features {[c[1] for c in cuts]}, each read by seg and depth")
    check(ok, f"{tag} 1024x1024: encoder -> heads in ORT equals the whole model exactly")
    gf = split_matches.gflop
    check(set(gf) == {"encoder", "seg", "depth"} and abs(gf["encoder"] - 50.6) < 0.1 and abs(gf["seg"] - 9.9) < 0.1
          and abs(gf["depth"] - 56.5) < 0.1, f"{tag}: GFLOP per part {gf} (50.6 / 9.9 / 56.5)")
    check(sorted(os.listdir(os.path.join(tmp, tag))) == ["depth.onnx", "encoder.onnx", "seg.onnx"], f"{tag}: encoder.onnx, seg.onnx, depth.onnx")
    if tag == "dynamo":
        names = [c[0] for c in cuts]

# named cuts (reverse order) on the dynamo export at 1024
src = os.path.join(tmp, "dynamo.onnx")
ok, cuts, _ = split_matches(src, os.path.join(tmp, "named"), full, "named", cut=names[::-1])
check(ok and [c[0] for c in cuts] == names[::-1], "named cut (given order kept): exact")

# the built-in model, batch 2
src = os.path.join(tmp, "mm.onnx")
mtmi_ok("make-model", "-o", src, "--size", "64x96", "--batch", "2", "--seed", str(SEED))
ok, cuts, _ = split_matches(src, os.path.join(tmp, "mm"), (2, 3, 64, 96), "builtin")
check(ok and len(cuts) == 4 and cuts[0][1] == "2x32x16x24", "built-in model, batch 2: exact")
# the opset-13 form (LayerNormalization decomposed), batch 2, non-square
from make_variants import make_variant  # noqa: E402
src = os.path.join(tmp, "op13.onnx")
make_variant(os.path.join(REFERENCE, "mtmi_torchscript_opset17.graph.onnx"), src, (64, 96), 2, True, fill_seed=SEED)
ok, cuts, _ = split_matches(src, os.path.join(tmp, "op13"), (2, 3, 64, 96), "op13 b2")
check(ok and [c[1] for c in cuts] == ["2x32x16x24", "2x64x8x12", "2x160x4x6", "2x256x2x3"], "opset 13, batch 2, 64x96: exact")

# a model with symbolic batch, height and width: the parts stay dynamic
from onnx import helper as oh, numpy_helper as nh, TensorProto as TP  # noqa: E402
rng = np.random.default_rng(SEED)
inits = [nh.from_array((rng.standard_normal(sh) / 3).astype(np.float32), n) for n, sh in (("w0", (8, 3, 3, 3)), ("w1", (4, 8, 1, 1)), ("w2", (2, 8, 3, 3)))]
ns = [oh.make_node("Conv", ["input", "w0"], ["f"], pads=[1, 1, 1, 1], strides=[2, 2]), oh.make_node("Relu", ["f"], ["feat"]),
      oh.make_node("Conv", ["feat", "w1"], ["a"]), oh.make_node("Relu", ["a"], ["out1"]),
      oh.make_node("Conv", ["feat", "w2"], ["b"], pads=[1, 1, 1, 1]), oh.make_node("Sigmoid", ["b"], ["out2"])]
g = oh.make_graph(ns, "dyn", [oh.make_tensor_value_info("input", TP.FLOAT, ["batch", 3, "height", "width"])],
                  [oh.make_tensor_value_info("out1", TP.FLOAT, ["batch", 4, None, None]), oh.make_tensor_value_info("out2", TP.FLOAT, ["batch", 2, None, None])], inits)
src = os.path.join(tmp, "dyn.onnx")
onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)]), src)
ok1, cuts, _ = split_matches(src, os.path.join(tmp, "dyn"), (2, 3, 64, 96), "dynamic 2x3x64x96")
ok2, _, _ = split_matches(src, os.path.join(tmp, "dyn"), (1, 3, 32, 160), "dynamic 1x3x32x160")
enc = onnx.load(os.path.join(tmp, "dyn", "encoder.onnx"))
fd = [d.dim_param or d.dim_value for d in enc.graph.output[0].type.tensor_type.shape.dim]
check(ok1 and ok2 and fd[:2] == ["batch", 8], f"dynamic model: parts run at two sizes exactly; cut declared {fd}")
finish()
