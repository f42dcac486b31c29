"""A job cut into shards of fixed size, run on Dask, kept on disk so that a rerun resumes, combined at the end.

    plan = plan_shards(n, shard_size)                 # [Shard(index, start, stop)], independent of the workers
    with dask_client("local:2") as client:            # or "tcp://scheduler:8786"
        store = ShardStore(shard_directory(out), manifest)   # OUT.shards/, refuses another job's shards
        run_shards(client, task, plan, store, args, progress)  # task(shard, path, *args) writes one shard file
        combine_shards(store, plan, out, virtual=False)  # one file through ShowerWriter, or an HDF5 virtual file

Every shard is a complete shower file of rows [start, stop) of the job (calosim.data.writer.ShowerWriter,
written atomically by the worker), so a shard on disk is finished by construction; a rerun with the same
arguments submits only the missing ones. What a shard holds depends only on the job's arguments and the shard's
index (its random streams come from (seed, index) through numpy's SeedSequence), never on the worker that ran it
or on how many there were. A worker that dies takes its running shards with it: Dask reruns them on another
worker (``retries`` counts failures inside a task, the scheduler's allowed-failures lost workers).

The shard directory must be on a file system the workers and the client share (a cluster's home or scratch);
``--dask local:N`` runs on this machine.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from calosim.atomic import atomic_h5
from calosim.data.writer import ShowerWriter
from calosim.errors import ConfigError, DataError

INSTALL_EXTRA = "pip install 'calosim[distributed]'"
MANIFEST = "manifest.json"
TASK_RETRIES = 3  # failures inside a shard task (an exception) before the job gives up


@dataclass(frozen=True)
class Shard:
    """Rows [start, stop) of the job, number ``index`` (0-based)."""

    index: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def plan_shards(n: int, shard_size: int) -> list[Shard]:
    """The shards of a job of ``n`` rows: ``shard_size`` rows each, the last one shorter."""
    if shard_size < 1:
        raise ConfigError(f"--shard-size must be >= 1, got {shard_size}")
    return [Shard(k, a, min(n, a + shard_size)) for k, a in enumerate(range(0, n, shard_size))]


def shard_seed(seed: int, index: int) -> np.random.SeedSequence:
    """The seed sequence of shard ``index``: child ``index`` of ``SeedSequence(seed)`` (what ``spawn`` would give),
    so every shard's streams are independent and fixed by (seed, index) alone."""
    return np.random.SeedSequence(seed, spawn_key=(index,))


def shard_directory(out) -> Path:
    """Where the shards of output file ``out`` are kept: ``OUT.shards/`` beside it."""
    return Path(str(out) + ".shards")


def require_dask() -> None:
    """ConfigError (one line, with the install command) when dask.distributed is not installed."""
    if importlib.util.find_spec("distributed") is None:
        raise ConfigError(f"--dask needs the distributed extra: {INSTALL_EXTRA}")


@contextlib.contextmanager
def dask_client(address: str) -> Iterator:
    """A distributed.Client for ``address``: "local:N" starts a LocalCluster of N single-threaded worker processes
    on this machine (closed on leaving the block); anything else is the address of a running scheduler
    (tcp://host:8786, as dask-jobqueue's SLURMCluster or HTCondorCluster print it)."""
    require_dask()
    import logging

    import distributed

    cluster = None
    if address.startswith("local:"):
        count = address.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise ConfigError(f"--dask {address}: local:N needs a number of workers N >= 1")
        cluster = distributed.LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True,
                                           dashboard_address=":0", silence_logs=logging.ERROR)
        client = distributed.Client(cluster)
    else:
        try:
            client = distributed.Client(address, timeout="10s")
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"--dask {address}: cannot reach a Dask scheduler there ({' '.join(str(exc).split())})"
                              "; give a scheduler address (tcp://host:8786) or local:N") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


class ShardStore:
    """The shard directory of one job: its manifest (the arguments that fix every shard's content) and the
    finished shard files. A directory holding another job's shards is refused, never mixed."""

    def __init__(self, directory, manifest: dict):
        self.directory = Path(directory)
        self.manifest = json.loads(json.dumps(manifest))  # normalised: tuples -> lists
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"{self.directory}: cannot create the shard directory: {exc.strerror}") from None
        path = self.directory / MANIFEST
        if path.exists():
            old = json.loads(path.read_text())
            if old != self.manifest:
                diff = ", ".join(f"{k}: {old.get(k)!r} -> {v!r}" for k, v in self.manifest.items()
                                 if old.get(k) != v)
                raise ConfigError(f"{self.directory} holds shards of another job ({diff}); delete it or rerun with "
                                  "the same arguments")
        else:
            path.write_text(json.dumps(self.manifest, indent=1) + "\n")

    def path(self, shard: Shard) -> Path:
        return self.directory / f"shard_{shard.index:06d}.h5"

    def finished(self, shard: Shard) -> bool:
        """Whether the shard's file is there with its rows (files appear only complete: calosim.atomic)."""
        path = self.path(shard)
        if not path.is_file():
            return False
        try:
            with h5py.File(path, "r") as f:
                return all(f[name].shape[0] == shard.size for name in f)
        except (OSError, KeyError):
            return False

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def run_shards(client, task: Callable, shards: list[Shard], store: ShardStore, args: tuple = (),
               per_shard_args: Callable[[Shard], tuple] | None = None,
               progress: Callable[[int], None] | None = None) -> dict:
    """Run ``task(shard, path, *per_shard_args(shard), *args)`` on the Dask cluster for every shard not yet in
    ``store``; returns {shard index: the task's result} of those computed now. ``args`` may hold futures (e.g.
    the model's bytes, scattered once with ``client.scatter(..., broadcast=True)``): Dask hands the workers their
    values. ``progress(k)`` is
    called with the number of shards found finished, then once per shard as it finishes."""
    from distributed import as_completed

    todo = [s for s in shards if not store.finished(s)]
    if progress is not None and len(shards) > len(todo):
        progress(len(shards) - len(todo))
    job = uuid.uuid4().hex[:12]  # task keys unique to this run, on a scheduler other jobs may share
    futures = [client.submit(task, shard, str(store.path(shard)),
                             *(per_shard_args(shard) if per_shard_args else ()), *args,
                             key=f"calosim-shard-{shard.index}-{job}", retries=TASK_RETRIES, pure=False)
               for shard in todo]
    index_of = {future.key: shard.index for future, shard in zip(futures, todo)}
    results = {}
    try:
        for future in as_completed(futures):
            results[index_of[future.key]] = future.result()  # a task's own error, after its retries, ends the job
            if progress is not None:
                progress(1)
    finally:
        for future in futures:
            future.cancel()
    return results


def combine_shards(store: ShardStore, shards: list[Shard], out, geometry, format: str, attrs: dict,
                   compression: str | None = None, labels: bool = False, overflow: bool = False,
                   chunk_rows: int = 1000) -> Path:
    """Copy every shard, in order, into one shower file ``out`` through ShowerWriter (bit for bit: the datasets
    are copied, not decoded); the shard directory is removed afterwards."""
    n = shards[-1].stop if shards else 0
    with ShowerWriter(out, geometry, n, format, attrs, compression, chunk_rows=min(chunk_rows, max(n, 1)),
                      labels=labels, overflow=overflow) as writer:
        for shard in shards:
            with h5py.File(store.path(shard), "r") as f:
                writer.write_datasets(shard.start, f)
    store.remove()
    return Path(out)


def virtual_file(store: ShardStore, shards: list[Shard], out, attrs: dict) -> Path:
    """Write ``out`` as an HDF5 file of virtual datasets over the kept shard files (each dataset of the shards,
    rows concatenated in shard order); the shards are referred to by their path relative to ``out``'s directory,
    so the two move together. ``attrs`` become the file's attributes."""
    from calosim.data.writer import write_attrs

    out = Path(out)
    first = store.path(shards[0])
    n = shards[-1].stop
    with h5py.File(first, "r") as f:
        layout_of = {name: (f[name].shape[1:], f[name].dtype) for name in f}
    base = out.parent if str(out.parent) else Path(".")
    with atomic_h5(out) as f:
        for name, (shape, dtype) in layout_of.items():
            layout = h5py.VirtualLayout(shape=(n, *shape), dtype=dtype)
            for shard in shards:
                relative = Path(os.path.relpath(store.path(shard), base))
                layout[shard.start:shard.stop] = h5py.VirtualSource(str(relative), name, shape=(shard.size, *shape))
            f.create_virtual_dataset(name, layout)
        write_attrs(f, attrs)
    return out
