"""Fuse what follows a Conv into the conv node itself.

- residual: Conv -> Add(conv, other) becomes conv(..., residual=other), added
  inside the kernel's epilogue (before its clamp, so a later Relu fuses too);
- clamp activations (Relu, Clip with constant bounds) go into the epilogue;
- other activations (HardSwish, HardSigmoid*x, Sigmoid*x = SiLU, Sigmoid,
  LeakyRelu, Tanh) run in place on the conv's output right after the kernel.
"""
from __future__ import annotations

import numpy as np

from ..graph import consumers, toposort


class _Users:
    """value -> consumer nodes, kept up to date as fusions rewire the graph,
    so each pass is one linear sweep (no restart per fusion)."""

    def __init__(self, graph):
        self.map = consumers(graph.nodes)
        self.outputs = {o.name for o in graph.outputs}
        self.removed = set()

    def of(self, value):
        return [n for n in self.map.get(value, []) if id(n) not in self.removed]

    def single(self, value):
        u = self.of(value)
        return u[0] if len(u) == 1 and value not in self.outputs else None

    def add_input(self, node, value):
        self.map.setdefault(value, []).append(node)

    def drop(self, node):
        self.removed.add(id(node))


def _note(conv, what):
    conv.op.folded = getattr(conv.op, "folded", []) + [what]


def _finish(graph, users):
    graph.nodes = [n for n in graph.nodes if id(n) not in users.removed]
    graph.nodes = toposort(graph.nodes, set(graph.constants) | {i.name for i in graph.inputs})


def fuse_residual(graph):
    users = _Users(graph)
    for conv in list(graph.nodes):
        if conv.op_type != "Conv" or id(conv) in users.removed:
            continue
        if conv.op.act or conv.op.post or conv.op.residual_index is not None:
            continue
        add = users.single(conv.outputs[0])
        if add is None or add.op_type not in ("Add", "Sum") or len(add.inputs) != 2:
            continue
        a, b = add.inputs
        other = b if a == conv.outputs[0] else a
        if other == conv.outputs[0] or not other:
            continue
        conv.inputs = list(conv.inputs) + [""] * (3 - len(conv.inputs)) + [other]
        conv.op.residual_index = 3
        users.add_input(conv, other)
        _note(conv, add.op_type)
        conv.outputs = [add.outputs[0]]
        users.drop(add)
    _finish(graph, users)


def _clip_bounds(graph, node):
    if node.op_type == "Relu":
        return "relu"
    if node.op_type != "Clip":
        return None
    if graph.opset < 11:
        return ("clip", float(node.op.lo), float(node.op.hi))
    lo, hi = -np.inf, np.inf
    for idx in (1, 2):
        if len(node.inputs) > idx and node.inputs[idx]:
            v = graph.constants.get(node.inputs[idx])
            if v is None or v.size != 1:
                return None
            if idx == 1:
                lo = float(v.reshape(()))
            else:
                hi = float(v.reshape(()))
    return ("clip", lo, hi)


_POST = {"HardSwish": ("hardswish", 1 / 6, 0.5), "Sigmoid": ("sigmoid",), "Tanh": ("tanh",)}


def _fuse_one(graph, users, conv) -> bool:
    """Fuse the activation after conv, if any; True if something was fused."""
    y = conv.outputs[0]
    if y in users.outputs or conv.op.post is not None:
        return False
    us = users.of(y)
    if len(us) == 1:
        nxt = us[0]
        if conv.op.act is None and nxt.op_type in ("Relu", "Clip"):
            act = _clip_bounds(graph, nxt)
            if act is not None:
                conv.op.act = act
                _note(conv, nxt.op_type)
                conv.outputs = [nxt.outputs[0]]
                users.drop(nxt)
                return True
        post = _POST.get(nxt.op_type)
        if nxt.op_type == "LeakyRelu":
            post = ("leakyrelu", nxt.op.alpha)
        if post is not None:
            conv.op.post = post
            _note(conv, nxt.op_type)
            conv.outputs = [nxt.outputs[0]]
            users.drop(nxt)
            return True
    elif len(us) == 2:
        # x * HardSigmoid(x) (HardSwish before opset 14) and x * Sigmoid(x) (SiLU).
        gate = next((u for u in us if u.op_type in ("Sigmoid", "HardSigmoid")), None)
        mul = next((u for u in us if u.op_type == "Mul"), None)
        if gate is None or mul is None or gate.outputs[0] in users.outputs:
            return False
        if sorted(mul.inputs) != sorted([y, gate.outputs[0]]) or len(users.of(gate.outputs[0])) != 1:
            return False
        conv.op.post = ("silu",) if gate.op_type == "Sigmoid" else \
            ("hardswish", gate.op.alpha, gate.op.beta)
        _note(conv, f"{gate.op_type}*Mul")
        conv.outputs = [mul.outputs[0]]
        users.drop(gate)
        users.drop(mul)
        return True
    return False


def fuse_activations(graph):
    users = _Users(graph)
    for conv in list(graph.nodes):
        if conv.op_type != "Conv" or id(conv) in users.removed:
            continue
        # A clamp then a post op (Conv -> Relu6 -> HardSwish...) fuse in turn.
        while _fuse_one(graph, users, conv):
            pass
    _finish(graph, users)
