"""Reference CNN architectures (written in torch, exported to ONNX at several
opsets) must match onnxruntime: max abs diff <= 1e-4 x the output's scale."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.archs import NAMES, build, export  # noqa: E402

from .helpers import assert_matches_ort  # noqa: E402

_CACHE = {}


def _model(name):
    if name not in _CACHE:
        _CACHE[name] = build(name)
    return _CACHE[name]


# Every family at an old (9) and a recent (17) opset; 11 and 13 (Resize/Clip/
# Squeeze/Split attribute->input changes) for the families that exercise them;
# 7 and 21 for a subset.
_CASES = [(n, o) for n in NAMES for o in (9, 17)] + [
    (n, o) for n in ("mobilenet_v2", "mobilenet_v3", "yolo_like", "dbnet_like", "shufflenet",
                     "squeezenet", "efficientnet_lite") for o in (11, 13)] + [
    # The oldest opset torch still exports (no Upsample there) and the newest.
    (n, o) for n in ("resnet18", "mobilenet_v2", "mobilenet_v3", "googlenet", "densenet",
                     "squeezenet") for o in (7, 21)] + [("yolo_like", 21), ("dbnet_like", 21)]


@pytest.mark.parametrize("name,opset", _CASES)
def test_model_matches_onnxruntime(name, opset):
    model, shape = _model(name)
    data = export(model, shape, opset)
    x = np.random.RandomState(1).randn(*shape).astype(np.float32)
    assert_matches_ort(data, {"input": x})


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3", "yolo_like", "dbnet_like"])
def test_dynamic_batch_and_image_size(name):
    """A new input shape re-plans; results still match ORT at each shape."""
    import convcore
    from .helpers import ort_run
    model, shape = _model(name)
    data = export(model, shape, 13, dynamic_batch=True)
    sess = convcore.InferenceSession(data)
    for n in (1, 3, 2):
        x = np.random.RandomState(n).randn(n, *shape[1:]).astype(np.float32)
        got = sess.run(None, {"input": x})
        ref = ort_run(data, {"input": x})
        for g, r in zip(got, ref):
            assert g.shape == r.shape
            assert np.abs(g - r).max() <= 1e-4 * max(1.0, np.abs(r).max())


def test_matches_torch_directly():
    """A second oracle besides ORT: torch's own forward."""
    import convcore
    model, shape = _model("mobilenet_v2")
    x = np.random.RandomState(3).randn(*shape).astype(np.float32)
    want = model(torch.from_numpy(x)).detach().numpy()
    got = convcore.InferenceSession(export(model, shape, 17)).run(None, {"input": x})[0]
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


@pytest.mark.parametrize("name,opset,gone", [
    ("resnet18", 13, {"Add", "Relu", "BatchNormalization"}),
    ("mobilenet_v2", 9, {"Clip", "Relu", "Add"}),
    ("mobilenet_v3", 17, {"HardSwish", "Relu"}),
    ("yolo_like", 13, {"Mul"}),
])
def test_fusions_happen_on_exported_models(name, opset, gone):
    import convcore
    model, shape = _model(name)
    sess = convcore.InferenceSession(export(model, shape, opset))
    producer = {o: n for n in sess.graph.nodes for o in n.outputs}
    unfused = [n.name for n in sess.graph.nodes if n.op_type in gone
               and any(getattr(producer.get(i), "op_type", None) == "Conv" for i in n.inputs)]
    assert not unfused, unfused
    assert all(getattr(n.op, "packed", None) is not None
               for n in sess.graph.nodes if n.op_type == "Conv")
