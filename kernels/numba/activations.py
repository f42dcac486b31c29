"""Leaky ReLU forward and backward (alpha = 0 is ReLU); flat C-contiguous arrays of one dtype.

Each kernel comes in a parallel and a serial build: element-wise work is memory bound, and below about a
million cells a parallel launch costs more than it saves (and waits on busy cores).
"""

from __future__ import annotations

from numba import prange

from calosim.kernels.numba import parallel_and_serial


def _leaky_relu(x, alpha, y):
    """y = x where x > 0 else alpha * x."""
    for k in prange(x.size):
        v = x[k]
        y[k] = v if v > 0 else v * alpha


def _leaky_relu_backward(x, dy, alpha, dx):
    """dx = dy where x > 0 else alpha * dy (the forward retains its input x)."""
    for k in prange(x.size):
        dx[k] = dy[k] if x[k] > 0 else dy[k] * alpha


leaky_relu, leaky_relu_serial = parallel_and_serial(_leaky_relu)
leaky_relu_backward, leaky_relu_backward_serial = parallel_and_serial(_leaky_relu_backward)
