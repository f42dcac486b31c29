"""Tiny loop references: the oracles the fast primitives are checked against (slow, obvious, float64).

Notation: x (N, H, W, C_in); LC2D weights (H_out, W_out, K_h*K_w*C_in, C_out) with patch order
(k_h, k_w, c_in), bias (H_out, W_out, C_out); convolution weights (K_h, K_w, C_in, C_out), bias (C_out,).
"""

from __future__ import annotations

import numpy as np


def lc2d_naive(x, w, b, kernel, stride):
    """A locally connected layer in four nested loops (positions i, j; patch k_h, k_w) over batch vectors."""
    n, _, _, ci = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo, _, co = w.shape
    x = np.asarray(x, dtype=np.float64)
    y = np.zeros((n, ho, wo, co))
    for i in range(ho):
        for j in range(wo):
            for a in range(kh):
                for c in range(kw):
                    rows = w[i, j, (a * kw + c) * ci : (a * kw + c + 1) * ci, :]  # (C_in, C_out)
                    y[:, i, j, :] += x[:, i * sh + a, j * sw + c, :] @ rows
            if b is not None:
                y[:, i, j, :] += b[i, j]
    return y


def conv2d_naive(x, w, b, stride):
    """A 'valid' cross-correlation in four nested loops."""
    n, h, wd, _ = x.shape
    kh, kw, _, co = w.shape
    sh, sw = stride
    ho, wo = (h - kh) // sh + 1, (wd - kw) // sw + 1
    x = np.asarray(x, dtype=np.float64)
    y = np.zeros((n, ho, wo, co))
    for i in range(ho):
        for j in range(wo):
            for a in range(kh):
                for c in range(kw):
                    y[:, i, j, :] += x[:, i * sh + a, j * sw + c, :] @ w[a, c]
    if b is not None:
        y += b
    return y


def tie_filters(w_conv, ho, wo):
    """LC2D weights (H_out, W_out, K_h*K_w*C_in, C_out) whose every position holds the convolution's filter."""
    kh, kw, ci, co = w_conv.shape
    return np.broadcast_to(w_conv.reshape(kh * kw * ci, co), (ho, wo, kh * kw * ci, co)).copy()
