"""A conditional variational autoencoder of dense layers on flattened voxels (the FastCaloGAN team's VAE idea).

Notation: N batch, V voxels, Z latent size, c (N, 1) the condition log(E / E_min) / log(E_max / E_min).
Training units as the WGAN-GP's: x = voxel energy / incident energy (MeV / MeV) * ``voxel_scale``.

Encoder  q(z | x, c): concat[x (N, V), c] -> Dense(h_1) -> LeakyReLU -> ... -> Dense(h_k) -> LeakyReLU
                      -> Dense(2 Z) = [mu, log sigma^2]                                  (widths: config.hidden)
Decoder  p(x | z, c): concat[z (N, Z), c] -> Dense(h_k) -> LeakyReLU -> ... -> Dense(h_1) -> LeakyReLU
                      -> Dense(V) -> ReLU (non-negative energies)
Reparameterisation: z = mu + exp(log sigma^2 / 2) * eps, eps ~ N(0, 1); its gradient
    dL/dmu = dL/dz,  dL/dlog sigma^2 = dL/dz * eps * exp(log sigma^2 / 2) / 2.
Loss (mean over the batch):
    L = sum_v (x_hat_v - x_v)^2 / (2 recon_sigma^2)  +  kl_weight * KL  +  energy_weight * (r_hat - r)^2,
    KL = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)        (against the N(0, 1) prior)
    r = sum_v cell_v / E_inc, the response, with cells = training_to_voxels(x) in MeV (the same for x_hat):
    the MSE on log-transformed cells alone under-estimates the summed energy (errors of a log average out,
    those of the energy do not), which the response term corrects. Its gradient is taken through the
    inverse transform (zero where the cell cap binds). With prior_energy_weight > 0 the loss also has
    prior_energy_weight * (r_prior - r)^2, r_prior the response of the decoder at z ~ N(0, 1) (the generation
    path) and the batch's condition: the reconstruction path alone leaves the prior's decodes free to carry
    another energy when the posterior does not cover the prior (this term trains the decoder only).
i.e. a Gaussian likelihood of fixed width ``recon_sigma`` (in training units) on the normalised voxels; the
MSE keeps the loss defined for exact zeros, which a BCE on fractions would too but with a worse scale for
voxels far below 1. Generation samples z from the prior N(0, 1) and runs the decoder alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calosim.errors import ConfigError
from calosim.layers import Dense, LeakyReLU, ReLU, Sequential
from calosim.models.base import (
    VOXEL_TRANSFORMS,
    ConfigMixin,
    ShowerModel,
    check_finite,
    check_unique_names,
    training_to_voxels,
    voxels_to_training,
)
from calosim.optim import Adam


@dataclass(frozen=True)
class VAEConfig(ConfigMixin):
    name: str = "vae"
    latent_dim: int = 16
    hidden: tuple[int, ...] = (400, 200)
    alpha: float = 0.2
    recon_sigma: float = 0.1  # training units
    kl_weight: float = 1.0
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    batch_size: int = 128
    epochs: int = 100
    transform: str = "log"  # training units: "log" or "fraction" (calosim.models.base.voxels_to_training)
    voxel_scale: float = 20.0  # "fraction": x = cell / E_inc * this
    log_epsilon_mev: float = 0.1  # "log": x = log(1 + cell / this) / log_scale
    log_scale: float = 10.0
    energy_weight: float = 0.0  # weight of the squared response error (r_hat - r)^2 in the loss
    prior_energy_weight: float = 0.0  # the same for decodes of z drawn from the prior
    threshold_mev: float = 0.0  # generated cells below this are set to 0 (the decoder's sparsity)
    output_activation: str = "relu"  # "relu" or "linear" (generated cells: max(cell, 0), then threshold_mev)
    energy_range: tuple[float, float] | None = None

    def __post_init__(self):
        self._check_common()
        if self.transform not in VOXEL_TRANSFORMS or self.log_epsilon_mev <= 0 or self.log_scale <= 0:
            raise ConfigError(f"config {self.name!r}: transform one of {VOXEL_TRANSFORMS}, log_epsilon_mev > 0, "
                              "log_scale > 0")
        if self.output_activation not in ("relu", "linear"):
            raise ConfigError(f"config {self.name!r}: output_activation 'relu' or 'linear'")
        if self.energy_weight < 0 or self.prior_energy_weight < 0 or self.threshold_mev < 0:
            raise ConfigError(f"config {self.name!r}: energy_weight >= 0, threshold_mev >= 0")
        if not self.hidden or self.recon_sigma <= 0 or self.kl_weight < 0 or self.voxel_scale <= 0:
            raise ConfigError(f"config {self.name!r}: hidden not empty, recon_sigma > 0, kl_weight >= 0, "
                              "voxel_scale > 0")


CONFIGS = {"vae": VAEConfig(),
           "small": VAEConfig(name="small", hidden=(200, 100), batch_size=64, epochs=40, energy_weight=100.0,
                              prior_energy_weight=100.0, output_activation="linear")}


def reparameterise(mu, logvar, eps, xp):
    """z = mu + exp(logvar / 2) * eps; returns (z, sigma)."""
    sigma = xp.exp(0.5 * logvar)
    return mu + sigma * eps, sigma


def kl_divergence(mu, logvar, xp):
    """Per-sample KL(N(mu, sigma^2) || N(0, 1)) (N,) and its gradients (d/dmu, d/dlogvar) per sample."""
    var = xp.exp(logvar)
    kl = -0.5 * (1.0 + logvar - mu * mu - var).sum(axis=1)
    return kl, mu, 0.5 * (var - 1.0)


def reparameterise_backward(dz, sigma, eps):
    """(dL/dmu, dL/dlogvar) from dL/dz through z = mu + sigma * eps, sigma = exp(logvar / 2)."""
    return dz, dz * eps * sigma * 0.5


class VAE(ShowerModel):
    model_type = "vae"

    def __init__(self, config: VAEConfig, geometry, encoder: Sequential, decoder: Sequential, backend,
                 particle="unknown", energy_range=(1.0, 100.0)):
        super().__init__(config, geometry, backend, particle, energy_range)
        self.encoder = encoder
        self.decoder = decoder

    @classmethod
    def build(cls, config: VAEConfig, geometry, backend, rng: np.random.Generator, particle="unknown",
              energy_range=(1.0, 100.0)) -> VAE:
        v, z = geometry.n_cells, config.latent_dim
        layers = []
        for width in config.hidden:
            layers += [Dense(width, kernel_init="he_uniform"), LeakyReLU(config.alpha)]
        encoder = Sequential([*layers, Dense(2 * z)], name="encoder")
        encoder.build((v + 1,), backend, rng)
        layers = []
        for width in reversed(config.hidden):
            layers += [Dense(width, kernel_init="he_uniform"), LeakyReLU(config.alpha)]
        out = [ReLU()] if config.output_activation == "relu" else []
        decoder = Sequential([*layers, Dense(v), *out], name="decoder")
        decoder.build((z + 1,), backend, rng)
        model = cls(config, geometry, encoder, decoder, backend, particle, energy_range)
        check_unique_names(model.networks())
        return model

    def networks(self) -> dict:
        return {"encoder": self.encoder, "decoder": self.decoder}

    def to_training(self, layers_mev, energy_gev):
        """Per-layer (N, R, C) MeV (NumPy) and E (N,) GeV -> x (N, V) training units (backend array)."""
        flat = self.geometry.flatten([np.asarray(x, np.float64) for x in layers_mev])
        return self.backend.asarray(voxels_to_training(flat, energy_gev, self.config))

    def to_layers(self, x, energy_gev) -> list:
        xp = self.backend.xp
        cells = xp.maximum(training_to_voxels(x, energy_gev, self.config, xp), 0.0)
        if self.config.threshold_mev > 0:
            cells = xp.where(cells < self.config.threshold_mev, 0.0, cells).astype(cells.dtype)
        return self.geometry.unflatten(cells)

    def response_and_gradient(self, x, energy_gev):
        """r = sum of the cells (MeV) / E_inc (MeV) per sample (N,) and dr/dx (N, V) for x (N, V) training units."""
        xp, cfg = self.backend.xp, self.config
        e_mev = (1000.0 * energy_gev).reshape(-1, 1)
        positive = x > 0  # generated cells are max(cell, 0): negative decoder outputs carry no energy
        x = xp.maximum(x, 0.0)
        if cfg.transform == "log":
            u = xp.minimum(x * cfg.log_scale, 50.0)
            raw = cfg.log_epsilon_mev * xp.expm1(u)
            cells = xp.minimum(raw, e_mev)
            grad = xp.where((raw < e_mev) & (x * cfg.log_scale < 50.0),
                            cfg.log_epsilon_mev * cfg.log_scale * xp.exp(u), 0.0) / e_mev
        else:
            cells = x * (e_mev / cfg.voxel_scale)
            grad = xp.ones_like(x) / cfg.voxel_scale
        return cells.sum(axis=1) / e_mev.reshape(-1), (grad * positive).astype(x.dtype)

    def decode(self, z, c, training: bool = True):
        return self.decoder.forward(self.backend.xp.concatenate([z, c], axis=1), training)

    def generate(self, z, energy, labels=None, training: bool = False) -> list:
        """[(N, R_l, C_l)] MeV for z (N, Z) drawn from the prior and E (N,) GeV (backend arrays)."""
        return self.to_layers(self.decode(z, self.condition(energy), training), energy)

    def loss_and_backward(self, x, c, eps, energy_gev=None, z_prior=None):
        """(total, reconstruction, KL, energy) batch means for x (N, V), c (N, 1), eps (N, Z), the incident
        energies (N,) GeV (backend array; needed when energy_weight or prior_energy_weight > 0) and z_prior
        (N, Z) prior draws (needed when prior_energy_weight > 0); energy is the sum of both response terms
        (unweighted). Sets every parameter's gradient of the total."""
        xp, cfg = self.backend.xp, self.config
        n, z_dim = eps.shape
        prior_loss, prior_grads = 0.0, None
        if cfg.prior_energy_weight > 0 or cfg.energy_weight > 0:
            r, _ = self.response_and_gradient(x, energy_gev)
        if cfg.prior_energy_weight > 0:
            r_prior, dr = self.response_and_gradient(self.decode(z_prior, c, True), energy_gev)
            err = r_prior - r
            prior_loss = float((err * err).mean())
            self.decoder.backward(dr * (2.0 * cfg.prior_energy_weight / n * err).reshape(-1, 1))
            prior_grads = [p.grad.copy() for p in self.decoder.parameters()]
        stats = self.encoder.forward(xp.concatenate([x, c], axis=1), True)
        mu, logvar = stats[:, :z_dim], stats[:, z_dim:]
        z, sigma = reparameterise(mu, logvar, eps, xp)
        x_hat = self.decode(z, c, True)
        diff = x_hat - x
        inv = 1.0 / (2.0 * cfg.recon_sigma ** 2)
        recon = float((diff * diff).sum() * inv / n)
        kl, dkl_mu, dkl_logvar = kl_divergence(mu, logvar, xp)
        kl = float(kl.mean())
        d_x_hat = diff * (2.0 * inv / n)
        energy = 0.0
        if cfg.energy_weight > 0:
            r_hat, dr = self.response_and_gradient(x_hat, energy_gev)
            err = r_hat - r
            energy = float((err * err).mean())
            d_x_hat = d_x_hat + dr * (2.0 * cfg.energy_weight / n * err).reshape(-1, 1)
        d_in = self.decoder.backward(d_x_hat)
        dmu, dlogvar = reparameterise_backward(d_in[:, :z_dim], sigma, eps)
        w = cfg.kl_weight / n
        self.encoder.backward(xp.concatenate([dmu + w * dkl_mu, dlogvar + w * dkl_logvar], axis=1))
        if prior_grads is not None:
            for p, g in zip(self.decoder.parameters(), prior_grads):
                p.grad = p.grad + g
        total = recon + cfg.kl_weight * kl + cfg.energy_weight * energy + cfg.prior_energy_weight * prior_loss
        return total, recon, kl, energy + prior_loss


class VAETrainer:
    """One Adam step on encoder and decoder per batch (NumPy, MeV / GeV)."""

    loss_names = ("loss", "recon", "kl", "energy")

    def __init__(self, model: VAE, rng: np.random.Generator):
        cfg = model.config
        self.model = model
        self.backend = model.backend
        self.rng = rng
        self.optimizers = {name: Adam(net.parameters(), cfg.lr, cfg.beta1, cfg.beta2, backend=model.backend)
                           for name, net in model.networks().items()}

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass

    def train_step(self, layers_mev, energy_gev, labels=None) -> dict[str, float]:
        model, be = self.model, self.backend
        x = model.to_training(layers_mev, energy_gev)
        e = be.asarray(np.asarray(energy_gev, np.float64))
        c = model.condition(e)
        eps = be.asarray(self.rng.standard_normal((x.shape[0], model.latent_dim)))
        z_prior = None
        if model.config.prior_energy_weight > 0:
            z_prior = be.asarray(self.rng.standard_normal((x.shape[0], model.latent_dim)))
        total, recon, kl, energy = model.loss_and_backward(x, c, eps, e, z_prior)
        check_finite(total, "VAE")
        for opt in self.optimizers.values():
            opt.step()
        return {"loss": total, "recon": recon, "kl": kl, "energy": energy}
