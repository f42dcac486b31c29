"""Fast simulation inside Geant4: a G4VFastSimulationModel (fastsim.cc) on the calorimeter's region that kills
e+, e- and gamma entering the calorimeter's front face above a threshold energy and deposits a generated shower
into the same readout buffer, one shower at a time, as an experiment's simulation would.

geant4-pybind 0.1.3 binds G4FastSimulationPhysics but not G4VFastSimulationModel, G4FastTrack or G4FastStep, so
the model is compiled C++ (fastsim.cc, built like the scorer, against the extension module) and reports each
triggered particle to a Python callback (ctypes), which samples the shower and adds its cells to the buffer.

What generates the showers is not known here (this package sits below the models): the engine gets a
``FastSimSettings`` whose ``source`` is any picklable object with ``open() -> sample(energy_gev, rng)``
returning one shower's cells (n_cells,) MeV in the buffer's layout (calosim.fastsim.ModelShowerSource loads a
calosim model file). ``open()`` runs once per worker process.

Randomness: the k-th triggered particle of a shower draws from ``default_rng([geant4_seed, k])``, so a shower
does not depend on the number of workers, the chunking or a resume.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calosim.geant4.detector import CALORIMETER_FRONT_Z_MM
from calosim.geant4.scorer import compile_against_geant4

SOURCE = Path(__file__).with_name("fastsim.cc")
REGION = "CaloGANCalorimeter"  # the G4Region holding the calorimeter volume (detector.build_detector)
PARTICLES = ("e-", "e+", "gamma")  # what the model applies to (fastsim.cc IsApplicable)
ENTRY_FIELDS = ("energy_gev", "x_mm", "y_mm", "z_mm", "dx", "dy", "dz", "pdg")
RANGE_TOLERANCE = 1e-6  # relative: float32 model files round the training range's own ends
DEPOSIT = ctypes.CFUNCTYPE(None, *(6 * [ctypes.c_double] + [ctypes.c_double, ctypes.c_int]))


@dataclass(frozen=True)
class FastSimSettings:
    """A fast-simulation model for the Geant4 engine (picklable: it travels to the worker processes).

    source: ``open()`` -> ``sample(energy_gev: float, rng) -> (n_cells,) MeV``, called once per worker
    threshold_gev: e+, e-, gamma entering the front face with at least this kinetic energy trigger the model
    energy_range: (low, high) GeV the model was trained on; triggering particles outside it are left to Geant4
    attrs: file attributes describing the model (path, hash, type, ...), also part of the resume manifest
    """

    source: object
    threshold_gev: float
    energy_range: tuple[float, float]
    attrs: dict = field(default_factory=dict)

    def __post_init__(self):
        lo, hi = self.energy_range
        if not (math.isfinite(self.threshold_gev) and self.threshold_gev > 0):
            raise ValueError(f"fast-simulation threshold must be finite and > 0 GeV, got {self.threshold_gev}")
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise ValueError(f"fast-simulation energy range must satisfy 0 < low <= high, got {lo} {hi}")

    def manifest(self) -> dict:
        return {"threshold_gev": self.threshold_gev, "energy_range": list(self.energy_range), **self.attrs}


def build_fastsim_library() -> tuple[Path | None, str]:
    """(path of the compiled fast-simulation model, "") or (None, why it cannot be built)."""
    return compile_against_geant4(SOURCE, "geant4-fastsim", "libcalosim_g4fastsim.so")


class FastSimRecords:
    """Per shower of a run: how many particles were fast-simulated, how many fell back to Geant4 (outside the
    training range), and the first fast-simulated particle's ENTRY_FIELDS (NaN where none)."""

    NAMES = ("fastsim_count", "fastsim_fallbacks", "fastsim_entry")  # the keys of arrays()

    def __init__(self, n: int):
        self.count = np.zeros(n, np.int32)
        self.fallbacks = np.zeros(n, np.int32)
        self.entry = np.full((n, len(ENTRY_FIELDS)), np.nan)

    def arrays(self) -> dict:
        return {"fastsim_count": self.count, "fastsim_fallbacks": self.fallbacks, "fastsim_entry": self.entry}


class FastSimTrigger:
    """Worker side: the compiled model attached to the calorimeter's region (``install`` after the run
    manager's Initialize), and the callback that adds a generated shower to ``buffer`` per triggered particle.

    Per event: ``begin(index, seed)`` before it is tracked, ``end()`` after; ``records`` holds the run's
    FastSimRecords. An exception in the callback (it cannot cross the C++ frames) aborts the run and is raised
    again by ``raise_pending()``.
    """

    def __init__(self, library: Path, settings: FastSimSettings, buffer: np.ndarray, n_cells: int):
        self._lib = lib = ctypes.CDLL(str(library))
        lib.calosim_fastsim_triggered.restype = ctypes.c_longlong
        lib.calosim_fastsim_fallbacks.restype = ctypes.c_longlong
        self.settings, self.buffer, self.n_cells = settings, buffer, n_cells
        self.sample = settings.source.open()
        self.records = FastSimRecords(0)
        self.error: BaseException | None = None
        self._event = self._seed = None
        self._abort = None
        self._callback = DEPOSIT(self._deposit)  # kept alive: C++ holds the pointer
        lo, hi = settings.energy_range
        gev = 1e3
        lib.calosim_fastsim_configure(ctypes.c_double(settings.threshold_gev * gev),
                                      ctypes.c_double(lo * gev * (1 - RANGE_TOLERANCE)),
                                      ctypes.c_double(hi * gev * (1 + RANGE_TOLERANCE)),
                                      ctypes.c_double(CALORIMETER_FRONT_Z_MM), self._callback)

    def install(self, run_manager) -> None:
        if self._lib.calosim_fastsim_install(REGION.encode()) != 0:
            raise RuntimeError(f"the Geant4 region {REGION!r} for the fast-simulation model does not exist")
        self._abort = run_manager.AbortRun

    def start_run(self, n: int) -> None:
        self.records = FastSimRecords(n)
        self.error = None

    def begin(self, index: int, seed: int) -> None:
        self._event, self._seed = index, seed
        self._lib.calosim_fastsim_reset()

    def end(self) -> None:
        i = self._event
        self.records.count[i] = self._lib.calosim_fastsim_triggered()
        self.records.fallbacks[i] = self._lib.calosim_fastsim_fallbacks()

    def _deposit(self, energy_mev, x, y, z, dx, dy, dz, pdg) -> None:
        try:
            k = int(self._lib.calosim_fastsim_triggered()) - 1  # this particle's index in the shower
            rng = np.random.default_rng([self._seed, k])
            cells = np.asarray(self.sample(energy_mev / 1e3, rng), np.float64)
            if cells.shape != (self.n_cells,):
                raise ValueError(f"the fast-simulation source returned cells of shape {cells.shape}, "
                                 f"expected ({self.n_cells},)")
            self.buffer[:self.n_cells] += cells
            if k == 0:
                self.records.entry[self._event] = (energy_mev / 1e3, x, y, z, dx, dy, dz, pdg)
        except BaseException as exc:  # noqa: BLE001 - an exception cannot cross Geant4's C++ frames
            if self.error is None:
                self.error = exc
            if self._abort is not None:
                self._abort(True)

    def raise_pending(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise RuntimeError(f"the fast-simulation model failed: {error}") from error


def fastsim_datasets(records: dict) -> dict:
    """The per-shower datasets of a fast-simulated file, from the engine's records (N, ...)."""
    return {"fastsim": (records["fastsim_count"] > 0).astype(np.uint8),
            "fastsim_particles": records["fastsim_count"].astype(np.int32),
            "fastsim_fallbacks": records["fastsim_fallbacks"].astype(np.int32),
            "fastsim_entry": records["fastsim_entry"].astype(np.float64)}


def fastsim_file_attrs(fastsim: FastSimSettings, datasets: dict) -> dict:
    """The ``fastsim_*`` file attributes: the model, its trigger and seeding, and the counts."""
    attrs = {f"fastsim_{key}": value for key, value in fastsim.attrs.items()}
    attrs.update({
        "fastsim_threshold_gev": float(fastsim.threshold_gev),
        "fastsim_energy_range": [float(x) for x in fastsim.energy_range],
        "fastsim_particles_applied": " ".join(PARTICLES),
        "fastsim_trigger": (
            "G4VFastSimulationModel (calosim/geant4/fastsim.cc, compiled C++: geant4-pybind 0.1.3 does not bind "
            "it to Python) on the calorimeter's G4Region, G4FastSimulationPhysics on e-, e+, gamma: a particle "
            "entering the front face (z = -240 mm, dz > 0) with kinetic energy >= fastsim_threshold_gev and "
            "inside fastsim_energy_range is killed and the model's shower at that energy (centred on the "
            "calorimeter axis, as the model generates it) is added to the readout; outside the range Geant4 "
            "transports it (counted in fastsim_fallbacks)"),
        "fastsim_rng": "k-th fast-simulated particle of a shower: numpy default_rng([geant4 seed, k])",
        "fastsim_entry_columns": " ".join(ENTRY_FIELDS),
        "fastsim_showers": int(datasets["fastsim"].sum()),
        "fastsim_fallbacks_total": int(datasets["fastsim_fallbacks"].sum()),
    })
    return attrs
