"""WGAN-GP configurations: FastCaloGAN's (`fastcalogan`) and a laptop-sized one (`small`), overridable from a file.

A configuration is made of groups (calosim.models.config_groups):
    architecture   FastCaloGAN's networks: latent size, generator widths, critic width and depth
    training       FastCaloGAN's training: gradient penalty, critic steps, Adam, batch size, epochs
    units          the voxels' training units (calosim.models.units.VoxelUnits)
    energy_points, response, layer_energy, empty_layers
                   what calosim adds beyond FastCaloGAN, each None when off (see the package docstring)

The flat field names of calosim before the groups (``energy_weight`` = 0 for off, ``layer_energies``, ...) are
still read, so older model files and config files load.
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
    """FastCaloGAN's networks (reference section 6)."""

    label: ClassVar[str] = "architecture"
    latent_dim: int = 50
    g_hidden: tuple[int, ...] = (50, 100, 200)
    g_alpha: float = 0.2  # LeakyReLU slope of the generator's hidden layers
    d_hidden: int | None = None  # critic width; None: V (FastCaloGAN)
    d_layers: int = 3

    def __post_init__(self):
        object.__setattr__(self, "g_hidden", tuple(int(x) for x in self.g_hidden))
        self._require(self.latent_dim >= 1 and self.d_layers >= 1 and len(self.g_hidden) > 0,
                      "latent_dim >= 1, d_layers >= 1, g_hidden not empty")


@dataclass(frozen=True)
class Training(Group):
    """FastCaloGAN's training: L_D with the gradient penalty, a generator step every critic_steps."""

    label: ClassVar[str] = "training"
    gp_weight: float = 10.0
    critic_steps: int = 5
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.55
    beta2: float = 0.999
    batch_size: int = 128
    epochs: int = 100
    energy_range: tuple[float, float] | None = None  # GeV; None: the training data's

    def __post_init__(self):
        self._check_energy_range()
        self._require(self.batch_size >= 2 and self.epochs >= 0 and self.critic_steps >= 1,
                      "batch_size >= 2, epochs >= 0, critic_steps >= 1")


@dataclass(frozen=True)
class EnergyPoints(Group):
    """Each epoch visits the training data's discrete incident energies in increasing order, all the batches of
    one energy point before the next (calosim.data.dataset.energy_point_batches); continuous energies keep the
    shuffled order."""

    label: ClassVar[str] = "energy_points"


@dataclass(frozen=True)
class ResponseTerm(Group):
    """L_G += weight * mean_n |r(G(z_n, c_n)) - r_n|, r the response E_tot / E_inc, r_n the real shower's at the
    same incident energy (the critic alone leaves the total energy several per cent low)."""

    label: ClassVar[str] = "response"
    weight: float = 10.0

    def __post_init__(self):
        self._require(self.weight > 0, "weight must be > 0 (no group: no response term)")


@dataclass(frozen=True)
class LayerEnergy(Group):
    """L more generator outputs (and critic inputs) t_l = (E_l / E_inc / s_l)^power; generation rescales each
    layer to them. leak: the slope of the t outputs below 0 (0: the voxels' ReLU); scaled: s_l fitted to the
    training data's mean E_l / E_inc (model state), else 1."""

    label: ClassVar[str] = "layer_energy"
    power: float = 0.5
    leak: float = 0.0
    scaled: bool = False

    def __post_init__(self):
        self._require(0 < self.power <= 1 and 0 <= self.leak < 1, "0 < power <= 1 and 0 <= leak < 1")


@dataclass(frozen=True)
class EmptyLayers(Group):
    """L more generator outputs, logits of P(layer l is empty | E), trained by weight * BCE against the real
    showers' empty layers; generation draws the empty layers (needs layer_energy)."""

    label: ClassVar[str] = "empty_layers"
    weight: float = 1.0

    def __post_init__(self):
        self._require(self.weight > 0, "weight must be > 0")


ADDITIONS = (EnergyPoints, ResponseTerm, LayerEnergy, EmptyLayers)
GROUPS = {"architecture": Architecture, "training": Training, "units": VoxelUnits,
          **{g.label: g for g in ADDITIONS}}

FLAT_NAMES = {  # the flat field names before the groups: name -> (group, field or None: the name only switches)
    **{f.name: ("architecture", f.name) for f in dataclasses.fields(Architecture)},
    **{f.name: ("training", f.name) for f in dataclasses.fields(Training)},
    **{f.name: ("units", f.name) for f in dataclasses.fields(VoxelUnits)},
    "energy_schedule": ("energy_points", None), "energy_weight": ("response", "weight"),
    "layer_energies": ("layer_energy", None), "layer_energy_power": ("layer_energy", "power"),
    "layer_energy_leak": ("layer_energy", "leak"), "layer_energy_scaled": ("layer_energy", "scaled"),
    "layer_empty_head": ("empty_layers", None), "layer_empty_weight": ("empty_layers", "weight"),
}
SWITCHED_OFF = {"energy_schedule": False, "energy_weight": 0.0, "layer_energies": False, "layer_empty_head": False}


@dataclass(frozen=True)
class WGANGPConfig(GroupedConfig):
    GROUPS = GROUPS
    FIXED = ("architecture", "training", "units")
    FLAT_NAMES = FLAT_NAMES
    SWITCHED_OFF = SWITCHED_OFF

    name: str = "fastcalogan"
    architecture: Architecture = Architecture()
    training: Training = Training()
    units: VoxelUnits = VoxelUnits()
    energy_points: EnergyPoints | None = None
    response: ResponseTerm | None = None
    layer_energy: LayerEnergy | None = None
    empty_layers: EmptyLayers | None = None

    def __post_init__(self):
        if self.empty_layers is not None and self.layer_energy is None:
            raise ConfigError(f"config {self.name!r}: empty_layers needs layer_energy")


CONFIGS = {
    "fastcalogan": WGANGPConfig(),
    # same architecture, more generator steps per epoch on a 4000-shower file: higher learning rates; the
    # layer-energy features (scaled, with a leaky tail), the empty-layer head and the response term: on 3200
    # Geant4 e+ after 150 epochs, seeds 0-2 beat the untrained state on all 24 observables, E_tot / E_in
    # 0.988-0.996 (Geant4 0.993; 0.87 without the layer energies and the response term)
    "small": WGANGPConfig(
        name="small",
        training=Training(lr_g=2e-4, lr_d=2e-4, batch_size=64, epochs=150),
        response=ResponseTerm(weight=10.0),
        layer_energy=LayerEnergy(leak=0.1, scaled=True),
        empty_layers=EmptyLayers(),
    ),
}
