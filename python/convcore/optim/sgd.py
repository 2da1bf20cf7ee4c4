"""SGD with momentum, Nesterov momentum and (L2) weight decay — PyTorch's update rule.

float32 parameters are updated by one compiled pass each (``_core.sgd_step``:
weight decay, momentum buffer and parameter together); other dtypes in numpy.
"""
from __future__ import annotations

import numpy as np

from .. import _core
from .optimizer import Optimizer, check_hyper


def _kernel_ok(a) -> bool:
    return type(a) is np.ndarray and a.dtype == np.float32 and a.flags.c_contiguous \
        and a.flags.writeable


class SGD(Optimizer):
    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        check_hyper("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def step(self) -> None:
        for g in self.param_groups:
            lr, mom, damp, wd = g["lr"], g["momentum"], g["dampening"], g["weight_decay"]
            nesterov = g["nesterov"]
            for p, state in self._params_with_grad(g):
                buf = state.get("momentum_buffer") if mom else None
                grad = p.grad
                if _kernel_ok(p.data) and (buf is None or _kernel_ok(buf)) and \
                        grad.dtype == np.float32:
                    init = bool(mom) and buf is None
                    if init:
                        buf = state["momentum_buffer"] = np.empty_like(p.data)
                    _core.sgd_step(p.data, np.ascontiguousarray(grad), buf, lr, mom, damp, wd,
                                   nesterov, init)
                    continue
                d = grad if wd == 0 else grad + wd * p.data
                if mom:
                    if buf is None:
                        buf = state["momentum_buffer"] = np.array(d, dtype=p.data.dtype, copy=True)
                    else:
                        buf *= mom
                        buf += (1 - damp) * d if damp else d
                    d = d + mom * buf if nesterov else buf
                step = lr * d  # in place below: p.data may be shared with the caller
                if step.dtype != p.data.dtype:
                    step = step.astype(p.data.dtype)
                p.data -= step
