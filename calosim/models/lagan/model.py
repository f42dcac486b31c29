"""The LAGAN model (the package docstring): the model contract for one 25 x 25 layer with class labels."""

from __future__ import annotations

import numpy as np

from calosim.errors import ConfigError
from calosim.geometry import single_layer_geometry
from calosim.models.base import ShowerModel, check_unique_names
from calosim.models.lagan.config import CONFIGS, LAGANConfig
from calosim.models.lagan.networks import IMAGE_SHAPE, LAGANDiscriminator, LAGANGenerator
from calosim.models.lagan.training import LAGANTrainer


def _check_geometry(geometry) -> None:
    if geometry.n_layers != 1 or tuple(geometry.shapes[0]) != IMAGE_SHAPE:
        raise ConfigError(f"LAGAN needs one 25 x 25 layer; the data's geometry {geometry.name!r} has "
                          f"layers {list(geometry.shapes)} (make one with calosim.geometry.single_layer_geometry)")


class LAGAN(ShowerModel):
    model_type = "lagan"
    description = "LAGAN for one 25 x 25 layer, conditioned on energy and class"
    config_class = LAGANConfig
    configs = CONFIGS
    reference_config = "lagan"
    trainer_class = LAGANTrainer

    def __init__(self, config: LAGANConfig, geometry, generator: LAGANGenerator, discriminator: LAGANDiscriminator,
                 backend, particle="unknown", energy_range=(1.0, 100.0)):
        super().__init__(config, geometry, backend, particle, energy_range)
        self.generator = generator
        self.discriminator = discriminator

    @classmethod
    def build(cls, config: LAGANConfig, geometry, backend, rng: np.random.Generator, particle="unknown",
              energy_range=(1.0, 100.0), fitted: dict | None = None) -> LAGAN:
        _check_geometry(geometry)
        generator = LAGANGenerator(config)
        generator.build([(config.latent_dim,), (config.architecture.n_classes,), (1,)], backend, rng)
        discriminator = LAGANDiscriminator(config)
        discriminator.build([(*IMAGE_SHAPE, 1), (1,), (1,)], backend, rng)
        model = cls(config, geometry, generator, discriminator, backend, particle, energy_range)
        check_unique_names(model.networks())
        return model

    @classmethod
    def default_geometry(cls):
        return single_layer_geometry(*IMAGE_SHAPE)

    @property
    def n_classes(self) -> int:
        return self.config.architecture.n_classes

    def networks(self) -> dict:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def one_hot(self, labels):
        """(N,) integer labels (NumPy) -> (N, K) backend array."""
        labels = np.zeros(0, np.int64) if labels is None else np.asarray(labels, np.int64)
        out = np.zeros((len(labels), self.n_classes))
        out[np.arange(len(labels)), labels] = 1.0
        return self.backend.asarray(out)

    def sample_labels(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(0, self.n_classes, size=n)

    def generator_forward(self, z, labels, energy, training: bool = True):
        """Images (N, 25, 25, 1) in training units for z (N, Z), labels (N,) NumPy ints, E (N,) GeV."""
        e = (energy / self.energy_range[1]).reshape(-1, 1)
        return self.generator.forward([z, self.one_hot(labels), e], training)

    def generate(self, z, energy, labels=None, training: bool = False) -> list:
        """[(N, 25, 25)] MeV for z (N, Z), E (N,) GeV (backend arrays) and labels (N,) (default class 0)."""
        n = z.shape[0]
        labels = np.zeros(n, np.int64) if labels is None else labels
        images = self.generator_forward(z, labels, energy, training)
        return [(images * self.config.training.image_scale).reshape(n, *IMAGE_SHAPE)]

    def export_onnx(self, graph) -> None:
        """:meth:`generate` on an ONNX graph (ShowerModel.export_onnx); two-class models take the input label."""
        z, energy = graph.latent(self.latent_dim), graph.energy()
        table = np.asarray(self.backend.to_numpy(self.generator.embedding.params["embedding"].value), np.float32)
        rows = graph.class_rows(table) if self.n_classes > 1 else table[0]  # y @ W of one-hot y (exact)
        images = graph.layer(self.generator.body, z * rows * (energy / self.energy_range[1]))
        graph.showers(self.geometry, [images * self.config.training.image_scale])
