"""Adam and AdamW (decoupled weight decay), with PyTorch's bias-corrected update.

The float32 parameters of a group are updated by one compiled call
(``_core.adam_step_multi``: both moments and the parameter in one pass per
parameter); other dtypes in numpy.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _core
from .optimizer import Optimizer, check_hyper
from .sgd import _kernel_ok


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        name = type(self).__name__
        check_hyper(name, lr=lr, eps=eps, weight_decay=weight_decay)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {betas!r}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))

    def step(self) -> None:
        for g in self.param_groups:
            amsgrad = g["amsgrad"]
            batch = ([], [], [], [], [], [])  # params, grads, exp_avgs, exp_avg_sqs, maxima, steps
            for p, state in self._params_with_grad(g):
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(p.data)
                    state["exp_avg_sq"] = np.zeros_like(p.data)
                    if amsgrad:
                        state["max_exp_avg_sq"] = np.zeros_like(p.data)
                state["step"] += 1
                arrays = [p.data, p.grad, state["exp_avg"], state["exp_avg_sq"]]
                if amsgrad:
                    arrays.append(state["max_exp_avg_sq"])
                if p.grad.dtype == np.float32 and _kernel_ok(p.data) and \
                        all(_kernel_ok(a) for a in arrays[2:]):
                    arrays[1] = np.ascontiguousarray(p.grad)
                    for lst, a in zip(batch, arrays):
                        lst.append(a)
                    batch[5].append(state["step"])
                else:
                    self._numpy_step(p, state, g)
            if batch[0]:
                b1, b2 = g["betas"]
                _core.adam_step_multi(batch[0], batch[1], batch[2], batch[3],
                                      batch[4] if amsgrad else None, batch[5], g["lr"], b1, b2,
                                      g["eps"], g["weight_decay"], self._decoupled)

    def _numpy_step(self, p, state, g) -> None:
        """Other dtypes (float64 gradient checks) and arrays the kernel cannot update."""
        lr, (b1, b2), eps, wd = g["lr"], g["betas"], g["eps"], g["weight_decay"]
        grad = p.grad
        if wd and self._decoupled:
            p.data *= 1 - lr * wd
        elif wd:
            grad = grad + wd * p.data
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * grad * grad
        if g["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        step_size = lr / (1 - b1 ** t)
        denom = np.sqrt(v) / math.sqrt(1 - b2 ** t) + eps
        p.data -= (step_size * m / denom).astype(p.data.dtype, copy=False)


class AdamW(Adam):
    """Adam with weight decay applied to the weights directly (Loshchilov & Hutter)."""
    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
