"""export_onnx round trips: onnx.checker, onnxruntime and convcore's own runner."""
import numpy as np
import pytest

from convcore import nn
from convcore.nn import functional as F

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

rng = np.random.default_rng(5)


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.drop(self.conv2(h)) + x)


def models():
    yield "lenet", nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(400, 32), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(32, 10)), (1, 1, 28, 28)
    yield "resnet", nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(), Residual(8),
        Residual(8), nn.MaxPool2d(3, 2, 1, ceil_mode=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 4)), (2, 3, 16, 16)
    yield "grouped", nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=2), nn.GlobalAvgPool2d(),
        nn.Flatten(), nn.Linear(8, 3)), (1, 4, 9, 9)


def warmed(model, shape):
    """A few training-mode passes so BatchNorm running stats are not the defaults."""
    model.train()
    for _ in range(3):
        model(rng.standard_normal((4,) + shape[1:]).astype(np.float32))
    model.eval()
    return model


@pytest.mark.parametrize("name, model, shape", list(models()), ids=lambda v: v if isinstance(v, str) else "")
def test_onnxruntime_matches_eval_output(tmp_path, name, model, shape):
    model = warmed(model, shape)
    path = tmp_path / f"{name}.onnx"
    proto = model.export_onnx(path, input_shape=shape)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert "Dropout" not in {n.op_type for n in proto.graph.node}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (shape[0], 5):  # dynamic batch: another size works too
        x = rng.standard_normal((batch,) + shape[1:]).astype(np.float32)
        expect = model(x).numpy()
        got = sess.run(None, {"input": x})[0]
        np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-5)
    assert not model.training


def test_export_restores_training_mode_and_names_initializers(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(18, 2))
    model.train()
    proto = model.export_onnx(tmp_path / "m.onnx", (1, 1, 5, 5), dynamic_batch=False)
    assert model.training and all(m.training for m in model.modules())
    names = {i.name for i in proto.graph.initializer}
    assert {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
            "3.weight", "3.bias"} <= names
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1


def test_reshape_and_tensor_arithmetic_export(tmp_path):
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3, padding=1)
            self.fc = nn.Linear(3 * 4 * 4, 5)

        def forward(self, x):
            h = self.conv(x) * 0.5 - 1.0
            h = h.reshape(x.shape[0], -1)
            return F.log_softmax(self.fc(h) / 2.0, axis=1)

    m = Custom().eval()
    path = tmp_path / "c.onnx"
    m.export_onnx(path, (2, 2, 4, 4))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = rng.standard_normal((3, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], m(x).numpy(), rtol=1e-4, atol=1e-5)


def test_convcore_runner_matches(tmp_path):
    runtime = pytest.importorskip("convcore.runtime", reason="convcore.runtime (the ONNX runner) "
                                  "is not in this build yet")
    for name, model, shape in models():
        model = warmed(model, shape)
        path = tmp_path / f"{name}.onnx"
        model.export_onnx(path, input_shape=shape)
        sess = runtime.InferenceSession(str(path))
        x = rng.standard_normal((3,) + shape[1:]).astype(np.float32)
        got = sess.run(None, {"input": x})[0]
        np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("pool", [
    nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
    nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=True),
    nn.MaxPool2d(2, 1, dilation=2), nn.MaxPool2d(3, 2, 1, ceil_mode=True),
], ids=["avg-ceil-nopad", "avg-ceil-pad", "max-dilated", "max-ceil"])
def test_pooling_attributes_survive_export(tmp_path, pool):
    m = nn.Sequential(pool).eval()
    m.export_onnx(tmp_path / "p.onnx", (1, 2, 7, 7))
    x = rng.standard_normal((2, 2, 7, 7)).astype(np.float32)
    got = ort.InferenceSession(str(tmp_path / "p.onnx"),
                               providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, m(x).numpy(), rtol=1e-6, atol=1e-6)


def test_linear_over_last_axis_and_softmax_export(tmp_path):
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.proj = nn.Linear(5, 2)

        def forward(self, x):
            h = self.conv(x).reshape(x.shape[0], 4, 5)   # (N, 4, 5): linear on the last axis
            return F.softmax(self.proj(h).mean(axis=1) + (h ** 2).sum(axis=2, keepdims=True).mean(), axis=1)

    m = Tokens().eval()
    m.export_onnx(tmp_path / "t.onnx", (2, 3, 5, 1))
    x = rng.standard_normal((4, 3, 5, 1)).astype(np.float32)
    got = ort.InferenceSession(str(tmp_path / "t.onnx"),
                               providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, m(x).numpy(), rtol=1e-5, atol=1e-6)
