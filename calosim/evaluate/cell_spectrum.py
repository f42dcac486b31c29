"""The cell-energy spectrum per layer: the distribution of the energies of the non-zero cells (MeV) of all
showers, reference against generated, on a log scale.

A generator that cannot make small deposits shows here first: its spectrum starts at a floor (say 0.15 MeV)
where Geant4's reaches down to keV, which the per-shower observables (sums, widths) hardly see. Each layer
gets the separation power of the two spectra on log-spaced bins over their pooled range and their 1% / 50%
quantiles, so that such a floor reads as numbers as well as in the plot.
"""

from __future__ import annotations

import numpy as np

from calosim.evaluate.metrics import binned_counts, histogram_separation, uniform_edges

SPECTRUM_QUANTILES = (0.01, 0.5)
SPECTRUM_BINS = 50
# the binning starts at this quantile of the pooled cells: Geant4 files hold stray deposits of 1e-24 MeV that
# would otherwise stretch the range over 30 decades and leave the bulk a handful of bins
RANGE_LOW_QUANTILE = 1e-3


def nonzero_cells(layer) -> np.ndarray:
    """(N, R, C) MeV -> (n_nonzero,) float64 MeV: every cell energy above 0, over all showers."""
    flat = np.asarray(layer).ravel()
    return flat[flat > 0].astype(np.float64)


def log_spectrum_edges(ref_cells: np.ndarray, gen_cells: np.ndarray, n_bins: int = SPECTRUM_BINS) -> np.ndarray:
    """``n_bins + 1`` log10(E / MeV) edges, uniform from the pooled 0.1% quantile of the non-zero cells to
    their maximum (cells below fall in the first bin). Pooled, so that the cells of only one sample, e.g.
    below the other's floor, fall in bins of their own."""
    pooled = np.log10(np.concatenate([ref_cells, gen_cells]))
    low = np.quantile(pooled, RANGE_LOW_QUANTILE)
    return uniform_edges(pooled[pooled >= low], pooled[:0], n_bins)


def _quantiles(cells: np.ndarray) -> dict[str, float | None]:
    if cells.size == 0:
        return {f"{100 * q:g}%": None for q in SPECTRUM_QUANTILES}
    return {f"{100 * q:g}%": float(v) for q, v in zip(SPECTRUM_QUANTILES, np.quantile(cells, SPECTRUM_QUANTILES))}


def compare_layer_spectra(ref_cells: np.ndarray, gen_cells: np.ndarray, n_ref_showers: int, n_gen_showers: int,
                          n_bins: int = SPECTRUM_BINS) -> dict:
    """Metrics of one layer's spectra: sep_power (log-spaced bins over log10_range_mev), quantiles_ref_mev /
    quantiles_gen_mev
    (1% and 50% of the non-zero cells), the number of non-zero cells of each and per shower."""
    out = {"sep_power": float("nan"), "log10_range_mev": None, "quantiles_ref_mev": _quantiles(ref_cells),
           "quantiles_gen_mev": _quantiles(gen_cells),
           "nonzero_cells_ref": int(ref_cells.size), "nonzero_cells_gen": int(gen_cells.size),
           "nonzero_per_shower_ref": ref_cells.size / max(n_ref_showers, 1),
           "nonzero_per_shower_gen": gen_cells.size / max(n_gen_showers, 1)}
    if ref_cells.size and gen_cells.size:
        edges = log_spectrum_edges(ref_cells, gen_cells, n_bins)
        out["log10_range_mev"] = [float(edges[0]), float(edges[-1])]
        out["sep_power"] = histogram_separation(binned_counts(np.log10(ref_cells), edges),
                                                binned_counts(np.log10(gen_cells), edges))
    return out


def compare_cell_spectra(ref_layers, gen_layers, layer_names: list[str] | None = None,
                         n_bins: int = SPECTRUM_BINS) -> dict:
    """The spectra of every layer: ref_layers / gen_layers are sequences of (N, R_l, C_l) MeV arrays.

    Returns {"layers": {name: compare_layer_spectra(...)}, "mean_sep_power": float, "n_bins": int,
    "binning": str}.
    """
    if len(ref_layers) != len(gen_layers):
        raise ValueError(f"{len(ref_layers)} reference layers but {len(gen_layers)} generated ones")
    names = layer_names or [f"layer_{i}" for i in range(len(ref_layers))]
    layers = {}
    for name, ref, gen in zip(names, ref_layers, gen_layers):
        layers[name] = compare_layer_spectra(nonzero_cells(ref), nonzero_cells(gen), len(ref), len(gen), n_bins)
    seps = [m["sep_power"] for m in layers.values() if np.isfinite(m["sep_power"])]
    return {"layers": layers, "mean_sep_power": float(np.mean(seps)) if seps else float("nan"), "n_bins": n_bins,
            "binning": f"{n_bins} bins uniform in log10(E / MeV) from the pooled {100 * RANGE_LOW_QUANTILE:g}% "
                       "quantile of the non-zero cells (smaller cells counted in the first bin) to their maximum"}
