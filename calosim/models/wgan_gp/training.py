"""The WGAN-GP's training step (the package docstring): critic steps with the gradient penalty, and every
training.critic_steps-th call a generator step with the additions' terms."""

from __future__ import annotations

import numpy as np

from calosim.layers.double_backward import gradient_penalty, input_gradient, input_gradient_backward
from calosim.losses import bce_with_logits
from calosim.models.base import Trainer, check_finite
from calosim.models.units import layer_sums, voxel_fractions
from calosim.optim import Adam


class WGANGPTrainer(Trainer):
    """Critic and generator steps on backend arrays; ``train_step`` takes one real batch (NumPy, MeV / GeV).

    Every call is one critic step; every ``critic_steps``-th call is followed by one generator step (only
    those calls report "g_loss").
    """

    loss_names = ("d_wasserstein", "d_penalty", "grad_norm", "g_loss", "g_energy", "g_empty")

    def __init__(self, model, rng: np.random.Generator):
        cfg = model.config.training
        super().__init__(model, rng)
        be = self.backend
        self.optimizers = {
            "generator": Adam(model.generator.parameters(), cfg.lr_g, cfg.beta1, cfg.beta2, backend=be),
            "critic": Adam(model.critic.parameters(), cfg.lr_d, cfg.beta1, cfg.beta2, backend=be),
        }
        self.critic_calls = 0

    def state(self) -> dict:
        """JSON-able trainer state for checkpoints (the critic-step counter)."""
        return {"critic_calls": self.critic_calls}

    def load_state(self, state: dict) -> None:
        self.critic_calls = int(state.get("critic_calls", 0))

    def critic_loss(self, x_real, x_fake, c, eps):
        """(wasserstein, penalty, mean gradient norm, {Parameter: grad}) for one critic step; the gradients
        are those of L_D = wasserstein + penalty w.r.t. the critic's parameters."""
        model, xp = self.model, self.backend.xp
        n, v = x_real.shape
        critic = model.critic
        scores = critic.forward(model.critic_input(xp.concatenate([x_real, x_fake]), xp.concatenate([c, c])), True)
        wasserstein = float(scores[n:].mean() - scores[:n].mean())
        seed = xp.concatenate([xp.full((n, 1), -1.0 / n, dtype=scores.dtype),
                               xp.full((n, 1), 1.0 / n, dtype=scores.dtype)])
        critic.backward(seed)
        grads = {p: p.grad.copy() for p in critic.parameters()}
        x_hat = eps * x_real + (1.0 - eps) * x_fake
        _, g, tape = input_gradient(critic, model.critic_input(x_hat, c))
        penalty, gg, norm = gradient_penalty(g, v, self.model.config.training.gp_weight, xp)
        _, gp_grads = input_gradient_backward(tape, gg)
        for p, gp in gp_grads.items():
            grads[p] = grads[p] + gp
        return wasserstein, penalty, float(norm.mean()), grads

    def fake_batch(self, energy):
        model = self.model
        z = self.backend.asarray(self.rng.standard_normal((energy.shape[0], model.latent_dim)))
        return z, model.condition(energy)

    def critic_step(self, x_real, energy) -> tuple[float, float, float]:
        n = x_real.shape[0]
        z, c = self.fake_batch(energy)
        x_fake = self.model.generator_forward(z, c, True)[:, :self.model.n_features]
        eps = self.backend.asarray(self.rng.uniform(0.0, 1.0, (n, 1)))
        wasserstein, penalty, norm, grads = self.critic_loss(x_real, x_fake, c, eps)
        check_finite(wasserstein + penalty, "critic")
        for p, g in grads.items():
            p.grad = g
        self.optimizers["critic"].step()
        return wasserstein, penalty, norm

    def generator_loss(self, z, c, energy=None, response=None, empty=None):
        """(L_G, dL_G/d(generator output)) with the critic's weights fixed; leaves the generator ready for
        backward. With the response term, ``energy`` (N,) GeV and the real responses ``response`` (N,)
        add the energy term (its unweighted value in ``last_energy_loss``); with the empty-layer head, the real
        showers' empty layers ``empty`` (N, L) 0/1 its BCE (unweighted value in ``last_empty_loss``)."""
        model, xp = self.model, self.backend.xp
        out = model.generator_forward(z, c, True)
        x_fake = out[:, :model.n_features]
        scores = model.critic.forward(model.critic_input(x_fake, c), True)
        n = scores.shape[0]
        d_in = model.critic.backward(xp.full(scores.shape, -1.0 / n, dtype=scores.dtype))
        loss, dx = float(-scores.mean()), d_in[:, :x_fake.shape[1]]
        self.last_energy_loss = 0.0
        if model.config.response is not None:
            w, v = model.config.response.weight, model.geometry.n_cells
            if model.config.layer_energy is not None:  # the response of the layer-energy outputs
                fractions, grad = model.layer_fractions(x_fake[:, v:])
                grad = xp.concatenate([xp.zeros_like(x_fake[:, :v]), grad], axis=1)
            else:
                fractions, grad = voxel_fractions(x_fake, energy, model.config.units, xp)
            diff = fractions.sum(axis=1) - response
            self.last_energy_loss = float(xp.abs(diff).mean())
            loss += w * self.last_energy_loss
            dx = dx + grad * (w / n * xp.sign(diff)).reshape(-1, 1).astype(grad.dtype)
        self.last_empty_loss = 0.0
        empty_layers = model.config.empty_layers
        if empty_layers is not None:
            logits = out[:, model.n_features:]
            if empty is None:
                raise ValueError("the empty-layer head needs the real showers' empty layers")
            self.last_empty_loss, d_logits = bce_with_logits(logits, empty.astype(logits.dtype), xp)
            loss += empty_layers.weight * self.last_empty_loss
            dx = xp.concatenate([dx, empty_layers.weight * d_logits], axis=1)
        return loss, dx

    def generator_step(self, energy, response=None, empty=None) -> float:
        z, c = self.fake_batch(energy)
        loss, dx = self.generator_loss(z, c, energy, response, empty)
        check_finite(loss, "generator")
        self.model.generator.backward(dx)
        self.optimizers["generator"].step()
        return loss

    def train_step(self, layers_mev, energy_gev, labels=None) -> dict[str, float]:
        model = self.model
        x_real = model.to_training(layers_mev, energy_gev)
        energy = self.backend.asarray(np.asarray(energy_gev, np.float64))
        wasserstein, penalty, norm = self.critic_step(x_real, energy)
        self.critic_calls += 1
        out = {"d_wasserstein": wasserstein, "d_penalty": penalty, "grad_norm": norm}
        cfg = model.config
        if self.critic_calls % cfg.training.critic_steps == 0:
            response = empty = None
            if cfg.response is not None or cfg.empty_layers is not None:
                sums = layer_sums(layers_mev, len(energy_gev))
            if cfg.response is not None:  # the real showers' E_tot / E_in
                response = self.backend.asarray(sums.sum(axis=1) / (1000.0 * np.asarray(energy_gev, np.float64)))
            if cfg.empty_layers is not None:
                empty = self.backend.asarray((sums == 0).astype(np.float64))
            out["g_loss"] = self.generator_step(energy, response, empty)
            if cfg.response is not None:
                out["g_energy"] = self.last_energy_loss
            if cfg.empty_layers is not None:
                out["g_empty"] = self.last_empty_loss
        return out
