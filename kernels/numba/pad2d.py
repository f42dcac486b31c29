"""Zero padding of a channels-last image's two spatial axes, and its adjoint (the interior), side by side.

Notation: x (N, H, W, C); pad ((top, bottom), (left, right)); y (N, H + top + bottom, W + left + right, C).
Memory bound: each output row is written once (zeros or a copied run), in parallel over rows.
"""

from __future__ import annotations

from numba import njit, prange

from calosim.kernels.numba import FASTMATH


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def pad2d(x, top, left, y):
    """Fills y (N, H_p, W_p, C) with x (N, H, W, C) at offset (top, left) and zeros around it."""
    n, h, w, c = x.shape
    hp, wp = y.shape[1], y.shape[2]
    x3 = x.reshape(n, h, w * c)
    y3 = y.reshape(n, hp, wp * c)
    lo, hi = left * c, (left + w) * c
    for t in prange(n * hp):  # each task writes y[s, r] only
        s = t // hp
        r = t - s * hp
        row = y3[s, r]
        if r < top or r >= top + h:
            row[:] = 0.0
        else:
            row[:lo] = 0.0
            row[lo:hi] = x3[s, r - top]
            row[hi:] = 0.0


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def pad2d_backward(dy, top, left, dx):
    """Fills dx (N, H, W, C) with the interior of dy (N, H_p, W_p, C) at offset (top, left)."""
    n, h, w, c = dx.shape
    hp, wp = dy.shape[1], dy.shape[2]
    dy3 = dy.reshape(n, hp, wp * c)
    dx3 = dx.reshape(n, h, w * c)
    lo = left * c
    for t in prange(n * h):  # each task writes dx[s, r] only
        s = t // h
        r = t - s * h
        dx3[s, r] = dy3[s, r + top, lo:lo + w * c]
