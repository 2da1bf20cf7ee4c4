"""float64 numpy references for the kernels (the tests' oracle).

Written for clarity, not speed: explicit padding and strided windows.
"""
from __future__ import annotations

import numpy as np


def pad4(x, pads, value=0.0):
    t, l, b, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def conv2d(x, w, b=None, stride=(1, 1), pads=(0, 0, 0, 0), dil=(1, 1), groups=1):
    x = pad4(np.asarray(x, np.float64), pads)
    w = np.asarray(w, np.float64)
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    sh, sw = stride
    dh, dw = dil
    OH = (H - dh * (kh - 1) - 1) // sh + 1
    OW = (W - dw * (kw - 1) - 1) // sw + 1
    Kg = K // groups
    y = np.zeros((N, K, OH, OW))
    for g in range(groups):
        xg = x[:, g * Cg:(g + 1) * Cg]
        wg = w[g * Kg:(g + 1) * Kg]
        for i in range(kh):
            for j in range(kw):
                patch = xg[:, :, i * dh: i * dh + sh * (OH - 1) + 1: sh,
                           j * dw: j * dw + sw * (OW - 1) + 1: sw]  # N,Cg,OH,OW
                y[:, g * Kg:(g + 1) * Kg] += np.einsum("nchw,kc->nkhw", patch, wg[:, :, i, j])
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def conv2d_backward(gy, x, w, stride=(1, 1), pads=(0, 0, 0, 0), dil=(1, 1), groups=1):
    """(grad_x, grad_w, grad_b) of conv2d, by the adjoint of the loops above."""
    gy = np.asarray(gy, np.float64)
    xp = pad4(np.asarray(x, np.float64), pads)
    w = np.asarray(w, np.float64)
    N, C, H, W = xp.shape
    K, Cg, kh, kw = w.shape
    sh, sw = stride
    dh, dw = dil
    OH, OW = gy.shape[2:]
    Kg = K // groups
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    for g in range(groups):
        gyg = gy[:, g * Kg:(g + 1) * Kg]
        wg = w[g * Kg:(g + 1) * Kg]
        for i in range(kh):
            for j in range(kw):
                sl = (slice(None), slice(g * Cg, (g + 1) * Cg),
                      slice(i * dh, i * dh + sh * (OH - 1) + 1, sh),
                      slice(j * dw, j * dw + sw * (OW - 1) + 1, sw))
                gw[g * Kg:(g + 1) * Kg, :, i, j] = np.einsum("nkhw,nchw->kc", gyg, xp[sl])
                gxp[sl] += np.einsum("nkhw,kc->nchw", gyg, wg[:, :, i, j])
    t, l, b, r = pads
    gx = gxp[:, :, t:H - b, l:W - r]
    return gx, gw, gy.sum(axis=(0, 2, 3))
