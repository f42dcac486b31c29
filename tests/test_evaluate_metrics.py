"""Separation power, KS distance, rank AUC and isotonic calibration on samples with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from calosim.evaluate.classifier import isotonic_fit, isotonic_predict, roc_auc
from calosim.evaluate.metrics import (
    compare_observables,
    default_energy_ranges,
    histogram_separation,
    ks_distance,
    quantile_edges,
    separation_power,
)


@pytest.mark.parametrize("bins", ["quantile", "uniform"])
def test_separation_power_identical_is_zero_and_disjoint_is_one(bins):
    x = np.random.default_rng(1).normal(size=2000)
    assert separation_power(x, x.copy(), bins) == pytest.approx(0.0, abs=1e-12)
    assert separation_power(x, x + 100.0, bins) == pytest.approx(1.0, abs=1e-12)


def test_histogram_separation_by_hand():
    # p = (1/2, 1/2), q = (1, 0): S = 1/2 ((1/4) / (3/2) + (1/4) / (1/2)) = 1/3
    assert histogram_separation([5, 5], [3, 0]) == pytest.approx(1 / 3)
    assert histogram_separation([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)


def test_quantile_edges_give_equal_population_and_keep_atoms_apart():
    x = np.arange(1000.0)
    counts = np.histogram(x, quantile_edges(x[:500], x[500:], 10))[0]
    assert counts.tolist() == [100] * 10
    a = np.array([1.0] * 900 + [2.0] * 100)  # a discrete observable (max_depth): the two atoms stay apart
    b = np.array([1.0] * 100 + [2.0] * 900)
    assert separation_power(a, b) == pytest.approx(0.5 * 2 * 0.8**2 / 1.0)


def test_fixed_edges_fold_outliers_into_the_edge_bins():
    ref = np.linspace(0, 1, 1000)
    edges = np.linspace(0, 1, 11)
    # generated values outside the given edges are not dropped: they fill the last bin
    assert separation_power(ref, np.full(1000, 50.0), edges) == pytest.approx(0.5 * (0.9 + 0.9**2 / 1.1))


def test_ks_distance():
    assert ks_distance([1, 2, 3], [2.5]) == pytest.approx(2 / 3)
    x = np.random.default_rng(2).normal(size=500)
    assert ks_distance(x, x) == 0.0
    assert ks_distance(x, x + 100) == 1.0
    # large samples from the same distribution: about 1.36 sqrt(2 / n) at 95%
    rng = np.random.default_rng(3)
    assert ks_distance(rng.normal(size=20000), rng.normal(size=20000)) < 0.02


def test_roc_auc_known_scores():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([0, 0, 1, 1], [1, 2, 3, 4]) == 1.0
    assert roc_auc([1, 1, 0, 0], [1, 2, 3, 4]) == 0.0
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 20000)
    assert roc_auc(y, rng.random(20000)) == pytest.approx(0.5, abs=0.02)
    # brute-force pair count with ties
    s = rng.integers(0, 5, 300).astype(float)
    y = rng.integers(0, 2, 300)
    pos, neg = s[y == 1], s[y == 0]
    brute = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (pos.size * neg.size)
    assert roc_auc(y, s) == pytest.approx(brute)


def test_isotonic_pool_adjacent_violators():
    model = isotonic_fit([1, 2, 3, 4], [1, 0, 1, 1])
    np.testing.assert_allclose(isotonic_predict(model, [1, 2, 2.5, 3, 4, 10, -5]), [0.5, 0.5, 0.5, 1, 1, 1, 0.5])
    rng = np.random.default_rng(5)
    s = rng.random(500)
    y = (rng.random(500) < s).astype(float)
    fitted = isotonic_predict(isotonic_fit(s, y), np.sort(s))
    assert np.all(np.diff(fitted) >= -1e-12)
    # least squares: the fitted mean equals the label mean
    assert isotonic_predict(isotonic_fit(s, y), s).mean() == pytest.approx(y.mean())


def test_energy_ranges_and_per_range_results():
    e_cont = np.linspace(1, 100, 1000)
    assert default_energy_ranges(e_cont) == [(1.0, 10.0), (10.0, 25.0), (25.0, 50.0), (50.0, 75.0), (75.0, 100.0)]
    e_disc = np.repeat([1.0, 2.0, 4.0], 10)
    assert default_energy_ranges(e_disc) == [(1.0, 1.0), (2.0, 2.0), (4.0, 4.0)]
    rng = np.random.default_rng(6)
    obs = {"a": rng.normal(size=1000)}
    res = compare_observables(obs, {"a": obs["a"] + 0.0}, e_cont, e_cont)
    assert [r["label"] for r in res["energy_ranges"]] == ["1-10 GeV", "10-25 GeV", "25-50 GeV", "50-75 GeV",
                                                         "75-100 GeV"]
    assert sum(r["observables"]["a"]["n_ref"] for r in res["energy_ranges"]) == 1000
    assert res["inclusive"]["a"]["sep_power"] == 0.0 and res["mean_sep_power"] == 0.0
