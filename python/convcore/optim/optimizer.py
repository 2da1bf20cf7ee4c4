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

    def state_dict(self) -> dict:
        """Hyper-parameters and per-parameter state (copies), parameters named by index."""
        index, groups = {}, []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {index[k]: {n: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v)
                            for n, v in st.items()}
                 for k, st in self.state.items() if k in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what ``state_dict()`` returned (for the same parameters, in the same order)."""
        name = type(self).__name__
        groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if groups is None or "state" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and "
                             f"'param_groups'")
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError(f"{name}.load_state_dict: the saved parameter groups "
                             f"({[len(g['params']) for g in groups]} parameters) do not match this "
                             f"optimizer's ({[len(g['params']) for g in self.param_groups]})")
        params = [p for g in self.param_groups for p in g["params"]]
        self.state = {}
        for i, st in state_dict["state"].items():
            p = params[int(i)]
            restored = {}
            for n, v in st.items():
                if isinstance(v, np.ndarray):
                    if v.shape != p.data.shape:
                        raise ValueError(f"{name}.load_state_dict: state {n!r} of parameter {i} "
                                         f"has shape {v.shape}, the parameter {p.data.shape}")
                    v = np.array(v, dtype=p.data.dtype, copy=True)
                restored[n] = v
            self.state[id(p)] = restored
        for g, saved in zip(self.param_groups, groups):
            g.update({k: v for k, v in saved.items() if k != "params"})

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
