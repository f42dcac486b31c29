"""CaloGAN's training step (reference section 4; batch B of real showers, cells MeV -> training units
MeV / image_scale = GeV):
    1. D on the all-real batch, target 1 (BCE with logits), one Adam step of D;
    2. D on an all-fake batch G(z, E) with E ~ U(energy_range) GeV, target 0, one Adam step of D;
    3. generator_steps times (2): fresh z and E, loss BCE(D(G(z, E)), 1) + energy_loss_weight * MAE(sum of
       the generated cells in GeV, E) [+ energy_ratio_loss_weight * mean |sum / E - r| with r the real batch's
       mean response sum / E, + g_sparsity_loss_weight * the per-shower occupancy term of
       calosim.losses.occupancy_fraction_loss, both off in the paper's config], one Adam step of G (D's weights
       and BatchNorm statistics are left alone). With the occupancy term on, the generator steps take E from
       the real batch (not fresh draws), so that fake i has real shower i, of the same energy, as its target.
Between epochs: the learning-rate schedule (lr_final_fraction) and precise BN (bn_recalibration_batches).
"""

from __future__ import annotations

import numpy as np

from calosim.layers import BatchNorm
from calosim.layers.base import pass_products
from calosim.losses import bce_with_logits, mean_absolute_error, occupancy_fraction_loss
from calosim.models.base import Trainer, check_finite
from calosim.optim import Adam


class GANTrainer:
    """The three kinds of step of one CaloGAN training iteration, on backend arrays.

    images are lists [(B, R_l, C_l, 1)] in training units, energies (B,) GeV.
    """

    def __init__(self, model, rng: np.random.Generator):
        cfg = model.config
        self.model = model
        self.backend = be = model.backend
        self.rng = rng  # z and fake energies
        self.opt_g = Adam(model.generator.parameters(), cfg.lr_g, cfg.beta1, cfg.beta2, backend=be)
        self.opt_d = Adam(model.discriminator.parameters(), cfg.lr_d, cfg.beta1, cfg.beta2, backend=be)
        model.generator.set_latent_gradient(False)  # the steps never use dL/dz

    def sample_inputs(self, n: int):
        """Fresh z ~ N(0, 1) (n, Z) and E ~ U(energy_range) (n,) GeV, as backend arrays (E drawn first)."""
        lo, hi = self.model.energy_range
        energy = self.rng.uniform(lo, hi, size=n)
        z = self.rng.standard_normal((n, self.model.config.latent_dim))
        return self.backend.asarray(z), self.backend.asarray(energy)

    def d_loss(self, images, energy, target: float, training: bool = True):
        """(loss, dloss/dlogits) of D on one batch against a constant target."""
        xp = self.backend.xp
        logits = self.model.discriminator.forward([*images, energy], training)
        return bce_with_logits(logits, xp.full(logits.shape, target, dtype=logits.dtype), xp)

    def d_step(self, images, energy, target: float) -> float:
        """One Adam step of D on one batch (all real: target 1, all fake: target 0); returns the loss before it."""
        loss, dl = self.d_loss(images, energy, target)
        check_finite(loss, "discriminator (real)" if target else "discriminator (fake)")
        discriminator = self.model.discriminator
        discriminator.set_input_gradient(False)  # only D's weight gradients are needed here
        try:
            discriminator.backward(dl)
        finally:
            discriminator.set_input_gradient(True)
        self.opt_d.step()
        return loss

    def g_loss(self, z, energy, target_response: float = 1.0):
        """Generator loss: (bce, energy MAE in GeV, images, dL/dlogits, d(weighted energy terms)/d(cell sums)) for
        inputs z, E; D's statistics are not updated. The energy terms: energy_loss_weight * MAE(sum, E) [+
        energy_ratio_loss_weight * mean |sum / E - target_response|, its value kept in ``last_ratio_mae``]."""
        model, xp = self.model, self.backend.xp
        images = model.generator.forward([z, energy], True)
        d = model.discriminator
        d.set_update_statistics(False)
        try:
            logits = d.forward([*images, energy], True)
        finally:
            d.set_update_statistics(True)
        bce, dl = bce_with_logits(logits, xp.ones(logits.shape, dtype=logits.dtype), xp)
        n = energy.shape[0]
        sums = sum(x.reshape(n, -1).sum(axis=1) for x in images)  # GeV
        mae, ds = mean_absolute_error(sums, energy, xp)
        ds = model.config.energy_loss_weight * ds
        self.last_ratio_mae = 0.0
        if model.config.energy_ratio_loss_weight > 0:  # weighs showers of a few GeV as much as those of 100
            self.last_ratio_mae, dr = mean_absolute_error(sums / energy, xp.full_like(sums, target_response), xp)
            ds = ds + model.config.energy_ratio_loss_weight * dr / energy
        return bce, mae, images, dl, ds

    def g_step(self, z, energy, occupancy_targets=None, target_response: float = 1.0) -> tuple[float, float, float]:
        """One Adam step of G; returns (bce, energy MAE in GeV, occupancy loss) before it. occupancy_targets:
        (B, L) per-shower fractions of non-zero cells of real showers at the energies ``energy``, for the
        optional occupancy term (config g_sparsity_loss_weight; its loss is 0.0 when off)."""
        cfg = self.model.config
        bce, mae, images, dl, ds = self.g_loss(z, energy, target_response)
        check_finite(bce, "generator (adversarial)")
        check_finite(mae, "generator (energy)")
        occupancy, d_pre = 0.0, None
        if cfg.g_sparsity_loss_weight > 0 and occupancy_targets is not None:
            occupancy, d_pre = occupancy_fraction_loss(self.model.generator.pre_activation, occupancy_targets,
                                              cfg.g_sparsity_tau, self.backend.xp)
            check_finite(occupancy, "generator (occupancy)")
            d_pre = [cfg.g_sparsity_loss_weight * d for d in d_pre]
        discriminator = self.model.discriminator
        discriminator.set_param_grads(False)  # D is not updated in the G step: only dL/d(images) is needed
        try:
            d_images = discriminator.backward(dl)
        finally:
            discriminator.set_param_grads(True)
        d_energy = ds.reshape(-1, 1, 1, 1)
        self.model.generator.backward([dx + d_energy for dx in d_images], d_pre)
        self.opt_g.step()
        return bce, mae, occupancy

    def train_step(self, real_images, real_energy) -> dict[str, float]:
        """The whole iteration of reference section 4 on one real batch."""
        cfg, xp = self.model.config, self.backend.xp
        n = real_energy.shape[0]
        d_real = self.d_step(real_images, real_energy, 1.0)
        z, energy = self.sample_inputs(n)
        fake = self.model.generator.forward([z, energy], True)
        d_fake = self.d_step(fake, energy, 0.0)
        targets, target_response = None, 1.0
        if cfg.energy_ratio_loss_weight > 0:
            real_sums = sum(x.reshape(n, -1).sum(axis=1) for x in real_images)
            target_response = float((real_sums / real_energy).mean())
        if cfg.g_sparsity_loss_weight > 0:
            targets = xp.stack([(x.reshape(n, -1) > 0).mean(axis=1) for x in real_images], axis=1)
        g_bce, g_energy, g_occupancy, g_ratio = [], [], [], []
        for _ in range(cfg.generator_steps):
            z, energy = self.sample_inputs(n)
            if targets is not None:
                energy = real_energy
            bce, mae, occupancy = self.g_step(z, energy, targets, target_response)
            g_bce.append(bce)
            g_energy.append(mae)
            g_occupancy.append(occupancy)
            g_ratio.append(self.last_ratio_mae)
        losses = {"d_real": d_real, "d_fake": d_fake, "g_bce": float(np.mean(g_bce)),
                  "g_energy_mae_gev": float(np.mean(g_energy))}
        if targets is not None:
            losses["g_occupancy"] = float(np.mean(g_occupancy))
        if cfg.energy_ratio_loss_weight > 0:
            losses["g_energy_ratio_mae"] = float(np.mean(g_ratio))
        return losses

    def recalibrate_batchnorm(self, n_batches: int) -> None:
        """Precise BN: the generator's BatchNorm moving statistics become the average batch statistics of
        ``n_batches`` training-mode forwards of fresh (z, E) (batch size of the config); see
        :func:`recalibrate_batchnorm`."""
        gen, n = self.model.generator, self.model.config.batch_size
        recalibrate_batchnorm(gen, lambda: gen.forward(list(self.sample_inputs(n)), True), n_batches)


def recalibrate_batchnorm(net, run_batch, n_batches: int) -> None:
    """Set every BatchNorm of ``net`` to the mean of the batch means and of the batch variances seen in
    ``n_batches`` calls of ``run_batch()`` (a training-mode forward of ``net``). No weights change, and the state
    of every other layer of ``net`` (the AnnealedReLU schedule, which advances on each training-mode forward) is
    restored afterwards; momenta and update flags too."""
    layers = list(net.walk())
    norms = [layer for layer in layers if isinstance(layer, BatchNorm)]
    if not norms or n_batches < 1:
        return
    saved = {id(layer): dict(layer.state) for layer in layers if not isinstance(layer, BatchNorm)}
    settings = [(bn.momentum, bn.update_statistics) for bn in norms]
    try:
        for k in range(1, n_batches + 1):
            for bn in norms:  # moving = ((k - 1) moving + batch) / k: the running mean of the batch statistics
                bn.momentum, bn.update_statistics = (k - 1) / k, True
            run_batch()
    finally:
        for bn, (momentum, flag) in zip(norms, settings):
            bn.momentum, bn.update_statistics = momentum, flag
        for layer in layers:
            if id(layer) in saved:
                layer.state.clear()
                layer.state.update(saved[id(layer)])


class CaloGANTrainer(Trainer):
    """The contract's trainer (calosim.models.base.Trainer) around a :class:`GANTrainer`: NumPy batches in MeV,
    the learning-rate schedule and precise BN between epochs (nothing to keep in ``state``: every source of
    randomness is an RNG the loop checkpoints)."""

    loss_names = ("d_real", "d_fake", "g_bce", "g_energy_mae_gev", "g_occupancy", "g_energy_ratio_mae")

    def __init__(self, model, rng: np.random.Generator):
        super().__init__(model, rng)
        self.gan = GANTrainer(model, rng)
        self.optimizers = {"generator": self.gan.opt_g, "discriminator": self.gan.opt_d}

    def step_products(self, batch: int) -> list[tuple[int, int, int, int]]:
        """The matrix products of one iteration (:meth:`GANTrainer.train_step`): D real and D fake (D forward
        and backward with weight gradients), the fake batch (G forward), and each generator step (G forward,
        D forward, D backward without weight gradients, G backward). Element-wise work is not counted."""
        g, d = self.model.generator, self.model.discriminator
        d_step = pass_products(d, batch, False) + pass_products(d, batch, True)
        g_step = (pass_products(g, batch, False) + pass_products(d, batch, False)
                  + pass_products(d, batch, True, weight_grads=False) + pass_products(g, batch, True))
        return 2 * d_step + pass_products(g, batch, False) + self.model.config.generator_steps * g_step

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the loop before epoch ``epoch`` of ``epochs`` (1-based): both learning rates fall linearly
        from the config's at the first epoch to lr_final_fraction of them at the last (a function of the epoch
        alone, so a resumed run continues the schedule)."""
        cfg = self.model.config
        progress = (epoch - 1) / (epochs - 1) if epochs > 1 else 0.0
        factor = 1.0 - (1.0 - cfg.lr_final_fraction) * progress
        self.gan.opt_g.lr, self.gan.opt_d.lr = cfg.lr_g * factor, cfg.lr_d * factor

    def end_epoch(self) -> None:
        """Called by the loop after each epoch's steps, before validation: precise BN if the config asks."""
        if self.model.config.bn_recalibration_batches > 0:
            self.gan.recalibrate_batchnorm(self.model.config.bn_recalibration_batches)

    def train_step(self, layers, energy, labels=None) -> dict[str, float]:
        """One iteration on per-layer (B, R, C) MeV cells and energies (B,) GeV (NumPy)."""
        be, scale = self.model.backend, self.model.config.image_scale
        images = [be.asarray(x.reshape(*x.shape, 1) / scale) for x in layers]
        return self.gan.train_step(images, be.asarray(energy))
