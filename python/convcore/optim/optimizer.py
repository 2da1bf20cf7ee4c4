"""``Optimizer``: parameter groups, ``zero_grad()`` and the ``step()`` contract."""
from __future__ import annotations

import numpy as np

from ..nn.tensor import Tensor


class Optimizer:
    """Holds ``param_groups`` (lists of dicts, as in PyTorch) and per-parameter state."""

    def __init__(self, params, defaults: dict):
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors "
                            f"(e.g. model.parameters()), got a single Tensor")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state: dict[int, dict] = {}
        seen = set()
        for g in groups:
            g = dict(g)
            g["params"] = list(g["params"])
            for p in g["params"]:
                if not isinstance(p, Tensor):
                    raise TypeError(f"{type(self).__name__}: parameters must be Tensors, got "
                                    f"{type(p).__name__}")
                if id(p) in seen:
                    raise ValueError(f"{type(self).__name__}: a parameter appears in more than one group")
                seen.add(id(p))
            for k, v in self.defaults.items():
                g.setdefault(k, v)
            self.param_groups.append(g)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad = np.zeros_like(p.grad)

    def _params_with_grad(self, group):
        for p in group["params"]:
            if p.grad is not None:
                if p.grad.shape != p.data.shape:
                    raise ValueError(f"{type(self).__name__}: gradient shape {p.grad.shape} differs "
                                     f"from parameter shape {p.data.shape}")
                yield p, self.state.setdefault(id(p), {})

    def step(self) -> None:
        raise NotImplementedError


def check_hyper(opt: str, **values) -> None:
    for name, v in values.items():
        if v < 0:
            raise ValueError(f"{opt}: {name} must be >= 0, got {v}")
