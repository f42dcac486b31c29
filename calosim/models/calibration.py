"""Cell calibration: per-cell factors, fitted after training, that bring a model's mean shower shape onto the
training showers' at every incident energy (a post-processor of the generated cells, for any model type).

A decoder that fits cells in a log-like unit regresses each cell to a typical value, not its mean: a cell whose
deposits fluctuate much (the tails of a shower, where Geant4 has a few sporadic hits) comes out too small on
average, so that the generated showers are too narrow and too regular. The calibration measures that per cell:

    s_v     = cell_v / (the sum of its layer's cells)         the normalised shape of a shower (0 if empty)
    w_b(c)  = max(0, 1 - |c - c_b| / h)                       hat weights on B centres c_b = b h, h = 1 / (B - 1),
                                                              c the energy condition (calosim.models.units)
                                                              clipped to [0, 1]; sum_b w_b(c) = 1
    m_b,v   = sum_i w_b(c_i) u_i,l s_i,v / sum_i w_b(c_i) u_i,l
                                                              weighted mean shapes, of the training showers (data)
                                                              and of the model's own samples (model), both
                                                              averaged over the sampling mirror axes; u_i,l the
                                                              energy of the cell's layer l over E_inc
    f_b,v   = clip(m^data_b,v / m^model_b,v, 1 / CLIP, CLIP)  (1 where the model's mean is 0)

The layer-energy weights u keep showers that left a layer almost empty (a photon that converts late: a few
sporadic hits, whose normalised shape is all tail) from setting the mean shape of every shower; without them the
calibrated gamma showers came out 35% too wide in layer 0. Sampling multiplies every cell by
F_v(c) = sum_b w_b(c) f_b,v, then scales each layer back to the sum it had, so that the layer energies (and with
them the energy model's) are untouched. Stored as the fitted values cell_calibration (B, V); a model without them
samples as before.

The layer energies themselves come from the energy map (calosim.models.energy_map), fitted here too. Model files
calibrated before it carry response factors instead (fitted value response_calibration (B,)): every layer energy
the energy model draws is multiplied by G(c) = sum_b w_b(c) g_b, g_b the ratio of the data's hat-weighted mean
response to the energy model's. Sampling still applies them where a file has them and no energy map.
"""

from __future__ import annotations

import numpy as np

from calosim.models.units import energy_condition

FITTED_KEY = "cell_calibration"
CENTRES = 5  # hat functions over the conditioning range (log incident energy): B
CLIP = 5.0  # factors within [1 / CLIP, CLIP]
MIN_SHOWERS = 100  # the fewest showers a fit takes
RESPONSE_KEY = "response_calibration"


def hat_weights(c, n_centres: int, xp):
    """(N, B) hat weights of conditions c (N, 1), clipped to [0, 1], on B evenly spaced centres."""
    c = xp.minimum(xp.maximum(c, 0.0), 1.0)
    h = 1.0 / (n_centres - 1)
    return xp.concatenate([xp.maximum(1.0 - xp.abs(c - b * h) / h, 0.0) for b in range(n_centres)], axis=1)


def normalised_shapes(layers) -> np.ndarray:
    """(N, V) float64: each shower's cells divided by its layer's sum (0 in an empty layer)."""
    parts = []
    for layer in layers:
        x = np.asarray(layer, np.float64).reshape(len(layer), -1)
        total = x.sum(axis=1, keepdims=True)
        parts.append(np.where(total > 0, x / np.where(total > 0, total, 1.0), 0.0))
    return np.concatenate(parts, axis=1)


def layer_weights(layers, energy_gev, geometry) -> np.ndarray:
    """(N, V) float64: each cell's weight in the mean shapes, its layer's energy over the incident energy."""
    return np.concatenate([layer_share(x, energy_gev) for x in layers], axis=1)


def layer_share(layer, energy_gev) -> np.ndarray:
    """(N, V_l) float64: :func:`layer_weights` of one layer (N, R, C)."""
    flat = np.asarray(layer, np.float64).reshape(len(layer), -1)
    energy_mev = 1000.0 * np.asarray(energy_gev, np.float64)
    return np.repeat(flat.sum(axis=1, keepdims=True), flat.shape[1], axis=1) / energy_mev[:, None]


def symmetrised(mean_shapes: np.ndarray, geometry, axes) -> np.ndarray:
    """(B, V) mean shapes averaged over every combination of reflections along ``axes``."""
    off = geometry.offsets
    return np.concatenate([symmetrised_layer(mean_shapes[:, off[i]:off[i + 1]], layer, axes)
                           for i, layer in enumerate(geometry.layers)], axis=1)


def symmetrised_layer(part: np.ndarray, layer, axes) -> np.ndarray:
    """(B, V_l) mean shapes of one layer averaged over every combination of reflections along ``axes``."""
    views = [part.reshape(-1, *layer.shape)]
    for axis in axes:
        views = views + [np.flip(v, axis=axis + 1) for v in views]
    return (sum(views) / len(views)).reshape(len(part), -1)


def weighted_means(shapes: np.ndarray, weights: np.ndarray, cell_weights: np.ndarray | None = None) -> np.ndarray:
    """(B, V) means of shapes (N, V) under each column of weights (N, B), each cell's terms also weighted by
    ``cell_weights`` (N, V) when given."""
    if cell_weights is None:
        return (weights.T @ shapes) / np.maximum(weights.sum(axis=0), 1e-12)[:, None]
    return (weights.T @ (shapes * cell_weights)) / np.maximum(weights.T @ cell_weights, 1e-30)


def clipped_ratio(numerator: np.ndarray, denominator: np.ndarray, clip: float) -> np.ndarray:
    """numerator / denominator clipped to [1 / clip, clip], and 1 where the denominator is not positive."""
    positive = denominator > 0
    return np.where(positive, np.clip(numerator / np.where(positive, denominator, 1.0), 1.0 / clip, clip), 1.0)


def fit_factors(data_shapes, data_condition, model_shapes, model_condition, geometry, axes=(),
                n_centres: int = CENTRES, data_weights=None, model_weights=None) -> np.ndarray:
    """(B, V) factors f_b,v (module docstring) from normalised shapes (N, V) and conditions (N, 1) of the data and
    of the model's samples, and optionally per-cell weights (N, V) of their terms."""
    m_data = weighted_means(data_shapes, hat_weights(np.asarray(data_condition, np.float64), n_centres, np),
                            data_weights)
    m_model = weighted_means(model_shapes, hat_weights(np.asarray(model_condition, np.float64), n_centres, np),
                             model_weights)
    return clipped_ratio(symmetrised(m_data, geometry, axes), symmetrised(m_model, geometry, axes), CLIP)


def scale_cells(flat, f, xp):
    """One layer's cells (N, V_l) times the factors f (N, V_l), scaled back to the layer's sum."""
    scaled = flat * f
    before, after = flat.sum(axis=1, keepdims=True), scaled.sum(axis=1, keepdims=True)
    return scaled * xp.where(after > 0, before / xp.maximum(after, 1e-30), 0.0)


def apply_factors(layers: list, factors, condition, geometry, xp) -> list:
    """Layers [(N, R_l, C_l)] with every cell times F_v(c) and each layer scaled back to its sum."""
    f = hat_weights(condition, factors.shape[0], xp) @ factors  # (N, V)
    off = geometry.offsets
    out = []
    for i, x in enumerate(layers):
        flat = x.reshape(x.shape[0], -1)
        scaled = scale_cells(flat, f[:, off[i]:off[i + 1]].astype(flat.dtype), xp)
        out.append(scaled.astype(flat.dtype).reshape(x.shape))
    return out


def export_factors(layers: list, factors: np.ndarray, energy, energy_range, geometry, graph) -> list:
    """:func:`apply_factors` on an ONNX graph (calosim.export.graph.Graph) for per-layer values [(R_l, C_l)]."""
    c = energy_condition(energy, energy_range, graph)
    f = graph.matmul(hat_weights(c, factors.shape[0], graph), np.asarray(factors, np.float32))
    off = geometry.offsets
    return [scale_cells(x.reshape(-1, layer.n_cells), f[:, off[i]:off[i + 1]], graph).reshape(-1, *layer.shape)
            for i, (x, layer) in enumerate(zip(layers, geometry.layers))]


def fit_model(model, showers, seed: int = 0, batch_size: int = 1000) -> np.ndarray:
    """Fit ``model``'s calibration to ``showers`` (the training showers, calosim.data.Showers): the model samples
    at their incident energies (its latent draws from ``seed``, before any calibration, energy model or
    reflection), in the order sampling applies the steps: the profile-spread factors (calosim.models.spread);
    the energy map (calosim.models.energy_map), and the samples rescaled to its energies; the low-tail map of the
    cell spectrum (calosim.models.spectrum_tail) on those; the cell factors on samples through all of them (so that
    they restore the mean shape the map moved). All go to model.fitted. Returns the cell factors."""
    from calosim.models import energy_map, spectrum_tail, spread

    rng = np.random.default_rng(seed)
    be = model.backend
    energy = np.asarray(showers.energy, np.float64)
    generated = []
    for start in range(0, len(energy), batch_size):
        e = energy[start:start + batch_size]
        z = model.sample_latent(rng, len(e))
        labels = model.sample_labels(rng, len(e))
        layers = model.generate(be.asarray(z), be.asarray(e), labels=labels, training=False)
        generated.append([np.asarray(be.to_numpy(x), np.float64) for x in layers])
    condition = energy_condition(energy, model.energy_range, np)
    weights = hat_weights(condition, CENTRES, np)
    generated = [np.concatenate([part[i] for part in generated]) for i in range(model.geometry.n_layers)]
    data = [np.asarray(x, np.float64) for x in showers.layers]
    geometry, axes = model.geometry, model.sampling_mirror_axes
    data_shapes, data_weights = normalised_shapes(data), layer_weights(data, energy, geometry)
    data_means = symmetrised(weighted_means(data_shapes, weights, data_weights), geometry, axes)
    off = geometry.offsets

    def calibrated_layer(i, layer):
        """Layer i (N, R, C) after a cell calibration refitted to it alone, as sampling would give it."""
        flat = layer.reshape(len(layer), -1)
        means = symmetrised_layer(weighted_means(normalised_shapes([layer]), weights, layer_share(layer, energy)),
                                  geometry.layers[i], axes)
        f = clipped_ratio(data_means[:, off[i]:off[i + 1]], means, CLIP)
        return scale_cells(flat, weights @ f, np).reshape(layer.shape)

    fitted = spread.fit_spread(data, generated, weights, geometry, axes, calibrated_layer)
    for key in (*spread.KEYS, FITTED_KEY, RESPONSE_KEY, spectrum_tail.KEY, *energy_map.KEYS):
        model.fitted.pop(key, None)
    model.fitted.update(fitted)
    decoded = spread.apply_spread(generated, fitted, weights, geometry, np)
    model.fitted.update(energy_map.fit_map(
        showers.layer_energies(), np.concatenate(energy_map.layer_sums(decoded, geometry), axis=1), energy,
        hat_weights(condition, energy_map.CENTRES, np)))
    # the cells in the MeV they are sampled in
    layers = [np.asarray(be.to_numpy(x), np.float64)
              for x in model.apply_energy_model([be.asarray(x) for x in decoded], energy, rng)]
    model.fitted[spectrum_tail.KEY] = spectrum_tail.fit_tail(data, layers)
    mapped = spectrum_tail.apply_tail(layers, model.fitted[spectrum_tail.KEY], geometry, np)
    # weighted by the decoder's own layer energies, which go with its shapes (a gamma that converts late: a
    # layer 0 of a few sporadic hits)
    factors = fit_factors(data_shapes, condition, normalised_shapes(mapped), condition, geometry, axes,
                          data_weights=data_weights, model_weights=layer_weights(decoded, energy, geometry))
    model.fitted[FITTED_KEY] = factors
    return factors


def response_factors(factors, condition, xp):
    """(N, 1) G(c) of conditions c (N, 1) for the fitted response factors (B,); ``xp`` numpy or an ONNX graph."""
    weights = hat_weights(condition, len(factors), xp)
    column = np.asarray(factors, np.float64).reshape(-1, 1)
    if xp is np:
        return weights @ column
    return xp.matmul(weights, column.astype(np.float32))

