"""InferenceSession(device="cuda"): node placement, host fallback, results.

Everywhere: a fake device (tests/fake_cuda.py: device arrays are wrapped
numpy arrays, kernels are the CPU ones) checks which nodes go to the GPU,
that host nodes get downloaded inputs and device nodes uploaded ones, the
warning listing CPU-only ops, and that outputs are numpy arrays matching
onnxruntime. On a GPU (marked ``gpu``): the same models, and the reference
CNN families when torch is installed, against onnxruntime.
"""
import types
import warnings

import numpy as np
import pytest
from onnx import helper

import convcore
import convcore.cuda as ccu
from convcore.runtime import cuda_ops
from fake_cuda import FakeDA, FakeExt

from .helpers import assert_matches_ort, make_model, rand

GPU = ccu.is_available()


def _inits(seed=0):
    r = np.random.RandomState(seed)
    f = lambda *s: r.randn(*s).astype(np.float32) * 0.3  # noqa: E731
    return {"w1": f(8, 3, 3, 3), "b1": f(8), "w2": f(8, 8, 3, 3), "b2": f(8),
            "w3": f(8, 8, 1, 1), "wd": f(8, 1, 3, 3), "bias_c": f(1, 8, 1, 1),
            "fc": f(8, 5), "fcb": f(5), "shape": np.array([0, -1], np.int64)}


def _cnn(opset=13):
    """A small residual CNN touching every device op and some host ones:
    conv+relu, maxpool, residual add (fused), depthwise conv, avg pool,
    a broadcasting add (host), sigmoid (host), global pool, reshape, gemm."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        n("Relu", ["c1"], ["r1"]),
        n("MaxPool", ["r1"], ["p1"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
        n("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        n("Add", ["c2", "p1"], ["a2"]),
        n("Relu", ["a2"], ["r2"]),
        n("Conv", ["r2", "wd"], ["d3"], pads=[1, 1, 1, 1], group=8),
        n("AveragePool", ["d3"], ["q3"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Add", ["q3", "bias_c"], ["s3"]),          # broadcasting: host
        n("Sigmoid", ["s3"], ["g3"]),                # no CUDA kernel: host
        n("Conv", ["g3", "w3"], ["c4"]),
        n("Add", ["c4", "q3"], ["a4"]),              # residual into the 1x1 conv
        n("GlobalAveragePool", ["a4"], ["gp"]),
        n("Reshape", ["gp", "shape"], ["flat"]),
        n("Gemm", ["flat", "fc", "fcb"], ["y"]),
    ]
    return make_model(nodes, [("x", ["N", 3, "H", "W"])], [("y", None)], _inits(), opset=opset)


@pytest.fixture
def fake_gpu(monkeypatch):
    ext = FakeExt()
    fake_cuda_mod = types.SimpleNamespace(
        is_available=lambda: True, unavailable_reason=lambda: "",
        asarray=lambda a: FakeDA(np.asarray(a)), get_allow_tf32=lambda: False,
        conv_algorithm=lambda *a, **k: "fake")
    monkeypatch.setattr(cuda_ops, "_ext", ext)
    monkeypatch.setattr(cuda_ops, "cuda", fake_cuda_mod)
    return ext


def _placement(sess):
    return [(n.op_type, n.on_device) for n in sess.graph.nodes]


def test_fake_gpu_session_places_nodes_and_matches_ort(fake_gpu):
    m = _cnn()
    feeds = {"x": rand(2, 3, 16, 16)}
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        sess = convcore.InferenceSession(m, device="cuda")
    msgs = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
    assert len(msgs) == 1 and "Sigmoid" in msgs[0] and "Gemm" in msgs[0], msgs
    placed = _placement(sess)
    assert ("Conv", True) in placed and ("MaxPool", True) in placed
    assert ("AveragePool", True) in placed and ("GlobalAveragePool", True) in placed
    assert ("Sigmoid", False) in placed and ("Gemm", False) in placed
    assert sess.get_providers()[0] == "CUDAExecutionProvider"
    # the device convs hold no host weights: the session dropped them
    assert not any(k in sess.graph.constants for k in ("w1", "w2", "wd"))
    got = assert_matches_ort(m, feeds, device="cuda")
    assert all(isinstance(g, np.ndarray) for g in got)
    # the device kernels really ran
    assert sum(1 for c in fake_gpu.calls if c[0] == "conv2d_forward") == 4   # one run, 4 convs


def test_fake_gpu_outputs_are_host_arrays_and_shapes_change(fake_gpu):
    m = _cnn()
    sess = convcore.InferenceSession(m, device="cuda")
    cpu = convcore.InferenceSession(m)
    for n, hw in ((1, 16), (3, 20), (1, 16)):
        x = rand(n, 3, hw, hw, seed=n + hw)
        got = sess.run(None, {"x": x})[0]
        assert isinstance(got, np.ndarray) and got.flags.writeable
        np.testing.assert_allclose(got, cpu.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)


def test_fake_gpu_report_names_device_kernels(fake_gpu):
    sess = convcore.InferenceSession(_cnn(), device="cuda")
    rep = sess.node_report({"x": rand(1, 3, 16, 16)})
    convs = [r for r in rep if r["op_type"] == "Conv"]
    assert convs and all(r["kernel"].endswith("(cuda)") for r in convs)
    assert any(r["post"] is None and r["epilogue"] == "relu" for r in convs)


def test_fake_gpu_conv_with_post_op_stays_on_host(fake_gpu):
    n = helper.make_node
    m = make_model([n("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1]),
                    n("HardSwish", ["c"], ["y"])],
                   [("x", [1, 3, 8, 8])], [("y", None)], _inits(), opset=14)
    with pytest.warns(RuntimeWarning, match="Conv"):
        sess = convcore.InferenceSession(m, device="cuda")
    assert _placement(sess) == [("Conv", False)]
    assert_matches_ort(m, {"x": rand(1, 3, 8, 8)}, device="cuda")


def test_bad_device_is_a_value_error():
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        convcore.InferenceSession(_cnn(), device="tpu")


@pytest.mark.skipif(GPU, reason="checks the message on a machine without a usable GPU")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="device 'cuda' is not available"):
        convcore.InferenceSession(_cnn(), device="cuda")


# --------------------------------------------------------------------------
# On a GPU
# --------------------------------------------------------------------------
gpu = pytest.mark.gpu
needs_gpu = pytest.mark.skipif(not GPU, reason=f"no usable CUDA device: {ccu.unavailable_reason()}")


@gpu
@needs_gpu
def test_gpu_session_matches_ort():
    m = _cnn()
    with pytest.warns(RuntimeWarning):
        sess = convcore.InferenceSession(m, device="cuda")
    for n in (1, 4):
        feeds = {"x": rand(n, 3, 16, 16, seed=n)}
        got = sess.run(None, feeds)[0]
        ref = convcore.InferenceSession(m).run(None, feeds)[0]
        scale = max(1.0, float(np.abs(ref).max()))
        assert float(np.abs(got - ref).max()) <= 1e-4 * scale
    assert_matches_ort(m, {"x": rand(2, 3, 16, 16)}, device="cuda")


@gpu
@needs_gpu
@pytest.mark.parametrize("name", ["alexnet", "vgg", "googlenet", "resnet18", "resnet50",
                                  "squeezenet", "densenet", "shufflenet", "mobilenet_v1",
                                  "mobilenet_v2", "mobilenet_v3", "efficientnet_lite",
                                  "yolo_like", "dbnet_like"])
def test_gpu_reference_models_match_ort(name):
    pytest.importorskip("torch")
    from models.archs import NAMES, build, export
    if name not in NAMES:
        pytest.skip(f"{name} not among the reference architectures")
    model, shape = build(name)
    onnx_model = export(model, shape, opset=17)
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        inp = convcore.InferenceSession(onnx_model).get_inputs()[0].name
        assert_matches_ort(onnx_model, {inp: x}, device="cuda")
