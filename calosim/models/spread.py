"""Profile-spread calibration: two factors per layer, fitted after training, that give the model's showers the
training showers' shower-to-shower spread of shape (a post-processor of the generated cells, for any model type;
it runs before the cell calibration, calosim.models.calibration).

A VAE's showers vary too much in how steep their lateral profile is and too little cell by cell: on the shipped
e+ model the layer-1 widths came out 1.4-2x too broadly distributed, and layer 2 too regular (E_ratio_2, the
contrast of its two hottest cells, separation 0.12). Per shower and layer, with s_v the normalised shape
(calibration.normalised_shapes) and y_v = log s_v on the occupied cells:

    x_v(c)        = sum_b w_b(c) mu_b,v           the model's own mean log-shape at the shower's energy (hat
                                                  weights w_b as in calibration), averaged over the mirror axes
    y_v = a + alpha x_v + eps_v                   least squares weighted by sqrt(s_v) (the cells that carry the
                                                  energy set the fit, not the many sporadic tail hits)
    y'_v = a + (alpha_bar + k_slope (alpha - alpha_bar)) x_v + k_residual eps_v

alpha is how steep the shower's profile is (a wide shower has alpha < 1), eps the rest of its cell-by-cell
structure; alpha_bar is the mean slope of the model's samples. The new shape exp(y'_v) is scaled back to the
layer's sum, and empty cells stay empty, so that the layer energies and the sparsity are untouched. A layer with
fewer than MIN_CELLS occupied cells is left as it is.

The factors are chosen per layer on a grid (k_slope in SLOPE_GRID, k_residual in RESIDUAL_GRID) to minimise the
summed separation power of the layer's shape observables (E_ratio, width_x, width_y) between the training showers
and the model's samples at their energies, after the cell calibration is refitted. k = (1, 1) is on the grid, so
a layer the transform cannot improve is left as it is. Moment matching (the data's spread of alpha and eps) was
tried and is far off: Geant4's log-shapes carry the sampling noise of sparse hits, which no observable sees.

Stored as the fitted values spread_centre (B, V), spread_factors (L, 2) and spread_slope_mean (L,); a model
without them samples as before.
"""

from __future__ import annotations

import numpy as np

from calosim.evaluate.metrics import binned_counts, histogram_separation, separation_power
from calosim.evaluate.observables import layer_shape_observables

CENTRE_KEY = "spread_centre"
FACTORS_KEY = "spread_factors"
SLOPE_KEY = "spread_slope_mean"
KEYS = (CENTRE_KEY, FACTORS_KEY, SLOPE_KEY)
SLOPE_GRID = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.3, 1.6)
RESIDUAL_GRID = (0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0)
SPECTRUM_BINS = 50  # bins of the cell spectrum in the fit's score
MIN_CELLS = 3  # occupied cells a layer needs for its profile fit
EMPTY = -1e30  # the log-shape of an empty cell, below any occupied one's


def profile_fit(flat, centre, xp):
    """Per shower of one layer: the log normalised shape y (N, V) (0 where empty), the occupancy (bool), the
    weighted least-squares slope alpha (N, 1) and intercept a (N, 1) of y on ``centre`` (N, V), and whether the
    fit was made (N, 1); ``xp`` numpy, cupy or an ONNX graph."""
    total = flat.sum(axis=1, keepdims=True)
    occupied = flat > 0.0
    y = xp.where(occupied, xp.log(xp.where(occupied, flat, 1.0) / xp.maximum(total, 1e-30)), 0.0)
    u = xp.where(occupied, xp.exp(0.5 * y), 0.0)
    u_sum = xp.maximum(u.sum(axis=1, keepdims=True), 1e-30)
    x_mean = (u * centre).sum(axis=1, keepdims=True) / u_sum
    y_mean = (u * y).sum(axis=1, keepdims=True) / u_sum
    dx = centre - x_mean
    sxx = (u * dx * dx).sum(axis=1, keepdims=True)
    sxy = (u * dx * (y - y_mean)).sum(axis=1, keepdims=True)
    n_occupied = occupied.astype(np.float32).sum(axis=1, keepdims=True)
    fitted = xp.where(n_occupied >= float(MIN_CELLS), sxx, 0.0) > 1e-6 * u_sum
    slope = xp.where(fitted, sxy / xp.where(fitted, sxx, 1.0), 1.0)
    return y, occupied, slope, y_mean - slope * x_mean, fitted


def apply_layer(flat, centre, k_slope: float, k_residual: float, slope_mean: float, xp):
    """One layer's cells (N, V) with the profile-spread transform (module docstring), scaled back to its sum."""
    return recombined(flat, centre, profile_fit(flat, centre, xp), k_slope, k_residual, slope_mean, xp)


def recombined(flat, centre, profile, k_slope: float, k_residual: float, slope_mean: float, xp):
    """:func:`apply_layer` given the layer's :func:`profile_fit` ``profile``."""
    y, occupied, slope, intercept, fitted = profile
    new_slope = slope_mean + k_slope * (slope - slope_mean)
    residual = y - intercept - slope * centre
    y_new = xp.where(fitted, intercept + new_slope * centre + k_residual * residual, y)
    y_new = xp.where(occupied, y_new, EMPTY)
    e = xp.where(occupied, xp.exp(y_new - y_new.max(axis=1, keepdims=True)), 0.0)
    total = flat.sum(axis=1, keepdims=True)
    return e * (total / xp.maximum(e.sum(axis=1, keepdims=True), 1e-30))


def apply_spread(layers: list, fitted: dict, weights, geometry, xp, matmul=None) -> list:
    """Layers [(N, R_l, C_l)] with the profile-spread transform, for hat weights (N, B) of the showers'
    conditions; ``matmul(weights, table)`` interpolates the centres (default ``weights @ table``)."""
    if matmul:
        centre = matmul(weights, fitted[CENTRE_KEY])
    else:  # in the layers' precision: float32 sampling stays float32
        centre = (weights @ xp.asarray(fitted[CENTRE_KEY])).astype(layers[0].dtype)
    factors, slope_mean = np.asarray(fitted[FACTORS_KEY]), np.asarray(fitted[SLOPE_KEY])
    off = geometry.offsets
    out = []
    for i, (x, layer) in enumerate(zip(layers, geometry.layers)):
        k_slope, k_residual = float(factors[i, 0]), float(factors[i, 1])
        if k_slope == 1.0 and k_residual == 1.0:
            out.append(x)
            continue
        flat = x.reshape(-1, layer.n_cells)
        new = apply_layer(flat, centre[:, off[i]:off[i + 1]], k_slope, k_residual, float(slope_mean[i]), xp)
        out.append(new.reshape(-1, *layer.shape))
    return out


def mean_log_shapes(shapes: np.ndarray, weights: np.ndarray, geometry, axes) -> np.ndarray:
    """(B, V) hat-weighted means of the log normalised shapes (N, V) over the occupied cells, averaged over the
    mirror axes; a cell never occupied at a centre takes its layer's smallest mean there."""
    from calosim.models.calibration import symmetrised

    occupied = shapes > 0
    logs = np.where(occupied, np.log(np.where(occupied, shapes, 1.0)), 0.0)
    counts = weights.T @ occupied
    means = symmetrised((weights.T @ logs) / np.maximum(counts, 1e-12), geometry, axes)
    seen = symmetrised(counts, geometry, axes) > 0
    off = geometry.offsets
    for i in range(geometry.n_layers):
        part, known = means[:, off[i]:off[i + 1]], seen[:, off[i]:off[i + 1]]
        floor = np.where(known, part, np.inf).min(axis=1, keepdims=True)
        means[:, off[i]:off[i + 1]] = np.where(known, part, np.where(np.isfinite(floor), floor, 0.0))
    return means


def log_cells(layer: np.ndarray) -> np.ndarray:
    """The log normalised energies of one layer's occupied cells (N, R, C), pooled: its cell spectrum in units
    that do not depend on the layer's energy."""
    from calosim.models.calibration import normalised_shapes

    shapes = normalised_shapes([layer])
    return np.log(shapes[shapes > 0])


def fit_spread(data_layers: list, model_layers: list, weights: np.ndarray, geometry, axes, calibrated_layer) -> dict:
    """The fitted values (KEYS) for the training showers' layers and the model's samples at the same energies
    (both float64 [(N, R_l, C_l)], hat weights (N, B) of their conditions). ``calibrated_layer(i, layer)``
    returns layer i after a cell calibration refitted to it, as sampling would give it.

    The score of a pair of factors is the summed separation power of the layer's shape observables and of its
    cell spectrum (:func:`log_cells`, in SPECTRUM_BINS bins of equal population in the data), so that the
    transform may not buy the observables with cells that Geant4 never makes."""
    from calosim.models.calibration import normalised_shapes

    centre_table = mean_log_shapes(normalised_shapes(model_layers), weights, geometry, axes)
    centre = weights @ centre_table
    off = geometry.offsets
    factors = np.ones((geometry.n_layers, 2))
    slope_mean = np.ones(geometry.n_layers)
    for i, layer in enumerate(geometry.layers):
        flat = model_layers[i].reshape(len(model_layers[i]), -1)
        layer_centre = centre[:, off[i]:off[i + 1]]
        profile = profile_fit(flat, layer_centre, np)
        slope, fitted = profile[2], profile[4]
        if fitted.any():
            slope_mean[i] = float(slope[fitted].mean())
        reference = layer_shape_observables(data_layers[i], layer)
        data_cells = log_cells(data_layers[i])
        if data_cells.size:
            edges = np.quantile(data_cells, np.linspace(0.0, 1.0, SPECTRUM_BINS + 1))
            data_counts = binned_counts(data_cells, edges)
        best = None
        for k_slope in SLOPE_GRID:
            for k_residual in RESIDUAL_GRID:
                trial = recombined(flat, layer_centre, profile, k_slope, k_residual, slope_mean[i], np)
                trial = calibrated_layer(i, trial.reshape(model_layers[i].shape))
                generated = layer_shape_observables(trial, layer)
                score = sum(separation_power(reference[name], generated[name]) for name in reference)
                if data_cells.size:
                    score += histogram_separation(data_counts, binned_counts(log_cells(trial), edges))
                if best is None or score < best[0] - 1e-12:
                    best = (score, k_slope, k_residual)
        factors[i] = best[1:]
    return {CENTRE_KEY: centre_table, FACTORS_KEY: factors, SLOPE_KEY: slope_mean}
