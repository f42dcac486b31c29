"""The WGAN-GP model (the package docstring): its networks, units, layer-energy outputs and generation."""

from __future__ import annotations

import numpy as np

from calosim.data.dataset import mean_layer_fractions
from calosim.errors import ConfigError
from calosim.layers import Dense, LeakyReLU, ReLU, Sequential, SplitReLU
from calosim.layers.activations import sigmoid
from calosim.models.base import ShowerModel, check_unique_names
from calosim.models.units import energy_condition, latent_seeded_rng, layer_sums, training_to_voxels, voxels_to_training
from calosim.models.wgan_gp.config import CONFIGS, WGANGPConfig
from calosim.models.wgan_gp.training import WGANGPTrainer


class WGANGP(ShowerModel):
    model_type = "wgan-gp"
    description = "FastCaloGAN-style conditional WGAN-GP on flattened voxels"
    config_class = WGANGPConfig
    configs = CONFIGS
    reference_config = "fastcalogan"
    trainer_class = WGANGPTrainer

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
        arch, layer_energy = config.architecture, config.layer_energy
        v = geometry.n_cells + (geometry.n_layers if layer_energy is not None else 0)  # features the critic sees
        logits = geometry.n_layers if config.empty_layers is not None else 0
        layers = []
        for width in arch.g_hidden:
            layers += [Dense(width, kernel_init="he_uniform"), LeakyReLU(arch.g_alpha)]
        if layer_energy is not None and (layer_energy.leak > 0 or logits):
            output = SplitReLU(geometry.n_cells, layer_energy.leak, n_linear=logits)
        else:
            output = ReLU()
        generator = Sequential([*layers, Dense(v + logits), output], name="generator")
        generator.build((arch.latent_dim + 1,), backend, rng)
        width = arch.d_hidden or v
        layers = []
        for _ in range(arch.d_layers):
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
        return self.geometry.n_cells + (self.geometry.n_layers if self.config.layer_energy is not None else 0)

    @property
    def layer_scales(self) -> np.ndarray:
        """s_l (L,) of the layer-energy features (see the module docstring): fitted, or 1."""
        return self.fitted.get("layer_energy_scales", np.ones(self.geometry.n_layers))

    @classmethod
    def fit(cls, config: WGANGPConfig, data_path, rows: range, max_rows: int = 50_000) -> dict:
        """With layer_energy.scaled: layer_energy_scales = the mean E_l / E_inc of the first ``max_rows``
        training rows (floored at 1e-6, so that a layer the data leaves empty keeps a finite unit)."""
        if config.layer_energy is None or not config.layer_energy.scaled:
            return {}
        return {"layer_energy_scales": np.maximum(mean_layer_fractions(data_path, rows, max_rows), 1e-6)}

    @property
    def batch_order(self) -> str:
        return "energy_points" if self.config.energy_points is not None else "shuffled"

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
        x = voxels_to_training(flat, energy_gev, cfg.units)
        if cfg.layer_energy is not None:
            e = layer_sums(layers_mev, len(energy_gev))
            u = e / (1000.0 * np.asarray(energy_gev, np.float64))[:, None] / self.layer_scales
            x = np.concatenate([x, u ** cfg.layer_energy.power], axis=1)
        return self.backend.asarray(x)

    def layer_energy_fractions(self, t, xp=None):
        """E_l / E_inc = s_l max(t, 0)^(1/p) (N, L) of the layer-energy outputs t (N, L)."""
        q = 1.0 / self.config.layer_energy.power
        xp = xp or self.backend.xp
        s = xp.asarray(self.layer_scales, dtype=t.dtype)
        t = xp.maximum(t, 0.0)
        return s * t * t if q == 2.0 else s * t ** (q - 1.0) * t

    def layer_fractions(self, t):
        """E_l / E_inc = s_l max(t, 0)^(1/p) (N, L) of the layer-energy outputs t (N, L), and its derivative."""
        q = 1.0 / self.config.layer_energy.power
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
        cells = training_to_voxels(x[:, :v], energy_gev, self.config.units, xp)
        if self.config.layer_energy is not None:  # each layer rescaled to the generated layer energy
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
        if self.config.empty_layers is not None:
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
        if self.config.empty_layers is not None:
            xp, v, n_layers = self.backend.xp, self.geometry.n_cells, self.geometry.n_layers
            rng = rng if rng is not None else latent_seeded_rng(z, self.backend)
            dtype = np.float32 if out.dtype == np.float32 else np.float64
            u = self.backend.asarray(rng.random((out.shape[0], n_layers), dtype=dtype))
            empty = u < sigmoid(out[:, self.n_features:], xp)
            x = xp.concatenate([x[:, :v], xp.where(empty, 0.0, x[:, v:]).astype(x.dtype)], axis=1)
        return self.to_layers(x, energy)
