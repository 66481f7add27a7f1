"""Shared helpers for the Python checks: seeded weights for graph-only
exports, running ONNX Runtime and the mtmi binary, comparing outputs."""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper, TensorProto

MTMI_BIN = os.environ.get("MTMI_BIN", "mtmi")
SHARED = os.environ.get("MTMI_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
REFERENCE = os.path.join(SHARED, "reference")


def fill_external_weights(model, seed=0):
    """Replaces every external-data initializer with seeded random values
    (normal / sqrt(fan_in)), inline.  Returns the model."""
    rng = np.random.default_rng(seed)
    for t in model.graph.initializer:
        if t.data_location != TensorProto.EXTERNAL:
            continue
        shape = tuple(t.dims)
        n = int(np.prod(shape)) if shape else 1
        fan = n // shape[0] if len(shape) > 1 and shape[0] else n
        a = (rng.standard_normal(shape) / np.sqrt(max(fan, 1))).astype(np.float32)
        new = numpy_helper.from_array(a, t.name)
        t.CopyFrom(new)
    return model


def save_model(model, path):
    """Saves with large tensors as external data beside it (like exporters)."""
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=os.path.basename(path) + ".data", size_threshold=1024)


def run_ort(path, feeds, threads=0):
    import onnxruntime as ort
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def run_mtmi(path, inputs, extra=(), workdir=None):
    """Runs `mtmi infer` on a list of numpy inputs; returns {name: array}."""
    d = workdir or tempfile.mkdtemp(prefix="mtmi_")
    args = [MTMI_BIN, "infer", path]
    for i, x in enumerate(inputs):
        p = os.path.join(d, f"in{i}.npy")
        np.save(p, x)
        args += ["--input", p]
    args += ["-o", os.path.join(d, "out")] + list(extra)
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"mtmi infer failed ({r.returncode}): {r.stderr.strip()}")
    m = onnx.load(path, load_external_data=False)
    res = {}
    for o in m.graph.output:
        fn = o.name.replace("/", "_").replace("\\", "_").replace(":", "_").replace(" ", "_")
        res[o.name] = np.load(os.path.join(d, "out", fn + ".npy"))
    return res


def compare(name, got, ref, rel_tol, abs_tol=None):
    """Prints max abs and relative L2 error; returns True if within rel_tol."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        print(f"  {name}: shape {got.shape} != reference {ref.shape}")
        return False
    if not np.all(np.isfinite(got)):
        print(f"  {name}: non-finite values")
        return False
    diff = np.abs(got - ref)
    mx = float(diff.max()) if diff.size else 0.0
    nrm = float(np.linalg.norm(ref))
    rel = float(np.linalg.norm(got - ref) / nrm) if nrm > 0 else mx
    ok = rel <= rel_tol and (abs_tol is None or mx <= abs_tol)
    print(f"  {name}: max abs {mx:.3e}  rel L2 {rel:.3e}  {'ok' if ok else 'FAIL'} (tol {rel_tol:g})")
    return ok


def optimized_ops(path):
    """The optimized graph's op histogram from `mtmi info` ({op: count})."""
    r = subprocess.run([MTMI_BIN, "info", path], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"mtmi info failed: {r.stderr.strip()}")
    for line in r.stdout.splitlines():
        if line.startswith("ops optimized"):
            return {k: int(v) for k, v in re.findall(r"([\w.]+)=(\d+)", line.split(":", 1)[1])}
    raise RuntimeError("no 'ops optimized' line in mtmi info:\n" + r.stdout + r.stderr)
