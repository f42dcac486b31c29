"""What calosim adds to the paper's CaloGAN, one group each: its fields, their validation and what it does.

A configuration (calosim.models.calogan.config) holds each group or None (the paper's behaviour). Groups that
change the generator are asked by generator.py where they act (the energy input, the start of training, the
final activation); the generator-loss terms are composed by training.py through one interface
(:class:`GeneratorTerm`); the learning-rate decay and precise BN run between epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from calosim.losses import mean_absolute_error, occupancy_fraction_loss
from calosim.models.config_groups import Group


class PaperEnergyInput:
    """The paper's energy conditioning: the streams' input is h = z * s, s = E / 100 GeV (N, 1)."""

    extra_inputs = 0

    def stream_input(self, z, s, xp):
        return z * s

    def latent_gradient(self, dh, s, latent_dim: int):
        return dh * s

    def scale_output(self, images, s):
        return images


@dataclass(frozen=True)
class EnergyScaledOutput(Group):
    """The generator draws showers per 100 GeV and multiplies its output images by s = E / 100 GeV; the streams
    get h = [z s^latent_power, log s]. latent_power -0.5 makes the noise, and so the shower-to-shower
    fluctuations relative to the mean, grow as 1 / sqrt(E) as a calorimeter's stochastic term does."""

    label: ClassVar[str] = "energy_scaled_output"
    extra_inputs: ClassVar[int] = 1
    latent_power: float = 0.0

    def latent_scale(self, s):
        """dh/dz: s^latent_power (1 for power 0)."""
        return s ** self.latent_power if self.latent_power else 1.0

    def stream_input(self, z, s, xp):
        return xp.concatenate([z * self.latent_scale(s), xp.log(s)], axis=1)

    def latent_gradient(self, dh, s, latent_dim: int):
        return dh[:, :latent_dim] * self.latent_scale(s)

    def scale_output(self, images, s):
        """Images (N, R, C, 1) times s (N, 1) (the same factor serves the gradients on the way back)."""
        return [x * s.reshape(-1, 1, 1, 1) for x in images]


@dataclass(frozen=True)
class OutputStart(Group):
    """Start near the right energy scale and let cells pushed below zero early on come back: each stream's last
    LC2D kernel is drawn as the paper's and multiplied by init_scale; the final activation leaks with a slope
    that falls linearly from leak to 0 over the first leak_forwards training-mode generator passes (3 per step
    with generator_steps 2); inference always uses the unleaked activation."""

    label: ClassVar[str] = "output_start"
    init_scale: float = 1.0
    leak: float = 0.0
    leak_forwards: int = 0

    def __post_init__(self):
        self._require(self.init_scale > 0, "init_scale must be > 0")
        self._require(0.0 <= self.leak < 1.0 and (self.leak == 0 or self.leak_forwards >= 1),
                      "leak must be in [0, 1), with leak_forwards >= 1 when it is > 0")


@dataclass(frozen=True)
class OutputKnee(Group):
    """The final activation is x^2 / (x + knee) for x > 0 (calosim.layers.KneeReLU; training units, per 100 GeV
    with energy_scaled_output): cells just switched on carry quadratically little energy, as the many faint cells
    of a real shower do, while the fraction of cells > 0 stays the ReLU's."""

    label: ClassVar[str] = "output_knee"
    knee: float = 0.05

    def __post_init__(self):
        self._require(self.knee > 0, "knee must be > 0 (no group: the paper's ReLU)")


class GeneratorTerm(Group):
    """A term of the generator loss beyond the paper's BCE + energy MAE. Per training iteration
    ``batch_target`` computes what the term compares with from the real batch; per generator step the term
    acts on the generated cell sums (GeV, (N,)) or on the images before the final activation."""

    loss_name: ClassVar[str] = ""
    uses_real_energies: ClassVar[bool] = False  # the generator steps take E from the real batch

    def batch_target(self, real_images, real_energy, xp):
        raise NotImplementedError

    def cell_sums_term(self, sums, energy, target, xp):
        """(value, weighted d loss / d sums (N,)), or None if the term does not act on the sums."""
        return None

    def pre_activation_term(self, pre_activation, target, xp):
        """(value, weighted [d loss / d x_l]), or None if the term does not act on the pre-activation images."""
        return None


@dataclass(frozen=True)
class EnergyRatioTerm(GeneratorTerm):
    """weight * mean |E_tot / E - r|, r the real batch's mean response: the MAE in GeV barely sees showers of a
    few GeV, whose mean response then drifts."""

    label: ClassVar[str] = "energy_ratio"
    loss_name: ClassVar[str] = "g_energy_ratio_mae"
    weight: float = 3.0

    def __post_init__(self):
        self._require(self.weight > 0, "weight must be > 0")

    def batch_target(self, real_images, real_energy, xp):
        n = real_energy.shape[0]
        real_sums = sum(x.reshape(n, -1).sum(axis=1) for x in real_images)
        return float((real_sums / real_energy).mean())

    def cell_sums_term(self, sums, energy, target, xp):
        value, d_ratio = mean_absolute_error(sums / energy, xp.full_like(sums, target), xp)
        return value, self.weight * d_ratio / energy


@dataclass(frozen=True)
class OccupancyTerm(GeneratorTerm):
    """weight * sum_l mean_i (h_il - t_il)^2 (calosim.losses.occupancy_fraction_loss): h_il the fraction of cells
    > 0 of generated shower i in layer l, t_il that of the real shower of the batch with the same energy (so the
    generator steps take the real energies); straight-through gradient through sigmoid(x / tau) of the cells
    before the final activation (training units, GeV)."""

    label: ClassVar[str] = "occupancy"
    loss_name: ClassVar[str] = "g_occupancy"
    uses_real_energies: ClassVar[bool] = True
    weight: float = 30.0
    tau: float = 0.02

    def __post_init__(self):
        self._require(self.weight > 0 and self.tau > 0, "weight > 0 and tau > 0")

    def batch_target(self, real_images, real_energy, xp):
        n = real_energy.shape[0]
        return xp.stack([(x.reshape(n, -1) > 0).mean(axis=1) for x in real_images], axis=1)

    def pre_activation_term(self, pre_activation, target, xp):
        value, d_pre = occupancy_fraction_loss(pre_activation, target, self.tau, xp)
        return value, [self.weight * d for d in d_pre]


@dataclass(frozen=True)
class LearningRateDecay(Group):
    """Both learning rates fall linearly from the configured ones at the first epoch to final_fraction of them
    at the last (a function of the epoch alone, so a resumed run continues the schedule)."""

    label: ClassVar[str] = "lr_decay"
    final_fraction: float = 0.3

    def __post_init__(self):
        self._require(0 < self.final_fraction <= 1, "final_fraction must be in (0, 1]")

    def factor(self, epoch: int, epochs: int) -> float:
        progress = (epoch - 1) / (epochs - 1) if epochs > 1 else 0.0
        return 1.0 - (1.0 - self.final_fraction) * progress


@dataclass(frozen=True)
class PreciseBatchNorm(Group):
    """After every epoch, before validation, the generator's BatchNorm moving statistics become the average
    batch statistics of ``batches`` training-mode batches of fresh (z, E) ("precise BN"; no weight updates, the
    output leak's schedule does not advance), so that inference matches training."""

    label: ClassVar[str] = "precise_bn"
    batches: int = 20

    def __post_init__(self):
        self._require(self.batches >= 1, "batches must be >= 1")


ADDITIONS = (EnergyScaledOutput, OutputStart, OutputKnee, OccupancyTerm, EnergyRatioTerm, LearningRateDecay,
             PreciseBatchNorm)
