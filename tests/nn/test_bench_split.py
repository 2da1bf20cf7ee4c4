"""bench/bench_train.py splits a training step into time inside convcore._core
kernels and the rest (the Python layer). The split is only honest if it wraps
every compute entry point nn and optim call: a kernel left out would count as
Python, and a non-kernel wrapped would hide Python time. Checked from source."""
import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def bench_kernels():
    tree = ast.parse((ROOT / "bench" / "bench_train.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "KERNELS"
                                                for t in node.targets):
            return set(ast.literal_eval(node.value))
    raise AssertionError("bench_train.py has no KERNELS tuple")


def test_bench_split_wraps_every_core_call_of_nn_and_optim():
    used = set()
    for sub in ("nn", "optim"):
        for f in (ROOT / "python" / "convcore" / sub).glob("*.py"):
            used |= set(re.findall(r"_core\.([A-Za-z_][A-Za-z_0-9]*)", f.read_text()))
    kernels = bench_kernels()
    assert used <= kernels, f"not wrapped by the bench's split: {sorted(used - kernels)}"
    from convcore import _core
    for name in kernels:  # all real compute functions, none of them informational
        assert callable(getattr(_core, name)), name
        assert not re.search(r"threads|info|built|algo|hold", name), name
