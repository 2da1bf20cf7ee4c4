"""InferenceSession(device="cuda"): the optimised graph's nodes on the GPU.

Nodes with a CUDA kernel -- 2-D Conv with its fused bias/activation/residual
epilogue, MaxPool (without the Indices output), AveragePool, the global
pools, Relu and same-shape Add -- are replaced at load by device ops that
hold their weights on the GPU (uploaded once). Shape-only ops (Reshape,
Flatten, Squeeze, Unsqueeze, Identity, Dropout) reshape device arrays without
a copy. Every other node runs on the CPU: the executor downloads its device
inputs, and the next device op uploads the host values it reads, so
activations stay on the GPU between device ops. Session creation warns once,
listing the op types that run on the CPU.
"""
from __future__ import annotations

import warnings
from collections import Counter

import numpy as np

from .. import _core, cuda
from .ops.spatial import geometry

# Module global (not an import) so that tests can substitute a fake device.
_ext = getattr(_core, "cuda", None)

_VIEW_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"}


def is_device_array(a) -> bool:
    return _ext is not None and isinstance(a, _ext.DeviceArray)


def to_host(a):
    return a.numpy() if is_device_array(a) else a


class DeviceOp:
    """A node's device implementation; reads everything else (label, act,
    attributes) from the host op it replaces."""

    inplace_capable = False
    uses_env = False

    def __init__(self, op):
        self.host = op
        self.inplace = False
        self.is_view = op.is_view

    def __getattr__(self, name):   # only for names not set on the device op
        return getattr(self.host, name)

    def up(self, a, what: str = "input"):
        if is_device_array(a):
            return a
        a = np.asarray(a)
        if a.dtype != np.float32:
            raise TypeError(f"{self.host.label}: {what} must be float32, got {a.dtype}")
        return cuda.asarray(np.ascontiguousarray(a))

    def on_host(self, *args):
        """The host op on downloaded inputs (shapes the device kernels do not take)."""
        return self.host.run(*[to_host(a) for a in args])


class DeviceConv(DeviceOp):
    def __init__(self, op, w, b):
        super().__init__(op)
        self.w_shape = tuple(w.shape)
        self.w = cuda.asarray(np.ascontiguousarray(w, np.float32))
        self.b = None if b is None else cuda.asarray(np.ascontiguousarray(b, np.float32))
        self.lo, self.hi = op._bounds()

    def run(self, x, w=None, b=None, *rest):
        x = self.up(x, "input X")
        res = rest[0] if rest else None
        nsp, s, p, d = self.host.params(x.shape, self.w_shape)   # validates shapes
        if nsp != 2:
            raise ValueError(f"{self.host.label}: input must be 4-D, got shape {x.shape}")
        ws = self.w_shape
        oh = (x.shape[2] + p[0] + p[2] - d[0] * (ws[2] - 1) - 1) // s[0] + 1
        ow = (x.shape[3] + p[1] + p[3] - d[1] * (ws[3] - 1) - 1) // s[1] + 1
        later = None
        if res is not None:
            if tuple(res.shape) == (x.shape[0], ws[0], oh, ow):
                res = self.up(res, "residual")
            else:
                later, res = to_host(res), None    # broadcasting Add: on the host, after
        lo, hi = (self.lo, self.hi) if later is None else (-np.inf, np.inf)
        try:
            y = _ext.conv2d_forward(x, self.w, self.b, list(s), list(p), list(d),
                                    self.host.group, lo, hi, res, cuda.get_allow_tf32())
        except ValueError as e:
            raise ValueError(f"{self.host.label}: {e}") from None
        if later is not None:
            y = np.clip(y.numpy() + later, self.lo, self.hi).astype(np.float32)
        return [y]

    def describe(self, x_shape, w_shape=None) -> str:
        try:
            nsp, s, p, d = self.host.params(tuple(x_shape), self.w_shape)
            return cuda.conv_algorithm(tuple(x_shape), self.w_shape, s, p, d, self.host.group) + \
                " (cuda)"
        except Exception as e:  # report only
            return f"? ({e})"


class DevicePool(DeviceOp):
    def run(self, x):
        if not is_device_array(x) and (np.asarray(x).dtype != np.float32):
            return self.on_host(x)     # int8/float64 pooling: the host's numpy path
        x = self.up(x)
        if x.ndim != 4:
            return self.on_host(x)
        op = self.host
        k = list(op.win["kernel"])
        s, p, d = geometry(op, op.win, list(x.shape[2:]), k, 2)
        ceil = op.ceil_mode and op.win["auto_pad"] == "NOTSET"
        try:
            if self.op_type_name == "MaxPool":
                return [_ext.max_pool2d_forward(x, k, list(s), list(p), list(d), ceil, False)]
            if list(d) != [1, 1]:
                return self.on_host(x)
            return [_ext.avg_pool2d_forward(x, k, list(s), list(p), ceil, op.cip)]
        except ValueError as e:
            raise ValueError(f"{op.label}: {e}") from None


class DeviceGlobalPool(DeviceOp):
    def run(self, x):
        if is_device_array(x) or np.asarray(x).dtype == np.float32:
            x = self.up(x)
            if x.ndim == 4 and x.shape[2] * x.shape[3] > 0:
                return [_ext.global_pool2d(x, self.host.is_max)]
        return self.on_host(x)


class DeviceRelu(DeviceOp):
    def run(self, x):
        if is_device_array(x) or np.asarray(x).dtype == np.float32:
            return [_ext.relu(self.up(x), False)]
        return self.on_host(x)


class DeviceAdd(DeviceOp):
    def run(self, a, b):
        if (tuple(a.shape) == tuple(b.shape) and (is_device_array(a) or is_device_array(b))
                and all(is_device_array(v) or np.asarray(v).dtype == np.float32 for v in (a, b))):
            return [_ext.add(self.up(a), self.up(b), False)]
        return self.on_host(a, b)


class DeviceView(DeviceOp):
    """Shape-only ops: the host op computes the output shape on an
    uncommitted stand-in of the input's shape; the device array is reshaped."""

    def run(self, x, *rest):
        if not is_device_array(x):
            return self.host.run(x, *rest)
        stand_in = np.empty(x.shape, np.float32)    # never touched: no pages committed
        outs = self.host.run(stand_in, *[to_host(a) for a in rest])
        return [x.reshape(list(np.shape(outs[0])))] + list(outs[1:])


def _device_op(node, constants):
    """The device op for this node, or None (runs on the host)."""
    op, t = node.op, node.op_type
    if node.domain not in ("", "ai.onnx"):
        return None
    if t == "Conv":
        if op.post is not None or op.packed is not None or op.concat_slot is not None:
            return None
        w = constants.get(node.inputs[1]) if len(node.inputs) > 1 else None
        b = constants.get(node.inputs[2]) if op.has_input(2) else None
        if w is None or w.dtype != np.float32 or w.ndim != 4 or (op.has_input(2) and b is None):
            return None
        if b is not None and (b.dtype != np.float32 or b.shape != (w.shape[0],)):
            return None
        dev = DeviceConv(op, w, b)
        node.inputs = [node.inputs[0], "", ""] + list(node.inputs[3:])
        return dev
    if t in ("MaxPool", "AveragePool"):
        if op.nsp != 2:
            return None
        if t == "MaxPool" and len(node.outputs) > 1 and node.outputs[1]:
            return None
        dev = DevicePool(op)
        dev.op_type_name = t
        return dev
    if t in ("GlobalAveragePool", "GlobalMaxPool"):
        return DeviceGlobalPool(op)
    if t == "Relu":
        return DeviceRelu(op)
    if t == "Add":
        return DeviceAdd(op)
    if t in _VIEW_OPS and op.is_view:
        return DeviceView(op)
    return None


def place_on_device(nodes, constants) -> Counter:
    """Replaces the ops of nodes with CUDA kernels by device ops (in place,
    uploading their weights); returns the op types left on the host, counted."""
    host = Counter()
    for node in nodes:
        dev = _device_op(node, constants)
        if dev is None:
            host[node.op_type] += 1
            node.on_device = False
        else:
            node.op = dev
            node.on_device = True
    return host


def require_device(owner: str) -> None:
    if not cuda.is_available():
        raise RuntimeError(f"{owner}: device 'cuda' is not available: {cuda.unavailable_reason()}")


def warn_host_ops(host: Counter) -> None:
    if host:
        listed = ", ".join(f"{t} x{n}" if n > 1 else t for t, n in sorted(host.items()))
        warnings.warn(f"InferenceSession(device='cuda'): no CUDA kernel for {listed}; "
                      f"these nodes run on the CPU", RuntimeWarning, stacklevel=3)
