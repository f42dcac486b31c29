"""Shower data: the Showers container, CaloGAN / CaloChallenge files, streaming datasets, bundled samples and
the built-in parametric simulator (calosim.data.simulate)."""

from calosim.data.formats import detect_format, open_showers, read_showers, write_showers
from calosim.data.showers import Showers

__all__ = ["Showers", "detect_format", "open_showers", "read_showers", "write_showers"]
