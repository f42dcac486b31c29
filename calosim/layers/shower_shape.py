"""Shower-shape features of a layer image, with their gradients: what a physicist histograms, for a
discriminator to compare.

Notation: N batch, image x (N, R, C, 1) of non-negative cell energies, S = sum of the cells + EPS.
Features (N, 2):
    E_ratio = (a - b) / (a + b + EPS), a >= b the two hottest cells (CaloGAN's E_ratio)
    sigma   = sqrt(v + EPS), v = m2 - m1^2, m_k = sum_c x_c r_c^k / S, r_c the centre of cell c's row on
              [-1, 1] ((2i + 1) / R - 1 for row i; CaloGAN's lateral width sigma up to the scale of the axis)
Gradients: dE_ratio/da = 2 (b + EPS / 2) / (a + b + EPS)^2, dE_ratio/db = -2 (a + EPS / 2) / (a + b + EPS)^2,
zero elsewhere (the ranking is piecewise constant); dsigma/dx_c = ((r_c - m1)^2 - v) / (2 S sigma).
"""

from __future__ import annotations

import numpy as np

from calosim.layers.base import Layer

EPS = 1e-6


class ShowerShapeFeatures(Layer):
    def __init__(self, name: str | None = None):
        super().__init__(name or "shower_shape")

    def _build(self, input_shape, rng):
        if len(input_shape) != 3 or input_shape[2] != 1 or input_shape[0] * input_shape[1] < 2:
            raise ValueError(f"{self.name}: expects one-channel images (R, C, 1) of 2 cells or more, "
                             f"got {input_shape}")
        return (2,)

    def forward(self, x, training: bool = True):
        self.check_input(x)
        xp = self.backend.xp
        n, rows = x.shape[0], x.shape[1]
        flat = x.reshape(n, -1)
        top2 = xp.argsort(flat, axis=1)[:, -2:]  # (N, 2): second hottest, hottest
        b = xp.take_along_axis(flat, top2[:, :1], axis=1)[:, 0]
        a = xp.take_along_axis(flat, top2[:, 1:], axis=1)[:, 0]
        r = self.backend.asarray((2.0 * np.arange(rows) + 1.0) / rows - 1.0).reshape(1, rows, 1, 1)
        s = x.sum(axis=(1, 2, 3)) + EPS
        m1 = (x * r).sum(axis=(1, 2, 3)) / s
        v = (x * r * r).sum(axis=(1, 2, 3)) / s - m1 * m1
        sigma = xp.sqrt(xp.maximum(v, 0.0) + EPS)
        # retained: the hottest cells and their values, the row centres and the moments
        self._top2, self._a, self._b, self._r, self._s, self._m1, self._v, self._sigma = top2, a, b, r, s, m1, v, sigma
        return xp.stack([(a - b) / (a + b + EPS), sigma], axis=1)

    def backward(self, dy):
        xp = self.backend.xp
        x_shape = self.input_shape
        n = dy.shape[0]
        a, b = self._a, self._b
        denominator = (a + b + EPS) ** 2
        d_ratio = dy[:, 0]
        dx = (self._r - self._m1.reshape(n, 1, 1, 1)) ** 2 - self._v.reshape(n, 1, 1, 1)
        dx = dx * (dy[:, 1] / (2.0 * self._s * self._sigma)).reshape(n, 1, 1, 1)
        dx = xp.broadcast_to(dx, (n, *x_shape)).reshape(n, -1).copy()
        rows = xp.arange(n)
        dx[rows, self._top2[:, 1]] += d_ratio * 2.0 * (b + EPS / 2) / denominator
        dx[rows, self._top2[:, 0]] -= d_ratio * 2.0 * (a + EPS / 2) / denominator
        return dx.reshape(n, *x_shape).astype(dy.dtype)
