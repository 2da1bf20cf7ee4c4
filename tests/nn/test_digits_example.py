"""The digits example and the model/sample files it ships for `convcore run`."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "python" / "convcore" / "data"


def test_bundled_model_and_samples_agree():
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(DATA / "digits_cnn.onnx"))
    onnx.checker.check_model(model)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    with np.load(DATA / "digits_samples.npz", allow_pickle=False) as d:
        images, labels = d["images"], d["labels"]
        mean, std, raw = float(d["mean"]), float(d["std"]), d["raw"]
        assert "divided by 16" in str(d["normalization"])
    assert images.dtype == np.float32 and images.shape[1:] == (1, 8, 8)
    assert labels.dtype == np.int64 and len(labels) == len(images) >= 10
    assert set(labels[:10]) == set(range(10))
    # the stored images are exactly the raw pixels, normalised as documented
    np.testing.assert_allclose(images[:, 0], (raw / 16.0 - mean) / std, rtol=1e-5, atol=1e-5)
    sess = ort.InferenceSession(str(DATA / "digits_cnn.onnx"), providers=["CPUExecutionProvider"])
    pred = sess.run(None, {"input": images})[0].argmax(1)
    assert (pred == labels).mean() >= 0.9


def test_example_trains_quickly(tmp_path, capsys):
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("train_digits", ROOT / "examples" / "train_digits.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rc = mod.main(["--epochs", "3", "--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    acc = float(out.split("final test accuracy ")[1].split("%")[0]) / 100
    assert acc >= 0.9, out  # 3 epochs; the full 15-epoch run reaches ~99%
    assert rc in (0, 1)
    assert (tmp_path / "digits_cnn.onnx").exists() and (tmp_path / "digits_samples.npz").exists()
