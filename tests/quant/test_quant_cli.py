"""Bad input through `mtmi calibrate` and `mtmi accuracy`: one-line errors
naming what and where, non-zero exits, no crash, no partial cache; and a
cache written by calibrate read back by accuracy with --override."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import mtmi_testutil as tu


def run(*args):
    r = subprocess.run([tu.MTMI_BIN] + [str(a) for a in args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr.strip()


def main():
    ok = True

    def expect_fail(args, want, what):
        nonlocal ok
        rc, out, err = run(*args)
        good = rc not in (0, -11, -6, 134, 139) and rc > 0 and want in err and err.count("\n") == 0
        print(f"  {what:44s} rc={rc} {'ok' if good else 'FAIL'}: {err[:150]}")
        ok &= good

    with tempfile.TemporaryDirectory() as d:
        rng = np.random.default_rng(tu.test_seed(0))
        w = numpy_helper.from_array((rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32), "w")
        g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
                               helper.make_node("Relu", ["c"], ["y"], name="relu")], "m",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
        model = os.path.join(d, "m.onnx")
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), model)
        xs = []
        for k in range(3):
            p = os.path.join(d, f"x{k}.npy")
            np.save(p, rng.standard_normal((3, 8, 8)).astype(np.float32))
            xs.append(p)
        cache = os.path.join(d, "good.cache")
        rc, out, err = run("calibrate", model, "--images", xs[0], "--images", xs[1], "-o", cache, "--subgraph", "all")
        print("  calibrate:", out.strip() or err)
        ok &= rc == 0 and open(cache).readline().startswith("TRT-")
        rc, out, err = run("accuracy", model, "--cache", cache, "--images", xs[2], "--override", "x=0.05", "--check-api")
        print("  accuracy with --override:", "ok" if rc == 0 else "FAIL " + err)
        ok &= rc == 0

        def cache_file(name, text):
            p = os.path.join(d, name)
            with open(p, "w") as f:
                f.write(text)
            return p

        acc = ["accuracy", model, "--images", xs[0], "--cache"]
        expect_fail(acc + [cache_file("a.cache", "x: 3cb9c64a\n")], "a.cache:1: expected a header", "no header")
        expect_fail(acc + [cache_file("b.cache", "TRT-8601-EntropyCalibration2\nx: 3cb9c64a\ny 3cb9c64a\n")], "b.cache:3:", "line without ':'")
        expect_fail(acc + [cache_file("c.cache", "TRT-8601-EntropyCalibration2\nx: -1\n")], "c.cache:2:", "bad hex")
        expect_fail(acc + [cache_file("d.cache", "TRT-8601-EntropyCalibration2\nx: bf800000\n")], "d.cache:2: tensor 'x': scale bf800000 is -1", "negative scale")
        expect_fail(acc + [cache_file("e.cache", "TRT-8601-EntropyCalibration2\nx: 7fc00000\n")], "e.cache:2:", "NaN scale")
        expect_fail(acc + [cache_file("f.cache", "TRT-8601-EntropyCalibration2\nx: 3cb9c64a\nnope: 3cb9c64a\n")],
                    "f.cache:3: tensor 'nope' is not in the model", "unknown tensor")
        expect_fail(acc + [cache_file("g.cache", "TRT-8601-EntropyCalibration2\nc: 3cb9c64a\n")], "no convolution", "no input scale")
        expect_fail(acc + [os.path.join(d, "missing.cache")], "missing.cache", "missing cache")
        with open(os.path.join(d, "bin.cache"), "wb") as f:
            f.write(b"TRT-8601-EntropyCalibration2\n\x00\xff\x13: 12\n")
        expect_fail(acc + [os.path.join(d, "bin.cache")], "bin.cache", "binary garbage")
        expect_fail(["accuracy", model, "--images", xs[0], "--cache", cache, "--override", "x=-2"], "x=-2", "negative override")

        out = os.path.join(d, "new.cache")
        cal = ["calibrate", model, "--images", xs[0], "-o", out]
        expect_fail(cal + ["--method", "kl"], "unknown method 'kl'", "unknown method")
        expect_fail(cal + ["--method", "percentile:120"], "percentile", "percentile out of range")
        expect_fail(cal + ["--subgraph", "nose"], "subgraph 'nose'", "unknown subgraph")
        expect_fail(cal + ["--override", "nope=0.1"], "'nope' is not in the model", "override of an unknown tensor")
        expect_fail(["calibrate", model, "--images", os.path.join(d, "none"), "-o", out], "none", "missing images")
        bad = os.path.join(d, "bad.npy")
        np.save(bad, np.zeros((3, 5, 5), np.float32))
        expect_fail(["calibrate", model, "--images", bad, "-o", out], "bad.npy: expected float32 3x8x8", "input of the wrong size")
        trunc = os.path.join(d, "t.png")
        with open(trunc, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n\x00\x00")
        expect_fail(["calibrate", model, "--images", trunc, "-o", out], "t.png", "truncated PNG")
        leftovers = [f for f in os.listdir(d) if f.startswith("new.cache")]
        print("  no partial cache files:", "ok" if not leftovers else f"FAIL {leftovers}")
        ok &= not leftovers
        expect_fail(["calibrate", model, "--images", xs[0], "-o", os.path.join(d, "no", "dir", "x.cache")], "x.cache", "unwritable output")
    print("bad-input checks passed" if ok else "bad-input checks FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
