"""Concat of conv outputs along channels, written in place.

SqueezeNet's fire modules, GoogLeNet's inception blocks and DenseNet's
layers concatenate the outputs of several convs along the channel axis. At
batch 1 each conv's output is a contiguous channel range of the
concatenation, so the convs can write straight into it and the Concat
copies nothing. This pass only marks such groups (each producer: a Conv
whose output feeds only this Concat, weights constant); the run decides,
since batch > 1 (strided channel ranges) falls back to the plain copy.
"""
from __future__ import annotations

from ..graph import consumers


def mark_concat_in_place(graph):
    users = consumers(graph.nodes)
    outputs = {o.name for o in graph.outputs}
    producer = {o: n for n in graph.nodes for o in n.outputs if o}
    for cat in graph.nodes:
        if cat.op_type != "Concat" or getattr(cat.op, "axis", None) not in (1, -3):
            continue
        ins = [i for i in cat.inputs if i]
        if len(ins) < 2 or len(set(ins)) != len(ins):
            continue
        convs = [producer.get(i) for i in ins]
        ok = all(
            p is not None and p.op_type == "Conv" and len(p.outputs) == 1
            and p.inputs[1] in graph.constants and graph.constants[p.inputs[1]].ndim == 4
            and len(users.get(p.outputs[0], [])) == 1 and p.outputs[0] not in outputs
            and getattr(p.op, "concat_slot", None) is None
            for p in convs)
        if not ok:
            continue
        ks = [graph.constants[p.inputs[1]].shape[0] for p in convs]
        c0 = 0
        for p, k in zip(convs, ks):
            p.op.concat_slot = (cat.outputs[0], c0, sum(ks))
            c0 += k
        cat.op.in_place = True
