"""Helpers of the Python package's tests (conftest.py has the fixtures)."""
import os
import subprocess
import sys

import numpy as np

REPO = os.environ.get("MTMI_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "tools"))

import mtmi_testutil as tu  # noqa: E402,F401

# The reference network at this size, seeded by MTMI_TEST_SEED (default 1):
# test_api's size, whose INT8 bounds the INT8 test reuses.
H, W = 64, 96


def gpu_visible():
    try:
        r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        return r.returncode == 0 and "GPU" in r.stdout
    except OSError:
        return False


def frames(seed, n, shape=(1, 3, H, W)):
    """n standard-normal inputs (the preprocessed images' range) from seed."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]


def ort(path, x, threads=2):
    """ONNX Runtime (CPU, FP32) on the model file: [seg, depth]."""
    r = tu.run_ort(path, {"input": x}, threads=threads)
    return [r["seg"], r["depth"]]
