"""Graph shapes that other converters produce (built with onnx.helper):
tf2onnx/Keras (NHWC transposes, explicit Pad before VALID convs, Mul/Add
batch-norm, ReduceMean pooling, MatMul+Add dense) and paddle2onnx (standalone
BatchNormalization, HardSigmoid*x, Shape->Slice->Concat sizes for Resize,
Reshape with 0 dims, exclusive average pooling)."""
import numpy as np
import pytest
from onnx import TensorProto, helper

import convcore

from .helpers import assert_matches_ort, make_model, rand

pytest.importorskip("onnxruntime")

I64 = np.int64


def _const(name, v):
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(
        name + "_t", TensorProto.INT64 if np.asarray(v).dtype.kind == "i" else TensorProto.FLOAT,
        np.asarray(v).shape, np.asarray(v).reshape(-1).tolist()))


@pytest.mark.parametrize("opset", [9, 11, 13])
def test_keras_tf2onnx_style(opset):
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]),
        # Keras "same" padding for a stride-2 conv is exported as Pad + VALID conv.
        helper.make_node("Pad", ["xt"] + (["pads"] if opset >= 11 else []), ["xp"], mode="constant",
                         **({} if opset >= 11 else {"pads": [0, 0, 0, 0, 0, 0, 1, 1]})),
        helper.make_node("Conv", ["xp", "w1", "b1"], ["c1"], strides=[2, 2], auto_pad="VALID"),
        helper.make_node("Mul", ["c1", "bn_s"], ["m1"]), helper.make_node("Add", ["m1", "bn_t"], ["a1"]),
        helper.make_node("Clip", ["a1"] + (["zero", "six"] if opset >= 11 else []), ["r1"],
                         **({} if opset >= 11 else {"min": 0.0, "max": 6.0})),
        helper.make_node("Conv", ["r1", "wd"], ["dw"], group=8, auto_pad="SAME_UPPER"),
        helper.make_node("Relu", ["dw"], ["r2"]),
        helper.make_node("Transpose", ["r2"], ["r2t"], perm=[0, 2, 3, 1]),      # back to NHWC
        helper.make_node("ReduceMean", ["r2t"], ["gap"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["gap", "fc_w"], ["mm"]),
        helper.make_node("Add", ["mm", "fc_b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["prob"], axis=-1 if opset >= 13 else 1),
    ]
    inits = {"w1": rand(8, 3, 3, 3), "b1": rand(8), "bn_s": rand(1, 8, 1, 1) * 0.1 + 1,
             "bn_t": rand(1, 8, 1, 1), "wd": rand(8, 1, 3, 3), "fc_w": rand(8, 5), "fc_b": rand(5)}
    if opset >= 11:
        inits.update(pads=np.array([0, 0, 0, 0, 0, 0, 1, 1], I64), zero=np.array(0, np.float32),
                     six=np.array(6, np.float32))
    m = make_model(nodes, [("x", ["N", 16, 16, 3])], [("prob", None)], inits, opset=opset)
    assert_matches_ort(m, {"x": rand(2, 16, 16, 3)})


@pytest.mark.parametrize("opset", [11, 13, 16])
def test_paddle2onnx_style(opset):
    sq = [helper.make_node("Unsqueeze", ["one"], ["one_u"], axes=[0])] if opset < 13 else \
        [helper.make_node("Unsqueeze", ["one", "ax0"], ["one_u"])]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c1", "g", "be", "mu", "var"], ["bn"], epsilon=1e-5,
                         momentum=0.9),
        helper.make_node("HardSigmoid", ["bn"], ["hs"], alpha=1 / 6, beta=0.5),
        helper.make_node("Mul", ["bn", "hs"], ["act"]),
        helper.make_node("AveragePool", ["act"], ["ap"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], count_include_pad=0, ceil_mode=1),
        # Upsample back to act's size with sizes computed from Shape at run time.
        helper.make_node("Shape", ["act"], ["shp"]),
        helper.make_node("Slice", ["shp", "s2", "s4"], ["hw"]),
        helper.make_node("Slice", ["shp", "s0", "s2"], ["nc"]),
        helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0),
        helper.make_node("Resize", ["ap", "", "", "sizes"] if opset >= 13 else ["ap", "roi", "sc", "sizes"],
                         ["up"], mode="linear", coordinate_transformation_mode="half_pixel"),
        helper.make_node("Add", ["up", "act"], ["sum"]),
        helper.make_node("Reshape", ["sum", "rs"], ["flat"]),                  # [0, -1]
        helper.make_node("Cast", ["flat"], ["flat64"], to=TensorProto.DOUBLE),
        helper.make_node("Cast", ["flat64"], ["flat32"], to=TensorProto.FLOAT),
        helper.make_node("Greater", ["flat32", "zf"], ["pos"]),
        helper.make_node("Where", ["pos", "flat32", "zf"], ["relu"]),
        helper.make_node("ReduceSum", ["relu", "ax1"] if opset >= 13 else ["relu"], ["tot"],
                         keepdims=1, **({} if opset >= 13 else {"axes": [1]})),
        *sq,
        helper.make_node("Div", ["relu", "tot"], ["y"]),
    ]
    r = np.random.RandomState(0)
    inits = {"w1": rand(6, 3, 3, 3), "g": (r.rand(6) + 0.5).astype(np.float32),
             "be": rand(6, seed=1), "mu": rand(6, seed=2), "var": (r.rand(6) + 0.5).astype(np.float32),
             "s0": np.array([0], I64), "s2": np.array([2], I64), "s4": np.array([4], I64),
             "rs": np.array([0, -1], I64), "zf": np.array(0, np.float32), "ax1": np.array([1], I64),
             "one": np.array(1, I64), "ax0": np.array([0], I64)}
    if opset < 13:
        inits.update(roi=np.zeros(0, np.float32), sc=np.zeros(0, np.float32))
    m = make_model(nodes, [("x", ["N", 3, "H", "W"])], [("y", None), ("one_u", None, TensorProto.INT64)],
                   inits, opset=opset)
    sess = convcore.InferenceSession(m)
    for shape in ((1, 3, 20, 24), (2, 3, 17, 9)):
        assert_matches_ort(m, {"x": rand(*shape)})
        sess.run(None, {"x": rand(*shape)})
