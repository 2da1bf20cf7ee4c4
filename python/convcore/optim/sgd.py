"""SGD with momentum, Nesterov momentum and (L2) weight decay — PyTorch's update rule.

The float32 parameters of a group are updated by one compiled call
(``_core.sgd_step_multi``: weight decay, momentum buffer and parameter
together, one pass per parameter); other dtypes in numpy.
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
            # Kernel batches: parameters whose momentum buffer exists, and those
            # that get it now (the first step: the buffer is written, not read).
            ps, gs, bs, new_ps, new_gs, new_bs = [], [], [], [], [], []
            for p, state in self._params_with_grad(g):
                buf = state.get("momentum_buffer") if mom else None
                grad, data = p.grad, p.data
                if _kernel_ok(data) and (buf is None or _kernel_ok(buf)) and \
                        grad.dtype == np.float32:
                    if not grad.flags.c_contiguous:
                        grad = np.ascontiguousarray(grad)
                    if mom and buf is None:
                        buf = state["momentum_buffer"] = np.empty_like(data)
                        new_ps.append(data), new_gs.append(grad), new_bs.append(buf)
                    else:
                        ps.append(data), gs.append(grad), bs.append(buf)
                    continue
                self._numpy_step(p, state, lr, mom, damp, wd, nesterov)
            for params, grads, bufs, init in ((ps, gs, bs, False), (new_ps, new_gs, new_bs, True)):
                if params:
                    _core.sgd_step_multi(params, grads, bufs if mom else None, lr, mom, damp, wd,
                                         nesterov, init)

    @staticmethod
    def _numpy_step(p, state, lr, mom, damp, wd, nesterov) -> None:
        """Other dtypes (float64 gradient checks) and arrays the kernel cannot update."""
        buf = state.get("momentum_buffer") if mom else None
        grad = p.grad
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
