#!/usr/bin/env python3
"""Train a small CNN on scikit-learn's handwritten digits with convcore.nn.

The digits (1797 8x8 greyscale images, 0..16 intensity) ship inside
scikit-learn, so nothing is downloaded. The script trains with SGD + momentum
and a cosine learning-rate schedule, prints a progress bar with loss and
accuracy, then writes the files that `convcore run` uses as its built-in
example:

  python/convcore/data/digits_cnn.onnx     the model (dynamic batch)
  python/convcore/data/digits_samples.npz  held-back test digits:
      images  float32 (N, 1, 8, 8), already normalised: (pixel / 16 - mean) / std
      labels  int64 (N,)
      raw     uint8 (N, 8, 8), the original 0..16 pixels
      mean, std, pixel_max, normalization (a sentence saying the above)

Run:  PYTHONPATH=python python3 examples/train_digits.py   (10-30 s on 2 shared cores)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import convcore
from convcore import nn, optim
from convcore.nn import functional as F
from convcore.nn.data import DataLoader

DATA_DIR = Path(__file__).resolve().parent.parent / "python" / "convcore" / "data"


def build_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2),                                    # 8x8 -> 4x4
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),                                    # 4x4 -> 2x2
        nn.Flatten(), nn.Dropout(0.2), nn.Linear(64 * 2 * 2, 10))


def load_data(seed: int, n_samples: int):
    from sklearn.datasets import load_digits

    digits = load_digits()
    raw = digits.images.astype(np.float32)                 # (1797, 8, 8), 0..16
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(raw))
    n_test = len(raw) // 5
    test, train = order[:n_test], order[n_test:]
    # Normalise with the training set's statistics only.
    scaled = raw / 16.0
    mean, std = float(scaled[train].mean()), float(scaled[train].std())
    x = ((scaled - mean) / std)[:, None].astype(np.float32)
    # Sample digits for `convcore run`: from the test split (never seen in training),
    # taken round-robin over the classes so that every digit shows up.
    by_class = [list(test[labels[test] == c]) for c in range(10)]
    samples = [by_class[i % 10][i // 10] for i in range(n_samples)]
    return (x[train], labels[train]), (x[test], labels[test]), \
        (x[samples], labels[samples], digits.images[samples].astype(np.uint8)), (mean, std)


def progress(epoch, epochs, step, steps, loss, acc, width=24):
    done = int(width * step / steps)
    bar = "#" * done + "." * (width - done)
    return f"\repoch {epoch:2d}/{epochs} [{bar}] {step:3d}/{steps} loss {loss:.4f} acc {acc:6.2%}"


def evaluate(model, x, y) -> float:
    model.eval()
    with nn.no_grad():
        pred = model(x).numpy().argmax(axis=1)
    model.train()
    return float((pred == y).mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--samples", type=int, default=16, help="held-back digits to save")
    ap.add_argument("--out-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--no-export", action="store_true")
    args = ap.parse_args(argv)
    if args.threads:
        convcore.set_num_threads(args.threads)

    nn.manual_seed(args.seed)
    (xtr, ytr), (xte, yte), (xs, ys, raw_s), (mean, std) = load_data(args.seed, args.samples)
    print(f"digits: {len(xtr)} train, {len(xte)} test images of 8x8; "
          f"convcore {convcore.__version__} on {convcore.cpu_info()['isa']}, "
          f"{convcore.get_num_threads()} threads")

    model = build_model()
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched = optim.CosineAnnealingLR(opt, T_max=args.epochs)
    loader = DataLoader(xtr, ytr, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    tty = sys.stdout.isatty()
    t0 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        total, correct, seen = 0.0, 0, 0
        for step, (xb, yb) in enumerate(loader, 1):
            opt.zero_grad()
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
            correct += int((logits.numpy().argmax(1) == yb).sum())
            seen += len(yb)
            if tty:
                print(progress(epoch, args.epochs, step, len(loader), total / seen, correct / seen),
                      end="", flush=True)
        if not tty:
            print(progress(epoch, args.epochs, len(loader), len(loader), total / seen,
                           correct / seen)[1:], end="")
        sched.step()
        print(f"  test acc {evaluate(model, xte, yte):6.2%}  lr {opt.param_groups[0]['lr']:.4f}")
    elapsed = time.perf_counter() - t0
    test_acc = evaluate(model, xte, yte)
    print(f"final test accuracy {test_acc:.2%} on {len(xte)} held-out digits "
          f"({elapsed:.1f} s training)")

    if not args.no_export:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        onnx_path = args.out_dir / "digits_cnn.onnx"
        model.export_onnx(onnx_path, input_shape=(1, 1, 8, 8), dynamic_batch=True)
        note = (f"images are 8x8 greyscale digits: pixel values 0..16 divided by 16, then "
                f"(x - {mean:.6f}) / {std:.6f}; shape (N, 1, 8, 8) float32")
        np.savez(args.out_dir / "digits_samples.npz", images=xs, labels=ys, raw=raw_s,
                 mean=np.float32(mean), std=np.float32(std), pixel_max=np.float32(16.0),
                 normalization=np.array(note))
        model.eval()
        with nn.no_grad():
            sample_acc = float((model(xs).numpy().argmax(1) == ys).mean())
        print(f"wrote {onnx_path} and digits_samples.npz ({len(ys)} held-back digits, "
              f"{sample_acc:.0%} correct)")
    return 0 if test_acc >= 0.97 else 1


if __name__ == "__main__":
    sys.exit(main())
