"""`convcore info`: what a model contains, computed from the file alone
(works for models with unsupported operators too)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import onnx

from .loader import build_graph, default_opset, load_model
from .ops import lookup


def _dims(vi):
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]


def _concrete(proto, batch=1, default_hw=224):
    """Copy of the model with symbolic input dims set (batch -> `batch`, others
    -> default_hw), so shape inference can size every node."""
    m = onnx.ModelProto.FromString(proto.SerializeToString())
    inits = {t.name for t in m.graph.initializer}
    for vi in m.graph.input:
        if vi.name in inits or not vi.type.tensor_type.HasField("shape"):
            continue
        for i, d in enumerate(vi.type.tensor_type.shape.dim):
            if not d.HasField("dim_value"):
                d.dim_value = batch if i == 0 else default_hw
    return m


def node_flops(node, shapes, consts):
    """FLOPs of one node (2 per multiply-add; 1 per output element for the rest)."""
    def shp(name):
        return shapes.get(name)
    out = shp(node.output[0]) if node.output else None
    try:
        if node.op_type == "Conv" and out is not None and shp(node.input[1]):
            w = shp(node.input[1])
            return 2 * int(np.prod(out)) * int(np.prod(w[1:]))
        if node.op_type == "ConvTranspose" and shp(node.input[0]) and shp(node.input[1]):
            x, w = shp(node.input[0]), shp(node.input[1])
            return 2 * int(np.prod(x)) * int(np.prod(w[1:]))
        if node.op_type in ("Gemm", "MatMul") and out is not None and shp(node.input[0]):
            a = shp(node.input[0])
            k = a[-1]
            if node.op_type == "Gemm" and any(at.name == "transA" and at.i for at in node.attribute):
                k = a[0]
            return 2 * int(np.prod(out)) * int(k)
        if node.op_type in ("MaxPool", "AveragePool") and out is not None:
            ks = next((list(a.ints) for a in node.attribute if a.name == "kernel_shape"), [1])
            return int(np.prod(out)) * int(np.prod(ks))
        if out is not None:
            return int(np.prod(out))
    except (TypeError, ValueError):
        pass
    return None


def summarize(model, batch: int = 1, default_hw: int = 224) -> dict:
    proto, base_dir = load_model(model)
    opset = default_opset(proto)
    graph = build_graph(proto, base_dir)   # validates tensors (sizes, external data)
    params = sum(int(v.size) for v in graph.constants.values())
    try:
        inferred = onnx.shape_inference.infer_shapes(_concrete(proto, batch, default_hw),
                                                     strict_mode=False, data_prop=True)
    except Exception:
        inferred = proto
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        d = _dims(vi)
        if d is not None and all(isinstance(v, int) for v in d):
            shapes[vi.name] = d
    for name, v in graph.constants.items():
        shapes.setdefault(name, list(v.shape))
    counts, unsupported, nodes = Counter(), set(), []
    total = 0
    for i, n in enumerate(proto.graph.node):
        ok = lookup(n.op_type, opset, n.domain) is not None
        key = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
        counts[key] += 1
        if not ok:
            unsupported.add(key)
        f = node_flops(n, shapes, graph.constants)
        total += f or 0
        nodes.append({"name": n.name or f"{n.op_type}_{i}", "op_type": key, "supported": ok,
                      "output_shape": shapes.get(n.output[0]) if n.output else None, "flops": f})
    return {
        "opset": opset, "ir_version": proto.ir_version,
        "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
        "inputs": [{"name": s.name, "shape": list(s.shape) if s.shape else None,
                    "dtype": str(s.dtype)} for s in graph.inputs],
        "outputs": [{"name": s.name, "shape": list(s.shape) if s.shape else None,
                     "dtype": str(s.dtype) if s.dtype else None} for s in graph.outputs],
        "op_counts": dict(counts.most_common()), "unsupported": sorted(unsupported),
        "params": params, "nodes": nodes, "total_flops": total,
        "flops_input_shapes": {vi.name: _dims(vi) for vi in _concrete(proto, batch, default_hw).graph.input
                               if vi.name not in graph.constants},
    }


