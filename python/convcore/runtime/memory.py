"""Static memory plan: when each value dies, and which nodes may write their
result into their first input's buffer.

A value is freed right after its last reader runs, so numpy's allocator
reuses the memory for the next activation; peak memory stays near weights +
the largest live activations. Views (Reshape, Squeeze, Slice...) share their
source's buffer, so an alias group is only overwritten when every member is
dead and none of them is a graph input, a constant or a graph output.
"""
from __future__ import annotations


def plan_memory(graph):
    nodes = graph.nodes
    outputs = {o.name for o in graph.outputs}
    protected = set(graph.constants) | {i.name for i in graph.inputs}
    last_use = {}
    for i, n in enumerate(nodes):
        for v in n.inputs:
            if v:
                last_use[v] = i
    # Alias roots: a view op's output lives in its input's buffer.
    root = {}
    for n in nodes:
        for o in n.outputs:
            if o:
                root[o] = o
        if n.op.is_view and n.inputs and n.inputs[0]:
            src = root.get(n.inputs[0], n.inputs[0])
            for o in n.outputs:
                if o:
                    root[o] = src
    group_last, group_bad = {}, set()
    for v, r in root.items():
        group_last[r] = max(group_last.get(r, -1), last_use.get(v, 10**9 if v in outputs else -1))
        if v in outputs:
            group_bad.add(r)
    free_after = [[] for _ in nodes]
    for v, i in last_use.items():
        if v not in outputs and v not in graph.constants:
            free_after[i].append(v)
    for i, n in enumerate(nodes):
        n.op.inplace = False
        if not n.op.inplace_capable or not n.inputs or not n.inputs[0]:
            continue
        v = n.inputs[0]
        r = root.get(v, v)
        if v in protected or r in protected or r in group_bad or v in outputs:
            continue
        if last_use.get(v) != i or group_last.get(r, 10**9) > i:
            continue
        n.op.inplace = True
    # Values produced but never read (unused optional outputs) die at once.
    for i, n in enumerate(nodes):
        for o in n.outputs:
            if o and o not in last_use and o not in outputs:
                free_after[i].append(o)
    return free_after
