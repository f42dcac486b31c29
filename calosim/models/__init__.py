"""Models built from calosim.layers: CaloGAN (configurations `calogan` and `small`)."""

from calosim.models.calogan import CaloGAN, CaloGANDiscriminator, CaloGANGenerator, build_calogan
from calosim.models.config import CONFIGS, CaloGANConfig, get_config, load_config_file


def describe(config_name: str = "calogan", geometry=None) -> dict:
    """Parameter counts of a configuration's generator and discriminator in ``geometry`` (default CaloGAN's)."""
    import numpy as np

    from calosim.backends import get_backend
    from calosim.geometry import calogan_geometry

    geometry = geometry or calogan_geometry()
    config = get_config(config_name)
    generator, discriminator = build_calogan(config, geometry.shapes, get_backend("numpy"), np.random.default_rng(0))
    return {"config": config.name, "geometry": geometry.name, "latent_dim": config.latent_dim,
            "generator_params": generator.num_params(), "discriminator_params": discriminator.num_params(),
            "attention": [a is not None for a in generator.attentions]}


def format_description(desc: dict) -> str:
    return (f"CaloGAN config {desc['config']!r} in the {desc['geometry']} geometry (latent {desc['latent_dim']}):\n"
            f"  generator      {desc['generator_params']:>12,d} parameters\n"
            f"  discriminator  {desc['discriminator_params']:>12,d} parameters\n"
            f"  attention      {desc['attention']}")


__all__ = ["CONFIGS", "CaloGAN", "CaloGANConfig", "CaloGANDiscriminator", "CaloGANGenerator", "build_calogan",
           "describe", "format_description", "get_config", "load_config_file"]
