"""`calosim simulate --engine geant4 --dask`: the showers of calosim.geant4.engine simulated in shards on Dask.

The energies and Geant4 seeds are drawn up front as in the one-process run (engine._draw_showers), so the file
holds the same showers, bit for bit. Each Dask worker builds one Geant4 run manager on its first shard and keeps
it, and writes every shard as a shower file in ``OUT.shards/`` (kept, so a rerun resumes); the shards are then
combined into OUT, or referenced by an HDF5 virtual file (calosim.distributed.shards).
"""

from __future__ import annotations

import numpy as np

from calosim._version import __version__
from calosim.errors import ConfigError
from calosim.geant4 import engine
from calosim.geant4.datasets import DataSetup, setup_data
from calosim.geant4.detector import PHYSICS_LISTS
from calosim.geant4.engine import (
    Geant4Error,
    WorkerConfig,
    _check_energy_range,
    _draw_showers,
    _file_attrs,
    geant4_particle,
    require_geant4,
)
from calosim.geant4.scorer import build_scorer, warn_python_scorer
from calosim.geometry import calogan_geometry


def geant4_shard(shard, path: str, energies_gev, seeds, config: WorkerConfig, format: str) -> float:
    """A Dask task: the showers of ``shard`` (one per energy GeV and Geant4 seed) written to ``path`` as a
    shower file in ``format`` (atomically); returns the seconds Geant4 spent on them. The worker builds its
    Geant4 run manager on its first shard and keeps it (Geant4 allows one per process); its Geant4 output goes
    to ``config.log_dir``/geant4-worker-<pid>.log."""
    from calosim.data.writer import ShowerWriter

    if engine._STATE.get("config") != config:
        if "runner" in engine._STATE:
            raise Geant4Error("this Dask worker already runs Geant4 with another setup (one run manager per "
                              "process); use a fresh cluster for another particle or physics list")
        engine._worker_init(config)
    cells, seconds = engine._run_chunk(shard.index, energies_gev, seeds)[1:3]
    geometry, layers, overflow = engine.readout_layers(cells.astype(np.float32))
    attrs = {"shard": shard.index, "geant4_seconds": float(seconds.sum())}
    with ShowerWriter(path, geometry, shard.size, format, attrs, overflow=True) as out:
        out.write(0, layers, np.asarray(energies_gev, np.float64).astype(np.float32), overflow_mev=overflow)
    return float(seconds.sum())


def simulate_on_dask(path, particle: str, num_showers: int, energy_range, seed: int, *, format: str, dask: str,
                     shard_size: int, virtual: bool, approximate_data: bool, physics: str = "FTFP_BERT_EMV",
                     progress=None, chunk_size=None) -> None:
    """simulate_geant4_to_file on Dask: the same energies and seeds, simulated shard by shard on the workers."""
    import h5py

    from calosim.data.formats import shower_file_attrs
    from calosim.distributed import shards as sharding

    sharding.require_dask()
    require_geant4()
    lo, hi = _check_energy_range(energy_range, num_showers)
    g4_particle = geant4_particle(particle)
    if physics not in PHYSICS_LISTS:
        raise ConfigError(f"unknown physics list {physics!r}; choose one of {', '.join(PHYSICS_LISTS)}")
    data: DataSetup = setup_data(approximate_data)
    library, why = build_scorer()
    if library is None:
        warn_python_scorer(why)
    energies, g4_seeds = _draw_showers(seed, num_showers, lo, hi)
    shards = sharding.plan_shards(num_showers, shard_size)
    manifest = {"job": "simulate geant4", "seed": seed, "energy_range": [lo, hi], "n": num_showers,
                "shard_size": shard_size, "physics": physics, "particle": g4_particle, "format": format,
                "approximate_data": data.approximate, "calosim_version": __version__}
    store = sharding.ShardStore(sharding.shard_directory(path), manifest)
    env = dict(data.env, CALOSIM_G4_APPROXIMATE="1" if data.approximate else "0")
    config = WorkerConfig(g4_particle, physics, env, str(library) if library else None, str(store.directory))
    with sharding.dask_client(dask) as client:
        sharding.run_shards(client, geant4_shard, shards, store, args=(config, format),
                            per_shard_args=lambda s: (energies[s.start:s.stop], g4_seeds[s.start:s.stop]),
                            progress=progress)
    total_seconds = 0.0
    for shard in shards:
        with h5py.File(store.path(shard), "r") as f:
            total_seconds += float(f.attrs["geant4_seconds"])
    geometry = calogan_geometry()
    attrs = {"seed": seed, "producer": f"calosim {__version__}",
             **_file_attrs(seed, lo, hi, physics, data, "compiled" if library else "python",
                           1e3 * total_seconds / num_showers),
             "shard_size": shard_size, **shower_file_attrs(format, geometry, g4_particle)}
    if virtual:
        sharding.virtual_file(store, shards, path, dict(attrs, shards=store.directory.name))
    else:
        sharding.combine_shards(store, shards, path, geometry, format, attrs, compression="gzip", overflow=True)
