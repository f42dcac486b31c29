"""Run CaloGAN showers through Geant4: worker processes, one seed per shower, progress, resumable chunks.

Reproducibility: the incident energies are ``default_rng(seed).uniform(low, high, N)`` (as the parametric
simulator and ../shared/data/geant4 draw them) and, from the same generator afterwards, one Geant4 seed per
shower, ``integers(1, 2**62, N)``; the random engine (MixMax) is reseeded with it before the shower is tracked.
A shower therefore does not depend on the number of workers, on the chunking or on a resume.

Geant4 never runs in the calling process: every run uses worker processes (``spawn``), each building the
detector and physics once and then simulating chunks of showers. Their Geant4 output goes to log files.
With ``resume_dir``, finished chunks are kept there (chunk_<k>.npz + manifest.json) and a rerun with the same
arguments simulates only the missing ones.

With ``fastsim`` (calosim.geant4.fastsim.FastSimSettings) a fast-simulation model takes over e+, e- and gamma
entering the calorimeter's front face; without it, nothing of the fast-simulation machinery (region, process,
library) is built, and the showers are those of earlier calosim versions.

On Dask (``simulate_geant4_to_file(..., dask="local:N" or a scheduler address)``) the showers are cut into shards
of ``shard_size`` (calosim.distributed.shards); each Dask worker builds one Geant4 run manager on its first shard
and keeps it, writes every shard as a shower file in ``OUT.shards/`` (kept, so a rerun resumes), and the shards
are combined into OUT (or referenced by an HDF5 virtual file with ``virtual``). Because every shower has its own
seed, the file holds the same showers, bit for bit, as the one-process run of the same seed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from calosim._version import __version__
from calosim.data.showers import Showers
from calosim.errors import CalosimError, ConfigError
from calosim.geant4.datasets import DataSetup, import_geant4, setup_data
from calosim.geant4.detector import DETECTOR_DESCRIPTION, PHYSICS_LISTS, PRODUCTION_CUT_MM
from calosim.geant4.fastsim import (
    FastSimRecords,
    FastSimSettings,
    build_fastsim_library,
    fastsim_datasets,
    fastsim_file_attrs,
)
from calosim.geant4.scorer import build_scorer, geant4_pybind_version, make_scorer, warn_python_scorer
from calosim.geometry import calogan_geometry

PARTICLES = {"eplus": "e+", "e+": "e+", "gamma": "gamma", "piplus": "pi+", "pi+": "pi+"}
INSTALL_EXTRA = "pip install 'calosim[geant4]'"
MAX_CHUNK = 50
DEFAULT_SHARD_SIZE = 100  # showers per Dask shard: ~25 s of Geant4 for e+ on one core


class Geant4Error(CalosimError):
    """Geant4 is not installed, or a Geant4 worker failed."""


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker process needs (picklable)."""

    particle: str  # Geant4 name
    physics: str
    env: dict
    scorer_library: str | None
    log_dir: str
    fastsim: FastSimSettings | None = None
    fastsim_library: str | None = None


def require_geant4() -> None:
    """Raise Geant4Error (one line, with the install command) when geant4_pybind is not installed."""
    import importlib.util

    if importlib.util.find_spec("geant4_pybind") is None:
        raise Geant4Error(f"the Geant4 engine needs the geant4 extra: {INSTALL_EXTRA}")


def geant4_particle(particle: str) -> str:
    try:
        return PARTICLES[particle]
    except KeyError:
        raise ConfigError(f"unknown particle {particle!r}; choose eplus, gamma or piplus") from None


# ---------------------------------------------------------------------------------------------------------
# worker side (runs in the spawned processes; imports Geant4)

_STATE: dict = {}


def _worker_init(config: WorkerConfig) -> None:
    _STATE.clear()
    _STATE["config"] = config
    log = os.open(os.path.join(config.log_dir, f"geant4-worker-{os.getpid()}.log"),
                  os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)  # Geant4 writes its banner and warnings to the C++ streams
    os.dup2(log, 2)
    os.close(log)


class Geant4Runner:
    """One Geant4 run manager with the CaloGAN detector, built once per process."""

    def __init__(self, config: WorkerConfig):
        g4 = self.g4 = import_geant4(config.env)
        geometry = calogan_geometry()
        self.scorer = make_scorer(Path(config.scorer_library) if config.scorer_library else None, geometry)
        from calosim.geant4.detector import build_detector, build_gun, build_physics

        self.state = {"energies_gev": [], "seeds": None}
        state, scorer = self.state, self.scorer
        self.cells = np.zeros((0, scorer.buffer.size))
        self.seconds = np.zeros(0)
        runner = self
        self.fastsim = trigger = None
        if config.fastsim is not None:
            from calosim.geant4.fastsim import PARTICLES, REGION, FastSimTrigger

            self.fastsim = trigger = FastSimTrigger(Path(config.fastsim_library), config.fastsim, scorer.buffer,
                                                    geometry.n_cells)

        class Events(g4.G4UserEventAction):
            def BeginOfEventAction(self, event):
                scorer.reset()
                if trigger is not None:
                    i = event.GetEventID()
                    trigger.begin(i, state["seeds"][i])
                state["t0"] = time.perf_counter()

            def EndOfEventAction(self, event):
                i = event.GetEventID()
                runner.seconds[i] = time.perf_counter() - state["t0"]
                runner.cells[i] = scorer.buffer
                if trigger is not None:
                    trigger.end()

        class Actions(g4.G4VUserActionInitialization):
            def Build(self):
                self.SetUserAction(build_gun(g4, config.particle, state))
                self.SetUserAction(Events())

        g4.G4EmParameters.Instance().SetVerbose(0)
        g4.G4HadronicParameters.Instance().SetVerboseLevel(0)
        self.run_manager = rm = g4.G4RunManagerFactory.CreateRunManager(g4.G4RunManagerType.Serial)
        ui = g4.G4UImanager.GetUIpointer()
        for cmd in ("/control/verbose 0", "/run/verbose 0", "/event/verbose 0", "/tracking/verbose 0",
                    "/process/verbose 0", "/process/em/verbose 0", "/process/had/verbose 0"):
            ui.ApplyCommand(cmd)
        if trigger is None:
            self._keep = [build_detector(g4), build_physics(g4, config.physics), Actions()]
        else:
            self._keep = [build_detector(g4, REGION), build_physics(g4, config.physics, PARTICLES), Actions()]
        for obj in self._keep:
            rm.SetUserInitialization(obj)
        if config.env.get("CALOSIM_G4_APPROXIMATE") == "1":
            # the stand-ins have no G4PARTICLEXS/gamma tables: use the parametrised photo-nuclear cross section
            ui.ApplyCommand("/physics_lists/em/UseGammaNuclearXS false")
        self.scorer.install(g4, rm)
        rm.Initialize()
        if trigger is not None:
            # the calorimeter's region gets the world's production cut (G4ProductionCuts is not bound)
            ui.ApplyCommand(f"/run/setCutForRegion {REGION} {PRODUCTION_CUT_MM} mm")
            trigger.install(rm)
        rm.BeamOn(0)  # build the physics tables before any shower is seeded

    def run(self, energies_gev, seeds):
        """(cells (n, n_cells + n_layers) float64 MeV, seconds per shower (n,), fast-simulation records (a
        dict of per-shower arrays, empty without a fast-simulation model)) for one shower per energy."""
        n = len(energies_gev)
        self.cells = np.zeros((n, self.scorer.buffer.size))
        self.seconds = np.zeros(n)
        self.state["energies_gev"] = [float(e) for e in energies_gev]
        self.state["seeds"] = [int(s) for s in seeds]
        if self.fastsim is not None:
            self.fastsim.start_run(n)
        self.run_manager.BeamOn(n)
        if self.fastsim is None:
            return self.cells, self.seconds, {}
        self.fastsim.raise_pending()
        return self.cells, self.seconds, self.fastsim.records.arrays()


def _run_chunk(index: int, energies_gev, seeds):
    if "runner" not in _STATE:
        _STATE["runner"] = Geant4Runner(_STATE["config"])
    cells, seconds, records = _STATE["runner"].run(energies_gev, seeds)
    return index, cells, seconds, records


# ---------------------------------------------------------------------------------------------------------
# calling side


def _chunks(n: int, workers: int, chunk_size: int | None):
    size = chunk_size or max(1, min(MAX_CHUNK, math.ceil(n / (4 * workers))))
    return size, [(k, a, min(n, a + size)) for k, a in enumerate(range(0, n, size))]


def run_showers(particle: str, energies_gev, seeds, *, workers: int = 1, approximate_data: bool = False,
                physics: str = "FTFP_BERT_EMV", chunk_size: int | None = None, resume_dir=None,
                manifest: dict | None = None, progress=None, fastsim: FastSimSettings | None = None):
    """Simulate one shower per (energy GeV, Geant4 seed) in worker processes.

    Returns (cells (N, n_cells + n_layers) float32 MeV, seconds per shower (N,), info dict). ``progress(k)`` is
    called with the number of showers each finished chunk adds (and once with those found in resume_dir).
    With ``fastsim`` (calosim.geant4.fastsim), its model takes over e+, e- and gamma entering the calorimeter;
    info["fastsim"] then holds the per-shower FastSimRecords arrays (N, ...).
    """
    require_geant4()
    g4_particle = geant4_particle(particle)
    if physics not in PHYSICS_LISTS:
        raise ConfigError(f"unknown physics list {physics!r}; choose one of {', '.join(PHYSICS_LISTS)}")
    energies_gev = np.asarray(energies_gev, np.float64)
    seeds = np.asarray(seeds, np.int64)
    n = len(energies_gev)
    workers = max(1, int(workers))
    data: DataSetup = setup_data(approximate_data)
    library, why = build_scorer()
    if library is None:
        warn_python_scorer(why)
    fastsim_library = None
    if fastsim is not None:
        fastsim_library, why = build_fastsim_library()
        if fastsim_library is None:
            raise Geant4Error(f"the fast-simulation model cannot be built: {why}")
    size, chunks = _chunks(n, workers, chunk_size)

    done: dict = {}
    resume = Path(resume_dir) if resume_dir is not None else None
    if resume is not None:
        man = dict(manifest or {}, n=n, chunk_size=size, physics=physics, particle=g4_particle,
                   approximate_data=data.approximate)
        if fastsim is not None:
            man["fastsim"] = fastsim.manifest()
        done = _open_resume_dir(resume, man, chunks, with_records=fastsim is not None)
    if progress and done:
        progress(sum(len(done[k][1]) for k in done))

    log_dir = resume if resume is not None else Path(tempfile.mkdtemp(prefix="calosim-geant4-"))
    env = dict(data.env, CALOSIM_G4_APPROXIMATE="1" if data.approximate else "0")
    config = WorkerConfig(g4_particle, physics, env, str(library) if library else None, str(log_dir), fastsim,
                          str(fastsim_library) if fastsim_library else None)
    todo = [c for c in chunks if c[0] not in done]
    if todo:
        ctx = get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                                   initializer=_worker_init, initargs=(config,))
        try:
            futures = {pool.submit(_run_chunk, k, energies_gev[a:b], seeds[a:b]) for k, a, b in todo}
            while futures:
                finished, futures = wait(futures, return_when=FIRST_COMPLETED)
                for fut in finished:
                    k, cells, seconds, records = fut.result()
                    cells = cells.astype(np.float32)
                    done[k] = (cells, seconds, records)
                    if resume is not None:
                        _save_chunk(resume, k, cells, seconds, records)
                    if progress:
                        progress(len(seconds))
        except (BrokenProcessPool, RuntimeError, ValueError) as exc:
            what = "a Geant4 worker died" if isinstance(exc, BrokenProcessPool) else f"Geant4 failed ({exc})"
            raise Geant4Error(f"{what}; its output is in {log_dir}/geant4-worker-*.log"
                              + (f" (finished chunks are kept in {resume}; rerun to resume)" if resume else "")
                              ) from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    if resume is None:
        shutil.rmtree(log_dir, ignore_errors=True)
    cells = np.concatenate([done[k][0] for k, _, _ in chunks]) if chunks else np.zeros((0, 507), np.float32)
    seconds = np.concatenate([done[k][1] for k, _, _ in chunks]) if chunks else np.zeros(0)
    info = {"data": data, "scorer": "compiled" if library else "python", "chunk_size": size}
    if fastsim is not None:
        info["fastsim"] = {name: np.concatenate([done[k][2][name] for k, _, _ in chunks])
                           for name in FastSimRecords.NAMES}
    return cells, seconds, info


def _open_resume_dir(resume: Path, manifest: dict, chunks, with_records: bool = False) -> dict:
    resume.mkdir(parents=True, exist_ok=True)
    path = resume / "manifest.json"
    manifest = json.loads(json.dumps(manifest))  # normalise (tuples -> lists)
    if path.exists():
        old = json.loads(path.read_text())
        if old != manifest:
            diff = ", ".join(f"{k}: {old.get(k)!r} -> {v!r}" for k, v in manifest.items() if old.get(k) != v)
            raise ConfigError(f"{resume} holds chunks of a different simulation ({diff}); delete it or use "
                              "the same arguments")
    else:
        path.write_text(json.dumps(manifest, indent=1))
    done = {}
    for k, a, b in chunks:
        f = resume / f"chunk_{k:05d}.npz"
        if f.exists():
            try:
                with np.load(f) as z:
                    cells, seconds = z["cells"], z["seconds"]
                    records = {name: z[name] for name in FastSimRecords.NAMES} if with_records else {}
            except (OSError, ValueError, KeyError):
                continue  # unreadable (interrupted write): simulate it again
            if len(seconds) == b - a:
                done[k] = (cells, seconds, records)
    return done


def _save_chunk(resume: Path, k: int, cells, seconds, records: dict) -> None:
    tmp = resume / f".chunk_{k:05d}.tmp.npz"
    np.savez(tmp, cells=cells, seconds=seconds, **records)
    os.replace(tmp, resume / f"chunk_{k:05d}.npz")


def simulate_geant4(particle: str, num_showers: int, energy_range=(1.0, 100.0), seed: int = 0, *,
                    workers: int = 1, approximate_data: bool = False, physics: str = "FTFP_BERT_EMV",
                    resume_dir=None, chunk_size: int | None = None, progress=None,
                    fastsim: FastSimSettings | None = None) -> Showers:
    """``num_showers`` Geant4 showers of ``particle`` ("eplus", "gamma", "piplus") in the CaloGAN geometry,
    incident kinetic energy uniform in ``energy_range`` GeV; float32 layers in MeV, energy in GeV.

    Raises Geant4Error without the geant4 extra, datasets.Geant4DataError without Geant4's data sets (unless
    ``approximate_data``). The returned Showers.attrs record how they were made (engine, Geant4 version,
    physics list, seeding, data sets). With ``fastsim`` (calosim.geant4.fastsim.FastSimSettings) its model takes
    over e+, e- and gamma entering the calorimeter's front face above its threshold; the attrs then describe
    it (``fastsim_*``) and Showers.datasets hold per shower ``fastsim`` (uint8: 1 where a particle of the shower
    was fast-simulated), ``fastsim_particles`` and ``fastsim_fallbacks`` (int32: particles fast-simulated, and
    left to Geant4 for being outside the model's training range) and ``fastsim_entry`` (N, 8) float64: the
    first fast-simulated particle's energy GeV, entry x, y, z mm, direction, PDG code (NaN where none).
    """
    lo, hi = _check_energy_range(energy_range, num_showers)
    geant4_particle(particle)
    energies, g4_seeds = _draw_showers(seed, num_showers, lo, hi)
    manifest = {"seed": seed, "energy_range": [lo, hi], "calosim_version": __version__}
    cells, seconds, info = run_showers(particle, energies, g4_seeds, workers=workers,
                                       approximate_data=approximate_data, physics=physics,
                                       chunk_size=chunk_size, resume_dir=resume_dir, manifest=manifest,
                                       progress=progress, fastsim=fastsim)
    geometry, layers, overflow = readout_layers(cells)
    attrs = _file_attrs(seed, lo, hi, physics, info["data"], info["scorer"], float(1e3 * seconds.mean()))
    datasets = {}
    if fastsim is not None:
        attrs["producer"] += " --fastsim"
        datasets = fastsim_datasets(info["fastsim"])
        attrs.update(fastsim_file_attrs(fastsim, datasets))
    return Showers(layers, energies.astype(np.float32), geometry, overflow,
                   geant4_particle(particle), attrs, datasets)


def readout_layers(cells):
    """(the CaloGAN geometry, per-layer (N, R, C) cells, overflow (N, L)) of readout buffers (N, n_cells + L)."""
    geometry = calogan_geometry()
    layers = [np.ascontiguousarray(x) for x in geometry.unflatten(cells[:, :geometry.n_cells])]
    return geometry, layers, np.ascontiguousarray(cells[:, geometry.n_cells:])


def _check_energy_range(energy_range, num_showers: int) -> tuple[float, float]:
    lo, hi = float(energy_range[0]), float(energy_range[1])
    if not (0 < lo <= hi) or not math.isfinite(hi):
        raise ConfigError(f"energy range must satisfy 0 < low <= high, got {lo} {hi}")
    if num_showers < 1:
        raise ConfigError(f"num_showers must be >= 1, got {num_showers}")
    return lo, hi


def _draw_showers(seed: int, n: int, lo: float, hi: float):
    """(incident energies (n,) GeV, Geant4 seeds (n,)): see the module docstring."""
    rng = np.random.default_rng(seed)
    energies = rng.uniform(lo, hi, size=n)
    return energies, rng.integers(1, 2**62, size=n)


def _file_attrs(seed: int, lo: float, hi: float, physics: str, data: DataSetup, scorer: str,
                ms_per_shower: float) -> dict:
    """The attributes of a Geant4 shower file: how its showers were made."""
    return {
        "engine": "geant4",
        "seed": seed,
        "energy_range": [lo, hi],
        "geant4_version": _geant4_version(),
        "geant4_pybind_version": geant4_pybind_version(),
        "physics_list": PHYSICS_LISTS[physics],
        "production_cut_mm": PRODUCTION_CUT_MM,
        "detector": DETECTOR_DESCRIPTION,
        "rng": ("energies: numpy default_rng(seed).uniform(low, high, N); then one Geant4 seed per shower, "
                "integers(1, 2**62, N) from the same generator, G4Random.setTheSeed (MixMax) before each shower"),
        "approximate_data": data.approximate,
        "geant4_data": data.description,
        "stepping_action": "compiled C++ (calosim/geant4/scorer.cc)" if scorer == "compiled"
        else "Python (calosim/geant4/scorer.py)",
        "ms_per_shower": ms_per_shower,
        "producer": f"calosim {__version__} simulate --engine geant4",
    }


def simulate_geant4_to_file(path, particle: str, num_showers: int, energy_range=(1.0, 100.0), seed: int = 0,
                            *, format: str = "calogan", workers: int = 1, approximate_data: bool = False,
                            progress=None, dask: str | None = None, shard_size: int | None = None,
                            virtual: bool = False, **kw) -> Showers | None:
    """simulate_geant4, resumable in ``<path>.parts/`` (removed once ``path`` is written), then write ``path``
    with calosim's writer (CaloGAN or CaloChallenge layout).

    With ``dask`` the showers are simulated in shards on Dask instead (the module docstring; ``progress(k)`` then
    counts shards, ``workers`` is unused) and None is returned."""
    from calosim.data.formats import write_showers

    if virtual and dask is None:
        raise ConfigError("--virtual combines the shards of a --dask job; give --dask too")
    if dask is not None and kw.pop("fastsim", None) is not None:
        raise ConfigError("--fastsim runs in worker processes (--workers), not on --dask yet")
    if dask is not None:
        from calosim.geant4.on_dask import simulate_on_dask

        simulate_on_dask(path, particle, num_showers, energy_range, seed, format=format, dask=dask,
                          shard_size=shard_size or DEFAULT_SHARD_SIZE, virtual=virtual,
                          approximate_data=approximate_data, progress=progress, **kw)
        return None

    parts = Path(str(path) + ".parts")
    showers = simulate_geant4(particle, num_showers, energy_range, seed, workers=workers,
                              approximate_data=approximate_data, resume_dir=parts, progress=progress, **kw)
    write_showers(path, showers, format=format)
    shutil.rmtree(parts, ignore_errors=True)
    return showers


def _geant4_version() -> str:
    """The Geant4 version string of the installed wheel, read from its type stubs (no Geant4 import)."""
    import importlib.util

    spec = importlib.util.find_spec("geant4_pybind")
    stub = Path(spec.origin).with_name("geant4_pybind.pyi") if spec and spec.origin else None
    if stub is not None and stub.is_file():
        with open(stub, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("G4Version"):
                    return line.split("'")[1].strip("$").replace("Name: ", "")
    return f"Geant4 from geant4-pybind {geant4_pybind_version()}"


