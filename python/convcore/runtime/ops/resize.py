"""Resize (opsets 10-19) and Upsample (7-9): nearest, linear and cubic.

Each resized axis is handled on its own (the modes are separable): nearest
gathers rows, linear/cubic multiply by a small (out x in) interpolation
matrix built from the coordinate transform.
"""
from __future__ import annotations

import math

import numpy as np

from .base import Op, ints_of
from .registry import register

_CTMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
         "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize")
_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "simple")


def _orig_coords(ctm, out_len, in_len, scale, roi=None, len_resized=None):
    x = np.arange(out_len, dtype=np.float64)
    len_resized = out_len if len_resized is None else len_resized
    if ctm == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if ctm == "half_pixel_symmetric":
        adj = out_len / (scale * in_len)
        center = in_len / 2
        return center * (1 - adj) + (x + 0.5) / scale - 0.5
    if ctm == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out_len > 1 else np.zeros_like(x)
    if ctm == "align_corners":
        return x * (in_len - 1) / (len_resized - 1) if len_resized > 1 else np.zeros_like(x)
    if ctm == "asymmetric":
        return x / scale
    if ctm == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    if ctm == "tf_crop_and_resize":
        s, e = roi
        if out_len > 1:
            return s * (in_len - 1) + x * (e - s) * (in_len - 1) / (out_len - 1)
        return np.full_like(x, 0.5 * (s + e) * (in_len - 1))
    raise AssertionError(ctm)


def _nearest_index(xo, mode, scale, in_len):
    if mode == "simple":    # Resize-10 / Upsample: floor when enlarging, ceil when shrinking
        i = np.ceil(xo) if scale < 1 else np.floor(xo)
    elif mode == "round_prefer_floor":
        i = np.where(xo - np.floor(xo) == 0.5, np.floor(xo), np.round(xo))
    elif mode == "round_prefer_ceil":
        i = np.where(xo - np.floor(xo) == 0.5, np.ceil(xo), np.round(xo))
    elif mode == "floor":
        i = np.floor(xo)
    else:
        i = np.ceil(xo)
    return np.clip(i, 0, in_len - 1).astype(np.int64)


def _cubic(d, a):
    d = np.abs(d)
    return np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                    np.where(d < 2, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, 0.0))


def _interp_matrix(xo, in_len, mode, cubic_a, exclude_outside, antialias, scale):
    out_len = xo.shape[0]
    M = np.zeros((out_len, in_len), np.float64)
    support = 1.0 if mode == "linear" else 2.0
    shrink = antialias and scale < 1
    radius = support / scale if shrink else support
    if mode == "linear" and not shrink:
        xo = np.clip(xo, 0, in_len - 1)
    lo = np.floor(xo - radius).astype(np.int64) + 1
    for t in range(int(math.ceil(2 * radius)) + 1):
        idx = lo + t
        d = idx - xo
        if shrink:
            d = d * scale
        w = np.maximum(0.0, 1 - np.abs(d)) if mode == "linear" else _cubic(d, cubic_a)
        inside = (idx >= 0) & (idx < in_len)
        if exclude_outside:
            w = np.where(inside, w, 0.0)
        np.add.at(M, (np.arange(out_len), np.clip(idx, 0, in_len - 1)), w)
    if exclude_outside or shrink:
        s = M.sum(axis=1, keepdims=True)
        M = np.divide(M, s, out=np.zeros_like(M), where=s != 0)
    return M


class _ResizeBase(Op):
    is_view = True   # an identity resize returns its input unchanged
    def parse_common(self, mode, ctm, nearest, cubic_a=-0.75, exclude=0, extrap=0.0,
                     antialias=0):
        if mode not in ("nearest", "linear", "cubic"):
            raise self.unsupported(f"mode '{mode}' is not supported")
        if ctm not in _CTMS:
            raise self.unsupported(f"coordinate_transformation_mode '{ctm}' is not supported")
        if nearest not in _NEAREST:
            raise self.unsupported(f"nearest_mode '{nearest}' is not supported")
        self.mode, self.ctm, self.nearest = mode, ctm, nearest
        self.cubic_a, self.exclude, self.extrap = cubic_a, bool(exclude), extrap
        self.antialias = bool(antialias)

    def resize(self, x, out_shape, scales, roi=None, from_scales=False):
        self.check_size(out_shape)
        y = x
        mask = None
        for ax in range(x.ndim):
            n_in, n_out = x.shape[ax], out_shape[ax]
            r = None if roi is None else (roi[ax], roi[ax + x.ndim])
            if n_in == n_out and scales[ax] == 1 and self.ctm != "tf_crop_and_resize":
                continue
            # align_corners divides by the unrounded resized length when scales are given.
            n_len = n_in * scales[ax] if from_scales else n_out
            if n_out == 0 or n_in == 0:
                shape = list(y.shape)
                shape[ax] = n_out
                y = np.zeros(shape, y.dtype)
                continue
            xo = _orig_coords(self.ctm, n_out, n_in, scales[ax], r, n_len)
            if self.ctm == "tf_crop_and_resize":
                bad = (xo < 0) | (xo > n_in - 1)
                if bad.any():
                    shape = [1] * x.ndim
                    shape[ax] = n_out
                    m = bad.reshape(shape)
                    mask = m if mask is None else (mask | m)
            if self.mode == "nearest":
                y = np.take(y, _nearest_index(xo, self.nearest, scales[ax], n_in), axis=ax)
            else:
                M = _interp_matrix(xo, n_in, self.mode, self.cubic_a, self.exclude,
                                   self.antialias, scales[ax])
                yd = np.moveaxis(y, ax, -1)
                yd = yd @ M.T.astype(np.float32 if y.dtype == np.float32 else np.float64)
                y = np.moveaxis(yd, -1, ax)
        if mask is not None:
            y = np.where(mask, y.dtype.type(self.extrap), y)
        if y.dtype != x.dtype:
            y = (np.round(y) if x.dtype.kind in "iu" else y).astype(x.dtype)
        return np.ascontiguousarray(y)


@register("Upsample", since=7, until=9)
class Upsample(_ResizeBase):
    def setup(self):
        mode = self.attr("mode", "string", "nearest")
        mode = "linear" if mode in ("bilinear", "linear") else mode
        self.parse_common(mode, "asymmetric", "simple")
        self.scales = self.attr("scales", "floats") if self.opset < 9 else None

    def run(self, x, scales=None):
        sc = self.scales if scales is None else [float(v) for v in np.asarray(scales).reshape(-1)]
        if sc is None or len(sc) != x.ndim or min(sc) <= 0:
            raise ValueError(f"{self.label}: scales {sc} must have one positive value per axis ({x.ndim})")
        out = [int(math.floor(d * s)) for d, s in zip(x.shape, sc)]
        return [self.resize(x, out, sc)]


@register("Resize", since=10, until=10)
class Resize10(Upsample):
    def setup(self):
        mode = self.attr("mode", "string", "nearest")
        self.parse_common(mode, "asymmetric", "simple")
        self.scales = None


@register("Resize", since=11)
class Resize(_ResizeBase):
    def setup(self):
        self.parse_common(
            self.attr("mode", "string", "nearest"),
            self.attr("coordinate_transformation_mode", "string", "half_pixel"),
            self.attr("nearest_mode", "string", "round_prefer_floor"),
            self.attr("cubic_coeff_a", "float", -0.75),
            self.attr("exclude_outside", "int", 0),
            self.attr("extrapolation_value", "float", 0.0),
            self.attr("antialias", "int", 0) if self.opset >= 18 else 0)
        self.axes = self.attr("axes", "ints", None) if self.opset >= 18 else None
        self.policy = self.attr("keep_aspect_ratio_policy", "string", "stretch") \
            if self.opset >= 18 else "stretch"
        if self.policy not in ("stretch", "not_larger", "not_smaller"):
            raise self.error(f"keep_aspect_ratio_policy '{self.policy}' is not valid")

    def run(self, x, roi=None, scales=None, sizes=None):
        r = x.ndim
        axes = list(range(r)) if self.axes is None else [a % r for a in self.axes]
        if scales is not None and scales.size == 0:
            scales = None
        if sizes is not None and sizes.size == 0:
            sizes = None
        if (scales is None) == (sizes is None):
            raise ValueError(f"{self.label}: exactly one of scales and sizes must be given")
        full_scales = [1.0] * r
        out = list(x.shape)
        if scales is not None:
            sc = [float(v) for v in np.asarray(scales).reshape(-1)]
            if len(sc) != len(axes) or min(sc) <= 0:
                raise ValueError(f"{self.label}: scales {sc} must hold one positive value per "
                                 f"resized axis ({len(axes)})")
            for a, s in zip(axes, sc):
                full_scales[a] = s
                out[a] = int(math.floor(x.shape[a] * s))
        else:
            sz = ints_of(self, sizes, "sizes")
            if len(sz) != len(axes) or min(sz) < 0:
                raise ValueError(f"{self.label}: sizes {sz} must hold one value per resized axis "
                                 f"({len(axes)})")
            if self.policy != "stretch":
                ratios = [s / x.shape[a] for a, s in zip(axes, sz)]
                k = min(ratios) if self.policy == "not_larger" else max(ratios)
                sz = [int(math.floor(k * x.shape[a] + 0.5)) for a in axes]
                for a in axes:
                    full_scales[a] = k
            for a, s in zip(axes, sz):
                out[a] = s
                if self.policy == "stretch":
                    full_scales[a] = s / x.shape[a] if x.shape[a] else 1.0
        roi_full = None
        if self.ctm == "tf_crop_and_resize":
            if roi is None or roi.size == 0:
                raise ValueError(f"{self.label}: tf_crop_and_resize needs a roi input")
            rv = [float(v) for v in np.asarray(roi).reshape(-1)]
            if len(rv) != 2 * len(axes):
                raise ValueError(f"{self.label}: roi must hold 2 x {len(axes)} values, got {len(rv)}")
            roi_full = [0.0] * r + [1.0] * r
            for i, a in enumerate(axes):
                roi_full[a], roi_full[a + r] = rv[i], rv[i + len(axes)]
        return [self.resize(x, out, full_scales, roi_full, from_scales=scales is not None)]
