"""An ONNX file is untrusted input: every malformed case gets a clear
exception (ValueError/TypeError/FileNotFoundError subclasses), never a crash."""
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import convcore
from convcore.runtime import ModelError, UnsupportedModelError

from .helpers import make_model, rand


def _conv_model(opset=13):
    return make_model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv1"),
                       helper.make_node("Relu", ["c"], ["y"], name="relu1")],
                      [("x", ["N", 3, 8, 8])], [("y", None)], {"w": rand(4, 3, 3, 3)}, opset=opset)


def test_truncated_and_garbage_bytes():
    data = _conv_model().SerializeToString()
    for bad in (data[: len(data) // 2], data[:17], b"\xff" * 64, b"not an onnx model at all"):
        with pytest.raises(ValueError):
            convcore.InferenceSession(bad)
    with pytest.raises(FileNotFoundError):
        convcore.InferenceSession("/nonexistent/model.onnx")
    with pytest.raises(TypeError):
        convcore.InferenceSession(12345)


def test_cycle_is_refused():
    m = make_model([helper.make_node("Relu", ["b"], ["a"], name="r1"),
                    helper.make_node("Relu", ["a"], ["b"], name="r2"),
                    helper.make_node("Add", ["x", "b"], ["y"], name="add")],
                   [("x", [2])], [("y", None)])
    with pytest.raises(ModelError, match="cycle"):
        convcore.InferenceSession(m)


def test_undefined_value_and_missing_output():
    m = make_model([helper.make_node("Relu", ["nope"], ["y"], name="r")], [("x", [2])], [("y", None)])
    with pytest.raises(ModelError, match="nope"):
        convcore.InferenceSession(m)
    m = make_model([helper.make_node("Relu", ["x"], ["y"], name="r")], [("x", [2])], [("z", None)])
    with pytest.raises(ModelError, match="'z'"):
        convcore.InferenceSession(m)


def test_missing_and_mistyped_attributes():
    m = make_model([helper.make_node("MaxPool", ["x"], ["y"], name="pool")],
                   [("x", [1, 1, 4, 4])], [("y", None)])
    with pytest.raises(ModelError, match="pool.*kernel_shape"):
        convcore.InferenceSession(m)
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="c", strides="two")],
                   [("x", [1, 3, 4, 4])], [("y", None)], {"w": rand(2, 3, 1, 1)})
    with pytest.raises(ModelError, match="'c'.*strides"):
        convcore.InferenceSession(m)
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[1, 1])],
                   [("x", [1, 3, 4, 4])], [("y", None)], {"w": rand(2, 3, 1, 1)})
    with pytest.raises(ValueError, match="'c'.*pads"):
        convcore.InferenceSession(m).run(None, {"x": rand(1, 3, 4, 4)})


def test_unsupported_ops_listed_all_at_once():
    m = make_model([helper.make_node("Relu", ["x"], ["a"], name="ok"),
                    helper.make_node("NonMaxSuppression", ["a"], ["b"], name="nms1"),
                    helper.make_node("Einsum", ["b"], ["c"], name="ein", equation="i->i"),
                    helper.make_node("Custom", ["c"], ["y"], name="mine", domain="com.example")],
                   [("x", [2])], [("y", None)])
    with pytest.raises(UnsupportedModelError) as e:
        convcore.InferenceSession(m)
    msg = str(e.value)
    for part in ("NonMaxSuppression (node 'nms1')", "Einsum (node 'ein')", "com.example.Custom (node 'mine')"):
        assert part in msg
    assert "'ok'" not in msg


def test_inconsistent_shapes_name_the_node():
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv_bad")],
                   [("x", [1, 3, 8, 8])], [("y", None)], {"w": rand(4, 5, 3, 3)})
    with pytest.raises(ValueError, match="conv_bad"):
        convcore.InferenceSession(m).run(None, {"x": rand(1, 3, 8, 8)})
    m = make_model([helper.make_node("Add", ["x", "c"], ["y"], name="add_bad")],
                   [("x", [2, 3])], [("y", None)], {"c": rand(4)})
    with pytest.raises(ValueError, match="add_bad"):
        convcore.InferenceSession(m).run(None, {"x": rand(2, 3)})


def test_bad_feeds():
    s = convcore.InferenceSession(_conv_model())
    x = rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="unknown input"):
        s.run(None, {"x": x, "extra": x})
    with pytest.raises(ValueError, match="missing input"):
        s.run(None, {})
    with pytest.raises(TypeError, match="float32"):
        s.run(None, {"x": x.astype(np.float64)})
    with pytest.raises(ValueError, match="rank"):
        s.run(None, {"x": x[0]})
    with pytest.raises(ValueError, match="dim 1"):
        s.run(None, {"x": rand(2, 4, 8, 8)})
    with pytest.raises(ValueError, match="unknown output"):
        s.run(["zzz"], {"x": x})
    with pytest.raises(TypeError):
        s.run(None, [x])
    # Valid after all the bad ones, and the caller's array is untouched.
    before = x.copy()
    s.run(None, {"x": x})
    np.testing.assert_array_equal(x, before)


def test_feed_checks_after_a_run():
    # run() skips its checks for a (shape, dtype) it already accepted for an
    # input: a bad feed after good runs still fails, and other array kinds
    # of an accepted shape still work.
    DTYPE = "InferenceSession.run: input 'x' must have dtype float32"
    s = convcore.InferenceSession(_conv_model())
    x = rand(2, 3, 8, 8)
    ref = s.run(None, {"x": x})[0]
    for _ in range(2):
        np.testing.assert_array_equal(s.run(None, {"x": x})[0], ref)
        with pytest.raises(TypeError, match=DTYPE):
            s.run(None, {"x": x.astype(np.float64)})
        with pytest.raises(TypeError, match=DTYPE):
            s.run(None, {"x": x.astype(">f4")})   # same shape, other byte order
        with pytest.raises(ValueError, match="run: input 'x' must have rank"):
            s.run(None, {"x": x[None]})
        with pytest.raises(ValueError, match="run: input 'x' dim 1 must be"):
            s.run(None, {"x": rand(2, 4, 8, 8)})
        with pytest.raises(ValueError, match="missing input"):
            s.run(None, {})
    t = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # not C-contiguous
    assert not t.flags.c_contiguous
    np.testing.assert_array_equal(s.run(None, {"x": t})[0], ref)
    with pytest.raises(TypeError, match=DTYPE):   # a list becomes float64
        s.run(None, {"x": x.tolist()})


def _external_model(tmp_path, location, offset=0, length=None):
    w = rand(4, 3, 3, 3)
    t = numpy_helper.from_array(w, "w")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)),
                 ("length", str(w.nbytes if length is None else length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"])], [("x", [1, 3, 5, 5])],
                   [("y", None)])
    m.graph.initializer.append(t)
    d = tmp_path / "model"
    d.mkdir(exist_ok=True)
    (d / "weights.bin").write_bytes(w.tobytes())
    (tmp_path / "outside.bin").write_bytes(w.tobytes())
    p = d / "m.onnx"
    p.write_bytes(m.SerializeToString())
    return p, w


def test_external_data_inside_folder_works(tmp_path):
    p, w = _external_model(tmp_path, "weights.bin")
    x = rand(1, 3, 5, 5)
    y = convcore.InferenceSession(str(p)).run(None, {"x": x})[0]
    np.testing.assert_allclose(y, convcore.conv2d(x, w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loc", ["../outside.bin", "/etc/passwd", "sub/../../outside.bin"])
def test_external_data_escaping_the_folder_is_refused(tmp_path, loc):
    p, _ = _external_model(tmp_path, loc)
    with pytest.raises(ModelError, match="leaves the model's folder"):
        convcore.InferenceSession(str(p))


def test_external_data_symlink_escape_and_bad_ranges(tmp_path):
    p, _ = _external_model(tmp_path, "link.bin")
    os.symlink(tmp_path / "outside.bin", p.parent / "link.bin")
    with pytest.raises(ModelError, match="outside"):
        convcore.InferenceSession(str(p))
    p, _ = _external_model(tmp_path, "weights.bin", offset=100)
    with pytest.raises(ModelError, match="does not match"):
        convcore.InferenceSession(str(p))
    p, _ = _external_model(tmp_path, "weights.bin")
    with pytest.raises(ModelError, match="file path"):
        convcore.InferenceSession(p.read_bytes())


def test_absurd_declared_sizes():
    t = TensorProto(name="huge", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20, 1 << 10])
    t.raw_data = b"\0" * 16
    m = make_model([helper.make_node("Identity", ["huge"], ["y"])], [], [("y", None)])
    m.graph.initializer.append(t)
    with pytest.raises(ModelError, match="GiB"):
        convcore.InferenceSession(m)
    t = TensorProto(name="short", data_type=TensorProto.FLOAT, dims=[100])
    t.raw_data = b"\0" * 16
    m = make_model([helper.make_node("Identity", ["short"], ["y"])], [], [("y", None)])
    m.graph.initializer.append(t)
    with pytest.raises(ModelError, match="needs 400"):
        convcore.InferenceSession(m)
    # A runtime shape that would allocate absurd memory (ConstantOfShape/Expand).
    m = make_model([helper.make_node("ConstantOfShape", ["s"], ["y"], name="cos")],
                   [("s", [3], TensorProto.INT64)], [("y", None)])
    with pytest.raises(ValueError, match="cos.*limit"):
        convcore.InferenceSession(m).run(None, {"s": np.array([1 << 20, 1 << 20, 1 << 10], np.int64)})


def test_subgraphs_and_missing_opset_refused():
    m = _conv_model()
    del m.opset_import[:]
    m.opset_import.append(helper.make_opsetid("com.other", 1))
    with pytest.raises(ModelError, match="opset"):
        convcore.InferenceSession(m)
    body = helper.make_graph([], "b", [], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])])
    m = make_model([helper.make_node("If", ["c"], ["y"], then_branch=body, else_branch=body, name="if1")],
                   [("c", [], TensorProto.BOOL)], [("y", None)])
    with pytest.raises(ModelError, match="if1"):
        convcore.InferenceSession(m)


def _mutate(rng, data: bytes) -> bytes:
    b = bytearray(data)
    kind = rng.randint(4)
    if kind == 0:      # flip random bytes
        for _ in range(rng.randint(1, 8)):
            b[rng.randint(len(b))] = rng.randint(256)
    elif kind == 1:    # truncate
        b = b[: rng.randint(1, len(b))]
    elif kind == 2:    # duplicate a random chunk
        i, j = sorted(rng.randint(len(b), size=2))
        b = b[:j] + b[i:j] + b[j:]
    else:              # delete a chunk
        i, j = sorted(rng.randint(len(b), size=2))
        b = b[:i] + b[j:]
    return bytes(b)


def _proto_mutations(rng, m: onnx.ModelProto) -> onnx.ModelProto:
    m = onnx.ModelProto.FromString(m.SerializeToString())
    n = m.graph.node[rng.randint(len(m.graph.node))]
    choice = rng.randint(5)
    if choice == 0 and n.attribute:
        a = n.attribute[rng.randint(len(n.attribute))]
        if a.ints:
            a.ints[rng.randint(len(a.ints))] = int(rng.randint(-3, 40))
        elif a.type == onnx.AttributeProto.INT:
            a.i = int(rng.randint(-3, 40))
    elif choice == 1 and n.input:
        n.input[rng.randint(len(n.input))] = rng.choice(["x", "w", "c", "", "zz"])
    elif choice == 2:
        n.op_type = rng.choice(["Relu", "Conv", "MaxPool", "Add", "Gemm", "Nope"])
    elif choice == 3 and m.graph.initializer:
        t = m.graph.initializer[0]
        t.dims[rng.randint(len(t.dims))] = int(rng.randint(0, 9))
    else:
        m.opset_import[0].version = int(rng.randint(1, 25))
    return m


def test_fuzz_mutated_models_give_result_or_clean_error():
    """Bounded fuzzing: random byte- and proto-level mutations of valid models.
    Each outcome must be a result or a ValueError/TypeError (never a crash)."""
    rng = np.random.RandomState(1234)
    base = make_model([
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        helper.make_node("Add", ["p", "p"], ["a"]),
        helper.make_node("GlobalAveragePool", ["a"], ["g"]),
        helper.make_node("Flatten", ["g"], ["y"]),
    ], [("x", [1, 3, 8, 8])], [("y", None)], {"w": rand(4, 3, 3, 3), "b": rand(4)}, opset=13)
    data = base.SerializeToString()
    x = rand(1, 3, 8, 8)
    outcomes = {"ok": 0, "error": 0}
    for i in range(300):
        cand = _mutate(rng, data) if i % 2 else _proto_mutations(rng, base)
        try:
            s = convcore.InferenceSession(cand)
            feeds = {a.name: x for a in s.get_inputs()}
            s.run(None, feeds)
            outcomes["ok"] += 1
        except (ValueError, TypeError, FileNotFoundError):
            outcomes["error"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0


def test_fuzz_mutated_expand_depthwise_models():
    """The same bounded fuzzing over a 1x1 -> depthwise model (the pair the
    runner fuses into one kernel): mutated groups, strides, pads, weight
    shapes and wiring give a result or a clean error, and every result
    matches onnxruntime where onnxruntime accepts the model."""
    import onnxruntime as ort
    rng = np.random.RandomState(4321)
    base = make_model([
        helper.make_node("Conv", ["x", "w1", "b1"], ["e"]),
        helper.make_node("Clip", ["e", "lo", "hi"], ["ea"]),
        helper.make_node("Conv", ["ea", "wd", "bd"], ["d"], group=12, strides=[2, 2],
                         pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["d"], ["y"]),
    ], [("x", [1, 4, 9, 9])], [("y", None)],
        {"w1": rand(12, 4, 1, 1), "b1": rand(12), "wd": rand(12, 1, 3, 3), "bd": rand(12),
         "lo": np.array(0, np.float32), "hi": np.array(6, np.float32)}, opset=13)
    data = base.SerializeToString()
    x = rand(1, 4, 9, 9)
    outcomes = {"ok": 0, "error": 0, "checked": 0}
    for i in range(300):
        if i % 3 == 0:
            cand = _mutate(rng, data)
        else:
            m = onnx.ModelProto.FromString(data)
            n = m.graph.node[rng.choice([0, 2])]
            a = n.attribute[rng.randint(len(n.attribute))] if n.attribute else None
            if i % 3 == 1 and a is not None:
                if a.ints:
                    a.ints[rng.randint(len(a.ints))] = int(rng.randint(-2, 6))
                elif a.type == onnx.AttributeProto.INT:
                    a.i = int(rng.randint(-2, 14))
            else:
                t = m.graph.initializer[rng.randint(len(m.graph.initializer))]
                if t.dims:
                    t.dims[rng.randint(len(t.dims))] = int(rng.randint(0, 14))
            cand = m.SerializeToString()
        try:
            got = convcore.InferenceSession(cand).run(None, {"x": x})
            outcomes["ok"] += 1
        except (ValueError, TypeError, FileNotFoundError):
            outcomes["error"] += 1
            continue
        try:
            want = ort.InferenceSession(cand, providers=["CPUExecutionProvider"]).run(None, {"x": x})
        except Exception:
            continue   # onnxruntime refuses what convcore ran: nothing to compare
        outcomes["checked"] += 1
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(w).max())))
    assert outcomes["ok"] > 0 and outcomes["error"] > 0 and outcomes["checked"] > 0, outcomes
