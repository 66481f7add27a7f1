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


def run_ort(path, feeds, threads=0, config=None):
    """ONNX Runtime on the CPU; config: session configuration entries."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    for k, v in (config or {}).items():
        so.add_session_config_entry(k, v)
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


def compare(name, got, ref, rtol, atol):
    """Per element: |got - ref| <= atol + rtol * |ref| everywhere, shapes
    equal, all values finite.  Prints the largest absolute error, the worst
    element (index, got, reference) and the share of its tolerance it uses,
    so a test's margin is visible in its log.  Returns True if within."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        print(f"  {name}: shape {got.shape} != reference {ref.shape}  FAIL")
        return False
    if not np.all(np.isfinite(got)):
        print(f"  {name}: {int(np.sum(~np.isfinite(got)))} non-finite values  FAIL")
        return False
    if got.size == 0:
        print(f"  {name}: empty  FAIL")
        return False
    diff = np.abs(got - ref)
    allowed = atol + rtol * np.abs(ref)
    use = diff / allowed
    w = tuple(int(i) for i in np.unravel_index(int(np.argmax(use)), use.shape))
    bad = int(np.sum(diff > allowed))
    ok = bad == 0
    print(f"  {name}: max abs {float(diff.max()):.3e}, worst element {w} got {got[w]:.7g} ref {ref[w]:.7g} "
          f"uses {float(use[w]) * 100:.1f}% of its tolerance (atol {atol:g} + rtol {rtol:g}*|ref|)"
          f"{'' if ok else f'; {bad} of {got.size} elements outside'}  {'ok' if ok else 'FAIL'}")
    return ok


def check_classes(name, got_logits, ref_logits, tol, axis=1, min_decided=0.9, min_agree=None):
    """Per-pixel class agreement from logits (before argmax): every pixel
    whose reference top-two margin exceeds 2 * tol (tol: the largest logit
    error the comparison allows, so that no error within it can flip the
    class) must have the reference's class, and at least min_decided of the
    pixels must be so decided (a tolerance too loose to decide most pixels
    is itself a failure); min_agree, if given, bounds the agreement over all
    pixels (for FP16, whose tolerance leaves many pixels undecided)."""
    g = np.asarray(got_logits, dtype=np.float64)
    r = np.asarray(ref_logits, dtype=np.float64)
    if g.shape != r.shape:
        print(f"  {name}: shape {g.shape} != reference {r.shape}  FAIL")
        return False
    top2 = np.sort(r, axis=axis)
    margin = np.take(top2, -1, axis=axis) - np.take(top2, -2, axis=axis)
    same = np.argmax(g, axis=axis) == np.argmax(r, axis=axis)
    decided = margin > 2 * tol
    flipped = int(np.sum(decided & ~same))
    frac, agree = float(decided.mean()), float(same.mean())
    ok = flipped == 0 and frac >= (min_decided or 0) and (min_agree is None or agree >= min_agree)
    need = [f"decided >= {min_decided * 100:g}%"] if min_decided else []
    need += [f"agreement >= {min_agree * 100:g}%"] if min_agree is not None else []
    print(f"  {name}: class agreement {agree * 100:.4f}% of {same.size} pixels; {frac * 100:.2f}% decided (top-2 margin > "
          f"{2 * tol:.3g}), {flipped} of them flipped{' (need ' + ', '.join(need) + ')' if need else ''}  "
          f"{'ok' if ok else 'FAIL'}")
    return ok


def nondegenerate(name, seg_logits=None, depth=None, min_classes=8, min_share=0.01, min_spread=0.3, axis=1):
    """A reference output that can tell results apart: the class map (argmax
    of seg_logits over `axis`) has >= min_classes classes that each cover
    >= min_share of the pixels, and depth's 1st..99th percentile spread is
    >= min_spread.  Checked on each test's own reference before comparing,
    so that a change of weights or inputs cannot silently weaken the test."""
    ok = True
    if seg_logits is not None:
        cls = np.argmax(np.asarray(seg_logits), axis=axis).ravel()
        share = np.bincount(cls, minlength=np.asarray(seg_logits).shape[axis]) / cls.size
        n = int(np.sum(share >= min_share))
        good = n >= min_classes
        print(f"  {name}: reference class map has {n} classes covering >= {min_share * 100:g}% of pixels each "
              f"(largest {share.max() * 100:.1f}%; need {min_classes})  {'ok' if good else 'DEGENERATE'}")
        ok &= good
    if depth is not None:
        d = np.asarray(depth, dtype=np.float64).ravel()
        p1, p99 = np.percentile(d, 1), np.percentile(d, 99)
        good = p99 - p1 >= min_spread
        print(f"  {name}: reference depth 1st..99th percentile {p1:.3f}..{p99:.3f} (spread {p99 - p1:.3f}, "
              f"need {min_spread:g})  {'ok' if good else 'DEGENERATE'}")
        ok &= good
    return bool(ok)


def need_shared(what="../shared/reference"):
    """The reference exports and images are always present in CI: their
    absence is a failure with a clear message, never a skip."""
    for sub in ("reference", "images"):
        if not os.path.isdir(os.path.join(SHARED, sub)):
            print(f"FAIL: {os.path.join(SHARED, sub)} not found ({what} needs the shared folder beside the "
                  f"repository; set MTMI_SHARED to its path)")
            sys.exit(1)


def test_seed(default):
    """The seed of a test's random data: $MTMI_TEST_SEED if set, else the
    test's fixed default; printed so that any run can be repeated."""
    v = os.environ.get("MTMI_TEST_SEED")
    seed = int(v) if v else default
    print(f"seed {seed} (set MTMI_TEST_SEED to change)")
    return seed


def optimized_ops(path):
    """The optimized graph's op histogram from `mtmi info` ({op: count})."""
    r = subprocess.run([MTMI_BIN, "info", path], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"mtmi info failed: {r.stderr.strip()}")
    for line in r.stdout.splitlines():
        if line.startswith("ops optimized"):
            return {k: int(v) for k, v in re.findall(r"([\w.]+)=(\d+)", line.split(":", 1)[1])}
    raise RuntimeError("no 'ops optimized' line in mtmi info:\n" + r.stdout + r.stderr)


def error_problems(returncode, stderr, must_contain=(), outputs=(), tmpdirs=(), want_rc=None):
    """What is wrong with a failure that must be one 'mtmi: error:' line:
    exit code want_rc (any positive one when None), the words in it, none
    of `outputs` written and no temporary file ('.tmp.') left under
    tmpdirs.  Returns (problems, the message line)."""
    lines = [l for l in stderr.splitlines() if l.strip()]
    problems = []
    if want_rc is None and (not isinstance(returncode, int) or returncode <= 0):
        problems.append(f"exit code {returncode} (want > 0; negative = killed by a signal)")
    elif want_rc is not None and returncode != want_rc:
        problems.append(f"exit code {returncode} (want {want_rc}; negative = killed by a signal)")
    if len(lines) != 1 or not lines[0].startswith("mtmi: error: "):
        problems.append(f"stderr is not one 'mtmi: error:' line: {lines[:4]}")
    msg = lines[0] if lines else ""
    for w in must_contain:
        if w not in msg:
            problems.append(f"message lacks '{w}': {msg}")
    for o in outputs:
        if os.path.exists(o):
            problems.append(f"output {o} exists")
    left = [os.path.join(r, f) for d in tmpdirs for r, _, fs in os.walk(d) for f in fs if ".tmp." in f]
    if left:
        problems.append(f"temporary files left: {left}")
    return problems, msg


class Checks:
    """A test's assertions: check(cond, msg) counts a failure and prints it
    ('FAIL: msg'); finish(name) prints the verdict and exits 1 on any."""

    def __init__(self):
        self.failures = 0

    def __call__(self, cond, msg):
        if not cond:
            self.failures += 1
            print("FAIL:", msg)

    def finish(self, name):
        print(f"{name}:", "ok" if not self.failures else f"{self.failures} failures")
        sys.exit(1 if self.failures else 0)


def hash64(data, h=0xCBF29CE484222325):
    """mt_hash64 (src/core/files.c) with MT_HASH_SEED: a saved plan's checksum."""
    m = (1 << 64) - 1
    n = len(data) - len(data) % 8
    for i in range(0, n, 8):
        h = ((h ^ int.from_bytes(data[i:i + 8], "little")) * 0x100000001B3) & m
        h ^= h >> 29
    for c in data[n:]:
        h = ((h ^ c) * 0x100000001B3) & m
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & m
    h ^= h >> 33
    return h


def rewrite_plan(src, dst, pattern, repl):
    """The saved plan src (mtmi build) with its first match of the bytes
    regex pattern replaced by repl (re.sub's), written to dst with a valid
    checksum: a plan that says something else but is not damaged."""
    d = open(src, "rb").read()
    body = d[: d.rindex(b"checksum ")]
    new, n = re.subn(pattern, repl, body, count=1)
    assert n == 1, f"{pattern!r} not in {src}"
    with open(dst, "wb") as f:
        f.write(new + b"checksum %016x\n" % hash64(new))
