"""Reference CNN architectures, written here in torch (no torchvision), small
widths for fast tests; ``size="bench"`` gives the realistic 224x224 variants.

Each builder returns (module, input_shape). Weights are random; BatchNorm
statistics are randomised too so that folding is exercised for real.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


def cbr(cin, cout, k=3, s=1, p=None, groups=1, act=nn.ReLU):
    p = k // 2 if p is None else p
    layers = [nn.Conv2d(cin, cout, k, s, p, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


# ---- AlexNet (with the original LRN) ------------------------------------------------
class _LRNFn(torch.autograd.Function):
    """torch exports nn.LocalResponseNorm as Pad+AvgPool3d+If; real AlexNet files
    (Caffe/ONNX zoo) carry an ONNX LRN node, so export one directly."""

    @staticmethod
    def forward(ctx, x, size):
        return F.local_response_norm(x, size)

    @staticmethod
    def symbolic(g, x, size):
        return g.op("LRN", x, size_i=size, alpha_f=1e-4, beta_f=0.75, bias_f=1.0)


class LRN(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, x):
        return _LRNFn.apply(x, self.size)


class AlexNet(nn.Module):
    def __init__(self, w=8, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 11, 4, 2), nn.ReLU(inplace=True), LRN(5),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(w, 2 * w, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(2 * w, 3 * w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(3 * w, 2 * w, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(2 * w * 2 * 2, 32), nn.ReLU(),
                                        nn.Linear(32, classes))

    def forward(self, x):
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))


# ---- VGG -----------------------------------------------------------------------------
class VGG(nn.Module):
    def __init__(self, cfg=(8, "M", 16, "M", 32, 32, "M"), bn=True, classes=10, hw=4):
        super().__init__()
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1)] + ([nn.BatchNorm2d(v)] if bn else []) + [nn.ReLU(True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(c, 64), nn.ReLU(True), nn.Dropout(), nn.Linear(64, classes))

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


# ---- GoogLeNet / Inception ------------------------------------------------------------
class Inception(nn.Module):
    def __init__(self, cin, c1, c3r, c3, c5r, c5, pp):
        super().__init__()
        self.b1 = cbr(cin, c1, 1)
        self.b2 = nn.Sequential(cbr(cin, c3r, 1), cbr(c3r, c3, 3))
        self.b3 = nn.Sequential(cbr(cin, c5r, 1), cbr(c5r, c5, 5))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), cbr(cin, pp, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class GoogLeNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(cbr(3, 16, 7, 2, 3), nn.MaxPool2d(3, 2, ceil_mode=True),
                                  cbr(16, 24, 3), nn.MaxPool2d(3, 2, ceil_mode=True))
        self.a = Inception(24, 8, 8, 12, 4, 6, 6)
        self.b = Inception(32, 12, 8, 16, 4, 8, 8)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.fc = nn.Linear(44, classes)

    def forward(self, x):
        x = self.pool(self.b(self.a(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ---- ResNet ---------------------------------------------------------------------------
class Basic(nn.Module):
    expansion = 1

    def __init__(self, cin, c, s):
        super().__init__()
        self.c1 = cbr(cin, c, 3, s)
        self.c2 = cbr(c, c, 3, 1, act=None)
        self.down = cbr(cin, c, 1, s, 0, act=None) if s != 1 or cin != c else None

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        return F.relu(self.c2(self.c1(x)) + idt)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, c, s):
        super().__init__()
        self.c1 = cbr(cin, c, 1, 1, 0)
        self.c2 = cbr(c, c, 3, s)
        self.c3 = cbr(c, c * 4, 1, 1, 0, act=None)
        self.down = cbr(cin, c * 4, 1, s, 0, act=None) if s != 1 or cin != c * 4 else None

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        return F.relu(self.c3(self.c2(self.c1(x))) + idt)


class ResNet(nn.Module):
    def __init__(self, block=Basic, layers=(1, 1, 1, 1), width=8, classes=10):
        super().__init__()
        self.stem = nn.Sequential(cbr(3, width, 7, 2, 3), nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], width
        for i, n in enumerate(layers):
            c = width * 2 ** i
            for j in range(n):
                blocks.append(block(cin, c, 2 if (j == 0 and i > 0) else 1))
                cin = c * block.expansion
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ---- SqueezeNet -----------------------------------------------------------------------
class Fire(nn.Module):
    def __init__(self, cin, s, e):
        super().__init__()
        self.sq = nn.Conv2d(cin, s, 1)
        self.e1 = nn.Conv2d(s, e, 1)
        self.e3 = nn.Conv2d(s, e, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.sq(x))
        return torch.cat([F.relu(self.e1(x)), F.relu(self.e3(x))], 1)


class SqueezeNet(nn.Module):
    def __init__(self, classes=10, w=1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16 * w, 3, 2), nn.ReLU(True), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(16 * w, 4 * w, 8 * w), Fire(16 * w, 4 * w, 8 * w), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(16 * w, 8 * w, 16 * w), Fire(32 * w, 8 * w, 16 * w))
        self.classifier = nn.Sequential(nn.Dropout(), nn.Conv2d(32 * w, classes, 1), nn.ReLU(True),
                                        nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


# ---- DenseNet -------------------------------------------------------------------------
class DenseLayer(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.n1, self.c1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, 2 * growth, 1, bias=False)
        self.n2, self.c2 = nn.BatchNorm2d(2 * growth), nn.Conv2d(2 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        y = self.c1(F.relu(self.n1(x)))
        return torch.cat([x, self.c2(F.relu(self.n2(y)))], 1)


class DenseNet(nn.Module):
    def __init__(self, growth=6, blocks=(2, 2), classes=10):
        super().__init__()
        c = 12
        layers = [nn.Conv2d(3, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(True), nn.MaxPool2d(3, 2, 1)]
        for i, n in enumerate(blocks):
            for _ in range(n):
                layers.append(DenseLayer(c, growth))
                c += growth
            if i != len(blocks) - 1:
                layers += [nn.BatchNorm2d(c), nn.ReLU(True), nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2, 2)]
                c //= 2
        layers += [nn.BatchNorm2d(c), nn.ReLU(True)]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


# ---- ShuffleNet v2 --------------------------------------------------------------------
def channel_shuffle(x, groups):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin, cout, s):
        super().__init__()
        self.s = s
        bc = cout // 2
        if s > 1:
            self.b1 = nn.Sequential(cbr(cin, cin, 3, s, groups=cin, act=None), cbr(cin, bc, 1, 1, 0))
        self.b2 = nn.Sequential(cbr(cin if s > 1 else bc, bc, 1, 1, 0), cbr(bc, bc, 3, s, groups=bc, act=None),
                                cbr(bc, bc, 1, 1, 0))

    def forward(self, x):
        if self.s == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat((a, self.b2(b)), 1)
        else:
            out = torch.cat((self.b1(x), self.b2(x)), 1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(cbr(3, 12, 3, 2), nn.MaxPool2d(3, 2, 1))
        self.stages = nn.Sequential(ShuffleUnit(12, 24, 2), ShuffleUnit(24, 24, 1),
                                    ShuffleUnit(24, 48, 2), ShuffleUnit(48, 48, 1))
        self.fc = nn.Linear(48, classes)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.fc(x.mean([2, 3]))


# ---- MobileNet v1 / v2 / v3 -------------------------------------------------------------
class MobileNetV1(nn.Module):
    def __init__(self, classes=10, w=8):
        super().__init__()
        cfg = [(w, 2 * w, 1), (2 * w, 4 * w, 2), (4 * w, 4 * w, 1), (4 * w, 8 * w, 2)]
        layers = [cbr(3, w, 3, 2)]
        for cin, cout, s in cfg:
            layers += [cbr(cin, cin, 3, s, groups=cin), cbr(cin, cout, 1, 1, 0)]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(8 * w, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, s, t, act=nn.ReLU6, se=False, k=3):
        super().__init__()
        hid = cin * t
        self.use_res = s == 1 and cin == cout
        layers = [cbr(cin, hid, 1, 1, 0, act=act)] if t != 1 else []
        layers.append(cbr(hid, hid, k, s, groups=hid, act=act))
        if se:
            layers.append(SqueezeExcite(hid))
        layers.append(cbr(hid, cout, 1, 1, 0, act=None))
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class SqueezeExcite(nn.Module):
    def __init__(self, c, r=4, gate=nn.Hardsigmoid):
        super().__init__()
        self.f1 = nn.Conv2d(c, max(8, c // r), 1)
        self.f2 = nn.Conv2d(max(8, c // r), c, 1)
        self.gate = gate()

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.f2(F.relu(self.f1(s))))


class MobileNetV2(nn.Module):
    def __init__(self, classes=10, w=8, cfg=None):
        super().__init__()
        cfg = cfg or [(1, w, 1, 1), (6, int(1.5 * w), 2, 2), (6, 2 * w, 2, 2), (6, 4 * w, 1, 2)]
        layers, c = [cbr(3, 2 * w, 3, 2, act=nn.ReLU6)], 2 * w
        for t, co, n, s in cfg:
            for i in range(n):
                layers.append(InvertedResidual(c, co, s if i == 0 else 1, t))
                c = co
        layers.append(cbr(c, 8 * w, 1, 1, 0, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Dropout(0.2), nn.Linear(8 * w, classes))

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class MobileNetV3(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        H = nn.Hardswish
        self.features = nn.Sequential(
            cbr(3, 16, 3, 2, act=H),
            InvertedResidual(16, 16, 2, 1, act=nn.ReLU, se=True),
            InvertedResidual(16, 24, 2, 4, act=nn.ReLU),
            InvertedResidual(24, 24, 1, 3, act=nn.ReLU),
            InvertedResidual(24, 40, 2, 3, act=H, se=True, k=5),
            InvertedResidual(40, 40, 1, 3, act=H, se=True, k=5),
            cbr(40, 96, 1, 1, 0, act=H))
        self.head = nn.Sequential(nn.Linear(96, 128), H(), nn.Dropout(0.2), nn.Linear(128, classes))

    def forward(self, x):
        return self.head(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite: MBConv blocks with ReLU6, no SE (the TFLite-friendly variant)."""

    def __init__(self, classes=10, w=8, cfg=None):
        super().__init__()
        cfg = cfg or [(1, 3, w, 1, 1), (6, 3, int(1.5 * w), 2, 2), (6, 5, 2 * w, 2, 2),
                      (6, 3, 4 * w, 2, 1), (6, 5, 6 * w, 1, 1)]
        layers, c = [cbr(3, 2 * w, 3, 2, act=nn.ReLU6)], 2 * w
        for t, k, co, n, s in cfg:
            for i in range(n):
                layers.append(InvertedResidual(c, co, s if i == 0 else 1, t, k=k))
                c = co
        layers.append(cbr(c, 16 * w, 1, 1, 0, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(16 * w, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


# ---- YOLO-like backbone + neck ----------------------------------------------------------
class C3(nn.Module):
    def __init__(self, cin, cout, n=1):
        super().__init__()
        h = cout // 2
        self.a, self.b = cbr(cin, h, 1, act=nn.SiLU), cbr(cin, h, 1, act=nn.SiLU)
        self.m = nn.Sequential(*[nn.Sequential(cbr(h, h, 1, act=nn.SiLU), cbr(h, h, 3, act=nn.SiLU))
                                 for _ in range(n)])
        self.out = cbr(2 * h, cout, 1, act=nn.SiLU)

    def forward(self, x):
        a = self.a(x)
        a = a + self.m(a)
        return self.out(torch.cat([a, self.b(x)], 1))


class SPPF(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.cv1, self.cv2 = cbr(c, c // 2, 1, act=nn.SiLU), cbr(c * 2, c, 1, act=nn.SiLU)
        self.m = nn.MaxPool2d(5, 1, 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat([x, y1, y2, self.m(y2)], 1))


class YoloLike(nn.Module):
    def __init__(self, w=8, classes=3):
        super().__init__()
        self.s1 = nn.Sequential(cbr(3, w, 6, 2, 2, act=nn.SiLU), cbr(w, 2 * w, 3, 2, act=nn.SiLU), C3(2 * w, 2 * w))
        self.s2 = nn.Sequential(cbr(2 * w, 4 * w, 3, 2, act=nn.SiLU), C3(4 * w, 4 * w))
        self.s3 = nn.Sequential(cbr(4 * w, 8 * w, 3, 2, act=nn.SiLU), C3(8 * w, 8 * w), SPPF(8 * w))
        self.lat = cbr(8 * w, 4 * w, 1, act=nn.SiLU)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse = C3(8 * w, 4 * w)
        self.head_s = nn.Conv2d(4 * w, 3 * (5 + classes), 1)
        self.head_l = nn.Conv2d(4 * w, 3 * (5 + classes), 1)

    def forward(self, x):
        p3 = self.s2(self.s1(x))
        p5 = self.lat(self.s3(p3))
        f = self.fuse(torch.cat([self.up(p5), p3], 1))
        return self.head_s(f).sigmoid(), self.head_l(p5)


# ---- DBNet-like segmenter -----------------------------------------------------------------
class DBNetLike(nn.Module):
    def __init__(self, w=8):
        super().__init__()
        self.c2 = nn.Sequential(cbr(3, w, 3, 2), cbr(w, w, 3, 2))
        self.c3 = cbr(w, 2 * w, 3, 2)
        self.c4 = cbr(2 * w, 4 * w, 3, 2)
        self.in2, self.in3, self.in4 = (nn.Conv2d(c, 2 * w, 1, bias=False) for c in (w, 2 * w, 4 * w))
        self.out = nn.ModuleList(nn.Conv2d(2 * w, w // 2, 3, padding=1, bias=False) for _ in range(3))
        self.head = nn.Sequential(
            cbr(3 * (w // 2), w, 3),
            nn.ConvTranspose2d(w, w, 2, 2), nn.BatchNorm2d(w), nn.ReLU(),
            nn.ConvTranspose2d(w, 1, 2, 2), nn.Sigmoid())

    def forward(self, x):
        c2 = self.c2(x)
        c3 = self.c3(c2)
        c4 = self.c4(c3)
        p4 = self.in4(c4)
        p3 = self.in3(c3) + F.interpolate(p4, scale_factor=2, mode="nearest")
        p2 = self.in2(c2) + F.interpolate(p3, scale_factor=2, mode="nearest")
        o4 = F.interpolate(self.out[2](p4), scale_factor=4, mode="bilinear", align_corners=False)
        o3 = F.interpolate(self.out[1](p3), scale_factor=2, mode="bilinear", align_corners=False)
        fuse = torch.cat([self.out[0](p2), o3, o4], 1)
        return self.head(fuse)


def build(name: str, size: str = "test"):
    """(module in eval mode with random weights, input shape)."""
    torch.manual_seed(0)
    big = size == "bench"
    table = {
        "alexnet": lambda: (AlexNet(w=64 if big else 8), (1, 3, 224 if big else 99, 224 if big else 99)),
        "vgg": lambda: (VGG(cfg=(64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
                            if big else (8, "M", 16, "M", 32, 32, "M")), (1, 3, 224 if big else 32, 224 if big else 32)),
        "googlenet": lambda: (GoogLeNet(), (1, 3, 224 if big else 64, 224 if big else 64)),
        "resnet18": lambda: (ResNet(Basic, (2, 2, 2, 2) if big else (1, 1, 1, 1), 64 if big else 8),
                             (1, 3, 224 if big else 64, 224 if big else 64)),
        "resnet50": lambda: (ResNet(Bottleneck, (3, 4, 6, 3) if big else (1, 1, 1, 1), 64 if big else 4),
                             (1, 3, 224 if big else 64, 224 if big else 64)),
        "squeezenet": lambda: (SqueezeNet(w=4 if big else 1), (1, 3, 224 if big else 64, 224 if big else 64)),
        "densenet": lambda: (DenseNet(growth=32 if big else 6, blocks=(6, 12, 24) if big else (2, 2)),
                             (1, 3, 224 if big else 48, 224 if big else 48)),
        "shufflenet": lambda: (ShuffleNetV2(), (1, 3, 224 if big else 64, 224 if big else 64)),
        "mobilenet_v1": lambda: (MobileNetV1(w=32 if big else 8), (1, 3, 224 if big else 64, 224 if big else 64)),
        "mobilenet_v2": lambda: (MobileNetV2(w=16, cfg=[(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                                                         (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)])
                                 if big else MobileNetV2(), (1, 3, 224 if big else 64, 224 if big else 64)),
        "mobilenet_v3": lambda: (MobileNetV3(), (1, 3, 224 if big else 64, 224 if big else 64)),
        "efficientnet_lite": lambda: (EfficientNetLite(w=16, cfg=[(1, 3, 16, 1, 1), (6, 3, 24, 2, 2), (6, 5, 40, 2, 2),
                                                                  (6, 3, 80, 3, 2), (6, 5, 112, 3, 1), (6, 5, 192, 4, 2),
                                                                  (6, 3, 320, 1, 1)])
                                      if big else EfficientNetLite(), (1, 3, 224 if big else 64, 224 if big else 64)),
        "yolo_like": lambda: (YoloLike(w=32 if big else 8), (1, 3, 320 if big else 64, 320 if big else 64)),
        "dbnet_like": lambda: (DBNetLike(w=32 if big else 8), (1, 3, 320 if big else 64, 320 if big else 64)),
    }
    model, shape = table[name]()
    return _randomize_bn(model), shape


NAMES = ["alexnet", "vgg", "googlenet", "resnet18", "resnet50", "squeezenet", "densenet",
         "shufflenet", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3", "efficientnet_lite",
         "yolo_like", "dbnet_like"]


def export(model, shape, opset: int, dynamic_batch: bool = False) -> bytes:
    import io
    import warnings
    f = io.BytesIO()
    x = torch.randn(*shape)
    n_out = 2 if isinstance(model(x), tuple) else 1
    outs = [f"out{i}" for i in range(n_out)]
    dyn = {"input": {0: "N"}, **{o: {0: "N"} for o in outs}} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x, f, opset_version=opset, input_names=["input"], output_names=outs,
                          dynamic_axes=dyn, dynamo=False)
    return f.getvalue()
