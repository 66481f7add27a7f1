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


def _role(model):
    """{initializer name: role} by the node that reads it, as
    src/graph/weight_init.c decides (see there for the rule)."""
    consumers, outputs = {}, {o.name for o in model.graph.output}
    consts = {t.name for t in model.graph.initializer}
    consts |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    for n in model.graph.node:
        for k, i in enumerate(n.input):
            consumers.setdefault(i, []).append((n, k))

    def reaches_output(v, depth=0):
        if v in outputs:
            return True
        return depth <= 8 and any(c.op_type in ("Resize", "Sigmoid", "Relu") and k == 0 and reaches_output(c.output[0], depth + 1)
                                  for c, k in consumers.get(v, []))

    def only(v):
        c = consumers.get(v, [])
        return c[0][0] if len(c) == 1 else None

    def residual(y):
        c = only(y)
        if c is not None and c.op_type == "Add" and len(c.input) == 2 and (c.input[0] in consts or c.input[1] in consts):
            c = only(c.output[0])
        return c is not None and c.op_type == "Add" and len(c.input) == 2 and not (c.input[0] in consts or c.input[1] in consts)

    roles = {}
    for t in model.graph.initializer:
        c = consumers.get(t.name)
        role = "other"
        if c:
            n, k = c[0]
            op = n.op_type
            if op == "LayerNormalization":
                role = {1: "scale", 2: "shift"}.get(k, "other")
            elif op == "BatchNormalization":
                role = {1: "scale", 2: "shift", 3: "shift", 4: "var"}.get(k, "other")
            elif op == "Conv":
                if k == 2:
                    role = "shift"
                elif k == 1 and len(t.dims) >= 3:
                    role = "classifier" if reaches_output(n.output[0]) else "conv"
            elif op == "MatMul" and k == 1 and len(t.dims) == 2:
                role = "residual" if residual(n.output[0]) else "matmul"
            elif op == "Gemm":
                tb = any(a.name == "transB" and a.i for a in n.attribute)
                role = {1: "gemm_bt" if tb else "matmul", 2: "shift"}.get(k, "other")
            elif op == "Mul":
                role = "scale"
            elif op == "Add":
                role = "shift"
        roles[t.name] = role
    return roles


def spread_weights(shape, role, rng):
    """Seeded values of one weight by its role: the "spread" initialization
    of src/graph/weight_init.c (discriminative outputs: many classes, depth
    over a wide range), with NumPy's generator."""
    z = rng.standard_normal(shape)
    n = int(np.prod(shape)) if shape else 1
    rows = shape[0] if shape and shape[0] else 1
    per = n // rows
    if role == "scale":
        return 1 + 0.1 * z
    if role == "shift":
        return 0.1 * z
    if role == "var":
        return 1 + 0.1 * np.abs(z)
    if role in ("conv", "classifier"):
        gain = np.sqrt(2.0) if role == "conv" else (4.0 if rows == 1 else 2.0)
        w = (z * gain / np.sqrt(per)).reshape(rows, per)
        if role == "classifier" or shape[1] > 3:
            w = w - w.mean(axis=1, keepdims=True)
        return w.reshape(shape)
    if role in ("matmul", "residual", "gemm_bt"):
        k = shape[1] if role == "gemm_bt" else shape[0]
        return z * (0.2 if role == "residual" else 1.0) / np.sqrt(max(k, 1))
    fan = per if len(shape) > 1 else n
    return z / np.sqrt(max(fan, 1))


def fill_external_weights(model, seed=0, init="spread"):
    """Replaces every external-data initializer with seeded random values,
    inline.  init="spread" (default): drawn by role (spread_weights), so the
    network's outputs are discriminative; each tensor from its own
    generator seeded by (seed, crc32 of its name), so the opset-13 form of a
    model gets the opset-17 form's weights.  init="fan_in": normal /
    sqrt(fan_in) for every tensor (`--random-weights`, near-constant
    outputs).  Returns the model."""
    import zlib
    roles = _role(model) if init == "spread" else {}
    rng0 = np.random.default_rng(seed)
    for t in model.graph.initializer:
        if t.data_location != TensorProto.EXTERNAL:
            continue
        shape = tuple(t.dims)
        n = int(np.prod(shape)) if shape else 1
        if init == "spread":
            rng = np.random.default_rng([seed, zlib.crc32(t.name.encode())])
            a = spread_weights(shape, roles.get(t.name, "other"), rng).astype(np.float32)
        else:
            fan = n // shape[0] if len(shape) > 1 and shape[0] else n
            a = (rng0.standard_normal(shape) / np.sqrt(max(fan, 1))).astype(np.float32)
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
