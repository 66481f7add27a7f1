"""mtmi: multi-task model inference (the libmtmi C library) from Python.

    import mtmi, numpy as np
    m = mtmi.load("model.onnx")                      # or mtmi.reference_model(height=256, width=256)
    plan = m.plan(device="cpu", threads=2)           # "cuda:0", precision="fp16"; int8 with a calibration cache
    seg, depth = plan.run(mtmi.load_image("street.png", 256, 256)[None])

Arrays go in and come out as NumPy arrays.  Every failure of the library
raises mtmi.Error, whose message is the library's mtmi_last_error() line
and whose .status is its mtmi_status code.  The shared library is
$MTMI_LIBRARY, else the one installed with this package, else the system
loader's libmtmi.so.<major>.
"""
import ctypes
import os
import threading

import numpy as np

from . import _lib as L
from ._version import __version__

_dll, _dll_path = L.load()
_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]
_libc.free.restype = None

# mtmi_status codes
OK, ERR_IO, ERR_PARSE, ERR_UNSUPPORTED, ERR_SHAPE, ERR_DEVICE, ERR_NOMEM, ERR_ARG, ERR_INTERNAL = range(9)

_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16,
           11: np.float64}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
_FORMS = {"float": 1, "fp16": 2, "int8": 4, "classes": 8}
_FORM_NAMES = {v: k for k, v in _FORMS.items()}
_CALIB = {"entropy": 0, "minmax": 1, "percentile": 2}
_INIT = {"spread": 0, "torch": 1}


class Error(RuntimeError):
    """A failure reported by libmtmi: str(e) is mtmi_last_error(), e.status
    the mtmi_status code (mtmi.ERR_IO, ...), e.status_name its name."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.status_name = status_name(status)


def version():
    """The version of the libmtmi in use."""
    return _dll.mtmi_version().decode()


def library_path():
    """The libmtmi.so this package loaded."""
    return _dll_path


def status_name(status):
    return _dll.mtmi_status_name(status).decode()


def last_error():
    """mtmi_last_error() of this thread (the message of its last failure)."""
    return _dll.mtmi_last_error().decode("utf-8", "replace")


def _check(status):
    if status != OK:
        raise Error(status, last_error())


def _b(s):
    return None if s is None else os.fsencode(s)


def _shape_tensor(shape):
    shape = tuple(int(d) for d in shape)
    if not 0 < len(shape) <= L.MAX_RANK:
        raise ValueError(f"shape {shape}: rank 1..{L.MAX_RANK}")
    t = L.Tensor(dtype=1, rank=len(shape))
    t.dims[:len(shape)] = shape
    return t


def _in_tensor(a):
    """An input array as an mtmi_tensor (the array must be kept alive while
    the tensor is used)."""
    code = _CODES.get(a.dtype)
    if code is None:
        raise TypeError(f"arrays of {a.dtype} are not an mtmi dtype ({', '.join(str(np.dtype(t)) for t in _DTYPES.values())})")
    if a.ndim > L.MAX_RANK:
        raise ValueError(f"rank {a.ndim} > {L.MAX_RANK}")
    t = L.Tensor(dtype=code, rank=a.ndim, data=a.ctypes.data)
    t.dims[:a.ndim] = a.shape
    return t


def _inputs(arrays):
    arrays = [np.ascontiguousarray(a) for a in arrays]
    ts = (L.Tensor * max(len(arrays), 1))()
    for i, a in enumerate(arrays):
        ts[i] = _in_tensor(a)
    return arrays, ts


def _shape_of(getter, handle, i):
    rank = ctypes.c_int()
    dims = (ctypes.c_int64 * L.MAX_RANK)()
    _check(getter(handle, i, ctypes.byref(rank), dims))
    return tuple(dims[:rank.value])


class _Handle:
    """An owned C handle, freed once (close(), the with block's end, or
    garbage collection)."""
    _free = None

    def __init__(self, h):
        self._h = h

    def close(self):
        h, self._h = getattr(self, "_h", None), None
        if h:
            type(self)._free(h)

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def handle(self):
        if not self._h:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._h


class Model(_Handle):
    """A loaded (or built-in) network: mtmi.load(), mtmi.reference_model()."""
    _free = _dll.mtmi_model_free

    @property
    def inputs(self):
        return [_dll.mtmi_model_input_name(self.handle, i).decode() for i in range(_dll.mtmi_model_num_inputs(self.handle))]

    @property
    def outputs(self):
        return [_dll.mtmi_model_output_name(self.handle, i).decode()
                for i in range(_dll.mtmi_model_num_outputs(self.handle))]

    def input_shape(self, i=0):
        """Declared shape of input i; dynamic dimensions are -1."""
        return _shape_of(_dll.mtmi_model_input_shape, self.handle, i)

    def describe(self):
        """Inputs, outputs, op histograms, parameters and FLOPs (`mtmi info`)."""
        p = _dll.mtmi_model_describe(self.handle)
        if not p:
            raise MemoryError("mtmi_model_describe")
        try:
            return ctypes.string_at(p).decode("utf-8", "replace")
        finally:
            _libc.free(p)

    def save(self, path, simplify=False, keep_fused=False, external_threshold=0, input_shapes=None):
        """Writes the model as ONNX (atomically); simplify=True folds and
        fuses first (`mtmi simplify`)."""
        shapes = [_shape_tensor(s) for s in input_shapes or []]
        arr = (L.Tensor * max(len(shapes), 1))(*shapes)
        o = L.SaveOptions(simplify=int(simplify), keep_fused=int(keep_fused), external_threshold=external_threshold,
                          num_input_shapes=len(shapes), input_shapes=arr if shapes else None)
        _check(_dll.mtmi_model_save(self.handle, _b(path), ctypes.byref(o)))

    def split(self, outdir, cut=None):
        """Writes outdir/encoder.onnx and outdir/<output>.onnx per head, cut
        at the shared features (or at the tensors named in cut)."""
        cut = [_b(c) for c in cut or []]
        arr = (ctypes.c_char_p * max(len(cut), 1))(*cut)
        _check(_dll.mtmi_model_split(self.handle, arr if cut else None, len(cut), _b(outdir)))

    def calibrate(self, frames, cache_path, method="entropy", percentile=None, subgraph=None, threads=0, tuning=None):
        """Runs the model in FP32 on the CPU over frames (each one whole
        model input, float32, all of one shape) and writes an INT8
        calibration cache (TensorRT's text format) to cache_path.
        method: "entropy", "minmax" or "percentile"; subgraph: "heads"
        (default), "seg", "depth", "encoder", "all" or an output's name."""
        if method not in _CALIB:
            raise ValueError(f"calibration method {method!r}: one of {', '.join(_CALIB)}")
        arrays, ts = _inputs([np.asarray(f) for f in frames])
        if not arrays:
            raise ValueError("calibrate needs at least one frame")
        o = L.CalibrateOptions(method=_CALIB[method], percentile=percentile or 0.0, subgraph=_b(subgraph),
                               threads=threads, tuning=_b(tuning))
        _check(_dll.mtmi_calibrate(self.handle, ts, len(arrays), ctypes.byref(o), _b(cache_path)))

    def plan(self, device="cpu", precision=None, threads=0, input_shapes=None, calibration_cache=None, tuning=None):
        """Compiles the model for one device: "cpu", "cpu:N", "cuda:N",
        "cuda:N.smK", optionally "/fp32", "/fp16", "/int8"; precision
        "fp32" (default), "fp16" (CUDA) or "int8" (needs calibration_cache).
        input_shapes: one shape per input (default: the declared ones)."""
        return Plan(self, device, precision, threads, input_shapes, calibration_cache, tuning)

    def pipeline(self, placement=None, frames_in_flight=0, threads=0, calibration_cache=None, input_shape=None,
                 results=None, tuning=None, saved_plan=None):
        """The model split into an encoder and one stage per head, each on
        its own device and precision, several frames in flight.
        placement: "encoder=cpu,seg=cpu:1/int8,depth=cuda:0/fp16", a bare
        device for all, or None/"auto".  results: {output: form or forms}
        with forms "float", "fp16", "int8" (codes and scales), "classes";
        outputs not named come as float32.  saved_plan: a file written by
        Pipeline.save_plan or `mtmi build` (its placement and input shape
        when those are None; its algorithm choices instead of searching)."""
        return Pipeline(self, placement, frames_in_flight, threads, calibration_cache, input_shape, results, tuning,
                        saved_plan)


def load(path, fill_missing_weights=False, seed=0, no_optimize=False, max_random_bytes=0, max_fold_bytes=0):
    """Loads an ONNX model (external data beside it).  fill_missing_weights:
    seeded random values for external weights whose file is missing."""
    o = L.LoadOptions(fill_missing_weights=int(fill_missing_weights), seed=seed, no_optimize=int(no_optimize),
                      max_random_bytes=max_random_bytes, max_fold_bytes=max_fold_bytes)
    h = ctypes.c_void_p()
    _check(_dll.mtmi_model_load(_b(path), ctypes.byref(o), ctypes.byref(h)))
    return Model(h.value)


def reference_model(height=1024, width=1024, batch=1, seed=0, init="spread"):
    """The reference MTMI network (MiT-B0 encoder, segmentation and depth
    heads) with seeded random weights; height and width multiples of 32."""
    if init not in _INIT:
        raise ValueError(f"init {init!r}: one of {', '.join(_INIT)}")
    o = L.ReferenceOptions(seed=seed, height=height, width=width, batch=batch, init=_INIT[init])
    h = ctypes.c_void_p()
    _check(_dll.mtmi_model_make_reference(ctypes.byref(o), ctypes.byref(h)))
    return Model(h.value)


def load_image(path, height, width):
    """A PNG as the reference network's input frame: centre-cropped to the
    aspect of width x height, resized, normalized with ImageNet's mean and
    std; float32 (3, height, width).  Add the batch axis with [None]."""
    out = np.empty((3, height, width), np.float32) if height > 0 and width > 0 else np.empty(1, np.float32)
    _check(_dll.mtmi_image_load(_b(path), height, width, out.ctypes.data))
    return out


class Plan(_Handle):
    """One compiled model on one device; run() is synchronous."""
    _free = _dll.mtmi_plan_free

    def __init__(self, model, device, precision, threads, input_shapes, calibration_cache, tuning):
        shapes = [_shape_tensor(s) for s in input_shapes or []]
        arr = (L.Tensor * max(len(shapes), 1))(*shapes)
        o = L.PlanOptions(device=_b(device), precision=_b(precision), threads=threads, num_input_shapes=len(shapes),
                          input_shapes=arr if shapes else None, calibration_cache=_b(calibration_cache),
                          tuning=_b(tuning))
        h = ctypes.c_void_p()
        _check(_dll.mtmi_plan_create(model.handle, ctypes.byref(o), ctypes.byref(h)))
        super().__init__(h.value)
        self.model = model  # the plan was made of it: kept while the plan lives
        self.output_names = model.outputs
        self.output_shapes = [_shape_of(_dll.mtmi_plan_output_shape, self._h, i) for i in range(len(self.output_names))]
        self._dtypes = None  # known after the first run

    def run(self, *inputs):
        """Runs on the input arrays (dtype and shape checked by the library);
        returns the outputs as a list of arrays, in the model's order."""
        arrays, ins = _inputs(inputs)
        n = len(self.output_shapes)
        outs, bufs = (L.Tensor * n)(), []
        for i, shape in enumerate(self.output_shapes):
            count = int(np.prod(shape, dtype=np.int64))
            # The output dtype is reported by the run; until the first run
            # says, each buffer has room for 8-byte elements.
            dt = np.dtype(self._dtypes[i]) if self._dtypes else np.dtype(np.float64)
            b = np.empty(max(count, 1) * dt.itemsize, np.uint8)
            bufs.append(b)
            outs[i].data = b.ctypes.data
        _check(_dll.mtmi_plan_run(self.handle, ins, len(arrays), outs, n))
        res = []
        for i in range(n):
            dt = np.dtype(_DTYPES[outs[i].dtype])
            shape = tuple(outs[i].dims[:outs[i].rank])
            res.append(bufs[i][:int(np.prod(shape, dtype=np.int64)) * dt.itemsize].view(dt).reshape(shape))
        self._dtypes = [a.dtype for a in res]
        return res


class ResultInfo:
    """One result of a pipeline: name ("seg", "seg:fp16", "seg:int8",
    "seg:scale", "seg:classes"), the model output it comes from, its form
    ("float", "fp16", "int8", "classes"), dtype and shape."""

    def __init__(self, ri):
        self.name = ri.name.decode()
        self.output = ri.output
        self.form = _FORM_NAMES.get(ri.form, str(ri.form))
        self.is_scale = bool(ri.is_scale)
        self.dtype = np.dtype(_DTYPES[ri.dtype])
        self.shape = tuple(ri.dims[:ri.rank])
        self.on_device = bool(ri.on_device)

    def __repr__(self):
        return f"ResultInfo({self.name!r}, {self.form}, {self.dtype}, {self.shape})"


class Pipeline(_Handle):
    """submit() frames, collect() their results in order; frames_in_flight
    of them run at once (the heads of one frame with the encoder of the
    next)."""
    _free = _dll.mtmi_pipeline_free

    def __init__(self, model, placement, frames_in_flight, threads, calibration_cache, input_shape, results, tuning,
                 saved_plan=None):
        reqs = []
        for out, forms in (results or {}).items():
            forms = (forms,) if isinstance(forms, str) else tuple(forms)
            bad = [f for f in forms if f not in _FORMS]
            if bad:
                raise ValueError(f"result forms {bad} for '{out}': use {', '.join(_FORMS)}")
            reqs.append(L.ResultRequest(output=_b(out), forms=sum(_FORMS[f] for f in set(forms)), on_device=0))
        rarr = (L.ResultRequest * max(len(reqs), 1))(*reqs)
        shape = _shape_tensor(input_shape) if input_shape is not None else None
        o = L.PipelineOptions(placement=_b(placement), frames_in_flight=frames_in_flight, threads=threads,
                              calibration_cache=_b(calibration_cache),
                              input_shape=ctypes.pointer(shape) if shape is not None else None,
                              results=rarr if reqs else None, nresults=len(reqs), tuning=_b(tuning),
                              saved_plan=_b(saved_plan))
        h = ctypes.c_void_p()
        _check(_dll.mtmi_pipeline_create(model.handle, ctypes.byref(o), ctypes.byref(h)))
        super().__init__(h.value)
        self.model = model
        self.frames_in_flight = _dll.mtmi_pipeline_frames_in_flight(self._h)
        self.results = []
        for i in range(_dll.mtmi_pipeline_num_results(self._h)):
            ri = L.ResultInfo()
            _check(_dll.mtmi_pipeline_result_info(self._h, i, ctypes.byref(ri)))
            self.results.append(ResultInfo(ri))
        # submit's `user` objects by token (the C side carries an integer)
        self._users, self._next, self._lock = {}, 1, threading.Lock()

    def submit(self, *inputs, user=None):
        """Copies the inputs into a free frame slot and starts the frame;
        `user` comes back with its results.  With every slot in flight,
        collect() one first (else mtmi.Error)."""
        arrays, ins = _inputs(inputs)
        with self._lock:
            token, self._next = self._next, self._next + 1
            self._users[token] = user
        try:
            _check(_dll.mtmi_pipeline_submit(self.handle, ins, len(arrays), ctypes.c_void_p(token)))
        except BaseException:
            with self._lock:
                del self._users[token]
            raise

    def save_plan(self, path):
        """Writes the saved plan of this pipeline (its algorithm choices
        and what they were made for) to path."""
        _check(_dll.mtmi_pipeline_save_plan(self.handle, _b(str(path))))

    def collect(self):
        """Waits for the oldest frame; returns (results, user): the results
        as a list of arrays in the order of .results."""
        n = len(self.results)
        outs, res = (L.Tensor * max(n, 1))(), []
        for i, r in enumerate(self.results):
            a = np.empty(r.shape, r.dtype)
            res.append(a)
            outs[i].data = a.ctypes.data
        token = ctypes.c_void_p()
        _check(_dll.mtmi_pipeline_collect(self.handle, outs, n, ctypes.byref(token)))
        with self._lock:
            user = self._users.pop(token.value or 0, None)
        return res, user


__all__ = ["Error", "Model", "Plan", "Pipeline", "ResultInfo", "load", "reference_model", "load_image", "version",
           "library_path", "last_error", "status_name", "__version__"]
