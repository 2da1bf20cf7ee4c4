"""Elementwise arithmetic, comparison and logic with numpy broadcasting."""
from __future__ import annotations

import numpy as np

from .base import Op
from .registry import register


def _same_dtype(op, *xs):
    d = xs[0].dtype
    for x in xs[1:]:
        if x.dtype != d:
            raise TypeError(f"{op.label}: inputs must share one dtype, got "
                            f"{', '.join(str(v.dtype) for v in xs)}")
    return d


class _Binary(Op):
    inplace_capable = True
    fn = None

    def run(self, a, b):
        _same_dtype(self, a, b)
        out = None
        if (self.inplace and a.flags.writeable and a.dtype.kind == "f"
                and np.broadcast_shapes(a.shape, b.shape) == a.shape):
            out = a
        return [self.compute(a, b, out)]

    def compute(self, a, b, out):
        return type(self).fn(a, b, out=out)


@register("Add", since=1)
class Add(_Binary):
    fn = np.add


@register("Sub", since=1)
class Sub(_Binary):
    fn = np.subtract


@register("Mul", since=1)
class Mul(_Binary):
    fn = np.multiply


@register("Div", since=1)
class Div(_Binary):
    def compute(self, a, b, out):
        if a.dtype.kind in "iu":
            # ONNX (C) integer division truncates toward zero.
            with np.errstate(divide="ignore", invalid="ignore"):
                q = np.floor_divide(a, b)
                fix = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
            return (q + fix).astype(a.dtype)
        return np.divide(a, b, out=out)


@register("Pow", since=1)
class Pow(Op):
    def run(self, a, b):
        if a.dtype.kind == "f":
            return [np.power(a, b.astype(a.dtype, copy=False)).astype(a.dtype, copy=False)]
        return [np.power(a.astype(np.float64), b.astype(np.float64)).astype(a.dtype)]


@register("Mod", since=10)
class Mod(Op):
    def setup(self):
        self.fmod = self.attr("fmod", "int", 0)

    def run(self, a, b):
        _same_dtype(self, a, b)
        if self.fmod:
            return [np.fmod(a, b)]
        return [np.mod(a, b)]


class _Variadic(Op):
    def run(self, *xs):
        if not xs:
            raise ValueError(f"{self.label}: needs at least one input")
        _same_dtype(self, *xs)
        y = xs[0]
        for x in xs[1:]:
            y = type(self).fn(y, x)
        if len(xs) == 1:
            y = y.copy()
        return [self.finish(y, len(xs))]

    def finish(self, y, n):
        return y


@register("Max", since=1)
class Max(_Variadic):
    fn = np.maximum


@register("Min", since=1)
class Min(_Variadic):
    fn = np.minimum


@register("Sum", since=1)
class Sum(_Variadic):
    fn = np.add


@register("Mean", since=1)
class Mean(_Variadic):
    fn = np.add

    def finish(self, y, n):
        return (y / y.dtype.type(n)).astype(y.dtype)


class _Compare(Op):
    def run(self, a, b):
        _same_dtype(self, a, b)
        return [type(self).fn(a, b)]


for _name, _fn in (("Equal", np.equal), ("Greater", np.greater), ("Less", np.less),
                   ("GreaterOrEqual", np.greater_equal), ("LessOrEqual", np.less_equal),
                   ("And", np.logical_and), ("Or", np.logical_or), ("Xor", np.logical_xor)):
    register(_name, since=1)(type(_name, (_Compare,), {"fn": _fn}))


@register("Not", since=1)
class Not(Op):
    def run(self, x):
        if x.dtype != np.bool_:
            raise TypeError(f"{self.label}: input must be bool, got {x.dtype}")
        return [np.logical_not(x)]


@register("Where", since=9)
class Where(Op):
    def run(self, c, a, b):
        if c.dtype != np.bool_:
            raise TypeError(f"{self.label}: condition must be bool, got {c.dtype}")
        _same_dtype(self, a, b)
        return [np.where(c, a, b)]


class _Math(Op):
    inplace_capable = True
    float_only = True

    def run(self, x):
        if self.float_only and x.dtype.kind != "f":
            raise TypeError(f"{self.label}: input must be a float tensor, got {x.dtype}")
        out = x if (self.inplace and x.flags.writeable and x.dtype.kind == "f") else None
        return [type(self).fn(x, out=out)]


for _name, _fn, _fo in (("Sqrt", np.sqrt, True), ("Exp", np.exp, True), ("Log", np.log, True),
                        ("Neg", np.negative, False), ("Abs", np.abs, False),
                        ("Reciprocal", np.reciprocal, True), ("Floor", np.floor, True),
                        ("Ceil", np.ceil, True), ("Sign", np.sign, False), ("Sin", np.sin, True),
                        ("Cos", np.cos, True), ("Round", np.rint, True)):
    register(_name, since=1)(type(_name, (_Math,), {"fn": _fn, "float_only": _fo}))
