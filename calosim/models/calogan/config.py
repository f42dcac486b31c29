"""CaloGAN configurations: the paper's (`calogan`) and a laptop-sized one (`small`), overridable from a file.

A configuration is made of groups:
    architecture   the published networks (reference sections 2-3): widths, latent size, attention, BatchNorm
    training       the paper's training (section 4): loss weight, Adam, batch size, epochs, units
    energy_scaled_output, output_start, output_knee, occupancy, energy_ratio, lr_decay, precise_bn
                   what calosim adds beyond the paper (calosim.models.calogan.additions), each None when off

A file of overrides (JSON or TOML, optionally under a top-level ``model`` table) holds tables per group, e.g.

    [training]
    lr_g = 1e-4
    [occupancy]          # switches the group on (missing fields take the group's defaults) ...
    weight = 10.0
    lr_decay = false     # ... or off (JSON: null or false)

The flat field names of calosim before the groups (``lr_g``, ``g_sparsity_loss_weight`` = 0 for off, ...) are
still read, so older model files and config files load. Unknown fields are an error, so a typo never passes
silently.

Units: ``energy_range`` is the incident-energy range of the fake showers in GeV (None: taken from the training
data, rounded outwards to whole GeV); ``image_scale`` is the MeV per training unit (CaloGAN trains on images
divided by 1000, i.e. in GeV).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from calosim.models.calogan.additions import (
    ADDITIONS,
    EnergyRatioTerm,
    EnergyScaledOutput,
    LearningRateDecay,
    OccupancyTerm,
    OutputKnee,
    OutputStart,
    PaperEnergyInput,
    PreciseBatchNorm,
)
from calosim.models.config_groups import Group, GroupedConfig


@dataclass(frozen=True)
class Architecture(Group):
    """The published networks (reference sections 2-3)."""

    label = "architecture"
    latent_dim: int = 1024
    g_dense_channels: int = 36  # Dense((R+2)(C+2) * this) -> reshape (R+2, C+2, this)
    g_conv_filters: int = 16
    g_lc_filters: int = 6
    attention: bool = True  # layer-to-layer in-painting where the layer shapes relate
    d_conv_filters: int = 64
    d_lc_filters: tuple[int, int, int] = (16, 8, 8)
    mbd_kernels: int = 10
    mbd_dim: int = 10
    leaky_alpha: float = 0.3  # Keras' LeakyReLU default
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3

    def __post_init__(self):
        object.__setattr__(self, "d_lc_filters", tuple(int(x) for x in self.d_lc_filters))
        self._require(self.latent_dim >= 1, "latent_dim must be >= 1")
        self._require(len(self.d_lc_filters) == 3, f"d_lc_filters needs three widths, got {self.d_lc_filters}")


@dataclass(frozen=True)
class Training(Group):
    """The paper's training (reference section 4)."""

    label = "training"
    energy_loss_weight: float = 0.05
    lr_d: float = 2e-5
    lr_g: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 256
    epochs: int = 50
    generator_steps: int = 2
    energy_range: tuple[float, float] | None = None  # GeV; None: the training data's range
    image_scale: float = 1000.0  # MeV per training unit

    def __post_init__(self):
        self._check_energy_range()
        self._require(self.batch_size >= 2 and self.epochs >= 0 and self.generator_steps >= 1,
                      "batch_size >= 2 (minibatch discrimination and batch norm need a batch), epochs >= 0, "
                      "generator_steps >= 1")
        self._require(self.image_scale > 0, "image_scale must be > 0")


GROUPS = {"architecture": Architecture, "training": Training, **{g.label: g for g in ADDITIONS}}

# The flat field names before the groups: name -> (group, field). An addition's group is off when its
# "switch" field has the value in SWITCHED_OFF.
FLAT_NAMES = {
    **{f.name: ("architecture", f.name) for f in dataclasses.fields(Architecture)},
    **{f.name: ("training", f.name) for f in dataclasses.fields(Training)},
    "g_energy_scaled_output": ("energy_scaled_output", None), "g_latent_energy_power": ("energy_scaled_output",
                                                                                          "latent_power"),
    "g_output_init_scale": ("output_start", "init_scale"), "g_output_leak": ("output_start", "leak"),
    "g_output_leak_forwards": ("output_start", "leak_forwards"), "g_output_knee": ("output_knee", "knee"),
    "g_sparsity_loss_weight": ("occupancy", "weight"), "g_sparsity_tau": ("occupancy", "tau"),
    "energy_ratio_loss_weight": ("energy_ratio", "weight"), "lr_final_fraction": ("lr_decay", "final_fraction"),
    "bn_recalibration_batches": ("precise_bn", "batches"),
}
SWITCHED_OFF = {"g_energy_scaled_output": False, "g_output_knee": 0.0, "g_sparsity_loss_weight": 0.0,
                "energy_ratio_loss_weight": 0.0, "lr_final_fraction": 1.0, "bn_recalibration_batches": 0}


@dataclass(frozen=True)
class CaloGANConfig(GroupedConfig):
    GROUPS = GROUPS
    FLAT_NAMES = FLAT_NAMES
    SWITCHED_OFF = SWITCHED_OFF
    NEUTRAL = {"g_output_init_scale": 1.0, "g_output_leak": 0.0}

    name: str = "calogan"
    architecture: Architecture = Architecture()
    training: Training = Training()
    energy_scaled_output: EnergyScaledOutput | None = None
    output_start: OutputStart | None = None
    output_knee: OutputKnee | None = None
    occupancy: OccupancyTerm | None = None
    energy_ratio: EnergyRatioTerm | None = None
    lr_decay: LearningRateDecay | None = None
    precise_bn: PreciseBatchNorm | None = None

    @property
    def energy_input(self):
        """How the generator takes the incident energy: energy_scaled_output, or the paper's h = z E / 100."""
        return self.energy_scaled_output or PaperEnergyInput()

    def generator_terms(self) -> list:
        """The active generator-loss terms beyond the paper's, in the order they are summed."""
        return [t for t in (self.energy_ratio, self.occupancy) if t is not None]


CONFIGS: dict[str, CaloGANConfig] = {
    "calogan": CaloGANConfig(),
    # Same structure, narrower everywhere: ~0.52M generator and ~0.38M discriminator parameters in the CaloGAN
    # geometry. Tuned for a few hundred steps instead of the paper's ~20k: higher learning rates, batch 64, the
    # energy term weighted 0.5 (with 0.05 the response E_tot/E_in was still 10-40% off after 6-16 epochs) and
    # BatchNorm momentum 0.9 (the statistics follow the fast weights).
    "small": CaloGANConfig(
        name="small",
        architecture=Architecture(latent_dim=64, g_dense_channels=8, g_conv_filters=8, g_lc_filters=4,
                                  d_conv_filters=16, d_lc_filters=(8, 4, 4), mbd_kernels=5, mbd_dim=5,
                                  bn_momentum=0.9),
        training=Training(lr_d=1e-4, lr_g=5e-4, batch_size=64, epochs=24, energy_loss_weight=0.5),
        # the response built in; low-energy showers fluctuate more, as Geant4's do
        energy_scaled_output=EnergyScaledOutput(latent_power=-0.5),
        # start near E_tot/E_in ~ 1; leak the final activation for the first ~6 epochs
        output_start=OutputStart(init_scale=0.4, leak=0.3, leak_forwards=900),
        # Geant4 showers have many cells of a few MeV: match each shower's fraction of cells > 0 to a real
        # shower's of the same energy, with a final activation that gives cells just switched on little energy
        output_knee=OutputKnee(knee=0.05),
        occupancy=OccupancyTerm(weight=30.0, tau=0.02),
        # pull the response of showers of a few GeV, which the MAE in GeV hardly sees
        energy_ratio=EnergyRatioTerm(weight=3.0),
        # inference matches training: BatchNorm statistics from 20 training-mode batches after every epoch
        precise_bn=PreciseBatchNorm(batches=20),
    ),
}
