"""Native chains (runtime/native_chain.py): runs of packed convs, pools and
in-place concats executed in one C++ call must give exactly what the same
nodes give one by one through their Python ops, fall back to those ops for
what they do not take, and keep the node-named errors."""
import numpy as np
import pytest
from onnx import helper

import convcore
from convcore import _core
from convcore.runtime import executor, native_chain

from .helpers import assert_matches_ort, make_model, rand


def chains(sess):
    return [s for s in executor._steps(sess.graph, sess.free_after)[1]
            if type(s) is native_chain.ChainStep]


def per_node(sess, feeds, monkeypatch):
    """The same session's result with every node through its Python op."""
    with monkeypatch.context() as m:
        m.setattr(native_chain, "ENABLED", False)
        return sess.run(None, feeds)


def small_net(residual_shape=None):
    """Stem conv + ReLU, ceil-mode max pool, a fire module (in-place concat),
    padded average pool, a conv with a fused residual Add, global pool, FC."""
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("MaxPool", ["r0"], ["p0"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        helper.make_node("Conv", ["p0", "ws", "bs"], ["s"]),
        helper.make_node("Relu", ["s"], ["sr"]),
        helper.make_node("Conv", ["sr", "w1", "b1"], ["e1"]),
        helper.make_node("Conv", ["sr", "w3", "b3"], ["e3"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["e1"], ["e1r"]),
        helper.make_node("Relu", ["e3"], ["e3r"]),
        helper.make_node("Concat", ["e1r", "e3r"], ["cat"], axis=1),
        helper.make_node("AveragePool", ["cat"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         count_include_pad=1),
        helper.make_node("Conv", ["ap", "w4", "b4"], ["c4"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c4", "res" if residual_shape else "ap"], ["sum"]),
        helper.make_node("GlobalAveragePool", ["sum"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1),
    ]
    inits = {"w0": rand(8, 3, 3, 3, seed=1), "b0": rand(8, seed=2),
             "ws": rand(6, 8, 1, 1, seed=3), "bs": rand(6, seed=4),
             "w1": rand(8, 6, 1, 1, seed=5), "b1": rand(8, seed=6),
             "w3": rand(8, 6, 3, 3, seed=7), "b3": rand(8, seed=8),
             "w4": rand(16, 16, 3, 3, seed=9), "b4": rand(16, seed=10),
             "wf": rand(5, 16, seed=11), "bf": rand(5, seed=12)}
    inputs = [("x", ["N", 3, "H", "W"])]
    if residual_shape:
        inputs.append(("res", residual_shape))
    return make_model(nodes, inputs, [("y", None)], inits)


@pytest.mark.parametrize("batch", [1, 3])
def test_chain_matches_per_node_path_and_ort(batch, monkeypatch):
    model = small_net()
    sess = convcore.InferenceSession(model)
    (ch,) = chains(sess)
    kinds = [s[0].op_type for s in ch.sub_steps]
    assert kinds == ["Conv", "MaxPool", "Conv", "Conv", "Conv", "Concat", "AveragePool", "Conv",
                     "GlobalAveragePool", "Flatten", "Gemm"]
    x = rand(batch, 3, 37, 41, seed=20)
    got = sess.run(None, {"x": x})[0]
    ref = per_node(sess, {"x": x}, monkeypatch)[0]
    np.testing.assert_array_equal(got, ref)   # same kernels, same arguments
    assert_matches_ort(model, {"x": x})
    # A new shape through the same chain (plans are per shape in Python only).
    x2 = rand(batch, 3, 20, 23, seed=21)
    np.testing.assert_array_equal(sess.run(None, {"x": x2})[0],
                                  per_node(sess, {"x": x2}, monkeypatch)[0])


def test_batched_concat_parts_written_in_place(monkeypatch):
    # Fire-module planes of 16x18 (>= 196 pixels): at batch 3 its convs
    # write their images straight into the concat's channel ranges; then a
    # smaller shape (10x11 planes) through the same chain copies instead.
    model = small_net()
    sess = convcore.InferenceSession(model)
    for shape in [(3, 3, 64, 72), (2, 3, 37, 41), (3, 3, 64, 72)]:
        x = rand(*shape, seed=shape[2])
        np.testing.assert_array_equal(sess.run(None, {"x": x})[0],
                                      per_node(sess, {"x": x}, monkeypatch)[0])
    assert_matches_ort(model, {"x": rand(3, 3, 64, 72, seed=64)})


def test_broadcasting_residual_falls_back_to_the_ops(monkeypatch):
    # The fused Add's other input is (N, 16, 1, 1): the kernel cannot take it
    # as a residual, so the chain refuses and the nodes run one by one.
    model = small_net(residual_shape=[1, 16, 1, 1])
    sess = convcore.InferenceSession(model)
    assert chains(sess)
    feeds = {"x": rand(1, 3, 30, 30, seed=22), "res": rand(1, 16, 1, 1, seed=23)}
    calls = []
    real = native_chain.ChainStep.run

    def spy(self, env, run_steps):
        calls.append(1)
        return real(self, env, lambda *a: calls.append("fallback") or run_steps(*a))
    monkeypatch.setattr(native_chain.ChainStep, "run", spy)
    got = sess.run(None, feeds)[0]
    assert "fallback" in calls
    ref = assert_matches_ort(model, feeds)
    np.testing.assert_allclose(got, ref[0], rtol=0, atol=1e-4 * max(1.0, np.abs(ref[0]).max()))


def test_errors_name_the_node_as_before(monkeypatch):
    sess = convcore.InferenceSession(small_net())
    assert chains(sess)
    bad = {"x": rand(1, 3, 2, 2, seed=24)}   # too small for the pooling window
    with pytest.raises(ValueError) as chained:
        sess.run(None, bad)
    with monkeypatch.context() as m:
        m.setattr(native_chain, "ENABLED", False)
        with pytest.raises(ValueError) as plain:
            sess.run(None, bad)
    assert str(chained.value) == str(plain.value)
    assert "MaxPool" in str(chained.value)


def test_chain_outputs_are_independent_arrays():
    # The conv output leaves the chain as a graph output and as the next
    # (Python) node's input.
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Neg", ["p"], ["y"])]
    model = make_model(nodes, [("x", [1, 4, 9, 9])], [("c", None), ("y", None)],
                       {"w": rand(6, 4, 3, 3, seed=1), "b": rand(6, seed=2)})
    sess = convcore.InferenceSession(model)
    assert len(chains(sess)) == 1
    x = rand(1, 4, 9, 9, seed=3)
    c1, y1 = sess.run(None, {"x": x})
    keep = c1.copy()
    c1[...] = 0
    c2, y2 = sess.run(None, {"x": x})
    np.testing.assert_array_equal(c2, keep)
    np.testing.assert_array_equal(y1, y2)
    assert_matches_ort(model, {"x": x})


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c_shape", [None, (5,), (1, 5), (3, 5), (3, 1), ()])
def test_chained_gemm_matches_the_op(trans_b, c_shape, monkeypatch):
    # C of shape (3, 1) or () broadcasts in a way the chain does not take:
    # those runs fall back to the op, with the same result.
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "w"] + (["c"] if c_shape is not None else []), ["y"],
                              transB=trans_b)]
    inits = {"w": rand(*((5, 7) if trans_b else (7, 5)), seed=1)}
    if c_shape is not None:
        inits["c"] = rand(int(np.prod(c_shape)), seed=2).reshape(c_shape)
    model = make_model(nodes, [("x", [3, 7, 4, 4])], [("y", None)], inits)
    sess = convcore.InferenceSession(model)
    assert len(chains(sess)) == 1
    x = rand(3, 7, 4, 4, seed=3)
    got = sess.run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, per_node(sess, {"x": x}, monkeypatch)[0])
    assert_matches_ort(model, {"x": x})


def test_int_input_to_a_chained_pool_falls_back():
    # MaxPool of int8 runs through numpy; as a chain's first node the chain
    # refuses the dtype and the op takes it.
    nodes = [helper.make_node("Cast", ["x"], ["xi"], to=3),  # int8
             helper.make_node("MaxPool", ["xi"], ["p"], kernel_shape=[2, 2]),
             helper.make_node("MaxPool", ["p"], ["q"], kernel_shape=[2, 2]),
             helper.make_node("Cast", ["q"], ["y"], to=1)]
    model = make_model(nodes, [("x", [1, 2, 6, 6])], [("y", None)], opset=13)
    sess = convcore.InferenceSession(model)
    assert len(chains(sess)) == 1
    x = (rand(1, 2, 6, 6, seed=4) * 20).round()
    assert_matches_ort(model, {"x": x})


def test_profile_still_times_every_node():
    sess = convcore.InferenceSession(small_net())
    prof = sess.profile({"x": rand(1, 3, 30, 30, seed=5)}, runs=1)
    assert [r["op_type"] for r in prof][:3] == ["Conv", "MaxPool", "Conv"]


def test_native_chain_checks_its_ids():
    ch = _core.NativeChain(2)
    with pytest.raises(ValueError, match="out of range"):
        ch.global_pool(False, 0, 5, [])
    with pytest.raises(ValueError, match="one input per input id"):
        ch.run([], [0], [])
    with pytest.raises(ValueError):
        _core.NativeChain(0)


def test_reference_models_chain_exactly(monkeypatch):
    pytest.importorskip("torch")
    from models.archs import build, export
    for name in ["squeezenet", "googlenet", "densenet", "resnet18", "mobilenet_v2",
                 "efficientnet_lite", "shufflenet"]:
        model, shape = build(name)
        data = export(model, shape, opset=13, dynamic_batch=True)
        sess = convcore.InferenceSession(data)
        assert chains(sess), name
        for batch in (1, 2):
            x = np.random.RandomState(batch).rand(batch, *shape[1:]).astype(np.float32)
            feeds = {sess.get_inputs()[0].name: x}
            got = sess.run(None, feeds)
            ref = per_node(sess, feeds, monkeypatch)
            for g, r in zip(got, ref):
                np.testing.assert_array_equal(g, r, err_msg=f"{name} batch {batch}")
