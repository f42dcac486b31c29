"""Minibatch discrimination with CaloGAN's L1 exponential kernel, forward and backward side by side.

Notation: N batch, K kernels, D kernel dimensions; m (N, K, D), o and do (N, K).
o[i, k] = sum_j exp(-sum_d |m[i, k, d] - m[j, k, d]|) (j = i included).

The kernels take m a second time as mt (K, D, N) (the caller transposes it, N*K*D values), so that every
inner loop runs over the batch axis j, contiguous and vectorised, with a scratch row of N distances per task.
In float32 (``fast_exp``) the N*N*K exponentials come from :func:`exp_neg`, a vectorised exp(-x): without
Intel's SVML (which pip's llvmlite lacks) each np.exp is a scalar libm call, 75% of the forward's time.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from calosim.kernels.numba import FASTMATH

LOG2E, LN2 = np.float32(1.4426950408889634), np.float32(0.6931471805599453)
ONE, HALF, EXPONENT_CAP = np.float32(1.0), np.float32(0.5), np.float32(126.0)
C2, C3, C4, C5, C6 = (np.float32(1 / k) for k in (2, 6, 24, 120, 720))


@njit(fastmath=FASTMATH, cache=True, inline="always")
def exp_neg(x, out, bits):
    """out = exp(-x) for x >= 0 (float32, N values; bits: an int32 scratch row of N), vectorised:
    2^-t = 2^-n 2^(n - t), t = x log2(e), n = round(t), 2^(n - t) from its degree-6 Taylor polynomial
    (|n - t| <= 1/2), 2^-n written as exponent bits. Relative error < 4e-7 for x < 5, < 4e-6 below 80 (the
    float32 rounding of t); exp(-x) for x > 87 (below 2^-126) comes out as 2^-126 times the polynomial."""
    for j in range(x.shape[0]):
        t = min(x[j] * LOG2E, EXPONENT_CAP)
        n = np.int32(t + HALF)
        y = (n - t) * LN2
        out[j] = ONE + y * (ONE + y * (C2 + y * (C3 + y * (C4 + y * (C5 + y * C6)))))
        bits[j] = (127 - n) << 23
    scale = bits.view(np.float32)
    for j in range(x.shape[0]):
        out[j] *= scale[j]


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _l1_distances(m, mt, i, k, dist):
    """Fills dist (N,) with sum_d |m[i, k, d] - m[j, k, d]| for every j (the inner loop runs over j in mt)."""
    dist[:] = 0.0
    for d in range(m.shape[2]):
        a = m[i, k, d]
        row = mt[k, d]
        for j in range(dist.shape[0]):
            dist[j] += abs(a - row[j])


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _exp_neg_inplace(x, fast_exp, scratch, bits):
    """x = exp(-x) (N,), by :func:`exp_neg` (float32) or np.exp. exp_neg writes a scratch row: run in place,
    it compiled to other rounding."""
    if fast_exp:
        exp_neg(x, scratch, bits)
        x[:] = scratch
    else:
        for j in range(x.shape[0]):
            x[j] = np.exp(-x[j])


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def mbd_forward(m, mt, o, fast_exp):
    """Fills o (N, K) from m (N, K, D) and mt (K, D, N), its transpose; fast_exp only for float32."""
    n, nk = m.shape[0], m.shape[1]
    for i in prange(n):  # each task writes o[i] only
        dist = np.empty(n, dtype=m.dtype)
        scratch = np.empty(n, dtype=m.dtype)
        bits = np.empty(n, dtype=np.int32)
        for k in range(nk):
            _l1_distances(m, mt, i, k, dist)
            _exp_neg_inplace(dist, fast_exp, scratch, bits)
            acc = m.dtype.type(0.0)
            for j in range(n):
                acc += dist[j]
            o[i, k] = acc


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def mbd_backward(m, mt, do, dm, fast_exp):
    """dm[i, k, d] = -sum_j (do[i, k] + do[j, k]) e[i, j, k] sign(m[i, k, d] - m[j, k, d]); fills dm (N, K, D).

    m (and its transpose mt (K, D, N)) is what the forward retained; e is recomputed rather than stored
    (N*N*K values). do is read as its transpose dot (K, N).
    """
    n, nk, nd = m.shape
    dot = np.ascontiguousarray(do.T)
    z = m.dtype.type(0.0)
    for i in prange(n):  # each task writes dm[i] only
        weight = np.empty(n, dtype=m.dtype)
        scratch = np.empty(n, dtype=m.dtype)
        bits = np.empty(n, dtype=np.int32)
        for k in range(nk):
            _l1_distances(m, mt, i, k, weight)
            _exp_neg_inplace(weight, fast_exp, scratch, bits)
            g = do[i, k]
            dk = dot[k]
            for j in range(n):
                weight[j] = (g + dk[j]) * weight[j]
            for d in range(nd):
                a = m[i, k, d]
                row = mt[k, d]
                above, below = z, z  # the weights of the j with m[j] below a, and above it (selects vectorise)
                for j in range(n):
                    diff = a - row[j]
                    above += weight[j] if diff > 0 else z
                    below += weight[j] if diff < 0 else z
                dm[i, k, d] = below - above
