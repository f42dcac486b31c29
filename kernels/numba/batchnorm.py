"""Batch normalisation (training mode) over every axis but the last, forward and backward side by side.

Notation: R rows (every axis but the channels, flattened), C channels; x2, y2, dy2, x_hat2 (R, C).
Sums over rows are partial sums per chunk of rows (a fixed number of chunks, so results do not depend on the
thread count), accumulated in float64 and reduced serially.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from calosim.kernels.numba import FASTMATH

CHUNKS = 64


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def _column_sums(a2, b2, shift, products):
    """Per column: sum_r (a2[r] - shift) and sum_r (a2[r] - shift) * (b2[r] if products else a2[r] - shift)."""
    rows, c = a2.shape
    nchunk = max(1, min(CHUNKS, rows))
    part = np.zeros((nchunk, 2, c), dtype=np.float64)
    for k in prange(nchunk):  # each task writes part[k] only
        s1 = part[k, 0]
        s2 = part[k, 1]
        for r in range(k * rows // nchunk, (k + 1) * rows // nchunk):
            for ch in range(c):
                d = a2[r, ch] - shift[ch]
                s1[ch] += d
                s2[ch] += d * (b2[r, ch] if products else d)
    total = np.zeros((2, c), dtype=np.float64)
    for k in range(nchunk):  # serial reduction
        total += part[k]
    return total


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def batchnorm_forward(x2, gamma, beta, eps, y2, mean, var, x_hat2, inv_std):
    """Fills y2, mean (C,), var (C,) (biased), x_hat2 and inv_std (C,) from x2 (R, C)."""
    rows, c = x2.shape
    mean64 = _column_sums(x2, x2, np.zeros(c, dtype=np.float64), False)[0] / rows
    var64 = _column_sums(x2, x2, mean64, False)[1] / rows  # two passes: centred squares
    for ch in range(c):
        mean[ch] = mean64[ch]
        var[ch] = var64[ch]
        inv_std[ch] = 1.0 / np.sqrt(var64[ch] + eps)
    for r in prange(rows):  # each task writes row r only
        for ch in range(c):
            xh = (x2[r, ch] - mean[ch]) * inv_std[ch]
            x_hat2[r, ch] = xh
            y2[r, ch] = gamma[ch] * xh + beta[ch]


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def batchnorm_backward(dy2, x_hat2, inv_std, gamma, dx2, dgamma, dbeta):
    """Fills dx2 (R, C), dgamma (C,), dbeta (C,) (x_hat2 and inv_std are what the forward retained)."""
    rows, c = dy2.shape
    sums = _column_sums(dy2, x_hat2, np.zeros(c, dtype=np.float64), True)
    for ch in range(c):
        dbeta[ch] = sums[0, ch]
        dgamma[ch] = sums[1, ch]
    scale = np.empty(c, dtype=dx2.dtype)
    for ch in range(c):
        scale[ch] = gamma[ch] * inv_std[ch] / rows
    for r in prange(rows):  # each task writes row r only
        for ch in range(c):
            dx2[r, ch] = scale[ch] * (rows * dy2[r, ch] - dbeta[ch] - x_hat2[r, ch] * dgamma[ch])
