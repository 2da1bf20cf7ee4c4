"""Runs the optimised node list over a dict of live values.

Stateless per call (safe from several threads): all per-run values live in a
local dict; ops are read-only objects. The kernels release the GIL.
"""
from __future__ import annotations

import time

import numpy as np

from .cuda_ops import to_host
from .errors import node_label


def run_nodes(graph, free_after, env: dict, timings: list | None = None) -> dict:
    """timings: if a list, gets the seconds each node took (profiling)."""
    with np.errstate(all="ignore"):   # inf/nan follow IEEE as in onnxruntime
        return _run(graph, free_after, env, timings)


def _run(graph, free_after, env, timings):
    clock = time.perf_counter if timings is not None else None
    mixed = graph.device != "cpu"
    for i, node in enumerate(graph.nodes):
        t0 = clock() if clock else 0.0
        args = [env[name] if name else None for name in node.inputs]
        if mixed and not node.on_device:   # a host node of a GPU session
            args = [to_host(a) for a in args]
        # Trailing omitted optional inputs are simply not passed.
        while args and args[-1] is None:
            args.pop()
        try:
            # Ops that share per-run buffers (convs writing into a Concat's
            # output) get the run's value dict.
            outs = node.op.run_in(env, *args) if node.op.uses_env else node.op.run(*args)
        except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError, OverflowError,
                AttributeError, AssertionError, NotImplementedError) as e:
            raise _wrap(node, e) from None
        if len(outs) < len([o for o in node.outputs if o]):
            raise ValueError(f"{node_label(node)}: produced {len(outs)} outputs, the graph "
                             f"expects {len(node.outputs)}")
        if clock:
            timings.append(clock() - t0)
        for name, v in zip(node.outputs, outs):
            if name:
                env[name] = v
        for name in free_after[i]:
            env.pop(name, None)
    return env


def _wrap(node, e):
    msg = str(e)
    label = node_label(node)
    if f"'{node.name}'" not in msg:
        msg = f"{label}: {msg}"
    cls = type(e) if isinstance(e, (ValueError, TypeError)) else ValueError
    try:
        return cls(msg)
    except Exception:
        return ValueError(msg)
