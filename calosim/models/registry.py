"""Model types by name: what `calosim train --model-type` builds and what `calosim generate` dispatches on.

Every model type provides
    configs         {name: frozen config}; the config has to_dict / from_dict / replace, latent_dim,
                    batch_size, epochs and energy_range (GeV, None: the training data's)
    model_class     .build(config, geometry, backend, rng, particle, energy_range) -> model with
                    networks() ({"generator": Layer, ...}, what a model file stores), condition(E),
                    sample_latent(rng, n), sample_labels(rng, n), generate(z, E, labels, training) -> [(N, R, C)] MeV
    trainer_class   (model, rng) with optimizers {name: Adam}, train_step(layers MeV, E GeV, labels) -> losses,
                    state() / load_state() (JSON-able counters)
    fit_config      (config, data path, training rows) -> the config with the fields the training data
                    decides (WGAN-GP's layer-energy scales); the identity for the others
CaloGAN's trainer (calosim.train.CaloGANTrainer, around calosim.train.GANTrainer) is looked up lazily.

Model files of every type use the layout of calosim.checkpoint (attribute ``model`` = the type name,
``config`` its JSON, one group per network, e.g. /generator and /critic for wgan-gp, /encoder and /decoder for
vae); ``save`` / ``load`` / ``read_header`` here are calosim.checkpoint's save_model / load_model /
read_model_header.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from calosim.checkpoint import load_model as load  # noqa: F401  (re-exported: registry.load)
from calosim.checkpoint import read_model_header as read_header  # noqa: F401
from calosim.checkpoint import save_model as save  # noqa: F401
from calosim.errors import ConfigError
from calosim.models import lagan, vae, wgan_gp
from calosim.models.calogan import CaloGAN
from calosim.models.config import CONFIGS as CALOGAN_CONFIGS
from calosim.models.config import CaloGANConfig, load_config_file


def _config_unchanged(config, data_path, rows):
    return config


@dataclass(frozen=True)
class ModelType:
    name: str
    model_class: type
    config_class: type
    configs: dict
    default_config: str
    trainer_class: Callable
    description: str
    fit_config: Callable = _config_unchanged

    def get_config(self, name: str | None = None, config_file=None, **overrides):
        """The named configuration (default: the type's ``small``), then ``config_file``'s fields, then
        ``overrides`` (None = keep)."""
        name = name or self.default_config
        if name not in self.configs:
            raise ConfigError(f"unknown config {name!r} of model type {self.name!r}; choose one of "
                              f"{', '.join(self.configs)}")
        config = self.configs[name]
        changes = load_config_file(config_file) if config_file is not None else {}
        changes.update({k: v for k, v in overrides.items() if v is not None})
        return config.replace(**changes) if changes else config

    def config_from_dict(self, d: dict):
        return self.config_class.from_dict(d)

    def build(self, config, geometry, backend, rng: np.random.Generator, particle: str = "unknown",
              energy_range=(1.0, 100.0)):
        return self.model_class.build(config, geometry, backend, rng, particle=particle, energy_range=energy_range)


def _calogan_trainer(model, rng: np.random.Generator):
    from calosim.train import CaloGANTrainer  # calosim.train imports this module

    return CaloGANTrainer(model, rng)


MODEL_TYPES: dict[str, ModelType] = {
    "calogan": ModelType("calogan", CaloGAN, CaloGANConfig, CALOGAN_CONFIGS, "small", _calogan_trainer,
                         "CaloGAN: per-layer LC2D streams with attention, BCE + energy loss"),
    "wgan-gp": ModelType("wgan-gp", wgan_gp.WGANGP, wgan_gp.WGANGPConfig, wgan_gp.CONFIGS, "small",
                         wgan_gp.WGANGPTrainer, "FastCaloGAN-style conditional WGAN-GP on flattened voxels",
                         wgan_gp.fit_config),
    "vae": ModelType("vae", vae.VAE, vae.VAEConfig, vae.CONFIGS, "small", vae.VAETrainer,
                     "conditional VAE of dense layers on flattened voxels"),
    "lagan": ModelType("lagan", lagan.LAGAN, lagan.LAGANConfig, lagan.CONFIGS, "small", lagan.LAGANTrainer,
                       "LAGAN for one 25 x 25 layer, conditioned on energy and class"),
}
MODEL_TYPE_NAMES = tuple(MODEL_TYPES)


def get_model_type(name: str) -> ModelType:
    if name not in MODEL_TYPES:
        raise ConfigError(f"unknown model type {name!r}; choose one of {', '.join(MODEL_TYPES)}")
    return MODEL_TYPES[name]


def model_type_of(model) -> str:
    return getattr(model, "model_type", "calogan")


def networks_of(model) -> dict:
    """{"generator": Layer, ...} of any model (CaloGAN: generator and discriminator)."""
    if hasattr(model, "networks"):
        return model.networks()
    return {"generator": model.generator, "discriminator": model.discriminator}


def latent_dim_of(model) -> int:
    return int(model.config.latent_dim)
