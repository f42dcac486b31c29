"""The VAE's training step: one Adam step on every network per batch, of the loss of VAE.loss_and_backward."""

from __future__ import annotations

import numpy as np

from calosim.models.base import Trainer, check_finite
from calosim.optim import Adam


class VAETrainer(Trainer):
    """One Adam step on encoder and decoder per batch (NumPy, MeV / GeV)."""

    loss_names = ("loss", "recon", "kl", "energy")

    def __init__(self, model, rng: np.random.Generator):
        cfg = model.config.training
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
        if model.config.prior_response is not None:
            z_prior = be.asarray(self.rng.standard_normal((x.shape[0], model.latent_dim)))
        targets = model.layer_targets(layers_mev, energy_gev) if model.config.layer_energy is not None else None
        total, recon, kl, energy = model.loss_and_backward(x, c, eps, e, z_prior, targets)
        check_finite(total, "VAE")
        for opt in self.optimizers.values():
            opt.step()
        return {"loss": total, "recon": recon, "kl": kl, "energy": energy}
