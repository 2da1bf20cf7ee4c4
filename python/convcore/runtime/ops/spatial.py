"""Shared window geometry for Conv/ConvTranspose/pools: ONNX attributes ->
(strides, 4-tuple pads, dilations) for a given input size."""
from __future__ import annotations

import math

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def read_window_attrs(op, nsp: int | None, kernel=None, dilations_ok=True):
    """Parse kernel_shape/strides/pads/dilations/auto_pad; nsp may be None when
    the rank is only known at run time (weights fed as inputs)."""
    a = {}
    a["kernel"] = op.attr("kernel_shape", "ints", kernel)
    if a["kernel"] is not None:
        nsp = len(a["kernel"]) if nsp is None else nsp
    a["auto_pad"] = op.attr("auto_pad", "string", "NOTSET")
    if a["auto_pad"] not in AUTO_PADS:
        raise op.error(f"auto_pad must be one of {AUTO_PADS}, got '{a['auto_pad']}'")
    a["strides"] = op.attr("strides", "ints", None)
    a["pads"] = op.attr("pads", "ints", None)
    a["dilations"] = op.attr("dilations", "ints", None) if dilations_ok else None
    if nsp is not None:
        if nsp not in (1, 2):
            raise op.unsupported(f"{nsp}-D windows are not supported (1-D and 2-D only)")
        check_lengths(op, a, nsp)
    return a


def check_lengths(op, a, nsp):
    for key, n in (("kernel", nsp), ("strides", nsp), ("dilations", nsp), ("pads", 2 * nsp)):
        v = a.get(key)
        if v is not None and len(v) != n:
            raise op.error(f"{'kernel_shape' if key == 'kernel' else key} must have {n} values for a "
                           f"{nsp}-D window, got {list(v)}")
        if v is not None and key != "pads" and min(v) <= 0:
            raise op.error(f"{'kernel_shape' if key == 'kernel' else key} must be positive, got {list(v)}")
    if a.get("pads") is not None and min(a["pads"]) < 0:
        raise op.unsupported(f"negative pads {a['pads']} are not supported")


def to2d(v, nsp, fill):
    """1-D attribute lists become 2-D with a unit leading (height) axis."""
    if v is None:
        return [fill, fill]
    v = list(v)
    return [fill] + v if nsp == 1 else v


def geometry(op, a, in_hw, kernel_hw, nsp, ceil_mode=False):
    """-> (strides2, pads4 (t, l, b, r), dilations2) for a 2-D (or lifted 1-D) window."""
    s = to2d(a["strides"], nsp, 1)
    d = to2d(a.get("dilations"), nsp, 1)
    if a["pads"] is not None:
        p = list(a["pads"])
        p = [0, p[0], 0, p[1]] if nsp == 1 else p
    else:
        p = [0, 0, 0, 0]
    ap = a["auto_pad"]
    if ap == "VALID":
        p = [0, 0, 0, 0]
    elif ap in ("SAME_UPPER", "SAME_LOWER"):
        p = [0, 0, 0, 0]
        for i in range(2):
            eff = d[i] * (kernel_hw[i] - 1) + 1
            out = math.ceil(in_hw[i] / s[i])
            total = max(0, (out - 1) * s[i] + eff - in_hw[i])
            small, big = total // 2, total - total // 2
            p[i], p[i + 2] = (small, big) if ap == "SAME_UPPER" else (big, small)
    return s, p, d
