"""Gemm and MatMul (numpy's BLAS)."""
from __future__ import annotations

import numpy as np

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
        try:
            return [np.matmul(a, b)]
        except ValueError:
            raise ValueError(f"{self.label}: cannot multiply shapes {a.shape} and {b.shape}") from None
