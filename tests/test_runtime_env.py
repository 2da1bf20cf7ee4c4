"""Thread control, ISA reporting, GIL release."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import convcore as cc
from gil_probe import turns_while


def test_cpu_info():
    info = cc.cpu_info()
    assert info["isa"] in ("baseline", "avx2", "avx512")
    assert info["threads"] == cc.get_num_threads() >= 1
    assert info["cuda"] in (True, False)


def test_set_num_threads_roundtrip():
    old = cc.get_num_threads()
    try:
        cc.set_num_threads(1)
        assert cc.get_num_threads() == 1 and cc.cpu_info()["threads"] == 1
    finally:
        cc.set_num_threads(old)


def test_omp_num_threads_default():
    code = "import convcore; print(convcore.get_num_threads())"
    env = dict(os.environ, OMP_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3"


@pytest.mark.parametrize("isa", ["baseline", "avx2"])
def test_forced_isa_gives_same_results(isa, tmp_path):
    if isa == "avx2" and not cc.cpu_info()["features"].get("avx2"):
        pytest.skip("this CPU has no AVX2")
    code = (
        "import numpy as np, convcore as cc\n"
        "r=np.random.default_rng(0); x=r.standard_normal((2,5,11,13)).astype(np.float32)\n"
        "w=r.standard_normal((7,5,3,3)).astype(np.float32)\n"
        "print(cc.cpu_info()['isa']); np.save(r'%s', cc.conv2d(x,w,padding=1))\n" % (tmp_path / "y.npy")
    )
    env = dict(os.environ, CONVCORE_ISA=isa)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)
    assert out.stdout.decode().strip() == isa
    y = np.load(tmp_path / "y.npy")
    r = np.random.default_rng(0)
    x = r.standard_normal((2, 5, 11, 13)).astype(np.float32)
    w = r.standard_normal((7, 5, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(y, cc.conv2d(x, w, padding=1), rtol=1e-4, atol=1e-4)


def test_gil_released_during_kernels():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 64, 56, 56)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    old = cc.get_num_threads()
    cc.set_num_threads(1)
    try:
        turns, y = turns_while(lambda: cc.conv2d(x, w, padding=1))
        # The conv takes tens of milliseconds; with the GIL held this thread
        # would get no turns until it finished.
        assert turns > 20, turns
        assert y.shape == (4, 64, 56, 56)
    finally:
        cc.set_num_threads(old)


def test_two_python_threads_convolve_at_once():
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((2, 16, 20, 20)).astype(np.float32) for _ in range(2)]
    w = rng.standard_normal((8, 16, 3, 3)).astype(np.float32)
    expect = [cc.conv2d(x, w, padding=1) for x in xs]
    out = [None, None]

    def run(i):
        for _ in range(20):
            out[i] = cc.conv2d(xs[i], w, padding=1)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for a, b in zip(out, expect):
        np.testing.assert_array_equal(a, b)


def test_thread_local_count_is_private_to_its_thread():
    from convcore import _core
    glob = cc.get_num_threads()
    seen = {}

    def worker():
        _core.set_local_num_threads(1)
        seen["inside"] = cc.get_num_threads()
        seen["y"] = cc.conv2d(np.ones((1, 2, 5, 5), np.float32), np.ones((3, 2, 3, 3), np.float32))
        _core.set_local_num_threads(0)
        seen["after"] = cc.get_num_threads()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["inside"] == 1 and seen["after"] == glob == cc.get_num_threads()
    np.testing.assert_array_equal(seen["y"], np.full((1, 3, 3, 3), 18, np.float32))
    with pytest.raises(ValueError, match="set_local_num_threads"):
        _core.set_local_num_threads(-1)


def test_hold_workers_nests_and_tolerates_extra_release():
    from convcore import _core
    x = np.ones((1, 4, 9, 9), np.float32)
    w = np.ones((8, 4, 3, 3), np.float32)
    _core.hold_workers(True)
    _core.hold_workers(True)
    y1 = cc.conv2d(x, w, padding=1)
    _core.hold_workers(False)
    _core.hold_workers(False)
    _core.hold_workers(False)  # unbalanced: must not leave the pool held or broken
    y2 = cc.conv2d(x, w, padding=1)
    np.testing.assert_array_equal(y1, y2)
