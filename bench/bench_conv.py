"""Conv2d forward benchmark: convcore vs onnxruntime (one-node Conv model,
ORT_ENABLE_ALL) vs torch on the distinct conv layers of ResNet-50,
MobileNetV2 and VGG-16 (224x224 inputs).

    PYTHONPATH=python python3 bench/bench_conv.py                 # full table
    PYTHONPATH=python python3 bench/bench_conv.py --quick         # batch 1, 2 threads, subset
    PYTHONPATH=python python3 bench/bench_conv.py --batch 1 --threads 2 --net resnet50

Engines are timed in alternating rounds (each keeps its best round) with a
short sleep between engines, because onnxruntime's and OpenMP's workers spin
after a call and steal the cores from whoever runs next. GFLOP/s uses
2*N*K*OH*OW*(C/groups)*kh*kw; %peak is against --peak (GFLOP/s per thread,
from bench/peak_fma.cpp) times the thread count.
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

import convcore as cc
from convcore import _core


# (name, C, K, H(=W), k, stride, pad, groups)
def resnet50():
    L = [("r50.conv1", 3, 64, 224, 7, 2, 3, 1)]
    # stage: (input size, in width, mid, out, first stride)
    for s, (hw, cin, mid, out, st) in enumerate(
            [(56, 64, 64, 256, 1), (56, 256, 128, 512, 2), (28, 512, 256, 1024, 2),
             (14, 1024, 512, 2048, 2)], start=1):
        o = hw // st
        L += [(f"r50.s{s}.a.1x1", cin, mid, hw, 1, 1, 0, 1),
              (f"r50.s{s}.a.3x3", mid, mid, hw, 3, st, 1, 1),
              (f"r50.s{s}.c.1x1", mid, out, o, 1, 1, 0, 1),
              (f"r50.s{s}.ds.1x1", cin, out, hw, 1, st, 0, 1)]
        if s > 1 or cin != out:
            L += [(f"r50.s{s}.b.1x1", out, mid, o, 1, 1, 0, 1)]
        if st != 1:
            L += [(f"r50.s{s}.b.3x3", mid, mid, o, 3, 1, 1, 1)]
    return L


def mobilenetv2():
    L = [("mb2.conv1", 3, 32, 224, 3, 2, 1, 1), ("mb2.dw32", 32, 32, 112, 3, 1, 1, 32),
         ("mb2.pw32-16", 32, 16, 112, 1, 1, 0, 1)]
    cin, hw = 16, 112
    for t, c, n, s in [(6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            st = s if i == 0 else 1
            e = cin * t
            L += [(f"mb2.exp{cin}-{e}@{hw}", cin, e, hw, 1, 1, 0, 1),
                  (f"mb2.dw{e}s{st}@{hw}", e, e, hw, 3, st, 1, e)]
            hw //= st
            L += [(f"mb2.proj{e}-{c}@{hw}", e, c, hw, 1, 1, 0, 1)]
            cin = c
    L += [("mb2.last320-1280", 320, 1280, 7, 1, 1, 0, 1)]
    return L


def vgg16():
    L, cin = [], 3
    for hw, c, n in [(224, 64, 2), (112, 128, 2), (56, 256, 3), (28, 512, 3), (14, 512, 3)]:
        for _ in range(n):
            L.append((f"vgg.{cin}-{c}@{hw}", cin, c, hw, 3, 1, 1, 1))
            cin = c
    return L


def distinct(layers):
    seen, out = set(), []
    for l in layers:
        if l[1:] not in seen:
            seen.add(l[1:])
            out.append(l)
    return out


QUICK = {"r50.s1.a.3x3", "r50.s1.c.1x1", "r50.s2.b.3x3", "r50.s3.b.1x1", "r50.s4.b.3x3",
         "r50.conv1", "r50.s2.ds.1x1", "mb2.dw32", "mb2.dw144s1@56", "mb2.dw96s2@112",
         "mb2.exp24-144@56", "mb2.proj960-320@7", "vgg.64-64@224", "vgg.256-256@56",
         "vgg.512-512@14"}


def flops(n, C, K, hw, k, s, p, g):
    o = (hw + 2 * p - k) // s + 1
    return 2.0 * n * K * o * o * (C // g) * k * k


class Engines:
    def __init__(self, layer, n, threads, which):
        name, C, K, hw, k, s, p, g = layer
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((n, C, hw, hw), dtype=np.float32)
        self.w = (rng.standard_normal((K, C // g, k, k), dtype=np.float32)
                  / math.sqrt(C // g * k * k)).astype(np.float32)
        self.b = rng.standard_normal(K, dtype=np.float32)
        self.args = (s, p, g)
        self.run = {}
        if "cc" in which:
            if hasattr(_core, "PackedConv2d"):
                pk = _core.PackedConv2d(self.w, self.b, [s, s], [p, p, p, p], [1, 1], g,
                                        -math.inf, math.inf, "auto")
                self.run["cc"] = lambda: pk.run(self.x)
            else:
                self.run["cc"] = lambda: cc.conv2d(self.x, self.w, self.b, s, p, 1, g)
        if "ccfn" in which:
            self.run["ccfn"] = lambda: cc.conv2d(self.x, self.w, self.b, s, p, 1, g)
        if "ort" in which:
            import onnxruntime as ort
            sess = ort.InferenceSession(self._onnx(K, C // g, k, s, p, g),
                                        self._ort_opts(ort, threads),
                                        providers=["CPUExecutionProvider"])
            feed = {"x": self.x}
            self.run["ort"] = lambda: sess.run(None, feed)
        if "torch" in which:
            import torch
            tx, tw, tb = (torch.from_numpy(a) for a in (self.x, self.w, self.b))

            def trun():
                with torch.no_grad():
                    return torch.nn.functional.conv2d(tx, tw, tb, s, p, 1, g)
            self.run["torch"] = trun
        self.ref = None

    @staticmethod
    def _ort_opts(ort, threads):
        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        o.inter_op_num_threads = 1
        o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return o

    def _onnx(self, K, Cg, k, s, p, g):
        import onnx
        from onnx import TensorProto, helper, numpy_helper
        node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[k, k],
                                strides=[s, s], pads=[p, p, p, p], group=g)
        graph = helper.make_graph(
            [node], "conv",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(self.x.shape))],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            [numpy_helper.from_array(self.w, "w"), numpy_helper.from_array(self.b, "b")])
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        return m.SerializeToString()


def set_threads(t):
    cc.set_num_threads(t)
    try:
        import torch
        torch.set_num_threads(t)
    except ImportError:
        pass


def time_engines(eng, rounds, min_time):
    best = {k: float("inf") for k in eng.run}
    reps = {}
    for k, f in eng.run.items():  # warm up, pick repetitions per round
        f()
        t0 = time.perf_counter()
        f()
        dt = time.perf_counter() - t0
        reps[k] = max(1, int(min_time / max(dt, 1e-6)))
    for _ in range(rounds):
        for k, f in eng.run.items():
            time.sleep(0.005)
            for _ in range(reps[k]):
                t0 = time.perf_counter()
                f()
                best[k] = min(best[k], time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="subset of layers, batch 1, 2 threads")
    ap.add_argument("--net", choices=["resnet50", "mobilenetv2", "vgg16", "all"], default="all")
    ap.add_argument("--batch", type=int, nargs="+", default=None)
    ap.add_argument("--threads", type=int, nargs="+", default=None)
    ap.add_argument("--engines", default="cc,ort,torch")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.03, help="seconds per engine per round")
    ap.add_argument("--peak", type=float, default=None,
                    help="measured FMA peak GFLOP/s per thread (bench/peak_fma.cpp)")
    ap.add_argument("--filter", default=None, help="only layers whose name contains this")
    ap.add_argument("--check", action="store_true", help="compare outputs with torch/ort")
    a = ap.parse_args()
    nets = {"resnet50": resnet50, "mobilenetv2": mobilenetv2, "vgg16": vgg16}
    layers = []
    for n in (nets if a.net == "all" else [a.net]):
        layers += distinct(nets[n]())
    if a.quick:
        layers = [l for l in layers if l[0] in QUICK]
    if a.filter:
        layers = [l for l in layers if a.filter in l[0]]
    batches = a.batch or ([1] if a.quick else [1, 8])
    threads = a.threads or ([2] if a.quick else [1, 2])
    which = a.engines.split(",")
    print(f"convcore isa={cc.cpu_info()['isa']} packed={hasattr(_core, 'PackedConv2d')} "
          f"engines={which} rounds={a.rounds}")
    for t in threads:
        set_threads(t)
        for n in batches:
            print(f"\n## batch {n}, threads {t}  (GFLOP/s; ratio = cc / other"
                  + (f"; %peak of {a.peak * t:.0f})" if a.peak else ")"))
            hdr = f"{'layer':24s} {'MFLOP':>8s} {'algo':>16s}" + "".join(
                f" {e:>7s}" for e in which)
            hdr += "".join(f" {'cc/' + e:>9s}" for e in which if e != "cc" and "cc" in which)
            if a.peak:
                hdr += f" {'cc%pk':>6s}"
            print(hdr)
            ratios = {e: [] for e in which if e != "cc"}
            for layer in layers:
                name, C, K, hw, k, s, p, g = layer
                f = flops(n, C, K, hw, k, s, p, g)
                eng = Engines(layer, n, t, which)
                if a.check:
                    ys = {e: np.asarray(fn()[0] if e == "ort" else fn()) for e, fn in eng.run.items()}
                    ref = ys.get("torch", ys.get("ort"))
                    for e, y in ys.items():
                        err = float(np.abs(np.asarray(y) - np.asarray(ref)).max())
                        if err > 1e-3 * max(1.0, float(np.abs(ref).max())):
                            print(f"  MISMATCH {name} {e}: max err {err}")
                best = time_engines(eng, a.rounds, a.min_time)
                gf = {e: f / best[e] * 1e-9 for e in which}
                algo = cc.functional.conv_algorithm((n, C, hw, hw), (K, C // g, k, k), s, p, 1, g)
                row = f"{name:24s} {f * 1e-6:8.1f} {algo:>16s}" + "".join(
                    f" {gf[e]:7.1f}" for e in which)
                if "cc" in which:
                    for e in which:
                        if e != "cc":
                            r = gf["cc"] / gf[e]
                            ratios[e].append(r)
                            row += f" {r:9.2f}"
                if a.peak:
                    row += f" {100 * gf.get('cc', 0) / (a.peak * t):5.0f}%"
                print(row, flush=True)
                del eng
            for e, rs in ratios.items():
                if rs:
                    gm = math.exp(sum(map(math.log, rs)) / len(rs))
                    worst = min(range(len(rs)), key=lambda i: rs[i])
                    print(f"geomean cc/{e} = {gm:.2f}   worst {layers[worst][0]} {rs[worst]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
