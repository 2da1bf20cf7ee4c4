"""Runs of nodes the compiled kernels can execute back to back (packed convs,
pools, batch-1 in-place concats, a classifier's Flatten and Gemm) become one
_core.NativeChain call.

Why: the Python executor costs ~5-10 us per node between kernels (more after
a conv has evicted the caches), while the other kernel threads wait; on 2
threads that was 15-18% of SqueezeNet's and MobileNetV2's run time. A chain
keeps its intermediate values in C++ and releases the GIL once.

A chain computes exactly what its nodes' Python ops compute: the same kernels
with the same arguments. Anything the chain refuses at run time (an input
that is not float32, a shape a kernel rejects, a broadcasting residual) makes
it re-run its nodes one by one through their ops, which either handle the
case or raise the node-named error.
"""
from __future__ import annotations

from .. import _core
from .ops.spatial import geometry

_ERRORS = (ValueError, TypeError, RuntimeError, MemoryError)

# Off: every node through its Python op (tests compare the two; A/B timing).
ENABLED = True


def _conv_ok(node):
    op = node.op
    ins = node.inputs
    return (node.op_type == "Conv" and getattr(op, "packed", None) is not None
            and op.post is None and len(getattr(op, "w_shape", ())) == 4
            and len(ins) >= 1 and ins[0] and not any(ins[1:3]) and len(ins) <= 4
            and len([o for o in node.outputs if o]) == 1)


def _pool_args(node):
    """(is_max, kernel, stride, pads, dilation, ceil, cip) or None."""
    op = node.op
    if node.op_type not in ("MaxPool", "AveragePool") or getattr(op, "nsp", 0) != 2:
        return None
    if len(node.inputs) != 1 or not node.inputs[0] or len([o for o in node.outputs if o]) != 1 \
            or not node.outputs[0]:
        return None
    ap = op.win["auto_pad"]
    if ap not in ("NOTSET", "VALID"):
        return None   # SAME pads depend on the input size
    k = list(op.win["kernel"])
    s, p, d = geometry(op, op.win, [1, 1], k, 2)   # shape-free for NOTSET/VALID
    is_max = node.op_type == "MaxPool"
    if not is_max and list(d) != [1, 1]:
        return None   # dilated average pooling: numpy path
    return (is_max, k, list(s), list(p), list(d), bool(op.ceil_mode and ap == "NOTSET"),
            bool(getattr(op, "cip", False)))


def _global_ok(node):
    return (node.op_type in ("GlobalAveragePool", "GlobalMaxPool") and len(node.inputs) == 1
            and node.inputs[0] and len(node.outputs) == 1 and node.outputs[0])


def _flatten_ok(node):
    return (node.op_type == "Flatten" and len(node.inputs) == 1 and node.inputs[0]
            and len(node.outputs) == 1 and node.outputs[0])


def _gemm_ok(node):
    op = node.op
    ins = node.inputs
    return (node.op_type == "Gemm" and op.alpha == 1.0 and op.beta == 1.0 and not op.ta
            and 2 <= len(ins) <= 3 and ins[0] and ins[1]
            and len(node.outputs) == 1 and node.outputs[0])


def _concat_ok(node):
    return (node.op_type == "Concat" and getattr(node.op, "in_place", False)
            and len(node.outputs) == 1 and node.outputs[0])


def _chainable(node, run):
    """node may join the run of nodes before it (run: those nodes)."""
    if _concat_ok(node):
        return _parts_in_chain(node, run)
    return (_conv_ok(node) or _pool_args(node) is not None or _global_ok(node)
            or _flatten_ok(node) or _gemm_ok(node))


class ChainStep:
    """One run of nodes [start, end) of the graph as a NativeChain."""

    def __init__(self, chain, in_names, out_names, frees, sub_steps):
        self.chain = chain
        self.in_names = in_names
        self.in_ids = list(range(len(in_names)))
        self.out_names = out_names
        self.out_ids = [len(in_names) + i for i in range(len(out_names))]
        self.frees = frees
        self.sub_steps = sub_steps   # the per-node steps, for the fallback

    def run(self, env, run_steps):
        try:
            outs = self.chain.run([env[n] for n in self.in_names], self.in_ids, self.out_ids)
        except _ERRORS:
            # Same nodes through their Python ops: the cases the chain does
            # not take (broadcasting residuals, other dtypes) or the
            # node-named error.
            run_steps(self.sub_steps, env, None)
        else:
            for name, v in zip(self.out_names, outs):
                env[name] = v
        for name in self.frees:
            env.pop(name, None)


def build_chain_steps(graph, free_after, steps, min_nodes=2):
    """steps: the executor's per-node steps (same order as graph.nodes).
    Returns steps with each maximal run of chainable nodes (at least
    min_nodes) replaced by one ChainStep."""
    nodes = graph.nodes
    if not ENABLED or graph.device != "cpu" or not hasattr(_core, "NativeChain"):
        return steps
    later_use = {}   # value -> index of its last reader
    for i, n in enumerate(nodes):
        for v in n.inputs:
            if v:
                later_use[v] = i
    outputs = {o.name for o in graph.outputs}
    result, i = [], 0
    while i < len(nodes):
        if not _chainable(nodes[i], ()):
            result.append(steps[i])
            i += 1
            continue
        j = i + 1
        while j < len(nodes) and _chainable(nodes[j], nodes[i:j]):
            j += 1
        chain = _make(graph, free_after, steps, i, j, later_use, outputs) \
            if j - i >= min_nodes else None
        if chain is None:
            result.extend(steps[i:j])
        else:
            result.append(chain)
        i = j
    return result


def _make(graph, free_after, steps, a, b, later_use, outputs):
    nodes = graph.nodes[a:b]
    produced = {o for n in nodes for o in n.outputs if o}
    in_names = []
    for n in nodes:
        for v in n.inputs:
            if v and v not in produced and v not in in_names:
                in_names.append(v)
    out_names = [o for n in nodes for o in n.outputs
                 if o and (o in outputs or later_use.get(o, -1) >= b)]
    ids = {name: k for k, name in enumerate(in_names + out_names)}

    def vid(name):
        if name not in ids:
            ids[name] = len(ids)
        return ids[name]

    # Concats of this run whose parts the convs may write in place.
    cats = {n.outputs[0] for n in nodes if n.op_type == "Concat"}
    for n in nodes:
        for name in n.inputs + n.outputs:
            if name:
                vid(name)
    chain = _core.NativeChain(len(ids))
    frees_out = []
    for k, n in enumerate(nodes):
        dead = [v for v in free_after[a + k] if v in ids]
        frees = [ids[v] for v in dead if v not in in_names]
        frees_out.extend(v for v in dead if v in in_names)
        if n.op_type == "Conv":
            slot = n.op.concat_slot
            cat, c0, total = -1, 0, 0
            if slot is not None and slot[0] in cats:
                cat, c0, total = ids[slot[0]], slot[1], slot[2]
            res = ids[n.inputs[3]] if len(n.inputs) > 3 and n.inputs[3] else -1
            chain.conv(n.op.packed, ids[n.inputs[0]], res, ids[n.outputs[0]], cat, c0, total,
                       frees)
        elif n.op_type in ("MaxPool", "AveragePool"):
            is_max, k_, s, p, d, ceil, cip = _pool_args(n)
            chain.pool(is_max, ids[n.inputs[0]], ids[n.outputs[0]], k_, s, p, d, ceil, cip, frees)
        elif n.op_type in ("GlobalAveragePool", "GlobalMaxPool"):
            chain.global_pool(n.op_type == "GlobalMaxPool", ids[n.inputs[0]], ids[n.outputs[0]],
                              frees)
        elif n.op_type == "Flatten":
            chain.flatten(ids[n.inputs[0]], ids[n.outputs[0]], n.op.axis, frees)
        elif n.op_type == "Gemm":
            c = ids[n.inputs[2]] if len(n.inputs) > 2 and n.inputs[2] else -1
            chain.gemm(ids[n.inputs[0]], ids[n.inputs[1]], c, ids[n.outputs[0]], n.op.tb, frees)
        else:
            chain.concat([ids[v] for v in n.inputs if v], ids[n.outputs[0]], frees)
    return ChainStep(chain, in_names, out_names, frees_out, steps[a:b])


def _parts_in_chain(cat, nodes):
    """Every part of an in-place Concat is a conv of this run aimed at it
    (else the convs write their own outputs and the Concat copies, in Python)."""
    key = cat.outputs[0]
    convs = {n.outputs[0]: n for n in nodes if n.op_type == "Conv"}
    for v in cat.inputs:
        if not v:
            continue
        p = convs.get(v)
        if p is None or p.op.concat_slot is None or p.op.concat_slot[0] != key:
            return False
    return True
