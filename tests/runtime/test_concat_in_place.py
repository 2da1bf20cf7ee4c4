"""Channel Concats of conv outputs written in place (passes/concat_in_place.py):
same results as onnxruntime at batch 1 (in place) and batch > 1 (copy), and
never for values something else also reads."""
import numpy as np
import pytest
from onnx import helper

import convcore
from convcore.runtime import native_chain
from convcore.runtime.ops import shape as shape_ops

from .helpers import assert_matches_ort, make_model, rand


def fire(extra_output=False, shared=False, relu_after=True):
    """SqueezeNet's fire module: squeeze 1x1, expand 1x1 and 3x3, concatenated."""
    nodes = [helper.make_node("Conv", ["x", "ws", "bs"], ["s"]),
             helper.make_node("Relu", ["s"], ["sr"]),
             helper.make_node("Conv", ["sr", "w1", "b1"], ["e1"]),
             helper.make_node("Conv", ["sr", "w3", "b3"], ["e3"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["e1"], ["e1r"]),
             helper.make_node("Relu", ["e3"], ["e3r"]),
             helper.make_node("Concat", ["e1r", "e3r"], ["cat"], axis=1)]
    outputs = [("y", None)]
    nodes.append(helper.make_node("Relu" if relu_after else "Identity", ["cat"], ["y"]))
    if extra_output:
        outputs.append(("e3r", None))
    if shared:
        nodes.append(helper.make_node("Neg", ["e1r"], ["neg"]))
        outputs.append(("neg", None))
    inits = {"ws": rand(8, 12, 1, 1, seed=1), "bs": rand(8, seed=2),
             "w1": rand(16, 8, 1, 1, seed=3), "b1": rand(16, seed=4),
             "w3": rand(24, 8, 3, 3, seed=5), "b3": rand(24, seed=6)}
    return make_model(nodes, [("x", ["N", 12, 13, 17])], outputs, inits)


def _cat_node(sess):
    return next(n for n in sess.graph.nodes if n.op_type == "Concat")


@pytest.mark.parametrize("batch", [1, 3])
def test_fire_module_matches_ort(batch, monkeypatch):
    model = fire()
    x = rand(batch, 12, 13, 17, seed=7)
    sess = convcore.InferenceSession(model)
    assert _cat_node(sess).op.in_place
    ref = assert_matches_ort(model, {"x": x})
    # The node-by-node path (native chains off; with them the same writes
    # happen in C++, tests/runtime/test_native_chain.py).
    monkeypatch.setattr(native_chain, "ENABLED", False)
    calls = []
    real = np.concatenate
    monkeypatch.setattr(shape_ops.np, "concatenate", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = sess.run(None, {"x": x})
    # batch 1: the convs wrote straight into the output, nothing copied;
    # batch 3: channel ranges are strided, so the Concat copies.
    assert len(calls) == (0 if batch == 1 else 1)
    np.testing.assert_allclose(got[0], ref[0], rtol=0, atol=1e-4 * max(1.0, np.abs(ref[0]).max()))


@pytest.mark.parametrize("kind", ["extra_output", "shared"])
def test_not_in_place_when_a_conv_output_is_read_elsewhere(kind):
    model = fire(**{kind: True})
    sess = convcore.InferenceSession(model)
    assert not _cat_node(sess).op.in_place
    assert_matches_ort(model, {"x": rand(1, 12, 13, 17, seed=8)})


def test_repeated_runs_and_threads_do_not_share_buffers():
    model = fire(relu_after=False)
    sess = convcore.InferenceSession(model)
    xs = [rand(1, 12, 13, 17, seed=s) for s in range(4)]
    first = [sess.run(None, {"x": x})[0] for x in xs]
    again = [sess.run(None, {"x": x})[0] for x in xs]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert len({id(a) for a in first}) == 4 and not np.shares_memory(first[0], first[1])
