"""Finite-difference gradient checking for convcore.nn ops (test helper)."""
from __future__ import annotations

import numpy as np

from convcore.nn import Tensor, no_grad


def numeric_vs_analytic(fn, inputs, eps=1e-6, max_points=40, seed=0):
    """Analytic gradients of sum(fn(*inputs) * R) and central differences at sampled points.

    Returns [(analytic, numeric, index_list)] per input. Runs in the inputs'
    dtype; the weighted sum is taken in float64.
    """
    rng = np.random.default_rng(seed)
    ts = [Tensor(a, requires_grad=True, dtype=a.dtype) for a in inputs]
    out = fn(*ts)
    R = rng.standard_normal(out.shape)
    out.backward(R.astype(out.data.dtype))

    def f(arrays):
        with no_grad():
            y = fn(*[Tensor(a, dtype=a.dtype) for a in arrays])
        return float((y.data.astype(np.float64) * R).sum())

    results = []
    for i, a in enumerate(inputs):
        flat = list(np.ndindex(a.shape))
        if len(flat) > max_points:
            pick = rng.choice(len(flat), max_points, replace=False)
            flat = [flat[j] for j in pick]
        num, ana = [], []
        for idx in flat:
            arrs = [b.copy() for b in inputs]
            arrs[i][idx] += eps
            fp = f(arrs)
            arrs[i][idx] -= 2 * eps
            fm = f(arrs)
            num.append((fp - fm) / (2 * eps))
            ana.append(float(ts[i].grad[idx]))
        results.append((np.array(ana), np.array(num)))
    return results


def assert_grads_close(fn, inputs, eps=1e-6, rtol=1e-5, atol=1e-6, **kw):
    for i, (ana, num) in enumerate(numeric_vs_analytic(fn, inputs, eps=eps, **kw)):
        np.testing.assert_allclose(ana, num, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i} differs from finite differences")
