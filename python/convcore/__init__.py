"""convcore: a compiled convolution backend for Python.

Functional API (PyTorch semantics), ``convcore.nn``/``convcore.optim`` to
train CNNs, and an ONNX runner (``convcore.InferenceSession``, ``convcore run``).
"""
from __future__ import annotations

import os as _os

# libgomp's workers spin for a while after each parallel region before they
# sleep; a short spin keeps back-to-back kernels fast without stealing the
# cores from numpy/torch code that runs right after a convcore call. Must be
# set before the OpenMP runtime loads; a user's own setting wins.
_os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from . import _core  # noqa: E402
from .functional import (  # noqa: E402
    avg_pool2d, avg_pool2d_backward, conv2d, conv2d_backward, conv_output_shape,
    global_avg_pool2d, global_max_pool2d, max_pool2d, max_pool2d_backward, relu, relu_,
    relu_backward,
)

__version__ = _core.__version__


def set_num_threads(n: int) -> None:
    """Threads used by every kernel (default: OMP_NUM_THREADS, else all cores)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {n!r}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    return _core.get_num_threads()


def cpu_info() -> dict:
    """Which ISA the kernels dispatched to, thread count, CUDA availability."""
    info = dict(_core.cpu_info())
    info["cuda"] = bool(getattr(_core, "cuda_built", False)) and _cuda_available()
    info["cuda_built"] = bool(getattr(_core, "cuda_built", False))
    return info


def _cuda_available() -> bool:
    try:
        from . import cuda
        return cuda.is_available()
    except Exception:
        return False


# Heavier faces load on first use, so `import convcore` stays fast.
_LAZY = {
    "InferenceSession": ("runtime", "InferenceSession"),
    "onnx_backend": ("onnx_backend", None),
    "nn": ("nn", None),
    "optim": ("optim", None),
    "Tensor": ("nn.tensor", "Tensor"),
    "no_grad": ("nn.tensor", "no_grad"),
    "cuda": ("cuda", None),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        mod, attr = _LAZY[name]
        m = importlib.import_module(f".{mod}", __name__)
        value = m if attr is None else getattr(m, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'convcore' has no attribute {name!r}")


__all__ = [
    "__version__", "conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward", "global_avg_pool2d", "global_max_pool2d", "relu",
    "relu_", "relu_backward", "conv_output_shape", "set_num_threads", "get_num_threads",
    "cpu_info", "InferenceSession", "onnx_backend", "nn", "optim", "Tensor", "no_grad", "cuda",
]
