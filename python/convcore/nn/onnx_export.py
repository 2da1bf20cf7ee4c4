"""``export_onnx``: trace one forward pass in eval mode and write it as ONNX.

While a trace runs, every op in ``tensor.py`` and ``functional.py`` reports
itself (op name, inputs, output, attributes) to the ``_Tracer`` below, which
turns it into ONNX nodes. Parameters and buffers become initializers under
their state_dict names; other arrays that enter the graph become constants.
An op with no ONNX form (or one that bypassed the trace) is refused by name.
"""
from __future__ import annotations

import numpy as np

from . import tensor as _tensor_mod
from .tensor import Tensor, no_grad

OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17; older runtimes accept it


class _Tracer:
    def __init__(self, module, dynamic_batch: bool):
        from onnx import helper, numpy_helper
        self.helper, self.numpy_helper = helper, numpy_helper
        self.dynamic_batch = dynamic_batch
        self.nodes, self.initializers = [], []
        self.names: dict[int, str] = {}       # id(Tensor) -> value name in the graph
        self.keep: list = []                  # keeps traced objects alive so ids stay unique
        self.made: set[int] = set()           # Tensors produced by ops during the trace
        self.params = {id(p): n for n, p in module.named_parameters()}
        self.buffers = {id(b): n for n, b in module.named_buffers()}
        self.const_names: dict[int, str] = {}
        self.counter = 0
        self.batch = None

    # -- names -------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}_{self.counter}"

    def produced(self, t: Tensor) -> None:
        self.made.add(id(t))
        self.keep.append(t)

    def const(self, arr: np.ndarray, base: str = "const", name: str | None = None) -> str:
        """An initializer for ``arr`` (deduplicated by object identity)."""
        key = id(arr)
        if key in self.const_names:
            return self.const_names[key]
        name = name or self.buffers.get(key) or self.fresh(base)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(arr), name))
        self.const_names[key] = name
        self.keep.append(arr)
        return name

    def name_of(self, x) -> str:
        if isinstance(x, Tensor):
            k = id(x)
            if k in self.names:
                return self.names[k]
            if k in self.made:
                raise ValueError(f"export_onnx: a '{x._op}' op in the forward pass has no ONNX "
                                 f"export; supported: {', '.join(sorted(_EMIT))}")
            if k in self.params:
                name = self.params[k]
                self.initializers.append(self.numpy_helper.from_array(x.data.astype(np.float32), name))
                self.names[k] = name
                self.keep.append(x)
                return name
            return self.const(x.data.astype(np.float32) if x.data.dtype == np.float64 else x.data)
        return self.const(np.asarray(x, dtype=np.float32))

    def node(self, op_type: str, inputs: list, out: Tensor | None = None, **attrs) -> str:
        name = self.fresh(op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [name], name=name, **attrs))
        if out is not None:
            self.names[id(out)] = name
            self.keep.append(out)
        return name

    # -- ops -------------------------------------------------------------------------------
    def record(self, op, inputs, out, attrs) -> None:
        if op not in _EMIT:
            raise ValueError(f"export_onnx: op '{op}' has no ONNX export; supported: "
                             f"{', '.join(sorted(_EMIT))}")
        _EMIT[op](self, [self.name_of(i) for i in inputs], inputs, out, attrs)

    def shape_const(self, shape, src_shape) -> str:
        """Reshape target; the batch dimension becomes 0 ("copy from input") when dynamic."""
        shape = list(shape)
        if self.dynamic_batch and shape and src_shape and shape[0] == src_shape[0] == self.batch:
            shape[0] = 0
        return self.const(np.array(shape, dtype=np.int64), "shape")


def _conv(tr, names, inputs, out, a):
    tr.node("Conv", names, out, kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
            pads=list(a["pads"]), dilations=list(a["dilation"]), group=int(a["groups"]))


def _max_pool(tr, names, inputs, out, a):
    tr.node("MaxPool", names, out, kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
            pads=list(a["pads"]), dilations=list(a["dilation"]), ceil_mode=int(a["ceil_mode"]))


def _avg_pool(tr, names, inputs, out, a):
    tr.node("AveragePool", names, out, kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
            pads=list(a["pads"]), ceil_mode=int(a["ceil_mode"]),
            count_include_pad=int(a["count_include_pad"]))


def _linear(tr, names, inputs, out, a):
    x = inputs[0]
    if x.ndim == 2:
        tr.node("Gemm", names, out, transB=1)
        return
    wt = tr.const(np.ascontiguousarray(inputs[1].data.T, dtype=np.float32), "weight_t")
    y = tr.node("MatMul", [names[0], wt], None if len(names) == 3 else out)
    if len(names) == 3:
        tr.node("Add", [y, names[2]], out)


def _batch_norm(tr, names, inputs, out, a):
    c = inputs[0].shape[1]
    scale = names[1] if a["has_weight"] else tr.const(np.ones(c, np.float32), "bn_scale")
    bias = names[1 + a["has_weight"]] if a["has_bias"] else tr.const(np.zeros(c, np.float32), "bn_bias")
    tr.node("BatchNormalization", [names[0], scale, bias, tr.const(a["mean"], "bn_mean"),
                                   tr.const(a["var"], "bn_var")], out, epsilon=a["eps"])


def _batch_norm_train(tr, names, inputs, out, a):
    raise ValueError("export_onnx: BatchNorm ran with batch statistics during the trace (a module "
                     "without running stats, or training mode forced in forward)")


def _reshape(tr, names, inputs, out, a):
    tr.node("Reshape", [names[0], tr.shape_const(a["shape"], inputs[0].shape)], out)


def _flatten(tr, names, inputs, out, a):
    x = inputs[0]
    if a["start_dim"] == 1 and a["end_dim"] == x.ndim - 1:
        tr.node("Flatten", names, out, axis=1)
    else:
        tr.node("Reshape", [names[0], tr.shape_const(out.shape, x.shape)], out)


def _reduce(onnx_op):
    def emit(tr, names, inputs, out, a):
        axes = a["axes"] if a["axes"] is not None else tuple(range(inputs[0].ndim))
        if onnx_op == "ReduceSum":  # axes is an input since opset 13
            tr.node("ReduceSum", [names[0], tr.const(np.array(axes, np.int64), "axes")], out,
                    keepdims=int(a["keepdims"]))
        else:  # ReduceMean takes axes as an attribute up to opset 17
            tr.node("ReduceMean", names, out, axes=list(axes), keepdims=int(a["keepdims"]))
    return emit


def _simple(onnx_op, **fixed):
    def emit(tr, names, inputs, out, a):
        tr.node(onnx_op, names, out, **fixed)
    return emit


def _pow(tr, names, inputs, out, a):
    tr.node("Pow", [names[0], tr.const(np.array(a["exponent"], np.float32), "exponent")], out)


def _with_axis(onnx_op):
    def emit(tr, names, inputs, out, a):
        tr.node(onnx_op, names, out, axis=int(a["axis"]))
    return emit


_EMIT = {
    "conv2d": _conv, "relu": _simple("Relu"), "max_pool2d": _max_pool, "avg_pool2d": _avg_pool,
    "global_avg_pool2d": _simple("GlobalAveragePool"), "linear": _linear, "flatten": _flatten,
    "reshape": _reshape, "batch_norm": _batch_norm, "batch_norm_train": _batch_norm_train,
    "add": _simple("Add"), "sub": _simple("Sub"), "mul": _simple("Mul"), "div": _simple("Div"),
    "neg": _simple("Neg"), "exp": _simple("Exp"), "log": _simple("Log"), "pow": _pow,
    "matmul": _simple("MatMul"),
    "transpose": lambda tr, names, inputs, out, a: tr.node("Transpose", names, out, perm=list(a["perm"])),
    "sum": _reduce("ReduceSum"), "mean": _reduce("ReduceMean"),
    "softmax": _with_axis("Softmax"), "log_softmax": _with_axis("LogSoftmax"),
}


def export_onnx(module, path, input_shape, dynamic_batch: bool = True, input_name: str = "input",
                output_name: str = "output", sample=None):
    """Write ``module`` (traced in eval mode on one input) as an ONNX model; returns the proto.

    input_shape: (N, C, H, W) of the example input; with dynamic_batch the
    batch dimension is symbolic ("batch") in the file.
    """
    import onnx
    from onnx import TensorProto, helper

    shape = tuple(int(s) for s in input_shape)
    if not shape or min(shape) <= 0:
        raise ValueError(f"export_onnx: input_shape must be positive sizes, got {input_shape!r}")
    x = Tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32)
               if sample is None else np.asarray(sample, dtype=np.float32))
    if x.shape != shape:
        raise ValueError(f"export_onnx: sample has shape {x.shape}, input_shape says {shape}")

    tracer = _Tracer(module, dynamic_batch)
    tracer.batch = shape[0]
    tracer.names[id(x)] = input_name
    tracer.keep.append(x)
    was_training = [(m, m.training) for m in module.modules()]
    module.eval()
    prev = _tensor_mod._tracer
    _tensor_mod._tracer = tracer
    try:
        with no_grad():
            y = module(x)
    finally:
        _tensor_mod._tracer = prev
        for m, t in was_training:
            object.__setattr__(m, "training", t)
    if not isinstance(y, Tensor):
        raise ValueError(f"export_onnx: forward must return one Tensor, got {type(y).__name__}")

    out_name = tracer.names.get(id(y))
    if out_name is None:
        tracer.name_of(y)  # raises for an untraced op
        raise ValueError("export_onnx: the output does not depend on the input")
    if out_name == input_name:
        tracer.node("Identity", [input_name], y)
        out_name = tracer.names[id(y)]
    for n in tracer.nodes:  # give the final value the public name
        n.output[:] = [output_name if o == out_name else o for o in n.output]
        n.input[:] = [output_name if i == out_name else i for i in n.input]

    def dims(s):
        return (["batch"] + list(s[1:])) if dynamic_batch else list(s)
    graph = helper.make_graph(
        tracer.nodes, type(module).__name__,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, dims(shape))],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, dims(y.shape))],
        initializer=tracer.initializers)
    model = helper.make_model(graph, producer_name="convcore.nn",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        onnx.save(model, str(path))
    return model
