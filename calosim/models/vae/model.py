"""The VAE model (the package docstring): its networks, units, heads, generation and loss."""

from __future__ import annotations

import numpy as np

from calosim.layers import Dense, LeakyReLU, ReLU, Sequential
from calosim.layers.activations import sigmoid
from calosim.losses import bce_elementwise
from calosim.models.base import ShowerModel, check_unique_names
from calosim.models.units import (
    energy_condition,
    latent_seeded_rng,
    layer_sums,
    training_to_voxels,
    voxel_fractions,
    voxels_to_training,
)
from calosim.models.vae.config import CONFIGS, VAEConfig
from calosim.models.vae.latent import kl_divergence, kl_divergence_gaussians, reparameterise, reparameterise_backward
from calosim.models.vae.training import VAETrainer


class VAE(ShowerModel):
    model_type = "vae"
    description = "conditional VAE of dense layers on flattened voxels"
    config_class = VAEConfig
    configs = CONFIGS
    reference_config = "vae"
    trainer_class = VAETrainer
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
        arch, v, z = config.architecture, geometry.n_cells, config.latent_dim
        layers = []
        for width in arch.hidden:
            layers += [Dense(width, kernel_init="he_uniform"), LeakyReLU(arch.alpha)]
        encoder = Sequential([*layers, Dense(2 * z)], name="encoder")
        encoder.build((v + 1,), backend, rng)
        layers = []
        for width in reversed(arch.hidden):
            layers += [Dense(width, kernel_init="he_uniform"), LeakyReLU(arch.alpha)]
        out = [ReLU()] if arch.output_activation == "relu" else []
        width = (v * (2 if config.occupancy_head is not None else 1)
                 + (geometry.n_layers if config.layer_energy is not None else 0))
        decoder = Sequential([*layers, Dense(width), *out], name="decoder")
        decoder.build((z + 1,), backend, rng)
        prior = None
        if config.conditional_prior is not None:  # starts as N(0, 1): the output layer is zero
            prior = Sequential([Dense(config.conditional_prior.hidden, kernel_init="he_uniform"), LeakyReLU(arch.alpha),
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
        return self.backend.asarray(voxels_to_training(flat, energy_gev, self.config.units))

    def to_layers(self, x, energy_gev) -> list:
        return self.geometry.unflatten(self.to_cells(x, energy_gev))

    def to_cells(self, x, energy_gev, xp=None):
        """x (N, V) training units, E (N,) GeV -> cells (N, V) MeV, >= 0, those below threshold.mev 0; ``xp`` the
        array module (default the backend's; calosim.export passes its graph)."""
        xp = xp or self.backend.xp
        cells = xp.maximum(training_to_voxels(x, energy_gev, self.config.units, xp), 0.0)
        if self.config.threshold is not None:
            cells = xp.where(cells < self.config.threshold.mev, 0.0, cells).astype(cells.dtype)
        return cells

    def fractions_and_gradient(self, x, energy_gev):
        """cell (MeV) / E_inc (MeV) per voxel (N, V) and its derivative by x (N, V), for x (N, V) training units."""
        return voxel_fractions(x, energy_gev, self.config.units, self.backend.xp)

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
        """t_l = log(E_l / E_inc + delta) (N, L) (backend array) of per-layer (N, R, C) MeV and E (N,) GeV."""
        e = layer_sums(layers_mev, len(energy_gev))
        u = e / (1000.0 * np.asarray(energy_gev, np.float64))[:, None]
        return self.backend.asarray(np.log(u + self.config.layer_energy.delta))

    def rescale_layers(self, cells, t_hat, energy_gev, xp=None):
        """Cells (N, V) MeV with each layer's sum set to (exp(t_l) - delta) E_inc (>= 0), for the
        layer-energy head's outputs t_hat (N, L); a layer without energy stays empty."""
        xp = xp or self.backend.xp
        u = xp.maximum(xp.exp(t_hat) - self.config.layer_energy.delta, 0.0) * (1000.0 * energy_gev).reshape(-1, 1)
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
        if self.config.occupancy_head is not None:
            amounts = self.sample_occupancy(out, rng if rng is not None else self.occupancy_rng(z))
        cells = self.to_cells(amounts, energy)
        if self.config.layer_energy is not None:
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
        if self.config.occupancy_head is not None:
            u = graph.uniforms("occupancy_uniform", v, "voxel v is kept where u_v < sigmoid(logit_v)")
            amounts = graph.where(u < sigmoid(out[:, v:2 * v], graph), amounts, 0.0)
        cells = self.to_cells(amounts, energy, graph)
        if self.config.layer_energy is not None:
            cells = self.rescale_layers(cells, out[:, out.size - self.geometry.n_layers:], energy, graph)
        graph.showers(self.geometry, cells)

    def loss_and_backward(self, x, c, eps, energy_gev=None, z_prior=None, layer_targets=None):
        """(total, reconstruction (with the occupancy head: amounts + occupancy BCE), KL, energy) batch means
        for x (N, V), c (N, 1), eps (N, Z), the incident
        energies (N,) GeV (backend array; needed with the response terms) and z_prior (N, Z) prior draws
        (needed with prior_response), layer_targets (N, L) (:meth:`layer_targets`,
        needed with the layer-energy head); energy is the sum of both response terms (unweighted). Sets every
        parameter's gradient of the total."""
        xp, cfg, training = self.backend.xp, self.config, self.config.training
        # the additions' weights, 0 when off (the total below adds every term, as before the groups)
        energy_weight = cfg.response.weight if cfg.response is not None else 0.0
        prior_energy_weight = cfg.prior_response.weight if cfg.prior_response is not None else 0.0
        n, z_dim = eps.shape
        prior_loss, prior_grads = 0.0, None
        occupied = (x > 0).astype(x.dtype) if cfg.occupancy_head is not None else None
        mu_p, logvar_p = self.prior_stats(c, True)
        d_mu_p = d_logvar_p = 0.0  # gradients of the learned prior's outputs, accumulated
        if prior_energy_weight > 0 or energy_weight > 0:
            r, _ = self.response_and_gradient(x, energy_gev)
        if prior_energy_weight > 0:
            z_p = z_prior if mu_p is None else reparameterise(mu_p, logvar_p, z_prior, xp)[0]
            r_prior, dr = self.decoded_response(self.decode(z_p, c, True), energy_gev, occupied)
            err = r_prior - r
            prior_loss = float((err * err).mean())
            dz_p = self.decoder.backward(dr * (2.0 * prior_energy_weight / n * err).reshape(-1, 1))[:, :z_dim]
            if mu_p is not None:
                d_mu_p, d_logvar_p = reparameterise_backward(dz_p, xp.exp(0.5 * logvar_p), z_prior)
            prior_grads = [p.grad.copy() for p in self.decoder.parameters()]
        stats = self.encoder.forward(xp.concatenate([x, c], axis=1), True)
        mu, logvar = stats[:, :z_dim], stats[:, z_dim:]
        z, sigma = reparameterise(mu, logvar, eps, xp)
        x_hat = self.decode(z, c, True)  # (N, V) amounts [, (N, V) occupancy logits] [, (N, L) layer targets]
        v = x.shape[1]
        diff = x_hat[:, :v] - x
        if cfg.occupancy_head is not None:  # the amount is fitted where the voxel is occupied
            diff = diff * occupied
        inv = 1.0 / (2.0 * training.recon_sigma ** 2)
        recon = float((diff * diff).sum() * inv / n)
        if mu_p is None:
            kl, dkl_mu, dkl_logvar = kl_divergence(mu, logvar, xp)
        else:
            kl, dkl_mu, dkl_logvar, dkl_mu_p, dkl_logvar_p = kl_divergence_gaussians(mu, logvar, mu_p, logvar_p, xp)
            d_mu_p = d_mu_p + (training.kl_weight / n) * dkl_mu_p
            d_logvar_p = d_logvar_p + (training.kl_weight / n) * dkl_logvar_p
        kl = float(kl.mean())
        d_x_hat = diff * (2.0 * inv / n)
        if cfg.occupancy_head is not None:
            bce, d_logits = occupancy_bce(x_hat[:, v:2 * v], occupied, xp)
            recon += cfg.occupancy_head.weight * bce
            d_x_hat = xp.concatenate([d_x_hat, cfg.occupancy_head.weight * d_logits], axis=1)
        if cfg.layer_energy is not None:
            sigma2 = cfg.layer_energy.sigma ** 2
            d_t = x_hat[:, d_x_hat.shape[1]:] - layer_targets
            recon += float((d_t * d_t).sum() / (2.0 * sigma2 * n))
            d_x_hat = xp.concatenate([d_x_hat, d_t / (sigma2 * n)], axis=1)
        energy = 0.0
        if energy_weight > 0:
            r_hat, dr = self.decoded_response(x_hat, energy_gev, occupied)
            err = r_hat - r
            energy = float((err * err).mean())
            d_x_hat = d_x_hat + dr * (2.0 * energy_weight / n * err).reshape(-1, 1)
        d_in = self.decoder.backward(d_x_hat)
        dmu, dlogvar = reparameterise_backward(d_in[:, :z_dim], sigma, eps)
        w = training.kl_weight / n
        self.encoder.backward(xp.concatenate([dmu + w * dkl_mu, dlogvar + w * dkl_logvar], axis=1))
        if prior_grads is not None:
            for p, g in zip(self.decoder.parameters(), prior_grads):
                p.grad = p.grad + g
        if mu_p is not None:
            self.prior.backward(xp.concatenate([d_mu_p, d_logvar_p], axis=1))
        total = recon + training.kl_weight * kl + energy_weight * energy + prior_energy_weight * prior_loss
        return total, recon, kl, energy + prior_loss


def occupancy_bce(logits, occupied, xp):
    """Summed BCE of sigmoid(logits) against the 0/1 array ``occupied`` (both (N, V)), as a batch mean, and
    its gradient (sigmoid(l) - m) / N."""
    n = logits.shape[0]
    loss, s = bce_elementwise(logits, occupied, xp)
    return float(loss.sum() / n), ((s - occupied) / n).astype(logits.dtype)
