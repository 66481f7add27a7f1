"""The C entropy threshold search (TensorRT EntropyCalibrator2) against the
NumPy reference of trt_entropy_ref.py on histograms of known
distributions, including one that grows past 2048 bins."""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import trt_entropy_ref as ref  # noqa: E402
from mtmi_testutil import test_seed  # noqa: E402

TOOL = sys.argv[1]


def batches(kind, rng):
    n = 60000
    if kind == "gaussian":
        return [rng.standard_normal(n) for _ in range(3)]
    if kind == "laplace":
        return [rng.laplace(size=n) for _ in range(3)]
    if kind == "relu_gaussian":  # half exact zeros: the bins[0] := bins[1] case
        return [np.maximum(rng.standard_normal(n), 0) for _ in range(3)]
    if kind == "uniform":
        return [rng.uniform(-1, 1, n) for _ in range(2)]
    if kind == "outliers":
        x = rng.standard_normal(n)
        x[:3] = [40, -35, 50]
        return [x]
    if kind == "growing":  # a later batch 3x larger: the histogram grows
        return [rng.standard_normal(n), 3 * rng.standard_normal(n)]
    if kind == "spiky":  # few distinct values (random-weight heads look like this)
        return [rng.choice([0.0, 0.3, 0.31, 0.9, 1.7], size=n, p=[0.6, 0.2, 0.1, 0.09, 0.01])]
    raise ValueError(kind)


def main():
    rng = np.random.default_rng(test_seed(1))
    ok = True
    with tempfile.TemporaryDirectory() as d:
        for kind in ["gaussian", "laplace", "relu_gaussian", "uniform", "outliers", "growing", "spiky"]:
            hist, width = ref.histogram_like_trt(batches(kind, rng))
            p = os.path.join(d, kind + ".hist")
            with open(p, "w") as f:
                f.write(f"{width!r} {len(hist)} 0\n")
                f.write("\n".join(repr(float(v)) for v in hist) + "\n")
            out = subprocess.run([TOOL, p], capture_output=True, text=True, check=True).stdout.split()
            ci, ct = int(out[0]), float(out[1])
            ri, rt, div = ref.entropy_threshold(hist, width)
            same = ci == ri
            if not same:  # a tie within rounding is still a match
                a, b = div[ci - 128], div[ri - 128]
                same = np.isfinite(a) and abs(a - b) <= 1e-12 * max(1.0, abs(b))
            good = same and abs(ct - np.float32(ci * width)) <= 1e-6 * ct
            print(f"  {kind:14s} bins {len(hist):5d}  C: i={ci:5d} t={ct:.6g}  ref: i={ri:5d} t={rt:.6g}  {'ok' if good else 'FAIL'}")
            ok &= bool(good)
    print("entropy search matches the reference" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
