"""BatchNormalization after a Conv becomes a per-channel scale of the conv's
weights and a new bias: zero cost at run time."""
from __future__ import annotations

import numpy as np

from ..graph import consumers


def _fresh(graph, base):
    name, k = base, 0
    while name in graph.constants:
        k += 1
        name = f"{base}_{k}"
    return name


def fold_batchnorm(graph):
    users = consumers(graph.nodes)
    outputs = {o.name for o in graph.outputs}
    by_output = {o: n for n in graph.nodes for o in n.outputs if o}
    dropped = set()
    for bn in graph.nodes:
        if bn.op_type != "BatchNormalization" or len([o for o in bn.outputs if o]) != 1:
            continue
        src = bn.inputs[0]
        conv = by_output.get(src)
        if conv is None or conv.op_type != "Conv" or src in outputs or len(users.get(src, [])) != 1:
            continue
        if conv.op.act or conv.op.post or conv.op.residual_index is not None:
            continue
        c = graph.constants
        params = bn.inputs[1:5]
        if len(params) != 4 or not all(p in c for p in params) or conv.inputs[1] not in c:
            continue
        if len(conv.inputs) > 2 and conv.inputs[2] and conv.inputs[2] not in c:
            continue
        W = c[conv.inputs[1]]
        if W.dtype != np.float32 or any(c[p].shape != (W.shape[0],) for p in params):
            continue
        scale, shift = bn.op.scale_shift(*(c[p] for p in params))
        b0 = c[conv.inputs[2]].astype(np.float64) if len(conv.inputs) > 2 and conv.inputs[2] \
            else np.zeros(W.shape[0])
        w_new = (W.astype(np.float64) * scale.reshape(-1, *([1] * (W.ndim - 1)))).astype(np.float32)
        b_new = (b0 * scale + shift).astype(np.float32)
        wn, bn_name = _fresh(graph, conv.inputs[1] + "_bnfold"), _fresh(graph, conv.name + "_bias_bnfold")
        c[wn], c[bn_name] = w_new, b_new
        conv.inputs = [conv.inputs[0], wn, bn_name]
        conv.outputs = [bn.outputs[0]]
        conv.op.folded = getattr(conv.op, "folded", []) + ["BatchNormalization"]
        dropped.add(id(bn))
    graph.nodes = [n for n in graph.nodes if id(n) not in dropped]
