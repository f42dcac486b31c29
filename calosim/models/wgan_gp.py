"""A FastCaloGAN-style conditional WGAN-GP of dense layers on flattened voxels (reference section 6).

Works for any geometry (CaloGAN layers, CaloChallenge binnings): the showers are flattened by
``Geometry.flatten`` into V voxels. Notation: N batch, Z latent size, V voxels, c (N, 1) the condition.

Training units: x = voxel energy / incident energy (both in MeV) * ``voxel_scale``, i.e. the fraction of the
incident energy each voxel holds; ``generate`` multiplies back by E (MeV) / voxel_scale.
Condition: c = log(E / E_min) / log(E_max / E_min), (E_min, E_max) = energy_range (GeV), stored with the model.

Generator  G(z, c): concat[z (N, Z), c] -> Dense(50) -> LeakyReLU -> Dense(100) -> LeakyReLU -> Dense(200)
                    -> LeakyReLU -> Dense(V) -> ReLU (non-negative energies)      (widths: config.g_hidden)
Critic     D(x, c): concat[x (N, V), c] -> 3 x [Dense(V) -> ReLU] -> Dense(1)   (widths: config.d_hidden or V)

Losses (per critic step, one real batch x_r with its energies; fakes x_f = G(z, c) at the same energies):
    L_D = mean D(x_f) - mean D(x_r) + lambda mean_n (||d D(x_hat_n, c_n) / d x_hat_n||_2 - 1)^2,
    x_hat = eps x_r + (1 - eps) x_f, eps ~ U(0, 1) per shower, lambda = gp_weight (10).
The penalty is on the voxel part of the critic's input only (the condition is the same for x_r, x_f and x_hat
and is not interpolated), as in FastCaloGAN, whose critic takes the label as a separate input. Its weight
gradient is the hand-written double backward of calosim.layers.double_backward.
After every ``critic_steps`` (5) critic steps one generator step: L_G = -mean D(G(z, c), c), with the
energies of the current real batch. Adam 1e-4, beta1 0.55, batch 128.
Optional energy term (``energy_weight`` > 0, off in the FastCaloGAN config): L_G += energy_weight *
mean_n |r(G(z_n, c_n)) - r_n|, r = sum of the cells (MeV) / E_inc (MeV) the response, r_n that of the real
shower at the same incident energy (CaloGAN's energy-conservation term as a response; the critic alone leaves
the total energy several per cent low), its gradient through the inverse transform.

Optional layer energies (``layer_energies``): L more generator outputs (and critic inputs)
t_l = (E_l / E_inc / s_l)^p, p = ``layer_energy_power`` (a root keeps a faint layer visible without the
exponential sensitivity of the voxels' log units), s_l the model's fitted ``layer_energy_scales`` (1 without
them; with ``layer_energy_scaled`` WGANGP.fit sets them to the training data's mean E_l / E_inc, so that every t is
of order 1: CaloGAN's layer 2 holds 0.2% of the energy, and unscaled its t was too small for the critic to
weigh). Generation rescales each layer's cells to sum s_l max(t_l, 0)^(1/p) E_inc: the voxels give the
shape, t the energies (through the log transform a shower's energy is only as good as its hottest voxels),
and t_l <= 0 is an empty layer (Geant4's e+ leave layer 2 empty in 2.6% of showers, 28% below 10 GeV). The
energy term then uses r = sum_l s_l max(t_l, 0)^(1/p). With ``layer_energy_leak`` > 0 the t outputs end in
a LeakyReLU of that slope instead of the voxels' ReLU: under a plain ReLU the faint layer 2's output died
early in training (t_2 = 0 for 97-100% of the showers).

Optional empty-layer head (``layer_empty_head``, with the layer energies): L more generator outputs, logits
k_l of P(layer l is empty | E), not seen by the critic. Trained by L_G += layer_empty_weight *
BCE(sigmoid(k), e), e_nl = 1 where the real shower n of the batch (same incident energy) has E_l = 0: with z
independent of the real shower, the optimum is P(empty | E). Generation draws the empty layers, u < sigmoid(k)
with u ~ U(0, 1) seeded by the latent vectors, and sets their t to 0. A critic cannot see a 2.6% point mass
at t = 0 next to a continuum of faint layers; the layer-2 energies at 1-10 GeV then never reached 0.

Optional per-energy-point schedule (``energy_schedule``): when the training data has a few discrete incident
energies, each epoch visits them in increasing order, all the batches of one energy point before the next
(calosim.data.dataset.energy_point_batches); with continuous energies it falls back to the usual shuffled order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calosim.data.dataset import mean_layer_fractions
from calosim.errors import ConfigError
from calosim.layers import Dense, LeakyReLU, ReLU, Sequential, SplitReLU
from calosim.layers.activations import sigmoid
from calosim.layers.double_backward import gradient_penalty, input_gradient, input_gradient_backward
from calosim.losses import bce_with_logits
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
class WGANGPConfig(ConfigMixin):
    name: str = "fastcalogan"
    latent_dim: int = 50
    g_hidden: tuple[int, ...] = (50, 100, 200)
    g_alpha: float = 0.2  # LeakyReLU slope of the generator's hidden layers
    d_hidden: int | None = None  # critic width; None: V (FastCaloGAN)
    d_layers: int = 3
    gp_weight: float = 10.0
    critic_steps: int = 5
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.55
    beta2: float = 0.999
    batch_size: int = 128
    epochs: int = 100
    energy_schedule: bool = False
    energy_weight: float = 0.0  # generator: weight of mean |r_fake - r_real| (responses at the same E)
    layer_energies: bool = False  # L more outputs: the layer energies (see the module docstring)
    layer_energy_power: float = 0.5  # t_l = (E_l / E_inc)^this
    layer_energy_leak: float = 0.0  # slope of the t outputs below 0 (0: the voxels' ReLU)
    layer_energy_scaled: bool = False  # s_l fitted to the training data (WGANGP.fit, model state); False: 1
    layer_empty_head: bool = False  # L more outputs: logits of P(layer empty | E) (needs layer_energies)
    layer_empty_weight: float = 1.0  # weight of their BCE in the generator loss
    transform: str = "log"  # training units: "log" or "fraction" (calosim.models.base.voxels_to_training)
    voxel_scale: float = 20.0  # "fraction": x = cell / E_inc * this
    log_epsilon_mev: float = 0.1  # "log": x = log(1 + cell / this) / log_scale
    log_scale: float = 10.0  # training units: voxel / incident energy * this
    energy_range: tuple[float, float] | None = None  # GeV; None: the training data's

    def __post_init__(self):
        self._check_common()
        if self.transform not in VOXEL_TRANSFORMS or self.log_epsilon_mev <= 0 or self.log_scale <= 0:
            raise ConfigError(f"config {self.name!r}: transform one of {VOXEL_TRANSFORMS}, log_epsilon_mev > 0, "
                              "log_scale > 0")
        if self.energy_weight < 0 or not 0 < self.layer_energy_power <= 1 or not 0 <= self.layer_energy_leak < 1:
            raise ConfigError(f"config {self.name!r}: energy_weight >= 0, 0 < layer_energy_power <= 1, "
                              "0 <= layer_energy_leak < 1")
        if self.layer_empty_head and (not self.layer_energies or self.layer_empty_weight <= 0):
            raise ConfigError(f"config {self.name!r}: layer_empty_head needs layer_energies and "
                              "layer_empty_weight > 0")
        if self.critic_steps < 1 or self.d_layers < 1 or not self.g_hidden or self.voxel_scale <= 0:
            raise ConfigError(f"config {self.name!r}: critic_steps >= 1, d_layers >= 1, g_hidden not empty, "
                              "voxel_scale > 0")


CONFIGS = {
    "fastcalogan": WGANGPConfig(),
    # same architecture, more generator steps per epoch on a 4000-shower file: higher learning rates; the
    # layer-energy features (scaled, with a leaky tail), the empty-layer head and the response term: on 3200
    # Geant4 e+ after 150 epochs, seeds 0-2 beat the untrained state on all 24 observables, E_tot / E_in
    # 0.988-0.996 (Geant4 0.993; 0.87 without the layer energies and the response term)
    "small": WGANGPConfig(name="small", lr_g=2e-4, lr_d=2e-4, batch_size=64, epochs=150, layer_energies=True,
                          energy_weight=10.0, layer_energy_leak=0.1, layer_energy_scaled=True,
                          layer_empty_head=True),
}


class WGANGP(ShowerModel):
    model_type = "wgan-gp"
    description = "FastCaloGAN-style conditional WGAN-GP on flattened voxels"
    config_class = WGANGPConfig
    configs = CONFIGS
    reference_config = "fastcalogan"

    def __init__(self, config: WGANGPConfig, geometry, generator: Sequential, critic: Sequential, backend,
                 particle="unknown", energy_range=(1.0, 100.0), fitted: dict | None = None):
        super().__init__(config, geometry, backend, particle, energy_range, fitted)
        self.generator = generator
        self.critic = critic

    @classmethod
    def build(cls, config: WGANGPConfig, geometry, backend, rng: np.random.Generator, particle="unknown",
              energy_range=(1.0, 100.0), fitted: dict | None = None) -> WGANGP:
        scales = (fitted or {}).get("layer_energy_scales")
        if scales is not None and (len(scales) != geometry.n_layers or not np.all(np.asarray(scales) > 0)):
            raise ConfigError(f"layer_energy_scales {list(scales)}: need {geometry.n_layers} values > 0, one per "
                              "layer of the geometry")
        v = geometry.n_cells + (geometry.n_layers if config.layer_energies else 0)  # features the critic sees
        logits = geometry.n_layers if config.layer_empty_head else 0
        layers = []
        for width in config.g_hidden:
            layers += [Dense(width, kernel_init="he_uniform"), LeakyReLU(config.g_alpha)]
        if config.layer_energies and (config.layer_energy_leak > 0 or logits):
            output = SplitReLU(geometry.n_cells, config.layer_energy_leak, n_linear=logits)
        else:
            output = ReLU()
        generator = Sequential([*layers, Dense(v + logits), output], name="generator")
        generator.build((config.latent_dim + 1,), backend, rng)
        width = config.d_hidden or v
        layers = []
        for _ in range(config.d_layers):
            layers += [Dense(width, kernel_init="he_uniform"), ReLU()]
        critic = Sequential([*layers, Dense(1)], name="critic")
        critic.build((v + 1,), backend, rng)
        model = cls(config, geometry, generator, critic, backend, particle, energy_range, fitted)
        check_unique_names(model.networks())
        return model

    def networks(self) -> dict:
        return {"generator": self.generator, "critic": self.critic}

    @property
    def n_features(self) -> int:
        """Generator outputs the critic sees (voxels and layer energies); the empty-layer logits follow."""
        return self.geometry.n_cells + (self.geometry.n_layers if self.config.layer_energies else 0)

    @property
    def layer_scales(self) -> np.ndarray:
        """s_l (L,) of the layer-energy features (see the module docstring): fitted, or 1."""
        return self.fitted.get("layer_energy_scales", np.ones(self.geometry.n_layers))

    @classmethod
    def fit(cls, config: WGANGPConfig, data_path, rows: range, max_rows: int = 50_000) -> dict:
        """With ``layer_energy_scaled``: layer_energy_scales = the mean E_l / E_inc of the first ``max_rows``
        training rows (floored at 1e-6, so that a layer the data leaves empty keeps a finite unit)."""
        if not (config.layer_energies and config.layer_energy_scaled):
            return {}
        return {"layer_energy_scales": np.maximum(mean_layer_fractions(data_path, rows, max_rows), 1e-6)}

    @property
    def batch_order(self) -> str:
        return "energy_points" if self.config.energy_schedule else "shuffled"

    @classmethod
    def split_stored_config(cls, d: dict) -> tuple[dict, dict]:
        """Files written before the scales became model state kept them as the config field
        ``layer_energy_scales``."""
        d = dict(d)
        scales = d.pop("layer_energy_scales", None)
        return d, ({"layer_energy_scales": np.asarray(scales, np.float64)} if scales is not None else {})


    # ------------------------------------------------------------------ units
    def to_training(self, layers_mev, energy_gev):
        """Per-layer (N, R, C) MeV (NumPy) and E (N,) GeV -> x (N, V [+ L]) training units (backend array)."""
        cfg = self.config
        flat = self.geometry.flatten([np.asarray(x, np.float64) for x in layers_mev])
        x = voxels_to_training(flat, energy_gev, cfg)
        if cfg.layer_energies:
            e = layer_sums(layers_mev, len(energy_gev))
            u = e / (1000.0 * np.asarray(energy_gev, np.float64))[:, None] / self.layer_scales
            x = np.concatenate([x, u ** cfg.layer_energy_power], axis=1)
        return self.backend.asarray(x)

    def layer_energy_fractions(self, t, xp=None):
        """E_l / E_inc = s_l max(t, 0)^(1/p) (N, L) of the layer-energy outputs t (N, L)."""
        q = 1.0 / self.config.layer_energy_power
        xp = xp or self.backend.xp
        s = xp.asarray(self.layer_scales, dtype=t.dtype)
        t = xp.maximum(t, 0.0)
        return s * t * t if q == 2.0 else s * t ** (q - 1.0) * t

    def layer_fractions(self, t):
        """E_l / E_inc = s_l max(t, 0)^(1/p) (N, L) of the layer-energy outputs t (N, L), and its derivative."""
        q = 1.0 / self.config.layer_energy_power
        xp = self.backend.xp
        s = xp.asarray(self.layer_scales, dtype=t.dtype)
        t = xp.maximum(t, 0.0)
        if q == 2.0:
            return s * t * t, 2.0 * s * t
        tq = t ** (q - 1.0)
        return s * tq * t, q * s * tq * (t > 0)

    def to_layers(self, x, energy_gev) -> list:
        """x (N, V [+ L]) training units and E (N,) GeV (backend arrays) -> [(N, R_l, C_l)] MeV backend arrays."""
        return self.geometry.unflatten(self.to_cells(x, energy_gev))

    def to_cells(self, x, energy_gev, xp=None):
        """x (N, V [+ L]) training units and E (N,) GeV -> cells (N, V) MeV; ``xp`` the array module (default
        the backend's; calosim.export passes its graph)."""
        xp, v = xp or self.backend.xp, self.geometry.n_cells
        cells = training_to_voxels(x[:, :v], energy_gev, self.config, xp)
        if self.config.layer_energies:  # each layer rescaled to the generated layer energy
            target = self.layer_energy_fractions(x[:, v:], xp) * (1000.0 * energy_gev).reshape(-1, 1)
            off, parts = self.geometry.offsets, []
            for i in range(self.geometry.n_layers):
                part = cells[:, off[i]:off[i + 1]]
                total = part.sum(axis=1, keepdims=True)
                parts.append(part * (target[:, i:i + 1] / xp.maximum(total, 1e-30)))  # t <= 0: empty
            cells = xp.concatenate(parts, axis=1).astype(x.dtype)
        return cells

    # ------------------------------------------------------------------ passes
    def generator_forward(self, z, c, training: bool = True, graph=None):
        """The generator's output for z (N, Z) and c (N, 1); with ``graph``, on that ONNX graph (inference)."""
        if graph is not None:
            return graph.layer(self.generator, graph.concatenate([z, c], axis=1))
        return self.generator.forward(self.backend.xp.concatenate([z, c], axis=1), training)

    def critic_input(self, x, c):
        return self.backend.xp.concatenate([x, c], axis=1)

    def export_onnx(self, graph) -> None:
        """:meth:`generate` on an ONNX graph (ShowerModel.export_onnx); the empty-layer head's uniform numbers
        are the input empty_layer_uniform (N, L)."""
        energy = graph.energy()
        out = self.generator_forward(graph.latent(self.latent_dim), energy_condition(energy, self.energy_range, graph),
                                     graph=graph)
        x = out[:, :self.n_features]
        if self.config.layer_empty_head:
            v, n_layers = self.geometry.n_cells, self.geometry.n_layers
            u = graph.uniforms("empty_layer_uniform", n_layers, "layer l is empty where u_l < sigmoid(logit_l)")
            empty = u < sigmoid(out[:, self.n_features:], graph)
            x = graph.concatenate([x[:, :v], graph.where(empty, 0.0, x[:, v:])], axis=1)
        graph.showers(self.geometry, self.to_cells(x, energy, graph))

    def generate(self, z, energy, labels=None, training: bool = False, rng: np.random.Generator | None = None) -> list:
        """[(N, R_l, C_l)] MeV for z (N, Z) and E (N,) GeV (backend arrays); ``rng``: the empty-layer draws
        (default: seeded by the bytes of z; unused without the empty-layer head)."""
        out = self.generator_forward(z, self.condition(energy), training)
        x = out[:, :self.n_features]
        if self.config.layer_empty_head:
            xp, v, n_layers = self.backend.xp, self.geometry.n_cells, self.geometry.n_layers
            rng = rng if rng is not None else latent_seeded_rng(z, self.backend)
            dtype = np.float32 if out.dtype == np.float32 else np.float64
            u = self.backend.asarray(rng.random((out.shape[0], n_layers), dtype=dtype))
            empty = u < sigmoid(out[:, self.n_features:], xp)
            x = xp.concatenate([x[:, :v], xp.where(empty, 0.0, x[:, v:]).astype(x.dtype)], axis=1)
        return self.to_layers(x, energy)


class WGANGPTrainer(Trainer):
    """Critic and generator steps on backend arrays; ``train_step`` takes one real batch (NumPy, MeV / GeV).

    Every call is one critic step; every ``critic_steps``-th call is followed by one generator step (only
    those calls report "g_loss").
    """

    loss_names = ("d_wasserstein", "d_penalty", "grad_norm", "g_loss", "g_energy", "g_empty")

    def __init__(self, model: WGANGP, rng: np.random.Generator):
        cfg = model.config
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
        penalty, gg, norm = gradient_penalty(g, v, self.model.config.gp_weight, xp)
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
        backward. With config energy_weight > 0, ``energy`` (N,) GeV and the real responses ``response`` (N,)
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
        w = model.config.energy_weight
        if w > 0:
            v = model.geometry.n_cells
            if model.config.layer_energies:  # the response of the layer-energy outputs
                fractions, grad = model.layer_fractions(x_fake[:, v:])
                grad = xp.concatenate([xp.zeros_like(x_fake[:, :v]), grad], axis=1)
            else:
                fractions, grad = voxel_fractions(x_fake, energy, model.config, xp)
            diff = fractions.sum(axis=1) - response
            self.last_energy_loss = float(xp.abs(diff).mean())
            loss += w * self.last_energy_loss
            dx = dx + grad * (w / n * xp.sign(diff)).reshape(-1, 1).astype(grad.dtype)
        self.last_empty_loss = 0.0
        if model.config.layer_empty_head:
            logits = out[:, model.n_features:]
            if empty is None:
                raise ValueError("the empty-layer head needs the real showers' empty layers")
            self.last_empty_loss, d_logits = bce_with_logits(logits, empty.astype(logits.dtype), xp)
            loss += model.config.layer_empty_weight * self.last_empty_loss
            dx = xp.concatenate([dx, model.config.layer_empty_weight * d_logits], axis=1)
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
        if self.critic_calls % model.config.critic_steps == 0:
            response = empty = None
            if model.config.energy_weight > 0 or model.config.layer_empty_head:
                sums = layer_sums(layers_mev, len(energy_gev))
            if model.config.energy_weight > 0:  # the real showers' E_tot / E_in
                response = self.backend.asarray(sums.sum(axis=1) / (1000.0 * np.asarray(energy_gev, np.float64)))
            if model.config.layer_empty_head:
                empty = self.backend.asarray((sums == 0).astype(np.float64))
            out["g_loss"] = self.generator_step(energy, response, empty)
            if model.config.energy_weight > 0:
                out["g_energy"] = self.last_energy_loss
            if model.config.layer_empty_head:
                out["g_empty"] = self.last_empty_loss
        return out


WGANGP.trainer_class = WGANGPTrainer  # defined after the model it trains
