"""Operator implementations, one small class per ONNX op (see registry.py)."""
from . import activation, conv, elementwise, linalg, norm, pool, reduce, resize, shape  # noqa: F401
from .registry import lookup, register, supported_ops

__all__ = ["lookup", "register", "supported_ops"]
