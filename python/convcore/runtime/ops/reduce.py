"""Reductions, ArgMax/ArgMin, TopK, Softmax and LogSoftmax."""
from __future__ import annotations

import numpy as np

from .base import Op, axis_of, ints_of
from .registry import register


class _Reduce(Op):
    fn = None
    is_view = True   # noop_with_empty_axes returns its input unchanged
    axes_input_since = 18

    def setup(self):
        self.keepdims = bool(self.attr("keepdims", "int", 1))
        if self.opset >= self.axes_input_since:
            self.axes = None
            self.noop = bool(self.attr("noop_with_empty_axes", "int", 0))
        else:
            self.axes = self.attr("axes", "ints", None)
            self.noop = False

    def run(self, x, axes=None):
        ax = self.axes if axes is None else ints_of(self, axes, "axes")
        if ax is None or len(ax) == 0:
            if self.noop:
                return [x]
            ax = list(range(x.ndim))
        ax = tuple(sorted({axis_of(self, a, x.ndim) for a in ax}))
        if any(x.shape[a] == 0 for a in ax) and type(self).fn in (np.max, np.min):
            # Empty set: the reduction's identity (-inf for max, +inf for min).
            shape = [1 if i in ax else d for i, d in enumerate(x.shape) if self.keepdims or i not in ax]
            if x.dtype.kind == "f":
                fill = -np.inf if type(self).fn is np.max else np.inf
            elif x.dtype == np.bool_:
                fill = type(self).fn is np.min
            else:
                info = np.iinfo(x.dtype)
                fill = info.min if type(self).fn is np.max else info.max
            return [np.full(shape, fill, dtype=x.dtype)]
        y = self.compute(x, ax)
        return [np.asarray(y).astype(x.dtype, copy=False)]

    def compute(self, x, ax):
        return type(self).fn(x, axis=ax, keepdims=self.keepdims)


def _reduce(name, fn, since=13 if False else 18):
    return type(name, (_Reduce,), {"fn": fn, "axes_input_since": since})


for _name, _fn in (("ReduceMean", np.mean), ("ReduceMax", np.max), ("ReduceMin", np.min),
                   ("ReduceProd", np.prod)):
    register(_name, since=1)(_reduce(_name, _fn))
register("ReduceSum", since=1)(_reduce("ReduceSum", np.sum, since=13))


@register("ReduceL2", since=1)
class ReduceL2(_Reduce):
    def compute(self, x, ax):
        return np.sqrt(np.sum(np.square(x.astype(np.float64)), axis=ax, keepdims=self.keepdims))


@register("ReduceSumSquare", since=1)
class ReduceSumSquare(_Reduce):
    def compute(self, x, ax):
        return np.sum(np.square(x), axis=ax, keepdims=self.keepdims)


class _Arg(Op):
    largest = True

    def setup(self):
        self.axis = self.attr("axis", "int", 0)
        self.keepdims = bool(self.attr("keepdims", "int", 1))
        self.last = bool(self.attr("select_last_index", "int", 0))

    def run(self, x):
        axis = axis_of(self, self.axis, x.ndim)
        if x.shape[axis] == 0:
            raise ValueError(f"{self.label}: axis {axis} is empty")
        f = np.argmax if self.largest else np.argmin
        if self.last:
            y = x.shape[axis] - 1 - f(np.flip(x, axis), axis=axis)
        else:
            y = f(x, axis=axis)
        y = y.astype(np.int64)
        return [np.expand_dims(y, axis) if self.keepdims else y]


@register("ArgMax", since=1)
class ArgMax(_Arg):
    largest = True


@register("ArgMin", since=1)
class ArgMin(_Arg):
    largest = False


@register("TopK", since=1)
class TopK(Op):
    def setup(self):
        self.axis = self.attr("axis", "int", -1)
        self.k = self.attr("k", "int") if self.opset < 10 else None
        self.largest = bool(self.attr("largest", "int", 1)) if self.opset >= 11 else True
        self.sorted = bool(self.attr("sorted", "int", 1)) if self.opset >= 11 else True

    def run(self, x, k=None):
        k = self.k if k is None else ints_of(self, k, "K")[0]
        axis = axis_of(self, self.axis, x.ndim)
        if not 0 <= k <= x.shape[axis]:
            raise ValueError(f"{self.label}: k={k} is out of range for axis size {x.shape[axis]}")
        key = -x if self.largest else x
        if x.dtype.kind == "u" and self.largest:
            key = -(x.astype(np.int64))
        # Stable sort: equal values keep the lower index first (as ONNX specifies).
        idx = np.argsort(key, axis=axis, kind="stable")
        idx = np.take(idx, np.arange(k), axis=axis)
        return [np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)]


class _SoftmaxBase(Op):
    log = False

    def setup(self):
        self.axis = self.attr("axis", "int", 1 if self.opset < 13 else -1)

    def run(self, x):
        if x.dtype.kind != "f":
            raise TypeError(f"{self.label}: input must be float, got {x.dtype}")
        if x.ndim == 0:
            raise ValueError(f"{self.label}: input must have at least one axis")
        axis = axis_of(self, self.axis, x.ndim)
        if self.opset < 13:   # the old definition: flatten to 2-D at axis, softmax per row
            shape = x.shape
            rows = int(np.prod(shape[:axis], dtype=np.int64))
            y = self.compute(x.reshape(rows, -1), 1)
            return [y.reshape(shape)]
        return [self.compute(x, axis)]

    def compute(self, x, axis):
        m = np.max(x, axis=axis, keepdims=True) if x.size else 0
        z = x - m
        if self.log:
            return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
        e = np.exp(z)
        e /= np.sum(e, axis=axis, keepdims=True)
        return e


@register("Softmax", since=1)
class Softmax(_SoftmaxBase):
    log = False


@register("LogSoftmax", since=1)
class LogSoftmax(_SoftmaxBase):
    log = True
