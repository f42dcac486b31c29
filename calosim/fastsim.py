"""A calosim model as Geant4's fast simulation of the CaloGAN calorimeter (``calosim simulate --engine geant4
--fastsim MODEL``, ``calosim bench --vs-geant4 --fastsim MODEL``).

The Geant4 side (calosim.geant4.fastsim) attaches a G4VFastSimulationModel to the calorimeter's region; this
module supplies what it deposits: ``ModelShowerSource`` loads a model file once per Geant4 worker and samples
one shower per triggered particle through the model's one sampling path (``ShowerModel.sample`` after
``freeze()``, as ``calosim generate`` does), at the particle's kinetic energy in GeV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calosim.backends import get_backend
from calosim.errors import DataError
from calosim.geant4.fastsim import FastSimSettings
from calosim.geometry import calogan_geometry
from calosim.models.files import load_model, read_model_header
from calosim.training import resolve_model_path
from calosim.training.rundir import file_sha256

DEFAULT_BACKEND = "numpy"  # one shower at a time: no JIT warm-up per worker, and as fast as numba at batch 1


@dataclass(frozen=True)
class ModelShowerSource:
    """Showers of the model file ``model_path`` on ``backend`` for the Geant4 workers (picklable)."""

    model_path: str
    backend: str = DEFAULT_BACKEND

    def open(self):
        """``sample(energy_gev, rng) -> (n_cells,) float32 MeV``: one shower in the readout's flat layout
        (geometry.flatten: the layers' cells in order, each row-major)."""
        model = load_model(self.model_path, get_backend(self.backend)).freeze()
        geometry, backend = model.geometry, model.backend

        def sample(energy_gev: float, rng: np.random.Generator) -> np.ndarray:
            layers = model.sample(np.array([energy_gev], np.float64), rng)
            return geometry.flatten([backend.to_numpy(x) for x in layers])[0]

        return sample


def fastsim_settings(model, threshold_gev: float | None = None, backend: str = DEFAULT_BACKEND) -> FastSimSettings:
    """FastSimSettings for the model file or run directory ``model``: its training range, the threshold
    (default: the range's lower end, so that every particle above threshold is one the model knows, up to the
    range's upper end), and file attributes naming the model (path, sha256, type, config, particle).

    A file that is not a calosim model, or a model of another geometry than the CaloGAN readout Geant4 fills,
    is one DataError line.
    """
    path = resolve_model_path(model)
    header = read_model_header(path)
    geometry = header["geometry"]
    readout = calogan_geometry()
    if geometry.layers != readout.layers:
        raise DataError(f"{path}: a {header['model']} model of geometry {geometry.name!r} ({_shapes(geometry)}); "
                        f"the Geant4 fast simulation fills the CaloGAN readout ({_shapes(readout)})")
    lo, hi = (float(x) for x in np.asarray(header["energy_range"], np.float64))
    threshold = lo if threshold_gev is None else float(threshold_gev)
    if not threshold > 0:
        raise DataError(f"--fastsim-threshold must be > 0 GeV, got {threshold_gev}")
    attrs = {"model": str(path), "model_sha256": file_sha256(path), "model_type": str(header["model"]),
             "model_config": str(getattr(header["config"], "name", "")),
             "model_particle": str(header.get("particle", "unknown")), "backend": backend}
    return FastSimSettings(ModelShowerSource(str(path), backend), threshold, (lo, hi), attrs)


def _shapes(geometry) -> str:
    return ", ".join(f"{layer.name} {layer.shape[0]}x{layer.shape[1]}" for layer in geometry.layers)
