"""The one shower writer: streams showers into a new file of either layout, chunk by chunk, atomically.

    with ShowerWriter("gen.h5", geometry, n, format="calochallenge", attrs={...}) as out:
        out.write(start, layers_mev, energy_gev)          # any number of times, rows [start, start + len)

Layouts as calosim.data.formats describes them: CaloGAN ``layer_<i>`` (N, R_i, C_i) float32 MeV and ``energy``
(N, 1) float32 GeV; CaloChallenge ``showers`` (N, V) float32 MeV and ``incident_energies`` (N, 1) float64 MeV
(float64: float32 GeV times 1000 is exact there, so GeV -> MeV -> GeV is lossless). Optional ``overflow``
(N, L) MeV and ``label`` (N,) int64 class labels (two-class models). ``attrs`` are written in the order given;
values HDF5 cannot hold (dicts, mixed lists, None) are stored as JSON and listed in ``_json_attrs``. The file
appears under its name only when the block ends without an exception (calosim.atomic).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from calosim.atomic import atomic_h5, os_error_text, require_finite
from calosim.errors import DataError

CALOGAN = "calogan"
CALOCHALLENGE = "calochallenge"
FORMATS = (CALOGAN, CALOCHALLENGE)
LABEL_DATASET = "label"


def _write_attr(f, key: str, value, json_keys: list) -> None:
    if isinstance(value, (str, bool, int, float, np.generic)):
        f.attrs[key] = value
        return
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        f.attrs[key] = value
        return
    if (isinstance(value, (list, tuple)) and value
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        f.attrs[key] = np.asarray(value)
        return
    f.attrs[key] = json.dumps(value)
    json_keys.append(key)


def write_attrs(f, attrs: dict) -> None:
    """Write ``attrs`` to the open file ``f`` in the order given, as ShowerWriter does (values HDF5 cannot hold
    as JSON, listed in ``_json_attrs``)."""
    json_keys: list = []
    for key, value in attrs.items():
        _write_attr(f, key, value, json_keys)
    if json_keys:
        f.attrs["_json_attrs"] = json_keys


class ShowerWriter:
    """Context manager writing ``n`` showers of ``geometry`` to ``path`` in ``format`` (see the module docstring).

    chunk_rows: HDF5 chunk length along the shower axis; compression: None or "gzip"; labels / overflow: whether
    the file gets those datasets."""

    def __init__(self, path, geometry, n: int, format: str = CALOGAN, attrs: dict | None = None,
                 compression: str | None = None, chunk_rows: int = 1000, labels: bool = False,
                 overflow: bool = False):
        if format not in FORMATS:
            raise DataError(f"{path}: unknown format {format!r}; choose one of {', '.join(FORMATS)}")
        if format == CALOGAN and len({layer.name for layer in geometry.layers}) != geometry.n_layers:
            raise DataError(f"{path}: layer names of geometry {geometry.name!r} are not unique")
        self.path, self.geometry, self.n, self.format = Path(path), geometry, int(n), format
        self.attrs = dict(attrs or {})
        self.kw = {"compression": compression} if compression else {}
        self.chunk = max(1, min(chunk_rows, self.n)) if self.n else None
        self.with_labels, self.with_overflow = labels, overflow
        self._context = None

    def _dataset(self, f, name, shape, dtype):
        chunks = (self.chunk, *shape) if self.chunk else None
        return f.create_dataset(name, shape=(self.n, *shape), dtype=dtype, chunks=chunks, track_times=False,
                                **self.kw)

    def __enter__(self) -> ShowerWriter:
        directory = self.path.parent if str(self.path.parent) else Path(".")
        if not directory.is_dir():
            raise DataError(f"{self.path}: directory {directory} does not exist")
        self._context = atomic_h5(self.path)
        try:
            f = self._context_file = self._context.__enter__()
        except OSError as exc:
            raise DataError(f"{self.path}: cannot write: {os_error_text(exc)}") from None
        try:  # the with statement calls __exit__ only once __enter__ has returned
            g = self.geometry
            if self.format == CALOGAN:
                self._cells = [self._dataset(f, layer.name, layer.shape, np.float32) for layer in g.layers]
                self._energy = f.create_dataset("energy", shape=(self.n, 1), dtype=np.float32, track_times=False,
                                                **self.kw)
            else:
                self._cells = [self._dataset(f, "showers", (g.n_cells,), np.float32)]
                self._energy = f.create_dataset("incident_energies", shape=(self.n, 1), dtype=np.float64,
                                                track_times=False, **self.kw)
            self._overflow = self._dataset(f, "overflow", (g.n_layers,), np.float32) if self.with_overflow else None
            self._labels = self._dataset(f, LABEL_DATASET, (), np.int64) if self.with_labels else None
            write_attrs(f, self.attrs)
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def write(self, start: int, layers_mev, energy_gev, labels=None, overflow_mev=None) -> None:
        """Rows [start, start + len(energy_gev)): per-layer (B, R_l, C_l) MeV, E (B,) GeV, labels (B,) ints and
        overflow (B, L) MeV when the file has those datasets."""
        stop = start + len(energy_gev)
        self._check(start, layers_mev, energy_gev, overflow_mev)
        if self.format == CALOGAN:
            for ds, x in zip(self._cells, layers_mev):
                ds[start:stop] = np.asarray(x).astype(np.float32, copy=False)
            self._energy[start:stop] = np.asarray(energy_gev).astype(np.float32).reshape(-1, 1)
        else:
            flat = self.geometry.flatten([np.asarray(x, np.float32) for x in layers_mev])
            self._cells[0][start:stop] = np.asarray(flat, np.float32)
            self._energy[start:stop] = np.asarray(energy_gev, np.float64).reshape(-1, 1) * 1000.0
        if self._labels is not None:
            self._labels[start:stop] = np.asarray(labels, np.int64)
        if self._overflow is not None:
            self._overflow[start:stop] = np.asarray(overflow_mev, np.float32)

    def write_dataset(self, name: str, values) -> None:
        """A per-shower dataset ``name`` (N, ...) beside the showers, written whole (e.g. Geant4's fast-simulation
        flags); its name must not be one of the layout's."""
        values = np.asarray(values)
        if values.shape[:1] != (self.n,):
            raise DataError(f"{self.path}: dataset {name!r} has {values.shape[:1]} rows for {self.n} showers")
        f = self._context_file
        if name in f:
            raise DataError(f"{self.path}: dataset {name!r} exists already")
        self._dataset(f, name, values.shape[1:], values.dtype)[...] = values

    def write_datasets(self, start: int, source) -> None:
        """Rows [start, start + len) copied, as they are, from the datasets of the same names in ``source`` (an
        open h5py.File in this writer's layout, e.g. a shard of a sharded job): no decoding, so the rows are
        bit for bit those of the source. Cells and energies are checked as :meth:`write` checks them."""
        datasets = [*self._cells, self._energy, self._overflow, self._labels]
        rows = None
        for ds in datasets:
            if ds is None:
                continue
            name = ds.name.lstrip("/")
            if name not in source:
                raise DataError(f"{self.path}: the rows to copy from {source.filename} lack dataset {name!r}")
            values = source[name][()]
            rows = len(values) if rows is None else rows
            if len(values) != rows:
                raise DataError(f"{source.filename}: datasets of different lengths; nothing was written")
            if ds is not self._labels:
                require_finite(values, f"showers with {name}", self.path, nonnegative=ds is not self._energy,
                               row_offset=start)
            ds[start:start + rows] = values

    def _check(self, start: int, layers_mev, energy_gev, overflow_mev) -> None:
        """Nothing is published that calosim's readers would reject: finite non-negative cells and overflow,
        finite incident energies > 0 (the row named counts from the file's first shower)."""
        for layer, x in zip(self.geometry.layers, layers_mev):
            require_finite(x, f"showers with {layer.name}", self.path, nonnegative=True, row_offset=start)
        if overflow_mev is not None:
            require_finite(overflow_mev, "showers with overflow", self.path, nonnegative=True, row_offset=start)
        e = np.asarray(energy_gev, np.float64).reshape(-1)
        bad = ~(np.isfinite(e) & (e > 0))
        if bad.any():
            row = int(np.nonzero(bad)[0][0])
            raise DataError(f"{self.path}: refusing to write an incident energy of {e[row]} GeV (row {start + row}; "
                            "energies must be finite and > 0); nothing was written")

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            self._context.__exit__(exc_type, exc, tb)
        except OSError as err:
            raise DataError(f"{self.path}: cannot write: {os_error_text(err)}") from None
        if isinstance(exc, OSError):
            raise DataError(f"{self.path}: cannot write: {os_error_text(exc)}") from None
        return False
