"""Model types by name: what `calosim train --model-type` builds and what `calosim generate` dispatches on.

Every model type provides
    configs         {name: frozen config}; the config has to_dict / from_dict / replace, latent_dim,
                    batch_size, epochs and energy_range (GeV, None: the training data's)
    model_class     .build(config, geometry, backend, rng, particle, energy_range) -> model with
                    networks() ({"generator": Layer, ...}, what a model file stores), condition(E),
                    sample_latent(rng, n), sample_labels(rng, n), generate(z, E, labels, training) -> [(N, R, C)] MeV
    trainer_class   (model, rng) with optimizers {name: Adam}, train_step(layers MeV, E GeV, labels) -> losses,
                    state() / load_state() (JSON-able counters)
CaloGAN keeps its own trainer in calosim.train (its entry here has trainer_class None).

Model files of these types use the layout of calosim.checkpoint (attribute ``model`` = the type name,
``config`` its JSON, one group per network, e.g. /generator and /critic for wgan-gp, /encoder and /decoder for
vae); ``save`` / ``load`` / ``read_header`` here write and read them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from calosim.errors import ConfigError, DataError
from calosim.geometry import Geometry
from calosim.models import lagan, vae, wgan_gp
from calosim.models.calogan import CaloGAN
from calosim.models.config import CONFIGS as CALOGAN_CONFIGS
from calosim.models.config import CaloGANConfig, load_config_file


@dataclass(frozen=True)
class ModelType:
    name: str
    model_class: type
    config_class: type
    configs: dict
    default_config: str
    trainer_class: type | None
    description: str

    def get_config(self, name: str | None = None, config_file=None, **overrides):
        """The named configuration (default: the type's ``small``), then ``config_file``'s fields, then
        ``overrides`` (None = keep)."""
        name = name or self.default_config
        if name not in self.configs:
            raise ConfigError(f"model type {self.name!r} has no config {name!r}; choose one of "
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


MODEL_TYPES: dict[str, ModelType] = {
    "calogan": ModelType("calogan", CaloGAN, CaloGANConfig, CALOGAN_CONFIGS, "small", None,
                         "CaloGAN: per-layer LC2D streams with attention, BCE + energy loss"),
    "wgan-gp": ModelType("wgan-gp", wgan_gp.WGANGP, wgan_gp.WGANGPConfig, wgan_gp.CONFIGS, "small",
                         wgan_gp.WGANGPTrainer, "FastCaloGAN-style conditional WGAN-GP on flattened voxels"),
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


# --------------------------------------------------------------------------- model files
def _write_model(f: h5py.File, model, extra: dict | None) -> None:
    from calosim._version import __version__
    from calosim.checkpoint import FORMAT, UNITS, _write_group, model_arrays

    attrs = {
        "format": FORMAT, "format_version": 1, "model": model_type_of(model),
        "config": json.dumps(model.config.to_dict()), "geometry": json.dumps(model.geometry.to_dict()),
        "particle": model.particle, "energy_range": np.asarray(model.energy_range, np.float64),
        "conditioning": "c = log(E / energy_range[0]) / log(energy_range[1] / energy_range[0]), E in GeV",
        "units": UNITS, "dtype": model.backend.dtype, "calosim_version": __version__,
        "networks": json.dumps(list(networks_of(model))),
    }
    for key, value in (extra or {}).items():
        attrs[key] = value if isinstance(value, (str, int, float, np.ndarray)) else json.dumps(value)
    for key, value in attrs.items():
        f.attrs[key] = value
    for name, net in networks_of(model).items():
        _write_group(f.create_group(name), model_arrays(net))


def save(path, model, **extra) -> Path:
    """Write a model of any registered type to one HDF5 model file (atomically)."""
    from calosim.checkpoint import atomic_h5

    return atomic_h5(path, lambda f: _write_model(f, model, extra))


def read_header(path) -> dict:
    """The attributes of a model file of any type: ``model`` (type name), ``config`` (the type's config
    object), ``geometry`` (Geometry) and ``energy_range`` decoded."""
    from calosim.checkpoint import FORMAT

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such model file")
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    except OSError as exc:
        raise DataError(f"{path}: cannot open as HDF5 ({exc})") from None
    if attrs.get("format") != FORMAT:
        raise DataError(f"{path}: not a calosim model file (format attribute {attrs.get('format')!r})")
    kind = str(attrs.get("model", "calogan"))
    if kind not in MODEL_TYPES:
        raise DataError(f"{path}: model type {kind!r} is not known to this calosim ({', '.join(MODEL_TYPES)})")
    attrs["model"] = kind
    attrs["config"] = MODEL_TYPES[kind].config_from_dict(json.loads(attrs["config"]))
    attrs["geometry"] = Geometry.from_dict(json.loads(attrs["geometry"]))
    attrs["energy_range"] = tuple(float(x) for x in attrs["energy_range"])
    return attrs


def load(path, backend):
    """A model of the file's type built on ``backend``, weights (and BatchNorm statistics) restored."""
    from calosim.checkpoint import _read_group, set_model_arrays

    header = read_header(path)
    kind = get_model_type(header["model"])
    model = kind.build(header["config"], header["geometry"], backend, np.random.default_rng(0),
                       particle=str(header.get("particle", "unknown")), energy_range=header["energy_range"])
    with h5py.File(path, "r") as f:
        for name, net in networks_of(model).items():
            if name not in f:
                raise DataError(f"{path}: model file has no /{name} group")
            set_model_arrays(net, _read_group(f[name]), source=f"{path}:/{name}")
    model.attrs = {k: v for k, v in header.items() if k not in ("config", "geometry")}
    return model
