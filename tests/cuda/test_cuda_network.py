"""The full reference network at 1024x1024 on the GPU (FP16 and FP32 plans)
against ONNX Runtime FP32 on the CPU: seg class-map agreement, seg logit
error, depth max error.  Both exports (dynamo and torchscript).  Exit 77
without a GPU (ctest SKIP_RETURN_CODE)."""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx

from mtmi_testutil import REFERENCE, SHARED, fill_external_weights, run_mtmi, run_ort, save_model

HERE = os.path.dirname(os.path.abspath(__file__))
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


def find_reference():
    for d in (REFERENCE, os.path.join(HERE, "..", "..", ".deps", "shared", "reference")):
        if os.path.exists(os.path.join(d, "mtmi_dynamo_opset17.graph.onnx")):
            return d
    return None


def gpu_visible():
    try:
        r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        return r.returncode == 0 and "GPU" in r.stdout
    except OSError:
        return False


def input_image(ref_dir):
    """A real street scene if the images folder is there, else noise."""
    for d in (os.path.join(SHARED, "images"), os.path.join(ref_dir, "..", "images")):
        p = os.path.join(d, "1.png")
        if os.path.exists(p):
            try:
                from PIL import Image
                a = np.asarray(Image.open(p).convert("RGB"), dtype=np.float32)
                if a.shape[:2] == (1024, 1024):
                    print(f"input: {p}")
                    return ((a - MEAN) / STD).transpose(2, 0, 1)[None].copy()
            except Exception:
                pass
    print("input: seeded noise")
    return np.random.default_rng(3).standard_normal((1, 3, 1024, 1024)).astype(np.float32)


def main():
    if not gpu_visible():
        print("skipped: no GPU")
        return 77
    ref_dir = find_reference()
    if not ref_dir:
        print("skipped: reference models not found")
        return 77
    d = tempfile.mkdtemp(prefix="mtmi_cuda_net_")
    ok = True
    try:
        x = input_image(ref_dir)
        for exp in ("dynamo", "torchscript"):
            m = onnx.load(os.path.join(ref_dir, f"mtmi_{exp}_opset17.graph.onnx"), load_external_data=False)
            fill_external_weights(m, seed=0)
            path = os.path.join(d, f"{exp}.onnx")
            save_model(m, path)
            ref = run_ort(path, {m.graph.input[0].name: x})
            seg_r, dep_r = ref["seg"], ref["depth"]
            cls_r = seg_r.argmax(1)
            for prec, min_agree, max_dep in (("fp16", 0.97, 0.05), ("fp32", 0.999, 1e-3)):
                os.makedirs(os.path.join(d, f"{exp}_{prec}"), exist_ok=True)
                try:
                    got = run_mtmi(path, [x], extra=["--device", "cuda:0", "--precision", prec],
                                   workdir=os.path.join(d, f"{exp}_{prec}"))
                except RuntimeError as e:
                    print(f"{exp} {prec}: FAIL: {e}")
                    ok = False
                    continue
                seg, dep = got["seg"], got["depth"]
                if not (np.all(np.isfinite(seg)) and np.all(np.isfinite(dep))):
                    print(f"{exp} {prec}: FAIL: non-finite outputs")
                    ok = False
                    continue
                agree = float((seg.argmax(1) == cls_r).mean())
                seg_rel = float(np.linalg.norm(seg - seg_r) / np.linalg.norm(seg_r))
                seg_max = float(np.abs(seg - seg_r).max())
                dep_max = float(np.abs(dep - dep_r).max())
                dep_rel = float(np.linalg.norm(dep - dep_r) / np.linalg.norm(dep_r))
                good = agree >= min_agree and dep_max <= max_dep
                ok &= good
                print(f"{exp} {prec}: seg class agreement {100 * agree:.3f}%  seg logits max abs {seg_max:.3e} "
                      f"rel L2 {seg_rel:.3e}  depth max abs {dep_max:.3e} rel L2 {dep_rel:.3e}  "
                      f"{'ok' if good else 'FAIL'} (need >= {100 * min_agree:.1f}%, depth <= {max_dep:g})")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("GPU network check passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
