"""Shared helpers: build small ONNX graphs and compare with onnxruntime."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import convcore


def make_model(nodes, inputs, outputs, inits=(), opset=13, ir_version=None):
    """inputs/outputs: list of (name, shape) float tensors or ValueInfoProtos."""
    def vi(x):
        if isinstance(x, onnx.ValueInfoProto):
            return x
        name, shape = x[:2]
        dtype = x[2] if len(x) > 2 else TensorProto.FLOAT
        return helper.make_tensor_value_info(name, dtype, shape)
    g = helper.make_graph(nodes, "g", [vi(i) for i in inputs], [vi(o) for o in outputs],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    if ir_version is not None:
        m.ir_version = ir_version
    else:
        m.ir_version = min(m.ir_version, 9)
    return m


def ort_run(model, feeds):
    ort = __import__("pytest").importorskip("onnxruntime")
    data = model if isinstance(model, bytes) else model.SerializeToString()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"]).run(None, feeds)


def assert_matches_ort(model, feeds, rel=1e-4, **kw):
    got = convcore.InferenceSession(model, **kw).run(None, feeds)
    ref = ort_run(model, feeds)
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert g.shape == r.shape, (g.shape, r.shape)
        assert g.dtype == r.dtype, (g.dtype, r.dtype)
        if r.dtype.kind == "f":
            scale = max(1.0, float(np.abs(r).max())) if r.size else 1.0
            err = float(np.abs(g.astype(np.float64) - r).max()) if r.size else 0.0
            assert err <= rel * scale, f"max abs diff {err} > {rel} x scale {scale}"
        else:
            np.testing.assert_array_equal(g, r)
    return got


def rand(*shape, seed=0):
    return np.random.RandomState(seed).randn(*shape).astype(np.float32)
