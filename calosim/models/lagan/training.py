"""LAGAN's training iteration (the package docstring) and the additions' generator terms."""

from __future__ import annotations

import numpy as np

from calosim.losses import bce_with_logits
from calosim.models.base import Trainer, check_finite
from calosim.models.lagan.networks import IMAGE_SHAPE
from calosim.optim import Adam


class LAGANTrainer(Trainer):
    """The LAGAN iteration on one real batch (NumPy: [(B, 25, 25)] MeV, (B,) GeV, labels (B,) or None)."""

    loss_names = ("d_loss", "d_aux", "g_loss", "g_aux", "g_energy", "g_mean_image")

    def __init__(self, model, rng: np.random.Generator):
        cfg = model.config.training
        super().__init__(model, rng)
        be = self.backend
        self.optimizers = {
            "generator": Adam(model.generator.parameters(), cfg.lr_g, cfg.beta1, cfg.beta2, backend=be),
            "discriminator": Adam(model.discriminator.parameters(), cfg.lr_d, cfg.beta1, cfg.beta2, backend=be),
        }

    def d_loss(self, images, energy, real_fake, aux, training: bool = True):
        """(loss, bce real/fake, bce aux, dloss/dlogits) of D against targets real_fake (N,) and aux (N,)."""
        model, xp = self.model, self.backend.xp
        logits = model.discriminator.forward([images, model.condition(energy), energy.reshape(-1, 1)], training)
        b1, d1 = bce_with_logits(logits[:, :1], real_fake.reshape(-1, 1), xp)
        b2, d2 = bce_with_logits(logits[:, 1:], aux.reshape(-1, 1), xp)
        w = model.config.training.aux_weight
        return b1 + w * b2, b1, b2, xp.concatenate([d1, w * d2], axis=1)

    def train_step(self, layers_mev, energy_gev, labels=None) -> dict[str, float]:
        model, be, cfg, rng = self.model, self.backend, self.model.config, self.rng
        real_label = cfg.label_smoothing.real_label if cfg.label_smoothing is not None else 1.0
        n = len(energy_gev)
        labels = np.zeros(n, np.int64) if labels is None else np.asarray(labels, np.int64)
        real = be.asarray(np.asarray(layers_mev[0], np.float64).reshape(n, *IMAGE_SHAPE, 1) / cfg.training.image_scale)
        energy = np.asarray(energy_gev, np.float64)
        # discriminator on real + fake
        fake_labels = model.sample_labels(rng, n)
        z = be.asarray(model.sample_latent(rng, n))
        e = be.asarray(energy)
        fake = model.generator_forward(z, fake_labels, e, True)
        targets = np.concatenate([np.full(n, real_label), np.zeros(n)])
        flip = rng.random(2 * n) < cfg.training.label_flip
        targets[flip] = 1.0 - targets[flip]
        aux = np.concatenate([labels, fake_labels]).astype(np.float64)
        xp = be.xp
        d_total, d_bce, d_aux, dl = self.d_loss(xp.concatenate([real, fake]), xp.concatenate([e, e]),
                                                be.asarray(targets), be.asarray(aux))
        check_finite(d_total, "discriminator")
        model.discriminator.backward(dl)
        self.optimizers["discriminator"].step()
        # generator on 2B fresh samples (energies: the real batch's, twice)
        g_labels = model.sample_labels(rng, 2 * n)
        z = be.asarray(model.sample_latent(rng, 2 * n))
        e2 = be.asarray(np.concatenate([energy, energy]))
        images = model.generator_forward(z, g_labels, e2, True)
        d = model.discriminator
        d.set_update_statistics(False)
        try:
            g_total, g_bce, g_aux, dl = self.d_loss(images, e2, xp.ones(2 * n, dtype=images.dtype),
                                                    be.asarray(g_labels.astype(np.float64)))
        finally:
            d.set_update_statistics(True)
        d_images = d.backward(dl)[0]
        losses = {"d_loss": d_bce, "d_aux": d_aux, "g_loss": g_bce, "g_aux": g_aux}
        if cfg.response is not None:
            energy_loss, d_energy = self.energy_loss(images, xp.concatenate([real, real]), e2)
            g_total += cfg.response.weight * energy_loss
            d_images = d_images + cfg.response.weight * d_energy
            losses["g_energy"] = energy_loss
        if cfg.mean_image is not None:
            mean_loss, d_mean = self.mean_image_loss(images, real, e2, e)
            g_total += cfg.mean_image.weight * mean_loss
            d_images = d_images + cfg.mean_image.weight * d_mean
            losses["g_mean_image"] = mean_loss
        check_finite(g_total, "generator")
        model.generator.backward(d_images)
        self.optimizers["generator"].step()
        return losses

    def mean_image_loss(self, fake, real, fake_energy, real_energy):
        """Feature matching on the first moment of the images: sum_p |m_fake,p - m_real,p|, m the batch mean of
        image / E (per pixel p, E in GeV: training units for image_scale 1000 are GeV). A batch statistic, so it
        leaves each shower free; it pulls the diffuse energy a linear-unit discriminator cannot see out of the
        outer cells (a few per cent of it there double the lateral width). Returns (loss, dloss/dfake)."""
        xp = self.backend.xp
        nf = fake.shape[0]
        inv_f = (1.0 / fake_energy).reshape(-1, 1, 1, 1)
        diff = (fake * inv_f).mean(axis=0) - (real * (1.0 / real_energy).reshape(-1, 1, 1, 1)).mean(axis=0)
        grad = (xp.sign(diff)[None] * inv_f / nf).astype(fake.dtype)
        return float(xp.abs(diff).sum()), grad

    def energy_loss(self, fake, real, energy):
        """CaloGAN's energy-conservation term for one layer: mean_i |sum(fake_i) - sum(real_i)| / E_i over pairs
        generated at the real shower's incident energy E_i (GeV, training units = GeV for image_scale 1000),
        i.e. the L1 distance of the responses; its minimum puts each energy's generated sum at the median of the
        real sums. (CaloGAN's |sum - E_in| assumes all layers; one layer or a jet image carries only part of E.)
        Returns (loss, dloss/dfake)."""
        xp, n = self.backend.xp, fake.shape[0]
        scale = self.model.config.training.image_scale / 1000.0
        inv = (scale / energy).reshape(n, 1)
        diff = (fake.reshape(n, -1).sum(axis=1, keepdims=True) - real.reshape(n, -1).sum(axis=1, keepdims=True)) * inv
        grad = (xp.sign(diff) * inv / n).astype(fake.dtype)
        return float(xp.abs(diff).mean()), xp.broadcast_to(grad.reshape(n, 1, 1, 1), fake.shape)
