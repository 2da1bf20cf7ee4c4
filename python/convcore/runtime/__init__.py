"""The ONNX runner: loader -> graph IR -> passes -> executor.

``convcore.InferenceSession`` mirrors onnxruntime's API.
"""
from .errors import ModelError, UnsupportedModelError
from .ops import supported_ops
from .session import InferenceSession, NodeArg

__all__ = ["InferenceSession", "NodeArg", "ModelError", "UnsupportedModelError", "supported_ops"]
