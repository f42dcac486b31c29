"""CaloGAN as a model of the contract (calosim.models.base): generator and discriminator with what it takes to
use them, and the folded sampler after :meth:`CaloGAN.freeze`."""

from __future__ import annotations

import numpy as np

from calosim.models.base import ShowerModel, check_unique_names
from calosim.models.calogan.config import CONFIGS, CaloGANConfig
from calosim.models.calogan.discriminator import CaloGANDiscriminator
from calosim.models.calogan.generator import CaloGANGenerator
from calosim.models.calogan.training import CaloGANTrainer


def build_calogan(config: CaloGANConfig, shapes, backend, rng: np.random.Generator):
    """(generator, discriminator) built on ``backend`` with weights drawn from ``rng`` (generator first)."""
    generator = CaloGANGenerator(config, shapes)
    generator.build((config.latent_dim,), backend, rng)
    discriminator = CaloGANDiscriminator(config, shapes)
    discriminator.build([(*s, 1) for s in shapes], backend, rng)
    check_unique_names({"generator": generator, "discriminator": discriminator})
    return generator, discriminator


class CaloGAN(ShowerModel):
    """Generator and discriminator of reference sections 2-3 (calosim.models.calogan)."""

    model_type = "calogan"
    description = "CaloGAN: per-layer LC2D streams with attention, BCE + energy loss"
    config_class = CaloGANConfig
    configs = CONFIGS
    reference_config = "calogan"
    trainer_class = CaloGANTrainer

    def __init__(self, config: CaloGANConfig, geometry, generator: CaloGANGenerator,
                 discriminator: CaloGANDiscriminator, particle: str = "unknown", energy_range=(1.0, 100.0)):
        super().__init__(config, geometry, generator.backend, particle, energy_range)
        self.generator = generator
        self.discriminator = discriminator
        self.sampler = None  # the folded inference generator, after freeze()

    @classmethod
    def build(cls, config: CaloGANConfig, geometry, backend, rng: np.random.Generator, particle: str = "unknown",
              energy_range=(1.0, 100.0), fitted: dict | None = None) -> CaloGAN:
        generator, discriminator = build_calogan(config, geometry.shapes, backend, rng)
        return cls(config, geometry, generator, discriminator, particle, energy_range)

    def networks(self) -> dict:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def file_attributes(self) -> dict:
        return {"image_scale": float(self.config.training.image_scale)}

    def freeze(self) -> CaloGAN:
        """Prepare for sampling only: later inference calls of :meth:`generate` run the folded generator
        (calosim.models.calogan.inference), built now from the current weights. Training the model afterwards
        would leave it stale, so only call this on a model that is done training."""
        from calosim.models.calogan.inference import FoldedGenerator

        self.sampler = FoldedGenerator(self.generator)
        return self

    def generate(self, z, energy, labels=None, training: bool = False) -> list:
        """Layer images [(N, R_l, C_l)] in MeV (backend arrays) for z (N, Z) and E (N,) GeV (backend arrays).
        Inference (training=False) uses the BatchNorm moving statistics (folded, after :meth:`freeze`)."""
        if training or self.sampler is None:
            images = self.generator.forward([z, energy], training)
        else:
            images = self.sampler.forward(z, energy)
        scale = self.config.training.image_scale
        return [(x * scale).reshape(x.shape[:3]) for x in images]

    def export_onnx(self, graph) -> None:
        """The folded sampling path (calosim.models.calogan.inference) on an ONNX graph (ShowerModel.export_onnx)."""
        from calosim.models.calogan.inference import FoldedGenerator

        sampler = self.sampler or FoldedGenerator(self.generator)
        images = sampler.export_onnx(graph, graph.latent(self.latent_dim), graph.energy())
        scale = self.config.training.image_scale
        graph.showers(self.geometry, [x * scale for x in images])

    def sampling_flops(self, batch: int) -> int:
        return (self.sampler or self.generator).flops(batch)

    def sampling_gemm_shapes(self, batch: int) -> list:
        return (self.sampler or self.generator).gemm_shapes(batch)

    def nominal_sampling_flops(self, batch: int) -> int:
        return self.generator.flops(batch)
