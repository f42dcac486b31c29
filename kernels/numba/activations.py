"""Leaky ReLU forward and backward (alpha = 0 is ReLU); flat C-contiguous arrays of one dtype."""

from __future__ import annotations

from numba import njit, prange

from calosim.kernels.numba import FASTMATH


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def leaky_relu(x, alpha, y):
    """y = x where x > 0 else alpha * x."""
    for k in prange(x.size):
        v = x[k]
        y[k] = v if v > 0 else v * alpha


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def leaky_relu_backward(x, dy, alpha, dx):
    """dx = dy where x > 0 else alpha * dy (the forward retains its input x)."""
    for k in prange(x.size):
        dx[k] = dy[k] if x[k] > 0 else dy[k] * alpha
