"""Shared by the wgan-gp / vae / lagan tests: tiny shower files and a whole-model gradient check."""

from __future__ import annotations

import numpy as np

from calosim.data import Showers
from calosim.geometry import Geometry, LayerGeometry, single_layer_geometry
from calosim.gradcheck import GradcheckResult, relative_error

TINY_GEOMETRY = Geometry("tiny", (LayerGeometry("layer_0", (2, 8), (160.0, 30.0)),
                                  LayerGeometry("layer_1", (4, 4), (120.0, 120.0)),
                                  LayerGeometry("layer_2", (4, 2), (120.0, 240.0))))


def tiny_showers(n: int = 96, seed: int = 0, geometry=TINY_GEOMETRY, energies=None) -> Showers:
    """Shower-like images: a peaked, E-proportional profile with noise and exact zeros; E ~ U(1, 100) GeV."""
    rng = np.random.default_rng(seed)
    energy = (rng.uniform(1.0, 100.0, n) if energies is None else rng.choice(energies, n)).astype(np.float32)
    fractions = (0.2, 0.7, 0.1) if geometry.n_layers == 3 else (0.9,)
    layers = []
    for fraction, layer in zip(fractions, geometry.layers):
        r, c = layer.shape
        profile = np.exp(-np.add.outer((np.arange(r) - r / 2 + 0.5) ** 2, (np.arange(c) - c / 2 + 0.5) ** 2) / 4)
        x = profile * rng.lognormal(0.0, 0.3, (n, r, c))
        x[rng.random(x.shape) < 0.3] = 0.0
        x *= (fraction * 1000.0 * energy)[:, None, None] / x.reshape(n, -1).sum(axis=1)[:, None, None]
        layers.append(x.astype(np.float32))
    return Showers(layers, energy, geometry, None, "e+", {"seed": seed})


def tiny_lagan_showers(n: int = 40, seed: int = 0) -> Showers:
    return tiny_showers(n, seed, single_layer_geometry(25, 25))


def check_parameters(loss_and_grads, params, rng: np.random.Generator, n_directions: int = 3, h: float = 1e-6,
                     name: str = "model") -> GradcheckResult:
    """``loss_and_grads()`` -> (loss, {Parameter: grad}) at the current weights; central differences of the
    loss along random weight directions against the analytic gradient (float64 backends)."""
    _, grads = loss_and_grads()
    grads = {p: g.copy() for p, g in grads.items()}
    result = GradcheckResult(name, 0.0)
    for _ in range(n_directions):
        directions = [rng.standard_normal(p.value.shape) for p in params]
        originals = [p.value.copy() for p in params]
        values = []
        for sign in (1.0, -1.0):
            for p, orig, v in zip(params, originals, directions):
                p.value[...] = orig + sign * h * v
            values.append(loss_and_grads()[0])
        for p, orig in zip(params, originals):
            p.value[...] = orig
        numeric = (values[0] - values[1]) / (2 * h)
        analytic = sum(float((grads[p] * v).sum()) for p, v in zip(params, directions))
        result.numeric.append(numeric)
        result.analytic.append(analytic)
        result.max_rel_error = max(result.max_rel_error, relative_error(numeric, analytic))
    return result
