"""Gemm and MatMul: float32 2-D products on convcore's SGEMM (_core.gemm),
others through numpy. numpy's BLAS threads spin after each call and take
the cores from the kernel workers for the next layers."""
from __future__ import annotations

import numpy as np

from ... import _core

from .base import Op
from .registry import register


@register("Gemm", since=1)
class Gemm(Op):
    def setup(self):
        self.alpha = self.attr("alpha", "float", 1.0)
        self.beta = self.attr("beta", "float", 1.0)
        self.ta = bool(self.attr("transA", "int", 0))
        self.tb = bool(self.attr("transB", "int", 0))

    def run(self, a, b, c=None):
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"{self.label}: A and B must be 2-D, got {a.shape} and {b.shape}")
        if a.dtype != b.dtype:
            raise TypeError(f"{self.label}: A and B dtypes differ ({a.dtype}, {b.dtype})")
        A = a.T if self.ta else a
        B = b.T if self.tb else b
        if A.shape[1] != B.shape[0]:
            raise ValueError(f"{self.label}: cannot multiply {A.shape} by {B.shape}")
        if a.dtype == np.float32:
            y = _core.gemm(np.ascontiguousarray(a), np.ascontiguousarray(b), self.ta, self.tb)
        else:
            y = A @ B
        if self.alpha != 1.0:
            y *= y.dtype.type(self.alpha)
        if c is not None:
            try:
                shape = np.broadcast_shapes(c.shape, y.shape)
            except ValueError:
                shape = None
            if shape != y.shape:
                raise ValueError(f"{self.label}: C of shape {c.shape} does not broadcast to {y.shape}")
            y += c * y.dtype.type(self.beta) if self.beta != 1.0 else c
        return [y]


@register("MatMul", since=1)
class MatMul(Op):
    def run(self, a, b):
        if a.dtype != b.dtype:
            raise TypeError(f"{self.label}: input dtypes differ ({a.dtype}, {b.dtype})")
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"{self.label}: inputs must have at least one axis")
        if a.dtype == np.float32 and a.ndim == 2 and b.ndim == 2:
            if a.shape[1] != b.shape[0]:
                raise ValueError(f"{self.label}: cannot multiply shapes {a.shape} and {b.shape}")
            return [_core.gemm(np.ascontiguousarray(a), np.ascontiguousarray(b))]
        try:
            return [np.matmul(a, b)]
        except ValueError:
            raise ValueError(f"{self.label}: cannot multiply shapes {a.shape} and {b.shape}") from None
