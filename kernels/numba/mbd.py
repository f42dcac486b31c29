"""Minibatch discrimination with CaloGAN's L1 exponential kernel, forward and backward side by side.

Notation: N batch, K kernels, D kernel dimensions; m (N, K, D), o and do (N, K).
o[i, k] = sum_j exp(-sum_d |m[i, k, d] - m[j, k, d]|) (j = i included).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from calosim.kernels.numba import FASTMATH


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def mbd_forward(m, o):
    """Fills o (N, K) from m (N, K, D)."""
    n, nk, nd = m.shape
    for i in prange(n):  # each task writes o[i] only
        for k in range(nk):
            acc = 0.0
            for j in range(n):
                dist = 0.0
                for d in range(nd):
                    dist += abs(m[i, k, d] - m[j, k, d])
                acc += np.exp(-dist)
            o[i, k] = acc


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def mbd_backward(m, do, dm):
    """dm[i, k, d] = -sum_j (do[i, k] + do[j, k]) e[i, j, k] sign(m[i, k, d] - m[j, k, d]); fills dm (N, K, D).

    m is what the forward retained; e is recomputed rather than stored (N*N*K values).
    """
    n, nk, nd = m.shape
    for i in prange(n):  # each task writes dm[i] only
        for k in range(nk):
            for d in range(nd):
                dm[i, k, d] = 0.0
            for j in range(n):
                dist = 0.0
                for d in range(nd):
                    dist += abs(m[i, k, d] - m[j, k, d])
                weight = (do[i, k] + do[j, k]) * np.exp(-dist)
                for d in range(nd):
                    diff = m[i, k, d] - m[j, k, d]
                    if diff > 0:
                        dm[i, k, d] -= weight
                    elif diff < 0:
                        dm[i, k, d] += weight
