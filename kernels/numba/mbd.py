"""Minibatch discrimination with CaloGAN's L1 exponential kernel, forward and backward side by side.

Notation: N batch, K kernels, D kernel dimensions; m (N, K, D), o and do (N, K).
o[i, k] = sum_j exp(-sum_d |m[i, k, d] - m[j, k, d]|) (j = i included).

The kernels take m a second time as mt (K, D, N) (the caller transposes it, N*K*D values), so that every
inner loop runs over the batch axis j, contiguous and vectorised, with a scratch row of N distances per task.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from calosim.kernels.numba import FASTMATH


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _l1_distances(m, mt, i, k, dist):
    """Fills dist (N,) with sum_d |m[i, k, d] - m[j, k, d]| for every j (the inner loop runs over j in mt)."""
    dist[:] = 0.0
    for d in range(m.shape[2]):
        a = m[i, k, d]
        row = mt[k, d]
        for j in range(dist.shape[0]):
            dist[j] += abs(a - row[j])


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def mbd_forward(m, mt, o):
    """Fills o (N, K) from m (N, K, D) and mt (K, D, N), its transpose."""
    n, nk = m.shape[0], m.shape[1]
    for i in prange(n):  # each task writes o[i] only
        dist = np.empty(n, dtype=m.dtype)
        for k in range(nk):
            _l1_distances(m, mt, i, k, dist)
            acc = m.dtype.type(0.0)
            for j in range(n):
                acc += np.exp(-dist[j])
            o[i, k] = acc


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def mbd_backward(m, mt, do, dm):
    """dm[i, k, d] = -sum_j (do[i, k] + do[j, k]) e[i, j, k] sign(m[i, k, d] - m[j, k, d]); fills dm (N, K, D).

    m (and its transpose mt (K, D, N)) is what the forward retained; e is recomputed rather than stored
    (N*N*K values). do is read as its transpose dot (K, N).
    """
    n, nk, nd = m.shape
    dot = np.ascontiguousarray(do.T)
    for i in prange(n):  # each task writes dm[i] only
        weight = np.empty(n, dtype=m.dtype)
        for k in range(nk):
            _l1_distances(m, mt, i, k, weight)
            g = do[i, k]
            dk = dot[k]
            for j in range(n):
                weight[j] = (g + dk[j]) * np.exp(-weight[j])
            for d in range(nd):
                a = m[i, k, d]
                row = mt[k, d]
                acc = m.dtype.type(0.0)
                for j in range(n):
                    diff = a - row[j]
                    acc += weight[j] * ((diff > 0) - (diff < 0))
                dm[i, k, d] = -acc
