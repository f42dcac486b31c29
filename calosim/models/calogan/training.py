"""CaloGAN's training step (reference section 4; batch B of real showers, cells MeV -> training units
MeV / image_scale = GeV):
    1. D on the all-real batch, target 1 (BCE with logits), one Adam step of D;
    2. D on an all-fake batch G(z, E) with E ~ U(energy_range) GeV, target 0, one Adam step of D;
    3. generator_steps times (2): fresh z and E, loss BCE(D(G(z, E)), 1) + energy_loss_weight * MAE(sum of
       the generated cells in GeV, E) [+ the generator terms of the config's additions (energy_ratio,
       occupancy: calosim.models.calogan.additions), none in the paper's config], one Adam step of G (D's
       weights and BatchNorm statistics are left alone). With a term that compares fake i with real shower i
       (occupancy), the generator steps take E from the real batch instead of fresh draws.
Between epochs: the learning-rate decay (lr_decay) and precise BN (precise_bn), when the config has them.
"""

from __future__ import annotations

import numpy as np

from calosim.layers import BatchNorm
from calosim.layers.base import pass_products
from calosim.losses import bce_with_logits, mean_absolute_error
from calosim.models.base import Trainer, check_finite
from calosim.optim import Adam


class GANTrainer:
    """The three kinds of step of one CaloGAN training iteration, on backend arrays.

    images are lists [(B, R_l, C_l, 1)] in training units, energies (B,) GeV.
    """

    def __init__(self, model, rng: np.random.Generator):
        cfg = model.config.training
        self.model = model
        self.backend = be = model.backend
        self.rng = rng  # z and fake energies
        self.opt_g = Adam(model.generator.parameters(), cfg.lr_g, cfg.beta1, cfg.beta2, backend=be)
        self.opt_d = Adam(model.discriminator.parameters(), cfg.lr_d, cfg.beta1, cfg.beta2, backend=be)
        self.terms = model.config.generator_terms()  # the generator-loss terms beyond the paper's
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

    def _targeted_terms(self, targets: dict | None):
        """(term, its batch target) for the config's generator terms that have a target (none without targets:
        the paper's loss)."""
        targets = targets or {}
        return [(t, targets[t.loss_name]) for t in self.terms if targets.get(t.loss_name) is not None]

    def g_loss(self, z, energy, targets: dict | None = None):
        """Generator loss for inputs z, E (D's statistics are not updated): (bce, energy MAE in GeV, images,
        dL/dlogits, d(weighted energy terms)/d(cell sums), {term: value}). The energy terms: energy_loss_weight *
        MAE(sum, E), plus the cell-sum terms of the config's additions (energy_ratio) against ``targets``
        ({loss name: the term's batch target})."""
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
        ds = model.config.training.energy_loss_weight * ds
        values = {}
        for term, target in self._targeted_terms(targets):
            result = term.cell_sums_term(sums, energy, target, xp)
            if result is not None:
                values[term.loss_name], d_sums = result
                ds = ds + d_sums
        return bce, mae, images, dl, ds, values

    def g_step(self, z, energy, targets: dict | None = None) -> tuple[float, float, dict]:
        """One Adam step of G; returns (bce, energy MAE in GeV, {term: value}) before it. targets: {loss name:
        batch target} of the config's generator terms (e.g. the occupancy term's (B, L) per-shower fractions of
        non-zero cells of real showers at the energies ``energy``)."""
        bce, mae, images, dl, ds, values = self.g_loss(z, energy, targets)
        check_finite(bce, "generator (adversarial)")
        check_finite(mae, "generator (energy)")
        d_pre = None
        for term, target in self._targeted_terms(targets):
            result = term.pre_activation_term(self.model.generator.pre_activation, target, self.backend.xp)
            if result is not None:
                values[term.loss_name], d_term = result
                d_pre = d_term if d_pre is None else [a + b for a, b in zip(d_pre, d_term)]
        for name, value in values.items():
            check_finite(value, f"generator ({name})")
        discriminator = self.model.discriminator
        discriminator.set_param_grads(False)  # D is not updated in the G step: only dL/d(images) is needed
        try:
            d_images = discriminator.backward(dl)
        finally:
            discriminator.set_param_grads(True)
        d_energy = ds.reshape(-1, 1, 1, 1)
        self.model.generator.backward([dx + d_energy for dx in d_images], d_pre)
        self.opt_g.step()
        return bce, mae, values

    def train_step(self, real_images, real_energy) -> dict[str, float]:
        """The whole iteration of reference section 4 on one real batch."""
        xp = self.backend.xp
        n = real_energy.shape[0]
        d_real = self.d_step(real_images, real_energy, 1.0)
        z, energy = self.sample_inputs(n)
        fake = self.model.generator.forward([z, energy], True)
        d_fake = self.d_step(fake, energy, 0.0)
        targets = {t.loss_name: t.batch_target(real_images, real_energy, xp) for t in self.terms}
        real_energies = any(t.uses_real_energies for t in self.terms)
        g_bce, g_energy, g_terms = [], [], {t.loss_name: [] for t in self.terms}
        for _ in range(self.model.config.training.generator_steps):
            z, energy = self.sample_inputs(n)
            if real_energies:  # a term compares fake i with real shower i, of the same energy
                energy = real_energy
            bce, mae, values = self.g_step(z, energy, targets)
            g_bce.append(bce)
            g_energy.append(mae)
            for name, value in values.items():
                g_terms[name].append(value)
        losses = {"d_real": d_real, "d_fake": d_fake, "g_bce": float(np.mean(g_bce)),
                  "g_energy_mae_gev": float(np.mean(g_energy))}
        losses.update({name: float(np.mean(v)) for name, v in g_terms.items()})
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
        return 2 * d_step + pass_products(g, batch, False) + self.model.config.training.generator_steps * g_step

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Before epoch ``epoch`` of ``epochs`` (1-based): the learning rates of the epoch (the config's, or with
        lr_decay falling linearly to final_fraction of them at the last epoch)."""
        cfg = self.model.config
        factor = cfg.lr_decay.factor(epoch, epochs) if cfg.lr_decay is not None else 1.0
        self.gan.opt_g.lr, self.gan.opt_d.lr = cfg.training.lr_g * factor, cfg.training.lr_d * factor

    def end_epoch(self) -> None:
        """After each epoch's steps, before validation: precise BN if the config has it."""
        if self.model.config.precise_bn is not None:
            self.gan.recalibrate_batchnorm(self.model.config.precise_bn.batches)

    def train_step(self, layers, energy, labels=None) -> dict[str, float]:
        """One iteration on per-layer (B, R, C) MeV cells and energies (B,) GeV (NumPy)."""
        be, scale = self.model.backend, self.model.config.training.image_scale
        images = [be.asarray(x.reshape(*x.shape, 1) / scale) for x in layers]
        return self.gan.train_step(images, be.asarray(energy))
