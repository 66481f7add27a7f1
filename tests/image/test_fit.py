"""Preprocessing against an independent NumPy implementation of the same
definitions: mt_image_fit (centre crop to the target aspect in integer
arithmetic, then bilinear resize with pixel centres at +0.5, i.e.
align_corners=False, edge samples clamped, rounded half up to 8 bits) and
mt_image_to_chw (SPEC normalization (px - mean) / std per RGB channel, CHW).

Cases: odd sizes, up- and down-scaling, each axis cropped, RGBA input,
identity, one-pixel rows, and the real street scenes of ../shared (1024 ->
odd sizes).  Every output pixel must equal the float64 reference rounded
half up, except where the reference lies within 1e-3 of a rounding tie
(there the C code's float arithmetic may round either way, by 1);
normalization per element within 1e-6 + 1e-6 |ref| (measured ~2.4e-7, the
float rounding of the C code's (px - mean) * (1 / std)).

Usage: test_fit.py IMAGE_TOOL"""
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np

import mtmi_testutil as tu

MEAN = np.array([123.675, 116.28, 103.53])
STD = np.array([58.395, 57.12, 57.375])


def crop_box(W, H, w, h):
    """(x0, y0, cw, ch) of the centre crop of a W x H image to w:h."""
    cw, ch = W, H
    if W * h > H * w:
        cw = H * w // h
    else:
        ch = W * h // w
    cw, ch = max(cw, 1), max(ch, 1)
    return (W - cw) // 2, (H - ch) // 2, cw, ch


def axis(n_out, n_in):
    """Source indices i0, i1 and weight t of output positions 0..n_out-1."""
    f = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    f = np.maximum(f, 0.0)
    i0 = np.minimum(np.floor(f).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    t = np.minimum(f - i0, 1.0)
    return i0, i1, t


def fit_ref(img, w, h):
    """Exact (float64) resampled values, before rounding: [h, w, C]."""
    H, W, _ = img.shape
    x0, y0, cw, ch = crop_box(W, H, w, h)
    src = img[y0:y0 + ch, x0:x0 + cw].astype(np.float64)
    yi0, yi1, ty = axis(h, ch)
    xi0, xi1, tx = axis(w, cw)
    tx = tx[None, :, None]
    top = src[yi0][:, xi0] * (1 - tx) + src[yi0][:, xi1] * tx
    bot = src[yi1][:, xi0] * (1 - tx) + src[yi1][:, xi1] * tx
    return top * (1 - ty[:, None, None]) + bot * ty[:, None, None]


def tool(*args):
    r = subprocess.run([TOOL] + [str(a) for a in args], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"image_tool {' '.join(map(str, args))}: {r.stderr.strip()}")


def check_fit(name, img, w, h, d):
    src = os.path.join(d, "src.npy")
    out = os.path.join(d, "out.npy")
    np.save(src, img)
    tool("fit", src, w, h, out)
    got = np.load(out)
    if got.shape != (h, w, img.shape[2]) or got.dtype != np.uint8:
        print(f"  {name}: got {got.shape} {got.dtype}, want ({h}, {w}, {img.shape[2]}) uint8  FAIL")
        return False
    v = fit_ref(img, w, h)
    want = np.clip(np.floor(v + 0.5), 0, 255)
    tie = np.abs((v - np.floor(v)) - 0.5) < 1e-3
    diff = np.abs(got.astype(np.int64) - want)
    bad = (diff > 0) & ~(tie & (diff <= 1))
    ok = not bad.any()
    where = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.any() else None
    print(f"  fit {name}: {img.shape[1]}x{img.shape[0]}x{img.shape[2]} -> {w}x{h}: {int((diff > 0).sum())} pixels off by "
          f"{int(diff.max())} at most, {int(bad.sum())} outside a rounding tie"
          + (f" (first at {where}: got {got[where]}, reference {v[where]:.4f})" if where else "") + f"  {'ok' if ok else 'FAIL'}")
    return ok


def check_chw(name, img, d):
    src = os.path.join(d, "src.npy")
    out = os.path.join(d, "chw.npy")
    np.save(src, img)
    tool("chw", src, out)
    got = np.load(out)
    want = ((img[..., :3].astype(np.float64) - MEAN) / STD).transpose(2, 0, 1)
    if got.dtype != np.float32:
        print(f"  chw {name}: dtype {got.dtype}  FAIL")
        return False
    return tu.compare(f"chw {name}", got, want, 1e-6, 1e-6)


def main():
    global TOOL
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    TOOL = sys.argv[1]
    tu.need_shared("test_fit.py")
    rng = np.random.default_rng(tu.test_seed(11))
    ok = True
    with tempfile.TemporaryDirectory() as d:
        def rnd(h, w, c=3):
            return rng.integers(0, 256, (h, w, c), dtype=np.uint8)

        # smooth gradients plus noise: interpolation errors show on both
        yy, xx = np.mgrid[0:61, 0:97]
        grad = np.stack([xx * 2.6, yy * 4.1, (xx + yy) * 1.6], -1)
        grad = np.clip(grad + rng.normal(0, 20, grad.shape), 0, 255).astype(np.uint8)
        cases = [
            ("upscale odd, wider", grad, 211, 131),
            ("upscale odd, taller (crop x)", grad, 53, 129),
            ("downscale odd, crop y", rnd(123, 77), 31, 29),
            ("downscale odd, crop x", rnd(41, 160), 23, 17),
            ("mixed: up x, down y", rnd(50, 13), 37, 19),
            ("RGBA", rnd(33, 45, 4), 71, 53),
            ("identity", rnd(17, 29), 29, 17),
            ("one row", rnd(1, 40), 13, 1),
            ("one column up", rnd(9, 1), 3, 27),
            ("x2 exactly", rnd(16, 24), 48, 32),
            ("/3 exactly", rnd(33, 39), 13, 11),
        ]
        for name, img, w, h in cases:
            ok &= check_fit(name, img, w, h, d)
        pngs = sorted(glob.glob(os.path.join(tu.SHARED, "images", "*.png")))[:2]
        if not pngs:
            print("FAIL: no PNG in ../shared/images")
            ok = False
        for k, p in enumerate(pngs):
            npy = os.path.join(d, f"real{k}.npy")
            tool("png", p, npy)
            real = np.load(npy)
            ok &= check_fit(f"{os.path.basename(p)} down", real, 333, 187, d)
            ok &= check_fit(f"{os.path.basename(p)} up (crop)", real[300:401, 200:359], 511, 257, d)
            ok &= check_chw(os.path.basename(p), real, d)
        ok &= check_chw("RGBA", rnd(13, 11, 4), d)
        ok &= check_chw("all values", np.arange(256 * 3, dtype=np.int64).reshape(16, 16, 3).astype(np.uint8), d)
    print("preprocessing matches the NumPy reference" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
