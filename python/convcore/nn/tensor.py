"""``Tensor``: a numpy array with a gradient and a record of the op that made it.

Reverse-mode autograd in the micrograd style: every op computes its forward
result with numpy (or a compiled kernel) and hands ``_make`` a closure that
maps the output's gradient to its inputs' gradients. ``backward()`` walks the
graph in reverse creation order: every Tensor gets a sequence number when it
is made, and an op's output is always newer than its inputs. Heavy ops (conv,
pooling, relu, linear) live in ``convcore.nn.functional`` and call the
compiled kernels; this file holds the arithmetic a training loop needs.

Every op also reports itself to ``_record`` so that ``export_onnx`` can trace a
forward pass; when no trace is running that costs one global lookup.
"""
from __future__ import annotations

import itertools
import numbers
from heapq import heappop, heappush

import numpy as np

from .. import _core

__all__ = ["Tensor", "no_grad", "enable_grad", "is_grad_enabled", "tensor"]

_grad_enabled = True
_tracer = None  # set by convcore.nn.onnx_export while tracing
_next_seq = itertools.count().__next__  # creation order: outputs are newer than inputs


def is_grad_enabled() -> bool:
    return _grad_enabled


class _GradMode:
    """Context manager / decorator that sets whether ops record a graph."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self):
        global _grad_enabled
        self.prev = _grad_enabled
        _grad_enabled = self.enabled
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)
        return wrapper


def no_grad():
    """``with no_grad():`` — ops inside build no graph (evaluation, optimiser steps)."""
    return _GradMode(False)


def enable_grad():
    return _GradMode(True)


def _record(op: str, inputs, out, **attrs) -> None:
    if _tracer is not None:
        _tracer.record(op, inputs, out, attrs)


def _to_array(data, dtype) -> np.ndarray:
    if dtype is None and type(data) is np.ndarray and data.dtype == np.float32:
        return data  # the common case (a batch of inputs), without the checks below
    if isinstance(data, Tensor):
        data = data.data
    elif hasattr(data, "detach") and hasattr(data, "numpy"):  # a torch tensor
        data = data.detach().cpu().numpy()
    a = np.asarray(data)
    if dtype is not None:
        return np.ascontiguousarray(a, dtype=dtype)
    # float32 is the kernels' type; float64 stays float64 only when asked for.
    if a.dtype != np.float32:
        a = a.astype(np.float32)
    return a


def _unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` down to ``shape``, undoing numpy broadcasting."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


class _Freed:
    """Stands in for a backward closure after ``backward()`` released the graph."""

    def __call__(self, g):
        raise RuntimeError("backward: trying to go through the graph a second time; the "
                           "saved arrays were freed by the first backward() call")


_FREED = _Freed()


class Tensor:
    """A numpy array (``.data``) with ``.grad`` and the op that produced it."""

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_op", "_seq",
                 "__weakref__")
    # numpy defers `ndarray + Tensor` to Tensor.__radd__, and a ufunc applied to a
    # Tensor (np.exp(t)) raises instead of silently returning an array without grad.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _to_array(data, dtype)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._parents = ()
        self._backward = None
        self._op = None
        self._seq = _next_seq()

    # -- construction of op results ---------------------------------------------------
    @staticmethod
    def _make(data: np.ndarray, parents: tuple, backward, op: str) -> "Tensor":
        """Wrap an op's result; keep the graph only if some parent needs a gradient."""
        out = Tensor.__new__(Tensor)
        out.data = data
        out.grad = None
        out._op = op
        out._seq = _next_seq()
        if _tracer is not None:
            _tracer.produced(out)
        if _grad_enabled:
            for p in parents:
                if p.requires_grad:
                    out.requires_grad = True
                    out._parents = parents
                    out._backward = backward
                    return out
        out.requires_grad = False
        out._parents = ()
        out._backward = None
        return out

    # -- plain accessors ----------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor can be converted, got shape {self.shape}")
        return self.data.item()

    def detach(self) -> "Tensor":
        return Tensor(self.data, dtype=self.data.dtype)

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        self.requires_grad = bool(flag)
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        extra = f", grad_fn={self._op}" if self._backward is not None else (
            ", requires_grad=True" if self.requires_grad else "")
        return f"Tensor({np.array2string(self.data, precision=4, threshold=20)}{extra})"

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    # -- autograd -------------------------------------------------------------------------
    def backward(self, grad=None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` that requires it."""
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (it was computed "
                               "under no_grad(), or from inputs that need no gradient)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: grad can be implicit only for a scalar output, "
                                   f"got shape {self.shape}; pass grad=")
            grad = np.empty_like(self.data)  # np.ones_like, without its Python wrapper
            grad.fill(1)
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.data.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward: grad shape {grad.shape} differs from tensor shape {self.shape}")

        # Ops newest first: by then every op that consumed a node (all newer)
        # has added its share to grads[id(node)]. Leaves never wait in the
        # heap: their share is added to .grad as soon as it is handed over.
        #
        # A leaf keeps the array it is handed when nothing else can see it: a
        # fresh kernel output that went to this leaf alone. Views, the
        # caller's grad and arrays handed to two parents (add's backward
        # returns g twice) are copied, so .grad never aliases other memory.
        shared = {id(grad)}
        if self._backward is None:
            _leaf_add(self, grad, True)
            return
        grads = {id(self): grad}
        heap = [(-self._seq, id(self), self)]
        while heap:
            node = heappop(heap)[2]
            parent_grads = node._backward(grads.pop(id(node)))
            parents = node._parents
            # Free what the op saved; the graph is single-use, as in PyTorch.
            node._backward = _FREED
            node._parents = ()
            n = len(parent_grads)  # an array handed to two parents must not become a .grad
            if n == 3:  # conv2d / linear with a bias: checked inline, the hot case
                a, b, c = parent_grads
                if a is b or a is c:
                    shared.add(id(a))
                if b is c:
                    shared.add(id(b))
            elif n > 1:
                _mark_repeats(parent_grads, shared)
            for p, pg in zip(parents, parent_grads):
                if pg is None or not p.requires_grad:
                    continue
                if p._backward is None:  # a leaf: add its share now (_leaf_add, inlined)
                    if p.grad is not None:
                        p.grad = p.grad + pg
                    elif id(pg) in shared or pg.base is not None or not pg.flags.writeable:
                        p.grad = np.array(pg, copy=True)
                    else:
                        p.grad = pg
                    continue
                k = id(p)
                prev = grads.get(k)
                if prev is not None:
                    grads[k] = _add(prev, pg)
                else:
                    grads[k] = pg
                    heappush(heap, (-p._seq, k, p))

    # -- arithmetic (forward and backward side by side) ---------------------------------
    def __add__(self, other):
        other = _lift(other, self)
        a, b = self, other

        def backward(g):
            return _unbroadcast(g, a.shape), _unbroadcast(g, b.shape)
        out = Tensor._make(_add(a.data, b.data), (a, b), backward, "add")
        _record("add", (a, b), out)
        return out

    def __radd__(self, other):
        return _lift(other, self).__add__(self)

    def __sub__(self, other):
        other = _lift(other, self)
        a, b = self, other

        def backward(g):
            return _unbroadcast(g, a.shape), _unbroadcast(-g, b.shape)
        out = Tensor._make(a.data - b.data, (a, b), backward, "sub")
        _record("sub", (a, b), out)
        return out

    def __rsub__(self, other):
        return _lift(other, self).__sub__(self)

    def __mul__(self, other):
        other = _lift(other, self)
        a, b = self, other

        def backward(g):
            return (_unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
                    _unbroadcast(g * a.data, b.shape) if b.requires_grad else None)
        out = Tensor._make(a.data * b.data, (a, b), backward, "mul")
        _record("mul", (a, b), out)
        return out

    def __rmul__(self, other):
        return _lift(other, self).__mul__(self)

    def __truediv__(self, other):
        other = _lift(other, self)
        a, b = self, other

        def backward(g):
            return (_unbroadcast(g / b.data, a.shape) if a.requires_grad else None,
                    _unbroadcast(-g * a.data / (b.data * b.data), b.shape) if b.requires_grad else None)
        out = Tensor._make(a.data / b.data, (a, b), backward, "div")
        _record("div", (a, b), out)
        return out

    def __rtruediv__(self, other):
        return _lift(other, self).__truediv__(self)

    def __neg__(self):
        out = Tensor._make(-self.data, (self,), lambda g: (-g,), "neg")
        _record("neg", (self,), out)
        return out

    def __pow__(self, exponent):
        if not isinstance(exponent, numbers.Real) or isinstance(exponent, bool):
            raise TypeError(f"pow: only a Python number exponent is supported, got {type(exponent).__name__}")
        a, e = self, float(exponent)

        def backward(g):
            return (g * (e * a.data ** (e - 1)).astype(a.data.dtype, copy=False),)
        out = Tensor._make((a.data ** e).astype(a.data.dtype, copy=False), (a,), backward, "pow")
        _record("pow", (a,), out, exponent=e)
        return out

    def __matmul__(self, other):
        other = _lift(other, self)
        a, b = self, other
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"matmul: both operands must be 2-D, got shapes {a.shape} and {b.shape}")
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align")

        def backward(g):
            return (g @ b.data.T if a.requires_grad else None,
                    a.data.T @ g if b.requires_grad else None)
        out = Tensor._make(a.data @ b.data, (a, b), backward, "matmul")
        _record("matmul", (a, b), out)
        return out

    def __rmatmul__(self, other):
        return _lift(other, self).__matmul__(self)

    def exp(self):
        y = np.exp(self.data)
        out = Tensor._make(y, (self,), lambda g: (g * y,), "exp")
        _record("exp", (self,), out)
        return out

    def log(self):
        a = self
        out = Tensor._make(np.log(a.data), (a,), lambda g: (g / a.data,), "log")
        _record("log", (a,), out)
        return out

    # -- shape ----------------------------------------------------------------------------
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        src = self.shape
        try:
            y = self.data.reshape(shape)
        except ValueError as e:
            raise ValueError(f"reshape: cannot reshape {src} into {shape}: {e}") from None
        out = Tensor._make(y, (self,), lambda g: (g.reshape(src),), "reshape")
        _record("reshape", (self,), out, shape=tuple(int(s) for s in shape))
        return out

    view = reshape

    def flatten(self, start_dim: int = 1, end_dim: int = -1):
        from .functional import flatten
        return flatten(self, start_dim, end_dim)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        axes = axes or tuple(reversed(range(self.ndim)))
        inv = tuple(np.argsort(axes))
        out = Tensor._make(self.data.transpose(axes), (self,), lambda g: (g.transpose(inv),),
                           "transpose")
        _record("transpose", (self,), out, perm=tuple(int(a) for a in axes))
        return out

    @property
    def T(self):
        return self.transpose()

    def __getitem__(self, index):
        """Basic and integer-array indexing; the gradient scatters back (repeats add up)."""
        if isinstance(index, Tensor):
            index = index.data
        src, dt = self.shape, self.data.dtype

        def backward(g):
            full = np.zeros(src, dtype=dt)
            np.add.at(full, index, g)
            return (full,)
        out = Tensor._make(np.asarray(self.data[index]), (self,), backward, "getitem")
        _record("getitem", (self,), out)
        return out

    # -- reductions ------------------------------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        """numpy's (axis, keepdims) or torch's (dim, keepdim) names."""
        axis, keepdims = _torch_names(axis, keepdims, dim, keepdim)
        src, ax = self.shape, _axes(axis, self.ndim)

        def backward(g):
            if not keepdims and ax is not None:
                g = np.expand_dims(g, ax)
            return (np.broadcast_to(g, src),)
        out = Tensor._make(np.asarray(self.data.sum(axis=ax, keepdims=keepdims)), (self,),
                           backward, "sum")
        _record("sum", (self,), out, axes=ax, keepdims=keepdims)
        return out

    def mean(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        axis, keepdims = _torch_names(axis, keepdims, dim, keepdim)
        src, ax = self.shape, _axes(axis, self.ndim)
        n = self.data.size if ax is None else int(np.prod([src[i] for i in ax]))

        def backward(g):
            if not keepdims and ax is not None:
                g = np.expand_dims(g, ax)
            return (np.broadcast_to(g / n, src),)
        out = Tensor._make(np.asarray(self.data.mean(axis=ax, keepdims=keepdims)), (self,),
                           backward, "mean")
        _record("mean", (self,), out, axes=ax, keepdims=keepdims)
        return out

    # -- convenience -----------------------------------------------------------------------
    def relu(self):
        from .functional import relu
        return relu(self)

    def argmax(self, axis=None):
        """Plain numpy result: indices carry no gradient."""
        return self.data.argmax(axis=axis)


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b as a new array: same-shape float32 arrays (residual adds, gradient sums
    in backward) in the compiled, threaded kernel; anything else in numpy."""
    if a.dtype == b.dtype == np.float32 and a.shape == b.shape and a.size >= _ADD_KERNEL_MIN:
        return _core.add(a, b)
    return a + b


_ADD_KERNEL_MIN = 1 << 14  # smaller adds: numpy's call is cheaper than the binding's checks


def _mark_repeats(arrays, shared: set) -> None:
    """Add to ``shared`` the ids of arrays that appear more than once in ``arrays``."""
    for i in range(1, len(arrays)):
        a = arrays[i]
        if a is not None:
            for j in range(i):
                if arrays[j] is a:
                    shared.add(id(a))


def _leaf_add(leaf: Tensor, g: np.ndarray, shared: bool) -> None:
    """Add one gradient contribution to a leaf's ``.grad`` (never aliasing a shared array)."""
    if leaf.grad is not None:
        leaf.grad = leaf.grad + g
    elif shared or g.base is not None or not g.flags.writeable:
        leaf.grad = np.array(g, copy=True)
    else:
        leaf.grad = g


def _torch_names(axis, keepdims, dim, keepdim):
    return (dim if dim is not None else axis), (keepdim if keepdim is not None else keepdims)


def _axes(axis, ndim):
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    return tuple(int(a) % ndim for a in axes)


def _lift(x, like: Tensor) -> Tensor:
    """Numbers and arrays become constant Tensors of ``like``'s dtype."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, numbers.Number) or isinstance(x, np.ndarray):
        return Tensor(np.asarray(x, dtype=like.data.dtype), dtype=like.data.dtype)
    raise TypeError(f"unsupported operand type for Tensor arithmetic: {type(x).__name__}")


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)
