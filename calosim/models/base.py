"""What the dense and LAGAN model types share: config (de)serialisation, the energy conditioning transform and
the model interface the trainer, the model files and ``calosim generate`` rely on.

Units: incident energies E in GeV (N,); generated layer images in MeV; the conditioning transform maps E to
c = log(E / E_min) / log(E_max / E_min) (0 at E_min, 1 at E_max) with (E_min, E_max) = ``energy_range``,
stored with the model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

import numpy as np

from calosim.errors import ConfigError, TrainingError


class ConfigMixin:
    """to_dict / from_dict / replace for frozen dataclass configs; tuple fields travel as JSON lists and
    unknown fields are an error (a typo never passes silently)."""

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        try:
            return cls(**d)
        except TypeError as exc:
            raise ConfigError(f"bad config: {exc}") from None

    def replace(self, **changes):
        return type(self).from_dict({**self.to_dict(), **changes})

    def _check_common(self) -> None:
        if self.latent_dim < 1 or self.batch_size < 2 or self.epochs < 0:
            raise ConfigError(f"config {self.name!r}: latent_dim >= 1, batch_size >= 2, epochs >= 0")
        if self.energy_range is not None:
            lo, hi = self.energy_range
            if not 0 < lo < hi:
                raise ConfigError(f"config {self.name!r}: energy_range must be 0 < lo < hi GeV, "
                                  f"got {self.energy_range}")


VOXEL_TRANSFORMS = ("fraction", "log")


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


class ShowerModel:
    """Interface of every model type (CaloGAN keeps its own class with the same members).

    model_type    name in the registry ("wgan-gp", "vae", "lagan"), stored in the model file
    config        the model type's frozen config (to_dict / from_dict)
    geometry      calosim.geometry.Geometry of the showers it generates
    networks()    {"generator": Layer, "critic": Layer, ...}: what a model file stores, in order
    generate(z, energy, labels=None, training=False) -> [(N, R_l, C_l)] MeV backend arrays
    """

    model_type = "base"

    def __init__(self, config, geometry, backend, particle: str = "unknown", energy_range=(1.0, 100.0)):
        self.config = config
        self.geometry = geometry
        self.backend = backend
        self.particle = particle
        self.energy_range = (float(energy_range[0]), float(energy_range[1]))
        self.attrs: dict = {}

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def networks(self) -> dict:
        raise NotImplementedError

    def parameters(self):
        return [p for net in self.networks().values() for p in net.parameters()]

    def condition(self, energy_gev):
        """(N, 1) conditioning input for incident energies (N,) GeV (backend arrays)."""
        return energy_condition(energy_gev, self.energy_range, self.backend.xp)

    def sample_latent(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Latent vectors (n, Z) for ``generate`` (standard normal)."""
        return rng.standard_normal((n, self.latent_dim))

    def sample_labels(self, rng: np.random.Generator, n: int):
        """Class labels for ``generate`` (None for unlabelled model types)."""
        return None

    def generate(self, z, energy, labels=None, training: bool = False) -> list:
        raise NotImplementedError


def latent_seeded_rng(z, backend) -> np.random.Generator:
    """A Generator seeded by the bytes of the latent vectors z: the Bernoulli draws of a generation (which
    cells or layers are empty) are then as reproducible as the latent draws they go with."""
    digest = hashlib.blake2b(np.ascontiguousarray(backend.to_numpy(z)).tobytes(), digest_size=16)
    return np.random.default_rng(int.from_bytes(digest.digest(), "little"))


def check_unique_names(networks: dict) -> None:
    for net in networks.values():
        names = [p.name for p in net.parameters()]
        if len(set(names)) != len(names):
            raise AssertionError(f"{net.name}: parameter names are not unique")


class LossNotFinite(TrainingError):
    """A NaN or infinite loss: the trainer stops before the bad step is applied."""


def check_finite(value: float, what: str) -> None:
    if not math.isfinite(value):
        raise LossNotFinite(f"the {what} loss is {value}")
