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
    another energy when the posterior does not cover the prior (this term trains the decoder, and the
    learned prior's network when there is one).
i.e. a Gaussian likelihood of fixed width ``recon_sigma`` (in training units) on the normalised voxels; the
MSE keeps the loss defined for exact zeros, which a BCE on fractions would too but with a worse scale for
voxels far below 1. Generation samples z from the prior N(0, 1) and runs the decoder alone.

Learned prior (config ``learned_prior``): the energy is visible in x, so the encoder puts energy information
into z and decodes of z ~ N(0, 1) at a given c lose it (a prior hole). With a learned conditional prior
p(z | c) = N(mu_p(c), sigma_p(c)^2), a third network c -> Dense(prior_hidden) -> LeakyReLU -> Dense(2 Z)
(output initialised to zero: N(0, 1) at the start), the KL term is KL(q(z | x, c) || p(z | c)) and generation
maps z ~ N(0, 1) to mu_p(c) + sigma_p(c) z.

Occupancy head (config ``occupancy``): most Geant4 cells are empty or tiny (a mean-regression decoder smears
them into too few or too many non-zero cells), so the decoder's last Dense has 2 V outputs, amounts a (N, V)
and occupancy logits l (N, V), a hurdle likelihood: m = [x > 0] (per voxel),
    recon = sum_v m_v (a_v - x_v)^2 / (2 recon_sigma^2) + occupancy_weight * sum_v BCE(sigmoid(l_v), m_v)
(the amount is fitted on occupied voxels only), and the response terms use the amounts in the real
shower's occupied voxels, r = sum_v m_v cell(a_v) / E_inc (for the prior's decodes too: the occupancy is
left to the BCE, whose probabilities stay calibrated). Generation keeps voxel v with probability sigmoid(l_v):
u_v < sigmoid(l_v), u ~ U(0, 1) from ``rng`` (default: a Generator seeded by the bytes of the batch's
latent vectors, so the same latent vectors give the same showers).

Layer-energy head (config ``layer_energy_head``): the per-shower energy of a decode of log-like units is
only as good as its hottest cells (an error of 0.03 in x is 35% in a cell), so L more outputs predict
t_l = log(E_l / E_inc + layer_delta) with a Gaussian likelihood of width ``layer_sigma`` (added to recon),
and generation rescales each layer's cells to sum (exp(t_l) - layer_delta) E_inc: the cells give the shape,
the head the layer energies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calosim.errors import ConfigError
from calosim.layers import Dense, LeakyReLU, ReLU, Sequential
from calosim.layers.activations import sigmoid
from calosim.losses import bce_elementwise
from calosim.models.base import ConfigMixin, ShowerModel, Trainer, check_finite, check_unique_names
from calosim.models.units import (
    VOXEL_TRANSFORMS,
    energy_condition,
    latent_seeded_rng,
    layer_sums,
    training_to_voxels,
    voxel_fractions,
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
    occupancy: bool = False  # a per-voxel occupancy head (Bernoulli logits beside the amounts; linear output)
    occupancy_weight: float = 1.0  # weight of the occupancy BCE (summed over voxels) in the reconstruction loss
    layer_energy_head: bool = False  # outputs t_l = log(E_l / E_inc + layer_delta); generation rescales layer l to it
    layer_sigma: float = 0.01  # width of the Gaussian likelihood of t_l
    layer_delta: float = 1e-3
    learned_prior: bool = False  # a conditional prior p(z | c) = N(mu_p(c), sigma_p(c)^2) instead of N(0, 1)
    prior_hidden: int = 32  # width of the prior network's hidden layer
    energy_range: tuple[float, float] | None = None

    def __post_init__(self):
        self._check_common()
        if self.transform not in VOXEL_TRANSFORMS or self.log_epsilon_mev <= 0 or self.log_scale <= 0:
            raise ConfigError(f"config {self.name!r}: transform one of {VOXEL_TRANSFORMS}, log_epsilon_mev > 0, "
                              "log_scale > 0")
        if self.output_activation not in ("relu", "linear"):
            raise ConfigError(f"config {self.name!r}: output_activation 'relu' or 'linear'")
        if self.prior_hidden < 1:
            raise ConfigError(f"config {self.name!r}: prior_hidden >= 1")
        if self.occupancy and (self.output_activation != "linear" or self.occupancy_weight <= 0):
            raise ConfigError(f"config {self.name!r}: occupancy needs output_activation 'linear' and "
                              "occupancy_weight > 0")
        if self.layer_energy_head and (self.output_activation != "linear" or self.layer_sigma <= 0
                                       or self.layer_delta <= 0):
            raise ConfigError(f"config {self.name!r}: layer_energy_head needs output_activation 'linear', "
                              "layer_sigma > 0 and layer_delta > 0")
        if self.energy_weight < 0 or self.prior_energy_weight < 0 or self.threshold_mev < 0:
            raise ConfigError(f"config {self.name!r}: energy_weight >= 0, threshold_mev >= 0")
        if not self.hidden or self.recon_sigma <= 0 or self.kl_weight < 0 or self.voxel_scale <= 0:
            raise ConfigError(f"config {self.name!r}: hidden not empty, recon_sigma > 0, kl_weight >= 0, "
                              "voxel_scale > 0")


CONFIGS = {"vae": VAEConfig(),
           # occupancy head, learned prior and layer-energy head: on 3200 Geant4 e+ (40 epochs, ~1 min) they beat
           # the untrained state on every observable for seeds 0, 1, 2 (without them: sparsity, E_ratio_1 and
           # the response are not beaten); the response terms are then not needed
           "small": VAEConfig(name="small", hidden=(200, 100), batch_size=64, epochs=40, recon_sigma=0.03,
                              output_activation="linear", occupancy=True, learned_prior=True,
                              layer_energy_head=True)}


def reparameterise(mu, logvar, eps, xp):
    """z = mu + exp(logvar / 2) * eps; returns (z, sigma)."""
    sigma = xp.exp(0.5 * logvar)
    return mu + sigma * eps, sigma


def kl_divergence(mu, logvar, xp):
    """Per-sample KL(N(mu, sigma^2) || N(0, 1)) (N,) and its gradients (d/dmu, d/dlogvar) per sample."""
    var = xp.exp(logvar)
    kl = -0.5 * (1.0 + logvar - mu * mu - var).sum(axis=1)
    return kl, mu, 0.5 * (var - 1.0)


def kl_divergence_gaussians(mu, logvar, mu_p, logvar_p, xp):
    """Per-sample KL(N(mu, sigma^2) || N(mu_p, sigma_p^2)) (N,), diagonal, and its gradients per sample
    (d/dmu, d/dlogvar, d/dmu_p, d/dlogvar_p):
        KL = 1/2 sum_j [logvar_p - logvar + (sigma^2 + (mu - mu_p)^2) / sigma_p^2 - 1]."""
    inv_p = xp.exp(-logvar_p)
    var, delta = xp.exp(logvar), mu - mu_p
    q = (var + delta * delta) * inv_p
    kl = 0.5 * (logvar_p - logvar + q - 1.0).sum(axis=1)
    d_mu = delta * inv_p
    return kl, d_mu, 0.5 * (var * inv_p - 1.0), -d_mu, 0.5 * (1.0 - q)


def reparameterise_backward(dz, sigma, eps):
    """(dL/dmu, dL/dlogvar) from dL/dz through z = mu + sigma * eps, sigma = exp(logvar / 2)."""
    return dz, dz * eps * sigma * 0.5


def occupancy_bce(logits, occupied, xp):
    """Summed BCE of sigmoid(logits) against the 0/1 array ``occupied`` (both (N, V)), as a batch mean, and
    its gradient (sigmoid(l) - m) / N."""
    n = logits.shape[0]
    loss, s = bce_elementwise(logits, occupied, xp)
    return float(loss.sum() / n), ((s - occupied) / n).astype(logits.dtype)


class VAE(ShowerModel):
    model_type = "vae"
    description = "conditional VAE of dense layers on flattened voxels"
    config_class = VAEConfig
    configs = CONFIGS
    reference_config = "vae"
    sampling_network = "decoder"

    def __init__(self, config: VAEConfig, geometry, encoder: Sequential, decoder: Sequential, backend,
                 particle="unknown", energy_range=(1.0, 100.0), prior: Sequential | None = None):
        super().__init__(config, geometry, backend, particle, energy_range)
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior

    @classmethod
    def build(cls, config: VAEConfig, geometry, backend, rng: np.random.Generator, particle="unknown",
              energy_range=(1.0, 100.0), fitted: dict | None = None) -> VAE:
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
        width = v * (2 if config.occupancy else 1) + (geometry.n_layers if config.layer_energy_head else 0)
        decoder = Sequential([*layers, Dense(width), *out], name="decoder")
        decoder.build((z + 1,), backend, rng)
        prior = None
        if config.learned_prior:  # starts as N(0, 1): the output layer is zero
            prior = Sequential([Dense(config.prior_hidden, kernel_init="he_uniform"), LeakyReLU(config.alpha),
                                Dense(2 * z, kernel_init="zeros")], name="prior")
            prior.build((1,), backend, rng)
        model = cls(config, geometry, encoder, decoder, backend, particle, energy_range, prior)
        check_unique_names(model.networks())
        return model

    def networks(self) -> dict:
        nets = {"encoder": self.encoder, "decoder": self.decoder}
        if self.prior is not None:
            nets["prior"] = self.prior
        return nets

    def prior_stats(self, c, training: bool = True):
        """(mu_p, logvar_p) (N, Z) of the prior p(z | c); (None, None) for the fixed N(0, 1)."""
        if self.prior is None:
            return None, None
        stats = self.prior.forward(c, training)
        return stats[:, :self.latent_dim], stats[:, self.latent_dim:]

    def prior_latent(self, eps, c, training: bool = False):
        """A prior draw z (N, Z) from standard normal ``eps`` (N, Z): mu_p(c) + sigma_p(c) eps (or eps)."""
        mu_p, logvar_p = self.prior_stats(c, training)
        return eps if mu_p is None else reparameterise(mu_p, logvar_p, eps, self.backend.xp)[0]

    def to_training(self, layers_mev, energy_gev):
        """Per-layer (N, R, C) MeV (NumPy) and E (N,) GeV -> x (N, V) training units (backend array)."""
        flat = self.geometry.flatten([np.asarray(x, np.float64) for x in layers_mev])
        return self.backend.asarray(voxels_to_training(flat, energy_gev, self.config))

    def to_layers(self, x, energy_gev) -> list:
        return self.geometry.unflatten(self.to_cells(x, energy_gev))

    def to_cells(self, x, energy_gev, xp=None):
        """x (N, V) training units, E (N,) GeV -> cells (N, V) MeV, >= 0, those below threshold_mev 0; ``xp`` the
        array module (default the backend's; calosim.export passes its graph)."""
        xp = xp or self.backend.xp
        cells = xp.maximum(training_to_voxels(x, energy_gev, self.config, xp), 0.0)
        if self.config.threshold_mev > 0:
            cells = xp.where(cells < self.config.threshold_mev, 0.0, cells).astype(cells.dtype)
        return cells

    def fractions_and_gradient(self, x, energy_gev):
        """cell (MeV) / E_inc (MeV) per voxel (N, V) and its derivative by x (N, V), for x (N, V) training units."""
        return voxel_fractions(x, energy_gev, self.config, self.backend.xp)

    def response_and_gradient(self, x, energy_gev):
        """r = sum of the cells (MeV) / E_inc (MeV) per sample (N,) and dr/dx (N, V) for x (N, V) training units."""
        fractions, grad = self.fractions_and_gradient(x, energy_gev)
        return fractions.sum(axis=1), grad

    def decoded_response(self, out, energy_gev, occupied=None):
        """The response of a decoder output (N, V) and dr/d(out); with the occupancy head, out (N, 2 V) =
        [a, l], the response of the amounts in the voxels ``occupied`` (N, V) 0/1 (a real shower's):
        r = sum_v m_v cell(a_v) / E_inc, and dr/d(out) (zero for the logits, which only the BCE trains)."""
        xp, v = self.backend.xp, self.geometry.n_cells
        fractions, grad = self.fractions_and_gradient(out[:, :v], energy_gev)
        if occupied is not None:
            fractions, grad = occupied * fractions, occupied * grad
        d_out = xp.concatenate([grad, xp.zeros((out.shape[0], out.shape[1] - v), dtype=grad.dtype)], axis=1)
        return fractions.sum(axis=1), d_out.astype(out.dtype)

    def layer_targets(self, layers_mev, energy_gev):
        """t_l = log(E_l / E_inc + layer_delta) (N, L) (backend array) of per-layer (N, R, C) MeV and E (N,) GeV."""
        e = layer_sums(layers_mev, len(energy_gev))
        u = e / (1000.0 * np.asarray(energy_gev, np.float64))[:, None]
        return self.backend.asarray(np.log(u + self.config.layer_delta))

    def rescale_layers(self, cells, t_hat, energy_gev, xp=None):
        """Cells (N, V) MeV with each layer's sum set to (exp(t_l) - layer_delta) E_inc (>= 0), for the
        layer-energy head's outputs t_hat (N, L); a layer without energy stays empty."""
        xp = xp or self.backend.xp
        u = xp.maximum(xp.exp(t_hat) - self.config.layer_delta, 0.0) * (1000.0 * energy_gev).reshape(-1, 1)
        off = self.geometry.offsets
        parts = []
        for i in range(self.geometry.n_layers):
            part = cells[:, off[i]:off[i + 1]]
            total = part.sum(axis=1, keepdims=True)
            parts.append(part * xp.where(total > 0, u[:, i:i + 1] / xp.maximum(total, 1e-30), 0.0))
        return xp.concatenate(parts, axis=1).astype(cells.dtype)

    def sample_occupancy(self, out, rng: np.random.Generator):
        """Amounts (N, V) of the voxels kept with probability sigmoid(l_v), 0 elsewhere, for out (N, >= 2 V)
        = [a, l, ...]."""
        xp, v = self.backend.xp, self.geometry.n_cells
        dtype = np.float32 if out.dtype == np.float32 else np.float64
        u = self.backend.asarray(rng.random((out.shape[0], v), dtype=dtype))
        return xp.where(u < sigmoid(out[:, v:2 * v], xp), out[:, :v], 0.0).astype(out.dtype)

    def occupancy_rng(self, z) -> np.random.Generator:
        """The default Generator of the occupancy draws: seeded by the bytes of the latent vectors z."""
        return latent_seeded_rng(z, self.backend)

    def decode(self, z, c, training: bool = True):
        return self.decoder.forward(self.backend.xp.concatenate([z, c], axis=1), training)

    def generate(self, z, energy, labels=None, training: bool = False, rng: np.random.Generator | None = None) -> list:
        """[(N, R_l, C_l)] MeV for z (N, Z) standard normal (mapped through the learned prior when there is one)
        and E (N,) GeV (backend arrays); ``rng``: the occupancy draws (default :meth:`occupancy_rng` of z;
        unused without the occupancy head)."""
        c = self.condition(energy)
        out = self.decode(self.prior_latent(z, c, training), c, training)
        v = self.geometry.n_cells
        amounts = out[:, :v]
        if self.config.occupancy:
            amounts = self.sample_occupancy(out, rng if rng is not None else self.occupancy_rng(z))
        cells = self.to_cells(amounts, energy)
        if self.config.layer_energy_head:
            cells = self.rescale_layers(cells, out[:, out.shape[1] - self.geometry.n_layers:], energy)
        return self.geometry.unflatten(cells)

    def export_onnx(self, graph) -> None:
        """:meth:`generate` on an ONNX graph (ShowerModel.export_onnx); the occupancy head's uniform numbers are
        the input occupancy_uniform (N, V)."""
        z, energy = graph.latent(self.latent_dim), graph.energy()
        c = energy_condition(energy, self.energy_range, graph)
        if self.prior is not None:
            stats = graph.layer(self.prior, c)
            z = reparameterise(stats[:, :self.latent_dim], stats[:, self.latent_dim:], z, graph)[0]
        out = graph.layer(self.decoder, graph.concatenate([z, c], axis=1))
        v = self.geometry.n_cells
        amounts = out[:, :v]
        if self.config.occupancy:
            u = graph.uniforms("occupancy_uniform", v, "voxel v is kept where u_v < sigmoid(logit_v)")
            amounts = graph.where(u < sigmoid(out[:, v:2 * v], graph), amounts, 0.0)
        cells = self.to_cells(amounts, energy, graph)
        if self.config.layer_energy_head:
            cells = self.rescale_layers(cells, out[:, out.size - self.geometry.n_layers:], energy, graph)
        graph.showers(self.geometry, cells)

    def loss_and_backward(self, x, c, eps, energy_gev=None, z_prior=None, layer_targets=None):
        """(total, reconstruction (with the occupancy head: amounts + occupancy BCE), KL, energy) batch means
        for x (N, V), c (N, 1), eps (N, Z), the incident
        energies (N,) GeV (backend array; needed when energy_weight or prior_energy_weight > 0) and z_prior
        (N, Z) prior draws (needed when prior_energy_weight > 0), layer_targets (N, L) (:meth:`layer_targets`,
        needed with the layer-energy head); energy is the sum of both response terms (unweighted). Sets every
        parameter's gradient of the total."""
        xp, cfg = self.backend.xp, self.config
        n, z_dim = eps.shape
        prior_loss, prior_grads = 0.0, None
        occupied = (x > 0).astype(x.dtype) if cfg.occupancy else None
        mu_p, logvar_p = self.prior_stats(c, True)
        d_mu_p = d_logvar_p = 0.0  # gradients of the learned prior's outputs, accumulated
        if cfg.prior_energy_weight > 0 or cfg.energy_weight > 0:
            r, _ = self.response_and_gradient(x, energy_gev)
        if cfg.prior_energy_weight > 0:
            z_p = z_prior if mu_p is None else reparameterise(mu_p, logvar_p, z_prior, xp)[0]
            r_prior, dr = self.decoded_response(self.decode(z_p, c, True), energy_gev, occupied)
            err = r_prior - r
            prior_loss = float((err * err).mean())
            dz_p = self.decoder.backward(dr * (2.0 * cfg.prior_energy_weight / n * err).reshape(-1, 1))[:, :z_dim]
            if mu_p is not None:
                d_mu_p, d_logvar_p = reparameterise_backward(dz_p, xp.exp(0.5 * logvar_p), z_prior)
            prior_grads = [p.grad.copy() for p in self.decoder.parameters()]
        stats = self.encoder.forward(xp.concatenate([x, c], axis=1), True)
        mu, logvar = stats[:, :z_dim], stats[:, z_dim:]
        z, sigma = reparameterise(mu, logvar, eps, xp)
        x_hat = self.decode(z, c, True)  # (N, V) amounts [, (N, V) occupancy logits] [, (N, L) layer targets]
        v = x.shape[1]
        diff = x_hat[:, :v] - x
        if cfg.occupancy:  # the amount is fitted where the voxel is occupied
            diff = diff * occupied
        inv = 1.0 / (2.0 * cfg.recon_sigma ** 2)
        recon = float((diff * diff).sum() * inv / n)
        if mu_p is None:
            kl, dkl_mu, dkl_logvar = kl_divergence(mu, logvar, xp)
        else:
            kl, dkl_mu, dkl_logvar, dkl_mu_p, dkl_logvar_p = kl_divergence_gaussians(mu, logvar, mu_p, logvar_p, xp)
            d_mu_p = d_mu_p + (cfg.kl_weight / n) * dkl_mu_p
            d_logvar_p = d_logvar_p + (cfg.kl_weight / n) * dkl_logvar_p
        kl = float(kl.mean())
        d_x_hat = diff * (2.0 * inv / n)
        if cfg.occupancy:
            bce, d_logits = occupancy_bce(x_hat[:, v:2 * v], occupied, xp)
            recon += cfg.occupancy_weight * bce
            d_x_hat = xp.concatenate([d_x_hat, cfg.occupancy_weight * d_logits], axis=1)
        if cfg.layer_energy_head:
            d_t = x_hat[:, d_x_hat.shape[1]:] - layer_targets
            recon += float((d_t * d_t).sum() / (2.0 * cfg.layer_sigma ** 2 * n))
            d_x_hat = xp.concatenate([d_x_hat, d_t / (cfg.layer_sigma ** 2 * n)], axis=1)
        energy = 0.0
        if cfg.energy_weight > 0:
            r_hat, dr = self.decoded_response(x_hat, energy_gev, occupied)
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
        if mu_p is not None:
            self.prior.backward(xp.concatenate([d_mu_p, d_logvar_p], axis=1))
        total = recon + cfg.kl_weight * kl + cfg.energy_weight * energy + cfg.prior_energy_weight * prior_loss
        return total, recon, kl, energy + prior_loss


class VAETrainer(Trainer):
    """One Adam step on encoder and decoder per batch (NumPy, MeV / GeV)."""

    loss_names = ("loss", "recon", "kl", "energy")

    def __init__(self, model: VAE, rng: np.random.Generator):
        cfg = model.config
        super().__init__(model, rng)
        self.optimizers = {name: Adam(net.parameters(), cfg.lr, cfg.beta1, cfg.beta2, backend=model.backend)
                           for name, net in model.networks().items()}

    def train_step(self, layers_mev, energy_gev, labels=None) -> dict[str, float]:
        model, be = self.model, self.backend
        x = model.to_training(layers_mev, energy_gev)
        e = be.asarray(np.asarray(energy_gev, np.float64))
        c = model.condition(e)
        eps = be.asarray(self.rng.standard_normal((x.shape[0], model.latent_dim)))
        z_prior = None
        if model.config.prior_energy_weight > 0:
            z_prior = be.asarray(self.rng.standard_normal((x.shape[0], model.latent_dim)))
        targets = model.layer_targets(layers_mev, energy_gev) if model.config.layer_energy_head else None
        total, recon, kl, energy = model.loss_and_backward(x, c, eps, e, z_prior, targets)
        check_finite(total, "VAE")
        for opt in self.optimizers.values():
            opt.step()
        return {"loss": total, "recon": recon, "kl": kl, "energy": energy}


VAE.trainer_class = VAETrainer  # defined after the model it trains
