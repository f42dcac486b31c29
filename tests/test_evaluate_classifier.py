"""The classifier test on Geant4 showers: AUC near 0.5 for two halves of one file, near 1 for gamma vs pi+."""

from __future__ import annotations

import numpy as np
import pytest

from calosim.data.formats import read_showers
from calosim.evaluate.classifier import (
    ClassifierConfig,
    classifier_test,
    high_level_features,
    low_level_features,
    split_indices,
)
from calosim.evaluate.observables import default_observables

SMALL = ClassifierConfig(hidden=(64, 64), epochs=8, batch_size=128, lr=1e-3, patience=None)


def low_level(path, start, stop):
    s = read_showers(path, start, stop)
    return low_level_features(s.layers, s.energy), s.energy


def test_features_and_split_shapes():
    layers = [np.ones((4, 3, 96)), np.ones((4, 12, 12)), np.ones((4, 12, 6))]
    x = low_level_features(layers, np.array([1.0, 10.0, 100.0, 50.0]))
    assert x.shape == (4, 1 + 504) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0], [0, 1, 2, np.log10(50)], rtol=1e-6)
    np.testing.assert_allclose(x[1, 1:], 1.0 / 10000.0, rtol=1e-6)  # 1 MeV / 10 GeV
    y = np.repeat([0, 1], 50)
    parts = split_indices(y, (0.6, 0.2, 0.2), np.random.default_rng(0))
    assert [len(p) for p in parts] == [60, 20, 20]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(100))
    assert all(y[p].sum() * 2 == len(p) for p in parts)  # stratified


def test_two_halves_of_one_geant4_file_are_indistinguishable(shared_data):
    path = shared_data / "geant4" / "eplus_train.h5"
    x_a, e_a = low_level(path, 0, 1500)
    x_b, e_b = low_level(path, 1500, 3000)
    res = classifier_test(x_a, x_b, backend="numpy", config=SMALL, seed=0, energy_ref=e_a, energy_gen=e_b,
                          energy_ranges=[(1.0, 50.0), (50.0, 100.0)])
    assert res["n_val"] == 600 and res["n_train"] == 1800
    assert abs(res["auc"] - 0.5) < 0.08, res["auc"]
    assert abs(res["auc_calibrated"] - 0.5) < 0.08
    assert [r["label"] for r in res["per_energy_range"]] == ["1-50 GeV", "50-100 GeV"]
    assert 1 <= res["best_epoch"] <= SMALL.epochs


@pytest.mark.parametrize("features", ["low", "high"])
def test_gamma_against_piplus_is_separable(shared_data, backend_name, features):
    if backend_name == "numba" and features == "high":
        pytest.skip("one numba run is enough")
    g = read_showers(shared_data / "geant4" / "gamma_train.h5", 0, 800)
    p = read_showers(shared_data / "geant4" / "piplus_train.h5", 0, 800)
    if features == "low":
        x_g, x_p = low_level_features(g.layers, g.energy), low_level_features(p.layers, p.energy)
    else:
        x_g = high_level_features(default_observables(g), g.energy)
        x_p = high_level_features(default_observables(p), p.energy)
    res = classifier_test(x_g, x_p, backend=backend_name, config=SMALL, seed=1, standardise=features == "high")
    assert res["auc"] > 0.95, res["auc"]
    assert res["accuracy"] > 0.85
