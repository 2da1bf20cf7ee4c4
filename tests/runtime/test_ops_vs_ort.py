"""Single-operator graphs across attribute and opset variants, against onnxruntime.
(ONNX's own node tests run in tests/test_onnx_backend.py; these add random
shapes and the ORT-vs-spec corners: ceil_mode, asymmetric/auto pads.)"""
import itertools

import numpy as np
import pytest
from onnx import helper

from .helpers import assert_matches_ort, make_model, rand

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("auto_pad,stride,dil,group,hw", [
    ("NOTSET", 1, 1, 1, (9, 11)), ("SAME_UPPER", 2, 1, 1, (9, 10)), ("SAME_LOWER", 2, 1, 1, (9, 10)),
    ("VALID", 2, 1, 1, (10, 9)), ("SAME_UPPER", 1, 1, 2, (8, 8)), ("NOTSET", 3, 2, 4, (13, 12)),
])
def test_conv_variants(auto_pad, stride, dil, group, hw):
    C, K = 4, 8
    w = rand(K, C // group, 3, 3, seed=1)
    attrs = dict(strides=[stride, stride], dilations=[dil, dil], group=group, auto_pad=auto_pad)
    if auto_pad == "NOTSET":
        attrs["pads"] = [0, 1, 2, 1]   # asymmetric
    m = make_model([helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)],
                   [("x", [2, C, *hw])], [("y", None)], {"w": w, "b": rand(K, seed=2)}, opset=11)
    assert_matches_ort(m, {"x": rand(2, C, *hw)})


def test_conv1d_and_depthwise():
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[2, 1], strides=[2])],
                   [("x", [1, 3, 17])], [("y", None)], {"w": rand(5, 3, 4)})
    assert_matches_ort(m, {"x": rand(1, 3, 17)})
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], group=6)],
                   [("x", [1, 6, 7, 7])], [("y", None)], {"w": rand(6, 1, 3, 3)})
    assert_matches_ort(m, {"x": rand(1, 6, 7, 7)})


@pytest.mark.parametrize("kw", [
    dict(strides=[2, 2]), dict(strides=[2, 2], output_padding=[1, 1]),
    dict(strides=[2, 2], pads=[1, 1, 1, 1]), dict(strides=[3, 2], pads=[0, 1, 2, 0], dilations=[2, 1]),
    dict(strides=[2, 2], output_shape=[15, 16]), dict(strides=[2, 2], auto_pad="SAME_UPPER"),
    dict(strides=[1, 1], group=2), dict(strides=[2, 2], group=2, pads=[1, 0, 1, 0], output_padding=[1, 0]),
])
def test_conv_transpose_variants(kw):
    g = kw.get("group", 1)
    m = make_model([helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **kw)],
                   [("x", [2, 4, 7, 8])], [("y", None)],
                   {"w": rand(4, 6 // g * 1 if g == 1 else 3, 3, 3, seed=4), "b": rand(6 if g == 1 else 6, seed=5)})
    assert_matches_ort(m, {"x": rand(2, 4, 7, 8)})


@pytest.mark.parametrize("op,k,s,pads,ceil,cip", [
    (op, k, s, p, c, cip)
    for op in ("MaxPool", "AveragePool")
    for (k, s, p) in [(3, 2, [0, 0, 0, 0]), (3, 2, [1, 1, 1, 1]), (2, 2, [0, 1, 1, 0]), (3, 3, [1, 0, 2, 1])]
    for c in (0, 1) for cip in ((0, 1) if op == "AveragePool" else (0,))
])
def test_pool_ceil_and_pads(op, k, s, pads, ceil, cip):
    attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=pads, ceil_mode=ceil)
    if op == "AveragePool":
        attrs["count_include_pad"] = cip
    m = make_model([helper.make_node(op, ["x"], ["y"], **attrs)], [("x", [1, 3, 10, 11])],
                   [("y", None)], opset=11)
    assert_matches_ort(m, {"x": rand(1, 3, 10, 11)})


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_pool_auto_pad(auto_pad):
    for op in ("MaxPool", "AveragePool"):
        m = make_model([helper.make_node(op, ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                         auto_pad=auto_pad)], [("x", [1, 2, 9, 8])], [("y", None)])
        assert_matches_ort(m, {"x": rand(1, 2, 9, 8)})


def test_maxpool_indices_and_old_opsets():
    m = make_model([helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2], strides=[2, 2])],
                   [("x", [2, 3, 6, 6])], [("y", None), ("i", None, 7)], opset=12)
    assert_matches_ort(m, {"x": rand(2, 3, 6, 6)})
    for opset in (7, 8, 10):
        m = make_model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
                       [("x", [1, 2, 5, 5])], [("y", None)], opset=opset)
        assert_matches_ort(m, {"x": rand(1, 2, 5, 5)})


@pytest.mark.parametrize("opset,mode,ctm,size", list(itertools.product(
    [11, 13, 18], ["nearest", "linear"],
    ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"], [(13, 7), (4, 3)])))
def test_resize(opset, mode, ctm, size):
    x = rand(1, 2, 6, 5)
    sizes = np.array([1, 2, *size], np.int64)
    inputs = ["x", "", "", "sizes"] if opset >= 13 else ["x", "roi", "scales", "sizes"]
    inits = {"sizes": sizes}
    if opset < 13:
        inits.update(roi=np.zeros(0, np.float32), scales=np.zeros(0, np.float32))
    m = make_model([helper.make_node("Resize", inputs, ["y"], mode=mode,
                                     coordinate_transformation_mode=ctm)],
                   [("x", [1, 2, 6, 5])], [("y", None)], inits, opset=opset)
    assert_matches_ort(m, {"x": x})


@pytest.mark.parametrize("opset", [7, 9])
def test_upsample(opset):
    x = rand(1, 2, 4, 5)
    for mode in ("nearest", "linear"):
        if opset == 7:
            node = helper.make_node("Upsample", ["x"], ["y"], mode=mode, scales=[1.0, 1.0, 2.0, 3.0])
            m = make_model([node], [("x", [1, 2, 4, 5])], [("y", None)], opset=7)
        else:
            node = helper.make_node("Upsample", ["x", "s"], ["y"], mode=mode)
            m = make_model([node], [("x", [1, 2, 4, 5])], [("y", None)],
                           {"s": np.array([1, 1, 2, 3], np.float32)}, opset=9)
        assert_matches_ort(m, {"x": x})


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("opset", [2, 11, 18])
def test_pad(mode, opset):
    pads = [0, 0, 1, 2, 0, 0, 2, 1]
    if opset < 11:
        node = helper.make_node("Pad", ["x"], ["y"], mode=mode, pads=pads, value=0.5)
        inits = {}
    else:
        node = helper.make_node("Pad", ["x", "p", "v"], ["y"], mode=mode)
        inits = {"p": np.array(pads, np.int64), "v": np.array(0.5, np.float32)}
    m = make_model([node], [("x", [1, 2, 4, 5])], [("y", None)], inits, opset=opset)
    assert_matches_ort(m, {"x": rand(1, 2, 4, 5)})


@pytest.mark.parametrize("opset", [7, 12, 13])
def test_softmax_axis_semantics_across_opsets(opset):
    for axis in (1, 2, -1):
        m = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=axis),
                        helper.make_node("LogSoftmax", ["x"], ["z"], axis=axis)],
                       [("x", [2, 3, 4])], [("y", None), ("z", None)], opset=opset)
        assert_matches_ort(m, {"x": rand(2, 3, 4)})


def test_clip_opset6_attrs_and_opset12_inputs():
    m = make_model([helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.7)],
                   [("x", [3, 4])], [("y", None)], opset=6)
    assert_matches_ort(m, {"x": rand(3, 4)})
    m = make_model([helper.make_node("Clip", ["x", "", "hi"], ["y"])],
                   [("x", [3, 4])], [("y", None)], {"hi": np.array(0.3, np.float32)}, opset=12)
    assert_matches_ort(m, {"x": rand(3, 4)})


def test_slice_split_squeeze_across_opsets():
    x = rand(4, 6, 5)
    m = make_model([helper.make_node("Slice", ["x"], ["y"], starts=[1, -1], ends=[3, -100], axes=[0, 2])],
                   [("x", [4, 6, 5])], [("y", None)], opset=9)
    assert_matches_ort(m, {"x": x})
    m = make_model([helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])],
                   [("x", [4, 6, 5])], [("y", None)],
                   {"s": np.array([-1, 5], np.int64), "e": np.array([-9999, 0], np.int64),
                    "a": np.array([2, 1], np.int64), "st": np.array([-2, -2], np.int64)}, opset=13)
    assert_matches_ort(m, {"x": x})
    for opset, node, inits in [
        (11, helper.make_node("Split", ["x"], ["a", "b"], axis=1, split=[2, 4]), {}),
        (13, helper.make_node("Split", ["x", "s"], ["a", "b"], axis=1), {"s": np.array([2, 4], np.int64)}),
        (18, helper.make_node("Split", ["x"], ["a", "b"], axis=1, num_outputs=2), {}),
    ]:
        m = make_model([node], [("x", [4, 6, 5])], [("a", None), ("b", None)], inits, opset=opset)
        assert_matches_ort(m, {"x": x})


def test_gemm_matmul_flatten_reshape_chain():
    m = make_model([
        helper.make_node("Flatten", ["x"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "w", "c"], ["g"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Reshape", ["g", "shape"], ["r"]),
        helper.make_node("MatMul", ["r", "m"], ["y"]),
    ], [("x", [2, 3, 2, 2])], [("y", None)],
        {"w": rand(8, 12), "c": rand(8), "shape": np.array([0, 2, -1], np.int64), "m": rand(4, 3)})
    assert_matches_ort(m, {"x": rand(2, 3, 2, 2)})


@pytest.mark.parametrize("ceil,cip,pads", [(0, 0, [1, 1, 1, 1]), (1, 1, [0, 1, 1, 0]), (1, 0, [1, 0, 2, 1])])
def test_dilated_average_pool_and_uint8_max_pool(ceil, cip, pads):
    m = make_model([helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 2], strides=[2, 1],
                                     dilations=[2, 2], pads=pads, ceil_mode=ceil, count_include_pad=cip)],
                   [("x", [1, 2, 11, 9])], [("y", None)], opset=19)
    assert_matches_ort(m, {"x": rand(1, 2, 11, 9)})
    m = make_model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                     pads=pads, ceil_mode=ceil)],
                   [("x", [1, 2, 11, 9], 2)], [("y", None, 2)], opset=12)
    x = np.random.RandomState(0).randint(0, 255, (1, 2, 11, 9)).astype(np.uint8)
    assert_matches_ort(m, {"x": x})
