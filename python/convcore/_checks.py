"""Argument normalisation shared by the functional API, nn and the runner.

Every error names the op and the offending value, as DESIGN.md asks.
"""
from __future__ import annotations

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
