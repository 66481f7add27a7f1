"""The reference network end to end against ONNX Runtime (FP32, CPU), from
both exports, with seeded random weights, at other input sizes, batch 2 and
the opset-13 form (tests/tools/make_variants.py), plus the op histogram of
mtmi's optimized graph (fusions happened, shape chains folded away).

Usage: test_reference_models.py CASE [CASE ...]
  <export>_<variant>  export: ts (TorchScript) | dyn (dynamo);
                      variant: 256 | b2_256 | op13_256 | 512x1024 | 1024
  fusion_<export>[_op13]   op histogram check (at 256x256)
Prints max abs and ||a-b||/||b|| per output; FP32 must be within 1e-4."""
import os
import sys
import tempfile
import time

import numpy as np
import onnx

from make_variants import make_variant
from mtmi_testutil import optimized_ops, REFERENCE, compare, run_mtmi, run_ort

SKIP = 77
REL_TOL = 1e-4
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
    make_variant(src, dst, None if size == (1024, 1024) else size, batch, opset13, fill_seed=0)
    print(f"variant {export}_{variant}: {batch}x3x{size[0]}x{size[1]}{' opset 13' if opset13 else ''} "
          f"({time.time() - t:.1f} s)")
    return dst, (batch, 3) + size


def check_outputs(export, variant, tmp):
    path, shape = build(export, variant, tmp)
    x = np.random.default_rng(42).standard_normal(shape).astype(np.float32)
    t = time.time()
    ref = run_ort(path, {onnx.load(path, load_external_data=False).graph.input[0].name: x}, threads=THREADS)
    t_ort = time.time() - t
    t = time.time()
    work = os.path.join(tmp, f"run_{export}_{variant}")
    os.makedirs(work, exist_ok=True)
    got = run_mtmi(path, [x], extra=["--threads", str(THREADS)], workdir=work)
    t_mtmi = time.time() - t
    print(f"  ORT {t_ort:.2f} s, mtmi {t_mtmi:.2f} s (wall, including load and plan)")
    ok = True
    for name, r in ref.items():
        ok &= compare(f"{export}_{variant}/{name}", got[name], r, REL_TOL)
    # the seg class map as a readable number next to the logits error
    if "seg" in ref:
        agree = float(np.mean(np.argmax(got["seg"], 1) == np.argmax(ref["seg"], 1)))
        print(f"  seg argmax agreement {agree * 100:.4f}%")
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


def main():
    cases = sys.argv[1:]
    if not cases:
        print(__doc__)
        return 2
    if not os.path.isdir(REFERENCE):
        print(f"reference exports not found under {REFERENCE}: skipped")
        return SKIP
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
