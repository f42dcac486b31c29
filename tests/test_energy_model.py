"""The layer-energy model of the energy factorisation (calosim.models.energy): the mixture likelihood's
gradient against float64 central differences, the whole model's gradient, its sampling, and that it learns a
known conditional distribution."""

from __future__ import annotations

import numpy as np
import pytest
from family_helpers import check_parameters

from calosim.backends import get_backend
from calosim.gradcheck import check_function
from calosim.losses import gaussian_mixture_nll, sample_gaussian_mixture
from calosim.models.energy import LayerEnergyConfig, LayerEnergyModel, LayerEnergyTrainer, rescale_layers
from calosim.selftest import GRADIENT_TOLERANCE


def test_mixture_nll_gradient():
    rng = np.random.default_rng(0)
    t = rng.standard_normal(4)

    def fn(x):
        return gaussian_mixture_nll(x.reshape(4, 6), t, np)[0], gaussian_mixture_nll(x.reshape(4, 6), t, np)[1].ravel()

    result = check_function(fn, rng.standard_normal(24) * 0.5, rng, name="gaussian_mixture_nll")
    assert result.passed(GRADIENT_TOLERANCE), result.describe()


def test_mixture_nll_value_against_a_direct_sum():
    rng = np.random.default_rng(1)
    out, t = rng.standard_normal((5, 9)), rng.standard_normal(5)
    a, mu, s = out[:, :3], out[:, 3:6], out[:, 6:]
    pi = np.exp(a) / np.exp(a).sum(1, keepdims=True)
    density = (pi * np.exp(-0.5 * ((t[:, None] - mu) / np.exp(s)) ** 2) / (np.exp(s) * np.sqrt(2 * np.pi))).sum(1)
    assert gaussian_mixture_nll(out, t, np)[0] == pytest.approx(-np.log(density).mean(), rel=1e-12)


def test_mixture_sampling_follows_the_mixture():
    rng = np.random.default_rng(2)
    n = 200_000
    out = np.tile(np.array([np.log(0.25), np.log(0.75), -2.0, 3.0, np.log(0.5), np.log(0.1)]), (n, 1))
    draws = sample_gaussian_mixture(out, rng.random(n), rng.standard_normal(n), np)
    assert np.mean(draws < 0.5) == pytest.approx(0.25, abs=0.005)
    assert draws[draws < 0.5].std() == pytest.approx(0.5, rel=0.02)
    assert draws[draws > 0.5].mean() == pytest.approx(3.0, abs=0.01)


def _model(dtype="float64", backend="numpy", **overrides):
    cfg = LayerEnergyConfig(**{"hidden": 6, "components": 3, **overrides})
    return LayerEnergyModel.build(cfg, 3, get_backend(backend, dtype), np.random.default_rng(0), (1.0, 100.0))


def test_model_gradient_through_every_layer_network():
    model = _model()
    rng = np.random.default_rng(3)
    energy = rng.uniform(2, 90, 7)
    t = model.targets(rng.uniform(0, 1, (7, 3)) * energy[:, None] * 1000.0 * [0.3, 0.6, 0.01], energy)

    def loss_and_grads():
        loss = sum(model.loss_and_backward(t, energy))
        return loss, {p: p.grad.copy() for p in model.parameters()}

    result = check_parameters(loss_and_grads, model.parameters(), rng, name="layer energy model")
    assert result.passed(1e-6), result.describe()


def test_model_learns_a_known_conditional_distribution():
    """Layer fractions whose mean falls with E, two of them anticorrelated, the last empty in a fifth of the
    showers: the trained model reproduces the mean fractions per energy half, the empty share and the width of
    the response's core (the sum of correlated layers: only right if the model has the correlation)."""
    rng = np.random.default_rng(4)
    model = _model("float32", "numba", hidden=32, components=6, lr=3e-3)
    trainer = LayerEnergyTrainer(model)

    def showers(n):
        e = rng.uniform(1, 100, n)
        f0 = 0.3 - 0.1 * np.log10(e) / 2 + rng.normal(0, 0.02, n)
        f1 = 0.95 - f0 + rng.normal(0, 0.01, n)
        f2 = rng.lognormal(np.log(0.003), 0.3, n) * (rng.random(n) > 0.2)
        return np.stack([f0, f1, f2], 1) * e[:, None] * 1000.0, e

    model.fit_scales(*showers(20_000))
    for _ in range(1000):
        trainer.train_step(*showers(512))
    sums, e = showers(20_000)
    gen = model.sample(e, np.random.default_rng(5))
    for half in (e < 50, e >= 50):
        np.testing.assert_allclose((gen[half] / (1000 * e[half, None])).mean(0),
                                   (sums[half] / (1000 * e[half, None])).mean(0), rtol=0.05, atol=3e-4)
    assert np.mean(gen[:, 2] == 0) == pytest.approx(0.2, abs=0.03)
    response_gen, response_ref = gen.sum(1) / (1000 * e), sums.sum(1) / (1000 * e)

    def core_width(x):  # half the 16-84% interval
        return 0.5 * (np.percentile(x, 84) - np.percentile(x, 16))

    assert core_width(response_gen) == pytest.approx(core_width(response_ref), rel=0.15)
    assert response_gen.max() <= 3.0  # no layer above the incident energy


def test_rescale_layers_sets_each_layer_sum():
    rng = np.random.default_rng(6)
    layers = [rng.random((4, 2, 3)), rng.random((4, 3, 3))]
    layers[1][2] = 0.0  # a layer the shape model left empty stays empty; its energy goes to the others
    layers[0][3] = layers[1][3] = 0.0  # a shower left entirely empty stays empty
    target = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    scaled = rescale_layers(layers, target, np)
    np.testing.assert_allclose(scaled[0].reshape(4, -1).sum(1), [1.0, 3.0, 11.0, 0.0])
    np.testing.assert_allclose(scaled[1].reshape(4, -1).sum(1), [2.0, 4.0, 0.0, 0.0])


def test_rescale_layers_of_a_nearly_empty_shower_stays_finite_without_warnings():
    """float32: a shower whose only occupied layer the energy model gives 1e-3 MeV of 1e4 MeV takes all 1e4
    MeV there; the empty layers' discarded scales (1e4 * 1e7 / 1e-30 before) no longer overflow (warnings are
    errors in the tests)."""
    layers = [np.zeros((1, 2, 2), np.float32), np.full((1, 2, 2), 0.25, np.float32)]
    scaled = rescale_layers(layers, np.array([[1e4, 1e-3]]), np)
    assert scaled[0].sum() == 0.0 and scaled[1].sum() == pytest.approx(1e4 + 1e-3, rel=1e-6)


def test_sampled_variables_stay_in_the_training_range():
    """A mixture wider than the data (every component at its largest width) draws far outside the training
    showers' responses; the clip to the fitted range keeps every sampled shower's response within them."""
    be = get_backend("numpy")
    rng = np.random.default_rng(3)
    n = 2000
    energy = rng.uniform(1.0, 100.0, n)
    response = rng.uniform(0.95, 0.99, n)
    fractions = rng.dirichlet([2.0, 20.0, 4.0], n)
    sums = 1000.0 * (energy * response)[:, None] * fractions
    model = LayerEnergyModel.build(LayerEnergyConfig(hidden=8, components=3), 3, be, rng, (1.0, 100.0))
    model.fit_scales(sums, energy)
    for net in model.nets:  # log widths at the clip's top: a wide mixture whatever the input
        last = net.layers[-1]
        last.params["bias"].value[2 * 3:] = 10.0
    sampled = model.sample(energy, np.random.default_rng(4))
    r = sampled.sum(axis=1) / (1000.0 * energy)
    assert r.min() >= response.min() - 1e-9 and r.max() <= response.max() + 1e-9
    model.t_low = model.t_high = None  # without the clip the same draws leave the range
    unclipped = model.sample(energy, np.random.default_rng(4)).sum(axis=1) / (1000.0 * energy)
    assert unclipped.min() < response.min() - 0.01 or unclipped.max() > response.max() + 0.01
