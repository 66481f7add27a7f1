"""`mtmi run` and `mtmi bench` end to end on a small model (64x64): output
files and their sizes, agreement with `mtmi infer`, --sync == pipelined bit
for bit, JSON and trace reports, and clean one-line failures (injected stage
error, corrupt PNG, missing device, unknown stage) with no partial files."""
import json
import os
import struct
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
for s in stems:
    seg, dep, vis = (os.path.join(out, f"{s}_{k}") for k in ("seg.bin", "depth.bin", "vis.png"))
    check(os.path.exists(seg) and os.path.getsize(seg) == 19 * 64 * 64, f"{s}: seg.bin size")
    check(os.path.exists(dep) and os.path.getsize(dep) == 64 * 64 * 4, f"{s}: depth.bin size")
    check(os.path.exists(vis) and png_size(vis) == (192, 64), f"{s}: vis.png size {png_size(vis) if os.path.exists(vis) else None}")
check(not no_tmp_files(out), f"temporary files left: {no_tmp_files(out)}")
try:
    j = json.load(open(rep))
    check(j["frames"] == 8 and j["fps"] > 0 and len(j["stages"]) == 3 and j["inflight"] == 2, "json fields")
    check([s["name"] for s in j["stages"]][0] == "encoder" and j["latency_ms"]["p99"] >= j["latency_ms"]["p50"] > 0,
          "json stages/latency")
    check(len(j["outputs"]) == 4 and all(o["seg_scale"] > 0 for o in j["outputs"]), "json outputs")
    scales = {o["stem"]: o["seg_scale"] for o in j["outputs"]}
except Exception as e:  # noqa: BLE001
    check(False, f"json report: {e}")
    scales = {}
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
depth = np.fromfile(os.path.join(out, "a_rgb_depth.bin"), np.float32).reshape(64, 64)
seg = np.fromfile(os.path.join(out, "a_rgb_seg.bin"), np.int8).reshape(19, 64, 64)
dd = float(np.abs(depth - depth_ref).max())
check(dd <= 1e-5, f"depth vs infer: max diff {dd}")
sc = scales.get("a_rgb", 0)
ds = float(np.abs(seg.astype(np.float32) * sc - seg_ref).max())
check(sc > 0 and ds <= sc * 0.5 + 1e-6, f"seg int8 vs infer: max diff {ds}, scale {sc}")
check(abs(sc - float(np.abs(seg_ref).max()) / 127) <= 1e-6 * max(sc, 1e-6) + 1e-9, f"seg scale {sc}")
agree = float((seg.argmax(0) == seg_ref.argmax(0)).mean())
check(agree >= 0.98, f"class map agreement {agree}")
print(f"vs infer: depth max diff {dd:.2e}, seg max diff {ds:.2e} (scale {sc:.3e}), class agreement {agree:.4f}")

# --- --sync gives the same bytes as pipelined
out_sync = os.path.join(tmp, "out_sync")
r = mtmi("run", "--model", model, "--images", imgs, "--place", place, "--threads", "2", "--sync", "-o", out_sync, "--quiet")
check(r.returncode == 0, f"run --sync failed: {r.stderr.strip()}")
for s in stems:
    for k in ("seg.bin", "depth.bin", "vis.png"):
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
    dq = np.fromfile(os.path.join(out_q, "a_rgb_depth.bin"), np.float32)
    d32 = np.fromfile(os.path.join(out, "a_rgb_depth.bin"), np.float32)
    err = float(np.abs(dq - d32).max())
    check(np.isfinite(dq).all() and err < 0.5, f"int8 depth max error {err}")
    print(f"int8 heads: depth max abs error vs fp32 {err:.4f}")
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
