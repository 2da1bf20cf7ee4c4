"""The functional API on convcore.cuda.DeviceArrays (CUDA builds).

functional.py routes a call here when any of its array inputs is a
DeviceArray; then every array input must be one (mixing host and device
arrays is a TypeError naming the op), and the result is a DeviceArray.
Argument rules and messages are the CPU path's (same _checks helpers).
"""
from __future__ import annotations


import numpy as np

from . import _core, cuda
from ._checks import clamp_bounds, conv_geometry, out_len, pool_geometry

# Module globals (not imports) so that tests can substitute a fake device.
_ext = getattr(_core, "cuda", None)
_DA = _ext.DeviceArray if _ext is not None else None


def dev(op: str, name: str, a, ndim: int | None = None):
    """``a`` as a float32 DeviceArray, or a clear TypeError / ValueError."""
    if not isinstance(a, _DA):
        if isinstance(a, np.ndarray):
            raise TypeError(f"{op}: {name} is a numpy array on the host but other inputs are "
                            f"convcore.cuda.DeviceArrays; move it with convcore.cuda.asarray() "
                            f"(or bring the others back with .numpy())")
        raise TypeError(f"{op}: {name} must be a convcore.cuda.DeviceArray, got "
                        f"{type(a).__name__}")
    if a.dtype != np.float32:
        raise TypeError(f"{op}: {name} must have dtype float32, got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D, got {a.ndim}-D with shape {a.shape}")
    return a


def _conv_args(op, x, weight, stride, padding, dilation, groups):
    x = dev(op, "input", x, 4)
    weight = dev(op, "weight", weight, 4)
    stride, pad, dilation, groups = conv_geometry(op, x.shape, weight.shape, stride, padding,
                                                  dilation, groups)
    return x, weight, stride, pad, dilation, groups


def conv2d_fused(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                 activation=None, residual=None, algo="auto"):
    op = "conv2d"
    x, weight, stride, pad, dilation, groups = _conv_args(op, x, weight, stride, padding,
                                                          dilation, groups)
    if bias is not None:
        bias = dev(op, "bias", bias, 1)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"{op}: bias must have {weight.shape[0]} elements, got {bias.shape[0]}")
    lo, hi = clamp_bounds(op, activation)
    if residual is not None:
        residual = dev(op, "residual", residual, 4)
    if not isinstance(algo, str):
        raise ValueError(f"{op}: algo must be a string, got {algo!r}")
    # "tf32" opts in; "auto" follows cuda.set_allow_tf32(); any other name
    # (the CPU kernels' names, which the runner may pass, or "fp32") is FP32.
    tf32 = algo == "tf32" or (algo == "auto" and cuda.get_allow_tf32())
    return _ext.conv2d_forward(x, weight, bias, list(stride), list(pad), list(dilation), groups,
                               lo, hi, residual, tf32)


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1, bias=True):
    op = "conv2d_backward"
    x, weight, stride, pad, dilation, groups = _conv_args(op, x, weight, stride, padding,
                                                          dilation, groups)
    grad_out = dev(op, "grad_out", grad_out, 4)
    oh = out_len(op, "height", x.shape[2], weight.shape[2], stride[0], pad[0], pad[2], dilation[0])
    ow = out_len(op, "width", x.shape[3], weight.shape[3], stride[1], pad[1], pad[3], dilation[1])
    expect = (x.shape[0], weight.shape[0], oh, ow)
    if grad_out.shape != expect:
        raise ValueError(f"{op}: grad_out must have shape {expect}, got {grad_out.shape}")
    return _ext.conv2d_backward(grad_out, x, weight, list(stride), list(pad), list(dilation),
                                groups, True, True, bool(bias))


def _pool_args(op, x, kernel_size, stride, padding, dilation, ceil_mode):
    x = dev(op, "input", x, 4)
    return (x, *pool_geometry(op, x.shape, kernel_size, stride, padding, dilation, ceil_mode))


def _grad(op, grad_out, shape):
    grad_out = dev(op, "grad_out", grad_out, 4)
    if grad_out.shape != tuple(shape):
        raise ValueError(f"{op}: grad_out must have shape {tuple(shape)}, got {grad_out.shape}")
    return grad_out


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    x, k, s, p, d, _ = _pool_args("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    return _ext.max_pool2d_forward(x, list(k), list(s), list(p), list(d), bool(ceil_mode),
                                   bool(return_indices))


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False):
    op = "max_pool2d_backward"
    x, k, s, p, d, oshape = _pool_args(op, x, kernel_size, stride, padding, dilation, ceil_mode)
    grad_out = _grad(op, grad_out, oshape)
    return _ext.max_pool2d_backward(grad_out, x, list(k), list(s), list(p), list(d), bool(ceil_mode))


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    x, k, s, p, _, _ = _pool_args("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    return _ext.avg_pool2d_forward(x, list(k), list(s), list(p), bool(ceil_mode),
                                   bool(count_include_pad))


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    op = "avg_pool2d_backward"
    x, k, s, p, _, oshape = _pool_args(op, x, kernel_size, stride, padding, 1, ceil_mode)
    grad_out = _grad(op, grad_out, oshape)
    return _ext.avg_pool2d_backward(grad_out, x, list(k), list(s), list(p), bool(ceil_mode),
                                    bool(count_include_pad))


def global_avg_pool2d(x):
    return _ext.global_pool2d(dev("global_avg_pool2d", "input", x, 4), False)


def global_max_pool2d(x):
    return _ext.global_pool2d(dev("global_max_pool2d", "input", x, 4), True)


def global_avg_pool2d_backward(grad_out, x):
    op = "global_avg_pool2d_backward"
    x = dev(op, "input", x, 4)
    return _ext.global_pool2d_backward(_grad(op, grad_out, x.shape[:2] + (1, 1)), x, False)


def global_max_pool2d_backward(grad_out, x):
    op = "global_max_pool2d_backward"
    x = dev(op, "input", x, 4)
    return _ext.global_pool2d_backward(_grad(op, grad_out, x.shape[:2] + (1, 1)), x, True)


def relu(x):
    return _ext.relu(dev("relu", "input", x), False)


def relu_(x):
    return _ext.relu(dev("relu_", "input", x), True)


def relu_backward(grad_out, x):
    op = "relu_backward"
    x = dev(op, "input", x)
    grad_out = dev(op, "grad_out", grad_out)
    if grad_out.shape != x.shape:
        raise ValueError(f"{op}: grad_out shape {grad_out.shape} differs from input shape {x.shape}")
    return _ext.relu_backward(grad_out, x)
