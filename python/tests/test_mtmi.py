"""The mtmi Python package on the CPU: every entry point against an
independent oracle (ONNX Runtime on the same ONNX file, NumPy, the C
library's documented formulas), and the error paths (mtmi.Error carries
the library's mtmi_last_error() line and status)."""
import os
import re
import struct
import subprocess
import zlib

import numpy as np
import pytest

from pkgtest import H, REPO, W, frames, ort, tu

import mtmi

# mtmi FP32 vs ONNX Runtime on the reference network (docs/TESTING.md:
# reference exports 2e-5 / 7e-6 abs, worst element <= 25 %).
SEG_ATOL, DEPTH_ATOL = 2e-5, 7e-6


def check_vs_ort(label, got, ref):
    """seg and depth per element, the class map on decided pixels, and a
    discriminative reference first."""
    assert tu.nondegenerate(label, ref[0], ref[1]), f"{label}: the reference cannot tell results apart"
    ok = tu.compare(f"{label} seg", got[0], ref[0], 0, SEG_ATOL)
    ok &= tu.compare(f"{label} depth", got[1], ref[1], 0, DEPTH_ATOL)
    ok &= tu.check_classes(f"{label} classes", got[0], ref[0], SEG_ATOL)
    assert ok, f"{label}: outside the tolerance (see the lines above)"


def test_version_and_library():
    """One version everywhere: the package, the library it loaded and the
    header (MTMI_VERSION_MAJOR/MINOR/PATCH) of this tree."""
    hdr = open(os.path.join(REPO, "include", "mtmi.h")).read()
    parts = [re.search(rf"#define MTMI_VERSION_{p} (\d+)", hdr).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    print("library", mtmi.library_path(), mtmi.version(), "package", mtmi.__version__, "header", ".".join(parts))
    assert mtmi.version() == mtmi.__version__ == ".".join(parts)
    want = os.environ.get("MTMI_LIBRARY")
    if want:
        assert os.path.realpath(mtmi.library_path()) == os.path.realpath(want)


def test_model_info(ref_model):
    assert ref_model.inputs == ["input"]
    assert ref_model.outputs == ["seg", "depth"]
    assert ref_model.input_shape(0) == (1, 3, H, W)
    d = ref_model.describe()
    assert "parameters:" in d and "ops optimized" in d and "seg" in d, d
    with pytest.raises(mtmi.Error) as e:
        ref_model.input_shape(5)
    assert e.value.status == mtmi.ERR_ARG and "5" in str(e.value)


def test_plan_cpu_fp32_vs_ort(ref_path, ref_model, seed):
    """The plan on the CPU against ONNX Runtime on the file the library
    wrote, two inputs (and the same plan run twice)."""
    with ref_model.plan(device="cpu", threads=2) as p:
        assert p.output_names == ["seg", "depth"]
        assert p.output_shapes == [(1, 19, H, W), (1, 1, H, W)]
        for k, x in enumerate(frames(seed + 10, 2)):
            got = p.run(x)
            assert [g.dtype for g in got] == [np.float32, np.float32]
            check_vs_ort(f"cpu fp32, input {k}", got, ort(ref_path, x))


def test_plan_input_shapes(tmp_path, seed):
    """input_shapes: a model with symbolic batch, height and width (a
    convolution, and a resize back to the input's size taken from Shape, as
    exporters write dynamic axes) planned at two concrete shapes, against
    ONNX Runtime (tests/api/test_dynamic_shapes.py's tolerance)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) / 5).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b"),
             numpy_helper.from_array(np.array([2], np.int64), "i2"),
             numpy_helper.from_array(np.array([4], np.int64), "i4"),
             numpy_helper.from_array(np.array([0], np.int64), "i0")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Shape", ["r"], ["rs"]),
             helper.make_node("Slice", ["rs", "i0", "i2"], ["nc"]),
             helper.make_node("Shape", ["x"], ["xs"]),
             helper.make_node("Slice", ["xs", "i2", "i4"], ["hw"]),
             helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0),
             helper.make_node("Resize", ["r", "", "", "sizes"], ["y"], mode="linear",
                              coordinate_transformation_mode="half_pixel")]
    graph = helper.make_graph(nodes, "dyn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8, "h", "w"])], inits)
    path = str(tmp_path / "dyn.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with mtmi.load(path) as m:
        assert m.input_shape() == (-1, 3, -1, -1)
        for shape in [(1, 3, 32, 48), (2, 3, 64, 32)]:
            x = rng.standard_normal(shape).astype(np.float32)
            with m.plan(threads=2, input_shapes=[shape]) as p:
                assert p.output_shapes == [(shape[0], 8) + shape[2:]]
                (got,) = p.run(x)
            ref = tu.run_ort(path, {"x": x})["y"]
            assert tu.compare(f"dynamic model at {shape}", got, ref, 2e-6, 2e-6)


def test_errors_carry_last_error(ref_model, tmp_path):
    """Each failure raises mtmi.Error whose text is the library's message
    (as the C library's own user, the command line, prints it) and whose
    status is the library's code."""
    missing = str(tmp_path / "missing.onnx")
    with pytest.raises(mtmi.Error) as e:
        mtmi.load(missing)
    assert e.value.status == mtmi.ERR_IO and e.value.status_name == "i/o error"
    assert str(e.value) == mtmi.last_error()
    assert missing in str(e.value)
    mtmi_bin = os.environ.get("MTMI_BIN")
    if mtmi_bin:
        r = subprocess.run([mtmi_bin, "info", missing], capture_output=True, text=True)
        assert r.stderr.strip() == f"mtmi: error: {e.value}", r.stderr
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x0a\xff\xff\xff not a model")
    with pytest.raises(mtmi.Error) as e:
        mtmi.load(str(bad))
    assert e.value.status == mtmi.ERR_PARSE and str(bad) in str(e.value)

    with pytest.raises(mtmi.Error) as e:
        ref_model.plan(device="tpu:0")
    assert e.value.status == mtmi.ERR_ARG and "tpu" in str(e.value), str(e.value)
    with pytest.raises(mtmi.Error) as e:
        ref_model.plan(precision="int8")
    assert e.value.status == mtmi.ERR_ARG and "calibration cache" in str(e.value), str(e.value)
    with pytest.raises(mtmi.Error) as e:
        ref_model.plan(device="cpu/fp32", precision="fp16")
    assert "disagree" in str(e.value), str(e.value)

    with ref_model.plan(threads=1) as p:
        for bad_input in (np.zeros((1, 3, H + 1, W), np.float32), np.zeros((1, 3, H, W), np.float64)):
            with pytest.raises(mtmi.Error) as e:
                p.run(bad_input)
            print("run with", bad_input.dtype, bad_input.shape, "->", e.value.status_name, e.value)
            assert e.value.status in (mtmi.ERR_SHAPE, mtmi.ERR_ARG) and str(e.value) == mtmi.last_error()
        with pytest.raises(mtmi.Error):
            p.run()
        with pytest.raises(TypeError):
            p.run(np.zeros((1, 3, H, W), np.complex64))
    with pytest.raises(mtmi.Error) as e:
        mtmi.reference_model(height=100, width=96)
    assert e.value.status == mtmi.ERR_ARG and "32" in str(e.value), str(e.value)


def test_calibrate_and_int8(ref_model, tmp_path, seed):
    """calibrate() writes a TensorRT-format cache; an INT8 plan with it
    stays close to FP32 on a held-out frame.  Bounds of test_api (same
    network size, entropy calibration on 2 frames): class agreement >=
    0.95, depth max abs error <= 0.09, mean <= 0.015."""
    cache = str(tmp_path / "calib.cache")
    fr = frames(seed + 200, 3)
    ref_model.calibrate(fr[:2], cache, method="entropy", threads=2)
    lines = open(cache).read().splitlines()
    assert lines[0].startswith("TRT-") and "EntropyCalibration2" in lines[0], lines[0]
    assert len(lines) > 20 and all(re.fullmatch(r"\S+: [0-9a-f]{8}", l) for l in lines[1:]), lines[:3]
    with ref_model.plan(threads=2) as p32, ref_model.plan(threads=2, precision="int8", calibration_cache=cache) as p8:
        f32, i8 = p32.run(fr[2]), p8.run(fr[2])
    assert tu.nondegenerate("FP32, held-out frame", f32[0], f32[1])
    agree = float(np.mean(np.argmax(i8[0], 1) == np.argmax(f32[0], 1)))
    err = np.abs(i8[1].astype(np.float64) - f32[1])
    print(f"INT8 heads vs FP32: class agreement {agree:.4f}, depth max abs error {err.max():.4f}, mean {err.mean():.5f}")
    assert agree >= 0.95 and err.max() <= 0.09 and err.mean() <= 0.015

    mm = str(tmp_path / "minmax.cache")
    ref_model.calibrate(fr[:1], mm, method="minmax", subgraph="seg")
    assert open(mm).readline().startswith("TRT-") and "MinMax" in open(mm).readline()
    with pytest.raises(ValueError):
        ref_model.calibrate(fr[:1], mm, method="kl")
    with pytest.raises(mtmi.Error) as e:
        ref_model.calibrate([fr[0], np.zeros((1, 3, 32, 32), np.float32)], str(tmp_path / "x.cache"))
    assert e.value.status == mtmi.ERR_SHAPE and "frame 1" in str(e.value), str(e.value)
    assert not os.path.exists(tmp_path / "x.cache")


def test_pipeline_submit_collect(ref_model, seed):
    """Frames through a pipeline of CPU stages come back in order with their
    user objects, equal to the plan's outputs (the same kernels: measured
    bit-identical; test_api's bound 2e-6); submitting past the frames in
    flight is refused until one is collected."""
    xs = frames(seed + 100, 5)
    # one thread a plan, as each of the pipeline's two CPU devices gets of
    # its two: the same kernels (a conv's tiles depend on the thread count,
    # and so may the last bits on CPUs without AVX-512)
    with ref_model.plan(threads=1) as p:
        want = [p.run(x) for x in xs]
    with ref_model.pipeline(placement="encoder=cpu:0,seg=cpu:1,depth=cpu:1", frames_in_flight=2, threads=2) as pl:
        assert pl.frames_in_flight == 2
        assert [r.name for r in pl.results] == ["seg", "depth"]
        assert [r.shape for r in pl.results] == [(1, 19, H, W), (1, 1, H, W)]
        done = []
        for k, x in enumerate(xs):
            if k >= 2:
                done.append(pl.collect())
            pl.submit(x, user={"frame": k})
            if k == 1:
                with pytest.raises(mtmi.Error) as e:
                    pl.submit(x, user="too many")
                assert "collect" in str(e.value), str(e.value)
        done += [pl.collect(), pl.collect()]
        with pytest.raises(mtmi.Error) as e:
            pl.collect()
        assert e.value.status == mtmi.ERR_ARG
    assert [u for _, u in done] == [{"frame": k} for k in range(5)]
    for k, (got, _) in enumerate(done):
        assert tu.compare(f"pipeline vs plan, frame {k} seg", got[0], want[k][0], 0, 2e-6)
        assert tu.compare(f"pipeline vs plan, frame {k} depth", got[1], want[k][1], 0, 2e-6)


def test_pipeline_saved_plan(ref_model, ref_path, seed, tmp_path):
    """A pipeline's saved plan: written, read back by a new pipeline that
    takes its placement and input shape (none given) and gives the same
    results bit for bit; refused in one line for another model or another
    placement, and when damaged."""
    x = frames(seed + 400, 1)[0]
    plan = tmp_path / "p.plan"
    with ref_model.pipeline(placement="encoder=cpu:0,seg=cpu:1,depth=cpu:1", threads=2) as pl:
        pl.submit(x)
        want, _ = pl.collect()
        pl.save_plan(plan)
    head = plan.read_bytes()[:200].decode("ascii", "replace")
    assert head.startswith("MTMI saved plan 1\n") and "placement encoder=cpu/fp32,seg=cpu:1/fp32,depth=cpu:1/fp32" in head, head
    with ref_model.pipeline(threads=2, saved_plan=str(plan)) as pl:
        assert [r.shape for r in pl.results] == [(1, 19, H, W), (1, 1, H, W)]
        pl.submit(x)
        got, _ = pl.collect()
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    with pytest.raises(mtmi.Error) as e:
        ref_model.pipeline(placement="cpu", saved_plan=str(plan))
    assert "placement" in str(e.value) and "\n" not in str(e.value), str(e.value)
    with mtmi.reference_model(height=H, width=W, seed=seed + 1) as other:
        with pytest.raises(mtmi.Error) as e:
            other.pipeline(saved_plan=str(plan))
    assert "another model" in str(e.value), str(e.value)
    d = bytearray(plan.read_bytes())
    d[40] ^= 1
    bad = tmp_path / "bad.plan"
    bad.write_bytes(bytes(d))
    with pytest.raises(mtmi.Error) as e:
        ref_model.pipeline(saved_plan=str(bad))
    assert "checksum" in str(e.value) and e.value.status == mtmi.ERR_PARSE, str(e.value)


def test_pipeline_result_forms(ref_model, seed):
    """Result requests: the class map, int8 codes with their scale and fp16
    of seg, float depth; each against NumPy on the plan's float output by
    the header's definitions."""
    x = frames(seed + 300, 1)[0]
    with ref_model.plan(threads=2) as p:
        seg, depth = p.run(x)
    with ref_model.pipeline(placement="cpu", threads=2, results={"seg": ("classes", "int8", "fp16"), "depth": "float"}) as pl:
        names = [r.name for r in pl.results]
        assert names == ["seg:fp16", "seg:int8", "seg:scale", "seg:classes", "depth"], names
        assert [r.dtype for r in pl.results] == [np.float16, np.int8, np.float32, np.uint8, np.float32]
        pl.submit(x)
        (f16, q, scale, cls, d), user = pl.collect()
    assert user is None
    assert tu.compare("depth", d, depth, 0, 2e-6)
    # the first of equal maxima (np.argmax's rule too)
    ref_cls = np.argmax(seg, axis=1).astype(np.uint8)
    assert cls.shape == ref_cls.shape and np.array_equal(cls, ref_cls), f"{np.sum(cls != ref_cls)} pixels differ"
    assert len(np.unique(cls)) >= 8
    # float16, round to nearest even: NumPy's conversion
    assert np.array_equal(f16, seg.astype(np.float16))
    # scale = max|x| / 127 per batch element, q = round-half-even(clamp(x / scale))
    ref_scale = np.float32(np.abs(seg).max()) / np.float32(127)
    assert scale.shape == (1,) and abs(float(scale[0]) - float(ref_scale)) <= 1e-6 * float(ref_scale), (scale, ref_scale)
    ref_q = np.clip(np.rint(seg.astype(np.float64) / float(scale[0])), -127, 127)
    off = np.abs(q.astype(np.int32) - ref_q)
    print(f"int8 codes: {int(np.sum(off > 0))} of {q.size} differ from NumPy's by 1 (rounding ties), max {off.max()}")
    assert off.max() <= 1 and np.mean(off > 0) < 1e-4
    with pytest.raises(ValueError):
        ref_model.pipeline(results={"seg": "jpeg"})
    with pytest.raises(mtmi.Error) as e:
        ref_model.pipeline(results={"sky": "classes"})
    assert "sky" in str(e.value), str(e.value)


def test_split(ref_model, ref_path, tmp_path, seed):
    """split() writes the encoder and one file per head; ONNX Runtime runs
    them; the encoder then the heads give the whole model's outputs."""
    import onnxruntime as ort_

    out = tmp_path / "split"
    ref_model.split(str(out))
    assert sorted(os.listdir(out)) == ["depth.onnx", "encoder.onnx", "seg.onnx"]
    x = frames(seed + 400, 1)[0]
    full = ort(ref_path, x)
    so = ort_.SessionOptions()
    so.intra_op_num_threads = 2
    enc = ort_.InferenceSession(str(out / "encoder.onnx"), so, providers=["CPUExecutionProvider"])
    feats = dict(zip([o.name for o in enc.get_outputs()], enc.run(None, {"input": x})))
    assert len(feats) == 4, list(feats)
    for k, name in enumerate(["seg", "depth"]):
        head = ort_.InferenceSession(str(out / f"{name}.onnx"), so, providers=["CPUExecutionProvider"])
        got = head.run(None, {i.name: feats[i.name] for i in head.get_inputs()})[0]
        assert tu.compare(f"ORT encoder + {name} head vs ORT whole", got, full[k], 0, 1e-6)
    with pytest.raises(mtmi.Error) as e:
        ref_model.split(str(tmp_path / "bad"), cut=["no_such_tensor"])
    assert "no_such_tensor" in str(e.value), str(e.value)
    assert not os.path.exists(tmp_path / "bad") or not os.listdir(tmp_path / "bad")


def test_save_simplified(ref_model, ref_path, tmp_path, seed):
    """save(simplify=True): the folded, fused model written back as standard
    ONNX gives ONNX Runtime the original's outputs (docs/TESTING.md:
    2e-5 / 4e-6)."""
    path = str(tmp_path / "simple.onnx")
    ref_model.save(path, simplify=True)
    import onnx
    orig, simple = onnx.load(ref_path), onnx.load(path)
    print(f"nodes: {len(orig.graph.node)} -> {len(simple.graph.node)}")
    assert len(simple.graph.node) < len(orig.graph.node)
    assert all(n.domain in ("", "ai.onnx") for n in simple.graph.node)
    x = frames(seed + 500, 1)[0]
    a, b = ort(ref_path, x), ort(path, x)
    assert tu.compare("simplified seg", b[0], a[0], 0, 2e-5) and tu.compare("simplified depth", b[1], a[1], 0, 4e-6)


def write_png(path, px):
    """A minimal PNG writer (8-bit gray or RGB), independent of the library."""
    h, w = px.shape[:2]
    ctype = 0 if px.ndim == 2 else 2
    raw = b"".join(b"\x00" + px[y].tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


def normalize(px):
    """The header's normalization, as the library computes it in float32:
    (pixel - mean) * (1 / std), CHW."""
    return ((px.astype(np.float32) - MEAN) * (np.float32(1) / STD)).transpose(2, 0, 1)


def test_load_image(tmp_path, seed):
    """load_image: an RGB PNG at the model's size is normalized exactly;
    a gray one gives three equal channels; downscaled by 2, each pixel is
    the mean of its 2x2 block (bilinear at pixel centres) within rounding;
    a missing file is the library's i/o error."""
    rng = np.random.default_rng(seed)
    px = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    path = str(tmp_path / "rgb.png")
    write_png(path, px)
    x = mtmi.load_image(path, 24, 32)
    assert x.shape == (3, 24, 32) and x.dtype == np.float32
    assert np.array_equal(x, normalize(px)), float(np.abs(x - normalize(px)).max())
    g = rng.integers(0, 256, (24, 32), dtype=np.uint8)
    write_png(str(tmp_path / "gray.png"), g)
    xg = mtmi.load_image(str(tmp_path / "gray.png"), 24, 32)
    assert np.array_equal(xg, normalize(np.repeat(g[:, :, None], 3, axis=2)))
    half = mtmi.load_image(path, 12, 16)
    box = px.astype(np.float64).reshape(12, 2, 16, 2, 3).mean(axis=(1, 3))
    err = np.abs(half - normalize(box))  # within one 8-bit level of the block mean
    print(f"2x downscale vs block mean: max {err.max() * 58:.3f} levels")
    assert err.max() <= 1.0 / 57.0
    with pytest.raises(mtmi.Error) as e:
        mtmi.load_image(str(tmp_path / "none.png"), 24, 32)
    assert e.value.status == mtmi.ERR_IO and "none.png" in str(e.value)
    with pytest.raises(mtmi.Error) as e:
        mtmi.load_image(path, 0, 32)
    assert e.value.status == mtmi.ERR_ARG
