"""Hostile files and careless use through the command line (issue 13): every
case is built here, run with a time limit (a hang fails), and must give a
one-line error naming what and where (or, where the input is honest, the
right result) with no crash, no partial file and no input overwritten.

Classes: crashes (deep nesting, .npy size overflow), files outside the
model's folder, hangs on special files, memory bombs, invalid models,
silent data loss (colliding outputs, -o equal to an input, long paths,
stale calibration features), interrupted runs, unclear errors."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import mtmi_testutil as tu

tmp = tempfile.mkdtemp(prefix="mtmi_hard_")
failures = []
passed = 0
TIMEOUT = 120  # a hang shows as a timeout, never as a stuck suite


def run(args, timeout=TIMEOUT, **kw):
    """Runs mtmi; a timeout is reported as rc 'timeout'.  Returns
    (rc, stdout, stderr, max RSS in MiB)."""
    t0 = time.time()
    p = subprocess.Popen([tu.MTMI_BIN] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, errors="replace", **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return "timeout", out, err, 0
    # ru_maxrss of this child alone: wait4 was done by communicate, so use
    # the difference in the children's maximum instead (coarse, enough for
    # "gigabytes or not").
    import resource
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return p.returncode, out, err, rss


def record(name, problems, detail=""):
    global passed
    if problems:
        failures.append(name)
        print(f"FAIL {name}: " + "; ".join(problems))
    else:
        passed += 1
        print(f"ok   {name}: {detail}")


def leftovers(*dirs):
    return [os.path.join(r, f) for d in dirs for r, _, fs in os.walk(d) for f in fs if ".tmp." in f]


def expect_error(name, args, must_contain=(), outputs=(), unchanged=(), timeout=TIMEOUT):
    """Exit 1 with one 'mtmi: error:' line holding the words; none of
    `outputs` exists; every file in `unchanged` keeps its bytes; no
    temporary file left in tmp."""
    before = {f: open(f, "rb").read() for f in unchanged}
    rc, out, err, _ = run(args, timeout=timeout)
    problems, msg = tu.error_problems(rc, err, must_contain, outputs, [tmp], want_rc=1)
    if rc == "timeout":
        problems.insert(0, f"hung (killed after {timeout} s)")
    for f, data in before.items():
        if not os.path.exists(f) or open(f, "rb").read() != data:
            problems.append(f"input {f} was changed")
    record(name, problems, msg)
    return msg


def expect_ok(name, args, timeout=TIMEOUT):
    rc, out, err, rss = run(args, timeout=timeout)
    problems = [] if rc == 0 else [f"exit {rc}: {err.strip()[:300]}"]
    return problems, out, err


def new_dir(name):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    return d


# ------------------------------------------------------------ raw protobuf
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, payload):
    """A length-delimited field."""
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def vfield(num, n):
    return varint(num << 3) + varint(n)


def nest(inner, layers, times):
    """`inner` wrapped `times` over in `layers` (from the inside out), each a
    (prefix bytes, field number): the nested field comes last in its
    message.  Linear time: sizes first, then the bytes outside in."""
    sizes = [len(inner)]
    seq = layers * times
    for prefix, num in seq:
        n = sizes[-1]
        sizes.append(len(prefix) + len(varint(num << 3 | 2)) + len(varint(n)) + n)
    parts = []
    for k in range(len(seq) - 1, -1, -1):
        prefix, num = seq[k]
        parts.append(prefix + varint(num << 3 | 2) + varint(sizes[k]))
    return b"".join(parts) + inner


def raw_model(graph, ir=8, opsets=((b"", 17),)):
    m = vfield(1, ir) + field(7, graph)
    for dom, ver in opsets:
        m += field(8, field(1, dom) + vfield(2, ver))
    return m


# ----------------------------------------------------------- small models
def model_relu(shape=(1, 2, 8, 8), opset=17):
    X = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g", [X], [Y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def external_tensor(name, shape):
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.FLOAT
    t.dims.extend(shape)
    t.data_location = TensorProto.EXTERNAL
    return t


def model_ext(d, location, shape=(1, 64, 8, 8)):
    """x + w with w external at `location` (relative to d)."""
    X = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = external_tensor("w", shape[1:])
    for k, v in (("location", location), ("offset", "0"), ("length", str(4 * int(np.prod(shape[1:]))))):
        e = w.external_data.add()
        e.key, e.value = k, v
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"], name="add")], "g", [X], [Y], [w])
    p = os.path.join(d, "m.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
    return p


def sha(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


x_npy = os.path.join(tmp, "x.npy")
np.save(x_npy, np.random.default_rng(0).standard_normal((1, 2, 8, 8)).astype(np.float32))
relu = os.path.join(tmp, "relu.onnx")
onnx.save(model_relu(), relu)

# ==================================================================== crashes
# Types inside types: TypeProto{sequence_type: {elem_type: TypeProto{...}}}
# 100k deep (protobuf-c would recurse 200k times).
t = nest(b"", [(b"", 1), (b"", 4)], 100000)
vi = field(1, b"x") + field(2, t)
out_vi = field(1, b"y")
deep_type = os.path.join(tmp, "deep_type.onnx")
open(deep_type, "wb").write(raw_model(field(1, field(1, b"x") + field(2, b"y") + field(4, b"Relu")) + field(11, vi) +
                                       field(12, out_vi)))
expect_error("deeply nested types", ["info", deep_type], ["deep_type.onnx", "nested more than"])

# Graphs inside If attributes, 50k deep.
# graph{node: NodeProto{input c, output y, If, attribute: {then_branch,
# type GRAPH, g: graph{...}}}}
if_layers = [(field(1, b"then_branch") + vfield(20, 5), 6), (field(1, b"c") + field(2, b"y") + field(4, b"If"), 5), (b"", 1)]
g = nest(field(1, field(2, b"y") + field(4, b"Relu")), if_layers, 50000)
deep_graph = os.path.join(tmp, "deep_graph.onnx")
open(deep_graph, "wb").write(raw_model(g + field(11, field(1, b"c")) + field(12, field(1, b"y"))))
expect_error("deeply nested If graphs", ["info", deep_graph], ["deep_graph.onnx", "nested more than"])

# A modest, honest nesting depth still loads as far as the op check.
g = nest(field(1, field(1, b"x") + field(2, b"y") + field(4, b"Relu")), if_layers, 8)
shallow = os.path.join(tmp, "shallow_if.onnx")
bool_vi = field(1, b"c") + field(2, field(1, vfield(1, TensorProto.BOOL) + field(2, field(1, vfield(1, 1)))))
open(shallow, "wb").write(raw_model(g + field(11, bool_vi) + field(12, field(1, b"y"))))
expect_error("8 nested If graphs reach the operator check", ["simplify", shallow, os.path.join(tmp, "if_out.onnx")],
             ["shallow_if.onnx", "If", "not supported"], [os.path.join(tmp, "if_out.onnx")])

# .npy whose element count times item size overflows 64 bits.
big = os.path.join(tmp, "big.npy")
hdr = b"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387905, 4), }"
hdr += b" " * (63 - (10 + len(hdr)) % 64) + b"\n"
open(big, "wb").write(b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr + b"\0" * 64)
expect_error("npy size overflow", ["infer", relu, "--input", big, "-o", os.path.join(tmp, "o_big")], ["big.npy", "too large"],
             [os.path.join(tmp, "o_big")])

# ======================================================== outside the folder
d = new_dir("ext_link")
secret = os.path.join(tmp, "secret.bin")
open(secret, "wb").write(b"SECRETSECRET" * 2000)
os.symlink(secret, os.path.join(d, "w.bin"))
m = model_ext(d, "w.bin")
x64 = os.path.join(tmp, "x64.npy")
np.save(x64, np.zeros((1, 64, 8, 8), np.float32))
expect_error("external data: symbolic link out of the folder", ["infer", m, "--input", x64, "-o", os.path.join(d, "o")],
             ["m.onnx", "'w'", "outside the model's folder"], [os.path.join(d, "o")])
simp = os.path.join(tmp, "simp_out.onnx")
expect_error("simplify does not copy a linked file's bytes", ["simplify", m, simp], ["outside the model's folder"], [simp, simp + ".data"])

m = model_ext(d, "../secret.bin")
expect_error("external data: ../ out of the folder", ["info", m], ["outside the model's folder"])

d = new_dir("ext_dotdot")
open(os.path.join(d, "w..bin"), "wb").write(np.full((64, 8, 8), 0.5, np.float32).tobytes())
os.makedirs(os.path.join(d, "sub"))
m = model_ext(d, "w..bin")
o = os.path.join(d, "o")
problems, out, err = expect_ok("honest w..bin", ["infer", m, "--input", x64, "-o", o])
if not problems and not np.allclose(np.load(os.path.join(o, "y.npy")), 0.5):
    problems.append("wrong output")
record("external data named w..bin is read", problems)
m = model_ext(d, "sub/../w..bin")
problems, out, err = expect_ok("sub/../w..bin", ["info", m])
record("external data at sub/../w..bin (inside) is read", problems)

# ====================================================================== hangs
d = new_dir("fifo")
os.mkfifo(os.path.join(d, "w.bin"))
m = model_ext(d, "w.bin")
expect_error("FIFO as external data", ["info", m], ["w.bin", "FIFO"], timeout=60)
fifo_npy = os.path.join(d, "x.npy")
os.mkfifo(fifo_npy)
expect_error("FIFO as .npy input", ["infer", relu, "--input", fifo_npy, "-o", os.path.join(d, "o")], ["x.npy", "FIFO"], timeout=60)
imgs = new_dir("fifo_imgs")
os.mkfifo(os.path.join(imgs, "a.png"))
conv = os.path.join(tmp, "conv.onnx")
rng = np.random.default_rng(0)
wconv = numpy_helper.from_array((rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32), "w")
gconv = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
                           helper.make_node("Relu", ["c"], ["y"], name="relu")], "m",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [wconv])
onnx.save(helper.make_model(gconv, opset_imports=[helper.make_opsetid("", 17)]), conv)
expect_error("FIFO as .png in an image folder", ["calibrate", conv, "--images", imgs, "-o", os.path.join(tmp, "fifo.cache")],
             ["a.png", "FIFO"], [os.path.join(tmp, "fifo.cache")], timeout=60)
d = new_dir("ext_dir")
os.makedirs(os.path.join(d, "w.bin"))
m = model_ext(d, "w.bin")
expect_error("a folder as external data", ["info", m], ["w.bin", "folder"])

# ============================================================== memory bombs
shape_c = numpy_helper.from_array(np.array([32768, 32768], np.int64), "shape")
gb = helper.make_graph([helper.make_node("ConstantOfShape", ["shape"], ["big"], name="bomb",
                                         value=numpy_helper.from_array(np.array([1.0], np.float32))),
                        helper.make_node("ReduceSum", ["big"], ["s"], name="sum", keepdims=0),
                        helper.make_node("Add", ["x", "s"], ["y"], name="add")], "g",
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shape_c])
bomb = os.path.join(tmp, "fold_bomb.onnx")
onnx.save(helper.make_model(gb, opset_imports=[helper.make_opsetid("", 17)]), bomb)
t0 = time.time()
rc, out, err, rss = run(["info", bomb])
problems = []
if rc != 0:  # info prints what it can and says why the optimized form is missing
    problems.append(f"info exit {rc}: {err.strip()[:200]}")
if "bomb" not in out or "budget" not in out or "4.00 GiB" not in out:
    problems.append(f"report does not name the node, size and budget: {out[-400:]}")
if time.time() - t0 > 30:
    problems.append(f"took {time.time() - t0:.0f} s")
record(f"info on a {os.path.getsize(bomb)}-byte ConstantOfShape bomb", problems,
       [l for l in out.splitlines() if "budget" in l][:1])
one = os.path.join(tmp, "one.npy")
np.save(one, np.ones(1, np.float32))
expect_error("infer on the folding bomb", ["infer", bomb, "--input", one, "-o", os.path.join(tmp, "ob")], ["node 'bomb'", "budget"],
             [os.path.join(tmp, "ob")])

d = new_dir("rand_bomb")
Xr = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 40000])
wr = external_tensor("w", [40000, 40000])
e = wr.external_data.add()
e.key, e.value = "location", "missing.bin"
gr = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g", [Xr],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [wr])
rb = os.path.join(d, "m.onnx")
onnx.save(helper.make_model(gr, opset_imports=[helper.make_opsetid("", 17)]), rb)
expect_error("random weights bomb", ["simplify", rb, os.path.join(d, "o.onnx"), "--random-weights", "1"], ["'w'", "5.96 GiB", "budget"],
             [os.path.join(d, "o.onnx")])

rc, out, err, _ = run(["infer", relu, "--input", x_npy, "-o", os.path.join(tmp, "o_threads"), "--threads", "100000"])
record("--threads 100000 is capped with a warning", [] if rc == 0 and "warning: --threads 100000" in err and "using" in err
       else [f"rc {rc}: {err.strip()[:200]}"], err.strip())

# ============================================================ invalid models
mo = model_relu()
del mo.opset_import[:]
noop = os.path.join(tmp, "no_opset.onnx")
open(noop, "wb").write(mo.SerializeToString())
expect_error("no opset_import", ["info", noop], ["no_opset.onnx", "opset_import"])
mo = model_relu(opset=1000)
hi = os.path.join(tmp, "opset1000.onnx")
open(hi, "wb").write(mo.SerializeToString())
expect_error("opset 1000", ["info", hi], ["opset1000.onnx", "opset 1000"])
mo = model_relu()
mo.ir_version = 99
ir = os.path.join(tmp, "ir99.onnx")
open(ir, "wb").write(mo.SerializeToString())
expect_error("IR version 99", ["info", ir], ["ir99.onnx", "IR version 99"])

# ========================================================= silent data loss
# Outputs "a/b" and "a_b" map to one file name: both are kept apart.
gx = helper.make_graph([helper.make_node("Relu", ["x"], ["a/b"], name="r1"), helper.make_node("Neg", ["x"], ["a_b"], name="r2")], "g",
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
                       [helper.make_tensor_value_info("a/b", TensorProto.FLOAT, None),
                        helper.make_tensor_value_info("a_b", TensorProto.FLOAT, None)])
coll = os.path.join(tmp, "collide.onnx")
onnx.save(helper.make_model(gx, opset_imports=[helper.make_opsetid("", 17)]), coll)
o = os.path.join(tmp, "o_coll")
problems, out, err = expect_ok("colliding outputs", ["infer", coll, "--input", x_npy, "-o", o])
x = np.load(x_npy)
if not problems:
    files = sorted(os.listdir(o))
    if files != ["a_b.npy", "a_b_0.npy"]:
        problems.append(f"files {files}")
    elif not (np.array_equal(np.load(os.path.join(o, "a_b.npy")), -x) and
              np.array_equal(np.load(os.path.join(o, "a_b_0.npy")), np.maximum(x, 0))):
        problems.append("contents swapped or wrong")
    if "a/b" not in out or "a_b_0.npy" not in out:
        problems.append(f"the report does not say which file holds which output: {out}")
record("infer: outputs 'a/b' and 'a_b' get distinct files", problems, out.strip().replace("\n", " | "))

def conv_model(scale):
    # A shared part (conv) and two heads so that features are cached.
    w1 = numpy_helper.from_array((np.ones((4, 3, 1, 1)) * scale).astype(np.float32), "w1")
    g = helper.make_graph([helper.make_node("Conv", ["x", "w1"], ["f"], name="enc"),
                           helper.make_node("Relu", ["f"], ["seg"], name="h1"),
                           helper.make_node("Sigmoid", ["f"], ["depth"], name="h2")], "m",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("seg", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("depth", TensorProto.FLOAT, None)], [w1])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


# -o equal to an input.
d = new_dir("same")
cp = os.path.join(d, "conv.onnx")
shutil.copy(conv, cp)
xs = []
for k in range(2):
    p = os.path.join(d, f"x{k}.npy")
    np.save(p, rng.standard_normal((3, 8, 8)).astype(np.float32))
    xs.append(p)
expect_error("calibrate -o MODEL", ["calibrate", cp, "--images", xs[0], "-o", cp], ["refusing to overwrite"], unchanged=[cp])
expect_error("calibrate -o an image", ["calibrate", cp, "--images", d, "-o", xs[1]], ["refusing to overwrite"], unchanged=xs)
expect_error("simplify IN IN", ["simplify", cp, cp], ["refusing to overwrite"], unchanged=[cp])
os.symlink(cp, os.path.join(d, "alias.onnx"))
expect_error("simplify IN (another name of IN)", ["simplify", cp, os.path.join(d, "alias.onnx")], ["refusing to overwrite"],
             unchanged=[cp])
enc = os.path.join(d, "encoder.onnx")
open(enc, "wb").write(conv_model(1.0))
expect_error("split D/encoder.onnx -o D", ["split", enc, "-o", d], ["refusing to overwrite", "encoder.onnx"], unchanged=[enc])
yin = os.path.join(d, "y.npy")
np.save(yin, np.zeros((1, 2, 8, 8), np.float32))
expect_error("infer -o DIR holding the input as DIR/y.npy", ["infer", relu, "--input", yin, "-o", d], ["refusing to overwrite", "y.npy"],
             unchanged=[yin])
# External weights of the input model are inputs too.
d = new_dir("same_ext")
open(os.path.join(d, "out.onnx.data"), "wb").write(np.full((64, 8, 8), 0.5, np.float32).tobytes())
m = model_ext(d, "out.onnx.data")
expect_error("simplify over the model's weights file", ["simplify", m, os.path.join(d, "out.onnx"), "--external-data", "16"],
             ["refusing to overwrite", "out.onnx.data"], unchanged=[os.path.join(d, "out.onnx.data")])

# Paths longer than the system allows: an error, never a truncated name.
deep = os.path.join(tmp, *(["d" * 200] * 22))
expect_error("output path over PATH_MAX", ["infer", relu, "--input", x_npy, "-o", deep], ["longer than the system allows"])
longname = os.path.join(tmp, "n" * 300)
expect_error("output name over NAME_MAX", ["calibrate", conv, "--images", xs[0], "-o", longname, "--no-feature-cache"], ["too long"])

# Feature cache keyed by content: a different model with the same size and
# time must not reuse the first one's features.
d = new_dir("stale")
model = os.path.join(d, "m.onnx")
imgs = new_dir("stale_imgs")
for k in range(3):
    np.save(os.path.join(imgs, f"i{k}.npy"), rng.standard_normal((3, 8, 8)).astype(np.float32))


a, b = conv_model(1.0), conv_model(3.0)
assert len(a) == len(b)
feat = os.path.join(d, "feat")
open(model, "wb").write(a)
os.utime(model, (1e9, 1e9))
rc1, out1, err1, _ = run(["calibrate", model, "--images", imgs, "-o", os.path.join(d, "a.cache"), "--features", feat,
                          "--subgraph", "seg", "--method", "minmax"])
open(model, "wb").write(b)
os.utime(model, (1e9, 1e9))
rc2, out2, err2, _ = run(["calibrate", model, "--images", imgs, "-o", os.path.join(d, "b.cache"), "--features", feat,
                          "--subgraph", "seg", "--method", "minmax"])
rc3, out3, err3, _ = run(["calibrate", model, "--images", imgs, "-o", os.path.join(d, "c.cache"), "--no-feature-cache",
                          "--subgraph", "seg", "--method", "minmax"])
problems = []
if (rc1, rc2, rc3) != (0, 0, 0):
    problems.append(f"exit codes {rc1} {rc2} {rc3}: {err1} {err2} {err3}")
elif open(os.path.join(d, "b.cache")).read() != open(os.path.join(d, "c.cache")).read():
    problems.append("the second model's scales came from the first model's features")
elif "0 with cached features" not in out2:
    problems.append(f"features reused: {out2}")
rc4, out4, _, _ = run(["calibrate", model, "--images", imgs, "-o", os.path.join(d, "d.cache"), "--features", feat,
                       "--subgraph", "seg", "--method", "minmax"])
if rc4 != 0 or "3 with cached features" not in out4:
    problems.append(f"the same model and images again did not reuse its features: {out4}")
record("calibration features are keyed by content, not size and time", problems, out2.strip())

# ========================================================== interrupted runs
d = new_dir("interrupt")
imgs = new_dir("interrupt_imgs")
for k in range(400):
    np.save(os.path.join(imgs, f"i{k:03d}.npy"), rng.standard_normal((3, 64, 64)).astype(np.float32))
big_model = os.path.join(d, "m.onnx")
w1 = numpy_helper.from_array((rng.standard_normal((64, 3, 3, 3)) * 0.3).astype(np.float32), "w1")
w2 = numpy_helper.from_array((rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32), "w2")
gi = helper.make_graph([helper.make_node("Conv", ["x", "w1"], ["f"], pads=[1, 1, 1, 1], name="enc"),
                        helper.make_node("Conv", ["f", "w2"], ["seg"], pads=[1, 1, 1, 1], name="h1"),
                        helper.make_node("Sigmoid", ["f"], ["depth"], name="h2")], "m",
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
                       [helper.make_tensor_value_info("seg", TensorProto.FLOAT, None),
                        helper.make_tensor_value_info("depth", TensorProto.FLOAT, None)], [w1, w2])
onnx.save(helper.make_model(gi, opset_imports=[helper.make_opsetid("", 17)]), big_model)
for sig, want in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
    cache = os.path.join(d, f"c{want}.cache")
    feat = os.path.join(d, f"feat{want}")
    # The test runner may have been started with SIGINT ignored (a
    # background job): the child gets the default disposition back.
    p = subprocess.Popen([tu.MTMI_BIN, "calibrate", big_model, "--images", imgs, "-o", cache, "--features", feat, "--threads", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # Wait until features are being written, then interrupt.
    t0 = time.time()
    while time.time() - t0 < 60 and not (os.path.isdir(feat) and len(os.listdir(feat)) >= 5):
        time.sleep(0.01)
    p.send_signal(sig)
    try:
        p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
    problems = []
    if p.returncode != want:
        problems.append(f"exit {p.returncode}, want {want}")
    if leftovers(d):
        problems.append(f"temporaries left: {leftovers(d)}")
    if os.path.exists(cache):
        problems.append("a cache was written")
    nfeat = len(os.listdir(feat)) if os.path.isdir(feat) else 0
    for f in os.listdir(feat) if os.path.isdir(feat) else []:
        if os.path.getsize(os.path.join(feat, f)) != os.path.getsize(os.path.join(feat, os.listdir(feat)[0])):
            problems.append(f"incomplete feature file {f}")
    record(f"{signal.Signals(sig).name} during calibrate", problems, f"exit {p.returncode}, {nfeat} complete feature files, no temporaries")

# ============================================================ unclear errors
gc = helper.make_graph([helper.make_node("Add", ["x", "b"], ["a"], name="first"), helper.make_node("Relu", ["a"], ["b"], name="second"),
                        helper.make_node("Relu", ["a"], ["y"], name="out")], "g",
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
cyc = os.path.join(tmp, "cycle.onnx")
onnx.save(helper.make_model(gc, opset_imports=[helper.make_opsetid("", 17)]), cyc)
expect_error("cycle names the file and a node", ["info", cyc], ["cycle.onnx", "cycle through node '", "depends on its own output"])
gs = helper.make_graph([helper.make_node("Add", ["x", "s"], ["s"], name="selfish"), helper.make_node("Relu", ["s"], ["y"], name="out")],
                       "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
selfl = os.path.join(tmp, "self_loop.onnx")
onnx.save(helper.make_model(gs, opset_imports=[helper.make_opsetid("", 17)]), selfl)
expect_error("self-loop is a cycle", ["info", selfl], ["self_loop.onnx", "cycle", "selfish", "reads its own output 's'"])

d = new_dir("inf")
ok_img = os.path.join(d, "a_ok.npy")
bad_img = os.path.join(d, "b_inf.npy")
np.save(ok_img, np.ones((3, 8, 8), np.float32))
arr = np.ones((3, 8, 8), np.float32)
arr[0, 0, 0] = np.inf
np.save(bad_img, arr)
expect_error("infinite calibration value names the image", ["calibrate", conv, "--images", d, "-o", os.path.join(tmp, "inf.cache"),
             "--no-feature-cache"], ["b_inf.npy", "infinite"], [os.path.join(tmp, "inf.cache")])

# --json with a quote and a backslash in file names.
d = new_dir('js"on\\dir')
cache = os.path.join(d, 'c"a\\che.cache')
problems, out, err = expect_ok("calibrate for json", ["calibrate", conv, "--images", xs[0], "-o", cache, "--subgraph", "all",
                                                      "--no-feature-cache"])
rc, out, err, _ = run(["accuracy", conv, "--cache", cache, "--images", xs[1], "--json", "-", "--no-feature-cache"])
try:
    j = json.loads(out)
    if j["cache"] != cache:
        problems.append(f"cache name came back as {j['cache']!r}")
except Exception as ex:
    problems.append(f"not valid JSON ({ex}): {out[:200]} {err[:200]}")
record("accuracy --json with a quote and backslash in names", problems, out.strip()[:120])

# A 100k-line calibration cache is read in linear time.
big_cache = os.path.join(tmp, "big.cache")
with open(big_cache, "w") as f:
    f.write("TRT-8601-EntropyCalibration2\n")
    for k in range(100000):
        f.write(f"t{k}: 3cb9c64a\n")
    f.write("t5: 3cb9c64a\n")
t0 = time.time()
msg = expect_error("100k-line cache with a duplicate", ["accuracy", conv, "--cache", big_cache, "--images", xs[0]],
                   ["big.cache:100002", "'t5' appears twice (first on line 7)"])
el = time.time() - t0
record("100k-line cache parsed in linear time", [] if el < 20 else [f"took {el:.1f} s"], f"{el:.2f} s")

print(f"{passed} passed, {len(failures)} failed")
if not failures:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if failures else 0)
