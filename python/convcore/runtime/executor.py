"""Runs the optimised node list over a dict of live values.

Stateless per call (safe from several threads): all per-run values live in a
local dict; ops are read-only objects. The kernels release the GIL.
"""
from __future__ import annotations

import time

import numpy as np

from . import native_chain
from .cuda_ops import to_host
from .errors import node_label


_ERRORS = (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError, OverflowError,
           AttributeError, AssertionError, NotImplementedError)


def run_nodes(graph, free_after, env: dict, timings: list | None = None) -> dict:
    """timings: if a list, gets the seconds each node took (profiling; every
    node then runs through its own op, no native chains)."""
    steps, chained = _steps(graph, free_after)
    with np.errstate(all="ignore"):   # inf/nan follow IEEE as in onnxruntime
        return _run(steps if timings is not None else chained, env, timings)


def _steps(graph, free_after):
    """Per node, what a run needs, worked out once per (graph, memory plan):
    the op's entry point, input names without trailing omitted ones, output
    names, how many outputs must come back, values to free after. Cached on
    the graph (ops and plans do not change after session creation), with the
    same list where runs of kernel nodes became native chains."""
    cached = getattr(graph, "_steps", None)
    if cached is not None and cached[0] is free_after and cached[2] == native_chain.ENABLED:
        return cached[1]
    mixed = graph.device != "cpu"
    steps = []
    for node, frees in zip(graph.nodes, free_after):
        ins = list(node.inputs)
        while ins and not ins[-1]:   # trailing omitted optional inputs: not passed
            ins.pop()
        # Ops that share per-run buffers (convs writing into a Concat's output)
        # get the run's value dict (run_in).
        uses_env = bool(node.op.uses_env)
        fn = node.op.run_in if uses_env else node.op.run
        need = sum(1 for o in node.outputs if o)
        host = mixed and not node.on_device   # a host node of a GPU session
        steps.append((node, fn, uses_env, tuple(ins), tuple(node.outputs), need,
                      tuple(frees), host))
    both = (steps, native_chain.build_chain_steps(graph, free_after, steps))
    graph._steps = (free_after, both, native_chain.ENABLED)
    return both


def _run(steps, env, timings):
    clock = time.perf_counter if timings is not None else None
    for step in steps:
        if type(step) is native_chain.ChainStep:
            step.run(env, _run)
            continue
        node, fn, uses_env, ins, outs_names, need, frees, host = step
        t0 = clock() if clock else 0.0
        args = [env[name] if name else None for name in ins]
        if host:
            args = [to_host(a) for a in args]
        try:
            outs = fn(env, *args) if uses_env else fn(*args)
        except _ERRORS as e:
            raise _wrap(node, e) from None
        if len(outs) < need:
            raise ValueError(f"{node_label(node)}: produced {len(outs)} outputs, the graph "
                             f"expects {len(node.outputs)}")
        if clock:
            timings.append(clock() - t0)
        for name, v in zip(outs_names, outs):
            if name:
                env[name] = v
        for name in frees:
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
