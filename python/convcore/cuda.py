"""convcore.cuda: GPU arrays and the CUDA build's runtime queries.

With a CUDA build (``pip install . -Ccmake.define.CONVCORE_CUDA=ON``), device
arrays go through the same functional API as numpy arrays::

    import convcore as cc, convcore.cuda as ccu
    x = ccu.asarray(np_x); w = ccu.asarray(np_w)
    y = cc.conv2d(x, w, padding=1)      # runs on the GPU, returns a DeviceArray
    y.numpy()                           # back to the host

Device arrays share memory with CuPy and torch without copies
(``__cuda_array_interface__`` v3 and DLPack: ``torch.from_dlpack(y)``;
``asarray(torch_cuda_tensor)`` wraps the tensor's memory). Mixing host and
device inputs in one call is a TypeError. FP32 is the default precision;
``set_allow_tf32(True)`` (or ``algo="tf32"`` in ``functional.conv2d_fused``)
lets conv2d forward use TF32 tensor cores on sm_80+ GPUs.

The extension imports on machines without a GPU or driver: ``is_available()``
is then False and everything else runs on the CPU.
"""
from __future__ import annotations

import numpy as np

from . import _core

__all__ = [
    "is_built", "is_available", "device_count", "unavailable_reason", "device_info",
    "asarray", "empty", "synchronize", "empty_cache", "add", "DeviceArray", "CudaError", "set_allow_tf32",
    "get_allow_tf32", "tf32_supported", "conv_algorithm",
]

NOT_BUILT_MESSAGE = ("convcore was built without CUDA; reinstall with "
                     "-Ccmake.define.CONVCORE_CUDA=ON (e.g. `pip install . "
                     "-Ccmake.define.CONVCORE_CUDA=ON`, or `CONVCORE_CUDA=ON pip install .`)")

_BUILT = bool(getattr(_core, "cuda_built", False))
_allow_tf32 = False

if _BUILT:
    _ext = _core.cuda
    DeviceArray = _ext.DeviceArray
    CudaError = _ext.CudaError
else:
    _ext = None

    class CudaError(RuntimeError):
        """A CUDA runtime error (only raised by CUDA builds)."""

    class DeviceArray:  # noqa: D101 - placeholder so isinstance() checks work
        """A GPU array; this build has no CUDA, so none can exist."""

        def __new__(cls, *args, **kwargs):
            raise RuntimeError(NOT_BUILT_MESSAGE)


def is_built() -> bool:
    """True if this extension was compiled with the CUDA kernels."""
    return _BUILT


def device_count() -> int:
    """Visible CUDA devices (0 without a CUDA build, driver or GPU)."""
    return _ext.device_count() if _BUILT else 0


def is_available() -> bool:
    """True if CUDA was built in and a usable GPU and driver are present."""
    return device_count() > 0


def unavailable_reason() -> str:
    """Why is_available() is False ("" when it is True)."""
    if not _BUILT:
        return NOT_BUILT_MESSAGE
    return _ext.unavailable_reason()


def _require(device: int = 0) -> None:
    if not _BUILT:
        raise RuntimeError(NOT_BUILT_MESSAGE)
    n = _ext.device_count()
    if n == 0:
        raise RuntimeError(f"convcore.cuda: no usable CUDA device ({_ext.unavailable_reason()})")
    if isinstance(device, bool) or not isinstance(device, (int, np.integer)) \
            or not 0 <= device < n:
        raise ValueError(f"convcore.cuda: device must be an int in [0, {n}), got {device!r}")


def device_info(device: int = 0) -> dict:
    """Name, compute capability, multiprocessor count, memory of a GPU."""
    _require(device)
    return dict(_ext.device_info(int(device)))


def tf32_supported(device: int = 0) -> bool:
    """True if the device has TF32 tensor cores (sm_80 or newer)."""
    _require(device)
    return bool(_ext.tf32_supported(int(device)))


def asarray(a, device: int = 0) -> "DeviceArray":
    """A DeviceArray holding ``a``.

    numpy float32 / int64 arrays are copied to the GPU (other dtypes raise
    TypeError: convert first, as for the CPU API). A DeviceArray is returned
    as is. Objects with ``__cuda_array_interface__`` (torch CUDA tensors,
    CuPy arrays) are wrapped without a copy and kept alive.
    """
    _require(device)
    if isinstance(a, DeviceArray):
        return a
    if hasattr(a, "__cuda_array_interface__"):
        return _ext.from_cuda_array_interface(a)
    if hasattr(a, "numpy") and hasattr(a, "grad"):  # convcore.Tensor
        a = a.numpy()
    if not isinstance(a, np.ndarray):
        raise TypeError(f"convcore.cuda.asarray: expected a numpy array or a device array, "
                        f"got {type(a).__name__}")
    if a.dtype not in (np.float32, np.int64):
        raise TypeError(f"convcore.cuda.asarray: dtype must be float32 or int64, got {a.dtype}")
    return _ext.upload(np.ascontiguousarray(a), int(device))


def empty(shape, dtype=np.float32, device: int = 0) -> "DeviceArray":
    """An uninitialised DeviceArray."""
    _require(device)
    return _ext.empty([int(s) for s in shape], np.dtype(dtype), int(device))


def synchronize(device: int = 0) -> None:
    """Wait for every queued kernel on the device (for timing)."""
    _require(device)
    _ext.synchronize(int(device))


def add(a, b, relu: bool = False) -> "DeviceArray":
    """a + b (same shapes, float32 DeviceArrays), optionally followed by ReLU."""
    from ._cuda_functional import dev
    _require()
    return _ext.add(dev("add", "a", a), dev("add", "b", b), bool(relu))


def empty_cache() -> None:
    """Return the device memory cached by freed DeviceArrays to the driver."""
    if _BUILT and _ext.device_count() > 0:
        _ext.empty_cache()


def set_allow_tf32(flag: bool) -> None:
    """Let conv2d forward on the GPU use TF32 tensor cores (default: off, FP32)."""
    global _allow_tf32
    _allow_tf32 = bool(flag)


def get_allow_tf32() -> bool:
    return _allow_tf32


def conv_algorithm(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, tf32=None,
                   device: int = 0) -> str:
    """Name of the CUDA kernel conv2d would use for these shapes."""
    from ._checks import conv_padding, pair
    _require(device)
    stride = pair("conv2d", "stride", stride)
    dilation = pair("conv2d", "dilation", dilation)
    pad = conv_padding("conv2d", padding, tuple(w_shape[2:]), stride, dilation)
    tf32 = _allow_tf32 if tf32 is None else bool(tf32)
    return _ext.conv_algo(list(x_shape), list(w_shape), list(stride), list(pad), list(dilation),
                          int(groups), tf32, int(device))
