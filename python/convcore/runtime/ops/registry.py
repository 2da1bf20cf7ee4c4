"""The operator table: op type + opset range -> implementation class.

Adding an operator is one decorated class; `convcore info` and the load-time
"unsupported operators" check read this same table.
"""
from __future__ import annotations

_TABLE: dict = {}   # op_type -> list of (since, until, cls)


def register(*op_types: str, since: int = 1, until: int | None = None):
    """Class decorator: implements op_types for opsets since..until (inclusive)."""
    def deco(cls):
        for t in op_types:
            _TABLE.setdefault(t, []).append((since, until, cls))
        return cls
    return deco


def lookup(op_type: str, opset: int, domain: str = ""):
    if domain not in ("", "ai.onnx"):
        return None
    for since, until, cls in _TABLE.get(op_type, ()):
        if opset >= since and (until is None or opset <= until):
            return cls
    return None


def supported_ops() -> dict:
    """op_type -> list of (since, until) opset ranges."""
    return {k: sorted((s, u) for s, u, _ in v) for k, v in sorted(_TABLE.items())}
