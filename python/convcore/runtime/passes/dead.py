"""Drop nodes whose outputs nothing needs, and constants nothing reads."""
from __future__ import annotations


def eliminate_dead(graph):
    needed = {o.name for o in graph.outputs}
    keep = []
    for n in reversed(graph.nodes):
        if any(o in needed for o in n.outputs if o):
            keep.append(n)
            needed.update(i for i in n.inputs if i)
    graph.nodes = keep[::-1]
    for name in list(graph.constants):
        if name not in needed:
            del graph.constants[name]
