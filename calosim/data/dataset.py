"""Stream showers from disk in chunks, with a seeded shuffle, for files larger than memory.

Only one chunk (``chunk_size`` showers, plus at most one batch carried over) is in memory at a time. The
shuffle is two-level, as in most streaming loaders: the order of the chunks is permuted, then the rows within
each chunk; with ``chunk_size >= len(dataset)`` it is a full random permutation. The same Generator state
gives the same batches; successive epochs draw new permutations from the same Generator.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from calosim.data.formats import open_showers
from calosim.data.showers import Showers, concatenate
from calosim.errors import DataError


def split(path_or_n, validation_fraction: float = 0.2, binning=None) -> tuple[range, range]:
    """Contiguous train / validation row ranges: the last ``validation_fraction`` of the file is validation.

    ``path_or_n`` is a shower file or a number of showers. Returns (train_rows, validation_rows) as ranges,
    to pass as ``rows=`` to ShowerDataset or as start / stop to read_showers.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    if isinstance(path_or_n, (int, np.integer)):
        n = int(path_or_n)
    else:
        with open_showers(path_or_n, binning=binning, validate=False) as f:
            n = len(f)
    n_val = int(round(n * validation_fraction))
    return range(0, n - n_val), range(n - n_val, n)


class ShowerDataset:
    """Batches of showers read from ``path`` chunk by chunk.

    path:       a CaloGAN or CaloChallenge file (binning= for challenge files without a geometry attribute)
    chunk_size: showers read from disk at a time
    batch_size: showers per batch (the last batch of an epoch may be smaller unless drop_last)
    shuffle:    permute chunk order and rows within chunks, using ``rng`` (a numpy Generator; default seed 0)
    rows:       a range of rows to use (e.g. from ``split``); default all
    arrays:     yield (layers, energy) tuples -- [(B, R_l, C_l) float32 MeV], (B,) float32 GeV -- not Showers
    keep:       (N_file,) bool: the file's rows to use (e.g. without energy outliers); default all
    """

    def __init__(self, path, chunk_size: int = 10_000, batch_size: int = 100, shuffle: bool = True,
                 rng: np.random.Generator | None = None, rows: range | None = None, drop_last: bool = False,
                 arrays: bool = False, binning=None, keep: np.ndarray | None = None):
        if chunk_size < 1 or batch_size < 1:
            raise ValueError("chunk_size and batch_size must be >= 1")
        self.path = path
        self.binning = binning
        with open_showers(path, binning=binning, validate=False) as f:
            n = len(f)
            self.geometry = f.geometry
            self.particle = f.particle
            self.attrs = dict(f.attrs)
            self.format = f.format
        rows = range(n) if rows is None else rows
        if rows.step != 1 or rows.start < 0 or rows.stop > n:
            raise DataError(f"{path}: rows {rows} do not lie within the file's {n} showers (step must be 1)")
        self.rows = rows
        self.keep = None if keep is None else np.asarray(keep, bool)
        self.chunk_size = int(chunk_size)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.drop_last = drop_last
        self.arrays = arrays

    def __len__(self) -> int:
        """Number of showers (not batches)."""
        if self.keep is None:
            return len(self.rows)
        return int(self.keep[self.rows.start:self.rows.stop].sum())

    @property
    def n_batches(self) -> int:
        n = len(self)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def chunks(self) -> list[tuple[int, int]]:
        """The (start, stop) file rows of each chunk, in file order."""
        r = self.rows
        return [(s, min(s + self.chunk_size, r.stop)) for s in range(r.start, r.stop, self.chunk_size)]

    def load(self) -> Showers:
        """All rows at once (in file order)."""
        with open_showers(self.path, binning=self.binning) as f:
            return self._kept(f.read(self.rows.start, self.rows.stop), self.rows.start)

    def _kept(self, showers: Showers, start: int) -> Showers:
        return showers if self.keep is None else showers.subset(self.keep[start:start + len(showers)])

    def _emit(self, s: Showers):
        return (s.layers, s.energy) if self.arrays else s

    def __iter__(self) -> Iterator:
        """One epoch of batches."""
        chunks = self.chunks()
        order = self.rng.permutation(len(chunks)) if self.shuffle else np.arange(len(chunks))
        carry: Showers | None = None
        with open_showers(self.path, binning=self.binning) as f:
            for ci in order:
                start, stop = chunks[ci]
                chunk = self._kept(f.read(start, stop), start)
                if self.shuffle:
                    chunk = chunk.subset(self.rng.permutation(len(chunk)))
                if carry is not None:
                    chunk = concatenate([carry, chunk])
                    carry = None
                n_full = len(chunk) // self.batch_size * self.batch_size
                for b in range(0, n_full, self.batch_size):
                    yield self._emit(chunk.subset(slice(b, b + self.batch_size)))
                if n_full < len(chunk):
                    carry = chunk.subset(slice(n_full, None))
        if carry is not None and not self.drop_last:
            yield self._emit(carry)


def energy_point_batches(energy: np.ndarray, batch_size: int, rng: np.random.Generator,
                         max_points: int = 50) -> list[np.ndarray] | None:
    """Row indices of the batches of one epoch, energy point by energy point in increasing energy (rows
    shuffled within a point, incomplete batches dropped); None when there are more than ``max_points``
    distinct energies (continuous spectrum: use the ordinary order)."""
    points = np.unique(np.round(np.asarray(energy, np.float64), 6))
    if len(points) > max_points:
        return None
    batches = []
    for e in points:
        rows = np.flatnonzero(np.isclose(energy, e, rtol=0, atol=1e-6 * max(1.0, e)))
        rows = rows[rng.permutation(len(rows))]
        batches += [rows[i:i + batch_size] for i in range(0, len(rows) - batch_size + 1, batch_size)]
    return batches


def mean_layer_fractions(path, rows: range, max_rows: int = 50_000) -> np.ndarray:
    """(L,) float64: the mean over the first ``max_rows`` of ``rows`` of E_l / E_inc (both MeV)."""
    stop = min(rows.stop, rows.start + max_rows)
    sums, count = None, 0
    with open_showers(path, validate=False) as f:
        for start in range(rows.start, stop, 10_000):
            s = f.read(start, min(start + 10_000, stop))
            u = s.layer_energies() / (1000.0 * np.asarray(s.energy, np.float64))[:, None]
            sums = u.sum(axis=0) if sums is None else sums + u.sum(axis=0)
            count += len(u)
    return sums / max(count, 1)


def layer_energy_sample(path, rows: range, max_rows: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
    """(layer sums (N, L) float64 MeV, incident energies (N,) float64 GeV) of the first ``max_rows`` of ``rows``."""
    stop = min(rows.stop, rows.start + max_rows)
    sums, energy = [], []
    with open_showers(path, validate=False) as f:
        for start in range(rows.start, stop, 10_000):
            s = f.read(start, min(start + 10_000, stop))
            sums.append(s.layer_energies())
            energy.append(np.asarray(s.energy, np.float64))
    return np.concatenate(sums), np.concatenate(energy)


def mirror_showers(layers, rng: np.random.Generator, axes) -> list:
    """Per-layer (B, R_l, C_l) showers, each reflected along each of ``axes`` (0 rows, 1 columns) with
    probability 1/2, the same reflections in every layer of a shower: data augmentation for a geometry that is
    mirror symmetric there (Geometry.mirror_axes). One uniform draw per shower and axis from ``rng``."""
    out = [np.array(x, copy=True) for x in layers]
    n = len(out[0])
    for axis in axes:
        flip = rng.random(n) < 0.5
        for x in out:
            x[flip] = np.flip(x[flip], axis=axis + 1)
    return out
