"""The energy map (calosim.models.energy_map): the shape model's own layer energies take the training showers'
distributions at each incident energy and keep their order among showers, so that each layer's energy stays
with the shape it was made with."""

from __future__ import annotations

import numpy as np
from family_helpers import TINY_GEOMETRY, tiny_showers

from calosim.models import energy_map
from calosim.models.calibration import fit_model, hat_weights


def _sums(rng, n, energy_mev, response_width, share_width):
    """Layer sums (n, 3) MeV: a response about 0.95 of log-width ``response_width``, layer shares of log-odds
    width ``share_width`` that grow with the energy."""
    c = np.log(energy_mev / energy_mev.min()) / np.log(energy_mev.max() / energy_mev.min())
    total = 0.95 * energy_mev * np.exp(response_width * rng.standard_normal(n))
    first = 1.0 / (1.0 + np.exp(-(c - 0.5 + share_width * rng.standard_normal(n))))
    second = 1.0 / (1.0 + np.exp(-(1.0 + share_width * rng.standard_normal(n))))
    return np.stack([total * first, total * (1 - first) * second, total * (1 - first) * (1 - second)], axis=1)


def test_the_variables_give_back_the_layer_energies_and_an_empty_layer_sits_at_the_floor():
    rng = np.random.default_rng(0)
    energy_mev = rng.uniform(1e3, 1e5, (500, 1))
    sums = _sums(rng, 500, energy_mev[:, 0], 0.05, 1.0)
    sums[:50, 0] = 0.0  # empty first layers
    v = energy_map.variables(energy_map.columns(sums), energy_mev, np)
    back = np.concatenate(energy_map.layer_energies(v, energy_mev, np), axis=1)
    np.testing.assert_allclose(back, sums, rtol=1e-9, atol=1e-5)
    assert (v[1][:50] < np.log(energy_map.FLOOR) - np.log(sums[:50, 1:].sum(1, keepdims=True)) + 1e-9).all()
    # a layer taking nearly all: the small ones are not lost to cancellation
    tiny = np.array([[1e5, 1e-3, 1e-4]])
    incident = np.array([[1.1e5]])
    v = energy_map.variables(energy_map.columns(tiny), incident, np)
    back = np.concatenate(energy_map.layer_energies(v, incident, np), axis=1)
    np.testing.assert_allclose(back, tiny, rtol=1e-6)


def test_weighted_quantiles_are_strictly_increasing_and_follow_the_weights():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(0, 1, 20_000), np.zeros(5000)])  # a point mass
    weights = np.stack([np.ones(25_000), np.r_[np.ones(20_000), np.zeros(5000)]], axis=1)
    q = energy_map.weighted_quantiles(values, weights)
    assert (np.diff(q, axis=1) > 0).all()
    inner = slice(5, -5)
    np.testing.assert_allclose(q[1, inner], np.quantile(values[:20_000], energy_map.LEVELS[inner]), atol=0.01)
    assert abs(q[0, 12] - np.quantile(values, energy_map.LEVELS[12])) < 0.01


def test_the_map_gives_the_data_distribution_at_each_energy_and_keeps_the_order():
    rng = np.random.default_rng(2)
    n = 40_000
    energy_gev = np.exp(rng.uniform(0, np.log(100), n))
    condition = np.log(energy_gev)[:, None] / np.log(100)
    weights = hat_weights(condition, energy_map.CENTRES, np)
    data = _sums(rng, n, 1000 * energy_gev, 0.004, 0.3)
    model = _sums(rng, n, 1000 * energy_gev, 0.05, 1.0)  # ten times too broad a response, too broad shares
    fitted = energy_map.fit_map(data, model, energy_gev, weights)
    assert fitted[energy_map.KEY].shape == (3, 2, energy_map.CENTRES, len(energy_map.LEVELS))
    energy_mev = 1000 * energy_gev[:, None]
    out = np.concatenate(energy_map.mapped_energies(energy_map.columns(model), fitted, weights, energy_mev, np,
                                                    lambda w, m: w @ m), axis=1)
    response = out.sum(1) / energy_mev[:, 0]
    want = data.sum(1) / energy_mev[:, 0]
    for lo, hi in [(1, 3), (10, 20), (50, 100)]:
        sel = (energy_gev > lo) & (energy_gev < hi)
        for got, ref in [(response, want), (out[:, 0] / out.sum(1), data[:, 0] / data.sum(1))]:
            levels = [0.05, 0.16, 0.5, 0.84, 0.95]
            spread = np.quantile(ref[sel], 0.84) - np.quantile(ref[sel], 0.16)
            np.testing.assert_allclose(np.quantile(got[sel], levels), np.quantile(ref[sel], levels),
                                       atol=0.1 * spread)
    # each variable keeps the model's order among showers of one energy
    sel = (energy_gev > 10) & (energy_gev < 10.5)
    for before, after in [(model[sel].sum(1) / energy_gev[sel], response[sel]),
                          (model[sel, 0] / model[sel].sum(1), out[sel, 0] / out[sel].sum(1))]:
        assert np.corrcoef(np.argsort(np.argsort(before)), np.argsort(np.argsort(after)))[0, 1] > 0.999


def _fitted_model(seed=5):
    from test_export_onnx import factorised_model

    model = factorised_model("vae-small")
    fit_model(model, tiny_showers(600, seed=seed))
    energy = np.geomspace(1.0, 100.0, 200)
    z = np.random.default_rng(1).standard_normal((200, model.latent_dim))
    layers = model.apply_profile_spread(model.generate(z, energy), energy)
    sums = [x.reshape(200, -1).sum(1, keepdims=True).astype(np.float64) for x in layers]
    return model, energy, layers, sums


class NoDraws:
    def __getattr__(self, name):
        raise AssertionError(f"the energy map drew ({name})")


def test_with_an_energy_model_the_response_is_mapped_and_the_shares_are_its_quantiles_at_the_models_ranks():
    from calosim.losses import normal_cdf

    model, energy, layers, sums = _fitted_model()
    assert model.fitted[energy_map.KEY].shape == (TINY_GEOMETRY.n_layers, 2, energy_map.CENTRES,
                                                  len(energy_map.LEVELS))
    assert not model.draws_layer_energies
    out = model.apply_energy_model(layers, energy, NoDraws())
    weights = hat_weights(model.condition(energy), energy_map.CENTRES, np)
    energy_mev = 1000 * energy[:, None]
    response, scores = energy_map.ranked_inputs(sums, model.fitted, weights, energy_mev, np, lambda w, m: w @ m)
    filled = np.all(np.concatenate(sums, axis=1) > 0, axis=1)  # (an empty layer's energy goes to the others)
    assert filled.sum() > 100
    em = model.energy_model
    total = sum(x.reshape(200, -1).sum(1) for x in out)
    np.testing.assert_allclose(total[filled], response[filled, 0] * energy_mev[filled, 0], rtol=1e-4)
    # each share's variable sits at its uniform of the energy model's conditional given the variables before it
    # (where no share was snapped to an empty layer)
    out_sums = np.stack([x.reshape(200, -1).sum(1) for x in out], axis=1)
    filled &= np.all(out_sums > 0, axis=1)
    t = em.targets(out_sums[filled], energy[filled])
    # the shares were read given the response held to the training range and 1e-3 of the cap below it
    cap = em.config.response_cap
    r_low, r_high = (cap / (1 + np.exp(-(b * em.t_std[0] + em.t_mean[0]))) for b in (em.t_low[0], em.t_high[0]))
    r = np.clip(response[filled, 0], r_low, min(r_high, cap * (1 - 1e-3)))
    t[:, 0] = (np.log(r / (cap - r)) - em.t_mean[0]) / em.t_std[0]
    c = model.condition(energy[filled])
    for layer in range(1, em.n_layers):
        mix = np.asarray(em.nets[layer].forward(np.concatenate([c, t[:, :layer]], axis=1).astype(np.float32), False),
                         np.float64)
        k = mix.shape[1] // 3
        pi = np.exp(mix[:, :k] - mix[:, :k].max(1, keepdims=True))
        cdf = (pi / pi.sum(1, keepdims=True) * normal_cdf((t[:, [layer]] - mix[:, k:2 * k]) / np.exp(
            np.clip(mix[:, 2 * k:], -7, 3)), np)).sum(1)
        inside = (t[:, layer] > em.t_low[layer] + 1e-3) & (t[:, layer] < em.t_high[layer] - 1e-3)
        assert inside.sum() > 30
        np.testing.assert_allclose(cdf[inside], normal_cdf(scores[layer - 1][filled][inside, 0], np), atol=2e-3)
    model.fitted.pop(energy_map.KEY)
    assert model.draws_layer_energies


def test_without_an_energy_model_every_variable_is_mapped_and_mixed():
    model, energy, layers, sums = _fitted_model()
    model.energy_model = None
    out = model.apply_energy_model(layers, energy, NoDraws())
    weights = hat_weights(model.condition(energy), energy_map.CENTRES, np)
    want = energy_map.mapped_energies(sums, model.fitted, weights, 1000 * energy[:, None], np, lambda w, m: w @ m)
    filled = np.all(np.concatenate(sums, axis=1) > 0, axis=1)
    for x, e in zip(out, want):
        np.testing.assert_allclose(x.reshape(200, -1).sum(1)[filled], e[filled, 0], rtol=1e-4)


def test_the_normal_cdf_and_the_mixture_quantile():
    import math

    from calosim.losses import gaussian_mixture_quantile, normal_cdf, sample_gaussian_mixture

    x = np.linspace(-8, 8, 4001)
    want = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    assert np.abs(normal_cdf(x, np) - want).max() < 1.5e-7
    rng = np.random.default_rng(4)
    scores = np.linspace(-5.0, 5.0, 101)[:, None]
    for _ in range(3):
        out = np.repeat(rng.normal(size=(1, 9)), 101, axis=0)
        q = gaussian_mixture_quantile(out, scores, -300.0, 300.0, np)
        k = 3
        pi = np.exp(out[:, :k]) / np.exp(out[:, :k]).sum(1, keepdims=True)
        z = (q - out[:, k:2 * k]) / np.exp(out[:, 2 * k:])
        lower = (pi * normal_cdf(z, np)).sum(1, keepdims=True)
        upper = (pi * normal_cdf(-z, np)).sum(1, keepdims=True)
        # both tails to their own relative precision: the CDF below the median, the survival above it
        below = scores[:, 0] < 0
        np.testing.assert_allclose(lower[below], normal_cdf(scores[below], np), rtol=1e-6)
        np.testing.assert_allclose(upper[~below], normal_cdf(-scores[~below], np), rtol=1e-6)
        draws = sample_gaussian_mixture(np.repeat(out[:1], 200_000, axis=0), rng.random(200_000),
                                        rng.standard_normal(200_000), np)
        inner = np.abs(scores[:, 0]) <= 2.0
        np.testing.assert_allclose(np.quantile(draws, normal_cdf(scores[inner, 0], np)), q[inner, 0],
                                   atol=0.03 * draws.std())
    assert float(gaussian_mixture_quantile(out[:1], np.array([[0.0]]), -30.0, -29.0, np)[0, 0]) > -29.0 - 1e-9


def test_the_mapped_model_exports_to_onnx_and_agrees_with_its_sampling():
    from test_export_onnx import factorised_model

    from calosim.export.check import check_agreement
    from calosim.export.onnx_model import onnx_graph

    model = factorised_model("vae-small")
    fit_model(model, tiny_showers(600, seed=6))
    model.freeze()
    graph = onnx_graph(model)
    assert not {"energy_uniform", "energy_normal"} & {item.name for item in graph.graph.input}  # no draws
    rows = check_agreement(model, graph.SerializeToString(), batch_sizes=(1, 300), seed=2)
    assert all(row.passed for row in rows), rows


def test_the_mixing_gives_the_variables_the_datas_correlations():
    """Data whose response goes with the first layer's share (a pion that showers early deposits more), a model
    whose variables are independent: mapped, the model's showers take the data's rank correlation."""
    rng = np.random.default_rng(3)
    n = 30_000
    energy_gev = np.exp(rng.uniform(0, np.log(100), n))
    weights = hat_weights(np.log(energy_gev)[:, None] / np.log(100), energy_map.CENTRES, np)
    energy_mev = 1000 * energy_gev[:, None]
    common = rng.standard_normal(n)
    data = _sums(rng, n, energy_mev[:, 0], 0.0, 0.3)
    data *= np.exp(0.1 * common)[:, None]  # response up ...
    data[:, 0] *= np.exp(0.5 * common)  # ... with the first layer's share
    model = _sums(rng, n, energy_mev[:, 0], 0.1, 1.0)
    fitted = energy_map.fit_map(data, model, energy_gev, weights)
    out = np.concatenate(energy_map.mapped_energies(energy_map.columns(model), fitted, weights, energy_mev, np,
                                                    lambda w, m: w @ m), axis=1)

    def rank_correlation(sums):
        v = [x[:, 0] for x in energy_map.variables(energy_map.columns(sums), energy_mev, np)]
        ranks = [np.argsort(np.argsort(x)) for x in v[:2]]
        return np.corrcoef(ranks)[0, 1]

    mixing = fitted[energy_map.MIXING_KEY]  # lower triangular: the response's score is left as it is
    np.testing.assert_allclose(mixing[:, 0], np.tile([1.0, 0.0, 0.0], (len(mixing), 1)), atol=1e-9)
    want, before, after = rank_correlation(data), rank_correlation(model), rank_correlation(out)
    assert want > 0.4 and abs(before) < 0.05 and abs(after - want) < 0.05, (want, before, after)
    response = out.sum(1) / energy_mev[:, 0]
    ref = data.sum(1) / energy_mev[:, 0]
    levels = [0.05, 0.16, 0.5, 0.84, 0.95]
    np.testing.assert_allclose(np.quantile(response, levels), np.quantile(ref, levels), rtol=0.02)
