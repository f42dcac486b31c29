"""Inverted dropout: in training, cells are zeroed with probability ``rate`` and the rest scaled by 1/(1-rate)."""

from __future__ import annotations

import numpy as np

from calosim.layers.base import Layer


class Dropout(Layer):
    def __init__(self, rate: float = 0.2, name: str | None = None):
        super().__init__(name or "dropout")
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)

    def _build(self, input_shape, rng):
        self.rng = np.random.default_rng(rng.integers(2**63))  # its own stream, saved with the run
        return input_shape

    def forward(self, x, training: bool = True):
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape) >= self.rate
        self._mask = self.backend.asarray(keep / (1.0 - self.rate), dtype=x.dtype)  # the mask is retained
        return x * self._mask

    def backward(self, dy):
        return dy if self._mask is None else dy * self._mask
