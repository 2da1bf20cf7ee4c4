"""The `convcore` command line: `convcore run` and `convcore info`.

    convcore run                         # bundled digits classifier on bundled samples
    convcore run model.onnx --image cat.jpg --labels imagenet
    convcore run model.onnx --image photos/ --batch-size 8 --json
    convcore run model.onnx --input input=x.npy --output out.npz
    convcore run model.onnx --bench 50 --batch-size 8
    convcore info model.onnx
    convcore bench model.onnx --runs 50 --batch-size 8
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
DEFAULT_MODEL = os.path.join(DATA_DIR, "digits_cnn.onnx")
DEFAULT_SAMPLES = os.path.join(DATA_DIR, "digits_samples.npz")


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


# ---- helpers --------------------------------------------------------------------
def _floats(text: str, n: int, what: str):
    try:
        v = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise CliError(f"--{what} must be {n} comma-separated numbers, got '{text}'") from None
    if len(v) not in (1, n):
        raise CliError(f"--{what} must have 1 or {n} values, got {len(v)}")
    return v * n if len(v) == 1 else v


def load_labels(spec: str | None):
    if spec is None:
        return None
    path = os.path.join(DATA_DIR, "imagenet_classes.txt") if spec == "imagenet" else spec
    if not os.path.isfile(path):
        raise CliError(f"labels file not found: {path}")
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def softmax_if_logits(scores: np.ndarray) -> tuple[np.ndarray, bool]:
    """Rows that already look like probabilities are kept; logits get a softmax."""
    s = scores.astype(np.float64)
    if s.min() >= 0 and s.max() <= 1 and np.allclose(s.sum(axis=1), 1, atol=1e-3):
        return s, False
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True), True


def topk_rows(probs: np.ndarray, k: int, labels):
    rows = []
    for p in probs:
        idx = np.argsort(-p, kind="stable")[:k]
        rows.append([{"index": int(i), "prob": float(p[i]),
                      "label": labels[i] if labels and i < len(labels) else str(int(i))} for i in idx])
    return rows


class Progress:
    """A one-line progress bar on stderr (no dependency)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.enabled, self.t0 = total, 0, enabled and total > 1, time.perf_counter()

    def update(self, n: int):
        self.done += n
        if not self.enabled:
            return
        width = 30
        fill = int(width * self.done / self.total)
        rate = self.done / max(time.perf_counter() - self.t0, 1e-9)
        sys.stderr.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} "
                         f"({rate:.1f} img/s)")
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def peak_rss_mb() -> float:
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


# ---- run ------------------------------------------------------------------------
def _session(args, model):
    import convcore
    if args.device == "cuda":
        import convcore.cuda
        if not convcore.cuda.is_available():
            raise CliError(f"--device cuda: no usable CUDA device "
                           f"({convcore.cuda.unavailable_reason()})")
    if args.threads is not None:
        if args.threads <= 0:
            raise CliError(f"--threads must be positive, got {args.threads}")
        convcore.set_num_threads(args.threads)
    return convcore.InferenceSession(model, device=args.device, threads=args.threads)


def _image_feeds(args, sess):
    from .runtime.preprocess import list_images, load_image
    inp = sess.get_inputs()[0]
    shape = inp.shape or []
    layout = args.layout
    if layout == "auto":
        layout = "nhwc" if len(shape) == 4 and shape[3] in (1, 3) and shape[1] not in (1, 3) else "nchw"
    chans = shape[1] if layout == "nchw" and len(shape) == 4 else (shape[3] if len(shape) == 4 else 3)
    chans = chans if isinstance(chans, int) and chans > 0 else 3
    hw = shape[2] if layout == "nchw" and len(shape) == 4 else (shape[1] if len(shape) == 4 else None)
    size = args.size or (hw if isinstance(hw, int) and hw > 0 else 224)
    mean = _floats(args.mean, 3, "mean")
    std = _floats(args.std, 3, "std")
    files = list_images(args.image)

    def batches():
        for i in range(0, len(files), args.batch_size):
            chunk = files[i:i + args.batch_size]
            arr = np.stack([load_image(f, size, args.resize, chans, mean, std, args.channel_order,
                                       layout, args.pixel_scale) for f in chunk])
            yield chunk, {inp.name: arr}
    return files, batches


def _npy_feeds(args, sess):
    names = [i.name for i in sess.get_inputs()]
    feeds = {}
    for spec in args.input:
        if "=" in spec:
            name, path = spec.split("=", 1)
        elif len(names) == 1:
            name, path = names[0], spec
        else:
            raise CliError(f"--input {spec}: the model has several inputs {names}; use NAME=FILE.npy")
        if not os.path.isfile(path):
            raise CliError(f"--input {spec}: file not found")
        try:
            feeds[name] = np.load(path, allow_pickle=False)
        except Exception as e:
            raise CliError(f"--input {spec}: cannot load .npy ({e})") from None
    return feeds


def _print_topk(names, rows, out):
    for name, row in zip(names, rows):
        print(f"{name}:", file=out)
        for r in row:
            print(f"  {r['prob']:7.2%}  {r['label']}  (class {r['index']})", file=out)


def _bench(sess, feeds, n: int, warmup: int = 3) -> dict:
    batch = next(iter(feeds.values())).shape[0] if feeds and next(iter(feeds.values())).ndim else 1
    for _ in range(warmup):
        sess.run(None, feeds)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t0)
    t = np.array(times) * 1e3
    return {"runs": n, "batch": int(batch), "p50_ms": float(np.percentile(t, 50)),
            "p90_ms": float(np.percentile(t, 90)), "mean_ms": float(t.mean()),
            "throughput_per_s": float(batch * 1e3 / t.mean()), "peak_rss_mb": peak_rss_mb()}


def _random_feeds(sess, batch):
    feeds = {}
    for a in sess.get_inputs():
        shape = [batch if i == 0 and not isinstance(d, int) else (d if isinstance(d, int) and d > 0 else 224)
                 for i, d in enumerate(a.shape or [])]
        dt = a.dtype or np.float32
        feeds[a.name] = np.random.RandomState(0).randn(*shape).astype(dt) if np.dtype(dt).kind == "f" \
            else np.zeros(shape, dt)
    return feeds


def cmd_run(args) -> int:
    out = sys.stdout
    if args.model is None:
        return run_default(args)
    sess = _session(args, args.model)
    labels = load_labels(args.labels)
    result = {"model": args.model}
    all_outputs = []
    if args.image:
        files, batches = _image_feeds(args, sess)
        prog = Progress(len(files), enabled=not args.json)
        names, rows = [], []
        first_feeds = None
        for chunk, feeds in batches():
            first_feeds = first_feeds or feeds
            outs = sess.run(None, feeds)
            all_outputs.append(outs)
            scores = outs[0].reshape(len(chunk), -1)
            probs, _ = softmax_if_logits(scores)
            names += chunk
            rows += topk_rows(probs, args.top_k, labels)
            prog.update(len(chunk))
        result["predictions"] = [{"image": n, "top_k": r} for n, r in zip(names, rows)]
        if not args.json:
            _print_topk(names, rows, out)
        feeds_for_bench = first_feeds
    else:
        feeds = _npy_feeds(args, sess) if args.input else _random_feeds(sess, args.batch_size)
        if not args.input and not args.bench and not args.report:
            raise CliError("nothing to run: give --image PATH, --input NAME=FILE.npy, --bench N "
                           "or --report")
        feeds_for_bench = feeds
        if args.input:
            outs = sess.run(None, feeds)
            all_outputs.append(outs)
            result["outputs"] = [{"name": o.name, "shape": list(v.shape), "dtype": str(v.dtype)}
                                 for o, v in zip(sess.get_outputs(), outs)]
            o0 = outs[0]
            if o0.ndim == 2 and o0.shape[1] > 1 and o0.dtype.kind == "f":
                probs, _ = softmax_if_logits(o0)
                result["predictions"] = [{"row": i, "top_k": r}
                                         for i, r in enumerate(topk_rows(probs, args.top_k, labels))]
            if not args.json:
                for o in result["outputs"]:
                    print(f"{o['name']}: shape {tuple(o['shape'])} {o['dtype']}", file=out)
                if "predictions" in result:
                    _print_topk([f"row {i}" for i in range(len(result["predictions"]))],
                                [p["top_k"] for p in result["predictions"]], out)
    if args.output:
        if not all_outputs:
            raise CliError("--output needs --image or --input")
        arrays = {o.name: np.concatenate([b[i] for b in all_outputs], axis=0) if all_outputs[0][i].ndim
                  else all_outputs[0][i] for i, o in enumerate(sess.get_outputs())}
        np.savez(args.output, **arrays)
        result["saved"] = args.output
    if args.report:
        prof = {r["name"]: r["ms"] for r in sess.profile(feeds_for_bench, runs=3)}
        rep = sess.node_report(feeds_for_bench)
        for r in rep:
            r["ms"] = prof.get(r["name"])
        result["node_report"] = rep
        if not args.json:
            print("per-node report (optimised graph; kernel = convcore's choice):", file=out)
            for r in rep:
                extra = "+".join(r["fused"]) if r["fused"] else ""
                print(f"  {r['name'][:44]:44s} {r['op_type']:18s} {r.get('kernel', ''):26s} "
                      f"{extra:24s} {r['ms']:8.3f} ms", file=out)
    if args.bench:
        b = _bench(sess, feeds_for_bench, args.bench)
        result["bench"] = b
        if not args.json:
            print(f"bench: {b['runs']} runs, batch {b['batch']}: p50 {b['p50_ms']:.2f} ms, "
                  f"p90 {b['p90_ms']:.2f} ms, {b['throughput_per_s']:.1f} samples/s, "
                  f"peak RSS {b['peak_rss_mb']:.0f} MB", file=out)
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


def run_default(args) -> int:
    """The bundled example: a small digits CNN trained by the repository's
    script, run on held-out samples, predictions next to true labels."""
    if not (os.path.isfile(DEFAULT_MODEL) and os.path.isfile(DEFAULT_SAMPLES)):
        raise CliError(
            "the bundled example model is missing (expected "
            f"{DEFAULT_MODEL} and {DEFAULT_SAMPLES}); "
            "it is produced by the training script shipped with convcore.nn. Pass a model: "
            "convcore run MODEL.onnx --image PATH")
    sess = _session(args, DEFAULT_MODEL)
    with np.load(DEFAULT_SAMPLES, allow_pickle=False) as d:
        images, labels = d["images"].astype(np.float32), d["labels"].astype(np.int64)
    name = sess.get_inputs()[0].name
    preds, probs_all = [], []
    for i in range(0, len(images), args.batch_size):
        scores = sess.run(None, {name: images[i:i + args.batch_size]})[0]
        probs, _ = softmax_if_logits(scores.reshape(scores.shape[0], -1))
        preds += list(np.argmax(probs, axis=1))
        probs_all += list(probs.max(axis=1))
    preds = np.array(preds)
    acc = float((preds == labels).mean()) if len(labels) else 0.0
    if args.json:
        print(json.dumps({"model": DEFAULT_MODEL, "accuracy": acc, "predictions": [
            {"index": i, "predicted": int(p), "true": int(t), "prob": float(q)}
            for i, (p, t, q) in enumerate(zip(preds, labels, probs_all))]}, indent=2))
        return 0
    print(f"convcore {__import__('convcore').__version__}: bundled digits classifier "
          f"({os.path.basename(DEFAULT_MODEL)}) on {len(labels)} held-out samples")
    show = len(labels) if args.top_k is None or len(labels) <= 20 else 20
    for i in range(show):
        mark = "ok" if preds[i] == labels[i] else "WRONG"
        print(f"  sample {i:3d}: predicted {preds[i]} ({probs_all[i]:.1%})  true {labels[i]}  {mark}")
    if show < len(labels):
        print(f"  ... ({len(labels) - show} more)")
    print(f"accuracy: {int((preds == labels).sum())}/{len(labels)} = {acc:.1%}")
    if args.bench:
        b = _bench(sess, {name: images[:args.batch_size]}, args.bench)
        print(f"bench: p50 {b['p50_ms']:.3f} ms, p90 {b['p90_ms']:.3f} ms, "
              f"{b['throughput_per_s']:.0f} samples/s, peak RSS {b['peak_rss_mb']:.0f} MB")
    return 0


# ---- info -----------------------------------------------------------------------
def _fmt_count(n) -> str:
    if n is None:
        return "?"
    for unit, k in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= k:
            return f"{n / k:.2f}{unit}"
    return str(n)


def cmd_info(args) -> int:
    from .runtime.info import summarize
    if args.model is None:   # the operator table itself
        from .runtime import supported_ops
        table = supported_ops()
        if args.json:
            print(json.dumps(table))
            return 0
        print(f"{len(table)} supported ONNX operators (default domain), opset ranges:")
        for op, ranges in table.items():
            spans = ", ".join(f"{a}+" if b is None else f"{a}-{b}" for a, b in ranges)
            print(f"  {op:24s} {spans}")
        return 0
    s = summarize(args.model, batch=args.batch_size, default_hw=args.size or 224)
    if args.json:
        print(json.dumps(s, indent=2, default=str))
        return 0
    print(f"{args.model}: opset {s['opset']}, IR {s['ir_version']}, producer '{s['producer']}'")
    print("inputs:")
    for i in s["inputs"]:
        print(f"  {i['name']}: {i['dtype']} {i['shape']}")
    print("outputs:")
    for o in s["outputs"]:
        print(f"  {o['name']}: {o['dtype']} {o['shape']}")
    print("operators:")
    for op, n in s["op_counts"].items():
        mark = "   UNSUPPORTED" if op in s["unsupported"] else ""
        print(f"  {op:24s} {n:5d}{mark}")
    print(f"parameters: {s['params']:,} ({_fmt_count(s['params'])})")
    print(f"FLOPs per node (input shapes {s['flops_input_shapes']}):")
    for n in s["nodes"]:
        if args.all_nodes or n["op_type"] in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
            mark = "" if n["supported"] else "  UNSUPPORTED"
            print(f"  {n['name'][:48]:48s} {n['op_type']:16s} {str(n['output_shape']):22s} "
                  f"{_fmt_count(n['flops']):>9s}{mark}")
    print(f"total FLOPs: {_fmt_count(s['total_flops'])}")
    if s["unsupported"]:
        print(f"unsupported operators: {', '.join(s['unsupported'])}")
    return 0


# ---- entry ----------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="convcore", description="convcore: compiled CNN runner")
    sub = p.add_subparsers(dest="command")
    r = sub.add_parser("run", help="run an ONNX model (no model: the bundled example)")
    r.add_argument("model", nargs="?", help="MODEL.onnx (omit for the bundled digits classifier)")
    r.add_argument("--image", help="an image file or a directory of images")
    r.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                   help="raw input tensor (repeatable)")
    r.add_argument("--output", metavar="FILE.npz", help="save all outputs")
    r.add_argument("--top-k", type=int, default=5)
    r.add_argument("--labels", help="class names file (one per line) or 'imagenet'")
    r.add_argument("--batch-size", type=int, default=1)
    r.add_argument("--threads", type=int)
    r.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    r.add_argument("--bench", type=int, default=0, metavar="N", help="N timed runs after warm-up")
    r.add_argument("--json", action="store_true", help="machine-readable output")
    r.add_argument("--report", action="store_true",
                   help="per-node report: fusions, chosen conv kernel, time per node")
    r.add_argument("--size", type=int, help="crop size (default: the model's input size, else 224)")
    r.add_argument("--resize", type=int, help="shorter side before the crop (default size*256/224)")
    r.add_argument("--mean", default="0.485,0.456,0.406")
    r.add_argument("--std", default="0.229,0.224,0.225")
    r.add_argument("--pixel-scale", type=float, default=255.0,
                   help="pixels are divided by this before mean/std (1 keeps 0..255)")
    r.add_argument("--channel-order", choices=["rgb", "bgr"], default="rgb")
    r.add_argument("--layout", choices=["auto", "nchw", "nhwc"], default="auto")
    b = sub.add_parser("bench", help="time a model on random inputs (= run MODEL --bench N)")
    b.add_argument("model")
    b.add_argument("--runs", type=int, default=20)
    b.add_argument("--batch-size", type=int, default=1)
    b.add_argument("--threads", type=int)
    b.add_argument("--json", action="store_true")
    i = sub.add_parser("info", help="inputs, outputs, operators, parameters, FLOPs")
    i.add_argument("model", nargs="?", help="MODEL.onnx (omit to list supported operators)")
    i.add_argument("--batch-size", type=int, default=1, help="batch used for FLOPs of dynamic models")
    i.add_argument("--size", type=int, help="size used for symbolic spatial dims (default 224)")
    i.add_argument("--all-nodes", action="store_true", help="list FLOPs of every node")
    i.add_argument("--json", action="store_true")
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.command is None:
        p.print_help()
        return 2
    if getattr(args, "batch_size", 1) <= 0:
        print("convcore: error: --batch-size must be positive", file=sys.stderr)
        return 2
    if args.command == "bench":
        args = p.parse_args(["run", args.model, "--bench", str(args.runs), "--batch-size",
                             str(args.batch_size)] + (["--threads", str(args.threads)] if args.threads else [])
                            + (["--json"] if args.json else []))
    try:
        return cmd_run(args) if args.command == "run" else cmd_info(args)
    except BrokenPipeError:   # `convcore info model.onnx | head`
        sys.stdout = open(os.devnull, "w")
        return 0
    except CliError as e:
        print(f"convcore: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"convcore: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
