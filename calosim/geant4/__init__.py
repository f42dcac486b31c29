"""Real Geant4 showers in the CaloGAN geometry (optional extra: ``pip install 'calosim[geant4]'``).

``simulate_geant4`` runs Geant4 11.4 (the geant4-pybind wheel) in worker processes with a compiled readout;
``datasets`` finds Geant4's data sets or builds stand-ins for ``--approximate-data``; ``speed.time_geant4``
times it for ``calosim bench --vs-geant4``; ``fastsim`` attaches a fast-simulation model to the calorimeter
(``calosim simulate --engine geant4 --fastsim``). Importing this package does not import Geant4.
"""

from calosim.geant4.datasets import Geant4DataError
from calosim.geant4.engine import Geant4Error, simulate_geant4, simulate_geant4_to_file

__all__ = ["Geant4DataError", "Geant4Error", "simulate_geant4", "simulate_geant4_to_file"]
