"""Locally connected 2D layer (LC2D), forward and both backward passes side by side.

Notation: N batch, (H, W, C_in) input, kernel (K_h, K_w), stride (S_h, S_w), L = H_out * W_out positions,
P = K_h*K_w*C_in (patch order (k_h, k_w, c_in)); w (H_out, W_out, P, C_out), b (H_out, W_out, C_out).
Every array is C-contiguous. The patch of position (i, j) is K_h contiguous runs of K_w*C_in values, one per
input row i*S_h + k_h, starting at column j*S_w: the kernels read those runs in place (no im2col buffer).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from calosim.kernels.numba import FASTMATH


def _lc2d_forward(x, w, b, has_bias, kh, kw, sh, sw, y):
    """y (N, H_out, W_out, C_out) from x (N, H, W, C_in) and w in its own layout (read once: small batches).

    The inner loop runs over C_out with a weight row; each weight is read once per sample. Built twice: in
    parallel, and serially for batch-1 sampling, where a parallel launch costs more than the work.
    """
    n, h, wd, ci = x.shape
    ho, wo, p, co = w.shape
    npos = ho * wo
    run = kw * ci
    x3 = x.reshape(n, h, wd * ci)
    w3 = w.reshape(npos, p, co)
    y3 = y.reshape(n, npos, co)
    for t in prange(n * npos):  # each task writes y[s, l, :] only
        s = t // npos
        pos = t - s * npos
        i = pos // wo
        j = pos - i * wo
        out = y3[s, pos]
        for o in range(co):
            out[o] = b[i, j, o] if has_bias else 0.0
        for a in range(kh):
            xr = x3[s, i * sh + a, j * sw * ci : j * sw * ci + run]
            wa = w3[pos, a * run : (a + 1) * run]
            for q in range(run):
                xv = xr[q]
                for o in range(co):
                    out[o] += xv * wa[q, o]


lc2d_forward = njit(parallel=True, fastmath=FASTMATH, cache=True)(_lc2d_forward)
lc2d_forward_serial = njit(fastmath=FASTMATH, cache=True)(_lc2d_forward)


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def lc2d_forward_wt(x, wt, b, has_bias, kh, kw, sh, sw, y):
    """As :func:`lc2d_forward` with transposed weights wt (L, C_out, P) (large batches).

    Every output is a dot product of two contiguous runs, which vectorises over the patch axis.
    """
    n, h, wd, ci = x.shape
    npos, co, _ = wt.shape
    wo = y.shape[2]
    run = kw * ci
    x3 = x.reshape(n, h, wd * ci)
    y3 = y.reshape(n, npos, co)
    for t in prange(n * npos):  # each task writes y[s, l, :] only
        s = t // npos
        pos = t - s * npos
        i = pos // wo
        j = pos - i * wo
        for o in range(co):
            acc = b[i, j, o] if has_bias else 0.0
            wr = wt[pos, o]
            for a in range(kh):
                xr = x3[s, i * sh + a, j * sw * ci : j * sw * ci + run]
                wa = wr[a * run : (a + 1) * run]
                for q in range(run):
                    acc += xr[q] * wa[q]
            y3[s, pos, o] = acc


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def transpose_weights(w, wt):
    """wt (L, C_out, P) from w (H_out, W_out, P, C_out)."""
    ho, wo, p, co = w.shape
    w3 = w.reshape(ho * wo, p, co)
    for pos in prange(ho * wo):
        for q in range(p):
            for o in range(co):
                wt[pos, o, q] = w3[pos, q, o]


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def lc2d_backward_data(dy, w, kh, kw, sh, sw, dx):
    """dx (N, H, W, C_in) from dy (N, H_out, W_out, C_out); dx is overwritten.

    Gathered per input row: task (s, r) sums the contributions of every position whose window covers
    row r of sample s, so tasks never write the same cell.
    """
    n, h, wd, ci = dx.shape
    ho, wo, p, co = w.shape
    npos = ho * wo
    run = kw * ci
    dx3 = dx.reshape(n, h, wd * ci)
    w3 = w.reshape(npos, p, co)
    dy3 = dy.reshape(n, npos, co)
    for t in prange(n * h):  # each task writes dx[s, r, :, :] only
        s = t // h
        r = t - s * h
        row = dx3[s, r]
        row[:] = 0.0
        for a in range(kh):
            if r - a < 0 or (r - a) % sh != 0:
                continue
            i = (r - a) // sh
            if i >= ho:
                continue
            for j in range(wo):
                pos = i * wo + j
                g = dy3[s, pos]
                wa = w3[pos, a * run : (a + 1) * run]
                base = j * sw * ci
                for q in range(run):
                    acc = 0.0
                    for o in range(co):
                        acc += g[o] * wa[q, o]
                    row[base + q] += acc


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def lc2d_backward_weight(x, dy, kh, kw, sh, sw, dw):
    """dw (H_out, W_out, P, C_out) from x and dy; dw is overwritten.

    Each position owns its weights, so tasks (one per position) never write the same cell; the sum over the
    batch is done serially inside a task (deterministic).
    """
    n, h, wd, ci = x.shape
    ho, wo, p, co = dw.shape
    npos = ho * wo
    run = kw * ci
    x3 = x.reshape(n, h, wd * ci)
    dy3 = dy.reshape(n, npos, co)
    dw3 = dw.reshape(npos, p, co)
    for pos in prange(npos):  # each task writes dw[pos] only
        i = pos // wo
        j = pos - i * wo
        acc = np.zeros((p, co), dtype=dw.dtype)
        for s in range(n):
            g = dy3[s, pos]
            for a in range(kh):
                xr = x3[s, i * sh + a, j * sw * ci : j * sw * ci + run]
                for q in range(run):
                    xv = xr[q]
                    for o in range(co):
                        acc[a * run + q, o] += xv * g[o]
        for q in range(p):
            for o in range(co):
                dw3[pos, q, o] = acc[q, o]
