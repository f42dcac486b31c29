"""Weight initialisers as in Keras, drawn from an explicit ``numpy.random.Generator``.

``fan_in`` and ``fan_out`` are given by the layer: for convolutions and locally connected layers they are
the per-output-position fans ``K_h * K_w * C_in`` and ``K_h * K_w * C_out``.
"""

from __future__ import annotations

import numpy as np


def he_uniform(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape)


def glorot_uniform(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def glorot_normal(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
    """Keras' truncated normal (cut at two standard deviations) with stddev sqrt(2 / (fan_in + fan_out))."""
    stddev = np.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978  # std of the cut unit normal
    out = rng.standard_normal(size=shape)
    outside = np.abs(out) > 2.0
    while outside.any():
        out[outside] = rng.standard_normal(size=int(outside.sum()))
        outside = np.abs(out) > 2.0
    return out * stddev


def zeros(rng: np.random.Generator, shape, fan_in: int = 0, fan_out: int = 0) -> np.ndarray:
    return np.zeros(shape)


def constant(value: float):
    """An initialiser filling with ``value``."""

    def fill(rng: np.random.Generator, shape, fan_in: int = 0, fan_out: int = 0) -> np.ndarray:
        return np.full(shape, float(value))

    return fill


INITIALIZERS = {
    "he_uniform": he_uniform,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "zeros": zeros,
}


def get_initializer(spec):
    """An initialiser from its Keras name, a number (constant) or a callable."""
    if callable(spec):
        return spec
    if isinstance(spec, (int, float)):
        return constant(spec)
    try:
        return INITIALIZERS[spec]
    except KeyError:
        raise ValueError(f"unknown initialiser {spec!r}; choose one of {sorted(INITIALIZERS)}") from None
