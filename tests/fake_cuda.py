"""A fake CUDA device for tests that run without a GPU: device arrays are
numpy arrays in a wrapper, the "kernels" are convcore's CPU ones, and the
binding signatures match the real ones (test_cuda checks that on CUDA
builds). Used to exercise the Python routing (functional API, the runner's
device placement) everywhere."""
import numpy as np

from convcore import _core


class FakeDA:
    def __init__(self, a):
        self.a = np.ascontiguousarray(a)

    shape = property(lambda self: self.a.shape)
    dtype = property(lambda self: self.a.dtype)
    ndim = property(lambda self: self.a.ndim)

    def numpy(self):
        return self.a.copy()

    def reshape(self, shape):
        return FakeDA(self.a.reshape(shape))   # shares memory, as the real one


def _un(v):
    return None if v is None else v.a


class FakeExt:
    DeviceArray = FakeDA

    def __init__(self):
        self.calls = []

    def conv2d_forward(self, x, w, b, stride, pad, dil, groups, lo, hi, res, tf32):
        self.calls.append(("conv2d_forward", tf32))
        return FakeDA(_core.conv2d_forward(x.a, w.a, _un(b), stride, pad, dil, groups, lo, hi,
                                            _un(res), "auto"))

    def conv2d_backward(self, gy, x, w, stride, pad, dil, groups, nx, nw, nb):
        out = _core.conv2d_backward(gy.a, x.a, w.a, stride, pad, dil, groups, nx, nw, nb)
        return tuple(None if o is None else FakeDA(o) for o in out)

    def max_pool2d_forward(self, x, k, s, p, d, ceil, ind):
        out = _core.max_pool2d_forward(x.a, k, s, p, d, ceil, ind)
        return (FakeDA(out[0]), FakeDA(out[1])) if ind else FakeDA(out)

    def max_pool2d_backward(self, gy, x, k, s, p, d, ceil):
        return FakeDA(_core.max_pool2d_backward(gy.a, x.a, k, s, p, d, ceil))

    def avg_pool2d_forward(self, x, k, s, p, ceil, cip):
        return FakeDA(_core.avg_pool2d_forward(x.a, k, s, p, ceil, cip))

    def avg_pool2d_backward(self, gy, x, k, s, p, ceil, cip):
        return FakeDA(_core.avg_pool2d_backward(gy.a, x.a, k, s, p, ceil, cip))

    def global_pool2d(self, x, is_max):
        return FakeDA((_core.global_max_pool2d if is_max else _core.global_avg_pool2d)(x.a))

    def global_pool2d_backward(self, gy, x, is_max):
        return FakeDA(_core.global_pool2d_backward(gy.a, x.a, is_max))

    def relu(self, x, inplace):
        if inplace:
            _core.relu(x.a, x.a)
            return x
        return FakeDA(_core.relu(x.a, None))

    def relu_backward(self, gy, x):
        return FakeDA(_core.relu_backward(gy.a, x.a))

    def add(self, a, b, relu):
        y = a.a + b.a
        return FakeDA(np.maximum(y, 0) if relu else y)
