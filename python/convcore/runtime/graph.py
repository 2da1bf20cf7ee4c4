"""The runner's graph IR: plain Python nodes over named values.

A Node keeps its ONNX attributes as protos (parsed by the op class once);
passes rewrite the node list; the executor walks it in order.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ModelError


@dataclass
class Node:
    name: str
    op_type: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)   # name -> onnx.AttributeProto
    domain: str = ""
    op: object = None                           # the bound op implementation
    on_device: bool = False                     # op runs on the GPU (runtime/cuda_ops.py)


@dataclass
class ValueSpec:
    name: str
    dtype: np.dtype | None
    shape: tuple | None   # ints, or str for symbolic/unknown dims; None = unknown rank


@dataclass
class Graph:
    nodes: list
    inputs: list            # ValueSpec of the graph inputs the user feeds
    outputs: list           # ValueSpec of the graph outputs
    constants: dict         # name -> np.ndarray (initializers and folded values)
    opset: int
    device: str = "cpu"     # "cuda": host nodes get their device inputs downloaded


def toposort(nodes: list, available: set) -> list:
    """Order nodes so that every input is produced before use.

    Raises ModelError on a cycle or on an input nothing produces.
    """
    producers = {}
    for n in nodes:
        for o in n.outputs:
            if not o:
                continue
            if o in producers or o in available:
                raise ModelError(f"value '{o}' is produced twice (by node '{n.name}' and "
                                 f"{'a graph input/initializer' if o in available else repr(producers[o].name)})")
            producers[o] = n
    for n in nodes:
        for i in n.inputs:
            if i and i not in producers and i not in available:
                raise ModelError(f"node '{n.name}' ({n.op_type}) uses value '{i}', which no node, "
                                 f"graph input or initializer defines")
    order, state = [], {}
    # Iterative DFS (no recursion limit on deep graphs); state 1 = on stack, 2 = done.
    for root in nodes:
        if state.get(id(root)) == 2:
            continue
        stack = [(root, iter([i for i in root.inputs if i in producers]))]
        state[id(root)] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                state[id(node)] = 2
                order.append(node)
                continue
            dep = producers[nxt]
            s = state.get(id(dep))
            if s == 1:
                raise ModelError(f"the graph has a cycle through node '{dep.name}' ({dep.op_type})")
            if s is None:
                state[id(dep)] = 1
                stack.append((dep, iter([i for i in dep.inputs if i in producers])))
    return order


def consumers(nodes: list) -> dict:
    """value name -> list of nodes reading it."""
    out = {}
    for n in nodes:
        for i in n.inputs:
            if i:
                out.setdefault(i, []).append(n)
    return out
