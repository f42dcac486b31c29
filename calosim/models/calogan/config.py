"""CaloGAN configurations: the paper's (`calogan`) and a laptop-sized one (`small`), overridable from a file.

A configuration holds the architecture (widths, latent size, attention) and the training defaults of
reference section 4 (learning rates, Adam betas, batch size, epochs, energy-loss weight). Every field can be
overridden from a JSON or TOML file holding a flat table of ``field = value`` (optionally under a top-level
``[model]`` table); unknown fields are an error, so a typo never passes silently.

Units: ``energy_range`` is the incident-energy range of the fake showers in GeV (None: taken from the
training data, rounded outwards to whole GeV); ``image_scale`` is the MeV per training unit (CaloGAN trains on
images divided by 1000, i.e. in GeV).
"""

from __future__ import annotations

from dataclasses import dataclass

from calosim.errors import ConfigError
from calosim.models.base import ConfigMixin


@dataclass(frozen=True)
class CaloGANConfig(ConfigMixin):
    name: str = "calogan"
    # generator (reference section 2)
    latent_dim: int = 1024
    g_dense_channels: int = 36  # Dense((R+2)(C+2) * this) -> reshape (R+2, C+2, this)
    g_conv_filters: int = 16
    g_lc_filters: int = 6
    attention: bool = True  # layer-to-layer in-painting where the layer shapes relate
    # True: the streams get [z, log(E / 100 GeV)] instead of z * E / 100 GeV, and the output images are
    # multiplied by E / 100 GeV after the final activation, so the generator draws showers per 100 GeV of
    # incident energy and the linear energy scaling is built in instead of learnt; False: the paper
    g_energy_scaled_output: bool = False
    # with g_energy_scaled_output, the latent part of the streams' input is z * (E / 100 GeV)^this: -0.5 makes the
    # noise, and so the shower-to-shower fluctuations relative to the mean, grow as 1 / sqrt(E) as a
    # calorimeter's stochastic term does; 0: z as drawn
    g_latent_energy_power: float = 0.0
    # multiplies the initial kernel of each stream's last LC2D (1.0: the paper's glorot_normal); < 1 starts the
    # generator nearer the right energy scale, so that pulling E_tot down does not push cells below the ReLU
    g_output_init_scale: float = 1.0
    # training-mode slope of the final activation: starts at g_output_leak and falls linearly to 0 (the ReLU)
    # over the first g_output_leak_forwards training-mode generator passes (3 per step with generator_steps 2),
    # so that cells pushed below zero early on still get gradients; inference always uses the ReLU. 0: the paper
    g_output_leak: float = 0.0
    g_output_leak_forwards: int = 0
    # > 0: the final activation is x^2 / (x + this) for x > 0 (calosim.layers.KneeReLU; training units, per
    # 100 GeV with g_energy_scaled_output): cells just switched on carry quadratically little energy, as the
    # many faint cells of a real shower do, while the fraction of cells > 0 stays the ReLU's; 0: the paper's ReLU
    g_output_knee: float = 0.0
    # optional generator-loss term g_sparsity_loss_weight * sum_l mean_i (h_il - t_il)^2 (calosim.losses.
    # occupancy_fraction_loss): h_il the fraction of cells > 0 of generated shower i in layer l, t_il that of the real
    # shower of the batch with the same energy; straight-through gradient through sigmoid(x / g_sparsity_tau) of
    # the cells before the final activation (training units, GeV); 0: the paper's loss
    g_sparsity_loss_weight: float = 0.0
    g_sparsity_tau: float = 1e-3
    # discriminator (reference section 3)
    d_conv_filters: int = 64
    d_lc_filters: tuple[int, int, int] = (16, 8, 8)
    mbd_kernels: int = 10
    mbd_dim: int = 10
    # both
    leaky_alpha: float = 0.3  # Keras' LeakyReLU default
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    # training (reference section 4)
    energy_loss_weight: float = 0.05
    # optional generator-loss term energy_ratio_loss_weight * mean |E_tot / E - r|, r the real batch's mean
    # response (the MAE in GeV above barely sees showers of a few GeV, whose mean response then drifts); 0: the
    # paper's loss
    energy_ratio_loss_weight: float = 0.0
    lr_d: float = 2e-5
    lr_g: float = 2e-4
    # both learning rates fall linearly over the epochs to this fraction of lr_d / lr_g at the last epoch; 1: the
    # paper's constant rates
    lr_final_fraction: float = 1.0
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 256
    epochs: int = 50
    generator_steps: int = 2
    energy_range: tuple[float, float] | None = None  # GeV; None: the training data's range
    image_scale: float = 1000.0  # MeV per training unit
    # after every epoch, before validation, set the generator's BatchNorm moving statistics to the average
    # batch statistics of this many training-mode batches of fresh (z, E) ("precise BN"; no weight updates,
    # the final activation's annealing schedule does not advance); 0: the paper's moving averages only
    bn_recalibration_batches: int = 0

    def __post_init__(self):
        if self.latent_dim < 1 or self.batch_size < 2 or self.epochs < 0 or self.generator_steps < 1:
            raise ConfigError(f"config {self.name!r}: latent_dim >= 1, batch_size >= 2 (minibatch "
                              "discrimination and batch norm need a batch), epochs >= 0, generator_steps >= 1")
        if len(self.d_lc_filters) != 3:
            raise ConfigError(f"config {self.name!r}: d_lc_filters needs three widths, got {self.d_lc_filters}")
        if self.energy_range is not None:
            lo, hi = self.energy_range
            if not 0 < lo < hi:
                raise ConfigError(f"config {self.name!r}: energy_range must be 0 < lo < hi GeV, "
                                  f"got {self.energy_range}")
        if not 0 < self.lr_final_fraction <= 1:
            raise ConfigError(f"config {self.name!r}: lr_final_fraction must be in (0, 1]")
        if self.g_output_knee < 0:
            raise ConfigError(f"config {self.name!r}: g_output_knee must be >= 0 (0: the ReLU)")
        if not self.g_output_init_scale > 0:
            raise ConfigError(f"config {self.name!r}: g_output_init_scale must be > 0")
        if not 0.0 <= self.g_output_leak < 1.0 or (self.g_output_leak > 0 and self.g_output_leak_forwards < 1):
            raise ConfigError(f"config {self.name!r}: g_output_leak must be in [0, 1), with "
                              "g_output_leak_forwards >= 1 when it is > 0")
        if (self.g_sparsity_loss_weight < 0 or not self.g_sparsity_tau > 0 or self.bn_recalibration_batches < 0
                or self.energy_ratio_loss_weight < 0):
            raise ConfigError(f"config {self.name!r}: g_sparsity_loss_weight >= 0, g_sparsity_tau > 0, "
                              "bn_recalibration_batches >= 0 and energy_ratio_loss_weight >= 0")
        if self.image_scale <= 0:
            raise ConfigError(f"config {self.name!r}: image_scale must be > 0")

    @classmethod
    def from_dict(cls, d: dict) -> CaloGANConfig:
        """As ConfigMixin.from_dict, with the tuple fields' elements as ints (widths) and floats (GeV)."""
        d = dict(d)
        if "d_lc_filters" in d:
            d["d_lc_filters"] = [int(x) for x in d["d_lc_filters"]]
        if d.get("energy_range") is not None:
            d["energy_range"] = [float(x) for x in d["energy_range"]]
        return super().from_dict(d)


CONFIGS: dict[str, CaloGANConfig] = {
    "calogan": CaloGANConfig(),
    # Same structure, narrower everywhere: ~0.52M generator and ~0.38M discriminator parameters in the CaloGAN
    # geometry. Tuned for a few hundred steps instead of the paper's ~20k: higher learning rates, batch 64 and
    # the energy term weighted 0.5 (with 0.05 the response E_tot/E_in was still 10-40% off after 6-16 epochs).
    "small": CaloGANConfig(
        name="small", latent_dim=64, g_dense_channels=8, g_conv_filters=8, g_lc_filters=4,
        d_conv_filters=16, d_lc_filters=(8, 4, 4), mbd_kernels=5, mbd_dim=5,
        lr_d=1e-4, lr_g=5e-4, batch_size=64, epochs=24, energy_loss_weight=0.5,
        # the generator draws showers per 100 GeV, scaled by E, with latent noise growing as 1 / sqrt(E) (the
        # response is then built in, and low-energy showers fluctuate more, as Geant4's do)
        g_energy_scaled_output=True, g_latent_energy_power=-0.5,
        # start near E_tot/E_in ~ 1, leak the final activation for the first ~6 epochs so that cells pushed
        # below zero can come back, and let the BatchNorm statistics follow the fast weights (momentum 0.9)
        g_output_init_scale=0.4, g_output_leak=0.3, g_output_leak_forwards=900, bn_momentum=0.9,
        # and recompute them from 20 training-mode batches after every epoch (inference then matches training)
        bn_recalibration_batches=20,
        # Geant4 showers have many cells of a few MeV: match each shower's fraction of cells > 0 to a real
        # shower's of the same energy, with a final activation that gives cells just switched on little energy;
        # and pull the response of showers of a few GeV, which the MAE in GeV hardly sees
        g_sparsity_loss_weight=30.0, g_sparsity_tau=0.02, g_output_knee=0.05, energy_ratio_loss_weight=3.0,
    ),
}
