"""Graph passes change speed, never results: each fusion is checked to have
happened (node report) and to give onnxruntime's answer."""
import threading

import numpy as np
import pytest
from onnx import helper

import convcore

from gil_probe import turns_while

from .helpers import assert_matches_ort, make_model, rand


def _bn_inits(c, seed=0):
    r = np.random.RandomState(seed)
    return {"g": (r.rand(c) + 0.5).astype(np.float32), "be": r.randn(c).astype(np.float32),
            "mu": r.randn(c).astype(np.float32), "var": (r.rand(c) + 0.5).astype(np.float32)}


def _report(model, feeds):
    return convcore.InferenceSession(model).node_report(feeds)


@pytest.mark.parametrize("opset", [9, 14])
def test_batchnorm_folded_into_conv(opset):
    m = make_model([helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                    helper.make_node("BatchNormalization", ["c", "g", "be", "mu", "var"], ["n"], epsilon=1e-3),
                    helper.make_node("Relu", ["n"], ["y"])],
                   [("x", [1, 3, 6, 6])], [("y", None)],
                   {"w": rand(5, 3, 3, 3), "b": rand(5), **_bn_inits(5)}, opset=opset)
    feeds = {"x": rand(1, 3, 6, 6)}
    rep = _report(m, feeds)
    assert [r["op_type"] for r in rep] == ["Conv"]
    assert rep[0]["fused"] == ["BatchNormalization", "Relu"] and rep[0]["epilogue"] == "relu"
    assert_matches_ort(m, feeds)


def test_standalone_batchnorm_runs_in_place_and_matches():
    m = make_model([helper.make_node("Relu", ["x"], ["r"]),
                    helper.make_node("BatchNormalization", ["r", "g", "be", "mu", "var"], ["y"])],
                   [("x", [2, 4, 3, 3])], [("y", None), ("r", None)], _bn_inits(4))
    assert_matches_ort(m, {"x": rand(2, 4, 3, 3)})
    # r is a graph output, so BN may not overwrite it; without that output it may.
    assert not any(r["inplace"] for r in _report(m, {"x": rand(2, 4, 3, 3)}))
    m2 = make_model(list(m.graph.node), [("x", [2, 4, 3, 3])], [("y", None)], _bn_inits(4))
    rep = _report(m2, {"x": rand(2, 4, 3, 3)})
    assert [r["inplace"] for r in rep] == [False, True]
    assert_matches_ort(m2, {"x": rand(2, 4, 3, 3)})


def test_residual_add_relu_fused():
    m = make_model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                    helper.make_node("Add", ["x", "c"], ["a"]),
                    helper.make_node("Relu", ["a"], ["y"])],
                   [("x", [2, 4, 5, 5])], [("y", None)], {"w": rand(4, 4, 3, 3)})
    feeds = {"x": rand(2, 4, 5, 5)}
    rep = _report(m, feeds)
    assert len(rep) == 1 and rep[0]["fused"] == ["Add", "Relu"]
    assert_matches_ort(m, feeds)


def test_broadcasting_add_after_conv_still_correct():
    m = make_model([helper.make_node("Conv", ["x", "w"], ["c"]),
                    helper.make_node("Add", ["c", "k"], ["y"])],
                   [("x", [1, 2, 4, 4])], [("y", None)], {"w": rand(3, 2, 1, 1), "k": rand(1, 3, 1, 1)})
    assert_matches_ort(m, {"x": rand(1, 2, 4, 4)})


@pytest.mark.parametrize("pattern", ["relu6", "clip_attr", "hardswish", "hardsigmoid_mul", "silu",
                                     "sigmoid", "leakyrelu"])
def test_activation_fusion(pattern):
    opset = 6 if pattern == "clip_attr" else 14
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1])]
    inits = {"w": rand(4, 3, 3, 3), "b": rand(4)}
    if pattern == "relu6":
        nodes.append(helper.make_node("Clip", ["c", "lo", "hi"], ["y"]))
        inits.update(lo=np.array(0, np.float32), hi=np.array(6, np.float32))
    elif pattern == "clip_attr":
        nodes.append(helper.make_node("Clip", ["c"], ["y"], min=-0.5, max=0.5))
    elif pattern == "hardswish":
        nodes.append(helper.make_node("HardSwish", ["c"], ["y"]))
    elif pattern == "hardsigmoid_mul":
        nodes += [helper.make_node("HardSigmoid", ["c"], ["h"], alpha=1 / 6),
                  helper.make_node("Mul", ["c", "h"], ["y"])]
    elif pattern == "silu":
        nodes += [helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node("Mul", ["s", "c"], ["y"])]
    elif pattern == "sigmoid":
        nodes.append(helper.make_node("Sigmoid", ["c"], ["y"]))
    else:
        nodes.append(helper.make_node("LeakyRelu", ["c"], ["y"], alpha=0.1))
    m = make_model(nodes, [("x", [1, 3, 6, 6])], [("y", None)], inits, opset=opset)
    feeds = {"x": rand(1, 3, 6, 6) * 4}
    rep = _report(m, feeds)
    assert len(rep) == 1, rep
    assert_matches_ort(m, feeds)


def test_no_fusion_when_conv_output_is_also_used_or_is_output():
    m = make_model([helper.make_node("Conv", ["x", "w"], ["c"]),
                    helper.make_node("Relu", ["c"], ["r"]),
                    helper.make_node("Add", ["c", "r"], ["y"])],
                   [("x", [1, 2, 4, 4])], [("y", None), ("c", None)], {"w": rand(3, 2, 1, 1)})
    feeds = {"x": rand(1, 2, 4, 4)}
    assert len(_report(m, feeds)) == 3
    assert_matches_ort(m, feeds)


def _expand_dw(dw_kernel=3, dw_stride=2, pw_stride=1, pw_act="clip", dw_post=None, share=False,
               cin=8, e=40, channels=8):
    """1x1 "expand" (+ activation) -> depthwise (+ activation), MobileNet style."""
    k = dw_kernel
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["e"], strides=[pw_stride] * 2)]
    inits = {"w1": rand(e, cin, 1, 1, seed=1) * 0.3, "b1": rand(e, seed=2),
             "wd": rand(e, 1, k, k, seed=3), "bd": rand(e, seed=4),
             "lo": np.array(0, np.float32), "hi": np.array(6, np.float32)}
    if pw_act == "clip":
        nodes.append(helper.make_node("Clip", ["e", "lo", "hi"], ["ea"]))
    else:
        nodes.append(helper.make_node("HardSwish", ["e"], ["ea"]))
    nodes.append(helper.make_node("Conv", ["ea", "wd", "bd"], ["d"], group=e,
                                  strides=[dw_stride] * 2, pads=[k // 2] * 4))
    if dw_post == "hardswish":
        nodes.append(helper.make_node("HardSwish", ["d"], ["y"]))
    else:
        nodes.append(helper.make_node("Relu", ["d"], ["y"]))
    outputs = [("y", None)]
    if share:
        nodes.append(helper.make_node("ReduceMean", ["ea"], ["m"], axes=[2, 3]))
        outputs.append(("m", None))
    return make_model(nodes, [("x", ["N", channels, "H", "W"])], outputs, inits, opset=14)


@pytest.mark.parametrize("dw_kernel,dw_stride,dw_post", [(3, 1, None), (3, 2, None), (5, 2, "hardswish"),
                                                        (5, 1, None)])
def test_pointwise_depthwise_fused(dw_kernel, dw_stride, dw_post):
    m = _expand_dw(dw_kernel, dw_stride, dw_post=dw_post)
    for shape in [(1, 8, 15, 13), (2, 8, 7, 9), (1, 8, 1, 1)]:   # new shapes: same session plan
        feeds = {"x": rand(*shape) * 2}
        rep = _report(m, feeds)
        assert len(rep) == 1, rep
        # the 1x1 node and its Clip, then the depthwise conv's own activation
        assert rep[0]["fused"] == ["Conv_0", "Clip", "HardSwish" if dw_post else "Relu"], rep[0]
        want = "pw_dw_fused" if convcore.cpu_info()["isa"] == "avx512" else "gemm1x1+depthwise"
        assert rep[0]["kernel"].startswith(want), rep[0]
        assert_matches_ort(m, feeds)
    assert_matches_ort(m, {"x": rand(2, 8, 12, 12)}, threads=1)


@pytest.mark.parametrize("what", ["shared", "strided_1x1", "hardswish_1x1", "dw_7x7"])
def test_pointwise_depthwise_not_fused(what):
    kw = {"shared": dict(share=True), "strided_1x1": dict(pw_stride=2),
          "hardswish_1x1": dict(pw_act="hardswish"), "dw_7x7": dict(dw_kernel=7)}[what]
    m = _expand_dw(**kw)
    feeds = {"x": rand(1, 8, 10, 10)}
    rep = _report(m, feeds)
    assert not any("pw_dw" in r.get("kernel", "") or "+" in r.get("kernel", "") for r in rep), rep
    assert sum(r["op_type"] == "Conv" for r in rep) == 2
    assert_matches_ort(m, feeds)


def test_pointwise_depthwise_bad_feed_names_the_node():
    m = _expand_dw(channels="C")   # channel count not declared: the fused conv checks it
    sess = convcore.InferenceSession(m)
    with pytest.raises(ValueError, match="Conv_2.*8 channels"):
        sess.run(None, {"x": rand(1, 5, 10, 10)})


def test_constant_folding_and_dead_nodes():
    m = make_model([
        helper.make_node("Shape", ["w"], ["ws"]),                  # foldable chain
        helper.make_node("Gather", ["ws", "zero"], ["k"], axis=0),
        helper.make_node("Unsqueeze", ["k", "ax"], ["k1"]),
        helper.make_node("Concat", ["one", "k1", "m1"], ["shape"], axis=0),
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Reshape", ["c", "shape"], ["y"]),
        helper.make_node("Exp", ["x"], ["dead"]),                  # nothing reads it
    ], [("x", [1, 2, 3, 3])], [("y", None)],
        {"w": rand(4, 2, 1, 1), "zero": np.array(0, np.int64), "ax": np.array([0], np.int64),
         "one": np.array([1], np.int64), "m1": np.array([-1], np.int64)})
    feeds = {"x": rand(1, 2, 3, 3)}
    sess = convcore.InferenceSession(m)
    assert [n.op_type for n in sess.graph.nodes] == ["Conv", "Reshape"]
    assert_matches_ort(m, feeds)


def test_in_place_never_corrupts_shared_values():
    """x feeds two branches; a view of a conv output is used after an in-place op."""
    m = make_model([
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Reshape", ["c", "s"], ["v"]),          # view of c
        helper.make_node("Sigmoid", ["c"], ["sg"]),              # must not overwrite c (v lives on)
        helper.make_node("Exp", ["x"], ["e"]),                   # must not overwrite the feed
        helper.make_node("Reshape", ["sg", "s"], ["sv"]),
        helper.make_node("Add", ["v", "sv"], ["y"]),
        helper.make_node("Neg", ["e"], ["z"]),
    ], [("x", [1, 2, 3, 3])], [("y", None), ("z", None), ("c", None)],
        {"w": rand(2, 2, 1, 1), "s": np.array([1, -1], np.int64)})
    x = rand(1, 2, 3, 3)
    keep = x.copy()
    assert_matches_ort(m, {"x": x})
    np.testing.assert_array_equal(x, keep)


@pytest.mark.parametrize("op", ["Cast", "Resize", "ReduceMean"])
def test_in_place_respects_ops_that_return_their_input(op):
    """Cast to the same type, an identity Resize and a noop reduction hand back
    their input: an in-place op after them must not clobber a live value."""
    node = {"Cast": helper.make_node("Cast", ["c"], ["k"], to=1),
            "Resize": helper.make_node("Resize", ["c", "", "sc"], ["k"], mode="nearest"),
            "ReduceMean": helper.make_node("ReduceMean", ["c"], ["k"], noop_with_empty_axes=1)}[op]
    m = make_model([helper.make_node("Conv", ["x", "w"], ["c"]), node,
                    helper.make_node("Sigmoid", ["k"], ["s"]),
                    helper.make_node("Add", ["s", "c"], ["y"])],
                   [("x", [1, 2, 3, 3])], [("y", None)],
                   {"w": rand(2, 2, 1, 1), "sc": np.array([1, 1, 1, 1], np.float32)}, opset=18)
    assert_matches_ort(m, {"x": rand(1, 2, 3, 3)})


def test_optimisation_levels_agree():
    pytest.importorskip("torch")
    from models.archs import build, export
    model, shape = build("mobilenet_v3")
    data = export(model, shape, 11)
    x = rand(*shape)
    outs = [convcore.InferenceSession(data, optimize_level=lvl).run(None, {"input": x})[0]
            for lvl in (0, 1, 2)]
    np.testing.assert_allclose(outs[0], outs[2], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outs[1], outs[2], rtol=1e-4, atol=1e-5)


def test_run_from_many_threads():
    m = make_model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                    helper.make_node("Sigmoid", ["c"], ["s"]),
                    helper.make_node("Mul", ["s", "c"], ["y"])],
                   [("x", ["N", 3, "H", "W"])], [("y", None)], {"w": rand(8, 3, 3, 3)})
    sess = convcore.InferenceSession(m)
    inputs = [rand(1 + i % 3, 3, 8 + i % 4, 9, seed=i) for i in range(12)]
    expect = [sess.run(None, {"x": x})[0] for x in inputs]
    errors = []

    def worker(k):
        try:
            for _ in range(5):
                for i in range(k, len(inputs), 3):
                    np.testing.assert_array_equal(sess.run(None, {"x": inputs[i]})[0], expect[i])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_plan_cache_is_bounded():
    m = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", ["N"])], [("y", None)])
    sess = convcore.InferenceSession(m)
    for n in range(1, 40):
        sess.run(None, {"x": rand(n)})
    assert len(sess._plans) <= sess.MAX_PLANS


def test_load_time_is_linear_in_graph_size():
    """Fusion passes sweep once (no restart per fusion): 12k nodes load fast."""
    import time
    nodes, prev = [], "x"
    for i in range(4000):
        nodes += [helper.make_node("Conv", [prev, "w"], [f"c{i}"]),
                  helper.make_node("Add", [f"c{i}", prev], [f"a{i}"]),
                  helper.make_node("Relu", [f"a{i}"], [f"r{i}"])]
        prev = f"r{i}"
    # I + w has eigenvalues just below 1: the 4000-layer result stays finite and non-trivial.
    w = np.array([[-1e-3, 5e-4], [5e-4, -1e-3]], np.float32)
    m = make_model(nodes, [("x", [1, 2, 4, 4])], [(prev, None)], {"w": w.reshape(2, 2, 1, 1)})
    t = time.perf_counter()
    sess = convcore.InferenceSession(m)
    assert time.perf_counter() - t < 30   # generous: quadratic passes took minutes
    assert len(sess.graph.nodes) == 4000
    x = np.abs(rand(1, 2, 4, 4))
    y = x.astype(np.float64)
    for _ in range(4000):
        y = np.maximum(np.einsum("kc,nchw->nkhw", w.astype(np.float64), y) + y, 0)
    assert 1e-3 < np.abs(y).max() < 1e3
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], y, rtol=1e-3, atol=1e-5)


def test_run_releases_the_gil():
    """One big (packed) conv: while it runs in a worker thread, this thread
    keeps getting turns — the kernel computes without the GIL."""
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
                   [("x", [4, 64, 56, 56])], [("y", None)], {"w": rand(64, 64, 3, 3)})
    sess = convcore.InferenceSession(m, threads=1)
    x = rand(4, 64, 56, 56)
    sess.run(None, {"x": x})
    turns, y = turns_while(lambda: sess.run(None, {"x": x})[0])
    assert turns > 20, turns
    assert y.shape == (4, 64, 56, 56)


def test_session_threads_do_not_change_the_global_setting():
    before = convcore.get_num_threads()
    m = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [3])], [("y", None)])
    convcore.InferenceSession(m, threads=max(1, before + 1)).run(None, {"x": rand(3)})
    assert convcore.get_num_threads() == before
