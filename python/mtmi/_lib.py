"""ctypes declarations of include/mtmi.h and the search for libmtmi.so.

The structures mirror the header field by field; tests/python/abi_layout.c
prints the C sizes and offsets and python/tests/test_abi.py compares them
with these, so a field added in C and not here fails a test."""
import ctypes
import os
from ctypes import (POINTER, Structure, c_char_p, c_double, c_int, c_int64, c_size_t, c_uint, c_uint64, c_void_p)

from ._version import __version__

MAJOR = int(__version__.split(".")[0])
MAX_RANK = 8


class Tensor(Structure):
    _fields_ = [("dtype", c_int), ("rank", c_int), ("dims", c_int64 * MAX_RANK), ("data", c_void_p)]


class LoadOptions(Structure):
    _fields_ = [("fill_missing_weights", c_int), ("seed", c_uint64), ("no_optimize", c_int),
                ("max_random_bytes", c_size_t), ("max_fold_bytes", c_size_t)]


class ReferenceOptions(Structure):
    _fields_ = [("seed", c_uint64), ("height", c_int), ("width", c_int), ("batch", c_int), ("init", c_int)]


class SaveOptions(Structure):
    _fields_ = [("simplify", c_int), ("keep_fused", c_int), ("external_threshold", c_size_t),
                ("num_input_shapes", c_int), ("input_shapes", POINTER(Tensor))]


class CalibrateOptions(Structure):
    _fields_ = [("method", c_int), ("percentile", c_double), ("subgraph", c_char_p), ("threads", c_int),
                ("tuning", c_char_p)]


class PlanOptions(Structure):
    _fields_ = [("device", c_char_p), ("precision", c_char_p), ("threads", c_int), ("num_input_shapes", c_int),
                ("input_shapes", POINTER(Tensor)), ("calibration_cache", c_char_p), ("tuning", c_char_p)]


class ResultRequest(Structure):
    _fields_ = [("output", c_char_p), ("forms", c_uint), ("on_device", c_int)]


class PipelineOptions(Structure):
    _fields_ = [("placement", c_char_p), ("frames_in_flight", c_int), ("threads", c_int),
                ("calibration_cache", c_char_p), ("input_shape", POINTER(Tensor)), ("results", POINTER(ResultRequest)),
                ("nresults", c_int), ("tuning", c_char_p), ("image_input", c_int),
                ("saved_plan", c_char_p)]


class ResultInfo(Structure):
    _fields_ = [("name", c_char_p), ("output", c_int), ("form", c_int), ("is_scale", c_int), ("dtype", c_int),
                ("rank", c_int), ("dims", c_int64 * MAX_RANK), ("on_device", c_int), ("device", c_int)]


# name in C -> ctypes class (for the layout test)
STRUCTS = {"mtmi_tensor": Tensor, "mtmi_load_options": LoadOptions, "mtmi_reference_options": ReferenceOptions,
           "mtmi_save_options": SaveOptions, "mtmi_calibrate_options": CalibrateOptions,
           "mtmi_plan_options": PlanOptions, "mtmi_result_request": ResultRequest,
           "mtmi_pipeline_options": PipelineOptions, "mtmi_result_info": ResultInfo}

_H = c_void_p  # opaque handles
_S = c_int     # mtmi_status
_FUNCS = {
    "mtmi_last_error": (c_char_p, []),
    "mtmi_status_name": (c_char_p, [c_int]),
    "mtmi_version": (c_char_p, []),
    "mtmi_model_load": (_S, [c_char_p, POINTER(LoadOptions), POINTER(_H)]),
    "mtmi_model_free": (None, [_H]),
    "mtmi_model_num_inputs": (c_int, [_H]),
    "mtmi_model_num_outputs": (c_int, [_H]),
    "mtmi_model_input_name": (c_char_p, [_H, c_int]),
    "mtmi_model_output_name": (c_char_p, [_H, c_int]),
    "mtmi_model_input_shape": (_S, [_H, c_int, POINTER(c_int), POINTER(c_int64)]),
    # the malloc'ed report: c_void_p, so that it can be freed after reading
    "mtmi_model_describe": (c_void_p, [_H]),
    "mtmi_model_make_reference": (_S, [POINTER(ReferenceOptions), POINTER(_H)]),
    "mtmi_model_save": (_S, [_H, c_char_p, POINTER(SaveOptions)]),
    "mtmi_model_split": (_S, [_H, POINTER(c_char_p), c_int, c_char_p]),
    "mtmi_calibrate": (_S, [_H, POINTER(Tensor), c_int, POINTER(CalibrateOptions), c_char_p]),
    "mtmi_image_load": (_S, [c_char_p, c_int, c_int, c_void_p]),
    "mtmi_plan_create": (_S, [_H, POINTER(PlanOptions), POINTER(_H)]),
    "mtmi_plan_free": (None, [_H]),
    "mtmi_plan_output_shape": (_S, [_H, c_int, POINTER(c_int), POINTER(c_int64)]),
    "mtmi_plan_run": (_S, [_H, POINTER(Tensor), c_int, POINTER(Tensor), c_int]),
    "mtmi_pipeline_create": (_S, [_H, POINTER(PipelineOptions), POINTER(_H)]),
    "mtmi_pipeline_save_plan": (_S, [_H, c_char_p]),
    "mtmi_pipeline_free": (None, [_H]),
    "mtmi_pipeline_frames_in_flight": (c_int, [_H]),
    "mtmi_pipeline_num_results": (c_int, [_H]),
    "mtmi_pipeline_result_info": (_S, [_H, c_int, POINTER(ResultInfo)]),
    "mtmi_pipeline_submit": (_S, [_H, POINTER(Tensor), c_int, c_void_p]),
    "mtmi_pipeline_collect": (_S, [_H, POINTER(Tensor), c_int, POINTER(c_void_p)]),
}


def _candidates():
    """Where libmtmi.so is looked for, in order: $MTMI_LIBRARY, next to this
    package (a wheel built with the library copied in), then the system
    loader's search (LD_LIBRARY_PATH, ld.so.conf: e.g. `cmake --install`
    into /usr/local)."""
    env = os.environ.get("MTMI_LIBRARY")
    if env:
        return [env], True
    here = os.path.dirname(os.path.abspath(__file__))
    local = [os.path.join(here, f"libmtmi.so.{MAJOR}"), os.path.join(here, "libmtmi.so")]
    return [p for p in local if os.path.exists(p)] + [f"libmtmi.so.{MAJOR}"], False


def load():
    paths, from_env = _candidates()
    errors = []
    for p in paths:
        try:
            lib = ctypes.CDLL(p)
        except OSError as e:
            errors.append(f"{p}: {e}")
            if from_env:
                break
            continue
        for name, (res, args) in _FUNCS.items():
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args
        got = lib.mtmi_version().decode()
        if int(got.split(".")[0]) != MAJOR:
            raise ImportError(f"{p} is libmtmi {got}; this mtmi package ({__version__}) needs major version {MAJOR}")
        return lib, p
    raise ImportError("libmtmi.so not found (set MTMI_LIBRARY to its path, or install it: cmake --install): "
                      + "; ".join(errors))
