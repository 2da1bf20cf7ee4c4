"""Differentiable ops on ``Tensor``: the functional forms behind the modules.

conv2d, pooling and relu run forward and backward in the compiled kernels
(``convcore._core``), and so do float32 batch norm, a float32 linear layer
(convcore's SGEMM with a bias/ReLU epilogue) and the float32 cross-entropy
loss (loss and gradient in one pass); dropout, the other losses and the
float64 paths (gradient checks) are a few lines of numpy.
Arguments are checked once, in the forward call, by the same helpers the plain
functional API uses, so backward can call ``_core`` directly.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _core
from .._checks import as_f32, conv_geometry, pair, pool_geometry
from . import init as _init
from . import tensor as _T
from .tensor import Tensor, _record

__all__ = [
    "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "global_avg_pool2d", "relu",
    "linear", "flatten", "batch_norm", "dropout", "log_softmax", "softmax", "cross_entropy",
    "nll_loss", "mse_loss",
]


def _t(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _input(op: str, name: str, a: np.ndarray) -> np.ndarray:
    """A 4-D float32 kernel operand: passed through when it already is one (the
    common case, checked in a few attribute reads), else as_f32 converts or raises."""
    if type(a) is np.ndarray and a.dtype == np.float32 and a.ndim == 4:
        f = a.flags
        if f.c_contiguous and f.aligned:
            return a
    return as_f32(op, name, a, 4)


_GEOMETRY: dict = {}


def _geometry(fn, *args):
    """conv/pool geometry checks are pure functions of the shapes and the
    arguments, so a training loop pays for them once per layer, not per step.
    Unhashable arguments (lists) and failures are simply not cached."""
    try:
        hit = _GEOMETRY.get((fn, args))
    except TypeError:
        return fn(*args)
    if hit is None:
        hit = fn(*args)
        if len(_GEOMETRY) >= 1024:
            _GEOMETRY.clear()
        _GEOMETRY[(fn, args)] = hit
    return hit


def _conv_kernel_args(x_shape, w_shape, stride, padding, dilation, groups):
    stride, pad, dilation, groups = conv_geometry("conv2d", x_shape, w_shape, stride, padding,
                                                  dilation, groups)
    return stride, pad, dilation, groups, (list(stride), list(pad), list(dilation), groups)


def _pool_kernel_args(op, x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    k, s, p, d, _ = pool_geometry(op, x_shape, kernel_size, stride, padding, dilation, ceil_mode)
    return k, s, p, d


def _f32(g: np.ndarray) -> np.ndarray:
    """Gradients handed to a kernel must be float32 and C-contiguous."""
    if g.dtype != np.float32 or not g.flags.c_contiguous:
        g = np.ascontiguousarray(g, dtype=np.float32)
    return g


# -- convolution and pooling (compiled kernels) ---------------------------------------------
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, activation=None):
    """``torch.nn.functional.conv2d``; ``activation="relu"`` fuses a ReLU into the kernel."""
    x, weight = _t(x), _t(weight)
    bias = None if bias is None else _t(bias)
    xd, wd = _input("conv2d", "input", x.data), _input("conv2d", "weight", weight.data)
    stride, pad, dilation, groups, args = _geometry(_conv_kernel_args, xd.shape, wd.shape, stride,
                                                    padding, dilation, groups)
    bd = None
    if bias is not None:
        bd = bias.data
        if bd.dtype != np.float32 or bd.shape != (wd.shape[0],):
            raise ValueError(f"conv2d: bias must be float32 of shape ({wd.shape[0]},), "
                             f"got {bd.dtype} {bd.shape}")
    lo = 0.0 if activation == "relu" else -np.inf
    if activation not in (None, "relu"):
        raise ValueError(f"conv2d: activation must be None or 'relu', got {activation!r}")
    y = _core.conv2d_forward(xd, wd, bd, *args, lo, np.inf, None, "auto")

    def backward(g):
        g = _f32(g)
        if activation == "relu":
            g = _core.relu_backward(g, y)
        gx, gw, gb = _core.conv2d_backward(g, xd, wd, *args, x.requires_grad, weight.requires_grad,
                                           bias is not None and bias.requires_grad)
        return (gx, gw, gb) if bias is not None else (gx, gw)

    parents = (x, weight) if bias is None else (x, weight, bias)
    out = Tensor._make(y, parents, backward, "conv2d")
    if _T._tracer is not None:  # tracing for export_onnx
        _record("conv2d", parents, out, stride=stride, pads=pad, dilation=dilation, groups=groups,
                kernel=wd.shape[2:])
        if activation == "relu":
            _record("relu", (out,), out)  # the trace sees Conv then Relu
    return out


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    x = _t(x)
    xd = _input("max_pool2d", "input", x.data)
    k, s, p, d = _geometry(_pool_kernel_args, "max_pool2d", xd.shape, kernel_size, stride,
                           padding, dilation, ceil_mode)
    args = (list(k), list(s), list(p), list(d), bool(ceil_mode))
    y = _core.max_pool2d_forward(xd, *args, False)
    out = Tensor._make(y, (x,), lambda g: (_core.max_pool2d_backward(_f32(g), xd, *args),),
                       "max_pool2d")
    if _T._tracer is not None:  # tracing for export_onnx
        _record("max_pool2d", (x,), out, kernel=k, stride=s, pads=p, dilation=d,
                ceil_mode=bool(ceil_mode))
    return out


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    x = _t(x)
    xd = _input("avg_pool2d", "input", x.data)
    k, s, p, _ = _geometry(_pool_kernel_args, "avg_pool2d", xd.shape, kernel_size, stride,
                           padding, 1, ceil_mode)
    args = (list(k), list(s), list(p), bool(ceil_mode), bool(count_include_pad))
    y = _core.avg_pool2d_forward(xd, *args)
    out = Tensor._make(y, (x,), lambda g: (_core.avg_pool2d_backward(_f32(g), xd, *args),),
                       "avg_pool2d")
    if _T._tracer is not None:  # tracing for export_onnx
        _record("avg_pool2d", (x,), out, kernel=k, stride=s, pads=p, ceil_mode=bool(ceil_mode),
                count_include_pad=bool(count_include_pad))
    return out


def global_avg_pool2d(x):
    """Mean over H and W: (N, C, H, W) -> (N, C, 1, 1)."""
    x = _t(x)
    if x.ndim != 4:
        raise ValueError(f"global_avg_pool2d: input must be 4-D (N, C, H, W), got shape {x.shape}")
    xd = np.ascontiguousarray(x.data)
    y = _core.global_avg_pool2d(xd)
    out = Tensor._make(y, (x,), lambda g: (_core.global_pool2d_backward(_f32(g), xd, False),),
                       "global_avg_pool2d")
    if _T._tracer is not None:  # tracing for export_onnx
        _record("global_avg_pool2d", (x,), out)
    return out


def adaptive_avg_pool2d(x, output_size):
    """Only output size 1 (global average pooling) is supported."""
    size = pair("adaptive_avg_pool2d", "output_size", output_size)
    if size != (1, 1):
        raise ValueError(f"adaptive_avg_pool2d: only output_size=1 (global average pooling) is "
                         f"supported, got {output_size!r}")
    return global_avg_pool2d(x)


def relu(x):
    x = _t(x)
    if x.data.dtype != np.float32:  # float64 (gradient checks): plain numpy
        y = np.maximum(x.data, 0)
        out = Tensor._make(y, (x,), lambda g: (g * (y > 0),), "relu")
    else:
        y = _core.relu(np.ascontiguousarray(x.data), None)
        # y > 0 exactly where x > 0, so the output is all backward needs.
        out = Tensor._make(y, (x,), lambda g: (_core.relu_backward(_f32(g), y),), "relu")
    if _T._tracer is not None:  # tracing for export_onnx
        _record("relu", (x,), out)
    return out


# -- dense layers --------------------------------------------------------------------------
def linear(x, weight, bias=None, *, activation=None):
    """``x @ weight.T + bias`` over the last axis (weight: (out, in), as in PyTorch);
    ``activation="relu"`` fuses a ReLU (Linear + ReLU in a ``Sequential``)."""
    x, weight = _t(x), _t(weight)
    bias = None if bias is None else _t(bias)
    xd, wd = x.data, weight.data
    if xd.shape[-1:] != wd.shape[1:]:
        raise ValueError(f"linear: input has {xd.shape[-1] if xd.ndim else 0} features, weight "
                         f"expects {wd.shape[1]} (input shape {xd.shape}, weight {wd.shape})")
    if activation not in (None, "relu"):
        raise ValueError(f"linear: activation must be None or 'relu', got {activation!r}")
    relu = activation == "relu"
    if xd.dtype == wd.dtype == np.float32 and (bias is None or bias.data.dtype == np.float32):
        y, backward = _linear_kernel(x, weight, bias, relu)
    else:
        y, backward = _linear_numpy(x, weight, bias, relu)
    parents = (x, weight) if bias is None else (x, weight, bias)
    out = Tensor._make(y, parents, backward, "linear")
    if _T._tracer is not None:  # tracing for export_onnx
        _record("linear", parents, out)
        if relu:
            _record("relu", (out,), out)  # the trace sees Gemm then Relu
    return out


def _linear_kernel(x, weight, bias, relu):
    """float32: convcore's own threaded SGEMM (``_core.gemm``), bias and ReLU in its epilogue.

    The product runs transposed, y.T = W @ x.T (out, rows), so that the bias
    is one value per GEMM row; y is the transposed view, and the next Linear
    reads that view's contiguous transpose without a copy. Backward is one
    call (``_core.linear_backward``: ReLU mask, the two GEMMs, the bias sums)
    on whichever of g and g.T is contiguous, with the GEMM's transpose flags
    instead of copies; grad_input comes back in the layout x came in.
    (convcore's kernel rather than numpy's BLAS: on a 2-core machine
    OpenBLAS's spinning threads took the second core from the kernel workers.)
    """
    xd, wd = x.data, weight.data
    lead, fin, fout = xd.shape[:-1], wd.shape[1], wd.shape[0]
    x2 = xd.reshape(-1, fin)
    xs = x2.T  # (in, rows): contiguous when x is the previous Linear's output
    x_t = xs.flags.c_contiguous
    if not x_t:
        xs = x2 if x2.flags.c_contiguous else np.ascontiguousarray(x2)
    bd = None if bias is None else bias.data
    yt = _core.gemm(wd, xs, False, not x_t, bd, relu)
    y = yt.T.reshape(lead + (fout,))

    def backward(g):
        g2 = g.reshape(-1, fout)
        gs = g2.T  # (out, rows)
        g_t = gs.flags.c_contiguous and gs.dtype == np.float32
        if not g_t:
            gs = np.ascontiguousarray(g2, dtype=np.float32)
        gx, gw, gb = _core.linear_backward(gs, g_t, xs, x_t, wd, yt if relu else None,
                                           x.requires_grad, weight.requires_grad,
                                           bias is not None and bias.requires_grad)
        if gx is not None:
            gx = (gx.T if x_t else gx).reshape(lead + (fin,))
        return (gx, gw) if bias is None else (gx, gw, gb)
    return y, backward


def _linear_numpy(x, weight, bias, relu):
    """Other dtypes (float64 gradient checks): plain numpy."""
    xd, wd = x.data, weight.data
    y = xd @ wd.T
    if bias is not None:
        y = y + bias.data
    if relu:
        y = np.maximum(y, 0)

    def backward(g):
        if relu:
            g = g * (y > 0)
        g2 = g.reshape(-1, g.shape[-1])
        gx = (g @ wd) if x.requires_grad else None
        gw = (g2.T @ xd.reshape(-1, xd.shape[-1])) if weight.requires_grad else None
        if bias is None:
            return gx, gw
        return gx, gw, (g2.sum(axis=0) if bias.requires_grad else None)
    return y, backward


def flatten(x, start_dim: int = 1, end_dim: int = -1):
    x = _t(x)
    nd = x.ndim
    s, e = start_dim % nd if nd else 0, end_dim % nd if nd else 0
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a "
                         f"{nd}-D input")
    shape = x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:]
    src = x.shape
    out = Tensor._make(x.data.reshape(shape), (x,), lambda g: (g.reshape(src),), "flatten")
    if _T._tracer is not None:  # tracing for export_onnx
        _record("flatten", (x,), out, start_dim=s, end_dim=e)
    return out


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, *, activation=None):
    """Batch norm over axis 1 of an (N, C, ...) input, as ``torch.nn.functional.batch_norm``.

    In training mode the batch statistics normalise the input and, when
    running buffers are given, update them in place (unbiased variance).
    ``activation="relu"`` fuses a ReLU into the same pass (BatchNorm2d + ReLU
    in a ``Sequential``). float32 runs in the compiled kernel (statistics
    summed in float64); other dtypes (float64 gradient checks) in numpy.
    """
    x = _t(x)
    weight = None if weight is None else _t(weight)
    bias = None if bias is None else _t(bias)
    xd = x.data
    if xd.ndim < 2:
        raise ValueError(f"batch_norm: input must be at least 2-D (N, C, ...), got shape {xd.shape}")
    C = xd.shape[1]
    for name, v in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if v is not None and v.shape != (C,):
            raise ValueError(f"batch_norm: {name} must have shape ({C},) for an input with {C} "
                             f"channels, got {v.shape}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: give both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ValueError("batch_norm: running_mean and running_var are needed when not training")
    if training and xd.size <= C:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                         f"got input shape {xd.shape}")
    if activation not in (None, "relu"):
        raise ValueError(f"batch_norm: activation must be None or 'relu', got {activation!r}")
    relu = activation == "relu"
    f32 = np.float32
    if xd.dtype == f32 and all(p is None or p.data.dtype == f32 for p in (weight, bias)):
        y, backward = _batch_norm_kernel(x, running_mean, running_var, weight, bias, training,
                                         float(momentum), float(eps), relu)
    else:
        y, backward = _batch_norm_numpy(x, running_mean, running_var, weight, bias, training,
                                        momentum, eps, relu)
    parents = (x,) + tuple(p for p in (weight, bias) if p is not None)
    out = Tensor._make(y, parents, backward, "batch_norm")
    if _T._tracer is not None:  # tracing for export_onnx
        if not training:
            _record("batch_norm", parents, out, mean=running_mean, var=running_var,
                    eps=float(eps), has_weight=weight is not None, has_bias=bias is not None)
        else:
            _record("batch_norm_train", parents, out)
        if relu:
            _record("relu", (out,), out)  # the trace sees BatchNormalization then Relu
    return out


def _batch_norm_kernel(x, running_mean, running_var, weight, bias, training, momentum, eps, relu):
    xd = np.ascontiguousarray(x.data)
    wd = None if weight is None else np.ascontiguousarray(weight.data)
    bd = None if bias is None else np.ascontiguousarray(bias.data)
    # The kernel updates float32 C-contiguous buffers in place; others go
    # through a float32 copy that is written back.
    rm, rv = running_mean, running_var
    copied = rm is not None and not all(
        isinstance(b, np.ndarray) and b.dtype == np.float32 and b.flags.c_contiguous
        and b.flags.writeable for b in (rm, rv))
    if copied:
        rm, rv = np.array(rm, dtype=np.float32), np.array(rv, dtype=np.float32)
    y, mean, invstd = _core.batch_norm_forward(xd, wd, bd, rm, rv, bool(training), momentum, eps,
                                               relu)
    if copied and training:
        running_mean[...] = rm
        running_var[...] = rv
    ym = y if relu else None

    def backward(g):
        need_w = weight is not None and weight.requires_grad
        need_b = bias is not None and bias.requires_grad
        gx, gw, gb = _core.batch_norm_backward(_f32(g), xd, ym, mean, invstd, wd, bool(training),
                                               x.requires_grad, need_w, need_b)
        return (gx,) + ((gw,) if weight is not None else ()) + ((gb,) if bias is not None else ())
    return y, backward


def _batch_norm_numpy(x, running_mean, running_var, weight, bias, training, momentum, eps, relu):
    """The float64 (or mixed-dtype) path: the same maths in numpy.

    Touches the activation as few times as possible: the per-channel sums are
    einsum reductions over an (N, C, L) view, and backward reuses the centred
    input saved by the forward pass.
    """
    xd = x.data
    N, C = xd.shape[0], xd.shape[1]
    m = xd.size // C if C else 0
    bshape = (1, C) + (1,) * (xd.ndim - 2)
    x3 = xd.reshape(N, C, -1)
    dt = xd.dtype

    def csum(a3):  # per-channel sum of an (N, C, L) array
        return np.einsum("ncl->c", a3)

    if training:
        mean = csum(x3) / m
        xc = xd - mean.reshape(bshape)  # kept for backward
        xc3 = xc.reshape(N, C, -1)
        var = np.einsum("ncl,ncl->c", xc3, xc3) / m
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += momentum * var * (m / (m - 1))
    else:
        mean, var, xc = running_mean.astype(dt), running_var.astype(dt), None
    invstd = (1.0 / np.sqrt(var + eps)).astype(dt)
    scale = invstd if weight is None else (invstd * weight.data).astype(dt)
    if training:
        y = xc * scale.reshape(bshape)
        if bias is not None:
            y += bias.data.reshape(bshape)
    else:
        shift = -mean * scale if bias is None else bias.data - mean * scale
        y = xd * scale.reshape(bshape)
        y += shift.astype(dt).reshape(bshape)
    if relu:
        np.maximum(y, 0, out=y)

    def backward(g):
        if relu:
            g = g * (y > 0)
        g3 = g.reshape(N, C, -1)
        gsum = csum(g3)
        need_w = weight is not None and weight.requires_grad
        gdot = None  # sum(g * (x - mean)) per channel
        if training or need_w:
            gdot = np.einsum("ncl,ncl->c", g3, xc3) if training else \
                np.einsum("ncl,ncl->c", g3, x3) - mean * gsum
        gx = None
        if x.requires_grad:
            gx = g * scale.reshape(bshape)
            if training:  # mean and variance depend on x too
                gx -= xc * (scale * gdot * invstd * invstd / m).reshape(bshape)
                gx -= (scale * gsum / m).reshape(bshape)
        grads = [gx]
        if weight is not None:
            grads.append((gdot * invstd).astype(weight.data.dtype) if need_w else None)
        if bias is not None:
            grads.append(gsum if bias.requires_grad else None)
        return tuple(grads)
    return y, backward


def dropout(x, p: float = 0.5, training: bool = True, generator=None):
    """Zero each element with probability p while training; scale the rest by 1/(1-p)."""
    x = _t(x)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        mask = np.zeros_like(x.data)
    else:
        rng = generator if generator is not None else _init.default_generator()
        mask = (rng.random(x.shape, dtype=np.float32) >= p).astype(x.data.dtype)
        mask *= 1.0 / (1.0 - p)
    return Tensor._make(x.data * mask, (x,), lambda g: (g * mask,), "dropout")


# -- losses ---------------------------------------------------------------------------------
def _log_softmax_array(z: np.ndarray, axis: int) -> np.ndarray:
    m = z.max(axis=axis, keepdims=True)
    s = z - m
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def log_softmax(x, dim: int = -1, *, axis=None):
    """log(softmax(x)) along ``dim`` (``axis`` is accepted as numpy's name for it)."""
    axis = dim if axis is None else axis
    x = _t(x)
    lp = _log_softmax_array(x.data, axis)

    def backward(g):
        return (g - np.exp(lp) * g.sum(axis=axis, keepdims=True),)
    out = Tensor._make(lp, (x,), backward, "log_softmax")
    if _T._tracer is not None:  # tracing for export_onnx
        _record("log_softmax", (x,), out, axis=axis)
    return out


def softmax(x, dim: int = -1, *, axis=None):
    axis = dim if axis is None else axis
    x = _t(x)
    y = np.exp(_log_softmax_array(x.data, axis))

    def backward(g):
        return (y * (g - (g * y).sum(axis=axis, keepdims=True)),)
    out = Tensor._make(y, (x,), backward, "softmax")
    if _T._tracer is not None:  # tracing for export_onnx
        _record("softmax", (x,), out, axis=axis)
    return out


def _labels(target, n: int, c: int, op: str = "cross_entropy") -> np.ndarray:
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "iu":
        if t.dtype.kind == "f" and t.size and np.all(t == np.round(t)):
            t = t.astype(np.int64)
        else:
            raise TypeError(f"{op}: target must hold integer class labels, got dtype {t.dtype}")
    if t.shape != (n,):
        raise ValueError(f"{op}: target must have shape ({n},) to match input of "
                         f"{n} rows, got {t.shape}")
    if t.size and (t.min() < 0 or t.max() >= c):
        bad = t[(t < 0) | (t >= c)][0]
        raise ValueError(f"{op}: label {int(bad)} is out of range for {c} classes "
                         f"(labels must be in [0, {c - 1}])")
    return t.astype(np.int64, copy=False)


def cross_entropy(input, target, *, reduction: str = "mean", label_smoothing: float = 0.0):
    """Softmax cross entropy of (N, C) logits against integer labels (N,)."""
    x = _t(input)
    if x.ndim != 2:
        raise ValueError(f"cross_entropy: input must be 2-D logits (N, C), got shape {x.shape}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1), got {label_smoothing}")
    n, c = x.shape
    if x.data.dtype == np.float32:
        return _cross_entropy_kernel(x, target, reduction, float(label_smoothing))
    t = _labels(target, n, c)
    lp = _log_softmax_array(x.data, 1)
    rows = np.arange(n)
    eps = label_smoothing
    per = -(1 - eps) * lp[rows, t]
    if eps:
        per -= eps / c * lp.sum(axis=1)
    loss = per.mean() if reduction == "mean" else (per.sum() if reduction == "sum" else per)
    loss = np.asarray(loss, dtype=x.data.dtype)

    def backward(g):
        # d loss_i / d z = softmax(z_i) - smoothed one-hot(t_i)
        d = np.exp(lp)
        d[rows, t] -= 1 - eps
        if eps:
            d -= eps / c
        if reduction == "mean":
            d *= g / max(n, 1)
        elif reduction == "sum":
            d *= g
        else:
            d *= g[:, None]
        return (d.astype(x.data.dtype, copy=False),)
    return Tensor._make(loss, (x,), backward, "cross_entropy")


def _cross_entropy_kernel(x, target, reduction, label_smoothing):
    """float32: loss and gradient in one compiled pass (``_core.cross_entropy``);
    backward only scales the stored gradient. The kernel checks the label range."""
    t = target.data if isinstance(target, Tensor) else target
    if not (type(t) is np.ndarray and t.dtype == np.int64 and t.shape == (x.shape[0],)):
        t = _labels(target, x.shape[0], x.shape[1])
    loss, d = _core.cross_entropy(x.data, t, label_smoothing, reduction)

    def backward(g):
        if reduction == "none":
            return (d * g[:, None],)
        return (d if g.item() == 1.0 else d * g,)  # loss.backward(): g is 1
    return Tensor._make(loss, (x,), backward, "cross_entropy")


def nll_loss(input, target, *, reduction: str = "mean"):
    """Negative log likelihood of (N, C) log-probabilities (e.g. from log_softmax)."""
    x = _t(input)
    if x.ndim != 2:
        raise ValueError(f"nll_loss: input must be 2-D log-probabilities (N, C), got shape {x.shape}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"nll_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    n, c = x.shape
    t = _labels(target, n, c, "nll_loss")
    rows = np.arange(n)
    per = -x.data[rows, t]
    loss = per.mean() if reduction == "mean" else (per.sum() if reduction == "sum" else per)

    def backward(g):
        d = np.zeros_like(x.data)
        scale = g / max(n, 1) if reduction == "mean" else g
        d[rows, t] = -scale
        return (d,)
    return Tensor._make(np.asarray(loss, dtype=x.data.dtype), (x,), backward, "nll_loss")


def mse_loss(input, target, *, reduction: str = "mean"):
    """Mean (or summed) squared error; gradients flow to both sides."""
    x = _t(input)
    y = target if isinstance(target, Tensor) else Tensor(np.asarray(target), dtype=x.data.dtype)
    if x.shape != y.shape:
        raise ValueError(f"mse_loss: input shape {x.shape} differs from target shape {y.shape}")
    sq = (x - y) ** 2
    if reduction == "mean":
        return sq.mean()
    if reduction == "sum":
        return sq.sum()
    if reduction == "none":
        return sq
    raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
