"""The full reference network at 1024x1024 on the GPU (FP16 and FP32 plans)
against ONNX Runtime FP32 on the CPU, both exports (dynamo and
torchscript), with the spread fill of mtmi_testutil (a discriminative
output: ORT's reference is checked to hold >= 8 classes of >= 1 % and a
depth spread >= 0.3 first).  Per element: seg logits and depth within
atol + rtol |ref| (TOL), and the class of every pixel whose reference
top-two margin exceeds twice the logit tolerance.  A missing ../shared is a
failure; exit 77 only without a GPU (ctest SKIP_RETURN_CODE).

The log prints each output's worst element and the share of its tolerance
it uses.  TOL is ~4x the largest errors of the first GPU run (H100,
2026-12-06, both exports, 1024x1024, spread weights): FP16 seg 8.1e-3
(kept at 6e-2 + 2e-2 |x| for FP16's rounding of logits up to ~8), depth
4.1e-3; FP32 seg 5.8e-6, depth 2.3e-6 (after FP32 plans stopped using
TF32 in cuDNN: it was 8e-4)."""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx

from mtmi_testutil import (REFERENCE, check_classes, compare, fill_external_weights, need_shared, nondegenerate, run_mtmi,
                           run_ort, save_model, test_seed)

# (atol, rtol) per precision and output; seg logits span about +-8.
TOL = {"fp16": {"seg": (6e-2, 2e-2), "depth": (1.6e-2, 0.0)},
       "fp32": {"seg": (2.4e-5, 0.0), "depth": (1e-5, 0.0)}}
# Class agreement over all pixels (FP16's logit tolerance leaves about half
# the pixels undecided, so the decided-pixel check alone is weak there);
# FP32 must decide >= 90 % of the pixels (measured: FP16 agreement 99.84 %,
# FP32 99.90 % decided).
CLASSES = {"fp16": dict(min_decided=None, min_agree=0.99), "fp32": dict(min_decided=0.9)}


def gpu_visible():
    try:
        r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        return r.returncode == 0 and "GPU" in r.stdout
    except OSError:
        return False


def main():
    if not gpu_visible():
        print("skipped: no GPU")
        return 77
    need_shared("test_cuda_network.py")
    seed = test_seed(0)
    d = tempfile.mkdtemp(prefix="mtmi_cuda_net_")
    ok = True
    try:
        x = np.random.default_rng(seed + 3).standard_normal((1, 3, 1024, 1024)).astype(np.float32)
        for exp in ("dynamo", "torchscript"):
            m = onnx.load(os.path.join(REFERENCE, f"mtmi_{exp}_opset17.graph.onnx"), load_external_data=False)
            fill_external_weights(m, seed=seed)
            path = os.path.join(d, f"{exp}.onnx")
            save_model(m, path)
            ref = run_ort(path, {m.graph.input[0].name: x})
            ok &= nondegenerate(f"{exp} ORT", ref["seg"], ref["depth"])
            for prec in ("fp16", "fp32"):
                os.makedirs(os.path.join(d, f"{exp}_{prec}"), exist_ok=True)
                try:
                    got = run_mtmi(path, [x], extra=["--device", "cuda:0", "--precision", prec],
                                   workdir=os.path.join(d, f"{exp}_{prec}"))
                except RuntimeError as e:
                    print(f"{exp} {prec}: FAIL: {e}")
                    ok = False
                    continue
                print(f"{exp} {prec}:")
                for k in ("seg", "depth"):
                    atol, rtol = TOL[prec][k]
                    ok &= compare(f"{exp} {prec} {k}", got[k], ref[k], rtol, atol)
                atol, rtol = TOL[prec]["seg"]
                ok &= check_classes(f"{exp} {prec} seg", got["seg"], ref["seg"], atol + rtol * float(np.abs(ref["seg"]).max()),
                                    **CLASSES[prec])
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("GPU network check passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
