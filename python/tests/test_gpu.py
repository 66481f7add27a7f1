"""The mtmi Python package on a GPU (marker gpu; ctest python_pkg_gpu,
registered where a GPU is): plans in FP32 and FP16 against ONNX Runtime
on the CPU, and a pipeline with its stages on the GPU.  Skipped only when
no GPU is visible; a GPU with a library built without CUDA fails.
Tolerances: test_cuda_network.py's (provisional until measured on a GPU):
FP32 seg 2.4e-5, depth 1e-5; FP16 seg 6e-2 + 2e-2 |ref|, depth 6e-3,
class agreement >= 99 %."""
import numpy as np
import pytest

from pkgtest import H, W, frames, gpu_visible, ort, tu

import mtmi

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not gpu_visible(), reason="no GPU visible (nvidia-smi -L)")]

TOL = {"fp32": {"seg": (2.4e-5, 0.0), "depth": (1e-5, 0.0)}, "fp16": {"seg": (6e-2, 2e-2), "depth": (6e-3, 0.0)}}


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_plan_cuda_vs_ort(ref_path, ref_model, seed, precision):
    x = frames(seed + 600, 1)[0]
    ref = ort(ref_path, x)
    with ref_model.plan(device="cuda:0", precision=precision) as p:
        got = p.run(x)
    assert tu.nondegenerate(f"cuda {precision} reference", ref[0], ref[1])
    ok = True
    for k, name in enumerate(["seg", "depth"]):
        atol, rtol = TOL[precision][name]
        ok &= tu.compare(f"cuda {precision} {name}", got[k], ref[k], rtol, atol)
    agree = float(np.mean(np.argmax(got[0], 1) == np.argmax(ref[0], 1)))
    print(f"cuda {precision}: class agreement {agree:.4f}")
    assert ok and agree >= 0.99


def test_pipeline_cuda(ref_model, seed):
    xs = frames(seed + 700, 3)
    with ref_model.plan(device="cuda:0", precision="fp16") as p:
        want = [p.run(x) for x in xs]
    with ref_model.pipeline(placement="cuda:0/fp16", frames_in_flight=2, results={"seg": ("classes", "float")}) as pl:
        assert [r.name for r in pl.results] == ["seg", "seg:classes", "depth"]
        for k, x in enumerate(xs[:2]):
            pl.submit(x, user=k)
        got = [pl.collect()]
        pl.submit(xs[2], user=2)
        got += [pl.collect(), pl.collect()]
    assert [u for _, u in got] == [0, 1, 2]
    for k, ((seg, cls, depth), _) in enumerate(got):
        # the same device and precision as the plan; the stages' split may
        # order the FP16 arithmetic differently: the FP16 tolerance
        assert tu.compare(f"pipeline frame {k} seg", seg, want[k][0], 2e-2, 6e-2)
        assert tu.compare(f"pipeline frame {k} depth", depth, want[k][1], 0, 6e-3)
        assert np.mean(cls == np.argmax(seg, 1)) >= 0.999
