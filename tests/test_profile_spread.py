"""The profile-spread calibration (calosim.models.spread): per layer, each shower's log-shape fitted as a slope on
the model's mean log-shape plus residuals, the slopes' spread and the residuals scaled by two fitted factors."""

from __future__ import annotations

import numpy as np
import pytest
from family_helpers import TINY_GEOMETRY, tiny_showers

from calosim.evaluate.metrics import separation_power
from calosim.evaluate.observables import layer_shape_observables
from calosim.geometry import Geometry, LayerGeometry
from calosim.models import spread
from calosim.models.calibration import fit_model, hat_weights

GRID = Geometry("grid", (LayerGeometry("layer_0", (9, 9), (40.0, 40.0)),))


def _profile_showers(slopes, noise, rng):
    """(N, 9, 9) showers whose log-shape is slope_i * m_v + noise, m_v a Gaussian profile's log (centred)."""
    r = np.arange(9) - 4.0
    m = -np.add.outer(r**2, r**2).ravel() / 6.0
    y = slopes[:, None] * m[None, :] + noise * rng.standard_normal((len(slopes), 81))
    cells = np.exp(y) * 1000.0
    cells[rng.random(cells.shape) < 0.1] = 0.0
    return cells.reshape(-1, 9, 9), m


def test_the_profile_fit_recovers_a_known_slope_and_intercept():
    rng = np.random.default_rng(1)
    slopes = rng.uniform(0.5, 1.5, 50)
    cells, m = _profile_showers(slopes, 0.0, rng)
    flat = cells.reshape(50, -1)
    y, occupied, slope, intercept, fitted = spread.profile_fit(flat, np.broadcast_to(m, flat.shape), np)
    assert fitted.all()
    np.testing.assert_allclose(slope[:, 0], slopes, rtol=1e-9)
    # the log normalised shape is exactly intercept + slope * m on the occupied cells
    np.testing.assert_allclose(np.where(occupied, intercept + slope * m, 0.0), y, atol=1e-9)


def test_the_transform_keeps_sums_and_empty_cells_and_scales_the_slopes_and_residuals():
    rng = np.random.default_rng(2)
    cells, m = _profile_showers(rng.normal(1.0, 0.2, 400), 0.3, rng)
    flat, centre = cells.reshape(400, -1), np.broadcast_to(m, (400, 81))
    same = spread.apply_layer(flat, centre, 1.0, 1.0, 1.0, np)
    np.testing.assert_allclose(same, flat, rtol=1e-9)

    out = spread.apply_layer(flat, centre, 0.5, 2.0, 1.0, np)
    np.testing.assert_allclose(out.sum(axis=1), flat.sum(axis=1), rtol=1e-9)
    assert ((out > 0) == (flat > 0)).all()
    y, occupied, slope, intercept, _ = spread.profile_fit(flat, centre, np)
    residual = y - intercept - slope * centre
    # the new log-shape is the slope's deviation from the mean halved, the residuals doubled, up to a constant
    want = (1.0 + 0.5 * (slope - 1.0)) * centre + 2.0 * residual
    got = np.log(np.where(occupied, out, 1.0))
    offset = np.where(occupied, got - want, np.nan)
    spread_of_offset = np.nanmax(offset, axis=1) - np.nanmin(offset, axis=1)
    assert spread_of_offset.max() < 1e-9


def test_a_layer_with_too_few_cells_is_left_as_it_is():
    flat = np.zeros((3, 81))
    flat[0, :2] = [5.0, 1.0]  # two cells: no fit
    flat[1, 40] = 3.0  # one cell
    out = spread.apply_layer(flat, np.zeros((3, 81)), 0.0, 3.0, 1.0, np)
    np.testing.assert_allclose(out, flat)


def _fitted(data_slope_spread, model_slope_spread, noise, seed, n=4000):
    """Data and model showers of one 9 x 9 layer whose slopes spread as given about 1 (the same residual noise),
    and the spread fitted to them with no cell calibration: (data, model, hat weights, fitted values)."""
    rng = np.random.default_rng(seed)
    data, _ = _profile_showers(rng.normal(1.0, data_slope_spread, n), noise, rng)
    model, _ = _profile_showers(rng.normal(1.0, model_slope_spread, n), noise, rng)
    weights = hat_weights(rng.uniform(0, 1, (n, 1)), 5, np)
    return data, model, weights, spread.fit_spread([data], [model], weights, GRID, (0, 1), lambda i, layer: layer)


def test_the_fit_finds_the_factor_that_undoes_too_broad_a_spread_of_slopes():
    """Data showers whose slopes spread 0.1 about 1, model showers (same energies) whose slopes spread 0.25: the
    fitted k_slope is near 0.1 / 0.25 = 0.4 and the widths' separation power from the data drops."""
    data, model, weights, fitted = _fitted(0.1, 0.25, 0.2, seed=3)
    k_slope, k_residual = fitted[spread.FACTORS_KEY][0]
    assert abs(k_slope - 0.4) <= 0.2 + 1e-9, fitted[spread.FACTORS_KEY]
    assert abs(k_residual - 1.0) <= 0.25 + 1e-9, fitted[spread.FACTORS_KEY]
    after = spread.apply_spread([model], fitted, weights, GRID, np)[0]
    layer = GRID.layers[0]
    reference = layer_shape_observables(data, layer)
    before_obs, after_obs = layer_shape_observables(model, layer), layer_shape_observables(after, layer)
    for name in ("width_x", "width_y"):
        before_sep = separation_power(reference[name], before_obs[name])
        after_sep = separation_power(reference[name], after_obs[name])
        assert after_sep < 0.5 * before_sep, (name, before_sep, after_sep)


def test_a_model_that_matches_the_data_keeps_factors_near_one():
    k_slope, k_residual = _fitted(0.15, 0.15, 0.3, seed=4)[3][spread.FACTORS_KEY][0]
    assert 0.8 - 1e-9 <= k_slope <= 1.3 + 1e-9 and 0.75 - 1e-9 <= k_residual <= 1.5 + 1e-9, (k_slope, k_residual)


def test_fit_model_stores_it_and_sampling_applies_it_right_after_the_decoder():
    from test_export_onnx import factorised_model

    model = factorised_model("vae-small")
    fit_model(model, tiny_showers(600, seed=5))
    for key in spread.KEYS:
        assert key in model.fitted
    assert model.fitted[spread.CENTRE_KEY].shape == (5, TINY_GEOMETRY.n_cells)
    assert model.fitted[spread.FACTORS_KEY].shape == (TINY_GEOMETRY.n_layers, 2)
    model.fitted[spread.FACTORS_KEY] = np.array([[0.5, 1.5], [1.3, 0.75], [0.0, 2.0]])
    energy = np.geomspace(1.0, 100.0, 200)
    raw = model.generate(np.random.default_rng(1).standard_normal((200, model.latent_dim)), energy)
    got = model.apply_profile_spread(raw, energy)
    want = spread.apply_spread([np.asarray(x, np.float64) for x in raw], model.fitted,
                               hat_weights(model.condition(energy), 5, np), TINY_GEOMETRY, np)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6 * float(np.abs(w).max()))
    assert any(not np.allclose(g, r) for g, r in zip(got, raw))  # the factors changed the showers


def test_onnx_runtime_agrees_with_a_non_trivial_spread():
    pytest.importorskip("onnxruntime")
    from test_export_onnx import factorised_model

    from calosim.export.check import check_agreement
    from calosim.export.onnx_model import onnx_graph

    model = factorised_model("vae-small")
    fit_model(model, tiny_showers(600, seed=7))
    model.fitted[spread.FACTORS_KEY] = np.array([[0.5, 1.5], [1.3, 0.75], [0.0, 2.0]])
    model.set_sampling_mirror_axes(model.geometry.mirror_axes())
    model.freeze()
    rows = check_agreement(model, onnx_graph(model).SerializeToString(), batch_sizes=(1, 300), seed=2)
    for r in rows:
        assert r.passed, r
