"""LAGAN configurations: the publication's (`lagan`) and a laptop-sized one (`small`), overridable from a file.

A configuration is made of groups (calosim.models.config_groups):
    architecture   the publication's networks (reference section 5): widths, latent size, classes, BatchNorm
    training       the publication's training: label flips, auxiliary weight, Adam, batch size, epochs, units
    label_smoothing, output_gain, log_input, response, mean_image
                   what calosim adds beyond the publication, each None when off

The flat field names of calosim before the groups (``real_label`` = 1 for off, ``energy_weight`` = 0 for off,
...) are still read, so older model files and config files load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from calosim.models.config_groups import Group, GroupedConfig


@dataclass(frozen=True)
class Architecture(Group):
    """The publication's networks (reference section 5)."""

    label: ClassVar[str] = "architecture"
    latent_dim: int = 200
    n_classes: int = 1  # 1 (calorimeter showers) or 2 (e.g. signal / background jets)
    g_dense_channels: int = 128
    g_conv_filters: int = 64
    g_lc_filters: int = 6
    d_conv_filters: int = 32
    d_lc_filters: int = 8
    dropout: float = 0.2
    mbd_kernels: int = 20
    mbd_dim: int = 10
    leaky_alpha: float = 0.3  # Keras' LeakyReLU default, as LAGAN used it
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3

    def __post_init__(self):
        self._require(self.latent_dim >= 1, "latent_dim must be >= 1")
        self._require(self.n_classes in (1, 2), "n_classes must be 1 or 2 (one sigmoid auxiliary output)")


@dataclass(frozen=True)
class Training(Group):
    """The publication's training: BCE(real/fake) + aux_weight BCE(aux), label_flip of the D targets flipped."""

    label: ClassVar[str] = "training"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 100
    epochs: int = 50
    label_flip: float = 0.05
    aux_weight: float = 1.0
    image_scale: float = 1000.0  # MeV per training unit
    energy_range: tuple[float, float] | None = None  # GeV; None: the training data's

    def __post_init__(self):
        self._check_energy_range()
        self._require(self.batch_size >= 2 and self.epochs >= 0, "batch_size >= 2, epochs >= 0")
        self._require(0.0 <= self.label_flip < 0.5 and self.image_scale > 0,
                      "0 <= label_flip < 0.5 and image_scale > 0")


@dataclass(frozen=True)
class LabelSmoothing(Group):
    """One-sided label smoothing: the discriminator's target for real images is real_label instead of 1."""

    label: ClassVar[str] = "label_smoothing"
    real_label: float = 0.9

    def __post_init__(self):
        self._require(0.5 < self.real_label < 1.0, "0.5 < real_label < 1 (no group: 1)")


@dataclass(frozen=True)
class OutputGain(Group):
    """The generator's last LC2D kernel is initialised times gain (a start near the data's scale)."""

    label: ClassVar[str] = "output_gain"
    gain: float = 0.1

    def __post_init__(self):
        self._require(self.gain > 0, "gain must be > 0")


@dataclass(frozen=True)
class LogInput(Group):
    """The discriminator's stream sees log(1 + image / epsilon_mev) (the response feature stays linear)."""

    label: ClassVar[str] = "log_input"
    epsilon_mev: float = 1.0

    def __post_init__(self):
        self._require(self.epsilon_mev > 0, "epsilon_mev must be > 0")


@dataclass(frozen=True)
class ResponseTerm(Group):
    """Generator only: weight * mean |sum(fake) - sum(real)| / E (LAGANTrainer.energy_loss)."""

    label: ClassVar[str] = "response"
    weight: float = 10.0

    def __post_init__(self):
        self._require(self.weight > 0, "weight must be > 0")


@dataclass(frozen=True)
class MeanImageTerm(Group):
    """Generator only: weight * the mean-image feature matching (LAGANTrainer.mean_image_loss)."""

    label: ClassVar[str] = "mean_image"
    weight: float = 10.0

    def __post_init__(self):
        self._require(self.weight > 0, "weight must be > 0")


ADDITIONS = (LabelSmoothing, OutputGain, LogInput, ResponseTerm, MeanImageTerm)
GROUPS = {"architecture": Architecture, "training": Training, **{g.label: g for g in ADDITIONS}}

FLAT_NAMES = {  # the flat field names before the groups: name -> (group, field)
    **{f.name: ("architecture", f.name) for f in dataclasses.fields(Architecture)},
    **{f.name: ("training", f.name) for f in dataclasses.fields(Training)},
    "real_label": ("label_smoothing", "real_label"), "g_output_gain": ("output_gain", "gain"),
    "d_log_epsilon_mev": ("log_input", "epsilon_mev"), "energy_weight": ("response", "weight"),
    "mean_image_weight": ("mean_image", "weight"),
}
SWITCHED_OFF = {"real_label": 1.0, "g_output_gain": 1.0, "d_log_epsilon_mev": 0.0, "energy_weight": 0.0,
                "mean_image_weight": 0.0}


@dataclass(frozen=True)
class LAGANConfig(GroupedConfig):
    GROUPS = GROUPS
    FLAT_NAMES = FLAT_NAMES
    SWITCHED_OFF = SWITCHED_OFF

    name: str = "lagan"
    architecture: Architecture = Architecture()
    training: Training = Training()
    label_smoothing: LabelSmoothing | None = None
    output_gain: OutputGain | None = None
    log_input: LogInput | None = None
    response: ResponseTerm | None = None
    mean_image: MeanImageTerm | None = None


CONFIGS = {
    "lagan": LAGANConfig(),
    # log input for D and the mean-image term: on CaloGAN's layer 1 padded to 25 x 25 (3200 Geant4 e+, 15
    # epochs) the lateral widths and centroids beat the untrained state for seeds 0 and 1 (without: not)
    "small": LAGANConfig(
        name="small",
        architecture=Architecture(latent_dim=32, g_dense_channels=16, g_conv_filters=8, g_lc_filters=4,
                                  d_conv_filters=8, d_lc_filters=4, mbd_kernels=5, mbd_dim=5, bn_momentum=0.9),
        training=Training(batch_size=50, epochs=15, lr_d=5e-5),
        label_smoothing=LabelSmoothing(real_label=0.9),
        output_gain=OutputGain(gain=0.1),
        log_input=LogInput(epsilon_mev=1.0),
        response=ResponseTerm(weight=10.0),
        mean_image=MeanImageTerm(weight=10.0),
    ),
}
