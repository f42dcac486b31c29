"""Fitting a model file's calibration (calosim.models.calibration.fit_model: the profile spread, the energy map,
the low-tail map and the cell factors) to shower data, in place."""

from __future__ import annotations

from pathlib import Path

from calosim.backends import get_backend
from calosim.data.formats import open_showers, read_showers
from calosim.errors import DataError
from calosim.models import energy_map, spectrum_tail, spread
from calosim.models.calibration import FITTED_KEY, MIN_SHOWERS, RESPONSE_KEY, fit_model
from calosim.models.files import load_model, store_fitted_values


def calibrate_file(path, data, rows: range | None = None, max_showers: int = 10_000, seed: int = 0,
                   backend: str = "numba") -> dict:
    """Fit the calibration of the model file ``path`` (the profile-spread factors, the energy map, the low-tail
    map and the cell factors) to the showers ``rows`` (default all; at most ``max_showers``, the first ones) of the
    shower file ``data`` and store it in the file (models.files.store_fitted_values). Returns the stored values
    {key: array}."""
    model = load_model(path, get_backend(backend))
    with open_showers(data) as f:
        n_file = len(f)
    rows = range(0, n_file) if rows is None else rows
    if rows.start >= n_file or rows.stop > n_file:
        raise DataError(f"{data}: rows {rows.start}-{rows.stop} asked for, the file has {n_file} showers")
    showers = read_showers(data, rows.start, min(rows.stop, rows.start + max_showers))
    if showers.geometry.shapes != model.geometry.shapes:
        raise DataError(f"{data}: geometry {list(showers.geometry.shapes)} is not the model's "
                        f"{list(model.geometry.shapes)}")
    if len(showers) < MIN_SHOWERS:
        raise DataError(f"{data}: {len(showers)} showers; the calibration needs at least {MIN_SHOWERS}")
    fit_model(model, showers, seed)
    keys = (*spread.KEYS, *energy_map.KEYS, FITTED_KEY, spectrum_tail.KEY)
    values = {key: model.fitted[key] for key in keys}
    store_fitted_values(path, values, removed=(RESPONSE_KEY,))  # older files' response factors: the map replaces them
    return values


def run_model_files(run_dir) -> list[Path]:
    """The model files of a run directory that the calibration is fitted for: best.h5 and last.h5, where there."""
    return [Path(run_dir) / name for name in ("best.h5", "last.h5") if (Path(run_dir) / name).is_file()]


def calibrate_run(run_dir: Path, data_path: Path, train_rows: range, seed: int, backend: str,
                  reporter) -> None:
    """The calibration of the run's best.h5 and last.h5, fitted to its first 10,000 training showers."""
    n = min(len(train_rows), 10_000)
    if n < MIN_SHOWERS:
        reporter.message(f"no calibration: {n} training showers, fewer than the {MIN_SHOWERS} it needs")
        return
    for path in run_model_files(run_dir):
        calibrate_file(path, data_path, train_rows, max_showers=n, seed=seed, backend=backend)
    reporter.message(f"calibration (profile spread, energy map, low tail, cells) of best.h5 and last.h5 fitted to "
                     f"{n} training showers")
