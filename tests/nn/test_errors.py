"""Bad input gets a clear exception naming the module or op."""
import numpy as np
import pytest

from convcore import nn, optim
from convcore.nn import functional as F


def test_conv_wrong_rank_and_channels():
    conv = nn.Conv2d(3, 8, 3)
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*expected a 4-D input"):
        conv(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*expected 3 input channels, got 1"):
        conv(np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv(np.zeros((1, 3, 2, 2), np.float32))


def test_other_modules_wrong_input():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(4.*expected 4 input channels"):
        nn.BatchNorm2d(4)(np.zeros((2, 3, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"MaxPool2d.*4-D input"):
        nn.MaxPool2d(2)(np.zeros((5, 5), np.float32))
    with pytest.raises(ValueError, match=r"Linear\(in_features=10.*10 features"):
        nn.Linear(10, 2)(np.zeros((4, 9), np.float32))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm2d(2)(np.zeros((1, 2, 1, 1), np.float32))


def test_constructor_arguments():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 8, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 8, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="output_size=1"):
        nn.AdaptiveAvgPool2d(2)
    with pytest.raises(ValueError, match="positive int"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="kernel_size must be positive"):
        nn.MaxPool2d(0)


def test_cross_entropy_bad_labels():
    z = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"label 4 is out of range for 4 classes"):
        F.cross_entropy(z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"label -1 is out of range"):
        F.cross_entropy(z, np.array([0, -1, 2]))
    with pytest.raises(ValueError, match=r"target must have shape \(3,\)"):
        F.cross_entropy(z, np.array([0, 1]))
    with pytest.raises(TypeError, match="integer class labels"):
        F.cross_entropy(z, np.array([0.5, 1, 2]))
    with pytest.raises(ValueError, match="2-D logits"):
        F.cross_entropy(np.zeros(4, np.float32), np.array([1]))


def test_kernel_dtype_is_refused_by_name():
    w = nn.Tensor(np.zeros((2, 1, 3, 3)), dtype=np.float64)
    with pytest.raises(TypeError, match="conv2d.*float32"):
        F.conv2d(np.zeros((1, 1, 5, 5), np.float32), w)


def test_mse_shape_mismatch():
    with pytest.raises(ValueError, match="mse_loss: input shape"):
        F.mse_loss(np.zeros((2, 3)), np.zeros((3, 2)))


def test_optimizer_arguments():
    p = nn.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="lr must be >= 0"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="T_max"):
        optim.CosineAnnealingLR(optim.SGD([p], lr=0.1), T_max=0)


def test_export_refuses_untraceable_op(tmp_path):
    class Weird(nn.Module):
        def forward(self, x):
            return F.cross_entropy(x.reshape(1, -1), [0])
    pytest.importorskip("onnx")
    with pytest.raises(ValueError, match="'cross_entropy' op.*no ONNX export"):
        Weird().export_onnx(tmp_path / "w.onnx", (1, 4))
