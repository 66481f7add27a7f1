"""`mtmi synth`: the folder layout and formats (RGB, 8-bit train IDs,
16-bit metres x 256), the files' decoded content against the generator's
golden hash (the same scene as test_synth.c's), byte-identical files on a
second run and with --first, what the depth PNG holds where the label is
sky, synth.json, and one-line errors."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import train_mtmi  # noqa: E402  (its PNG reader; no PyTorch needed)

MTMI = os.environ.get("MTMI_BIN", os.path.join(ROOT, "build", "mtmi"))
# tests/synth/test_synth.c's GOLDEN_HASH: FNV-1a 64 of scene (seed 7, index 0)
# at 96x64 (rgb bytes, label bytes, depth as little-endian uint16).
GOLDEN = 0xa76db4c56f628a0c
import mtmi_testutil as tu  # noqa: E402

check = tu.Checks()


def mtmi(*args):
    return subprocess.run([MTMI] + [str(a) for a in args], capture_output=True, text=True, timeout=600)


def fnv(data, h=0xcbf29ce484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def png_chunks_ok(path):
    """Every chunk's CRC (over type and data) is right, IHDR comes first and
    IEND last: what strict readers (libpng) check and ours may not."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return False
    pos, types = 8, []
    while pos + 12 <= len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        body = data[pos + 4:pos + 8 + n]
        if int.from_bytes(data[pos + 8 + n:pos + 12 + n], "big") != zlib.crc32(body):
            return False
        types.append(body[:4])
        pos += 12 + n
    return pos == len(data) and types[0] == b"IHDR" and types[-1] == b"IEND" and b"IDAT" in types


def png_kind(path):
    with open(path, "rb") as f:
        head = f.read(26)
    return head[24], head[25]  # bit depth, colour type


tmp = tempfile.mkdtemp(prefix="mtmi_synth_")
a, b, c = (os.path.join(tmp, n) for n in "abc")
print("seed 7 (the golden scene's; fixed)")
r = mtmi("synth", "-o", a, "--count", 3, "--size", "64x96", "--seed", 7)
check(r.returncode == 0, f"synth failed: {r.stderr.strip()}")
print(r.stdout.strip())
stems = [f"s7_{i:06d}" for i in range(3)]
for sub in ("images", "labels", "depth"):
    got = sorted(os.listdir(os.path.join(a, sub))) if os.path.isdir(os.path.join(a, sub)) else []
    check(got == [s + ".png" for s in stems], f"{sub}/: {got}")
check(png_kind(os.path.join(a, "images", stems[0] + ".png")) == (8, 2), "images are 8-bit RGB")
check(png_kind(os.path.join(a, "labels", stems[0] + ".png")) == (8, 0), "labels are 8-bit gray")
check(png_kind(os.path.join(a, "depth", stems[0] + ".png")) == (16, 0), "depth is 16-bit gray")
for sub in ("images", "labels", "depth"):
    check(png_chunks_ok(os.path.join(a, sub, stems[0] + ".png")), f"{sub}/{stems[0]}.png: bad chunk CRC or layout")

# the decoded content of scene 0 against the generator's golden hash
rgb = train_mtmi.png_read(os.path.join(a, "images", stems[0] + ".png"))
lab = train_mtmi.png_read(os.path.join(a, "labels", stems[0] + ".png"))
dep = train_mtmi.png_read(os.path.join(a, "depth", stems[0] + ".png"))
check(rgb.shape == (64, 96, 3) and lab.shape == (64, 96) and dep.shape == (64, 96), f"shapes {rgb.shape} {lab.shape} {dep.shape}")
h = fnv(rgb.tobytes() + lab.tobytes() + dep.astype("<u2").tobytes())
print(f"scene (7, 0) decoded from the files: hash {h:016x} (golden {GOLDEN:016x})")
check(h == GOLDEN, "the files' content differs from the generator's golden scene")

# what the files hold, over the three scenes
hist = np.zeros(256, np.int64)
for s in stems:
    lab = train_mtmi.png_read(os.path.join(a, "labels", s + ".png"))
    dep = train_mtmi.png_read(os.path.join(a, "depth", s + ".png"))
    hist += np.bincount(lab.ravel(), minlength=256)
    sky = lab == 10
    check(not dep[sky].any(), f"{s}: sky pixels with depth")
    far = (dep == 0) & ~sky  # ground beyond 255.99 m near the horizon
    check(far.mean() < 0.02, f"{s}: {far.mean():.3%} of the non-sky pixels without depth")
    check(dep[~sky & (dep > 0)].min() >= 256 * 0.5, f"{s}: depth below half a metre")
check(set(np.nonzero(hist)[0]) <= set(range(19)) | {255}, f"labels outside 0-18, 255: {np.nonzero(hist)[0]}")
check((hist[:19] > 0).sum() >= 8, f"only {(hist[:19] > 0).sum()} classes in three scenes")
j = json.load(open(os.path.join(a, "synth.json")))
check(j["count"] == 3 and j["seed"] == 7 and j["height"] == 64 and j["width"] == 96, f"synth.json {j}")
check(sum(j["pixels"].values()) == 3 * 64 * 96 and j["pixels"]["road"] == hist[0] and j["pixels"]["ignore"] == hist[255],
      "synth.json pixel counts")

# the same files again, and --first picks up the sequence
r = mtmi("synth", "-o", b, "--count", 3, "--size", "64x96", "--seed", 7)
check(r.returncode == 0, f"second synth failed: {r.stderr.strip()}")
r = mtmi("synth", "-o", c, "--count", 1, "--first", 2, "--size", "64x96", "--seed", 7)
check(r.returncode == 0, f"synth --first failed: {r.stderr.strip()}")
for sub in ("images", "labels", "depth"):
    for s in stems:
        fa, fb = os.path.join(a, sub, s + ".png"), os.path.join(b, sub, s + ".png")
        same = os.path.exists(fb) and open(fa, "rb").read() == open(fb, "rb").read()
        check(same, f"{sub}/{s}.png differs between two runs")
    fc = os.path.join(c, sub, stems[2] + ".png")
    check(os.path.exists(fc) and open(fc, "rb").read() == open(os.path.join(a, sub, stems[2] + ".png"), "rb").read(),
          f"--first 2: {sub} differs from index 2 of the full run")
digest = hashlib.sha256(open(os.path.join(a, "images", stems[0] + ".png"), "rb").read()).hexdigest()[:16]
print(f"files identical on a second run and with --first (image 0 sha256 {digest}, libdeflate-dependent)")

# one-line errors, no crash: usage errors exit 2, a folder that cannot be made 1
for args, want, code in ((["--count", 1], "-o", 2), (["-o", c], "--count", 2), (["-o", c, "--count", 1, "--size", "0x4"], "--size", 2),
                         (["-o", "/proc/nope", "--count", 1], "cannot create", 1)):
    r = mtmi("synth", *args)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == code and len(lines) == 1 and want in lines[0], f"synth {args}: rc {r.returncode}, {r.stderr.strip()!r}")

shutil.rmtree(tmp, ignore_errors=True)
check.finish("synth cli")
