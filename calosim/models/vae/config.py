"""VAE configurations: the plain conditional VAE (`vae`) and a laptop-sized one with its heads (`small`),
overridable from a file.

A configuration is made of groups (calosim.models.config_groups):
    architecture   encoder and decoder widths, latent size, the decoder's output activation
    training       the loss of the plain VAE (reconstruction width, KL weight), Adam, batch size, epochs
    units          the voxels' training units (calosim.models.units.VoxelUnits)
    response, prior_response, threshold, occupancy_head, layer_energy, conditional_prior
                   what calosim adds to the plain VAE, each None when off (see the package docstring)

The flat field names of calosim before the groups (``energy_weight`` = 0 for off, ``occupancy``, ...) are still
read, so older model files and config files load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from calosim.errors import ConfigError
from calosim.models.config_groups import Group, GroupedConfig
from calosim.models.units import VoxelUnits


@dataclass(frozen=True)
class Architecture(Group):
    """Encoder Dense(hidden...) -> Dense(2 Z); decoder the widths reversed -> Dense(V) -> output_activation."""

    label: ClassVar[str] = "architecture"
    latent_dim: int = 16
    hidden: tuple[int, ...] = (400, 200)
    alpha: float = 0.2  # LeakyReLU slope
    output_activation: str = "relu"  # "relu" or "linear" (generated cells: max(cell, 0))

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(x) for x in self.hidden))
        self._require(self.latent_dim >= 1 and len(self.hidden) > 0, "latent_dim >= 1, hidden not empty")
        self._require(self.output_activation in ("relu", "linear"), "output_activation 'relu' or 'linear'")


@dataclass(frozen=True)
class Training(Group):
    """The plain VAE's loss sum (x_hat - x)^2 / (2 recon_sigma^2) + kl_weight KL, and Adam."""

    label: ClassVar[str] = "training"
    recon_sigma: float = 0.1  # training units
    kl_weight: float = 1.0
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    batch_size: int = 128
    epochs: int = 100
    energy_range: tuple[float, float] | None = None  # GeV; None: the training data's

    def __post_init__(self):
        self._check_energy_range()
        self._require(self.batch_size >= 2 and self.epochs >= 0, "batch_size >= 2, epochs >= 0")
        self._require(self.recon_sigma > 0 and self.kl_weight >= 0, "recon_sigma > 0, kl_weight >= 0")


@dataclass(frozen=True)
class ResponseTerm(Group):
    """weight * (r_hat - r)^2: the response of the reconstruction against the real shower's."""

    label: ClassVar[str] = "response"
    weight: float = 1.0

    def __post_init__(self):
        self._require(self.weight > 0, "weight must be > 0 (no group: no term)")


@dataclass(frozen=True)
class PriorResponseTerm(ResponseTerm):
    """weight * (r_prior - r)^2: the response of the decoder at a prior draw and the batch's condition."""

    label: ClassVar[str] = "prior_response"


@dataclass(frozen=True)
class Threshold(Group):
    """Generated cells below mev are set to 0 (the decoder's sparsity)."""

    label: ClassVar[str] = "threshold"
    mev: float = 0.1

    def __post_init__(self):
        self._require(self.mev > 0, "mev must be > 0 (no group: no threshold)")


@dataclass(frozen=True)
class OccupancyHead(Group):
    """Per-voxel occupancy logits beside the amounts (a hurdle likelihood); weight of their summed BCE."""

    label: ClassVar[str] = "occupancy_head"
    weight: float = 1.0

    def __post_init__(self):
        self._require(self.weight > 0, "weight must be > 0")


@dataclass(frozen=True)
class LayerEnergyHead(Group):
    """L more outputs t_l = log(E_l / E_inc + delta) of Gaussian likelihood width sigma; generation rescales
    layer l to them."""

    label: ClassVar[str] = "layer_energy"
    sigma: float = 0.01
    delta: float = 1e-3

    def __post_init__(self):
        self._require(self.sigma > 0 and self.delta > 0, "sigma > 0 and delta > 0")


@dataclass(frozen=True)
class ConditionalPrior(Group):
    """A learned prior p(z | c) = N(mu_p(c), sigma_p(c)^2): c -> Dense(hidden) -> LeakyReLU -> Dense(2 Z)."""

    label: ClassVar[str] = "conditional_prior"
    hidden: int = 32

    def __post_init__(self):
        self._require(self.hidden >= 1, "hidden >= 1")


ADDITIONS = (ResponseTerm, PriorResponseTerm, Threshold, OccupancyHead, LayerEnergyHead, ConditionalPrior)
GROUPS = {"architecture": Architecture, "training": Training, "units": VoxelUnits,
          **{g.label: g for g in ADDITIONS}}

FLAT_NAMES = {  # the flat field names before the groups: name -> (group, field or None: the name only switches)
    **{f.name: ("architecture", f.name) for f in dataclasses.fields(Architecture)},
    **{f.name: ("training", f.name) for f in dataclasses.fields(Training)},
    **{f.name: ("units", f.name) for f in dataclasses.fields(VoxelUnits)},
    "energy_weight": ("response", "weight"), "prior_energy_weight": ("prior_response", "weight"),
    "threshold_mev": ("threshold", "mev"),
    "occupancy": ("occupancy_head", None), "occupancy_weight": ("occupancy_head", "weight"),
    "layer_energy_head": ("layer_energy", None), "layer_sigma": ("layer_energy", "sigma"),
    "layer_delta": ("layer_energy", "delta"),
    "learned_prior": ("conditional_prior", None), "prior_hidden": ("conditional_prior", "hidden"),
}
SWITCHED_OFF = {"energy_weight": 0.0, "prior_energy_weight": 0.0, "threshold_mev": 0.0, "occupancy": False,
                "layer_energy_head": False, "learned_prior": False}


@dataclass(frozen=True)
class VAEConfig(GroupedConfig):
    GROUPS = GROUPS
    FIXED = ("architecture", "training", "units")
    FLAT_NAMES = FLAT_NAMES
    SWITCHED_OFF = SWITCHED_OFF

    name: str = "vae"
    architecture: Architecture = Architecture()
    training: Training = Training()
    units: VoxelUnits = VoxelUnits()
    response: ResponseTerm | None = None
    prior_response: PriorResponseTerm | None = None
    threshold: Threshold | None = None
    occupancy_head: OccupancyHead | None = None
    layer_energy: LayerEnergyHead | None = None
    conditional_prior: ConditionalPrior | None = None

    def __post_init__(self):
        linear = self.architecture.output_activation == "linear"
        if (self.occupancy_head is not None or self.layer_energy is not None) and not linear:
            raise ConfigError(f"config {self.name!r}: occupancy_head and layer_energy need the architecture's "
                              "output_activation 'linear'")


CONFIGS = {
    "vae": VAEConfig(),
    # occupancy head, learned prior and layer-energy head: on 3200 Geant4 e+ (40 epochs, ~1 min) they beat the
    # untrained state on every observable for seeds 0, 1, 2 (without them: sparsity, E_ratio_1 and the response
    # are not beaten); the response terms are then not needed
    "small": VAEConfig(
        name="small",
        architecture=Architecture(hidden=(200, 100), output_activation="linear"),
        training=Training(batch_size=64, epochs=40, recon_sigma=0.03),
        occupancy_head=OccupancyHead(),
        layer_energy=LayerEnergyHead(),
        conditional_prior=ConditionalPrior(),
    ),
    # small's heads, twice the width and latent size, 80 epochs: the shipped models' recipe (with --energy-model).
    # On 27000 Geant4 e+ (3000 validation showers, seed 0) it beat small on FPD (0.110 / 0.128), the mean and the
    # worst separation power (0.030 / 0.046, 0.16 / 0.26) but not the low-level classifier (AUC 0.985 / 0.967)
    "medium": VAEConfig(
        name="medium",
        architecture=Architecture(hidden=(400, 200), latent_dim=32, output_activation="linear"),
        training=Training(batch_size=64, epochs=80, recon_sigma=0.03),
        occupancy_head=OccupancyHead(),
        layer_energy=LayerEnergyHead(),
        conditional_prior=ConditionalPrior(),
    ),
}
