"""Normalisation layers in inference form. BatchNormalization after a Conv is
folded into the conv's weights by the passes; this runs the rest."""
from __future__ import annotations

import numpy as np

from .base import Op
from .registry import register


def _per_channel(op, x, v, name):
    if v.shape != (x.shape[1],):
        raise ValueError(f"{op.label}: {name} must have shape ({x.shape[1]},), got {v.shape}")
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


@register("BatchNormalization", since=1)
class BatchNormalization(Op):
    inplace_capable = True

    def setup(self):
        self.eps = self.attr("epsilon", "float", 1e-5)
        if self.opset >= 14 and self.attr("training_mode", "int", 0):
            raise self.unsupported("training_mode=1 is not supported (inference only)")
        if self.opset < 7 and self.attr("is_test", "int", 1) == 0 and len(self.node.outputs) > 1:
            raise self.unsupported("training-mode BatchNormalization (is_test=0) is not supported")
        if self.opset < 9 and not self.attr("spatial", "int", 1):
            raise self.unsupported("spatial=0 is not supported")

    def scale_shift(self, scale, bias, mean, var):
        s = (scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + self.eps))
        t = bias.astype(np.float64) - mean.astype(np.float64) * s
        return s, t

    def run(self, x, scale, bias, mean, var):
        if x.dtype.kind != "f":
            raise TypeError(f"{self.label}: input must be float, got {x.dtype}")
        if x.ndim < 2:
            raise ValueError(f"{self.label}: input must be at least 2-D, got {x.shape}")
        s, t = self.scale_shift(scale, bias, mean, var)
        s = _per_channel(self, x, s.astype(x.dtype), "scale")
        t = _per_channel(self, x, t.astype(x.dtype), "B")
        out = x if (self.inplace and x.flags.writeable) else None
        y = np.multiply(x, s, out=out)
        y += t
        outs = [y]
        for extra in (mean, var)[:max(0, len(self.node.outputs) - 1)]:
            outs.append(extra.copy())
        while len(outs) < len(self.node.outputs):
            outs.append(np.zeros_like(mean))
        return outs


@register("InstanceNormalization", since=1)
class InstanceNormalization(Op):
    def setup(self):
        self.eps = self.attr("epsilon", "float", 1e-5)

    def run(self, x, scale, bias):
        if x.ndim < 3:
            raise ValueError(f"{self.label}: input must be at least 3-D, got {x.shape}")
        ax = tuple(range(2, x.ndim))
        xd = x.astype(np.float64)
        mean = xd.mean(axis=ax, keepdims=True)
        var = xd.var(axis=ax, keepdims=True)
        y = (xd - mean) / np.sqrt(var + self.eps)
        y = y * _per_channel(self, x, scale, "scale") + _per_channel(self, x, bias, "B")
        return [y.astype(x.dtype)]


@register("LRN", since=1)
class LRN(Op):
    def setup(self):
        self.alpha = self.attr("alpha", "float", 1e-4)
        self.beta = self.attr("beta", "float", 0.75)
        self.bias = self.attr("bias", "float", 1.0)
        self.size = self.attr("size", "int")
        if self.size <= 0:
            raise self.error(f"size must be positive, got {self.size}")

    def run(self, x):
        if x.ndim < 3:
            raise ValueError(f"{self.label}: input must be at least 3-D, got {x.shape}")
        C = x.shape[1]
        sq = np.square(x.astype(np.float64))
        lo, hi = (self.size - 1) // 2, self.size - 1 - (self.size - 1) // 2
        # Window sum along channels through a cumulative sum.
        cs = np.concatenate([np.zeros_like(sq[:, :1]), np.cumsum(sq, axis=1)], axis=1)
        c = np.arange(C)
        top = np.minimum(c + hi + 1, C)
        bot = np.maximum(c - lo, 0)
        win = cs[:, top] - cs[:, bot]
        y = x / (self.bias + self.alpha / self.size * win) ** self.beta
        return [y.astype(x.dtype)]
