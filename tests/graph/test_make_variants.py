"""tests/tools/make_variants.py checked in ONNX Runtime alone: a batch-2
variant gives each image the batch-1 variant's output, the opset-13 variant
(LayerNorm decomposed) matches the opset-17 one, and the rewritten sizes
give the expected output shapes (both exports, a square and an odd size)."""
import os
import sys
import tempfile

import numpy as np
import onnx

from make_variants import make_variant
from mtmi_testutil import REFERENCE, need_shared, run_ort, test_seed

EXPORTS = {"ts": "mtmi_torchscript_opset17.graph.onnx", "dyn": "mtmi_dynamo_opset17.graph.onnx"}


def main():
    need_shared("test_make_variants.py")
    seed = test_seed(3)
    tmp = tempfile.mkdtemp(prefix="mtmi_variants_")
    ok = True
    for tag, fn in EXPORTS.items():
        src = os.path.join(REFERENCE, fn)
        for (h, w) in ((256, 256), (224, 352)):
            p1 = make_variant(src, os.path.join(tmp, f"{tag}_{h}x{w}.onnx"), (h, w), 1, False, fill_seed=seed)
            p2 = make_variant(src, os.path.join(tmp, f"{tag}_b2_{h}x{w}.onnx"), (h, w), 2, False, fill_seed=seed)
            p13 = make_variant(src, os.path.join(tmp, f"{tag}_op13_{h}x{w}.onnx"), (h, w), 1, True, fill_seed=seed)
            m13 = onnx.load(p13, load_external_data=False)
            ops13 = {n.op_type for n in m13.graph.node}
            opset = [o.version for o in m13.opset_import if o.domain in ("", "ai.onnx")]
            x = np.random.default_rng(seed + 2).standard_normal((2, 3, h, w)).astype(np.float32)
            a0 = run_ort(p1, {"input": x[:1]})
            a1 = run_ort(p1, {"input": x[1:]})
            b = run_ort(p2, {"input": x})
            c = run_ort(p13, {"input": x[:1]})
            for name in a0:
                exp_shape = (1, 19 if name == "seg" else 1, h, w)
                good = a0[name].shape == exp_shape
                e_b = max(np.abs(b[name][:1] - a0[name]).max(), np.abs(b[name][1:] - a1[name]).max())
                e_13 = np.abs(c[name] - a0[name]).max()
                good &= e_b <= 1e-5 and e_13 <= 1e-5
                print(f"{tag} {h}x{w} {name}: shape {a0[name].shape}, batch-2 vs batch-1 max abs {e_b:.2e}, "
                      f"opset 13 vs 17 max abs {e_13:.2e} {'ok' if good else 'FAIL'}")
                ok &= bool(good)
            good = opset == [13] and "LayerNormalization" not in ops13 and {"ReduceMean", "Pow", "Sqrt"} <= ops13
            print(f"{tag} opset-13 variant: opset {opset}, LayerNormalization decomposed: {'ok' if good else 'FAIL'}")
            ok &= good
    print("all ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
