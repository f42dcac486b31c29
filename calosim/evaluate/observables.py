"""Shower-shape observables, vectorised over N showers (images in MeV, incident energy in GeV).

Two families:

- ``calogan_observables(layers)``: exactly the 20 observables compared in the CaloGAN paper (reference
  section 7), for the three CaloGAN layers (N, 3, 96), (N, 12, 12), (N, 12, 6).
- ``shower_observables(showers)``: the same ideas for any layered geometry (per-layer energies, fractions and
  sparsity, centroids and widths along both axes of each layer, longitudinal depth and width, and the
  response E_tot / E_inc).

Every function returns ``dict[name, (N,) float64 array]``; energies in MeV, positions and widths in mm
(radians for nothing: polar CaloChallenge layers are turned into x / y positions first).
"""

from __future__ import annotations

import numpy as np

EPS = 1e-6  # the CaloGAN code's epsilon in every denominator

CALOGAN_SHAPES = ((3, 96), (12, 12), (12, 6))
CALOGAN_OBSERVABLES = (
    "E_0", "E_1", "E_2", "E_tot", "f_0", "f_1", "f_2", "max_depth",
    "E_ratio_0", "E_ratio_1", "E_ratio_2", "lateral_depth", "sigma_0", "sigma_1", "sigma_2",
    "shower_depth", "sparsity_0", "sparsity_1", "sparsity_2", "depth_width",
)

# Axis labels for plots: (LaTeX-free text, unit)
UNITS = {"E": "MeV", "E_tot": "MeV", "lateral_depth": "MeV", "sigma": "mm", "centroid_x": "mm",
         "centroid_y": "mm", "width_x": "mm", "width_y": "mm"}


def unit_of(name: str) -> str:
    """The unit of an observable's values ('' for dimensionless ones), for axis labels."""
    if name in UNITS:
        return UNITS[name]
    stem = name.rsplit("_", 1)[0]
    return UNITS.get(stem, "")


def _flat(layer: np.ndarray) -> np.ndarray:
    layer = np.asarray(layer)
    return layer.reshape(layer.shape[0], -1)


def layer_energy(layer: np.ndarray) -> np.ndarray:
    """(N, R, C) MeV -> (N,) float64 MeV: the sum of the layer's cells."""
    return _flat(layer).sum(axis=1, dtype=np.float64)


def sparsity(layer: np.ndarray) -> np.ndarray:
    """(N, R, C) -> (N,): the fraction of cells with E > 0."""
    flat = _flat(layer)
    return (flat > 0).sum(axis=1) / flat.shape[1]


def energy_ratio(layer: np.ndarray) -> np.ndarray:
    """(N, R, C) -> (N,): (E_max - E_2nd) / (E_max + E_2nd + eps) of the two hottest cells."""
    flat = _flat(layer).astype(np.float64)
    if flat.shape[1] < 2:
        top, second = flat[:, 0], np.zeros(flat.shape[0])
    else:
        part = np.partition(flat, flat.shape[1] - 2, axis=1)  # [-2] the 2nd largest, [-1] the largest
        top, second = part[:, -1], part[:, -2]
    return (top - second) / (top + second + EPS)


def weighted_moments(layer: np.ndarray, centres: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Energy-weighted mean and standard deviation of the cell centres along ``axis`` (1 rows, 2 columns).

    layer (N, R, C) MeV; centres (R,) for axis 1 or (C,) for axis 2, in mm. Returns two (N,) arrays in mm;
    eps in the denominators as in CaloGAN, so empty layers give 0 and 0.
    """
    layer = np.asarray(layer, dtype=np.float64)
    profile = layer.sum(axis=3 - axis)  # (N, R) for axis 1, (N, C) for axis 2
    e = profile.sum(axis=1) + EPS
    x = profile @ centres / e
    x2 = profile @ (centres**2) / e
    return x, np.sqrt(np.maximum(x2 - x**2, 0.0))


def lateral_width(layer: np.ndarray, extent: float = 480.0) -> np.ndarray:
    """CaloGAN's sigma_l: energy-weighted std (mm) along axis 1 of cell centres of linspace(-240, 240, R + 1)."""
    n = np.asarray(layer).shape[1]
    edges = np.linspace(-extent / 2, extent / 2, n + 1)
    return weighted_moments(layer, 0.5 * (edges[1:] + edges[:-1]), axis=1)[1]


def calogan_observables(layers) -> dict[str, np.ndarray]:
    """The 20 observables of the CaloGAN paper for layers [(N, 3, 96), (N, 12, 12), (N, 12, 6)] in MeV.

    Returns {name: (N,) float64} for the names of CALOGAN_OBSERVABLES (reference section 7):
    E_l, E_tot (overflow excluded) in MeV; f_l = E_l / E_tot; max_depth (deepest layer with E > 0);
    E_ratio_l of the two hottest cells; lateral_depth E_1 + 2 E_2 (MeV); sigma_l in mm; shower_depth
    = lateral_depth / E_tot; sparsity_l; depth_width = sqrt((E_1 + 4 E_2) / E_tot - shower_depth^2).
    """
    if len(layers) != 3:
        raise ValueError(f"CaloGAN observables need 3 layers, got {len(layers)}")
    e = [layer_energy(layer) for layer in layers]
    e_tot = e[0] + e[1] + e[2]
    out: dict[str, np.ndarray] = {f"E_{i}": e[i] for i in range(3)}
    out["E_tot"] = e_tot
    for i in range(3):
        out[f"f_{i}"] = e[i] / (e_tot + EPS)
    out["max_depth"] = np.where(e[2] > 0, 2.0, np.where(e[1] > 0, 1.0, 0.0))
    for i in range(3):
        out[f"E_ratio_{i}"] = energy_ratio(layers[i])
    lateral_depth = e[1] + 2.0 * e[2]
    out["lateral_depth"] = lateral_depth
    for i in range(3):
        out[f"sigma_{i}"] = lateral_width(layers[i])
    shower_depth = lateral_depth / (e_tot + EPS)
    out["shower_depth"] = shower_depth
    for i in range(3):
        out[f"sparsity_{i}"] = sparsity(layers[i]).astype(np.float64)
    lateral_depth2 = e[1] + 4.0 * e[2]
    out["depth_width"] = np.sqrt(np.maximum(lateral_depth2 / (e_tot + EPS) - shower_depth**2, 0.0))
    return {name: out[name] for name in CALOGAN_OBSERVABLES}


def is_calogan(geometry_or_shapes) -> bool:
    """True when the layer shapes are CaloGAN's three."""
    shapes = getattr(geometry_or_shapes, "shapes", geometry_or_shapes)
    return tuple(tuple(s) for s in shapes) == CALOGAN_SHAPES


def cell_xy(layer_geometry) -> tuple[np.ndarray, np.ndarray]:
    """(R, C) x and y positions (mm) of the cell centres of one layer (cartesian or polar)."""
    if layer_geometry.polar:
        r_edges = np.asarray(layer_geometry.r_edges)
        r = 0.5 * (r_edges[1:] + r_edges[:-1])
        n_alpha = layer_geometry.shape[0]
        alpha = (np.arange(n_alpha) + 0.5) * 2 * np.pi / n_alpha
        return np.cos(alpha)[:, None] * r[None, :], np.sin(alpha)[:, None] * r[None, :]
    rows = layer_geometry.row_edges()
    cols = layer_geometry.col_edges()
    xr = 0.5 * (rows[1:] + rows[:-1])
    yc = 0.5 * (cols[1:] + cols[:-1])
    return np.broadcast_to(xr[:, None], layer_geometry.shape), np.broadcast_to(yc[None, :], layer_geometry.shape)


def _xy_moments(layer: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = _flat(layer).astype(np.float64)
    p = pos.reshape(-1)
    e = flat.sum(axis=1) + EPS
    m = flat @ p / e
    m2 = flat @ (p**2) / e
    return m, np.sqrt(np.maximum(m2 - m**2, 0.0))


def layer_shape_observables(layer: np.ndarray, layer_geometry) -> dict[str, np.ndarray]:
    """The observables of one layer's shape alone, unchanged by its scale: E_ratio (the two hottest cells) and
    width_x / width_y (mm, energy-weighted std of the cell centres along x and y), each (N,)."""
    x, y = cell_xy(layer_geometry)
    return {"E_ratio": energy_ratio(layer), "width_x": _xy_moments(layer, x)[1], "width_y": _xy_moments(layer, y)[1]}


def shower_observables(showers) -> dict[str, np.ndarray]:
    """Observables for any layered geometry (``showers``: calosim.data.Showers, or anything with
    ``layers`` [(N, R_l, C_l) MeV], ``energy`` (N,) GeV and ``geometry``).

    Per layer l: E_l (MeV), f_l = E_l / E_tot, sparsity_l, centroid_x_l / width_x_l and centroid_y_l /
    width_y_l (energy-weighted mean and std of the cell centres in mm; x along rows, y along columns for
    cartesian layers, x = r cos(alpha), y = r sin(alpha) for polar ones). Global: E_tot (MeV), response =
    E_tot / E_inc, max_depth (deepest layer index with E > 0), shower_depth (energy-weighted mean layer
    index) and depth_width (its std). A single-layer geometry has no longitudinal observables (f_0, max_depth,
    shower_depth and depth_width would be constants there, which no model can be told apart on).
    """
    layers, geometry = showers.layers, showers.geometry
    e_inc_mev = np.asarray(showers.energy, dtype=np.float64).reshape(-1) * 1000.0
    e = np.stack([layer_energy(layer) for layer in layers], axis=1)  # (N, L)
    e_tot = e.sum(axis=1)
    out: dict[str, np.ndarray] = {}
    for i in range(len(layers)):
        out[f"E_{i}"] = e[:, i]
    out["E_tot"] = e_tot
    out["response"] = e_tot / e_inc_mev
    if len(layers) > 1:
        for i in range(len(layers)):
            out[f"f_{i}"] = e[:, i] / (e_tot + EPS)
        idx = np.arange(len(layers), dtype=np.float64)
        nonzero = e > 0
        out["max_depth"] = np.where(nonzero.any(axis=1), (len(layers) - 1) - np.argmax(nonzero[:, ::-1], axis=1),
                                    0).astype(np.float64)
        depth = e @ idx / (e_tot + EPS)
        out["shower_depth"] = depth
        out["depth_width"] = np.sqrt(np.maximum(e @ idx**2 / (e_tot + EPS) - depth**2, 0.0))
    for i, (layer, lg) in enumerate(zip(layers, geometry.layers)):
        out[f"sparsity_{i}"] = sparsity(layer).astype(np.float64)
        x, y = cell_xy(lg)
        out[f"centroid_x_{i}"], out[f"width_x_{i}"] = _xy_moments(layer, x)
        out[f"centroid_y_{i}"], out[f"width_y_{i}"] = _xy_moments(layer, y)
    return out


def default_observables(showers) -> dict[str, np.ndarray]:
    """What ``calosim evaluate`` compares: for CaloGAN geometry the paper's 20 plus the response
    E_tot / E_inc and the widths along columns; for any other geometry ``shower_observables``."""
    if is_calogan(showers.geometry):
        out = calogan_observables(showers.layers)
        generic = shower_observables(showers)
        out["response"] = generic["response"]
        for i in range(3):
            out[f"width_y_{i}"] = generic[f"width_y_{i}"]
        return out
    return shower_observables(showers)
