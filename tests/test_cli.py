"""The `convcore` command line (run through main(argv) and one real subprocess)."""
import json
import os
import subprocess
import sys

import numpy as np
from onnx import helper

from convcore import cli
from runtime.helpers import make_model, rand


def _classifier(path, classes=5, opset=13, nhwc=False):
    """Conv -> GAP -> Flatten -> Gemm: an image classifier with logits."""
    nodes = []
    x = "x"
    if nhwc:
        nodes.append(helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]))
        x = "xt"
    nodes += [helper.make_node("Conv", [x, "w"], ["c"], pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["c"], ["r"]),
              helper.make_node("GlobalAveragePool", ["r"], ["g"]),
              helper.make_node("Flatten", ["g"], ["f"]),
              helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1)]
    shape = ["N", 32, 32, 3] if nhwc else ["N", 3, 32, 32]
    m = make_model(nodes, [("x", shape)], [("logits", None)],
                   {"w": rand(6, 3, 3, 3), "fw": rand(classes, 6), "fb": rand(classes)}, opset=opset)
    path.write_bytes(m.SerializeToString())
    return str(path)


def _images(tmp_path, n=3):
    from PIL import Image
    d = tmp_path / "imgs"
    d.mkdir()
    r = np.random.RandomState(0)
    for i in range(n):
        Image.fromarray(r.randint(0, 255, (40 + 7 * i, 50, 3), dtype=np.uint8)).save(d / f"im{i}.png")
    (d / "notes.txt").write_text("not an image")
    return d


def test_run_image_dir_topk_json_and_npz(tmp_path, capsys):
    model = _classifier(tmp_path / "m.onnx")
    d = _images(tmp_path)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class_{i}" for i in range(5)))
    out = tmp_path / "o.npz"
    rc = cli.main(["run", model, "--image", str(d), "--batch-size", "2", "--top-k", "3",
                   "--labels", str(labels), "--json", "--output", str(out)])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    preds = res["predictions"]
    assert [os.path.basename(p["image"]) for p in preds] == ["im0.png", "im1.png", "im2.png"]
    for p in preds:
        probs = [t["prob"] for t in p["top_k"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert all(t["label"] == f"class_{t['index']}" for t in p["top_k"])
    saved = np.load(out)
    assert saved["logits"].shape == (3, 5)
    # The same numbers from the library directly (preprocessing included).
    import convcore
    from convcore.runtime.preprocess import load_image
    x = np.stack([load_image(str(d / f"im{i}.png"), 32) for i in range(3)])
    ref = convcore.InferenceSession(model).run(None, {"x": x})[0]
    np.testing.assert_allclose(saved["logits"], ref, rtol=1e-5, atol=1e-5)
    e = np.exp(ref[0] - ref[0].max())
    assert abs(preds[0]["top_k"][0]["prob"] - (e / e.sum()).max()) < 1e-6


def test_run_nhwc_model_and_text_output(tmp_path, capsys):
    model = _classifier(tmp_path / "m.onnx", nhwc=True)
    d = _images(tmp_path, 1)
    assert cli.main(["run", model, "--image", str(d / "im0.png"), "--channel-order", "bgr"]) == 0
    text = capsys.readouterr().out
    assert "im0.png:" in text and "%" in text


def test_run_npy_input_and_bench(tmp_path, capsys):
    model = _classifier(tmp_path / "m.onnx")
    x = rand(2, 3, 32, 32)
    np.save(tmp_path / "x.npy", x)
    assert cli.main(["run", model, "--input", f"x={tmp_path / 'x.npy'}", "--bench", "3", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["outputs"][0]["shape"] == [2, 5]
    b = res["bench"]
    assert b["runs"] == 3 and b["p50_ms"] > 0 and b["p90_ms"] >= b["p50_ms"] and b["peak_rss_mb"] > 0
    assert cli.main(["run", model, "--report", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)["node_report"]
    conv = next(r for r in rep if r["op_type"] == "Conv")
    assert conv["fused"] == ["Relu"] and conv["kernel"] and conv["ms"] >= 0
    assert cli.main(["bench", model, "--runs", "2", "--batch-size", "3", "--json"]) == 0
    b = json.loads(capsys.readouterr().out)["bench"]
    assert b["runs"] == 2 and b["batch"] == 3


def test_run_errors_are_clear(tmp_path, capsys):
    model = _classifier(tmp_path / "m.onnx")
    assert cli.main(["run", model, "--image", str(tmp_path / "missing.png")]) == 1
    assert "not found" in capsys.readouterr().err
    assert cli.main(["run", model, "--labels", "nope.txt", "--bench", "1"]) == 2
    import convcore.cuda as ccu
    if not ccu.is_available():
        assert cli.main(["run", model, "--device", "cuda", "--bench", "1"]) == 2
        assert "no usable CUDA device" in capsys.readouterr().err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    assert cli.main(["run", str(bad), "--bench", "1"]) == 1
    assert "not a valid ONNX model" in capsys.readouterr().err


def test_info_lists_ops_params_flops_and_unsupported(tmp_path, capsys):
    model = _classifier(tmp_path / "m.onnx")
    assert cli.main(["info", model]) == 0
    text = capsys.readouterr().out
    assert "Conv" in text and "parameters: 197" in text
    # Conv FLOPs at the 32x32 input: 2 * 6*32*32 * 3*3*3
    assert cli.main(["info", model, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    conv = next(n for n in s["nodes"] if n["op_type"] == "Conv")
    assert conv["flops"] == 2 * 6 * 32 * 32 * 27
    m = make_model([helper.make_node("Relu", ["x"], ["a"]), helper.make_node("NonZero", ["a"], ["y"])],
                   [("x", [4])], [("y", None, 7)])
    p = tmp_path / "u.onnx"
    p.write_bytes(m.SerializeToString())
    assert cli.main(["info", str(p)]) == 0
    assert "NonZero" in capsys.readouterr().out.split("unsupported operators:")[1]


def test_info_without_model_lists_the_operator_table(capsys):
    assert cli.main(["info"]) == 0
    text = capsys.readouterr().out
    assert "Conv" in text and "Resize" in text and "Upsample                 7-9" in text


def test_default_run_uses_bundled_files(tmp_path, monkeypatch, capsys):
    """`convcore run` with no model: the bundled classifier and samples."""
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "w"], ["y"])]
    w = np.zeros((64, 10), np.float32)
    for k in range(10):
        w[k, k] = 1.0   # class k = pixel k, so labels are predictable
    m = make_model(nodes, [("x", ["N", 1, 8, 8])], [("y", None)], {"w": w})
    model, samples = tmp_path / "digits_cnn.onnx", tmp_path / "digits_samples.npz"
    model.write_bytes(m.SerializeToString())
    images = np.zeros((6, 1, 8, 8), np.float32)
    labels = np.array([3, 1, 4, 1, 5, 9], np.int64)
    for i, lab in enumerate(labels):
        images[i, 0, lab // 8, lab % 8] = 5.0
    labels_seen = labels.copy()
    labels_seen[2] = 7    # one deliberately wrong "true" label
    np.savez(samples, images=images, labels=labels_seen)
    monkeypatch.setattr(cli, "DEFAULT_MODEL", str(model))
    monkeypatch.setattr(cli, "DEFAULT_SAMPLES", str(samples))
    assert cli.main(["run"]) == 0
    text = capsys.readouterr().out
    assert "predicted 3" in text and "true 7  WRONG" in text and "accuracy: 5/6" in text
    monkeypatch.setattr(cli, "DEFAULT_MODEL", str(tmp_path / "absent.onnx"))
    assert cli.main(["run"]) == 2
    assert "bundled example model is missing" in capsys.readouterr().err


def test_imagenet_labels_shipped():
    labels = cli.load_labels("imagenet")
    assert len(labels) == 1000 and len(set(labels)) >= 990
    assert labels[0] == "tench" and labels[207] == "golden retriever" and labels[999] == "toilet tissue"


def test_console_entry_point_subprocess(tmp_path):
    model = _classifier(tmp_path / "m.onnx")
    import convcore
    # The child must import the same convcore as this process (installed or source tree).
    here = os.path.dirname(os.path.dirname(os.path.abspath(convcore.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "convcore.cli", "info", model], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "total FLOPs" in r.stdout


def test_run_device_cuda_on_a_fake_gpu(tmp_path, capsys, monkeypatch):
    # --device cuda reaches InferenceSession(device="cuda"): with the fake
    # device of tests/fake_cuda.py the conv/relu/pool nodes run through the
    # device ops and the outputs match the CPU run.
    import types
    import warnings

    import convcore.cuda as ccu
    from convcore.runtime import cuda_ops
    from fake_cuda import FakeDA, FakeExt
    model = _classifier(tmp_path / "m.onnx")
    x = rand(2, 3, 32, 32)
    np.save(tmp_path / "x.npy", x)
    assert cli.main(["run", model, "--input", f"x={tmp_path / 'x.npy'}", "--json",
                     "--output", str(tmp_path / "cpu.npz")]) == 0
    cpu = json.loads(capsys.readouterr().out)
    ext = FakeExt()
    monkeypatch.setattr(ccu, "is_available", lambda: True)
    monkeypatch.setattr(cuda_ops, "_ext", ext)
    monkeypatch.setattr(cuda_ops, "cuda", types.SimpleNamespace(
        is_available=lambda: True, unavailable_reason=lambda: "",
        asarray=lambda a: FakeDA(np.asarray(a)), get_allow_tf32=lambda: False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # "no CUDA kernel for Gemm"
        assert cli.main(["run", model, "--input", f"x={tmp_path / 'x.npy'}", "--json",
                         "--device", "cuda", "--output", str(tmp_path / "gpu.npz")]) == 0
    gpu = json.loads(capsys.readouterr().out)
    assert [c[0] for c in ext.calls] == ["conv2d_forward"]
    assert gpu["outputs"] == cpu["outputs"] and cpu["outputs"][0]["shape"] == [2, 5]
    a, b = np.load(tmp_path / "cpu.npz"), np.load(tmp_path / "gpu.npz")
    assert list(a.keys()) == list(b.keys()) == ["logits"]
    np.testing.assert_allclose(b["logits"], a["logits"], rtol=1e-5, atol=1e-5)
