"""Locally connected 2D layer (LC2D), forward and both backward passes side by side.

Notation: N batch, (H, W, C_in) input, kernel (K_h, K_w), stride (S_h, S_w), L = H_out * W_out positions,
P = K_h*K_w*C_in (patch order (k_h, k_w, c_in)); w (H_out, W_out, P, C_out), b (H_out, W_out, C_out).
Every array is C-contiguous. The patch of position (i, j) is K_h contiguous runs of K_w*C_in values, one per
input row i*S_h + k_h, starting at column j*S_w: the kernels read those runs in place (no im2col buffer).

Large batches (training) use the tiled kernels: position-major, so that one position's weights (P*C_out
values, 36 KB for the discriminator's first LC2D) stay in the L1/L2 cache while every sample passes through,
with register tiles of several samples and outputs sharing each load, and accumulators in the arrays' dtype
(a float64 accumulator for float32 data would halve the vector width and convert at every step). Their
weights come transposed, wt (L, C_out, P), so that the patch axis is contiguous for every output. Tails of a
tile are clamped to the last sample or output: a clamped lane recomputes (and rewrites, in the same task)
values of its neighbour, or enters with a zero coefficient, so no branch sits in an inner loop.
"""

from __future__ import annotations

from numba import njit, prange

from calosim.kernels.numba import FASTMATH, parallel_and_serial


def _lc2d_forward(x, w, b, has_bias, kh, kw, sh, sw, y):
    """y (N, H_out, W_out, C_out) from x (N, H, W, C_in) and w in its own layout (read once: small batches).

    The inner loop runs over C_out with a weight row; each weight is read once per sample. Built twice: in
    parallel, and serially for batch-1 sampling, where a parallel launch costs more than the work. Batches
    from calosim.backends.numba_backend.LC2D_TILED_MIN_BATCH on use :func:`lc2d_forward_tiled`.
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


lc2d_forward, lc2d_forward_serial = parallel_and_serial(_lc2d_forward)


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def swap_last_axes(src, dst):
    """dst (L, B, A) from src (L, A, B): weights (L, P, C_out) to the tiled kernels' wt (L, C_out, P), and a
    transposed weight gradient back."""
    count, rows, cols = src.shape
    for pos in prange(count):
        for q in range(rows):
            for o in range(cols):
                dst[pos, o, q] = src[pos, q, o]


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def lc2d_forward_tiled(x, wt, b, has_bias, kh, kw, sh, sw, y):
    """y (N, H_out, W_out, C_out) from x, transposed weights wt (L, C_out, P) and bias b (L, C_out) (large
    batches). With wt (1, C_out, P) and b (1, C_out) every position uses the same filters: a 'valid'
    convolution.

    Position-major with 4-sample x 4-output register tiles: each patch element is loaded once per 4 outputs
    and each weight once per 4 samples; the reduction over the patch runs vectorised into 16 independent
    accumulators. Task = one position: it alone writes y[:, l, :].
    """
    n, h, wd, ci = x.shape
    _, co, _ = wt.shape
    wo = y.shape[2]
    npos = y.shape[1] * wo
    run = kw * ci
    x3 = x.reshape(n, h, wd * ci)
    y3 = y.reshape(n, npos, co)
    z = x.dtype.type(0.0)
    tied_w, tied_b = wt.shape[0] == 1, b.shape[0] == 1
    for pos in prange(npos):  # each task writes y[:, pos, :] only
        i = pos // wo
        j = pos - i * wo
        c0 = j * sw * ci
        wp = 0 if tied_w else i * wo + j  # (i * wo + j, not pos: the prange index is unsigned)
        bp = 0 if tied_b else i * wo + j
        for o0 in range(0, co, 4):
            o1, o2, o3 = min(o0 + 1, co - 1), min(o0 + 2, co - 1), min(o0 + 3, co - 1)
            if has_bias:
                b0, b1, b2, b3 = b[bp, o0], b[bp, o1], b[bp, o2], b[bp, o3]
            else:
                b0, b1, b2, b3 = z, z, z, z
            for s0 in range(0, n, 4):
                s1, s2, s3 = min(s0 + 1, n - 1), min(s0 + 2, n - 1), min(s0 + 3, n - 1)
                a00, a01, a02, a03 = z, z, z, z
                a10, a11, a12, a13 = z, z, z, z
                a20, a21, a22, a23 = z, z, z, z
                a30, a31, a32, a33 = z, z, z, z
                for a in range(kh):
                    r, lo = i * sh + a, a * run
                    x0, x1 = x3[s0, r, c0:c0 + run], x3[s1, r, c0:c0 + run]
                    x2, xx3 = x3[s2, r, c0:c0 + run], x3[s3, r, c0:c0 + run]
                    w0, w1 = wt[wp, o0, lo:lo + run], wt[wp, o1, lo:lo + run]
                    w2, w3 = wt[wp, o2, lo:lo + run], wt[wp, o3, lo:lo + run]
                    for q in range(run):
                        v0, v1, v2, v3 = x0[q], x1[q], x2[q], xx3[q]
                        u0, u1, u2, u3 = w0[q], w1[q], w2[q], w3[q]
                        a00 += v0 * u0
                        a01 += v0 * u1
                        a02 += v0 * u2
                        a03 += v0 * u3
                        a10 += v1 * u0
                        a11 += v1 * u1
                        a12 += v1 * u2
                        a13 += v1 * u3
                        a20 += v2 * u0
                        a21 += v2 * u1
                        a22 += v2 * u2
                        a23 += v2 * u3
                        a30 += v3 * u0
                        a31 += v3 * u1
                        a32 += v3 * u2
                        a33 += v3 * u3
                # clamped lanes write their neighbour's value again (same task, same value). Element by element:
                # in Numba 0.68 a tuple assignment through row views (y0[o0], y0[o1] = ...) inside prange
                # lost its writes.
                y3[s0, pos, o0], y3[s0, pos, o1] = a00 + b0, a01 + b1
                y3[s0, pos, o2], y3[s0, pos, o3] = a02 + b2, a03 + b3
                y3[s1, pos, o0], y3[s1, pos, o1] = a10 + b0, a11 + b1
                y3[s1, pos, o2], y3[s1, pos, o3] = a12 + b2, a13 + b3
                y3[s2, pos, o0], y3[s2, pos, o1] = a20 + b0, a21 + b1
                y3[s2, pos, o2], y3[s2, pos, o3] = a22 + b2, a23 + b3
                y3[s3, pos, o0], y3[s3, pos, o1] = a30 + b0, a31 + b1
                y3[s3, pos, o2], y3[s3, pos, o3] = a32 + b2, a33 + b3


DATA_BLOCK = 16  # samples per task of the data gradient


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _eight_coefficients(g, o0, co):
    """g[o0], ..., g[o0 + 7], with zeros for the outputs past C_out."""
    z = g.dtype.type(0.0)
    return (g[o0], g[o0 + 1] if o0 + 1 < co else z, g[o0 + 2] if o0 + 2 < co else z,
            g[o0 + 3] if o0 + 3 < co else z, g[o0 + 4] if o0 + 4 < co else z, g[o0 + 5] if o0 + 5 < co else z,
            g[o0 + 6] if o0 + 6 < co else z, g[o0 + 7] if o0 + 7 < co else z)


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def lc2d_backward_data_tiled(dy, wt, kh, kw, sh, sw, dx):
    """dx (N, H, W, C_in) from dy (N, H_out, W_out, C_out) and transposed weights wt (L, C_out, P), or
    (1, C_out, P) for a convolution; dx is overwritten.

    Task (r, block) gathers input row r of a block of DATA_BLOCK samples: for every position whose window
    covers row r, and every pair of samples of the block, it adds sum_o dy[s, l, o] * wt[l, o, run] to the
    run of the row under the window, eight outputs per pass (each row cell is loaded and stored once per
    eight products, each weight once per two samples, and a position's weights stay in the L1 cache while
    the block passes). Tasks never write the same cell; an odd block's last pair has one sample.
    """
    n, h, wd, ci = dx.shape
    _, co, _ = wt.shape
    ho, wo = dy.shape[1], dy.shape[2]
    npos = ho * wo
    tied = wt.shape[0] == 1
    run = kw * ci
    dx3 = dx.reshape(n, h, wd * ci)
    dy3 = dy.reshape(n, npos, co)
    z = dx.dtype.type(0.0)
    m = co - 1
    blocks = (n + DATA_BLOCK - 1) // DATA_BLOCK
    for t in prange(h * blocks):  # each task writes dx[s0:s1, r] only
        r = t // blocks
        s0 = DATA_BLOCK * (t - r * blocks)
        s1 = min(s0 + DATA_BLOCK, n)
        for s in range(s0, s1):
            dx3[s, r, :] = 0.0
        for a in range(kh):
            if r - a < 0 or (r - a) % sh != 0:
                continue
            i = (r - a) // sh
            if i >= ho:
                continue
            lo = a * run
            for j in range(wo):
                pos = i * wo + j
                wp = 0 if tied else pos
                base = j * sw * ci
                for sa in range(s0, s1, 2):
                    two = sa + 1 < s1
                    sb = sa + 1 if two else sa
                    sega, segb = dx3[sa, r, base:base + run], dx3[sb, r, base:base + run]
                    ga, gb = dy3[sa, pos], dy3[sb, pos]
                    for o0 in range(0, co, 8):
                        if co - o0 <= 2:  # one or two outputs left (narrow layers): a pass without idle lanes
                            o1 = min(o0 + 1, m)
                            g0, h0 = ga[o0], gb[o0]
                            g1 = ga[o1] if o0 + 1 < co else z
                            h1 = gb[o1] if o0 + 1 < co else z
                            w0, w1 = wt[wp, o0, lo:lo + run], wt[wp, o1, lo:lo + run]
                            if two:
                                for q in range(run):
                                    sega[q] += g0 * w0[q] + g1 * w1[q]
                                    segb[q] += h0 * w0[q] + h1 * w1[q]
                            else:
                                for q in range(run):
                                    sega[q] += g0 * w0[q] + g1 * w1[q]
                            continue
                        # outputs past C_out reuse the last weight row with a zero coefficient
                        o1, o2, o3 = min(o0 + 1, m), min(o0 + 2, m), min(o0 + 3, m)
                        o4, o5, o6, o7 = min(o0 + 4, m), min(o0 + 5, m), min(o0 + 6, m), min(o0 + 7, m)
                        g0, g1, g2, g3, g4, g5, g6, g7 = _eight_coefficients(ga, o0, co)
                        w0, w1 = wt[wp, o0, lo:lo + run], wt[wp, o1, lo:lo + run]
                        w2, w3 = wt[wp, o2, lo:lo + run], wt[wp, o3, lo:lo + run]
                        w4, w5 = wt[wp, o4, lo:lo + run], wt[wp, o5, lo:lo + run]
                        w6, w7 = wt[wp, o6, lo:lo + run], wt[wp, o7, lo:lo + run]
                        if two:
                            h0, h1, h2, h3, h4, h5, h6, h7 = _eight_coefficients(gb, o0, co)
                            for q in range(run):
                                u0, u1, u2, u3 = w0[q], w1[q], w2[q], w3[q]
                                u4, u5, u6, u7 = w4[q], w5[q], w6[q], w7[q]
                                sega[q] += ((g0 * u0 + g1 * u1 + g2 * u2 + g3 * u3)
                                            + (g4 * u4 + g5 * u5 + g6 * u6 + g7 * u7))
                                segb[q] += ((h0 * u0 + h1 * u1 + h2 * u2 + h3 * u3)
                                            + (h4 * u4 + h5 * u5 + h6 * u6 + h7 * u7))
                        else:
                            for q in range(run):
                                sega[q] += ((g0 * w0[q] + g1 * w1[q] + g2 * w2[q] + g3 * w3[q])
                                            + (g4 * w4[q] + g5 * w5[q] + g6 * w6[q] + g7 * w7[q]))


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def lc2d_backward_weight_tiled(x, dy, kh, kw, sh, sw, dwt):
    """dwt (L, C_out, P), the transposed weight gradient, from x and dy; dwt is overwritten.

    Task = one position (it alone writes dwt[l]); its gradient (C_out x P, in the cache) takes four samples
    at a time into two output rows per pass over the patch. The batch is summed in a fixed order inside the
    task (deterministic).
    """
    n, h, wd, ci = x.shape
    npos, co, _ = dwt.shape
    wo = dy.shape[2]
    run = kw * ci
    x3 = x.reshape(n, h, wd * ci)
    dy3 = dy.reshape(n, npos, co)
    z = x.dtype.type(0.0)
    for pos in prange(npos):  # each task writes dwt[pos] only
        i = pos // wo
        j = pos - i * wo
        c0 = j * sw * ci
        acc = dwt[pos]
        acc[:] = 0.0
        for s0 in range(0, n, 4):
            # samples past the batch reuse the last one's patch with a zero coefficient
            s1, s2, s3 = min(s0 + 1, n - 1), min(s0 + 2, n - 1), min(s0 + 3, n - 1)
            m1, m2, m3 = s0 + 1 < n, s0 + 2 < n, s0 + 3 < n
            for o0 in range(0, co, 2):
                g0 = dy3[s0, pos, o0]
                g1 = dy3[s1, pos, o0] if m1 else z
                g2 = dy3[s2, pos, o0] if m2 else z
                g3 = dy3[s3, pos, o0] if m3 else z
                for a in range(kh):
                    r, lo = i * sh + a, a * run
                    x0, x1 = x3[s0, r, c0:c0 + run], x3[s1, r, c0:c0 + run]
                    x2, xx3 = x3[s2, r, c0:c0 + run], x3[s3, r, c0:c0 + run]
                    d0 = acc[o0, lo:lo + run]
                    if o0 + 1 < co:
                        e0 = dy3[s0, pos, o0 + 1]
                        e1 = dy3[s1, pos, o0 + 1] if m1 else z
                        e2 = dy3[s2, pos, o0 + 1] if m2 else z
                        e3 = dy3[s3, pos, o0 + 1] if m3 else z
                        d1 = acc[o0 + 1, lo:lo + run]
                        for q in range(run):
                            v0, v1, v2, v3 = x0[q], x1[q], x2[q], xx3[q]
                            d0[q] += (g0 * v0 + g1 * v1) + (g2 * v2 + g3 * v3)
                            d1[q] += (e0 * v0 + e1 * v1) + (e2 * v2 + e3 * v3)
                    else:
                        for q in range(run):
                            d0[q] += (g0 * x0[q] + g1 * x1[q]) + (g2 * x2[q] + g3 * xx3[q])
