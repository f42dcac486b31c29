"""Generate showers with a trained model of any type (the model file says which) and stream them into a shower
file (calosim.data.writer.ShowerWriter) in the layout of the model's training data, or the one asked for.

Every shower comes from the model's one sampling path, ``ShowerModel.sample`` (inference mode), ``batch_size``
showers at a time, so N may exceed memory; the file appears under its name only when complete. Layouts
(calosim.data.formats): CaloGAN ``layer_<i>`` (N, R_i, C_i) float32 MeV and ``energy`` (N, 1) float32 GeV;
CaloChallenge ``showers`` (N, V) float32 MeV and ``incident_energies`` (N, 1) MeV. Two-class models also write
``label`` (N,). Attributes: format, units, geometry (JSON), particle, seed, calosim_version, producer, model,
weights, backend, model_energy_range (and class_fraction for two-class models).

Randomness: z, the incident energies and the class labels come from three streams spawned from ``seed``,
consumed shower by shower, so the same seed and backend give the same file (whatever the batch size, up to the
BLAS rounding of other batch shapes).

Sharded (``shard_size`` given, or ``dask``): the job is cut into shards of ``shard_size`` showers
(calosim.distributed.shards) and shard k draws its z, energies and labels from three streams spawned from
``SeedSequence(seed, spawn_key=(k,))`` instead, so each shard depends only on (seed, k): the file is the same,
bit for bit, whether the shards run here one after the other or on any number of Dask workers (``dask``:
"local:N" or a scheduler address), and differs from the unsharded file of the same seed. On Dask the model
file's bytes go to every worker once (``client.scatter(broadcast=True)``), each worker loads the model once,
the finished shards are kept in ``OUT.shards/`` (a rerun resumes) and combined into ``out`` at the end, or,
with ``virtual``, referenced by ``out``'s HDF5 virtual datasets (the shards then stay).
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calosim._version import __version__
from calosim.backends import get_backend
from calosim.data.formats import FORMATS, UNITS, open_showers
from calosim.data.writer import ShowerWriter
from calosim.errors import ConfigError, DataError
from calosim.models.files import load_model
from calosim.training import initial_model, resolve_model_path


@dataclass
class GenerateResult:
    path: Path
    n: int
    seconds: float  # wall time of the whole job (model load excluded)
    generator_seconds: float  # time in the model's sampling passes (backend synchronised)
    format: str = "calogan"
    extrapolated: bool = False  # energies outside the model's training range were asked for and allowed

    @property
    def ms_per_shower(self) -> float:
        return 1000.0 * self.seconds / max(self.n, 1)

    @property
    def generator_ms_per_shower(self) -> float:
        return 1000.0 * self.generator_seconds / max(self.n, 1)


class EnergySource:
    """Incident energies (GeV) for chunk [start, stop): fixed, uniform in a range, or read from a shower file.

    Every energy must be finite and > 0 and, unless ``allow_extrapolation``, inside ``model_range`` (GeV), the
    range the model was trained on; a file's energies are all checked before the first shower is generated."""

    def __init__(self, rng: np.random.Generator, energy=None, energy_range=None, energies_from=None,
                 model_range=None, allow_extrapolation: bool = False):
        given = sum(x is not None for x in (energy, energy_range, energies_from))
        if given > 1:
            raise DataError("give at most one of --energy, --energy-range and --energies-from")
        self.rng, self.energy, self.range, self.file = rng, energy, energy_range, None
        self.model_range, self.allow_extrapolation = model_range, allow_extrapolation
        self.outside = 0  # energies outside the model's range (allowed with allow_extrapolation)
        if energy is not None and not (math.isfinite(energy) and energy > 0):
            raise DataError(f"--energy must be finite and > 0 GeV, got {energy}")
        finite_range = energy_range is not None and bool(np.isfinite(energy_range).all())
        if energy_range is not None and not (finite_range and 0 < energy_range[0] <= energy_range[1]):
            raise DataError(f"--energy-range must satisfy 0 < lo <= hi GeV (finite), got {tuple(energy_range)}")
        if energy is not None:
            self._check_range(energy, energy, "--energy")
        if energy_range is not None:
            self._check_range(*energy_range, "--energy-range")
        if energies_from is not None:
            self.file = open_showers(energies_from, validate=False)

    def check_file(self, n: int) -> None:
        """Check the first ``n`` energies of the file (finite, > 0, in range) before anything is generated."""
        for start in range(0, n, 100_000):
            e = self.file.read_energy(start, min(start + 100_000, n))
            bad = ~(np.isfinite(e) & (e > 0))
            if bad.any():
                row = int(np.nonzero(bad)[0][0])
                raise DataError(f"{self.file.path}: incident energy {e[row]} GeV in row {start + row} (energies "
                                "must be finite and > 0)")
            if self.model_range is not None and len(e):
                worst = int(np.argmax(np.maximum(self.model_range[0] / e, e / self.model_range[1])))
                self._check_range(float(e.min()), float(e.max()), f"{self.file.path} (e.g. row {start + worst}: "
                                  f"{e[worst]:.6g} GeV)", count=int(np.sum(self._outside(e))))

    def _outside(self, e):
        lo, hi = self.model_range
        tol = 1e-6  # float32 files round the range's own ends
        return (e < lo * (1 - tol)) | (e > hi * (1 + tol))

    def _check_range(self, lo: float, hi: float, what: str, count: int | None = None) -> None:
        if self.model_range is None or not self._outside(np.array([lo, hi])).any():
            return
        if not self.allow_extrapolation:
            mlo, mhi = self.model_range
            n = f"{count} energies " if count is not None else ""
            raise DataError(f"{what}: {n}outside the model's training range [{mlo:g}, {mhi:g}] GeV; pass "
                            "--allow-extrapolation to generate there anyway")
        self.outside += count if count is not None else 1

    def available(self) -> int | None:
        """How many energies the file holds (None: no limit)."""
        return None if self.file is None else len(self.file)

    def take(self, start: int, stop: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Energies of rows [start, stop); uniform ones are drawn from ``rng`` (default: the source's stream)."""
        if self.file is not None:
            return np.asarray(self.file.read(start, stop).energy, np.float64)
        if self.energy is not None:
            return np.full(stop - start, float(self.energy))
        lo, hi = self.range
        return (rng or self.rng).uniform(lo, hi, size=stop - start)

    def close(self):
        if self.file is not None:
            self.file.close()


def count_energies(path) -> int:
    """How many incident energies (showers) a shower file holds (DataError if it is not one)."""
    with open_showers(path, validate=False) as f:
        return len(f)


def class_labels(rng: np.random.Generator, n: int, fraction: float) -> np.ndarray:
    """(n,) int64 labels, each 1 with probability ``fraction`` (else 0)."""
    return (rng.random(n) < fraction).astype(np.int64)


def load_for_sampling(model, backend: str = "numba", initial: bool = False):
    """(model ready to sample, its path): from a model file or run directory, or with ``initial`` the run
    directory's untrained starting point (calosim.training.initial_model)."""
    if initial:
        model_path = Path(model)
        loaded = initial_model(model_path, backend)
    else:
        model_path = resolve_model_path(model)
        loaded = load_model(model_path, get_backend(backend))
    return loaded.freeze(), model_path


def generate(model, out, num_showers: int | None = None, backend: str = "numba", energy: float | None = None,
             energy_range=None, energies_from=None, batch_size: int = 1000, seed: int = 0,
             compression: str | None = None, progress=None, initial: bool = False, format: str | None = None,
             class_fraction: float = 0.5, allow_extrapolation: bool = False, shard_size: int | None = None,
             dask: str | None = None, virtual: bool = False, shard_progress=None) -> GenerateResult:
    """Write ``num_showers`` generated showers to ``out``; see the module docstring.

    model: a model file or run directory; with ``initial`` a run directory, whose untrained starting point
    generates instead of its trained weights. Energies: ``energy`` (GeV, all showers), ``energy_range``
    (lo, hi) uniform, ``energies_from`` (the incident energies of a shower file, in order; num_showers defaults
    to its length) or, with none given, uniform in the model's training range. format: "calogan" or
    "calochallenge" (default: the layout of the model's training data). class_fraction: the share of class 1
    for two-class models. progress(n_done) is called per chunk. Energies outside the model's training range
    are refused (DataError) unless ``allow_extrapolation``; the result counts them.

    shard_size / dask / virtual: the sharded job of the module docstring (``shard_size`` defaults to
    DEFAULT_SHARD_SIZE with ``dask``); ``shard_progress(k)`` is then called with the number of shards done.
    """
    if batch_size < 1:
        raise DataError("--batch-size must be >= 1")
    if virtual and dask is None:
        raise ConfigError("--virtual combines the shards of a --dask job; give --dask too")
    if dask is not None:
        if initial:
            raise ConfigError("--initial-weights is not supported with --dask (the workers load model files); "
                              "generate the baseline in one process")
        from calosim.distributed.shards import require_dask

        require_dask()
    sharded = shard_size is not None or dask is not None
    shard_size = shard_size or DEFAULT_SHARD_SIZE
    if not 0.0 <= class_fraction <= 1.0:
        raise DataError(f"--class-fraction must be in [0, 1], got {class_fraction}")
    sampler, model_path = load_for_sampling(model, backend, initial)
    format = format or str(sampler.attrs.get("data_format", "calogan"))
    if format not in FORMATS:
        raise DataError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    z_seed, e_seed, label_seed = np.random.SeedSequence(seed).spawn(3)
    z_rng, e_rng, label_rng = (np.random.default_rng(s) for s in (z_seed, e_seed, label_seed))
    if energy is None and energy_range is None and energies_from is None:
        energy_range = sampler.energy_range
    source = EnergySource(e_rng, energy, energy_range, energies_from, model_range=sampler.energy_range,
                          allow_extrapolation=allow_extrapolation)
    try:
        if num_showers is None:
            if source.available() is None:
                raise DataError("--num-showers is needed unless --energies-from gives the energies")
            num_showers = source.available()
        if num_showers < 1:
            raise DataError(f"--num-showers must be >= 1, got {num_showers}")
        if source.available() is not None and num_showers > source.available():
            raise DataError(f"{energies_from}: {source.available()} energies, fewer than --num-showers {num_showers}")
        if source.file is not None:
            source.check_file(num_showers)
        attrs = {"format": format, "units": UNITS[format], "geometry": json.dumps(sampler.geometry.to_dict()),
                 "particle": sampler.particle, "seed": int(seed), "calosim_version": __version__,
                 "producer": f"calosim {__version__} generate ({sampler.model_type} {sampler.config.name})",
                 "model": str(model_path), "weights": "initial" if initial else "trained",
                 "backend": sampler.backend.name,
                 "model_energy_range": np.asarray(sampler.energy_range, np.float64)}
        labels = None
        if sampler.n_classes > 1:
            attrs["class_fraction"] = float(class_fraction)
            labels = lambda n: class_labels(label_rng, n, class_fraction)  # noqa: E731
        if sharded:
            attrs["shard_size"] = int(shard_size)
            job = ShardJob(backend=sampler.backend.name, seed=int(seed), batch_size=batch_size, format=format,
                           energy=energy, energy_range=tuple(energy_range) if energy_range is not None else None,
                           energies_from=str(Path(energies_from).resolve()) if energies_from is not None else None,
                           class_fraction=float(class_fraction) if sampler.n_classes > 1 else None)
            if dask is None:
                result = _write_sharded(sampler, Path(out), num_showers, shard_size, source, job, attrs, compression,
                                        progress)
            else:
                result = _write_on_dask(model_path, Path(out), num_showers, shard_size, job, attrs, compression,
                                        dask, virtual, sampler.geometry, shard_progress or progress)
            result.extrapolated = bool(source.outside)
            return result
        result = _write(sampler, Path(out), num_showers, source, z_rng, labels, batch_size, format, attrs,
                        compression, progress)
        result.extrapolated = bool(source.outside)
        return result
    finally:
        source.close()


def _write(sampler, out: Path, n: int, source: EnergySource, z_rng, labels, batch_size: int, format: str,
           attrs: dict, compression, progress) -> GenerateResult:
    be = sampler.backend
    t_start = time.perf_counter()
    t_gen = 0.0
    with ShowerWriter(out, sampler.geometry, n, format, attrs, compression, chunk_rows=min(batch_size, 1000),
                      labels=labels is not None) as writer:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            e = source.take(start, stop)
            batch_labels = labels(stop - start) if labels is not None else None
            t0 = time.perf_counter()
            layers = sampler.sample(e, z_rng, batch_labels)
            be.synchronize()
            t_gen += time.perf_counter() - t0
            writer.write(start, [be.to_numpy(x) for x in layers], e, batch_labels)
            if progress is not None:
                progress(stop - start)
    return GenerateResult(out, n, time.perf_counter() - t_start, t_gen, format)


# ---------------------------------------------------------------------------------------------------------
# sharded generation (calosim.distributed.shards): the same shard function here and on the Dask workers

DEFAULT_SHARD_SIZE = 10_000


@dataclass(frozen=True)
class ShardJob:
    """What fixes the content of every shard besides the model (picklable: it travels to the Dask workers)."""

    backend: str
    seed: int
    batch_size: int
    format: str
    energy: float | None = None
    energy_range: tuple | None = None
    energies_from: str | None = None
    class_fraction: float | None = None  # two-class models only


def _shard_rows(sampler, source: EnergySource, shard, job: ShardJob):
    """(offset in the shard, layers (backend arrays), energies (B,) GeV, labels or None, generator seconds) per
    batch of ``shard``; every draw comes from the shard's own streams (calosim.distributed.shards.shard_seed)."""
    from calosim.distributed.shards import shard_seed

    z_rng, e_rng, label_rng = (np.random.default_rng(s) for s in shard_seed(job.seed, shard.index).spawn(3))
    energies = source.take(shard.start, shard.stop, rng=e_rng)
    be = sampler.backend
    for offset in range(0, shard.size, job.batch_size):
        e = energies[offset:offset + job.batch_size]
        labels = class_labels(label_rng, len(e), job.class_fraction) if job.class_fraction is not None else None
        t0 = time.perf_counter()
        layers = sampler.sample(e, z_rng, labels)
        be.synchronize()
        yield offset, [be.to_numpy(x) for x in layers], e, labels, time.perf_counter() - t0


def _write_sharded(sampler, out: Path, n: int, shard_size: int, source: EnergySource, job: ShardJob, attrs: dict,
                   compression, progress) -> GenerateResult:
    """The sharded job in this process: the shards one after the other, straight into ``out``."""
    from calosim.distributed.shards import plan_shards

    t_start, t_gen = time.perf_counter(), 0.0
    with ShowerWriter(out, sampler.geometry, n, job.format, attrs, compression,
                      chunk_rows=min(job.batch_size, 1000), labels=job.class_fraction is not None) as writer:
        for shard in plan_shards(n, shard_size):
            for offset, layers, e, labels, seconds in _shard_rows(sampler, source, shard, job):
                writer.write(shard.start + offset, layers, e, labels)
                t_gen += seconds
                if progress is not None:
                    progress(len(e))
    return GenerateResult(out, n, time.perf_counter() - t_start, t_gen, job.format)


_WORKER_SAMPLERS: dict = {}  # (model sha256, backend) -> the loaded model, one per Dask worker process


def _worker_sampler(model_bytes: bytes, sha256: str, backend: str):
    """The model of ``model_bytes`` on ``backend``, loaded once per worker process and kept for its next shards."""
    key = (sha256, backend)
    if key not in _WORKER_SAMPLERS:
        _WORKER_SAMPLERS.clear()  # one job's model at a time
        with tempfile.TemporaryDirectory(prefix="calosim-model-") as tmp:
            path = Path(tmp) / "model.h5"
            path.write_bytes(model_bytes)
            _WORKER_SAMPLERS[key] = load_model(path, get_backend(backend)).freeze()
    return _WORKER_SAMPLERS[key]


def generate_shard(shard, path: str, model_bytes: bytes, sha256: str, job: ShardJob, attrs: dict,
                   compression: str | None = None) -> float:
    """A Dask task: shard ``shard`` of the job written to ``path`` (a complete shower file of its rows, atomically;
    ``compression`` as ShowerWriter's); returns the seconds spent in the generator."""
    sampler = _worker_sampler(model_bytes, sha256, job.backend)
    source = EnergySource(None, job.energy, job.energy_range, job.energies_from)
    seconds = 0.0
    try:
        with ShowerWriter(path, sampler.geometry, shard.size, job.format,
                          dict(attrs, shard=shard.index, shard_rows=[shard.start, shard.stop]), compression,
                          chunk_rows=min(job.batch_size, 1000), labels=job.class_fraction is not None) as writer:
            for offset, layers, e, labels, t in _shard_rows(sampler, source, shard, job):
                writer.write(offset, layers, e, labels)
                seconds += t
    finally:
        source.close()
    return seconds


def _write_on_dask(model_path: Path, out: Path, n: int, shard_size: int, job: ShardJob, attrs: dict, compression,
                   address: str, virtual: bool, geometry, progress) -> GenerateResult:
    from calosim.distributed import shards as sharding

    t_start = time.perf_counter()
    model_bytes = model_path.read_bytes()
    sha256 = hashlib.sha256(model_bytes).hexdigest()
    shards = sharding.plan_shards(n, shard_size)
    manifest = {"job": "generate", "model_sha256": sha256, "num_showers": n, "shard_size": shard_size,
                **{k: v for k, v in job.__dict__.items()}, "calosim_version": __version__}
    store = sharding.ShardStore(sharding.shard_directory(out), manifest)
    with sharding.dask_client(address) as client:
        model = client.scatter(model_bytes, broadcast=True)  # once to every worker, not once per task
        shard_compression = compression if virtual else None  # a virtual file's data stay in the shards
        results = sharding.run_shards(client, generate_shard, shards, store,
                                      args=(model, sha256, job, attrs, shard_compression), progress=progress)
    if virtual:
        sharding.virtual_file(store, shards, out, dict(attrs, shards=str(store.directory.name)))
    else:
        sharding.combine_shards(store, shards, out, geometry, job.format, attrs, compression,
                                labels=job.class_fraction is not None, chunk_rows=min(job.batch_size, 1000))
    return GenerateResult(out, n, time.perf_counter() - t_start, sum(results.values()), job.format)
