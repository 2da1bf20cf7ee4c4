"""convcore.nn: define and train CNNs on convcore's kernels, PyTorch style.

    from convcore import nn, optim
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8 * 14 * 14, 10))
    loss = nn.functional.cross_entropy(model(x), y); loss.backward()
"""
from . import _malloc, data, functional, init
from .init import manual_seed
from .layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten,
                     GlobalAvgPool2d, Identity, Linear, MaxPool2d, ModuleList, ReLU, Sequential)
from .losses import CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module, Parameter
from .onnx_export import export_onnx
from .tensor import Tensor, enable_grad, is_grad_enabled, no_grad

_malloc.tune()  # see _malloc.py: avoids ~20k page faults per ResNet training step

__all__ = ["Tensor", "no_grad", "enable_grad", "is_grad_enabled", "Module", "Parameter",
           "Conv2d", "Linear", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "GlobalAvgPool2d",
           "ReLU", "Flatten", "BatchNorm2d", "Dropout", "Identity", "Sequential", "ModuleList",
           "CrossEntropyLoss", "MSELoss", "NLLLoss", "functional", "init", "data", "manual_seed",
           "export_onnx"]
