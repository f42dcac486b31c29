"""Units and conditioning shared by the model types: the voxel transforms of the dense models, the energy
condition, per-layer sums, and the seeding of a generation's own random draws.

Units: incident energies E in GeV (N,); cells in MeV; the conditioning transform maps E to
c = log(E / E_min) / log(E_max / E_min) (0 at E_min, 1 at E_max) with (E_min, E_max) = ``energy_range``,
stored with the model.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from calosim.models.config_groups import Group

CONDITIONING = "c = log(E / energy_range[0]) / log(energy_range[1] / energy_range[0]), E in GeV"
VOXEL_TRANSFORMS = ("fraction", "log")


@dataclass(frozen=True)
class VoxelUnits(Group):
    """The training units of the dense models' voxels (the ``config`` of the functions below): "log" or
    "fraction", with their scales."""

    label: ClassVar[str] = "units"
    transform: str = "log"
    voxel_scale: float = 20.0  # "fraction": x = cell / E_inc * this
    log_epsilon_mev: float = 0.1  # "log": x = log(1 + cell / this) / log_scale
    log_scale: float = 10.0

    def __post_init__(self):
        self._require(self.transform in VOXEL_TRANSFORMS, f"transform must be one of {VOXEL_TRANSFORMS}")
        self._require(self.voxel_scale > 0 and self.log_epsilon_mev > 0 and self.log_scale > 0,
                      "voxel_scale > 0, log_epsilon_mev > 0, log_scale > 0")


def voxels_to_training(flat_mev: np.ndarray, energy_gev: np.ndarray, config) -> np.ndarray:
    """Flattened cells (N, V) MeV and E (N,) GeV -> training units (N, V) (NumPy float64), by
    ``config.transform``:
        "fraction": x = cell / E_inc (both MeV) * voxel_scale
        "log":      x = log(1 + cell / log_epsilon_mev) / log_scale     (E_inc only enters as the condition)
    Zero cells stay 0 in both, so a ReLU output can make exact zeros."""
    flat = np.asarray(flat_mev, np.float64)
    if config.transform == "log":
        return np.log1p(flat / config.log_epsilon_mev) / config.log_scale
    return flat * (config.voxel_scale / (1000.0 * np.asarray(energy_gev, np.float64)))[:, None]


def training_to_voxels(x, energy_gev, config, xp):
    """The inverse of ``voxels_to_training`` on backend arrays: x (N, V), E (N,) GeV -> cells (N, V) MeV.
    "log": a cell never exceeds the incident energy (the exponential would otherwise turn a generator outlier
    into an unphysical deposit)."""
    if config.transform == "log":
        cap = (1000.0 * energy_gev).reshape(-1, 1)
        return xp.minimum(config.log_epsilon_mev * xp.expm1(xp.minimum(x * config.log_scale, 50.0)), cap)
    return x * (1000.0 * energy_gev / config.voxel_scale).reshape(-1, 1)


def layer_sums(layers_mev, n: int) -> np.ndarray:
    """(N, L) float64 MeV: the cell sum of each per-layer (N, R, C) array, for n = N showers."""
    return np.stack([np.asarray(x, np.float64).reshape(n, -1).sum(axis=1) for x in layers_mev], axis=1)


def voxel_fractions(x, energy_gev, config, xp):
    """cell (MeV) / E_inc (MeV) per voxel (N, V) for x (N, V) training units (negative x: an empty cell, as the
    generated max(cell, 0)), and its derivative by x (N, V); the inverse transform of ``training_to_voxels``,
    zero derivative where its cap binds. The response of a shower is the row sum."""
    e_mev = (1000.0 * energy_gev).reshape(-1, 1)
    positive = x > 0
    x = xp.maximum(x, 0.0)
    if config.transform == "log":
        u = xp.minimum(x * config.log_scale, 50.0)
        raw = config.log_epsilon_mev * xp.expm1(u)
        cells = xp.minimum(raw, e_mev)
        grad = xp.where((raw < e_mev) & (x * config.log_scale < 50.0),
                        config.log_epsilon_mev * config.log_scale * xp.exp(u), 0.0) / e_mev
    else:
        cells = x * (e_mev / config.voxel_scale)
        grad = xp.ones_like(x) / config.voxel_scale
    return cells / e_mev, (grad * positive).astype(x.dtype)


def energy_condition(energy_gev, energy_range, xp):
    """c = log(E / E_min) / log(E_max / E_min) as an (N, 1) array (same dtype as ``energy_gev``)."""
    lo, hi = energy_range
    return (xp.log(energy_gev / lo) / math.log(hi / lo)).reshape(-1, 1)


def latent_seeded_rng(z, backend) -> np.random.Generator:
    """A Generator seeded by the bytes of the latent vectors z: the Bernoulli draws of a generation (which
    cells or layers are empty) are then as reproducible as the latent draws they go with."""
    digest = hashlib.blake2b(np.ascontiguousarray(backend.to_numpy(z)).tobytes(), digest_size=16)
    return np.random.default_rng(int.from_bytes(digest.digest(), "little"))
