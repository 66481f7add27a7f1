"""Bad input gets a one-line error, a non-zero exit, no crash and no
partial output file (SPEC "Bad input")."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, TensorProto, numpy_helper

import mtmi_testutil as tu

SEED = tu.test_seed(0)

tmp = tempfile.mkdtemp(prefix="mtmi_bad_")
failures = []
passed = 0


def small_model(op="Relu", opset=17, shape=(1, 2, 8, 8), extra_init=None, external=False):
    X = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.full(shape[1:], 0.5, np.float32), "w")
    nodes = [helper.make_node("Add", ["x", "w"], ["a"], name="add0"),
             helper.make_node(op, ["a"], ["y"], name="the_node")]
    m = helper.make_model(helper.make_graph(nodes, "g", [X], [Y], [w]),
                          opset_imports=[helper.make_opsetid("", opset)])
    return m


def expect_error(name, args, must_contain=(), outputs=()):
    """Runs mtmi; requires exit 1, one stderr line, the words, no outputs."""
    global passed
    r = subprocess.run([tu.MTMI_BIN] + args, capture_output=True, text=True, errors="replace", timeout=300)
    problems, msg = tu.error_problems(r.returncode, r.stderr, must_contain, outputs, [tmp])
    if problems:
        failures.append(name)
        print(f"FAIL {name}: " + "; ".join(problems))
    else:
        passed += 1
        print(f"ok   {name}: {msg}")


good = os.path.join(tmp, "good.onnx")
onnx.save(small_model(), good)
x = os.path.join(tmp, "x.npy")
np.save(x, np.random.default_rng(SEED).standard_normal((1, 2, 8, 8)).astype(np.float32))
out = os.path.join(tmp, "out")

# The good model runs (so the failures below are about the input).
r = subprocess.run([tu.MTMI_BIN, "infer", good, "--input", x, "-o", out], capture_output=True, text=True)
if r.returncode != 0:
    failures.append("good model")
    print("FAIL good model:", r.stderr)
else:
    passed += 1
    print("ok   good model runs")
    import shutil
    shutil.rmtree(out)

data = open(good, "rb").read()
trunc = os.path.join(tmp, "trunc.onnx")
open(trunc, "wb").write(data[: len(data) // 2])
expect_error("truncated onnx", ["infer", trunc, "--input", x, "-o", out], ["trunc.onnx"], [out])

png = os.path.join(tmp, "fake.onnx")
open(png, "wb").write(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
expect_error("wrong magic", ["info", png], ["fake.onnx"])

empty = os.path.join(tmp, "empty.onnx")
open(empty, "wb").write(b"")
expect_error("empty file", ["info", empty], ["empty"])

rng = np.random.default_rng(SEED + 1)
for k in range(20):
    b = bytearray(data)
    for _ in range(8):
        b[int(rng.integers(len(b)))] = int(rng.integers(256))
    p = os.path.join(tmp, f"corrupt{k}.onnx")
    open(p, "wb").write(bytes(b))
    r = subprocess.run([tu.MTMI_BIN, "infer", p, "--input", x, "-o", out], capture_output=True, text=True, errors="replace", timeout=120)
    if r.returncode < 0 or (r.returncode != 0 and len(r.stderr.strip().splitlines()) != 1):
        failures.append(f"corrupt{k}")
        print(f"FAIL corrupt{k}: exit {r.returncode}: {r.stderr[:300]}")
    else:
        passed += 1
    if os.path.exists(out):
        import shutil
        shutil.rmtree(out)
print(f"ok   20 randomly corrupted models: no crash")

missing = os.path.join(tmp, "missing_ext.onnx")
m = small_model()
tu.save_model(m, missing)
os.remove(missing + ".data") if os.path.exists(missing + ".data") else None
# save_model only externalizes > 1 KiB: force external data on w.
m = small_model(shape=(1, 64, 8, 8))
onnx.save_model(m, missing, save_as_external_data=True, location="missing_ext.onnx.data", size_threshold=0)
os.remove(missing + ".data")
x64 = os.path.join(tmp, "x64.npy")
np.save(x64, np.zeros((1, 64, 8, 8), np.float32))
expect_error("missing external data", ["infer", missing, "--input", x64, "-o", out], ["missing_ext.onnx.data", "'w'"], [out])

unsup = os.path.join(tmp, "unsup.onnx")
onnx.save(small_model(op="Celu"), unsup)  # a real op we do not claim
bogus = os.path.join(tmp, "bogus.onnx")
mb = small_model(op="Relu")
mb.graph.node[1].op_type = "FrobnicateXYZ"
onnx.save(mb, bogus)
expect_error("unsupported op", ["infer", bogus, "--input", x, "-o", out], ["the_node", "FrobnicateXYZ", "opset 17"], [out])

wrong = os.path.join(tmp, "wrong.npy")
np.save(wrong, np.zeros((1, 2, 16, 16), np.float32))
expect_error("mismatched input shape", ["infer", good, "--input", wrong, "-o", out], ["'x'", "1x2x8x8", "1x2x16x16"], [out])

badnpy = os.path.join(tmp, "bad.npy")
open(badnpy, "wb").write(b"\x93NUMPY\x01\x00" + b"\xff" * 4)
expect_error("corrupt npy", ["infer", good, "--input", badnpy, "-o", out], ["bad.npy"], [out])

expect_error("missing model file", ["info", os.path.join(tmp, "nope.onnx")], ["nope.onnx"])
expect_error("unknown command", ["frobnicate"], ["frobnicate"])

# A graph whose node reads a tensor nothing produces.
dang = os.path.join(tmp, "dangling.onnx")
md = small_model()
md.graph.node[1].input[0] = "ghost"
onnx.save(md, dang, )
expect_error("dangling input", ["info", dang], ["ghost", "the_node"])

print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
