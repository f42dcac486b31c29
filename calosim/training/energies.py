"""The incident energies a run trains on: checked, and the conditioning range they give.

Every energy must be finite and > 0 (else one DataError naming the file and row). The conditioning range is the
one the user declares (config ``energy_range`` / ``--energy-range``) or what the data robustly covers: the band
[q01 / k, q99 * k] around the 1% and 99% quantiles of the training rows, k = max(2, (q99 / q01) ** 0.25), so a
spectrum keeps its edges while a stray shower at 1e9 GeV does not stretch the range over nine decades. Showers
outside the range are refused with their count and the worst row, or dropped when the caller asks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from calosim.data.formats import open_showers
from calosim.errors import DataError


@dataclass
class TrainingEnergies:
    energy_range: tuple[float, float]  # GeV, the conditioning range
    keep: np.ndarray | None  # (N_file,) bool: rows to use (None: all); only when outliers were dropped
    dropped: int = 0


def read_energies(path, n: int | None = None, chunk: int = 100_000) -> np.ndarray:
    """(N,) float64 GeV: the incident energies of the first ``n`` rows (default all), every one checked."""
    with open_showers(path, validate=False) as f:
        n = len(f) if n is None else n
        parts = [f.read_energy(start, min(start + chunk, n)) for start in range(0, n, chunk)]
    e = np.concatenate(parts) if parts else np.zeros(0)
    bad = ~(np.isfinite(e) & (e > 0))
    if bad.any():
        row = int(np.nonzero(bad)[0][0])
        raise DataError(f"{path}: incident energy {e[row]} GeV in row {row} (energies must be finite and > 0); "
                        f"{int(bad.sum())} such row(s)")
    return e


def robust_band(e: np.ndarray) -> tuple[float, float]:
    """The band of energies (GeV) a spectrum robustly covers (see the module docstring)."""
    q01, q99 = (float(q) for q in np.quantile(e, [0.01, 0.99]))
    k = max(2.0, (q99 / q01) ** 0.25)
    return q01 / k, q99 * k


def training_energies(path, train_rows: range, n_rows: int, declared=None,
                      drop_outliers: bool = False) -> TrainingEnergies:
    """Check the energies of a file's first ``n_rows`` rows (training and validation) and give the run's
    conditioning range: ``declared`` (GeV) or the training rows' range, rounded outwards to whole GeV (kept if
    below 1 GeV); rows outside the declared or robust band are refused, or dropped with ``drop_outliers``."""
    e = read_energies(path, n_rows)
    train = e[train_rows.start:train_rows.stop]
    band = tuple(float(x) for x in declared) if declared is not None else robust_band(train)
    outside = (e < band[0]) | (e > band[1])
    keep = None
    if outside.any():
        worst = int(np.argmax(np.maximum(band[0] / e, e / band[1])))
        what = "the declared energy_range" if declared is not None else "the range the data robustly covers"
        if not drop_outliers:
            raise DataError(f"{path}: {int(outside.sum())} shower(s) with incident energies outside {what} "
                            f"[{band[0]:.4g}, {band[1]:.4g}] GeV (worst: row {worst}, {e[worst]:.6g} GeV); pass "
                            "--drop-energy-outliers to train without them, or declare the range (--energy-range)")
        keep = ~outside
        train = train[keep[train_rows.start:train_rows.stop]]
        if len(train) == 0:
            raise DataError(f"{path}: no training shower lies inside {what} [{band[0]:.4g}, {band[1]:.4g}] GeV")
    if declared is not None:
        return TrainingEnergies(band, keep, int(outside.sum()))
    lo, hi = float(train.astype(np.float32).min()), float(train.astype(np.float32).max())
    lo = float(math.floor(lo)) if lo >= 1.0 else lo
    return TrainingEnergies((lo, float(math.ceil(hi))), keep, int(outside.sum()))
