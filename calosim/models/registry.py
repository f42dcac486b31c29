"""Model types by name: what ``calosim train --model-type`` builds and what a model file's ``model`` attribute
names. Each entry is a class of the model contract (calosim.models.base.ShowerModel); a new model type is one
module (or package) in calosim/models/ and one line here."""

from __future__ import annotations

import numpy as np

from calosim.errors import ConfigError
from calosim.models.base import ShowerModel
from calosim.models.calogan import CaloGAN
from calosim.models.lagan import LAGAN
from calosim.models.vae import VAE
from calosim.models.wgan_gp import WGANGP

MODEL_TYPES: dict[str, type[ShowerModel]] = {kind.model_type: kind for kind in (CaloGAN, WGANGP, VAE, LAGAN)}
MODEL_TYPE_NAMES = tuple(MODEL_TYPES)


def get_model_type(name: str) -> type[ShowerModel]:
    if name not in MODEL_TYPES:
        raise ConfigError(f"unknown model type {name!r}; choose one of {', '.join(MODEL_TYPES)}")
    return MODEL_TYPES[name]


def config_names() -> dict[str, tuple[str, ...]]:
    """{model type: its configuration names}."""
    return {name: tuple(kind.configs) for name, kind in MODEL_TYPES.items()}


def describe(model_type: str, config: str | None = None, geometry=None) -> dict:
    """Parameter counts per network of a configuration, built in ``geometry`` (default: the type's
    ``default_geometry()``)."""
    from calosim.backends import get_backend

    kind = get_model_type(model_type)
    cfg = kind.get_config(config)
    geometry = geometry or kind.default_geometry()
    model = kind.build(cfg, geometry, get_backend("numpy"), np.random.default_rng(0))
    return {"model_type": model_type, "config": cfg.name, "geometry": geometry.name, "latent_dim": model.latent_dim,
            "networks": {name: net.num_params() for name, net in model.networks().items()}}


def format_description(desc: dict) -> str:
    lines = [f"{desc['model_type']} config {desc['config']!r} in the {desc['geometry']} geometry "
             f"(latent {desc['latent_dim']}):"]
    lines += [f"  {name:<14} {count:>12,d} parameters" for name, count in desc["networks"].items()]
    return "\n".join(lines)
