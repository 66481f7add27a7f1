"""A straightforward NumPy statement of TensorRT's EntropyCalibrator2
threshold search, as NVIDIA's pytorch-quantization publishes it
(HistogramCalibrator, _compute_amax_entropy: 128 levels, start bin 128,
stride 1, zero bin replaced by bin 1, last minimum wins).  Written from the
algorithm's description, as the reference the C code is tested against."""
import numpy as np


def kl(p, q):
    """scipy.stats.entropy(p, q): both normalized, sum p log(p/q) over p>0,
    inf where q == 0 < p."""
    if q.sum() == 0:
        # Nothing of Q below i (all its bins empty after bins[0] := bins[1]):
        # scipy would give NaN and np.argmin would then pick it; a search
        # for the minimum must skip it, so: infinitely far.
        return np.inf
    p = p / p.sum()
    q = q / q.sum()
    m = p > 0
    if np.any(q[m] == 0):
        return np.inf
    return float(np.sum(p[m] * np.log(p[m] / q[m])))


def entropy_divergences(hist, levels=128, start=128):
    bins = np.array(hist, dtype=np.float64)
    bins[0] = bins[1]
    out = []
    for i in range(start, len(bins) + 1):
        level = (np.arange(i) * levels) // i          # = digitize(range(i), linspace(0, i, 129)) - 1
        nz = bins[:i] != 0
        sums = np.bincount(level[nz], weights=bins[:i][nz], minlength=levels)
        cnts = np.bincount(level[nz], minlength=levels)
        q = np.zeros(i)
        q[nz] = sums[level[nz]] / cnts[level[nz]]
        p = bins[:i].copy()
        p[i - 1] += bins[i:].sum()
        out.append((i, kl(p, q)))
    return out


def entropy_threshold(hist, width):
    """Returns (i, threshold = i * width) of the last minimum divergence."""
    divs = entropy_divergences(hist)
    d = np.array([v for _, v in divs])
    best = len(d) - 1 - int(np.argmin(d[::-1]))
    i = divs[best][0]
    return i, i * width, d


def histogram_like_trt(batches, nbins=2048):
    """|x| histogram: first batch's max fixes the width, later larger maxima
    append bins of the same width."""
    hist, width = None, None
    for x in batches:
        a = np.abs(np.asarray(x, dtype=np.float32)).astype(np.float64)
        mx = float(a.max())
        if width is None:
            width = np.float32(mx) / np.float32(nbins)
            hist = np.zeros(nbins)
        need = int(np.ceil(mx / float(width)))
        if need > len(hist):
            hist = np.concatenate([hist, np.zeros(need - len(hist))])
        k = np.minimum((a / float(width)).astype(np.int64), len(hist) - 1)
        hist += np.bincount(k, minlength=len(hist))
    return hist, float(width)
