"""The reference network end to end against ONNX Runtime (FP32, CPU), from
both exports, with seeded random weights, at other input sizes, batch 2 and
the opset-13 form (tests/tools/make_variants.py), plus the op histogram of
mtmi's optimized graph (fusions happened, shape chains folded away).

Usage: test_reference_models.py CASE [CASE ...]
  <export>_<variant>  export: ts (TorchScript) | dyn (dynamo);
                      variant: 256 | b2_256 | op13_256 | 512x1024 | 1024
  fusion_<export>[_op13]   op histogram check (at 256x256)
Each case first checks that ONNX Runtime's output is discriminative (the
class map holds >= 8 classes of >= 1 % each, depth spans >= 0.3 between
its 1st and 99th percentiles: weights from mtmi_testutil's spread fill),
then compares per element: |mtmi - ORT| <= ATOL + RTOL |ORT| for the seg
logits and depth (measured: see TOL), and the class of every pixel whose
reference top-two margin exceeds twice the logit tolerance.  A missing
../shared is a failure."""
import os
import sys
import tempfile
import time

import numpy as np
import onnx

from make_variants import make_variant
from mtmi_testutil import (REFERENCE, check_classes, compare, need_shared, nondegenerate, optimized_ops, run_mtmi,
                           run_ort, test_seed)

# Per-element tolerances (atol, rtol) of mtmi FP32 against ORT FP32.
# Measured over every case here (256..1024 px, batch 2, opset 13, both
# exports): seg logits (|x| up to ~8) max abs error 5.0e-6, depth (0..1)
# 1.7e-6; the tolerances are 4x those.
TOL = {"seg": (2e-5, 0.0), "depth": (7e-6, 0.0)}
THREADS = int(os.environ.get("MTMI_TEST_THREADS", "2"))
EXPORTS = {"ts": "mtmi_torchscript_opset17.graph.onnx", "dyn": "mtmi_dynamo_opset17.graph.onnx"}


def variant_args(v):
    """(size, batch, opset13) of a variant name."""
    opset13 = v.startswith("op13_")
    v = v[5:] if opset13 else v
    batch = 1
    if v.startswith("b2_"):
        batch, v = 2, v[3:]
    h, _, w = v.partition("x")
    size = (int(h), int(w or h))
    return size, batch, opset13


def build(export, variant, tmp):
    src = os.path.join(REFERENCE, EXPORTS[export])
    size, batch, opset13 = variant_args(variant)
    dst = os.path.join(tmp, f"{export}_{variant}.onnx")
    t = time.time()
    make_variant(src, dst, None if size == (1024, 1024) else size, batch, opset13, fill_seed=SEED)
    print(f"variant {export}_{variant}: {batch}x3x{size[0]}x{size[1]}{' opset 13' if opset13 else ''} "
          f"({time.time() - t:.1f} s)")
    return dst, (batch, 3) + size


def check_outputs(export, variant, tmp):
    path, shape = build(export, variant, tmp)
    x = np.random.default_rng(SEED + 42).standard_normal(shape).astype(np.float32)
    t = time.time()
    ref = run_ort(path, {onnx.load(path, load_external_data=False).graph.input[0].name: x}, threads=THREADS)
    t_ort = time.time() - t
    t = time.time()
    work = os.path.join(tmp, f"run_{export}_{variant}")
    os.makedirs(work, exist_ok=True)
    got = run_mtmi(path, [x], extra=["--threads", str(THREADS)], workdir=work)
    t_mtmi = time.time() - t
    print(f"  ORT {t_ort:.2f} s, mtmi {t_mtmi:.2f} s (wall, including load and plan)")
    ok = nondegenerate(f"{export}_{variant}", ref["seg"], ref["depth"])
    for name, r in ref.items():
        atol, rtol = TOL[name]
        ok &= compare(f"{export}_{variant}/{name}", got[name], r, rtol, atol)
    ok &= check_classes(f"{export}_{variant}/seg", got["seg"], ref["seg"], TOL["seg"][0] + TOL["seg"][1] * float(np.abs(ref["seg"]).max()))
    return ok


def check_fusion(export, variant, tmp):
    path, _ = build(export, variant, tmp)
    ops = optimized_ops(path)
    print(f"  optimized ops: {ops}")
    ok = True

    def want(cond, what):
        nonlocal ok
        if not cond:
            print(f"  FAIL: {what}")
            ok = False

    want(ops.get("Attention", 0) == 8, "8 Attention")
    want(ops.get("LayerNormalization", 0) == 30, "30 LayerNormalization")
    want(ops.get("Gelu", 0) == 8 or (ops.get("Gelu", 0) == 0 and ops.get("FusedConv", 0) >= 8),
         "8 Gelu (or GELU folded into FusedConv)")
    for op in ("Shape", "Constant", "Slice", "Erf", "Softmax", "ReduceMean", "Sqrt", "Pow", "BatchNormalization",
               "Div", "Unsqueeze", "Squeeze", "ConstantOfShape"):
        want(op not in ops, f"no {op} left")
    # the only Concats are the heads' feature concats, the only Gathers the
    # k/v selects of the 8 attentions (no shape chains)
    want(ops.get("Concat", 0) <= 4, "at most 4 Concat (data concats only)")
    want(ops.get("Gather", 0) <= 16, "at most 16 Gather (k/v selects only)")
    # 33 convolutions (36 when MTMI_FUSE_CONCAT=1 splits the seg head's
    # fuse conv into one per concatenated feature)
    want(ops.get("Conv", 0) + ops.get("FusedConv", 0) in (33, 36), "33 convolutions (36 with the seg fuse conv split)")
    want(ops.get("MatMul", 0) == 0 or ops.get("Linear", 0) == 0, "MatMul+Add fused into Linear")
    print(f"fusion {export}_{variant}: {'ok' if ok else 'FAIL'}")
    return ok


SEED = 0


def main():
    global SEED
    SEED = test_seed(0)
    cases = sys.argv[1:]
    if not cases:
        print(__doc__)
        return 2
    need_shared("test_reference_models.py")
    tmp = tempfile.mkdtemp(prefix="mtmi_ref_")
    failed = []
    for c in cases:
        try:
            if c.startswith("fusion_"):
                parts = c.split("_")[1:]
                ok = check_fusion(parts[0], "op13_256" if "op13" in parts else "256", tmp)
            else:
                export, variant = c.split("_", 1)
                ok = check_outputs(export, variant, tmp)
        except Exception as e:  # one line per failed case, the rest still run
            print(f"{c}: FAIL {type(e).__name__}: {e}")
            ok = False
        print(f"{c}: {'ok' if ok else 'FAIL'}")
        if not ok:
            failed.append(c)
    print(f"{len(cases) - len(failed)} of {len(cases)} passed" + (f"; failed: {' '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
