"""scripts/class_bias.py, the logit adjustment of the trained model's
segmentation classes (docs/GROUND_TRUTH.md):

- the mIoU it optimizes equals a per-class recount by hand on a small case;
- on synthetic logits whose one class has an inflated prior (+3: the
  network's truck/bus false positives on road), the search finds a
  negative constant for that class and a real mIoU gain, and leaves a
  well-calibrated class alone;
- write_model changes exactly the classifier's float16 bias by the
  constants (all other initializers byte-identical), refuses a model
  without it;
- the model in the tree carries its record: 19 constants chosen on >= 16
  scenes with a gain there, and its classifier bias still float16.
"""
import json
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
import class_bias as cb  # noqa: E402
import mtmi_testutil as tu  # noqa: E402

check = tu.Checks()
K = cb.NUM_CLASSES

# --- the objective against a hand recount
y = np.array([0, 0, 1, 1, 2, 2, 2, 3], np.int64)
pred = np.array([0, 1, 1, 1, 2, 0, 2, 3], np.int64)
L = np.full((K, y.size), -10.0, np.float32)
L[pred, np.arange(y.size)] = 1.0
m, iou, present = cb.miou(L, y, np.zeros(K, np.float32))
# class 0: tp 1, gt 2, pred 2 -> 1/3; class 1: tp 2, gt 2, pred 3 -> 2/3; class 2: tp 2, gt 3, pred 2 -> 2/3; class 3: 1
want = 100 * np.mean([1 / 3, 2 / 3, 2 / 3, 1.0])
check(abs(m - want) < 1e-9 and present.sum() == 4, f"miou {m} != {want}")
check(abs(iou[0] - 100 / 3) < 1e-9 and abs(iou[3] - 100) < 1e-9, f"per-class IoU {iou[:4]}")

# --- the search undoes an inflated prior
rng = np.random.default_rng(7)
n = 60000
y = rng.choice(4, size=n, p=[0.6, 0.25, 0.1, 0.05]).astype(np.int64)
L = rng.normal(0.0, 1.0, size=(K, n)).astype(np.float32)
L[y, np.arange(n)] += 2.5
L[4:] -= 20.0  # classes absent from the data: never predicted
L[3] += 3.0  # the rare class's prior, inflated as class-balanced training does
off, before, after = cb.search(L, y, [d for d in np.arange(-3.0, 3.01, 0.25) if abs(d) > 1e-6], 3)
print(f"search: mIoU {before:.2f} -> {after:.2f}, offsets {off[:4]}")
check(after > before + 5.0, f"no real gain: {before:.2f} -> {after:.2f}")
check(off[3] - np.mean(off[:3]) < -2.0, f"class 3's constant {off[3]} not well below the others' {off[:3]}")
check(np.all(off[4:] == 0), f"absent classes moved: {off[4:]}")
m2, _, _ = cb.miou(L, y, off)
check(abs(m2 - after) < 1e-9, "search's reported mIoU is not that of its offsets")

# --- write_model: the classifier's float16 bias and nothing else
tmp = tempfile.mkdtemp(prefix="mtmi_cb_")
b16 = (np.arange(K, dtype=np.float32) * 0.1 - 0.7).astype(np.float16)
w = numpy_helper.from_array(np.ones((K, 2, 1, 1), np.float32), "w")
g = helper.make_graph(
    [helper.make_node("Cast", [cb.BIAS], ["b"], to=TensorProto.FLOAT),
     helper.make_node("Conv", ["x", "w", "b"], ["seg"])],
    "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
    [helper.make_tensor_value_info("seg", TensorProto.FLOAT, [1, K, 4, 4])],
    [w, numpy_helper.from_array(b16, cb.BIAS)])
src = os.path.join(tmp, "m.onnx")
onnx.save(helper.make_model(g), src)
dst = os.path.join(tmp, "adj.onnx")
offs = np.zeros(K, np.float32)
offs[14], offs[0] = -5.0, 2.75
old, new = cb.write_model(src, dst, offs)
got = {i.name: numpy_helper.to_array(i) for i in onnx.load(dst).graph.initializer}
check(got[cb.BIAS].dtype == np.float16, "the bias is no longer float16")
check(np.array_equal(got[cb.BIAS], (b16.astype(np.float32) + offs).astype(np.float16)), "bias != float16(bias + offsets)")
check(np.array_equal(got["w"], np.ones((K, 2, 1, 1), np.float32)), "another initializer changed")
check(np.allclose(new - old, offs, atol=2e-3), f"returned change {new - old}")
g.initializer.pop()  # no bias initializer: refused
onnx.save(helper.make_model(g), src)
try:
    cb.write_model(src, dst, offs)
    check(False, "a model without the bias was accepted")
except SystemExit as e:
    check("seg.cls.bias__fp16" in str(e), f"refusal does not name the initializer: {e}")

# --- the model in the tree and its record
model = os.path.join(ROOT, "models", "mtmi_trained.onnx")
if os.path.exists(model):
    rec = json.load(open(os.path.join(ROOT, "models", "mtmi_trained.json")))
    cbr = rec.get("class_bias")
    check(cbr is not None, "models/mtmi_trained.json has no class_bias record")
    if cbr:
        check(len(cbr["offsets"]) == K, "not 19 constants")
        check(cbr["miou_pct_after"] > cbr["miou_pct_before"], "the adjustment did not gain on its own data")
        check(cbr["data"]["scenes"] >= 16, f"chosen on {cbr['data']['scenes']} scenes")
        b = next(numpy_helper.to_array(i) for i in onnx.load(model).graph.initializer if i.name == cb.BIAS)
        check(b.dtype == np.float16 and b.shape == (K,), f"stored bias {b.dtype} {b.shape}")
else:
    print("models/mtmi_trained.onnx not in the tree: its record not checked")
check.finish("class_bias")
