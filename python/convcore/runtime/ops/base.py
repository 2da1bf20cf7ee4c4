"""Base class of operator implementations: attribute parsing, once, at load."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import AttributeProto as AP

from ..errors import ModelError, UnsupportedModelError, node_label

REQUIRED = object()
_KIND = {"int": AP.INT, "float": AP.FLOAT, "string": AP.STRING, "ints": AP.INTS,
         "floats": AP.FLOATS, "tensor": AP.TENSOR, "strings": AP.STRINGS}

# Refuse runtime results bigger than this many elements (e.g. Expand/Tile/
# ConstantOfShape asked for an absurd shape by a malicious or broken model).
MAX_ELEMENTS = 1 << 31


class Op:
    """One node's implementation. Subclasses parse attributes in ``setup`` and
    compute in ``run(*inputs) -> list``. ``run`` must not mutate ``self`` (several
    threads may run the same session)."""

    inplace_capable = False   # may write its result into input 0 (elementwise)
    uses_env = False          # run_in(env, *inputs) instead of run(*inputs)
    is_view = False           # output may alias input 0's memory (Reshape, Squeeze...)
    min_inputs = 0            # required inputs beyond what run()'s signature says

    def __init__(self, node, opset: int, base_dir=None):
        self.node = node
        self.opset = opset
        self.base_dir = base_dir
        self.inplace = False  # set by the memory planner
        self._check_arity()
        self.setup()

    def _check_arity(self):
        """Required inputs (run's parameters without defaults) must be named."""
        import inspect
        params = list(inspect.signature(self.run).parameters.values())
        required = sum(1 for p in params if p.kind == p.POSITIONAL_OR_KEYWORD and p.default is p.empty)
        required = max(required, self.min_inputs)
        variadic = any(p.kind == p.VAR_POSITIONAL for p in params)
        ins = self.node.inputs
        missing = [i for i in range(required) if i >= len(ins) or not ins[i]]
        if missing:
            raise ModelError(f"{self.label}: needs {required} input(s), input(s) {missing} are missing")
        if not variadic and len(ins) > len(params):
            raise ModelError(f"{self.label}: takes at most {len(params)} inputs, got {len(ins)}")

    def setup(self):
        pass

    # ---- helpers -------------------------------------------------------------
    @property
    def label(self) -> str:
        return node_label(self.node)

    def error(self, msg: str) -> ModelError:
        return ModelError(f"{self.label}: {msg}")

    def unsupported(self, msg: str) -> UnsupportedModelError:
        return UnsupportedModelError(f"{self.label}: {msg}")

    def attr(self, name: str, kind: str, default=REQUIRED):
        a = self.node.attrs.get(name)
        if a is None:
            if default is REQUIRED:
                raise self.error(f"missing required attribute '{name}'")
            return default
        if a.type != _KIND[kind]:
            # An INTS attribute given as one INT is common enough in hand-made graphs.
            if kind == "ints" and a.type == AP.INT:
                return [int(a.i)]
            if kind == "floats" and a.type == AP.FLOAT:
                return [float(a.f)]
            if kind == "float" and a.type == AP.INT:
                return float(a.i)
            raise self.error(f"attribute '{name}' must be {kind}, got "
                             f"{AP.AttributeType.Name(a.type) if a.type in AP.AttributeType.values() else a.type}")
        if kind == "int":
            return int(a.i)
        if kind == "float":
            return float(a.f)
        if kind == "string":
            return a.s.decode("utf-8", "replace")
        if kind == "ints":
            return [int(v) for v in a.ints]
        if kind == "floats":
            return [float(v) for v in a.floats]
        if kind == "strings":
            return [s.decode("utf-8", "replace") for s in a.strings]
        from ..loader import tensor_to_array
        return tensor_to_array(a.t, self.base_dir, what=f"{self.label} attribute '{name}'")

    def check_size(self, shape) -> None:
        n = 1
        for d in shape:
            if d < 0:
                raise ValueError(f"{self.label}: negative dimension in output shape {tuple(shape)}")
            n *= int(d)
        if n > MAX_ELEMENTS:
            raise ValueError(f"{self.label}: output shape {tuple(shape)} has {n} elements, "
                             f"above the limit of {MAX_ELEMENTS}")

    def n_inputs(self) -> int:
        return len(self.node.inputs)

    def has_input(self, i: int) -> bool:
        return i < len(self.node.inputs) and bool(self.node.inputs[i])

    def run(self, *inputs):  # pragma: no cover - abstract
        raise NotImplementedError


def ints_of(op: Op, a, what: str) -> list:
    """A 1-D (or scalar) integer tensor input as a list of Python ints."""
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{op.label}: {what} must be an integer tensor, got {a.dtype}")
    if a.ndim > 1:
        raise ValueError(f"{op.label}: {what} must be 1-D, got shape {a.shape}")
    return [int(v) for v in a.reshape(-1)]


def axis_of(op: Op, axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"{op.label}: {what} {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def onnx_dtype(op: Op, code: int):
    from ..loader import DTYPES
    if code not in DTYPES:
        raise op.unsupported(f"data type {code} "
                             f"({onnx.TensorProto.DataType.Name(code) if code in onnx.TensorProto.DataType.values() else '?'}) "
                             f"is not supported")
    return np.dtype(DTYPES[code])
