"""Activation functions. Float32 activations run in place when the memory
planner says input 0 is dead after this node (``self.inplace``)."""
from __future__ import annotations

import math

import numpy as np

from ... import _core
from .base import Op
from .registry import register


class _Unary(Op):
    inplace_capable = True
    float_only = True

    def out_for(self, x):
        if self.inplace and x.flags.writeable and x.flags.c_contiguous and x.dtype == np.float32:
            return x
        return None

    def run(self, x):
        if self.float_only and x.dtype.kind != "f":
            raise TypeError(f"{self.label}: input must be a float tensor, got {x.dtype}")
        return [self.compute(x, self.out_for(x))]


@register("Relu", since=1)
class Relu(_Unary):
    float_only = False

    def compute(self, x, out):
        if x.dtype == np.float32 and x.flags.c_contiguous:
            return _core.relu(x, out)
        return np.maximum(x, x.dtype.type(0))


@register("LeakyRelu", since=1)
class LeakyRelu(_Unary):
    def setup(self):
        self.alpha = self.attr("alpha", "float", 0.01)

    def compute(self, x, out):
        return np.where(x < 0, x * x.dtype.type(self.alpha), x).astype(x.dtype, copy=False)


@register("PRelu", since=1)
class PRelu(Op):
    def run(self, x, slope):
        if x.dtype.kind != "f" and x.dtype.kind not in "iu":
            raise TypeError(f"{self.label}: input must be numeric, got {x.dtype}")
        if slope.ndim == 1 and x.ndim > 2 and slope.shape[0] == x.shape[1] and slope.shape[0] != x.shape[-1]:
            # Pre-opset-7 models give a per-channel slope of shape (C,).
            slope = slope.reshape((-1,) + (1,) * (x.ndim - 2))
        return [np.where(x < 0, x * slope, x).astype(x.dtype, copy=False)]


@register("Clip", since=1)
class Clip(Op):
    inplace_capable = True

    def setup(self):
        if self.opset < 11:
            self.lo = self.attr("min", "float", -3.4028234663852886e38)
            self.hi = self.attr("max", "float", 3.4028234663852886e38)

    def bounds(self, x, lo=None, hi=None):
        if self.opset < 11:
            return self.lo, self.hi
        info = np.finfo(x.dtype) if x.dtype.kind == "f" else np.iinfo(x.dtype)
        for v in (lo, hi):
            if v is not None and np.asarray(v).size != 1:
                raise ValueError(f"{self.label}: min/max must be scalars, got shape {np.asarray(v).shape}")
        lo = info.min if lo is None else np.asarray(lo).reshape(()).item()
        hi = info.max if hi is None else np.asarray(hi).reshape(()).item()
        return lo, hi

    def run(self, x, lo=None, hi=None):
        lo, hi = self.bounds(x, lo, hi)
        out = x if (self.inplace and x.flags.writeable and x.dtype.kind == "f") else None
        y = np.minimum(np.maximum(x, x.dtype.type(lo), out=out), x.dtype.type(hi),
                       out=out if out is not None else None)
        return [y.astype(x.dtype, copy=False)]


@register("Sigmoid", since=1)
class Sigmoid(_Unary):
    def compute(self, x, out):
        # 1 / (1 + exp(-x)), written to avoid temporaries.
        y = np.negative(x, out=out)
        np.exp(y, out=y)
        y += 1
        return np.reciprocal(y, out=y)


@register("HardSigmoid", since=1)
class HardSigmoid(_Unary):
    def setup(self):
        self.alpha = self.attr("alpha", "float", 0.2)
        self.beta = self.attr("beta", "float", 0.5)

    def compute(self, x, out):
        y = np.multiply(x, x.dtype.type(self.alpha), out=out)
        y += x.dtype.type(self.beta)
        return np.clip(y, 0, 1, out=y)


@register("HardSwish", since=14)
class HardSwish(_Unary):
    def compute(self, x, out):
        t = x * x.dtype.type(1 / 6)
        t += x.dtype.type(0.5)
        np.clip(t, 0, 1, out=t)
        return np.multiply(x, t, out=out)


@register("Tanh", since=1)
class Tanh(_Unary):
    def compute(self, x, out):
        return np.tanh(x, out=out)


@register("Elu", since=1)
class Elu(_Unary):
    def setup(self):
        self.alpha = self.attr("alpha", "float", 1.0)

    def compute(self, x, out):
        return np.where(x < 0, x.dtype.type(self.alpha) * np.expm1(np.minimum(x, 0)), x).astype(x.dtype)


@register("Selu", since=1)
class Selu(_Unary):
    def setup(self):
        self.alpha = self.attr("alpha", "float", 1.67326319217681884765625)
        self.gamma = self.attr("gamma", "float", 1.05070102214813232421875)

    def compute(self, x, out):
        t = x.dtype.type
        return (t(self.gamma) * np.where(x <= 0, t(self.alpha) * np.expm1(np.minimum(x, 0)), x)).astype(x.dtype)


@register("Softplus", since=1)
class Softplus(_Unary):
    def compute(self, x, out):
        # log(1 + exp(x)) without overflow.
        return (np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))).astype(x.dtype)


@register("Softsign", since=1)
class Softsign(_Unary):
    def compute(self, x, out):
        return (x / (1 + np.abs(x))).astype(x.dtype)


def _erf(x):
    try:
        from scipy.special import erf
        return erf(x)
    except ImportError:  # scipy is optional: exact but slow fallback
        return np.vectorize(math.erf, otypes=[np.float64])(x)


@register("Erf", since=9)
class Erf(_Unary):
    def compute(self, x, out):
        return np.asarray(_erf(x)).astype(x.dtype)


@register("Gelu", since=20)
class Gelu(_Unary):
    def setup(self):
        self.approx = self.attr("approximate", "string", "none")
        if self.approx not in ("none", "tanh"):
            raise self.error(f"approximate must be 'none' or 'tanh', got '{self.approx}'")

    def compute(self, x, out):
        xd = x.astype(np.float64)
        if self.approx == "tanh":
            y = 0.5 * xd * (1 + np.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd ** 3)))
        else:
            y = 0.5 * xd * (1 + _erf(xd / math.sqrt(2)))
        return y.astype(x.dtype)


@register("Mish", since=18)
class Mish(_Unary):
    def compute(self, x, out):
        sp = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
        return (x * np.tanh(sp)).astype(x.dtype)
