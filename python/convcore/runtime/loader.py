"""ONNX bytes -> Graph IR, treating the file as untrusted input.

Checks done here, before anything is allocated: protobuf decodes, an opset
for the default domain, tensor sizes that agree with their data and stay
below a sane limit, external-data files that stay inside the model's folder.
"""
from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from .errors import ModelError
from .graph import Graph, Node, ValueSpec

# A single tensor above this is refused as "absurd" (an attacker-chosen dim
# must not make us allocate terabytes). Overridable for genuinely huge models.
MAX_TENSOR_BYTES = int(os.environ.get("CONVCORE_MAX_TENSOR_BYTES", 8 << 30))

DTYPES = {
    TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64,
    TensorProto.FLOAT16: np.float16, TensorProto.INT64: np.int64,
    TensorProto.INT32: np.int32, TensorProto.INT16: np.int16, TensorProto.INT8: np.int8,
    TensorProto.UINT8: np.uint8, TensorProto.UINT16: np.uint16,
    TensorProto.UINT32: np.uint32, TensorProto.UINT64: np.uint64, TensorProto.BOOL: np.bool_,
}
ONNX_OF = {np.dtype(v): k for k, v in DTYPES.items()}

_FIELD = {  # which repeated field holds the values when raw_data is not used
    TensorProto.FLOAT: "float_data", TensorProto.DOUBLE: "double_data",
    TensorProto.INT64: "int64_data", TensorProto.UINT64: "uint64_data",
    TensorProto.UINT32: "uint64_data",
}


def load_model(model) -> tuple:
    """Accepts a path, bytes or an onnx.ModelProto; returns (ModelProto, base_dir or None)."""
    base_dir = None
    if isinstance(model, onnx.ModelProto):
        proto = model
    elif isinstance(model, (bytes, bytearray, memoryview)):
        proto = _parse(bytes(model), "the given bytes")
    elif isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"ONNX model file not found: {path}")
        with open(path, "rb") as f:
            data = f.read()
        proto = _parse(data, path)
        base_dir = os.path.dirname(os.path.abspath(path))
    else:
        raise TypeError(f"InferenceSession: model must be a path, bytes or onnx.ModelProto, "
                        f"got {type(model).__name__}")
    return proto, base_dir


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as e:  # google.protobuf.message.DecodeError and friends
        raise ModelError(f"{where} is not a valid ONNX model (protobuf decode failed: {e})") from None
    return proto


def default_opset(proto: onnx.ModelProto) -> int:
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    if len(proto.opset_import) == 0 and proto.ir_version and proto.ir_version < 3:
        return 1
    raise ModelError("the model declares no opset for the default ONNX domain (opset_import)")


def tensor_to_array(t: TensorProto, base_dir: str | None, what: str = "initializer") -> np.ndarray:
    name = t.name or "<unnamed>"
    if t.data_type not in DTYPES:
        raise ModelError(f"{what} '{name}': unsupported data type "
                         f"{TensorProto.DataType.Name(t.data_type) if t.data_type in TensorProto.DataType.values() else t.data_type}")
    dims = list(t.dims)
    if any(d < 0 for d in dims):
        raise ModelError(f"{what} '{name}': negative dimension in shape {dims}")
    dtype = np.dtype(DTYPES[t.data_type])
    numel = 1
    for d in dims:
        numel *= d
    nbytes = numel * dtype.itemsize
    if nbytes > MAX_TENSOR_BYTES:
        raise ModelError(f"{what} '{name}': declared shape {dims} would need {nbytes / 2**30:.1f} GiB "
                         f"(limit {MAX_TENSOR_BYTES / 2**30:.1f} GiB)")
    if t.data_location == TensorProto.EXTERNAL:
        raw = _read_external(t, base_dir, what, nbytes)
        arr = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype, copy=True)
        return arr.reshape(dims)
    if t.HasField("raw_data"):
        if len(t.raw_data) != nbytes:
            raise ModelError(f"{what} '{name}': raw data has {len(t.raw_data)} bytes, shape {dims} "
                             f"of {dtype} needs {nbytes}")
    else:
        field = _FIELD.get(t.data_type, "int32_data")
        count = len(getattr(t, field))
        if count != numel:
            raise ModelError(f"{what} '{name}': holds {count} values, shape {dims} needs {numel}")
    try:
        arr = numpy_helper.to_array(t)
    except Exception as e:
        raise ModelError(f"{what} '{name}': cannot decode tensor data ({e})") from None
    return np.array(arr, dtype=dtype, copy=True).reshape(dims)


def _read_external(t: TensorProto, base_dir, what: str, nbytes: int) -> bytes:
    name = t.name or "<unnamed>"
    info = {e.key: e.value for e in t.external_data}
    loc = info.get("location")
    if not loc:
        raise ModelError(f"{what} '{name}': external data without a location")
    if base_dir is None:
        raise ModelError(f"{what} '{name}': external data '{loc}' can only be read when the "
                         f"model is loaded from a file path")
    norm = loc.replace("\\", "/")
    if os.path.isabs(loc) or norm.startswith("/") or ".." in norm.split("/") or ":" in norm:
        raise ModelError(f"{what} '{name}': external data location '{loc}' leaves the model's "
                         f"folder (absolute paths and '..' are refused)")
    path = os.path.realpath(os.path.join(base_dir, norm))
    root = os.path.realpath(base_dir)
    if os.path.commonpath([path, root]) != root:
        raise ModelError(f"{what} '{name}': external data location '{loc}' resolves outside the "
                         f"model's folder")
    if not os.path.isfile(path):
        raise ModelError(f"{what} '{name}': external data file '{loc}' not found")
    try:
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise ModelError(f"{what} '{name}': external data offset/length are not integers") from None
    size = os.path.getsize(path)
    if length is None:
        length = nbytes
    if offset < 0 or length != nbytes or offset + length > size:
        raise ModelError(f"{what} '{name}': external data range offset={offset} length={length} "
                         f"does not match the tensor ({nbytes} bytes) or the file ({size} bytes)")
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def _spec(vi: onnx.ValueInfoProto) -> ValueSpec:
    tt = vi.type.tensor_type
    dtype = np.dtype(DTYPES[tt.elem_type]) if tt.elem_type in DTYPES else None
    shape = None
    if tt.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                      for d in tt.shape.dim)
    return ValueSpec(vi.name, dtype, shape)


def build_graph(proto: onnx.ModelProto, base_dir, release_data: bool = False) -> Graph:
    """release_data: the proto is ours (parsed from bytes/path): free each
    initializer's bytes once copied, so the weights are not held twice."""
    g = proto.graph
    opset = default_opset(proto)
    constants = {}
    for t in g.initializer:
        if not t.name:
            raise ModelError("an initializer has no name")
        constants[t.name] = tensor_to_array(t, base_dir)
        if release_data:
            t.ClearField("raw_data")
    for st in g.sparse_initializer:
        raise ModelError(f"sparse initializer '{st.values.name}' is not supported")
    inputs = []
    for vi in g.input:
        if vi.name in constants:
            continue   # IR < 4 lists initializers as inputs too
        if not vi.type.HasField("tensor_type"):
            raise ModelError(f"graph input '{vi.name}' is not a tensor (sequences/maps are not supported)")
        spec = _spec(vi)
        if spec.dtype is None:
            raise ModelError(f"graph input '{vi.name}' has an unsupported element type "
                             f"{vi.type.tensor_type.elem_type}")
        inputs.append(spec)
    outputs = [_spec(vi) for vi in g.output]
    if not outputs:
        raise ModelError("the model's graph declares no outputs")
    nodes = []
    for i, n in enumerate(g.node):
        attrs = {}
        for a in n.attribute:
            if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise ModelError(f"node '{n.name or i}' ({n.op_type}): subgraph attribute "
                                 f"'{a.name}' (control flow) is not supported")
            # A copy, so the graph does not keep the whole parsed model alive.
            a2 = onnx.AttributeProto()
            a2.CopyFrom(a)
            attrs[a.name] = a2
        nodes.append(Node(name=n.name or f"{n.op_type}_{i}", op_type=n.op_type,
                          inputs=list(n.input), outputs=list(n.output), attrs=attrs,
                          domain=n.domain))
    return Graph(nodes=nodes, inputs=inputs, outputs=outputs, constants=constants, opset=opset)
