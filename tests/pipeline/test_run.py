"""`mtmi run` and `mtmi bench` end to end on a small model (64x64): output
files (class-map PNGs, .npy, vis, the seed format's .bin) with their shapes
and types, manifest.json, agreement with `mtmi infer`, the class map equal to
the argmax of the logits, the int8 logits equal to the quantization `run`
always wrote, --sync == pipelined bit for bit, a slow writer (bounded memory,
no frame lost), an interrupted run (only complete files), JSON and trace
reports, and clean one-line failures (injected stage error, corrupt PNG,
missing device, unknown stage) with no partial files."""
import json
import os
import signal
import struct
import time
import subprocess
import sys
import tempfile
import zlib

import numpy as np

import mtmi_testutil as tu

tmp = tempfile.mkdtemp(prefix="mtmi_run_")
failures = []
passed = 0


def check(cond, msg):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(msg)
        print("FAIL", msg)


def mtmi(*args, timeout=300):
    return subprocess.run([tu.MTMI_BIN] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def png_bytes(w, h, ct, depth, raw_rows, plte=None):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    s = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ct, 0, 0, 0))
    if plte:
        s += chunk(b"PLTE", plte)
    s += chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + r for r in raw_rows)))
    return s + chunk(b"IEND", b"")


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    return struct.unpack(">II", head[16:24])


def no_tmp_files(d):
    return [n for n in os.listdir(d) if ".tmp" in n]


# --- a small model and a folder of PNGs of every kind
model = os.path.join(tmp, "tiny.onnx")
r = mtmi("make-model", "-o", model, "--size", "64x64", "--seed", "5")
if r.returncode != 0:
    print("make-model failed:", r.stderr)
    sys.exit(1)
imgs = os.path.join(tmp, "imgs")
os.makedirs(imgs)
rng = np.random.default_rng(0)
rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
rgb[:20] = [70, 130, 180]  # some structure
open(os.path.join(imgs, "a_rgb.png"), "wb").write(png_bytes(64, 64, 2, 8, [rgb[y].tobytes() for y in range(64)]))
gray = rng.integers(0, 256, (96, 128), dtype=np.uint8)  # other aspect: centre-cropped
open(os.path.join(imgs, "b_gray.png"), "wb").write(png_bytes(128, 96, 0, 8, [gray[y].tobytes() for y in range(96)]))
idx = (np.arange(40 * 40).reshape(40, 40) % 3).astype(np.uint8)
open(os.path.join(imgs, "c_pal.png"), "wb").write(
    png_bytes(40, 40, 3, 8, [idx[y].tobytes() for y in range(40)], plte=bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])))
rgba16 = rng.integers(0, 65536, (70, 70, 4), dtype=np.uint16).astype(">u2")
open(os.path.join(imgs, "d_rgba16.png"), "wb").write(png_bytes(70, 70, 6, 16, [rgba16[y].tobytes() for y in range(70)]))
stems = ["a_rgb", "b_gray", "c_pal", "d_rgba16"]

# --- run: files, sizes, reports
out = os.path.join(tmp, "out")
rep, trace = os.path.join(tmp, "rep.json"), os.path.join(tmp, "trace.json")
place = "encoder=cpu/fp32,seg=cpu:1/fp32,depth=cpu:1/fp32"
r = mtmi("run", "--model", model, "--images", imgs, "--place", place, "--threads", "2", "--frames", 8, "-o", out,
         "--json", rep, "--trace", trace)
check(r.returncode == 0, f"run failed: {r.stderr.strip()}")
print(r.stdout)
loops = [l for l in r.stdout.splitlines() if l.startswith("loop: ")]
check(len(loops) == 8 and " encoder: " in loops[0] and " heads: " in loops[0] and " frame: " in loops[0],
      f"loop lines: {loops[:2]}")
check("summary:" in r.stdout and "end to end" in r.stdout and "memory:" in r.stdout, "summary block missing")
def png_chunks(path):
    """(width, height, bit depth, colour type, IDAT bytes, IEND seen)."""
    d = open(path, "rb").read()
    i, idat, end, w, h, bd, ct = 8, b"", False, 0, 0, 0, 0
    while i + 8 <= len(d):
        n, = struct.unpack(">I", d[i:i + 4])
        t, c = d[i + 4:i + 8], d[i + 8:i + 8 + n]
        if t == b"IHDR":
            w, h, bd, ct = struct.unpack(">IIBB", c[:10])
        elif t == b"IDAT":
            idat += c
        end |= t == b"IEND"
        i += 12 + n
    return w, h, bd, ct, idat, end


def png_gray(path):
    """Decodes an 8-bit grayscale, unfiltered-or-filtered PNG (what mtmi writes)."""
    w, h, bd, ct, idat, _ = png_chunks(path)
    assert bd == 8 and ct == 0, (bd, ct)
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, w + 1)
    out = np.zeros((h, w), np.int32)
    prev = np.zeros(w, np.int32)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        cur = np.zeros(w, np.int32)
        for x in range(w):
            a = cur[x - 1] if x else 0
            b, c = prev[x], (prev[x - 1] if x else 0)
            if f == 0: p = 0
            elif f == 1: p = a
            elif f == 2: p = b
            elif f == 3: p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + p) & 255
        out[y] = prev = cur
    return out.astype(np.uint8)


def png_complete(path):
    """Every chunk through IEND present and the pixel data all there."""
    try:
        w, h, bd, ct, idat, end = png_chunks(path)
        return end and len(zlib.decompress(idat)) == h * (w * {0: 1, 2: 3, 6: 4}[ct] * bd // 8 + 1)
    except Exception:  # noqa: BLE001
        return False


for s in stems:
    cls, dep, vis = (os.path.join(out, f"{s}_{k}") for k in ("classes.png", "depth.npy", "vis.png"))
    check(os.path.exists(cls) and png_size(cls) == (64, 64), f"{s}: classes.png size")
    if os.path.exists(dep):
        d = np.load(dep)
        check(d.dtype == np.float32 and d.shape == (64, 64), f"{s}: depth.npy is {d.dtype} {d.shape}")
    else:
        check(False, f"{s}: no depth.npy")
    # input | classes | depth, 64 high, and the legend strip (2 rows of 12 px)
    check(os.path.exists(vis) and png_size(vis) == (192, 88), f"{s}: vis.png size {png_size(vis) if os.path.exists(vis) else None}")
    check(not os.path.exists(os.path.join(out, f"{s}_logits.npy")), f"{s}: logits written without --save logits")
check(not no_tmp_files(out), f"temporary files left: {no_tmp_files(out)}")
try:
    man = json.load(open(os.path.join(out, "manifest.json")))
    check(len(man["frames"]) == 4 and [f["stem"] for f in man["frames"]] == stems, f"manifest frames {man.get('frames')}")
    check(set(man["frames"][0]["files"]) == {"classes", "depth", "vis"}, f"manifest files {man['frames'][0]['files']}")
    check(man["placement"] and len(man["stages"]) == 3 and man["mtmi_version"] and len(man["classes"]) == 19, "manifest fields")
    check(man["input"] == {"batch": 1, "height": 64, "width": 64}, f"manifest input {man['input']}")
except Exception as e:  # noqa: BLE001
    check(False, f"manifest: {e}")
try:
    j = json.load(open(rep))
    check(j["frames"] == 8 and j["fps"] > 0 and len(j["stages"]) == 3 and j["inflight"] == 2, "json fields")
    check([s["name"] for s in j["stages"]][0] == "encoder" and j["latency_ms"]["p99"] >= j["latency_ms"]["p50"] > 0,
          "json stages/latency")
    check(j["results"] == "classes,depth:fp32" and j["d2h_bytes_per_frame"] == 0, f"json results {j.get('results')}")
except Exception as e:  # noqa: BLE001
    check(False, f"json report: {e}")
try:
    t = json.load(open(trace))
    xs = [e for e in t["traceEvents"] if e["ph"] == "X" and e.get("cat") == "stage"]
    check(len(xs) == 8 * 3, f"trace: {len(xs)} stage slices")
    check({e["name"] for e in xs} == {"encoder", "seg", "depth"}, "trace stage names")
    check(all(e["dur"] >= 0 and e["ts"] >= 0 for e in xs), "trace times")
    names = [e["args"]["name"] for e in t["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"]
    check(any("encoder" in n for n in names) and any("cpu:1" in n for n in names), f"trace tracks {names}")
except Exception as e:  # noqa: BLE001
    check(False, f"trace: {e}")

# --- agreement with `mtmi infer` on the 64x64 image (the fit is the identity)
mean = np.array([123.675, 116.28, 103.53], np.float32)
inv = np.float32(1) / np.array([58.395, 57.12, 57.375], np.float32)
x = ((rgb.astype(np.float32) - mean) * inv).transpose(2, 0, 1)[None].astype(np.float32)
ref = tu.run_mtmi(model, [x], extra=["--threads", "1"])
seg_ref, depth_ref = ref["seg"][0], ref["depth"][0, 0]
# the reference is discriminative (spread weights: measured 10 classes,
# depth 0.048-0.858), so the exact checks below compare real maps
counts = np.bincount(seg_ref.argmax(0).ravel(), minlength=19)
spread = float(np.percentile(depth_ref, 99) - np.percentile(depth_ref, 1))
check((counts >= 0.01 * counts.sum()).sum() >= 8 and spread >= 0.3,
      f"degenerate reference: {(counts >= 0.01 * counts.sum()).sum()} classes, depth spread {spread:.3f}")
depth = np.load(os.path.join(out, "a_rgb_depth.npy"))
dd = float(np.abs(depth - depth_ref).max())
check(dd <= 1e-5, f"depth vs infer: max diff {dd}")

# --- every form of the results in one run: float logits, their int8 form
# (with its scale), their class map, fp16 depth; and the seed format
def old_seg_bin(x):
    """The int8 logits `mtmi run` always wrote: scale = max|x| / 127 in
    double, x / scale rounded half to even, clamped to +-127."""
    m = float(np.abs(x).max())
    sc = m / 127.0 if m > 0 and np.isfinite(m) else 1.0
    return np.rint(np.clip(x.astype(np.float64) / sc, -127, 127)).astype(np.int8), sc


def run_forms(outdir, *extra):
    r = mtmi("run", "--model", model, "--images", imgs, "--place", place, "--threads", "2", "-o", outdir, "--quiet", *extra)
    check(r.returncode == 0, f"run {' '.join(extra)} failed: {r.stderr.strip()}")
    return r


out_f = os.path.join(tmp, "out_f32")
run_forms(out_f, "--save", "classes,logits,depth", "--logits", "fp32", "--depth", "fp16")
out_q8 = os.path.join(tmp, "out_q8")
run_forms(out_q8, "--save", "logits")
out_seed = os.path.join(tmp, "out_seed")
run_forms(out_seed, "--format", "seed")
try:
    man_q = json.load(open(os.path.join(out_q8, "manifest.json")))
    scales = {f["stem"]: f["logits_scale"] for f in man_q["frames"]}
    for s in stems:
        lf = np.load(os.path.join(out_f, f"{s}_logits.npy"))
        check(lf.dtype == np.float32 and lf.shape == (19, 64, 64), f"{s}: fp32 logits.npy {lf.dtype} {lf.shape}")
        cls = png_gray(os.path.join(out_f, f"{s}_classes.png"))
        check(np.array_equal(cls, lf.argmax(0)), f"{s}: class map != argmax of the logits ({int((cls != lf.argmax(0)).sum())} px)")
        d16 = np.load(os.path.join(out_f, f"{s}_depth.npy"))
        check(d16.dtype == np.float16 and d16.shape == (64, 64), f"{s}: fp16 depth.npy {d16.dtype} {d16.shape}")
        check(np.array_equal(d16, np.load(os.path.join(out, f"{s}_depth.npy")).astype(np.float16)), f"{s}: fp16 depth != fp32 depth rounded")
        q = np.load(os.path.join(out_q8, f"{s}_logits.npy"))
        want, sc = old_seg_bin(lf)
        check(q.dtype == np.int8 and q.shape == (19, 64, 64), f"{s}: int8 logits.npy {q.dtype} {q.shape}")
        check(np.array_equal(q, want), f"{s}: int8 logits differ from the old _seg.bin bytes in {int((q != want).sum())} values")
        check(scales[s] == np.float32(sc), f"{s}: manifest scale {scales[s]} != {sc}")
        seg_bin = np.fromfile(os.path.join(out_seed, f"{s}_seg.bin"), np.int8)
        check(seg_bin.size == 19 * 64 * 64 and np.array_equal(seg_bin.reshape(19, 64, 64), want), f"{s}: seed _seg.bin bytes")
        dep_bin = np.fromfile(os.path.join(out_seed, f"{s}_depth.bin"), np.float32)
        check(np.array_equal(dep_bin.reshape(64, 64), np.load(os.path.join(out, f"{s}_depth.npy"))), f"{s}: seed _depth.bin bytes")
        check(not os.path.exists(os.path.join(out_q8, f"{s}_depth.npy")), f"{s}: depth written without --save depth")
    sc = scales["a_rgb"]
    lf = np.load(os.path.join(out_f, "a_rgb_logits.npy"))
    ds = float(np.abs(lf - seg_ref).max())
    check(ds <= 1e-4 * max(1.0, float(np.abs(seg_ref).max())), f"fp32 logits vs infer: max diff {ds}")
    print(f"vs infer: depth max diff {dd:.2e}, logits max diff {ds:.2e}; int8 scale {sc:.3e}")
except Exception as e:  # noqa: BLE001
    check(False, f"result forms: {e}")

# --- a slow writer: the pipeline waits for free jobs (bounded memory), and
# no frame is lost
out_slow = os.path.join(tmp, "out_slow")
many = os.path.join(tmp, "many")
os.makedirs(many)
a_png = open(os.path.join(imgs, "a_rgb.png"), "rb").read()
for i in range(24):
    open(os.path.join(many, f"f{i:02d}.png"), "wb").write(a_png)
r = mtmi("run", "--model", model, "--images", many, "--place", place, "--threads", "2", "-o", out_slow, "--workers", "2",
         "--test-slow-writer", "200", "--save", "classes,depth")
check(r.returncode == 0, f"slow writer run failed: {r.stderr.strip()}")
io_line = [l for l in r.stdout.splitlines() if l.startswith("io: ")]
# 2 workers hold at most 4 jobs: the application waited for free jobs
# instead of queueing frames without bound (200 ms a write, so that the
# engine outruns the writers even on a loaded machine: at 40 ms it did not)
check(io_line and "2 worker threads" in io_line[0] and "4 write jobs" in io_line[0] and "waited 0.0 ms" not in io_line[0],
      f"slow writer: {io_line}")
check(sorted(n for n in os.listdir(out_slow) if n.endswith("_classes.png")) == [f"f{i:02d}_classes.png" for i in range(24)],
      "slow writer: a frame's files are missing")
try:
    check(len(json.load(open(os.path.join(out_slow, "manifest.json")))["frames"]) == 24, "slow writer: manifest frames")
except Exception as e:  # noqa: BLE001
    check(False, f"slow writer manifest: {e}")

# --- interrupted: SIGINT / SIGTERM mid-run leave only complete files
for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
    out_int = os.path.join(tmp, f"out_int{int(sig)}")
    p = subprocess.Popen([tu.MTMI_BIN, "run", "--model", model, "--images", many, "--place", place, "--threads", "2", "-o", out_int,
                          "--workers", "2", "--test-slow-writer", "150", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # signal once the run writes (its handlers are in place by then): a fixed
    # sleep raced the start-up on a loaded machine (default action, -15)
    t_end = time.time() + 60
    while time.time() < t_end and p.poll() is None and not (os.path.isdir(out_int) and os.listdir(out_int)):
        time.sleep(0.05)
    time.sleep(0.3)
    p.send_signal(sig)
    try:
        _, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        check(False, f"signal {int(sig)}: run did not stop")
        continue
    check(p.returncode == code, f"signal {int(sig)}: exit {p.returncode}, expected {code} ({err.decode().strip()[-200:]})")
    left = no_tmp_files(out_int) if os.path.isdir(out_int) else []
    check(not left, f"signal {int(sig)}: temporary files left: {left}")
    for n in os.listdir(out_int) if os.path.isdir(out_int) else []:
        path = os.path.join(out_int, n)
        if n.endswith(".npy"):
            check(np.load(path).shape == (64, 64), f"signal {int(sig)}: {n} incomplete")
        elif n.endswith(".png"):
            check(png_complete(path), f"signal {int(sig)}: {n} incomplete")

# --- --sync gives the same bytes as pipelined
out_sync = os.path.join(tmp, "out_sync")
r = mtmi("run", "--model", model, "--images", imgs, "--place", place, "--threads", "2", "--sync", "-o", out_sync, "--quiet")
check(r.returncode == 0, f"run --sync failed: {r.stderr.strip()}")
for s in stems:
    for k in ("classes.png", "depth.npy", "vis.png"):
        a, b = os.path.join(out, f"{s}_{k}"), os.path.join(out_sync, f"{s}_{k}")
        check(os.path.exists(b) and open(a, "rb").read() == open(b, "rb").read(), f"--sync differs: {s}_{k}")

# --- synthetic frames with the built-in network
out_syn = os.path.join(tmp, "out_syn")
r = mtmi("run", "--size", "64x64", "--frames", 3, "-o", out_syn, "--quiet")
check(r.returncode == 0, f"run (built-in, synthetic) failed: {r.stderr.strip()}")
check(all(os.path.exists(os.path.join(out_syn, f"synth_00{i}_vis.png")) for i in range(3)), "synthetic outputs")


# --- INT8 heads on CPU devices with a calibration cache from `mtmi calibrate`
cache = os.path.join(tmp, "tiny.cache")
r = mtmi("calibrate", model, "--images", imgs, "-o", cache)
check(r.returncode == 0, f"calibrate failed: {r.stderr.strip()}")
out_q = os.path.join(tmp, "out_q")
r = mtmi("run", "--model", model, "--images", imgs, "--place", "encoder=cpu,seg=cpu:1/int8,depth=cpu:1/int8", "--cache", cache,
         "--threads", "2", "-o", out_q, "--json", os.path.join(tmp, "q.json"), "--quiet")
check(r.returncode == 0, f"run int8 failed: {r.stderr.strip()}")
if r.returncode == 0:
    qj = json.load(open(os.path.join(tmp, "q.json")))
    check([s["device"] for s in qj["stages"]] == ["cpu/fp32", "cpu:1/int8", "cpu:1/int8"], f"int8 stages {qj['stages']}")
    # INT8 heads vs FP32 over the four images, bounded near what they reach
    # (measured: depth max 0.051-0.077, mean 0.0069-0.0088, class agreement
    # 0.928-0.982 with the spread weights)
    for s in stems:
        dq = np.load(os.path.join(out_q, f"{s}_depth.npy"))
        d32 = np.load(os.path.join(out, f"{s}_depth.npy"))
        cq = png_gray(os.path.join(out_q, f"{s}_classes.png"))
        c32 = png_gray(os.path.join(out, f"{s}_classes.png"))
        err, mean, agree_q = float(np.abs(dq - d32).max()), float(np.abs(dq - d32).mean()), float((cq == c32).mean())
        check(np.isfinite(dq).all() and err <= 0.11 and mean <= 0.013, f"{s}: int8 depth error max {err:.4f} mean {mean:.4f}")
        check(agree_q >= 0.90, f"{s}: int8 class agreement {agree_q:.4f}")
        print(f"int8 heads {s}: depth max abs error vs fp32 {err:.4f}, mean {mean:.4f}, class agreement {agree_q:.4f}")
expect_args = ["run", "--model", model, "--images", imgs, "--place", "seg=cpu/int8", "-o", os.path.join(tmp, "err_q")]
r = mtmi(*expect_args)
check(r.returncode == 1 and "calibration cache" in r.stderr, f"int8 without cache: {r.stderr.strip()}")

# --- `--place auto` measures the candidates and keeps the fastest
r = mtmi("run", "--model", model, "--images", imgs, "--place", "auto", "--frames", 2, "-o", os.path.join(tmp, "out_auto"))
check(r.returncode == 0, f"run --place auto failed: {r.stderr.strip()}")
cands = [l for l in r.stdout.splitlines() if l.startswith("auto: ")]
check(len(cands) >= 2 and all(" fps" in l for l in cands), f"auto candidates: {cands}")
check(any(l.startswith("loop: 0 ") for l in r.stdout.splitlines()), "auto: frames numbered from 0 after measuring")
check(os.path.exists(os.path.join(tmp, "out_auto", "a_rgb_vis.png")), "auto: outputs")
# with a cache, INT8 heads on the CPU are among the measured candidates
r = mtmi("run", "--model", model, "--images", imgs, "--place", "auto", "--cache", cache, "--frames", 2, "-o",
         os.path.join(tmp, "out_auto_q"))
check(r.returncode == 0, f"run --place auto --cache failed: {r.stderr.strip()}")
cands = [l for l in r.stdout.splitlines() if l.startswith("auto: ")]
q8 = [l for l in cands if "seg=cpu/int8" in l or "seg=cpu:1/int8" in l]
check(len(q8) >= 1 and all(" fps" in l for l in q8), f"auto with a cache: no measured INT8-heads candidate in {cands}")
print(f"auto with a cache: {len(cands)} candidates, {len(q8)} with INT8 heads on the CPU")

# --- failures: one line, exit 1, the frame and stage, no hang, no partial files
def expect_fail(name, args, words, outdir):
    try:
        r = mtmi(*args, timeout=120)
    except subprocess.TimeoutExpired:
        check(False, f"{name}: hung")
        return
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    check(r.returncode == 1, f"{name}: exit {r.returncode}")
    check(len(lines) == 1 and lines[0].startswith("mtmi: error: "), f"{name}: stderr {lines}")
    for w in words:
        check(lines and w in lines[0], f"{name}: '{w}' not in {lines}")
    if outdir and os.path.isdir(outdir):
        check(not no_tmp_files(outdir), f"{name}: temporary files left")
    print(f"{name}: {lines[0] if lines else ''}")


err_out = os.path.join(tmp, "err")
expect_fail("injected", ["run", "--model", model, "--images", imgs, "--place", place, "--threads", "2", "--frames", 6,
                         "--inject-error", "2:3", "-o", err_out, "--quiet"], ["frame 3", "stage 'depth'", "cpu:1"], err_out)
expect_fail("injected encoder", ["run", "--model", model, "--images", imgs, "--frames", 6, "--inject-error", "0:0",
                                 "-o", err_out, "--quiet"], ["frame 0", "stage 'encoder'"], err_out)
bad = os.path.join(tmp, "bad")
os.makedirs(bad)
good = open(os.path.join(imgs, "a_rgb.png"), "rb").read()
open(os.path.join(bad, "a.png"), "wb").write(good)
open(os.path.join(bad, "b_trunc.png"), "wb").write(good[: len(good) // 2])
expect_fail("truncated png", ["run", "--model", model, "--images", bad, "-o", err_out, "--quiet"], ["b_trunc.png"], err_out)
expect_fail("unknown stage", ["run", "--model", model, "--place", "sky=cpu", "-o", err_out], ["sky"], err_out)
expect_fail("bad device", ["run", "--model", model, "--place", "encoder=tpu:0", "-o", err_out], ["tpu:0"], err_out)
expect_fail("empty folder", ["run", "--model", model, "--images", os.path.join(tmp, "out_syn_none"), "-o", err_out],
            ["out_syn_none"], err_out)
r = mtmi("run", "--model", model, "--place", "encoder=cuda:0/fp16", "-o", err_out, "--frames", 1, "--quiet", timeout=300)
if r.returncode != 0:
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    check(len(lines) == 1 and "cuda:0" in lines[0], f"cuda unavailable: {lines}")
    print("cuda:", lines[0] if lines else "")

# --- bench
bj = os.path.join(tmp, "bench.json")
r = mtmi("bench", "--model", model, "--place", place, "--threads", "2", "--frames", 6, "--warmup", 1, "--compare",
         "--json", bj, "--quiet")
check(r.returncode == 0, f"bench failed: {r.stderr.strip()}")
print(r.stdout)
check("pipelining speedup" in r.stdout and "p99 ms" in r.stdout, "bench table")
try:
    b = json.load(open(bj))
    check(b["command"] == "bench" and b["frames_measured"] == 6 and b["speedup"] > 0 and b["sync"]["fps"] > 0, "bench json")
except Exception as e:  # noqa: BLE001
    check(False, f"bench json: {e}")

print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
