"""calosim: a dependency-light, auditable GAN trainer and sampler for calorimeter showers."""

from calosim._version import __version__

__all__ = ["__version__"]
