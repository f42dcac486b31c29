"""Batch normalisation (training mode) over every axis but the last, forward and backward side by side.

Notation: R rows (every axis but the channels, flattened), C channels; x2, y2, dy2, x_hat2 (R, C).
Sums are accumulated in float64, the variance from data shifted by the first row (no cancellation when the
mean is large against the spread). Each kernel has a parallel build for training batches (the statistics
in two blocks of channels, each channel summed over its rows in order, so that results do not depend on the
thread count; then the element-wise pass over rows) and a serial one for small inputs, where a parallel
launch costs more than it saves. Both give the same bits.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from calosim.kernels.numba import FASTMATH, parallel_and_serial

# Without reassociation: each channel's sums run over the rows in order, whatever the vector width (the
# same bits from both builds and any block of channels).
ORDERED = FASTMATH - {"reassoc"}


def _batchnorm_forward(x2, gamma, beta, eps, y2, mean, var, x_hat2, inv_std):
    """Fills y2, mean (C,), var (C,) (biased), x_hat2 and inv_std (C,) from x2 (R, C)."""
    rows, c = x2.shape
    blocks = 2 if c >= 2 else 1  # blocks of channels, each summed row by row
    for t in prange(blocks):  # each task writes mean, var, inv_std of its channels only
        lo, hi = t * c // blocks, (t + 1) * c // blocks
        shift = np.empty(hi - lo, dtype=np.float64)
        s1 = np.zeros(hi - lo, dtype=np.float64)
        s2 = np.zeros(hi - lo, dtype=np.float64)
        for ch in range(lo, hi):
            shift[ch - lo] = x2[0, ch]
        for r in range(rows):
            for ch in range(lo, hi):
                d = x2[r, ch] - shift[ch - lo]
                s1[ch - lo] += d
                s2[ch - lo] += d * d
        for ch in range(lo, hi):
            m = s1[ch - lo] / rows
            v = max(s2[ch - lo] / rows - m * m, 0.0)
            mean[ch] = shift[ch - lo] + m
            var[ch] = v
            inv_std[ch] = 1.0 / np.sqrt(v + eps)
    for r in prange(rows):  # each task writes row r only
        for ch in range(c):
            xh = (x2[r, ch] - mean[ch]) * inv_std[ch]
            x_hat2[r, ch] = xh
            y2[r, ch] = gamma[ch] * xh + beta[ch]


def _batchnorm_backward(dy2, x_hat2, inv_std, gamma, dx2, dgamma, dbeta, scale):
    """Fills dx2 (R, C), dgamma (C,), dbeta (C,) (x_hat2 and inv_std are what the forward retained; scale is
    a (C,) scratch row of dx2's dtype)."""
    rows, c = dy2.shape
    blocks = 2 if c >= 2 else 1  # blocks of channels, each summed row by row
    for t in prange(blocks):  # each task writes dbeta, dgamma, scale of its channels only
        lo, hi = t * c // blocks, (t + 1) * c // blocks
        sum_dy = np.zeros(hi - lo, dtype=np.float64)
        sum_dy_xh = np.zeros(hi - lo, dtype=np.float64)
        for r in range(rows):
            for ch in range(lo, hi):
                g = dy2[r, ch]
                sum_dy[ch - lo] += g
                sum_dy_xh[ch - lo] += g * x_hat2[r, ch]
        for ch in range(lo, hi):
            dbeta[ch] = sum_dy[ch - lo]
            dgamma[ch] = sum_dy_xh[ch - lo]
            scale[ch] = gamma[ch] * inv_std[ch] / rows
    for r in prange(rows):  # each task writes row r only
        for ch in range(c):
            dx2[r, ch] = scale[ch] * (rows * dy2[r, ch] - dbeta[ch] - x_hat2[r, ch] * dgamma[ch])


batchnorm_forward, batchnorm_forward_serial = parallel_and_serial(_batchnorm_forward, ORDERED)
batchnorm_backward, batchnorm_backward_serial = parallel_and_serial(_batchnorm_backward, ORDERED)
