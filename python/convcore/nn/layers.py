"""Layers with PyTorch's names, arguments, parameter names and default init."""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .._checks import pair, padding4
from . import functional as F
from . import init
from .module import Module, Parameter
from .tensor import Tensor

__all__ = ["Conv2d", "Linear", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "GlobalAvgPool2d",
           "ReLU", "Flatten", "BatchNorm2d", "Dropout", "Identity", "Sequential", "ModuleList"]


def _input(module: Module, x, ndim: int, channels: int | None = None) -> Tensor:
    """The module's input as a Tensor, with a ValueError naming the module if it does not fit."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    d = x.data
    if d.ndim == ndim and (channels is None or d.shape[1] == channels):
        return x
    if x.ndim != ndim:
        what = "(N, C, H, W)" if ndim == 4 else f"{ndim}-D"
        raise ValueError(f"{module!r}: expected a {ndim}-D input {what}, got {x.ndim}-D with "
                         f"shape {x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{module!r}: expected {channels} input channels, got {x.shape[1]} "
                         f"(input shape {x.shape})")
    return x


def _positive(op: str, name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise ValueError(f"{op}: {name} must be a positive int, got {v!r}")
    return int(v)


class Conv2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros"):
        super().__init__()
        op = "Conv2d"
        self.in_channels = _positive(op, "in_channels", in_channels)
        self.out_channels = _positive(op, "out_channels", out_channels)
        self.groups = _positive(op, "groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{op}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must be divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f"{op}: only padding_mode='zeros' is supported, got {padding_mode!r}")
        self.kernel_size = pair(op, "kernel_size", kernel_size)
        self.stride = pair(op, "stride", stride)
        self.dilation = pair(op, "dilation", dilation)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{op}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError(f"{op}: padding='same' needs stride 1, got {self.stride}")
            self.padding = padding
        else:
            p = padding4(op, padding)
            self.padding = (p[0], p[1]) if p[:2] == p[2:] else p
        self.padding_mode = padding_mode
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, np.float32))
        self.bias = Parameter(np.empty(out_channels, np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x, *, activation=None):
        x = _input(self, x, 4, self.in_channels)
        p = self._parameters  # one dict read instead of two Module.__getattr__ calls
        return F.conv2d(x, p["weight"], p.get("bias"), self.stride, self.padding, self.dilation,
                        self.groups, activation=activation)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in ((0, 0), (0, 0, 0, 0)):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = _positive("Linear", "in_features", in_features)
        self.out_features = _positive("Linear", "out_features", out_features)
        self.weight = Parameter(np.empty((out_features, in_features), np.float32))
        self.bias = Parameter(np.empty(out_features, np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x, *, activation=None):
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r}: expected input with {self.in_features} features in its "
                             f"last dimension, got shape {x.shape}")
        p = self._parameters
        return F.linear(x, p["weight"], p.get("bias"), activation=activation)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        if return_indices:
            raise ValueError("MaxPool2d: return_indices=True is not supported by convcore.nn")
        self.kernel_size = pair("MaxPool2d", "kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else pair("MaxPool2d", "stride", stride)
        self.padding = padding4("MaxPool2d", padding)
        self.dilation = pair("MaxPool2d", "dilation", dilation)
        self.ceil_mode = bool(ceil_mode)

    def forward(self, x):
        x = _input(self, x, 4)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding[:2]}"


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        if divisor_override is not None:
            raise ValueError("AvgPool2d: divisor_override is not supported by convcore.nn")
        self.kernel_size = pair("AvgPool2d", "kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else pair("AvgPool2d", "stride", stride)
        self.padding = padding4("AvgPool2d", padding)
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x):
        x = _input(self, x, 4)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding[:2]}"


class AdaptiveAvgPool2d(Module):
    """Only output_size=1 (global average pooling); anything else is refused."""

    def __init__(self, output_size):
        super().__init__()
        size = pair("AdaptiveAvgPool2d", "output_size", output_size)
        if size != (1, 1):
            raise ValueError(f"AdaptiveAvgPool2d: only output_size=1 (global average pooling) is "
                             f"supported, got {output_size!r}")
        self.output_size = output_size

    def forward(self, x):
        return F.global_avg_pool2d(_input(self, x, 4))

    def extra_repr(self):
        return f"output_size={self.output_size}"


class GlobalAvgPool2d(Module):
    """(N, C, H, W) -> (N, C, 1, 1) mean over H and W."""

    def forward(self, x):
        return F.global_avg_pool2d(_input(self, x, 4))


class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace  # accepted for compatibility; the result is always a new array

    def forward(self, x):
        return F.relu(x)


class Identity(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x if isinstance(x, Tensor) else Tensor(x)


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        nd = x.ndim
        for d in (self.start_dim, self.end_dim):
            if not -nd <= d < nd:
                raise ValueError(f"{self!r}: dimension {d} is out of range for a {nd}-D input "
                                 f"of shape {x.shape}")
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class BatchNorm2d(Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True):
        super().__init__()
        self.num_features = _positive("BatchNorm2d", "num_features", num_features)
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, np.float32))
            self.bias = Parameter(np.zeros(num_features, np.float32))
        else:
            self.weight = self.bias = None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, np.float32))
            self.register_buffer("running_var", np.ones(num_features, np.float32))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def forward(self, x, *, activation=None):
        x = _input(self, x, 4, self.num_features)
        use_batch = self.training or not self.track_running_stats
        momentum = self.momentum
        b, p = self._buffers, self._parameters  # dict reads, not Module.__getattr__ calls
        if self.training and self.track_running_stats:
            b["num_batches_tracked"] = n = np.asarray(b["num_batches_tracked"] + 1)
            if momentum is None:  # cumulative moving average, as in PyTorch
                momentum = 1.0 / float(n)
        track = self.track_running_stats
        return F.batch_norm(x, b["running_mean"] if track else None,
                            b["running_var"] if track else None,
                            p.get("weight"), p.get("bias"), use_batch, momentum or 0.0, self.eps,
                            activation=activation)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class Dropout(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p, self.inplace = float(p), inplace

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Sequential(Module):
    """Modules applied in order; indexes, slices, iterates and has a len, like a list.

    A Conv2d, BatchNorm2d or Linear directly followed by a ReLU runs as one
    fused kernel call (same result and gradients, one pass less over memory).
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
                self.add_module(str(i), m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        mods = list(self._modules.items())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(mods[idx]))
        if not -len(mods) <= idx < len(mods):
            raise IndexError(f"Sequential: index {idx} is out of range for {len(mods)} modules")
        return mods[idx][1]

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        for m, fused in self._plan():
            x = m(x, activation="relu") if fused else m(x)
        return x

    def _plan(self):
        """[(module, fuse the ReLU after it)], worked out again only when the modules change."""
        mods = tuple(self._modules.values())
        plan = self.__dict__.get("_fusion_plan")
        if plan is not None and plan[0] == mods:
            return plan[1]
        steps, i = [], 0
        while i < len(mods):
            m = mods[i]
            fused = i + 1 < len(mods) and type(mods[i + 1]) is ReLU and type(m) in _FUSES_RELU
            steps.append((m, fused))
            i += 2 if fused else 1
        object.__setattr__(self, "_fusion_plan", (mods, steps))
        return steps


_FUSES_RELU = (Conv2d, BatchNorm2d, Linear)


class ModuleList(Module):
    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return ModuleList(mods[idx])
        return mods[idx]
