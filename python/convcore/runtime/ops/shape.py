"""Shape and data-movement operators (numpy; most are views or cheap copies)."""
from __future__ import annotations

import math

import numpy as np

from .base import Op, axis_of, ints_of, onnx_dtype
from .registry import register


@register("Identity", since=1)
class Identity(Op):
    is_view = True

    def run(self, x):
        return [x]


@register("Dropout", since=1)
class Dropout(Op):
    is_view = True

    def setup(self):
        if self.opset < 7 and self.attr("is_test", "int", 0) == 0:
            pass  # old graphs exported for inference still run as identity here

    def run(self, x, ratio=None, training=None):
        if training is not None and bool(np.asarray(training).reshape(-1)[0]):
            raise self.unsupported("training_mode=True (random dropout) is not supported")
        outs = [x]
        if len(self.node.outputs) > 1 and self.node.outputs[1]:
            outs.append(np.ones(x.shape, dtype=np.bool_))
        return outs


@register("Reshape", since=5)
class Reshape(Op):
    is_view = True

    def setup(self):
        self.allowzero = self.attr("allowzero", "int", 0) if self.opset >= 14 else 0

    def run(self, x, shape):
        want = ints_of(self, shape, "shape")
        out = []
        for i, d in enumerate(want):
            if d == 0 and not self.allowzero:
                if i >= x.ndim:
                    raise ValueError(f"{self.label}: shape {want} copies dim {i} (0) but the input "
                                     f"has rank {x.ndim}")
                d = x.shape[i]
            out.append(d)
        if out.count(-1) > 1 or any(d < -1 for d in out):
            raise ValueError(f"{self.label}: invalid target shape {want}")
        if -1 in out:
            known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
            if known == 0 or x.size % known:
                raise ValueError(f"{self.label}: cannot reshape {x.shape} into {want}")
            out[out.index(-1)] = x.size // known
        if int(np.prod(out, dtype=np.int64)) != x.size:
            raise ValueError(f"{self.label}: cannot reshape input of shape {x.shape} "
                             f"({x.size} elements) into {want}")
        return [x.reshape(out)]


@register("Reshape", since=1, until=4)
class ReshapeV1(Reshape):
    def setup(self):
        self.allowzero = 0
        self.shape = np.array(self.attr("shape", "ints"), dtype=np.int64)

    def run(self, x):
        return super().run(x, self.shape)


@register("Flatten", since=1)
class Flatten(Op):
    is_view = True

    def setup(self):
        self.axis = self.attr("axis", "int", 1)

    def run(self, x):
        axis = self.axis + x.ndim if self.axis < 0 else self.axis
        if not 0 <= axis <= x.ndim:
            raise ValueError(f"{self.label}: axis {self.axis} is out of range for rank {x.ndim}")
        # math.prod on the shape tuple: np.prod costs a few microseconds a call.
        return [x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))]


@register("Transpose", since=1)
class Transpose(Op):
    def setup(self):
        self.perm = self.attr("perm", "ints", None)

    def run(self, x):
        perm = self.perm if self.perm is not None else list(range(x.ndim))[::-1]
        if sorted(perm) != list(range(x.ndim)):
            raise ValueError(f"{self.label}: perm {perm} is not a permutation of the input's "
                             f"{x.ndim} axes")
        # Materialise: the kernels and most numpy loops want contiguous data.
        return [np.ascontiguousarray(np.transpose(x, perm))]


@register("Concat", since=1)
class Concat(Op):
    def setup(self):
        self.axis = self.attr("axis", "int", 1 if self.opset < 4 else None)
        if self.axis is None:
            raise self.error("missing required attribute 'axis'")
        self.in_place = False   # producers write into the output (concat_in_place)

    def run(self, *xs):
        if self.in_place:   # the producers' outputs tile one array already?
            whole = _written_in_place(xs)
            if whole is not None:
                return [whole]
        xs = [x for x in xs if x is not None]
        if not xs:
            raise ValueError(f"{self.label}: needs at least one input")
        r = xs[0].ndim
        if r == 0:
            raise ValueError(f"{self.label}: cannot concatenate scalars")
        axis = axis_of(self, self.axis, r)
        for x in xs[1:]:
            if x.dtype != xs[0].dtype:
                raise TypeError(f"{self.label}: inputs must share one dtype, got {xs[0].dtype} and {x.dtype}")
            if x.ndim != r or any(x.shape[i] != xs[0].shape[i] for i in range(r) if i != axis):
                raise ValueError(f"{self.label}: input shapes {[v.shape for v in xs]} do not match "
                                 f"except along axis {self.axis}")
        return [np.concatenate(xs, axis=axis)]


def _written_in_place(xs):
    """The array the inputs tile in order along axis 1, if the convs wrote
    their outputs into it (passes/concat_in_place.py), else None. Such an
    array is created and sliced only by Conv.run_in, each conv at the slot the
    pass gave it in this Concat's input order, so sharing it as base and
    covering its channels is enough (no pointer arithmetic per run)."""
    if xs[0] is None:
        return None
    base = xs[0].base
    if base is None or base.ndim != 4 or base.shape[0] != 1:
        return None
    c = 0
    for x in xs:
        if x is None or x.base is not base:
            return None
        c += x.shape[1]
    return base if c == base.shape[1] else None


@register("Split", since=1)
class Split(Op):
    is_view = True

    def setup(self):
        self.axis = self.attr("axis", "int", 0)
        self.split = self.attr("split", "ints", None) if self.opset < 13 else None
        self.num_outputs = self.attr("num_outputs", "int", None) if self.opset >= 18 else None

    def run(self, x, split=None):
        axis = axis_of(self, self.axis, x.ndim)
        n = len(self.node.outputs)
        dim = x.shape[axis]
        parts = self.split if split is None else ints_of(self, split, "split")
        if parts is None or len(parts) == 0:
            if self.num_outputs is not None:
                n = self.num_outputs
                size = -(-dim // n)
                parts = [size] * (n - 1) + [dim - size * (n - 1)]
            else:
                if dim % n:
                    raise ValueError(f"{self.label}: axis {self.axis} of size {dim} does not split "
                                     f"evenly into {n} outputs")
                parts = [dim // n] * n
        if len(parts) != len(self.node.outputs) or sum(parts) != dim or min(parts) < 0:
            raise ValueError(f"{self.label}: split sizes {parts} do not fit axis size {dim} "
                             f"and {len(self.node.outputs)} outputs")
        idx = np.cumsum(parts)[:-1]
        return list(np.split(x, idx, axis=axis))


def _slice_one(dim, s, e, st):
    if s < 0:
        s += dim
    if e < 0:
        e += dim
    if st > 0:
        s, e = min(max(s, 0), dim), min(max(e, 0), dim)
    else:
        s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
    return slice(s, e if e >= 0 else None, st)


@register("Slice", since=10)
class Slice(Op):
    is_view = True

    def run(self, x, starts, ends, axes=None, steps=None):
        starts = ints_of(self, starts, "starts")
        ends = ints_of(self, ends, "ends")
        axes = list(range(len(starts))) if axes is None else ints_of(self, axes, "axes")
        steps = [1] * len(starts) if steps is None else ints_of(self, steps, "steps")
        return [self.slice(x, starts, ends, axes, steps)]

    def slice(self, x, starts, ends, axes, steps):
        if not (len(starts) == len(ends) == len(axes) == len(steps)):
            raise ValueError(f"{self.label}: starts/ends/axes/steps lengths differ "
                             f"({len(starts)}, {len(ends)}, {len(axes)}, {len(steps)})")
        sl = [slice(None)] * x.ndim
        seen = set()
        for s, e, a, st in zip(starts, ends, axes, steps):
            a = axis_of(self, a, x.ndim)
            if a in seen:
                raise ValueError(f"{self.label}: axis {a} repeated in axes")
            seen.add(a)
            if st == 0:
                raise ValueError(f"{self.label}: steps must be non-zero")
            sl[a] = _slice_one(x.shape[a], s, e, st)
        return x[tuple(sl)]


@register("Slice", since=1, until=9)
class SliceV1(Slice):
    def setup(self):
        self.starts = self.attr("starts", "ints")
        self.ends = self.attr("ends", "ints")
        self.axes = self.attr("axes", "ints", None)

    def run(self, x):
        axes = self.axes if self.axes is not None else list(range(len(self.starts)))
        return [self.slice(x, self.starts, self.ends, axes, [1] * len(self.starts))]


@register("Squeeze", since=1)
class Squeeze(Op):
    is_view = True

    def setup(self):
        self.axes = self.attr("axes", "ints", None) if self.opset < 13 else None

    def run(self, x, axes=None):
        ax = self.axes if axes is None else ints_of(self, axes, "axes")
        if ax is None:
            return [x.reshape([d for d in x.shape if d != 1])]
        ax = sorted({axis_of(self, a, x.ndim) for a in ax})
        for a in ax:
            if x.shape[a] != 1:
                raise ValueError(f"{self.label}: cannot squeeze axis {a} of size {x.shape[a]}")
        return [x.reshape([d for i, d in enumerate(x.shape) if i not in ax])]


@register("Unsqueeze", since=1)
class Unsqueeze(Op):
    is_view = True

    def setup(self):
        self.axes = self.attr("axes", "ints") if self.opset < 13 else None

    def run(self, x, axes=None):
        ax = self.axes if axes is None else ints_of(self, axes, "axes")
        r = x.ndim + len(ax)
        ax = [axis_of(self, a, r) for a in ax]
        if len(set(ax)) != len(ax):
            raise ValueError(f"{self.label}: repeated axes {ax}")
        shape = list(x.shape)
        for a in sorted(ax):
            shape.insert(a, 1)
        return [x.reshape(shape)]


@register("Gather", since=1)
class Gather(Op):
    def setup(self):
        self.axis = self.attr("axis", "int", 0)

    def run(self, x, idx):
        if idx.dtype.kind not in "iu":
            raise TypeError(f"{self.label}: indices must be integers, got {idx.dtype}")
        axis = axis_of(self, self.axis, x.ndim)
        dim = x.shape[axis]
        if idx.size and (idx.min() < -dim or idx.max() >= dim):
            raise ValueError(f"{self.label}: indices out of range [{-dim}, {dim - 1}] for axis {axis}")
        return [np.take(x, idx.astype(np.int64), axis=axis)]


@register("GatherElements", since=11)
class GatherElements(Op):
    def setup(self):
        self.axis = self.attr("axis", "int", 0)

    def run(self, x, idx):
        if idx.dtype.kind not in "iu" or idx.ndim != x.ndim:
            raise ValueError(f"{self.label}: indices must be integers of the data's rank {x.ndim}, "
                             f"got {idx.dtype} rank {idx.ndim}")
        axis = axis_of(self, self.axis, x.ndim)
        dim = x.shape[axis]
        if idx.size and (idx.min() < -dim or idx.max() >= dim):
            raise ValueError(f"{self.label}: indices out of range [{-dim}, {dim - 1}] for axis {axis}")
        idx = np.where(idx < 0, idx + dim, idx).astype(np.int64)
        return [np.take_along_axis(x, idx, axis=axis)]


@register("Shape", since=1)
class Shape(Op):
    def setup(self):
        self.start = self.attr("start", "int", 0) if self.opset >= 15 else 0
        self.end = self.attr("end", "int", None) if self.opset >= 15 else None

    def run(self, x):
        return [np.array(x.shape[self.start:self.end], dtype=np.int64)]


@register("Size", since=1)
class Size(Op):
    def run(self, x):
        return [np.array(x.size, dtype=np.int64)]


@register("Cast", since=6)
class Cast(Op):
    is_view = True   # a cast to the same type returns its input unchanged
    def setup(self):
        self.to = onnx_dtype(self, self.attr("to", "int"))

    def run(self, x):
        if x.dtype == self.to:
            return [x]
        with np.errstate(invalid="ignore", over="ignore"):
            return [x.astype(self.to)]


@register("Constant", since=1)
class Constant(Op):
    def setup(self):
        a = self.node.attrs
        if "value" in a:
            self.value = self.attr("value", "tensor")
        elif "value_float" in a:
            self.value = np.array(self.attr("value_float", "float"), dtype=np.float32)
        elif "value_floats" in a:
            self.value = np.array(self.attr("value_floats", "floats"), dtype=np.float32)
        elif "value_int" in a:
            self.value = np.array(self.attr("value_int", "int"), dtype=np.int64)
        elif "value_ints" in a:
            self.value = np.array(self.attr("value_ints", "ints"), dtype=np.int64)
        elif "sparse_value" in a or "value_string" in a or "value_strings" in a:
            raise self.unsupported("sparse and string constants are not supported")
        else:
            raise self.error("needs one of the attributes value, value_float(s), value_int(s)")
        self.value.flags.writeable = False

    def run(self):
        return [self.value]


@register("ConstantOfShape", since=9)
class ConstantOfShape(Op):
    def setup(self):
        v = self.attr("value", "tensor", None)
        if v is None:
            v = np.zeros(1, np.float32)
        if v.size != 1:
            raise self.error(f"value must hold one element, got shape {v.shape}")
        self.value = v.reshape(())

    def run(self, shape):
        dims = ints_of(self, shape, "shape")
        self.check_size(dims)
        return [np.full(dims, self.value, dtype=self.value.dtype)]


@register("Expand", since=8)
class Expand(Op):
    def run(self, x, shape):
        dims = ints_of(self, shape, "shape")
        try:
            out = np.broadcast_shapes(x.shape, tuple(dims))
        except ValueError:
            raise ValueError(f"{self.label}: cannot expand shape {x.shape} to {dims}") from None
        self.check_size(out)
        return [np.broadcast_to(x, out).copy()]


@register("Tile", since=6)
class Tile(Op):
    def run(self, x, repeats):
        r = ints_of(self, repeats, "repeats")
        if len(r) != x.ndim or min(r, default=0) < 0:
            raise ValueError(f"{self.label}: repeats {r} must have one non-negative value per "
                             f"input axis ({x.ndim})")
        self.check_size([a * b for a, b in zip(x.shape, r)])
        return [np.tile(x, r)]


@register("Range", since=11)
class Range(Op):
    def run(self, start, limit, delta):
        s, l, d = (np.asarray(v).reshape(-1)[0] for v in (start, limit, delta))
        if d == 0:
            raise ValueError(f"{self.label}: delta must be non-zero")
        n = max(int(np.ceil((l - s) / d)), 0)
        self.check_size([n])
        return [(s + np.arange(n) * d).astype(np.asarray(start).dtype)]


class _Blocks(Op):
    """DepthToSpace / SpaceToDepth: blocksize and mode attributes."""

    def setup(self):
        self.b = self.attr("blocksize", "int")
        self.mode = self.attr("mode", "string", "DCR")
        if self.b <= 0 or self.mode not in ("DCR", "CRD"):
            raise self.error(f"blocksize must be positive and mode DCR or CRD, got {self.b}, {self.mode}")


@register("DepthToSpace", since=1)
class DepthToSpace(_Blocks):

    def run(self, x):
        if x.ndim != 4 or x.shape[1] % (self.b * self.b):
            raise ValueError(f"{self.label}: input must be 4-D with channels divisible by "
                             f"blocksize^2={self.b * self.b}, got {x.shape}")
        n, c, h, w = x.shape
        b = self.b
        if self.mode == "DCR":
            t = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
        else:
            t = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
        return [np.ascontiguousarray(t).reshape(n, c // (b * b), h * b, w * b)]


@register("SpaceToDepth", since=1)
class SpaceToDepth(_Blocks):

    def run(self, x):
        b = self.b
        if x.ndim != 4 or x.shape[2] % b or x.shape[3] % b:
            raise ValueError(f"{self.label}: input must be 4-D with H, W divisible by {b}, got {x.shape}")
        n, c, h, w = x.shape
        t = x.reshape(n, c, h // b, b, w // b, b)
        t = t.transpose(0, 3, 5, 1, 2, 4) if self.mode == "DCR" else t.transpose(0, 1, 3, 5, 2, 4)
        return [np.ascontiguousarray(t).reshape(n, c * b * b, h // b, w // b)]


@register("Pad", since=1)
class Pad(Op):
    def setup(self):
        self.mode = self.attr("mode", "string", "constant")
        if self.mode not in ("constant", "reflect", "edge", "wrap"):
            raise self.unsupported(f"mode '{self.mode}' is not supported")
        if self.opset < 11:
            key = "paddings" if self.opset < 2 else "pads"
            self.pads = self.attr(key, "ints")
            self.value = self.attr("value", "float", 0.0)

    def run(self, x, pads=None, value=None, axes=None):
        if self.opset < 11:
            p, v = self.pads, self.value
        else:
            p = ints_of(self, pads, "pads")
            v = 0 if value is None or np.asarray(value).size == 0 else np.asarray(value).reshape(-1)[0]
        r = x.ndim
        ax = list(range(r)) if axes is None else [axis_of(self, a, r) for a in ints_of(self, axes, "axes")]
        if len(p) != 2 * len(ax):
            raise ValueError(f"{self.label}: pads {p} must have 2 x {len(ax)} values")
        width = [[0, 0] for _ in range(r)]
        for i, a in enumerate(ax):
            width[a] = [p[i], p[i + len(ax)]]
        # Negative pads crop first.
        crop = tuple(slice(max(-b, 0), x.shape[i] - max(-e, 0)) for i, (b, e) in enumerate(width))
        x = x[crop]
        width = [(max(b, 0), max(e, 0)) for b, e in width]
        self.check_size([d + b + e for d, (b, e) in zip(x.shape, width)])
        if self.mode == "constant":
            return [np.pad(x, width, mode="constant", constant_values=x.dtype.type(v))]
        if x.size == 0 and any(b or e for b, e in width):
            raise ValueError(f"{self.label}: cannot {self.mode}-pad an empty tensor")
        if self.mode == "reflect":
            for i, (b, e) in enumerate(width):
                if (b or e) and max(b, e) >= x.shape[i]:
                    raise ValueError(f"{self.label}: reflect pad {max(b, e)} must be smaller than "
                                     f"axis {i} of size {x.shape[i]}")
        return [np.pad(x, width, mode=self.mode)]
