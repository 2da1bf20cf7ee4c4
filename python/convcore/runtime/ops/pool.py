"""MaxPool, AveragePool, Global*Pool and LpPool-free pooling on the compiled kernels.

The kernels take ONNX-style asymmetric pads directly (``_core``, not the
functional layer, which enforces PyTorch's pad <= kernel/2 rule)."""
from __future__ import annotations

import numpy as np

from ... import _core
from .base import Op
from .registry import register
from .spatial import geometry, read_window_attrs


def _out_len(n, k, s, p0, p1, d, ceil):
    eff = d * (k - 1) + 1
    span = n + p0 + p1 - eff
    if span < 0:
        raise ValueError(f"window {eff} is larger than the padded input {n + p0 + p1}")
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= n + p0:   # the last window must start inside
        out -= 1
    return out


def pool_numpy(x, k, s, p, d, ceil, is_max, cip=False):
    """Reference pooling for what the kernels do not take (integer dtypes,
    dilated average pooling): one strided slice per kernel tap."""
    N, C, H, W = x.shape
    oh = _out_len(H, k[0], s[0], p[0], p[2], d[0], ceil)
    ow = _out_len(W, k[1], s[1], p[1], p[3], d[1], ceil)
    need_h = (oh - 1) * s[0] + d[0] * (k[0] - 1) + 1
    need_w = (ow - 1) * s[1] + d[1] * (k[1] - 1) + 1
    extra_h = max(0, need_h - (H + p[0] + p[2]))
    extra_w = max(0, need_w - (W + p[1] + p[3]))
    width = ((0, 0), (0, 0), (p[0], p[2] + extra_h), (p[1], p[3] + extra_w))
    if is_max:
        fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        xp = np.pad(x, width, constant_values=fill)
    else:
        xp = np.pad(x.astype(np.float64), width)
        mask = np.zeros(xp.shape[2:], np.float64)
        if cip:
            mask[:H + p[0] + p[2], :W + p[1] + p[3]] = 1
        else:
            mask[p[0]:p[0] + H, p[1]:p[1] + W] = 1
    acc, cnt = None, 0
    for i in range(k[0]):
        for j in range(k[1]):
            hs = slice(i * d[0], i * d[0] + (oh - 1) * s[0] + 1, s[0])
            ws = slice(j * d[1], j * d[1] + (ow - 1) * s[1] + 1, s[1])
            v = xp[:, :, hs, ws]
            if is_max:
                acc = v.copy() if acc is None else np.maximum(acc, v)
            else:
                acc = v.copy() if acc is None else acc + v
                cnt = cnt + mask[hs, ws]
    if is_max:
        return acc
    return (acc / np.maximum(cnt, 1)).astype(x.dtype)


class _Pool(Op):
    def setup(self):
        self.win = read_window_attrs(self, None, dilations_ok=self.has_dilations)
        if self.win["kernel"] is None:
            raise self.error("missing required attribute 'kernel_shape'")
        self.nsp = len(self.win["kernel"])
        self.ceil_mode = bool(self.attr("ceil_mode", "int", 0)) if self.opset >= 10 else False

    has_dilations = True

    numpy_dtypes = False

    def prep(self, x):
        if x.dtype != np.float32 and not (self.numpy_dtypes and x.dtype.kind in "iuf"):
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
    numpy_dtypes = True   # int8/uint8 (opset 12) and float64 through the numpy path

    def setup(self):
        super().setup()
        if self.attr("storage_order", "int", 0) != 0:
            raise self.unsupported("storage_order=1 (column-major indices) is not supported")

    def run(self, x):
        x, k, s, p, d, ceil = self.prep(x)
        want_idx = len(self.node.outputs) > 1 and bool(self.node.outputs[1])
        if x.dtype != np.float32:
            if want_idx:
                raise self.unsupported(f"Indices output for {x.dtype} input is not supported")
            try:
                return [self.finish(pool_numpy(x, k, s, p, d, ceil, True), x.shape[0])]
            except ValueError as e:
                raise ValueError(f"{self.label}: {e}") from None
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

    def run(self, x):
        x, k, s, p, d, ceil = self.prep(x)
        if d != [1, 1]:   # dilated average pooling (opset 19): no kernel, numpy path
            try:
                return [self.finish(pool_numpy(x, k, s, p, d, ceil, False, self.cip), x.shape[0])]
            except ValueError as e:
                raise ValueError(f"{self.label}: {e}") from None
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
