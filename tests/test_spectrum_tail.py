"""The low-tail map of the cell spectrum (calosim.models.spectrum_tail): the model's smallest non-zero cells take
the training showers' distribution of the low tail; everything above the map's end stays as it was."""

from __future__ import annotations

import numpy as np
from family_helpers import TINY_GEOMETRY, tiny_showers

from calosim.models import spectrum_tail
from calosim.models.calibration import fit_model


def _cells(rng, n, floor):
    """Log-normal cell energies (MeV) about 1 MeV, those below ``floor`` pushed up to just above it."""
    x = rng.lognormal(0.0, 2.0, n)
    return np.where(x < floor, floor * rng.uniform(1.0, 1.5, n), x)


def test_the_map_gives_the_models_low_tail_the_datas_and_leaves_the_rest():
    rng = np.random.default_rng(1)
    data, model = _cells(rng, 200_000, 1e-4), _cells(rng, 200_000, 0.05)  # the model has a floor at 0.05 MeV
    m, t = spectrum_tail.knots(data, model)
    x = np.log(model)
    mapped = spectrum_tail.mapped_log(x, m, t, np)
    above = x >= m[-1]
    np.testing.assert_allclose(mapped[above], x[above], rtol=0, atol=1e-12)  # above the map's end: unchanged
    order = np.argsort(x)
    assert (np.diff(mapped[order]) >= -1e-12).all()  # monotone
    levels = spectrum_tail.TAIL * np.array([0.01, 0.1, 0.3, 0.6])
    before = np.abs(np.quantile(x, levels) - np.quantile(np.log(data), levels))
    after = np.abs(np.quantile(mapped, levels) - np.quantile(np.log(data), levels))
    # within the knots the tail follows the data's; at the lowest level, where slopes clip, it comes nearer
    assert (after[1:] < 0.1).all() and after[0] < 0.5 * before[0] and (before > 1.0).any(), (before, after)


def test_apply_keeps_layer_sums_and_empty_cells_and_too_few_cells_give_the_identity():
    showers = tiny_showers(300, seed=2)
    layers = [x.astype(np.float64) for x in showers.layers]
    # data whose lowest 5% of cells reach 100x lower: a longer tail (a tail merely shifted maps to itself)
    data = [np.where((x > 0) & (x < np.quantile(x[x > 0], 0.05)), 0.01 * x, x) for x in layers]
    table = spectrum_tail.fit_tail(data, layers)
    out = spectrum_tail.apply_tail(layers, table, TINY_GEOMETRY, np)
    for x, y in zip(layers, out):
        np.testing.assert_allclose(y.reshape(300, -1).sum(1), x.reshape(300, -1).sum(1), rtol=1e-9)
        assert ((y > 0) == (x > 0)).all()
    assert any(not np.allclose(x, y) for x, y in zip(layers, out))
    few = spectrum_tail.knots(np.ones(10), np.ones(10))
    np.testing.assert_array_equal(few[0], few[1])
    x = np.log(np.geomspace(1e-5, 1e3, 50))
    np.testing.assert_allclose(spectrum_tail.mapped_log(x, few[0], few[1], np), x, atol=1e-12)


def test_fit_model_fits_it_and_sampling_applies_it_after_the_energy_model_and_before_the_cell_factors():
    from test_export_onnx import factorised_model

    from calosim.models.calibration import FITTED_KEY, apply_factors

    model = factorised_model("vae-small")
    fit_model(model, tiny_showers(600, seed=5))
    assert model.fitted[spectrum_tail.KEY].shape == (TINY_GEOMETRY.n_layers, 2, len(spectrum_tail.LEVELS))
    energy = np.geomspace(1.0, 100.0, 200)
    decoded = model.generate(np.random.default_rng(1).standard_normal((200, model.latent_dim)), energy)
    model.generate = lambda *args, **kwargs: [x.copy() for x in decoded]  # sample's own draws then follow
    rng = np.random.default_rng(3)
    model.sample_latent(rng, 200)
    layers = model.apply_energy_model(model.apply_profile_spread(decoded, energy), energy, rng)
    want = spectrum_tail.apply_tail(layers, model.fitted[spectrum_tail.KEY], TINY_GEOMETRY, np)
    want = apply_factors(want, model.fitted[FITTED_KEY], model.condition(energy), TINY_GEOMETRY, np)
    want = model.apply_mirror(want, rng)
    got = model.sample(energy, np.random.default_rng(3))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-9 * float(np.abs(w).max()))


def test_the_interpolation_and_the_ramps_of_the_onnx_graph_agree():
    """numpy's one-pass interpolation against the sum of ramps the ONNX graph builds (array modules without interp)."""
    class Ramps:  # numpy without interp: the graph's formula
        minimum, maximum, where = staticmethod(np.minimum), staticmethod(np.maximum), staticmethod(np.where)

    rng = np.random.default_rng(5)
    m, t = spectrum_tail.knots(_cells(rng, 50_000, 1e-4), _cells(rng, 50_000, 0.05))
    x = np.log(np.geomspace(1e-6, 1e4, 2001))
    np.testing.assert_allclose(spectrum_tail.mapped_log(x, m, t, np), spectrum_tail.mapped_log(x, m, t, Ramps),
                               rtol=0, atol=1e-9)
