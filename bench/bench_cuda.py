"""Per-layer GPU conv2d throughput: convcore's CUDA kernels vs torch (cuDNN).

Compares like with like, on the same device arrays (shared without copies):
  FP32: convcore default path   vs torch with cudnn.allow_tf32 = False
  TF32: convcore algo="tf32"     vs torch with cudnn.allow_tf32 = True
over the conv layer shapes of ResNet-50 and MobileNetV2 (224x224 input) at
batch 1 and 32, printing TFLOP/s and the convcore/cuDNN ratio (target: >= 0.5
on the large layers). Engines are interleaved in rounds; the best round counts.
Then end-to-end ResNet-50 and MobileNetV2 latency (batch 1 and 32) through
InferenceSession(device="cuda") next to torch eager (cuDNN), FP32 and TF32.

Usage: python bench/bench_cuda.py [--batch 1 32] [--net resnet50 mobilenetv2]
       [--rounds 5] [--min-time 0.05] [--no-e2e] [--e2e-time 1.0]
Needs a CUDA build of convcore and a GPU; torch with CUDA for the reference.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import convcore as cc
import convcore.cuda as ccu

# (name, C, H, W, K, k, stride, pad, groups) at batch 1
RESNET50 = [
    ("conv1 7x7/2", 3, 224, 224, 64, 7, 2, 3, 1),
    ("l1 1x1 64>64", 64, 56, 56, 64, 1, 1, 0, 1),
    ("l1 3x3 64", 64, 56, 56, 64, 3, 1, 1, 1),
    ("l1 1x1 64>256", 64, 56, 56, 256, 1, 1, 0, 1),
    ("l1 1x1 256>64", 256, 56, 56, 64, 1, 1, 0, 1),
    ("l2 1x1 256>128", 256, 56, 56, 128, 1, 1, 0, 1),
    ("l2 3x3/2 128", 128, 56, 56, 128, 3, 2, 1, 1),
    ("l2 1x1 128>512", 128, 28, 28, 512, 1, 1, 0, 1),
    ("l2 ds 1x1/2 256>512", 256, 56, 56, 512, 1, 2, 0, 1),
    ("l2 1x1 512>128", 512, 28, 28, 128, 1, 1, 0, 1),
    ("l2 3x3 128", 128, 28, 28, 128, 3, 1, 1, 1),
    ("l3 1x1 512>256", 512, 28, 28, 256, 1, 1, 0, 1),
    ("l3 3x3/2 256", 256, 28, 28, 256, 3, 2, 1, 1),
    ("l3 1x1 256>1024", 256, 14, 14, 1024, 1, 1, 0, 1),
    ("l3 ds 1x1/2 512>1024", 512, 28, 28, 1024, 1, 2, 0, 1),
    ("l3 1x1 1024>256", 1024, 14, 14, 256, 1, 1, 0, 1),
    ("l3 3x3 256", 256, 14, 14, 256, 3, 1, 1, 1),
    ("l4 1x1 1024>512", 1024, 14, 14, 512, 1, 1, 0, 1),
    ("l4 3x3/2 512", 512, 14, 14, 512, 3, 2, 1, 1),
    ("l4 1x1 512>2048", 512, 7, 7, 2048, 1, 1, 0, 1),
    ("l4 ds 1x1/2 1024>2048", 1024, 14, 14, 2048, 1, 2, 0, 1),
    ("l4 1x1 2048>512", 2048, 7, 7, 512, 1, 1, 0, 1),
    ("l4 3x3 512", 512, 7, 7, 512, 3, 1, 1, 1),
]

MOBILENETV2 = [
    ("stem 3x3/2 3>32", 3, 224, 224, 32, 3, 2, 1, 1),
    ("dw 3x3 32", 32, 112, 112, 32, 3, 1, 1, 32),
    ("pw 32>16", 32, 112, 112, 16, 1, 1, 0, 1),
    ("pw 16>96", 16, 112, 112, 96, 1, 1, 0, 1),
    ("dw 3x3/2 96", 96, 112, 112, 96, 3, 2, 1, 96),
    ("pw 96>24", 96, 56, 56, 24, 1, 1, 0, 1),
    ("pw 24>144", 24, 56, 56, 144, 1, 1, 0, 1),
    ("dw 3x3 144", 144, 56, 56, 144, 3, 1, 1, 144),
    ("pw 144>24", 144, 56, 56, 24, 1, 1, 0, 1),
    ("dw 3x3/2 144", 144, 56, 56, 144, 3, 2, 1, 144),
    ("pw 144>32", 144, 28, 28, 32, 1, 1, 0, 1),
    ("pw 32>192", 32, 28, 28, 192, 1, 1, 0, 1),
    ("dw 3x3 192", 192, 28, 28, 192, 3, 1, 1, 192),
    ("pw 192>32", 192, 28, 28, 32, 1, 1, 0, 1),
    ("dw 3x3/2 192", 192, 28, 28, 192, 3, 2, 1, 192),
    ("pw 192>64", 192, 14, 14, 64, 1, 1, 0, 1),
    ("pw 64>384", 64, 14, 14, 384, 1, 1, 0, 1),
    ("dw 3x3 384", 384, 14, 14, 384, 3, 1, 1, 384),
    ("pw 384>64", 384, 14, 14, 64, 1, 1, 0, 1),
    ("pw 384>96", 384, 14, 14, 96, 1, 1, 0, 1),
    ("pw 96>576", 96, 14, 14, 576, 1, 1, 0, 1),
    ("dw 3x3 576", 576, 14, 14, 576, 3, 1, 1, 576),
    ("pw 576>96", 576, 14, 14, 96, 1, 1, 0, 1),
    ("dw 3x3/2 576", 576, 14, 14, 576, 3, 2, 1, 576),
    ("pw 576>160", 576, 7, 7, 160, 1, 1, 0, 1),
    ("pw 160>960", 160, 7, 7, 960, 1, 1, 0, 1),
    ("dw 3x3 960", 960, 7, 7, 960, 3, 1, 1, 960),
    ("pw 960>160", 960, 7, 7, 160, 1, 1, 0, 1),
    ("pw 960>320", 960, 7, 7, 320, 1, 1, 0, 1),
    ("pw 320>1280", 320, 7, 7, 1280, 1, 1, 0, 1),
]

NETS = {"resnet50": RESNET50, "mobilenetv2": MOBILENETV2}


def flops(N, C, H, W, K, k, s, p, g):
    OH = (H + 2 * p - k) // s + 1
    OW = (W + 2 * p - k) // s + 1
    return 2.0 * N * K * OH * OW * (C // g) * k * k


def time_fn(fn, sync, min_time):
    """Seconds per call: enough calls to fill min_time, synchronised at the end."""
    fn()
    sync()
    n, t = 1, 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        sync()
        t = time.perf_counter() - t0
        if t >= min_time:
            return t / n
        n = max(n * 2, int(n * min_time / max(t, 1e-6)) + 1)


def bench_layers(args, torch):
    F = torch.nn.functional if torch else None
    dev_sync = ccu.synchronize
    print(f"\nGPU: {ccu.device_info()['name']}  (convcore per-layer conv2d forward, TFLOP/s)")
    if torch is None:
        print("torch with CUDA not found: convcore numbers only")
    hdr = (f"{'net':<12}{'layer':<24}{'N':>3} {'GFLOP':>7} | {'cc fp32':>8} {'cudnn fp32':>10} "
           f"{'ratio':>6} | {'cc tf32':>8} {'cudnn tf32':>10} {'ratio':>6} | kernel fp32 / tf32")
    print(hdr)
    print("-" * len(hdr))
    summary = []
    for net in args.net:
        for batch in args.batch:
            for (name, C, H, W, K, k, s, p, g) in NETS[net]:
                fl = flops(batch, C, H, W, K, k, s, p, g)
                rng = np.random.default_rng(0)
                x = rng.standard_normal((batch, C, H, W), dtype=np.float32)
                w = rng.standard_normal((K, C // g, k, k), dtype=np.float32) * 0.05
                if torch:
                    tx = torch.from_numpy(x).cuda()
                    tw = torch.from_numpy(w).cuda()
                    dx, dw = ccu.asarray(tx), ccu.asarray(tw)  # same memory
                else:
                    dx, dw = ccu.asarray(x), ccu.asarray(w)
                kw = dict(stride=s, padding=p, groups=g)
                runs = {
                    "cc32": lambda: cc.functional.conv2d_fused(dx, dw, algo="fp32", **kw),
                    "cc_tf": lambda: cc.functional.conv2d_fused(dx, dw, algo="tf32", **kw),
                }
                if torch:
                    def t32():
                        torch.backends.cudnn.allow_tf32 = False
                        return F.conv2d(tx, tw, stride=s, padding=p, groups=g)

                    def ttf():
                        torch.backends.cudnn.allow_tf32 = True
                        return F.conv2d(tx, tw, stride=s, padding=p, groups=g)
                    runs["cudnn32"] = t32
                    runs["cudnn_tf"] = ttf
                best = {key: float("inf") for key in runs}
                for _ in range(args.rounds):
                    for key, fn in runs.items():
                        sync = torch.cuda.synchronize if key.startswith("cudnn") else dev_sync
                        # set the TF32 flag before timing (the setter is not timed work)
                        best[key] = min(best[key], time_fn(fn, sync, args.min_time))
                        time.sleep(0.01)
                tf = {key: fl / v / 1e12 for key, v in best.items()}
                r32 = tf["cc32"] / tf["cudnn32"] if "cudnn32" in tf else float("nan")
                rtf = tf["cc_tf"] / tf["cudnn_tf"] if "cudnn_tf" in tf else float("nan")
                algo = " / ".join(ccu.conv_algorithm(x.shape, w.shape, s, p, 1, g, tf32=t)
                                  .replace("igemm-", "") for t in (False, True))
                print(f"{net:<12}{name:<24}{batch:>3} {fl / 1e9:7.2f} | {tf['cc32']:8.2f} "
                      f"{tf.get('cudnn32', float('nan')):10.2f} {r32:6.2f} | {tf['cc_tf']:8.2f} "
                      f"{tf.get('cudnn_tf', float('nan')):10.2f} {rtf:6.2f} | {algo}")
                summary.append((net, batch, fl, best))
    if torch:
        print("\nWhole-net conv time (sum over layers, ms) and convcore/cuDNN speed ratio:")
        for net in args.net:
            for batch in args.batch:
                rows = [b for (n, bt, _, b) in summary if n == net and bt == batch]
                for a, r, label in (("cc32", "cudnn32", "fp32"), ("cc_tf", "cudnn_tf", "tf32")):
                    ta = sum(b[a] for b in rows) * 1e3
                    tr = sum(b[r] for b in rows) * 1e3
                    print(f"  {net:<12} batch {batch:<3} {label}: convcore {ta:8.3f}  "
                          f"cuDNN {tr:8.3f}  ratio {tr / ta:5.2f}")
    if torch:
        torch.backends.cudnn.allow_tf32 = True  # torch's default


def bench_e2e(args, torch):
    print("\nEnd-to-end through InferenceSession(device='cuda') (torchvision models, 224x224, "
          "random weights; times include the input upload and the output download):")
    try:
        import torchvision
    except ImportError:
        print("  skipped: torchvision not installed (needed to export the ONNX models)")
        return
    import io
    import warnings
    for arch, batches in (("resnet50", (1, 32)), ("mobilenet_v2", (1, 32))):
        model = getattr(torchvision.models, arch)(weights=None).eval()
        buf = io.BytesIO()
        kwargs = dict(input_names=["input"], output_names=["logits"], opset_version=17,
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, torch.zeros(1, 3, 224, 224), buf, dynamo=False, **kwargs)
        onnx_bytes = buf.getvalue()
        try:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                sess = cc.InferenceSession(onnx_bytes, device="cuda")
            host = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
        except Exception as e:
            print(f"  {arch}: InferenceSession(device='cuda') failed: {type(e).__name__}: {e}")
            continue
        print(f"  {arch}: {host[0] if host else 'every node on the GPU'}")
        cpu = cc.InferenceSession(onnx_bytes)
        m = model.cuda()
        for batch in batches:
            x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
            ref = cpu.run(None, {"input": x})[0]
            row = []
            for tf32 in (False, True):
                ccu.set_allow_tf32(tf32)
                out = sess.run(None, {"input": x})[0]
                err = float(np.abs(out - ref).max() / max(1e-6, np.abs(ref).max()))
                t = time_fn(lambda: sess.run(None, {"input": x}), lambda: None, args.e2e_time)
                row.append(f"convcore {'tf32' if tf32 else 'fp32'} {t * 1e3:7.2f} ms "
                           f"(max rel. diff vs CPU {err:.1e})")
            ccu.set_allow_tf32(False)
            tx = torch.from_numpy(x)
            for tf32 in (False, True):
                torch.backends.cudnn.allow_tf32 = tf32
                torch.backends.cuda.matmul.allow_tf32 = tf32
                with torch.no_grad():
                    tt = time_fn(lambda: m(tx.cuda()).cpu(), torch.cuda.synchronize,
                                 args.e2e_time)
                row.append(f"torch eager cudnn {'tf32' if tf32 else 'fp32'} {tt * 1e3:7.2f} ms")
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cuda.matmul.allow_tf32 = False
            print(f"    batch {batch:<3} " + " | ".join(row))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--net", nargs="+", default=list(NETS), choices=list(NETS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.05)
    ap.add_argument("--no-e2e", action="store_true")
    ap.add_argument("--e2e-time", type=float, default=1.0, help="seconds per end-to-end timing")
    args = ap.parse_args()
    if not ccu.is_available():
        print(f"no usable CUDA device: {ccu.unavailable_reason()}")
        return 1
    try:
        import torch
        if not torch.cuda.is_available():
            torch = None
    except ImportError:
        torch = None
    bench_layers(args, torch)
    if not args.no_e2e and torch is not None:
        bench_e2e(args, torch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
