"""Generate showers with a trained model (any type: calogan, wgan-gp, vae, lagan; the model file says which)
and stream them into a CaloGAN-format HDF5 file. LAGAN models with two classes generate class 0.

The file is written chunk by chunk (``batch_size`` showers at a time), so N may exceed memory; it is built as
a temporary file next to the target and renamed at the end. Layout (reference section 1, as
calosim.data.formats writes it): layer_<i> (N, R_i, C_i) float32 MeV, energy (N, 1) float32 GeV, plus the
attributes format, units, geometry (JSON), particle, seed, calosim_version, producer, model, backend.

Randomness: z and the incident energies come from two streams spawned from ``seed``, consumed shower by shower,
so the same seed and backend give the same file (whatever the batch size, up to the BLAS rounding of other
batch shapes). The generator runs in inference mode (BatchNorm moving statistics).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from calosim._version import __version__
from calosim.backends import get_backend
from calosim.checkpoint import load_model
from calosim.data.formats import CALOGAN, UNITS, open_showers
from calosim.errors import DataError


def resolve_model_path(model) -> Path:
    """A model file, or a run directory (its best.h5, else last.h5)."""
    path = Path(model)
    if path.is_dir():
        for name in ("best.h5", "last.h5"):
            if (path / name).is_file():
                return path / name
        raise DataError(f"{path}: run directory without best.h5 or last.h5 (has training finished an epoch?)")
    if not path.is_file():
        raise DataError(f"{path}: no such model file or run directory")
    return path


@dataclass
class GenerateResult:
    path: Path
    n: int
    seconds: float  # wall time of the whole job (model load excluded)
    generator_seconds: float  # time in the generator's forward passes (backend synchronised)

    @property
    def ms_per_shower(self) -> float:
        return 1000.0 * self.seconds / max(self.n, 1)

    @property
    def generator_ms_per_shower(self) -> float:
        return 1000.0 * self.generator_seconds / max(self.n, 1)


class EnergySource:
    """Incident energies (GeV) for chunk [start, stop): fixed, uniform in a range, or read from a shower file."""

    def __init__(self, rng: np.random.Generator, energy=None, energy_range=None, energies_from=None):
        given = sum(x is not None for x in (energy, energy_range, energies_from))
        if given > 1:
            raise DataError("give at most one of --energy, --energy-range and --energies-from")
        self.rng, self.energy, self.range, self.file = rng, energy, energy_range, None
        if energy is not None and not energy > 0:
            raise DataError(f"--energy must be > 0 GeV, got {energy}")
        if energy_range is not None and not 0 < energy_range[0] <= energy_range[1]:
            raise DataError(f"--energy-range must satisfy 0 < lo <= hi GeV, got {energy_range}")
        if energies_from is not None:
            self.file = open_showers(energies_from, validate=False)

    def available(self) -> int | None:
        """How many energies the file holds (None: no limit)."""
        return None if self.file is None else len(self.file)

    def take(self, start: int, stop: int) -> np.ndarray:
        if self.file is not None:
            return np.asarray(self.file.read(start, stop).energy, np.float64)
        if self.energy is not None:
            return np.full(stop - start, float(self.energy))
        lo, hi = self.range
        return self.rng.uniform(lo, hi, size=stop - start)

    def close(self):
        if self.file is not None:
            self.file.close()


def generate(model, out, num_showers: int | None = None, backend: str = "numba", energy: float | None = None,
             energy_range=None, energies_from=None, batch_size: int = 1000, seed: int = 0,
             compression: str | None = None, progress=None, initial: bool = False) -> GenerateResult:
    """Write ``num_showers`` generated showers to ``out`` (CaloGAN layout, MeV / GeV); see the module docstring.

    model: a model file or run directory; with ``initial`` a run directory, whose untrained starting point
    (calosim.train.initial_model) generates instead of its trained weights. Energies: ``energy`` (GeV, all
    showers), ``energy_range`` (lo, hi) uniform, ``energies_from`` (the incident energies of a shower file, in
    order; num_showers defaults to its length) or, with none given, uniform in the model's training range.
    progress(n_done) is called per chunk.
    """
    if batch_size < 1:
        raise DataError("--batch-size must be >= 1")
    if initial:
        from calosim.train import initial_model

        model_path = Path(model)
        gan = initial_model(model_path, backend)
        be = gan.backend
    else:
        model_path = resolve_model_path(model)
        be = get_backend(backend)
        gan = load_model(model_path, be)
    if hasattr(gan, "freeze"):
        gan.freeze()  # sampling only: the exact folds of calosim.models.inference
    z_seed, e_seed = np.random.SeedSequence(seed).spawn(2)
    z_rng, e_rng = np.random.default_rng(z_seed), np.random.default_rng(e_seed)
    if energy is None and energy_range is None and energies_from is None:
        energy_range = gan.energy_range
    source = EnergySource(e_rng, energy, energy_range, energies_from)
    try:
        if num_showers is None:
            if source.available() is None:
                raise DataError("--num-showers is needed unless --energies-from gives the energies")
            num_showers = source.available()
        if num_showers < 1:
            raise DataError(f"--num-showers must be >= 1, got {num_showers}")
        if source.available() is not None and num_showers > source.available():
            raise DataError(f"{energies_from}: {source.available()} energies, fewer than --num-showers {num_showers}")
        return _write(gan, be, Path(out), num_showers, source, z_rng, batch_size, seed, model_path, compression,
                      progress, initial)
    finally:
        source.close()


def _write(gan, be, out: Path, n: int, source: EnergySource, z_rng, batch_size: int, seed: int, model_path: Path,
           compression, progress, initial: bool = False) -> GenerateResult:
    directory = out.parent if str(out.parent) else Path(".")
    if not directory.is_dir():
        raise DataError(f"{out}: directory {directory} does not exist")
    geometry = gan.geometry
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    chunk = max(1, min(batch_size, n, 1000))
    kw = {"compression": compression} if compression else {}
    t_start = time.perf_counter()
    t_gen = 0.0
    try:
        with h5py.File(tmp, "w") as f:
            cells = [f.create_dataset(layer.name, shape=(n, *layer.shape), dtype=np.float32,
                                      chunks=(chunk, *layer.shape), track_times=False, **kw)
                     for layer in geometry.layers]
            energies = f.create_dataset("energy", shape=(n, 1), dtype=np.float32, track_times=False, **kw)
            attrs = {"format": CALOGAN, "units": UNITS[CALOGAN], "geometry": json.dumps(geometry.to_dict()),
                     "particle": gan.particle, "seed": int(seed), "calosim_version": __version__,
                     "producer": f"calosim {__version__} generate ({getattr(gan, 'model_type', 'calogan')} "
                                 f"{gan.config.name})",
                     "model": str(model_path), "weights": "initial" if initial else "trained", "backend": be.name,
                     "model_energy_range": np.asarray(gan.energy_range, np.float64)}
            for key, value in attrs.items():
                f.attrs[key] = value
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                e = source.take(start, stop)
                z = z_rng.standard_normal((stop - start, gan.config.latent_dim))
                t0 = time.perf_counter()
                images = gan.generate(be.asarray(z), be.asarray(e), training=False)
                be.synchronize()
                t_gen += time.perf_counter() - t0
                for ds, x in zip(cells, images):
                    ds[start:stop] = be.to_numpy(x).astype(np.float32, copy=False)
                energies[start:stop] = e.astype(np.float32).reshape(-1, 1)
                if progress is not None:
                    progress(stop - start)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise DataError(f"{out}: cannot write: {exc}") from None
        raise
    return GenerateResult(out, n, time.perf_counter() - t_start, t_gen)
