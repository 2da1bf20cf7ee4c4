"""ONNX's own node test cases (onnx.backend.test) through convcore.onnx_backend,
for every operator convcore supports. Excluded cases are listed with why."""
import re

import onnx.backend.test
import pytest

pytest.importorskip("onnx.backend.test")

import convcore.onnx_backend as backend  # noqa: E402

_OPS = [
    "conv", "convtranspose", "batchnorm", "instancenorm", "relu", "leakyrelu", "prelu", "clip",
    "sigmoid", "hardsigmoid", "hardswish", "tanh", "elu", "selu", "softplus", "softsign", "erf",
    "gelu", "mish", "softmax", "logsoftmax", "add", "sub", "mul", "div", "pow", "mod", "sqrt", "exp",
    "log", "neg", "abs", "reciprocal", "floor", "ceil", "sign", "max", "min", "sum", "mean",
    "equal", "greater", "greater_equal", "less", "less_equal", "where", "not", "and", "or", "xor",
    "maxpool", "averagepool", "globalaveragepool", "globalmaxpool", "lrn", "gemm", "matmul",
    "flatten", "reshape", "transpose", "concat", "split", "slice", "squeeze", "unsqueeze",
    "gather", "gather_elements", "shape", "size", "cast", "constant", "constantofshape",
    "identity", "dropout", "pad", "edge_pad", "reflect_pad", "wrap_pad", "constant_pad",
    "resize", "upsample", "reduce_mean", "reduce_max", "reduce_min", "reduce_sum",
    "reduce_prod", "reduce_l2", "reduce_sum_square", "expand", "range", "tile", "depthtospace",
    "spacetodepth", "argmax", "argmin", "top_k",
]

_EXCLUDE = {
    r"_expanded": "function-expanded variants use ops outside the CNN set (CastLike, If, ...)",
    r"_3d_|convtranspose_3d|_3d_cpu": "3-D convolution/pooling is out of scope (2-D CNNs)",
    r"test_cast_.*(FLOAT8|FLOAT4|INT4|UINT4|INT2|UINT2|BFLOAT16|E8M0|STRING)": "exotic dtypes",
    r"test_cast_no_saturate": "float8 saturation modes",
    r"string": "string tensors are not supported",
    r"sequence|identity_opt": "sequence/optional types are not supported",
    r"training_mode|batchnorm_.*training": "training-mode BatchNormalization (inference runner)",
    r"maxpool_with_argmax_2d_precomputed_strides": "storage_order=1 indices",
    r"range_bfloat16": "bfloat16",
}

_bt = onnx.backend.test.BackendTest(backend.ConvcoreBackend, __name__)
_INCLUDE = r"^test_(" + "|".join(_OPS) + r")(_.*)?_cpu$"
_bt.include(_INCLUDE)
for _pat in _EXCLUDE:
    _bt.exclude(_pat)

# BackendTest turns every case outside the include pattern into a skip; drop
# those (operators convcore does not claim) so that the skips left are the
# excluded cases above, each with its reason.
_inc = re.compile(_INCLUDE)
_cases = _bt.test_cases  # a property that builds new classes on each access
for _case in _cases.values():
    for _name in [a for a in vars(_case) if a.startswith("test_") and not _inc.search(a)]:
        delattr(_case, _name)

globals().update(_cases)
