"""Fuse a 1x1 Conv into the depthwise Conv it feeds (MobileNet-style
"expand + depthwise"): the depthwise node takes the 1x1's input and both
weight sets, and runs as one kernel (`_core.PackedPwDw`) that computes the
wide expansion band by band in cache instead of storing it.

Only constant float32 weights, a plain 1x1 (stride 1, no padding, group 1,
no residual, at most a clamp activation) whose output feeds nothing else,
and 3x3 / 5x5 depthwise convs at stride 1 or 2 -- the shapes the fused
kernel has; CPU sessions only.
"""
from __future__ import annotations

import numpy as np

from .fuse_conv import _Users, _finish


def _const(graph, name, ndim=None):
    v = graph.constants.get(name) if name else None
    if v is None or v.dtype != np.float32 or (ndim is not None and v.ndim != ndim):
        return None
    return v


def _bias_ok(graph, conv) -> bool:
    """No bias, or a constant float32 vector."""
    return not (len(conv.inputs) > 2 and conv.inputs[2]) or \
        _const(graph, conv.inputs[2], 1) is not None


def _pointwise_ok(graph, conv) -> bool:
    op = conv.op
    if op.post is not None or op.residual_index is not None or op.group != 1:
        return False
    w = _const(graph, conv.inputs[1], 4)
    if w is None or w.shape[2:] != (1, 1):
        return False
    if not _bias_ok(graph, conv):
        return False
    win = op.win
    if any(s != 1 for s in (win["strides"] or [1])):
        return False
    if win["auto_pad"] == "NOTSET" and any(p != 0 for p in (win["pads"] or [0])):
        return False
    return True


def _depthwise_ok(graph, conv, channels) -> bool:
    op = conv.op
    w = _const(graph, conv.inputs[1], 4)
    if w is None or w.shape[0] != channels or w.shape[1] != 1 or op.group != channels:
        return False
    if w.shape[2] != w.shape[3] or w.shape[2] not in (3, 5):
        return False
    if not _bias_ok(graph, conv):
        return False
    win = op.win
    strides = list(win["strides"] or [1, 1])
    if len(strides) != 2 or strides[0] != strides[1] or strides[0] not in (1, 2):
        return False
    # Pads that depend on the input size cannot be packed ahead (Conv.prepare).
    return not (win["auto_pad"] in ("SAME_UPPER", "SAME_LOWER") and strides[0] != 1)


def fuse_pointwise_depthwise(graph):
    users = _Users(graph)
    producer = {o: n for n in graph.nodes for o in n.outputs if o}
    for dw in list(graph.nodes):
        if dw.op_type != "Conv" or id(dw) in users.removed or dw.op.pre is not None:
            continue
        pw = producer.get(dw.inputs[0])
        if pw is None or pw.op_type != "Conv" or id(pw) in users.removed:
            continue
        if users.single(dw.inputs[0]) is not dw or len(pw.outputs) != 1:
            continue
        if not _pointwise_ok(graph, pw):
            continue
        if not _depthwise_ok(graph, dw, graph.constants[pw.inputs[1]].shape[0]):
            continue
        ins = list(dw.inputs) + [""] * (4 - len(dw.inputs))
        pw_bias = pw.inputs[2] if len(pw.inputs) > 2 else ""
        # [x, W, B, residual, W of the 1x1, B of the 1x1]: the 1x1's weights
        # stay inputs (so constant passes keep them) until prepare() packs.
        dw.inputs = [pw.inputs[0], ins[1], ins[2], ins[3], pw.inputs[1], pw_bias]
        dw.op.pre = pw.op
        users.add_input(dw, pw.inputs[0])
        dw.op.folded = [pw.name] + list(getattr(pw.op, "folded", [])) + \
            list(getattr(dw.op, "folded", []))
        users.drop(pw)
    _finish(graph, users)
