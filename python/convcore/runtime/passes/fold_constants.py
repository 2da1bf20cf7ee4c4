"""Evaluate, once at load, every node whose inputs are all constants."""
from __future__ import annotations

import numpy as np

from ..errors import ModelError


def fold_constants(graph):
    keep = []
    for n in graph.nodes:
        ins = [i for i in n.inputs if i]
        if all(i in graph.constants for i in ins) and n.op_type not in _NEVER:
            try:
                with np.errstate(all="ignore"):
                    outs = n.op.run(*[graph.constants[i] if i else None for i in n.inputs])
            except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError, OverflowError,
                    AttributeError, AssertionError, NotImplementedError) as e:
                msg = str(e)
                if f"'{n.name}'" not in msg:
                    msg = f"node '{n.name}' ({n.op_type}): {msg}"
                raise ModelError(msg) from None
            for name, v in zip(n.outputs, outs):
                if name:
                    v = np.asarray(v)
                    if v.flags.writeable:
                        v = np.array(v, copy=True)
                        v.flags.writeable = False
                    graph.constants[name] = v
            continue
        keep.append(n)
    graph.nodes = keep


_NEVER = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike"})
