"""Bad input raises a clear ValueError/TypeError naming the op; never a crash."""
import numpy as np
import pytest

import convcore as cc

f32 = np.float32


def x4(*s):
    return np.ones(s, f32)


CONV_CASES = [
    # (kwargs-producing lambda, exception, message fragment)
    (lambda: cc.conv2d(x4(1, 3, 8, 8).astype(np.float64), x4(4, 3, 3, 3)), TypeError, "float32, got float64"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3).astype(np.int32)), TypeError, "weight must have dtype"),
    (lambda: cc.conv2d([[1.0]], x4(4, 3, 3, 3)), TypeError, "numpy float32 array"),
    (lambda: cc.conv2d(x4(3, 8, 8), x4(4, 3, 3, 3)), ValueError, "input must be 4-D"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3)), ValueError, "weight must be 4-D"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 2, 3, 3)), ValueError, "input has 3"),
    (lambda: cc.conv2d(x4(1, 4, 8, 8), x4(4, 2, 3, 3), groups=3), ValueError, "divisible by groups"),
    (lambda: cc.conv2d(x4(1, 4, 8, 8), x4(3, 2, 3, 3), groups=2), ValueError, "output channels 3"),
    (lambda: cc.conv2d(x4(1, 4, 8, 8), x4(4, 4, 3, 3), groups=0), ValueError, "groups must be"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), stride=0), ValueError, "stride must be positive"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), stride=(1, -2)), ValueError, "stride"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), dilation=0), ValueError, "dilation"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 0, 3)), ValueError, "positive sizes"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), padding=-1), ValueError, "non-negative"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), padding=(0, 0, -1, 0)), ValueError, "non-negative"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), padding="full"), ValueError, "padding must be"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), padding=(1, 2, 3)), ValueError, "padding"),
    (lambda: cc.conv2d(x4(1, 3, 2, 8), x4(4, 3, 3, 3)), ValueError, "larger than the padded input"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), dilation=4), ValueError, "larger than the padded input"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), x4(5)), ValueError, "bias must have 4"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), x4(4, 1)), ValueError, "bias must be 1-D"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), stride=1.5), TypeError, "stride must be an int"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), padding=10**5), ValueError, "memory"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), padding=10**9), ValueError, "too large"),
    (lambda: cc.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), stride=2**70), (ValueError, TypeError), "conv2d"),
    (lambda: cc.conv2d_backward(x4(1, 4, 5, 6), x4(1, 3, 8, 8), x4(4, 3, 3, 3)), ValueError, "grad_out must have shape"),
    (lambda: cc.conv2d_backward(x4(1, 4, 6), x4(1, 3, 8, 8), x4(4, 3, 3, 3)), ValueError, "grad_out must be 4-D"),
    (lambda: cc.conv2d_backward(x4(1, 4, 6, 6).astype(np.float16), x4(1, 3, 8, 8), x4(4, 3, 3, 3)), TypeError, "grad_out"),
]


@pytest.mark.parametrize("call,exc,msg", CONV_CASES)
def test_conv_bad_input(call, exc, msg):
    with pytest.raises(exc) as info:
        call()
    text = str(info.value)
    assert "conv2d" in text and msg in text, text


POOL_CASES = [
    (lambda: cc.max_pool2d(x4(1, 2, 8, 8), 0), ValueError, "kernel_size must be positive"),
    (lambda: cc.max_pool2d(x4(1, 2, 8, 8), 2, stride=0), ValueError, "stride must be positive"),
    (lambda: cc.max_pool2d(x4(1, 2, 8, 8), 2, padding=2), ValueError, "at most half"),
    (lambda: cc.max_pool2d(x4(1, 2, 8, 8), 2, padding=-1), ValueError, "non-negative"),
    (lambda: cc.max_pool2d(x4(2, 8, 8), 2), ValueError, "4-D"),
    (lambda: cc.max_pool2d(x4(1, 2, 8, 8).astype(np.float64), 2), TypeError, "float64"),
    (lambda: cc.max_pool2d(x4(1, 2, 1, 8), 3), ValueError, "larger than the padded input"),
    (lambda: cc.max_pool2d(x4(1, 2, 8, 8), 3, dilation=0), ValueError, "dilation"),
    (lambda: cc.avg_pool2d(x4(1, 2, 8, 8), (2, 0)), ValueError, "kernel_size"),
    (lambda: cc.avg_pool2d_backward(x4(1, 2, 3, 3), x4(1, 2, 8, 8), 2), ValueError, "grad_out must have shape"),
    (lambda: cc.max_pool2d_backward(x4(1, 2, 4, 3), x4(1, 2, 8, 8), 2), ValueError, "grad_out must have shape"),
    (lambda: cc.global_avg_pool2d(x4(2, 8)), ValueError, "4-D"),
    (lambda: cc.global_max_pool2d(np.ones((1, 2, 3, 3), np.int64)), TypeError, "int64"),
    (lambda: cc.relu(np.ones(3, np.float64)), TypeError, "float64"),
    (lambda: cc.relu_backward(x4(3), x4(4)), ValueError, "shape"),
]


@pytest.mark.parametrize("call,exc,msg", POOL_CASES)
def test_pool_relu_bad_input(call, exc, msg):
    with pytest.raises(exc) as info:
        call()
    text = str(info.value)
    assert msg in text, text
    assert any(op in text for op in ("pool", "relu")), text


def test_thread_setting_errors():
    with pytest.raises(ValueError, match="set_num_threads"):
        cc.set_num_threads(0)
    with pytest.raises(TypeError, match="set_num_threads"):
        cc.set_num_threads("2")


def test_empty_plane_and_batch():
    assert cc.max_pool2d(np.zeros((0, 2, 4, 4), f32), 2).shape == (0, 2, 2, 2)
    assert cc.avg_pool2d(np.zeros((0, 2, 4, 4), f32), 2).shape == (0, 2, 2, 2)
    assert cc.relu(np.zeros((0, 3), f32)).shape == (0, 3)
    with pytest.raises(ValueError, match="conv2d"):
        cc.conv2d(np.zeros((1, 0, 4, 4), f32), np.zeros((2, 0, 3, 3), f32))
