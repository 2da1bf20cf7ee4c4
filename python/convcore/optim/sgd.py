"""SGD with momentum, Nesterov momentum and (L2) weight decay — PyTorch's update rule.

The float32 parameters of a group are updated by one compiled call
(``_core.sgd_step_multi``: weight decay, momentum buffer and parameter
together, one pass per parameter); the first step (momentum buffers created)
and other dtypes go parameter by parameter (``_core.sgd_step`` or numpy).
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
        state = self.state
        for g in self.param_groups:
            lr, mom, damp, wd = g["lr"], g["momentum"], g["dampening"], g["weight_decay"]
            nesterov = g["nesterov"]
            params, data, grads, bufs = [], [], [], []
            for p in g["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if grad.shape != p.data.shape:
                    raise ValueError(f"SGD: gradient shape {grad.shape} differs from parameter "
                                     f"shape {p.data.shape}")
                st = state.get(id(p))
                if st is None:
                    st = state[id(p)] = {}
                params.append(p), data.append(p.data), grads.append(grad)
                bufs.append(st.get("momentum_buffer") if mom else None)
            if not params:
                continue
            hyper = (lr, mom, damp, wd, nesterov)
            # One kernel call for the group: it checks every array before
            # touching any, so on refusal (a float64 or non-contiguous array)
            # nothing has changed and the parameters go one by one.
            if mom and any(b is None for b in bufs):  # first step: buffers are written, not read
                self._step_each(params, bufs, hyper)
                continue
            try:
                _core.sgd_step_multi(data, grads, bufs if mom else None, *hyper, False)
            except (TypeError, ValueError):
                self._step_each(params, bufs, hyper)

    def _step_each(self, params, bufs, hyper) -> None:
        lr, mom, damp, wd, nesterov = hyper
        for p, buf in zip(params, bufs):
            grad, data = p.grad, p.data
            if _kernel_ok(data) and (buf is None or _kernel_ok(buf)) and grad.dtype == np.float32:
                init = bool(mom) and buf is None
                if init:
                    buf = self.state[id(p)]["momentum_buffer"] = np.empty_like(data)
                _core.sgd_step(data, np.ascontiguousarray(grad), buf, lr, mom, damp, wd,
                               nesterov, init)
            else:
                self._numpy_step(p, self.state[id(p)], lr, mom, damp, wd, nesterov)

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
