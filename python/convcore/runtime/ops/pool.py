"""MaxPool, AveragePool, Global*Pool and LpPool-free pooling on the compiled kernels.

The kernels take ONNX-style asymmetric pads directly (``_core``, not the
functional layer, which enforces PyTorch's pad <= kernel/2 rule)."""
from __future__ import annotations

import numpy as np

from ... import _core
from .base import Op
from .registry import register
from .spatial import geometry, read_window_attrs


class _Pool(Op):
    def setup(self):
        self.win = read_window_attrs(self, None, dilations_ok=self.has_dilations)
        if self.win["kernel"] is None:
            raise self.error("missing required attribute 'kernel_shape'")
        self.nsp = len(self.win["kernel"])
        self.ceil_mode = bool(self.attr("ceil_mode", "int", 0)) if self.opset >= 10 else False

    has_dilations = True

    def prep(self, x):
        if x.dtype != np.float32:
            raise TypeError(f"{self.label}: input must be float32, got {x.dtype}")
        if x.ndim != self.nsp + 2:
            raise ValueError(f"{self.label}: input must be {self.nsp + 2}-D for kernel_shape "
                             f"{self.win['kernel']}, got shape {x.shape}")
        x = np.ascontiguousarray(x)
        if self.nsp == 1:
            x = x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
        k = [1] + list(self.win["kernel"]) if self.nsp == 1 else list(self.win["kernel"])
        s, p, d = geometry(self, self.win, x.shape[2:], k, self.nsp)
        # Auto-padded windows are sized by the pads, not by ceil_mode.
        ceil = self.ceil_mode and self.win["auto_pad"] in ("NOTSET",)
        return x, k, s, p, d, ceil

    def finish(self, y, n_batch):
        if self.nsp == 1:
            y = y.reshape(y.shape[0], y.shape[1], y.shape[3])
        return y


@register("MaxPool", since=1)
class MaxPool(_Pool):
    def setup(self):
        super().setup()
        if self.attr("storage_order", "int", 0) != 0:
            raise self.unsupported("storage_order=1 (column-major indices) is not supported")

    def run(self, x):
        x, k, s, p, d, ceil = self.prep(x)
        want_idx = len(self.node.outputs) > 1 and bool(self.node.outputs[1])
        try:
            r = _core.max_pool2d_forward(x, k, s, p, d, ceil, want_idx)
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"{self.label}: {e}") from None
        if not want_idx:
            return [self.finish(r, x.shape[0])]
        y, idx = r
        # ONNX indices are flat over the whole (N, C, H, W) tensor.
        N, C, H, W = x.shape
        idx += (np.arange(N * C, dtype=np.int64) * (H * W)).reshape(N, C, 1, 1)
        return [self.finish(y, N), self.finish(idx, N)]


@register("AveragePool", since=1)
class AveragePool(_Pool):
    def setup(self):
        super().setup()
        self.cip = bool(self.attr("count_include_pad", "int", 0))
        d = self.win.get("dilations")
        if d is not None and any(v != 1 for v in d):
            raise self.unsupported(f"AveragePool with dilations {d} is not supported")

    def run(self, x):
        x, k, s, p, d, ceil = self.prep(x)
        try:
            y = _core.avg_pool2d_forward(x, k, s, p, ceil, self.cip)
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"{self.label}: {e}") from None
        return [self.finish(y, x.shape[0])]


class _Global(Op):
    is_max = False

    def run(self, x):
        if x.dtype != np.float32:
            raise TypeError(f"{self.label}: input must be float32, got {x.dtype}")
        if x.ndim < 3:
            raise ValueError(f"{self.label}: input must be at least 3-D, got shape {x.shape}")
        if x.ndim == 4 and x.shape[2] * x.shape[3] > 0:
            x = np.ascontiguousarray(x)
            f = _core.global_max_pool2d if self.is_max else _core.global_avg_pool2d
            return [f(x)]
        axes = tuple(range(2, x.ndim))
        return [(x.max if self.is_max else x.mean)(axis=axes, keepdims=True).astype(np.float32)]


@register("GlobalAveragePool", since=1)
class GlobalAveragePool(_Global):
    is_max = False


@register("GlobalMaxPool", since=1)
class GlobalMaxPool(_Global):
    is_max = True
