"""Attach an op implementation to every node; refuse unsupported ones all at once."""
from __future__ import annotations

from ..errors import ModelError, UnsupportedModelError
from ..graph import toposort
from ..ops import lookup


def bind_ops(graph, base_dir=None):
    missing = []
    for n in graph.nodes:
        if lookup(n.op_type, graph.opset, n.domain) is None:
            dom = f"{n.domain}." if n.domain not in ("", "ai.onnx") else ""
            missing.append(f"{dom}{n.op_type} (node '{n.name}')")
    if missing:
        raise UnsupportedModelError(
            f"the model uses {len(missing)} node(s) with operators convcore does not support at "
            f"opset {graph.opset}: " + ", ".join(missing))
    graph.nodes = toposort(graph.nodes, set(graph.constants) | {i.name for i in graph.inputs})
    problems = []
    for n in graph.nodes:
        cls = lookup(n.op_type, graph.opset, n.domain)
        try:
            n.op = cls(n, graph.opset, base_dir)
        except UnsupportedModelError as e:
            problems.append(str(e))
    if problems:
        raise UnsupportedModelError("unsupported operator settings: " + "; ".join(problems))
    names = {i.name for i in graph.inputs} | set(graph.constants)
    for n in graph.nodes:
        names.update(o for o in n.outputs if o)
    for o in graph.outputs:
        if o.name not in names:
            raise ModelError(f"graph output '{o.name}' is not produced by any node, input or initializer")
