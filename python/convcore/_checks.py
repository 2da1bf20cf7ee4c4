"""Argument normalisation shared by the functional API, nn and the runner.

Every error names the op and the offending value, as DESIGN.md asks.
"""
from __future__ import annotations

import math
import numbers

import numpy as np


def as_f32(op: str, name: str, a, ndim: int | None = None) -> np.ndarray:
    """float32, C-contiguous, aligned view or copy of ``a``; TypeError otherwise."""
    if not isinstance(a, np.ndarray):
        if hasattr(a, "numpy") and hasattr(a, "grad"):  # convcore.Tensor
            a = a.numpy()
        else:
            raise TypeError(f"{op}: {name} must be a numpy float32 array, got {type(a).__name__}")
    if a.dtype != np.float32:
        raise TypeError(f"{op}: {name} must have dtype float32, got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D, got {a.ndim}-D with shape {a.shape}")
    if not (a.flags.c_contiguous and a.flags.aligned):
        a = np.ascontiguousarray(a)
    return a


def _int(op: str, name: str, v) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an int or a tuple of ints, got {v!r}")
    return int(v)


def pair(op: str, name: str, v, *, positive: bool = True) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            v = (v[0], v[0])
        if len(v) != 2:
            raise ValueError(f"{op}: {name} must be an int or a pair, got {v!r}")
        out = (_int(op, name, v[0]), _int(op, name, v[1]))
    else:
        i = _int(op, name, v)
        out = (i, i)
    if positive and min(out) <= 0:
        raise ValueError(f"{op}: {name} must be positive, got {v!r}")
    return out


def padding4(op: str, v) -> tuple[int, int, int, int]:
    """int | (ph, pw) | (top, left, bottom, right) -> (top, left, bottom, right)."""
    if isinstance(v, (tuple, list)) and len(v) == 4:
        p = tuple(_int(op, "padding", e) for e in v)
    else:
        ph, pw = pair(op, "padding", v, positive=False)
        p = (ph, pw, ph, pw)
    if min(p) < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {v!r}")
    return p  # type: ignore[return-value]


def conv_padding(op: str, padding, kernel: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int]) -> tuple[int, int, int, int]:
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' needs stride 1 (as in PyTorch), got stride {stride}")
            th = dilation[0] * (kernel[0] - 1)
            tw = dilation[1] * (kernel[1] - 1)
            # PyTorch puts the odd extra pixel at the bottom/right.
            return (th // 2, tw // 2, th - th // 2, tw - tw // 2)
        raise ValueError(f"{op}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    return padding4(op, padding)


def out_len(op: str, axis: str, size: int, k: int, s: int, p0: int, p1: int, d: int,
            ceil_mode: bool = False) -> int:
    eff = d * (k - 1) + 1
    padded = size + p0 + p1
    if eff > padded:
        raise ValueError(f"{op}: kernel extent {eff} along {axis} is larger than the padded input ({padded})")
    span = padded - eff
    n = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (n - 1) * s >= size + p0:
        n -= 1
    return n


def conv_geometry(op: str, x_shape, w_shape, stride, padding, dilation, groups):
    """Checks a conv's shapes and arguments (host or device arrays alike).

    -> (stride, pads (top, left, bottom, right), dilation, groups).
    """
    stride = pair(op, "stride", stride)
    dilation = pair(op, "dilation", dilation)
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, numbers.Integral) or groups <= 0:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    K, Cg, kh, kw = w_shape
    if kh <= 0 or kw <= 0 or K <= 0:
        raise ValueError(f"{op}: weight must have positive sizes, got shape {tuple(w_shape)}")
    C = x_shape[1]
    if C % groups:
        raise ValueError(f"{op}: input channels {C} are not divisible by groups={groups}")
    if K % groups:
        raise ValueError(f"{op}: output channels {K} are not divisible by groups={groups}")
    if Cg * groups != C:
        raise ValueError(f"{op}: weight expects {Cg * groups} input channels "
                         f"({Cg} per group x {groups} groups), input has {C}")
    pad = conv_padding(op, padding, (kh, kw), stride, dilation)
    out_len(op, "height", x_shape[2], kh, stride[0], pad[0], pad[2], dilation[0])
    out_len(op, "width", x_shape[3], kw, stride[1], pad[1], pad[3], dilation[1])
    return stride, pad, dilation, groups


def clamp_bounds(op: str, activation) -> tuple[float, float]:
    """Fused activation None | "relu" | ("clip", lo, hi) -> (lo, hi) of the clamp."""
    if activation is None:
        return -math.inf, math.inf
    if activation == "relu":
        return 0.0, math.inf
    if isinstance(activation, tuple) and len(activation) == 3 and activation[0] == "clip":
        return float(activation[1]), float(activation[2])
    raise ValueError(f"{op}: unknown fused activation {activation!r}")


def pool_geometry(op: str, x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    """Checks a pooling call with PyTorch's rules -> (k, s, pads4, d, output shape)."""
    k = pair(op, "kernel_size", kernel_size)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else pair(op, "stride", stride)
    d = pair(op, "dilation", dilation)
    p = padding4(op, padding)
    # PyTorch's rule: padding at most half the kernel.
    if max(p[0], p[2]) * 2 > k[0] or max(p[1], p[3]) * 2 > k[1]:
        raise ValueError(f"{op}: padding should be at most half of kernel size, got padding "
                         f"{padding!r} for kernel {k}")
    if x_shape[1] <= 0 or x_shape[2] <= 0 or x_shape[3] <= 0:
        raise ValueError(f"{op}: input must have non-empty C, H, W, got shape {tuple(x_shape)}")
    oh = out_len(op, "height", x_shape[2], k[0], s[0], p[0], p[2], d[0], bool(ceil_mode))
    ow = out_len(op, "width", x_shape[3], k[1], s[1], p[1], p[3], d[1], bool(ceil_mode))
    return k, s, p, d, (x_shape[0], x_shape[1], oh, ow)
