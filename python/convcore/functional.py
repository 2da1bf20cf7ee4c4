"""Functional API with PyTorch's semantics, over the compiled kernels.

This layer checks arguments, fills defaults and does shape math; every
computation is one call into ``convcore._core`` (which releases the GIL).
"""
from __future__ import annotations


import numpy as np

from . import _core
from ._checks import as_f32, clamp_bounds, conv_geometry, conv_padding, out_len, pair, pool_geometry

__all__ = [
    "conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
    "avg_pool2d_backward", "global_avg_pool2d", "global_max_pool2d",
    "global_avg_pool2d_backward", "global_max_pool2d_backward", "relu", "relu_",
    "relu_backward", "conv_output_shape", "conv2d_fused", "conv_algorithm",
]


# CUDA builds: a call with any convcore.cuda.DeviceArray input runs on the GPU
# (convcore/_cuda_functional.py, which rejects host/device mixes). In a
# CPU-only build _DA is None and the numpy path pays one `is None` test.
_DA = _core.cuda.DeviceArray if getattr(_core, "cuda_built", False) else None


def _on_device(*arrays) -> bool:
    return any(isinstance(a, _DA) for a in arrays)


def _gpu():
    from . import _cuda_functional
    return _cuda_functional


def _conv_args(op, x, weight, stride, padding, dilation, groups):
    x = as_f32(op, "input", x, 4)
    weight = as_f32(op, "weight", weight, 4)
    stride, pad, dilation, groups = conv_geometry(op, x.shape, weight.shape, stride, padding,
                                                  dilation, groups)
    return x, weight, stride, pad, dilation, groups


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    padding: int | (ph, pw) | (top, left, bottom, right) | "valid" | "same".
    """
    return conv2d_fused(x, weight, bias, stride, padding, dilation, groups)


def conv2d_fused(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                 activation=None, residual=None, algo="auto"):
    """conv2d with the runner's epilogue: ``clamp(conv + bias + residual)``.

    activation: None | "relu" | ("clip", lo, hi).
    """
    if _DA is not None and _on_device(x, weight, bias, residual):
        return _gpu().conv2d_fused(x, weight, bias, stride, padding, dilation, groups, activation,
                                   residual, algo)
    op = "conv2d"
    x, weight, stride, pad, dilation, groups = _conv_args(op, x, weight, stride, padding,
                                                          dilation, groups)
    if bias is not None:
        bias = as_f32(op, "bias", bias, 1)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"{op}: bias must have {weight.shape[0]} elements, got {bias.shape[0]}")
    lo, hi = clamp_bounds(op, activation)
    if residual is not None:
        residual = as_f32(op, "residual", residual, 4)
    return _core.conv2d_forward(x, weight, bias, list(stride), list(pad), list(dilation), groups,
                                lo, hi, residual, algo)


def conv_algorithm(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1) -> str:
    """Name of the kernel conv2d would use for these shapes (chosen in C++)."""
    stride = pair("conv2d", "stride", stride)
    dilation = pair("conv2d", "dilation", dilation)
    pad = conv_padding("conv2d", padding, tuple(w_shape[2:]), stride, dilation)
    return _core.conv_algo(list(x_shape), list(w_shape), list(stride), list(pad), list(dilation),
                           int(groups))


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1, bias=True):
    """Gradients of conv2d: ``(grad_x, grad_w, grad_b or None)``."""
    if _DA is not None and _on_device(grad_out, x, weight):
        return _gpu().conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups,
                                      bias)
    op = "conv2d_backward"
    x, weight, stride, pad, dilation, groups = _conv_args(op, x, weight, stride, padding,
                                                          dilation, groups)
    grad_out = as_f32(op, "grad_out", grad_out, 4)
    oh = out_len(op, "height", x.shape[2], weight.shape[2], stride[0], pad[0], pad[2], dilation[0])
    ow = out_len(op, "width", x.shape[3], weight.shape[3], stride[1], pad[1], pad[3], dilation[1])
    expect = (x.shape[0], weight.shape[0], oh, ow)
    if grad_out.shape != expect:
        raise ValueError(f"{op}: grad_out must have shape {expect}, got {grad_out.shape}")
    return _core.conv2d_backward(grad_out, x, weight, list(stride), list(pad), list(dilation),
                                 groups, True, True, bool(bias))


def conv_output_shape(input_hw, kernel_size, stride=1, padding=0, dilation=1):
    """(H_out, W_out) of a convolution over an (H, W) input."""
    op = "conv_output_shape"
    if len(input_hw) != 2:
        raise ValueError(f"{op}: input size must be (H, W), got {input_hw!r}")
    k = pair(op, "kernel_size", kernel_size)
    s = pair(op, "stride", stride)
    d = pair(op, "dilation", dilation)
    p = conv_padding(op, padding, k, s, d)
    H, W = (int(v) for v in input_hw)
    if H <= 0 or W <= 0:
        raise ValueError(f"{op}: input size must be positive, got {input_hw!r}")
    return (out_len(op, "height", H, k[0], s[0], p[0], p[2], d[0]),
            out_len(op, "width", W, k[1], s[1], p[1], p[3], d[1]))


def _pool_args(op, x, kernel_size, stride, padding, dilation, ceil_mode):
    x = as_f32(op, "input", x, 4)
    return (x, *pool_geometry(op, x.shape, kernel_size, stride, padding, dilation, ceil_mode))


def _grad(op, grad_out, shape):
    grad_out = as_f32(op, "grad_out", grad_out, 4)
    if grad_out.shape != tuple(shape):
        raise ValueError(f"{op}: grad_out must have shape {tuple(shape)}, got {grad_out.shape}")
    return grad_out


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max pooling; with return_indices also the flat h*W+w index of each max."""
    if _DA is not None and isinstance(x, _DA):
        return _gpu().max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode,
                                 return_indices)
    x, k, s, p, d, _ = _pool_args("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    return _core.max_pool2d_forward(x, list(k), list(s), list(p), list(d), bool(ceil_mode),
                                    bool(return_indices))


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False):
    if _DA is not None and _on_device(grad_out, x):
        return _gpu().max_pool2d_backward(grad_out, x, kernel_size, stride, padding, dilation,
                                          ceil_mode)
    op = "max_pool2d_backward"
    x, k, s, p, d, oshape = _pool_args(op, x, kernel_size, stride, padding, dilation, ceil_mode)
    grad_out = _grad(op, grad_out, oshape)
    return _core.max_pool2d_backward(grad_out, x, list(k), list(s), list(p), list(d), bool(ceil_mode))


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    if _DA is not None and isinstance(x, _DA):
        return _gpu().avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad)
    x, k, s, p, _, _ = _pool_args("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    return _core.avg_pool2d_forward(x, list(k), list(s), list(p), bool(ceil_mode),
                                    bool(count_include_pad))


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    if _DA is not None and _on_device(grad_out, x):
        return _gpu().avg_pool2d_backward(grad_out, x, kernel_size, stride, padding, ceil_mode,
                                          count_include_pad)
    op = "avg_pool2d_backward"
    x, k, s, p, _, oshape = _pool_args(op, x, kernel_size, stride, padding, 1, ceil_mode)
    grad_out = _grad(op, grad_out, oshape)
    return _core.avg_pool2d_backward(grad_out, x, list(k), list(s), list(p), bool(ceil_mode),
                                     bool(count_include_pad))


def global_avg_pool2d(x):
    """Mean over H and W: (N, C, H, W) -> (N, C, 1, 1)."""
    if _DA is not None and isinstance(x, _DA):
        return _gpu().global_avg_pool2d(x)
    return _core.global_avg_pool2d(as_f32("global_avg_pool2d", "input", x, 4))


def global_max_pool2d(x):
    """Max over H and W: (N, C, H, W) -> (N, C, 1, 1)."""
    if _DA is not None and isinstance(x, _DA):
        return _gpu().global_max_pool2d(x)
    return _core.global_max_pool2d(as_f32("global_max_pool2d", "input", x, 4))


def global_avg_pool2d_backward(grad_out, x):
    if _DA is not None and _on_device(grad_out, x):
        return _gpu().global_avg_pool2d_backward(grad_out, x)
    op = "global_avg_pool2d_backward"
    x = as_f32(op, "input", x, 4)
    return _core.global_pool2d_backward(_grad(op, grad_out, x.shape[:2] + (1, 1)), x, False)


def global_max_pool2d_backward(grad_out, x):
    if _DA is not None and _on_device(grad_out, x):
        return _gpu().global_max_pool2d_backward(grad_out, x)
    op = "global_max_pool2d_backward"
    x = as_f32(op, "input", x, 4)
    return _core.global_pool2d_backward(_grad(op, grad_out, x.shape[:2] + (1, 1)), x, True)


def relu(x):
    """max(x, 0) into a new array (any shape)."""
    if _DA is not None and isinstance(x, _DA):
        return _gpu().relu(x)
    return _core.relu(as_f32("relu", "input", x), None)


def relu_(x):
    """max(x, 0) in place; x must be a writeable float32 C-contiguous array."""
    if _DA is not None and isinstance(x, _DA):
        return _gpu().relu_(x)
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        raise TypeError(f"relu_: input must be a float32 numpy array, got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if not x.flags.c_contiguous or not x.flags.writeable:
        raise ValueError("relu_: in-place relu needs a writeable C-contiguous array")
    _core.relu(x, x)
    return x


def relu_backward(grad_out, x):
    """grad_out where x > 0, else 0."""
    if _DA is not None and _on_device(grad_out, x):
        return _gpu().relu_backward(grad_out, x)
    op = "relu_backward"
    x = as_f32(op, "input", x)
    grad_out = as_f32(op, "grad_out", grad_out)
    if grad_out.shape != x.shape:
        raise ValueError(f"{op}: grad_out shape {grad_out.shape} differs from input shape {x.shape}")
    return _core.relu_backward(grad_out, x)
