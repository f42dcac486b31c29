"""'Valid' 2D convolution helpers: patch extraction (im2col) and its adjoint (col2im), and a direct forward
for one input channel.

The matrix products of many-channel convolutions go to BLAS (numpy.matmul), which runs a convolution's one
large GEMM (N*H_out*W_out, P) x (P, C_out) near the machine's peak; im2col and col2im only move data.
Notation: N batch, (H, W, C_in) input, kernel (K_h, K_w), stride (S_h, S_w), P = K_h*K_w*C_in with patch
order (k_h, k_w, c_in). Every array is C-contiguous.
"""

from __future__ import annotations

from numba import njit, prange

from calosim.kernels.numba import FASTMATH


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def im2col(x, kh, kw, sh, sw, patches):
    """patches (N, H_out, W_out, P) from x (N, H, W, C_in); patches is overwritten."""
    n, h, wd, ci = x.shape
    _, ho, wo, _ = patches.shape
    run = kw * ci
    x3 = x.reshape(n, h, wd * ci)
    for t in prange(n * ho):  # each task writes patches[s, i] only
        s = t // ho
        i = t - s * ho
        for j in range(wo):
            dst = patches[s, i, j]
            for a in range(kh):
                src = x3[s, i * sh + a, j * sw * ci : j * sw * ci + run]
                dst[a * run : (a + 1) * run] = src


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def col2im(dpatches, kh, kw, sh, sw, dx):
    """dx (N, H, W, C_in) = the adjoint of :func:`im2col` applied to dpatches (N, H_out, W_out, P).

    Gathered per input row, so no two tasks write the same cell; dx is overwritten.
    """
    n, h, wd, ci = dx.shape
    _, ho, wo, _ = dpatches.shape
    run = kw * ci
    dx3 = dx.reshape(n, h, wd * ci)
    for t in prange(n * h):  # each task writes dx[s, r] only
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
                src = dpatches[s, i, j, a * run : (a + 1) * run]
                base = j * sw * ci
                for q in range(run):
                    row[base + q] += src[q]


# --------------------------------------------------------------------------- one input channel, direct
# The discriminator's first convolutions see the one-channel images: an im2col GEMM of K_h*K_w (4) inner
# products per output is bound by moving its output, and then adds the bias in one more pass. This kernel
# streams the output once, each output channel row vectorised. w2 is the filter bank (K_h*K_w, C_out) in
# patch order (k_h, k_w).


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def single_channel_forward(x, w2, b, has_bias, kh, kw, sh, sw, y):
    """y (N, H_out, W_out, C_out) = 'valid' convolution of x (N, H, W, 1) plus b (C_out,) when has_bias."""
    n = x.shape[0]
    ho, wo, co = y.shape[1], y.shape[2], y.shape[3]
    for t in prange(n * ho):  # each task writes y[s, i] only
        s = t // ho
        i = t - s * ho
        for j in range(wo):
            out = y[s, i, j]
            out[:] = 0.0
            for a in range(kh):
                for c in range(kw):
                    xv = x[s, i * sh + a, j * sw + c, 0]
                    wr = w2[a * kw + c]
                    for o in range(co):
                        out[o] += xv * wr[o]
            if has_bias:
                for o in range(co):
                    out[o] += b[o]

