"""Runs a test script in a child process with CONVCORE_ISA forced, so the
lower ISAs' kernels (and fallbacks) are checked on a machine that has more."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import convcore as cc


def run_with_isa(script: str, isa: str, timeout: int = 300):
    """The script must print a last line ending in "ok"."""
    if isa == "avx2" and cc.cpu_info()["isa"] not in ("avx2", "avx512"):
        pytest.skip("this CPU has no AVX2+FMA")
    env = dict(os.environ, CONVCORE_ISA=isa)
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr
