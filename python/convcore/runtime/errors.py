"""Exceptions of the ONNX runner.

Both derive from ValueError so that callers catching the usual "bad input"
type catch them too; the message always names the node or tensor at fault.
"""
from __future__ import annotations


class ModelError(ValueError):
    """The ONNX model itself is malformed, unsafe or inconsistent."""


class UnsupportedModelError(ModelError):
    """The model uses operators (or attribute values) convcore does not implement."""


def node_label(node) -> str:
    return f"node '{node.name}' ({node.op_type})"
