"""Low-tail map of the cell spectrum: per layer, a monotone map of the smallest generated cell energies onto the
training showers' (a calibration step of sampling, for any model type: after the energy model, in the MeV the
cells are sampled in, and before the cell factors, which then restore the mean shape the map moved).

Geant4's non-zero cells reach down to a few keV (sporadic low-energy hits: 4-7% of them below 0.1 MeV in the
CaloGAN e+ layers), while a decoder that fits cells in log(1 + E / 0.1 MeV) units seldom puts out a cell that small
(0.2-0.9% below 0.1 MeV). Per layer, in x = log(E / MeV) of the non-zero cells:

    m_k, d_k   the model's and the data's quantiles at the levels TAIL * LEVELS (the lowest TAIL of the cells)
    x' = x                                   above m_K (the model's TAIL quantile)
    x' = piecewise linear through (m_k, t_k) below it, slope 1 below m_0, t_k = d_k shifted so that t_K = m_K

so that the model's lowest cells take the data's distribution of the low tail, attached continuously where the map
ends (a tail that is merely shifted maps to itself). Slopes are clipped to [1 / SLOPE_CLIP, SLOPE_CLIP]. Each layer
is scaled back to its sum. Applied after the cell factors instead, the map took a few MeV from the edges of the e+
and gamma showers, and their layer-0 widths went from separation 0.018 to 0.030 (e+ validation) and up to 0.049
(gamma, held out). Applied before the energy model, it worked on the decoder's own layer energies, which for pi+
can be a thousandth of the drawn ones: a layer-0 of 0.006 MeV whose every cell is "tail" came out reshaped, and the
float rounding of such cells (batch-size dependent) mattered at 0.5% after the rescaling to GeV.
Stored as the fitted value spectrum_tail (L, 2, K): the model's knots m and the targets t; a model without it
samples as before.
"""

from __future__ import annotations

import numpy as np

KEY = "spectrum_tail"
TAIL = 0.1  # the lowest fraction of the non-zero cells that is mapped
LEVELS = np.concatenate([[0.002], np.linspace(0.05, 1.0, 20)])  # of TAIL: the knots' quantile levels
SLOPE_CLIP = 20.0
MIN_CELLS = 1000  # non-zero cells a layer needs on each side for its map


def knots(data_cells: np.ndarray, model_cells: np.ndarray) -> np.ndarray:
    """(2, K) knots m and targets t (module docstring) from the non-zero cell energies (MeV) of one layer; the
    identity map when either side has fewer than MIN_CELLS."""
    if data_cells.size < MIN_CELLS or model_cells.size < MIN_CELLS:
        identity = np.log(np.geomspace(1e-3, 1.0, len(LEVELS)))
        return np.stack([identity, identity])
    m = np.quantile(np.log(model_cells), TAIL * LEVELS)
    d = np.quantile(np.log(data_cells), TAIL * LEVELS)
    m = np.maximum.accumulate(m + 1e-9 * np.arange(len(m)))  # strictly increasing
    slopes = np.clip(np.diff(d) / np.diff(m), 1.0 / SLOPE_CLIP, SLOPE_CLIP)
    t_last = m[-1]
    t = t_last - np.concatenate([np.cumsum((slopes * np.diff(m))[::-1])[::-1], [0.0]])
    return np.stack([m, t])


def fit_tail(data_layers: list, model_layers: list) -> np.ndarray:
    """(L, 2, K) knots per layer from the training showers' layers and the model's samples (MeV)."""
    return np.stack([knots(np.asarray(d)[np.asarray(d) > 0], np.asarray(g)[np.asarray(g) > 0])
                     for d, g in zip(data_layers, model_layers)])


def mapped_log(x, m: np.ndarray, t: np.ndarray, xp):
    """x' (module docstring) of log energies x: slope 1 below m_0, linear between the knots, slope 1 above. With
    an array module that interpolates (numpy, cupy) in one pass; on an ONNX graph as a sum of ramps."""
    if hasattr(xp, "interp"):
        inner = xp.interp(x, xp.asarray(m, dtype=x.dtype), xp.asarray(t, dtype=x.dtype)).astype(x.dtype)
        below = x - float(m[0]) + float(t[0])
        return xp.where(x >= float(m[-1]), x, xp.where(x < float(m[0]), below, inner))
    y = (xp.minimum(x, float(m[0])) - float(m[0])) + float(t[0])
    for k in range(len(m) - 1):
        slope = (t[k + 1] - t[k]) / (m[k + 1] - m[k])
        y = y + float(slope) * (xp.minimum(xp.maximum(x, float(m[k])), float(m[k + 1])) - float(m[k]))
    return y + (xp.maximum(x, float(m[-1])) - float(m[-1]))


def apply_tail(layers: list, table, geometry, xp) -> list:
    """Layers [(N, R_l, C_l)] MeV with every layer's low tail mapped and the layer scaled back to its sum."""
    table = np.asarray(table, np.float64)
    out = []
    for i, (x, layer) in enumerate(zip(layers, geometry.layers)):
        flat = x.reshape(-1, layer.n_cells)
        occupied = flat > 0.0
        log_e = xp.log(xp.where(occupied, flat, 1.0))
        new = xp.where(occupied, xp.exp(mapped_log(log_e, table[i, 0], table[i, 1], xp)), 0.0)
        before, after = flat.sum(axis=1, keepdims=True), new.sum(axis=1, keepdims=True)
        out.append((new * (before / xp.maximum(after, 1e-30))).reshape(-1, *layer.shape))
    return out
