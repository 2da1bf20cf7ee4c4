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


def _ctx(graph):
    return consumers(graph.nodes), {o.name for o in graph.outputs}


def _single_user(users, outputs, value):
    u = users.get(value, [])
    return u[0] if len(u) == 1 and value not in outputs else None


def _note(conv, what):
    conv.op.folded = getattr(conv.op, "folded", []) + [what]


def _absorb(graph, conv, node):
    """conv takes over node's output; node disappears."""
    conv.outputs = [node.outputs[0]]
    graph.nodes.remove(node)


def fuse_residual(graph):
    changed = True
    while changed:
        changed = False
        users, outputs = _ctx(graph)
        for conv in graph.nodes:
            if conv.op_type != "Conv" or conv.op.act or conv.op.post or conv.op.residual_index is not None:
                continue
            add = _single_user(users, outputs, conv.outputs[0])
            if add is None or add.op_type not in ("Add", "Sum") or len(add.inputs) != 2:
                continue
            a, b = add.inputs
            other = b if a == conv.outputs[0] else a
            if other == conv.outputs[0] or not other:
                continue
            conv.inputs = list(conv.inputs) + [""] * (3 - len(conv.inputs)) + [other]
            conv.op.residual_index = 3
            _note(conv, add.op_type)
            _absorb(graph, conv, add)
            changed = True
            break
    graph.nodes = toposort(graph.nodes, set(graph.constants) | {i.name for i in graph.inputs})


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


def fuse_activations(graph):
    changed = True
    while changed:
        changed = False
        users, outputs = _ctx(graph)
        for conv in graph.nodes:
            if conv.op_type != "Conv" or conv.op.post is not None:
                continue
            y = conv.outputs[0]
            us = users.get(y, [])
            if y in outputs:
                continue
            if len(us) == 1:
                nxt = us[0]
                if conv.op.act is None and nxt.op_type in ("Relu", "Clip"):
                    act = _clip_bounds(graph, nxt)
                    if act is not None:
                        conv.op.act = act
                        _note(conv, nxt.op_type)
                        _absorb(graph, conv, nxt)
                        changed = True
                        break
                post = {"HardSwish": ("hardswish", 1 / 6, 0.5), "Sigmoid": ("sigmoid",),
                        "Tanh": ("tanh",)}.get(nxt.op_type)
                if nxt.op_type == "LeakyRelu":
                    post = ("leakyrelu", nxt.op.alpha)
                if post is not None:
                    conv.op.post = post
                    _note(conv, nxt.op_type)
                    _absorb(graph, conv, nxt)
                    changed = True
                    break
            elif len(us) == 2:
                # x * HardSigmoid(x) (HardSwish before opset 14) and x * Sigmoid(x) (SiLU).
                gate = next((u for u in us if u.op_type in ("Sigmoid", "HardSigmoid")), None)
                mul = next((u for u in us if u.op_type == "Mul"), None)
                if gate is None or mul is None or gate.outputs[0] in outputs:
                    continue
                if sorted(mul.inputs) != sorted([y, gate.outputs[0]]):
                    continue
                if len(users.get(gate.outputs[0], [])) != 1:
                    continue
                if gate.op_type == "Sigmoid":
                    post = ("silu",)
                else:
                    post = ("hardswish", gate.op.alpha, gate.op.beta)
                conv.op.post = post
                _note(conv, f"{gate.op_type}*Mul")
                graph.nodes.remove(gate)
                _absorb(graph, conv, mul)
                changed = True
                break
    graph.nodes = toposort(graph.nodes, set(graph.constants) | {i.name for i in graph.inputs})
