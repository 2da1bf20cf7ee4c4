"""End-to-end: a small CNN learns a synthetic task within a bounded number of steps."""
import numpy as np

from convcore import nn, optim
from convcore.nn import functional as F
from convcore.nn.data import DataLoader


def make_bars(n, rng):
    """8x8 images with one bright horizontal (class 0) or vertical (class 1) bar, or a blob (2)."""
    x = rng.normal(0, 0.3, (n, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, n)
    for i, (c, k) in enumerate(zip(y, rng.integers(1, 7, n))):
        if c == 0:
            x[i, 0, k, :] += 2
        elif c == 1:
            x[i, 0, :, k] += 2
        else:
            x[i, 0, k - 1:k + 2, k - 1:k + 2] += 1.5
    return x, y


def accuracy(model, x, y):
    model.eval()
    with nn.no_grad():
        acc = float((model(x).numpy().argmax(1) == y).mean())
    model.train()
    return acc


def test_cnn_learns_within_bounded_steps():
    rng = np.random.default_rng(0)
    nn.manual_seed(0)
    xtr, ytr = make_bars(512, rng)
    xte, yte = make_bars(256, rng)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3))
    assert accuracy(model, xte, yte) < 0.6
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = optim.CosineAnnealingLR(opt, T_max=6)
    losses = []
    for epoch in range(6):  # 6 epochs x 16 steps
        for xb, yb in DataLoader(xtr, ytr, batch_size=32, shuffle=True, seed=epoch):
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sched.step()
    assert np.mean(losses[-16:]) < 0.3 * np.mean(losses[:16])
    assert accuracy(model, xte, yte) >= 0.95


def test_adam_fits_regression():
    rng = np.random.default_rng(1)
    nn.manual_seed(1)
    x = rng.standard_normal((256, 4)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32) + 0.3).astype(np.float32)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = optim.Adam(model.parameters(), lr=0.02)
    sched = optim.StepLR(opt, step_size=100, gamma=0.3)
    for _ in range(300):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
    assert loss.item() < 0.05
