"""Observables against values worked out by hand on small hand-made showers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calosim.data.showers import Showers
from calosim.evaluate.observables import (
    CALOGAN_OBSERVABLES,
    calogan_observables,
    default_observables,
    shower_observables,
)
from calosim.geometry import Geometry, LayerGeometry, calogan_geometry

EPS = 1e-6  # the CaloGAN definitions' epsilon (MeV) in every denominator


def width_with_eps(energies, positions):
    """sigma = sqrt(sum E x^2 / (E + eps) - (sum E x / (E + eps))^2), as section 7 defines it."""
    e = sum(energies)
    x = sum(a * b for a, b in zip(energies, positions)) / (e + EPS)
    x2 = sum(a * b * b for a, b in zip(energies, positions)) / (e + EPS)
    return math.sqrt(x2 - x * x)


def hand_made():
    """Shower 0: layer_0 10 MeV (row 0, col 5) + 30 MeV (row 2, col 7); layer_1 50 (3, 3), 20 (4, 4), 5 (0, 0);
    layer_2 empty. Shower 1: one cell of 8 MeV in layer_2 (row 11, col 0), nothing else."""
    l0 = np.zeros((2, 3, 96), np.float32)
    l1 = np.zeros((2, 12, 12), np.float32)
    l2 = np.zeros((2, 12, 6), np.float32)
    l0[0, 0, 5], l0[0, 2, 7] = 10, 30
    l1[0, 3, 3], l1[0, 4, 4], l1[0, 0, 0] = 50, 20, 5
    l2[1, 11, 0] = 8
    return [l0, l1, l2]


def test_calogan_observables_by_hand():
    obs = calogan_observables(hand_made())
    assert tuple(obs) == CALOGAN_OBSERVABLES and len(obs) == 20
    r = dict(rel=1e-6, abs=1e-9)
    # shower 0
    assert obs["E_0"][0] == pytest.approx(40, **r)
    assert obs["E_1"][0] == pytest.approx(75, **r)
    assert obs["E_2"][0] == 0
    assert obs["E_tot"][0] == pytest.approx(115, **r)
    assert obs["f_0"][0] == pytest.approx(40 / 115, **r)
    assert obs["f_1"][0] == pytest.approx(75 / 115, **r)
    assert obs["max_depth"][0] == 1
    assert obs["E_ratio_0"][0] == pytest.approx(20 / 40, **r)
    assert obs["E_ratio_1"][0] == pytest.approx(30 / 70, **r)
    assert obs["E_ratio_2"][0] == 0
    assert obs["lateral_depth"][0] == pytest.approx(75, **r)
    assert obs["shower_depth"][0] == pytest.approx(75 / 115, **r)
    assert obs["depth_width"][0] == pytest.approx(math.sqrt(75 / 115 - (75 / 115) ** 2), **r)
    # layer 0 row centres -160, 0, 160 mm: 10 MeV at -160, 30 at +160 -> mean 80, var 25600 - 6400
    assert obs["sigma_0"][0] == pytest.approx(math.sqrt(19200), rel=1e-6)
    assert obs["sigma_0"][0] == pytest.approx(width_with_eps([10, 30], [-160, 160]), rel=1e-12)
    # layer 1 row centres -220 + 40 i: 50 MeV at -100, 20 at -60, 5 at -220
    mean = (50 * -100 + 20 * -60 + 5 * -220) / 75
    mean2 = (50 * 100**2 + 20 * 60**2 + 5 * 220**2) / 75
    assert obs["sigma_1"][0] == pytest.approx(math.sqrt(mean2 - mean**2), rel=1e-6)
    assert obs["sigma_1"][0] == pytest.approx(width_with_eps([50, 20, 5], [-100, -60, -220]), rel=1e-12)
    assert obs["sigma_2"][0] == 0
    assert obs["sparsity_0"][0] == pytest.approx(2 / 288)
    assert obs["sparsity_1"][0] == pytest.approx(3 / 144)
    assert obs["sparsity_2"][0] == 0
    # shower 1: a single 8 MeV cell in layer 2
    assert obs["max_depth"][1] == 2
    assert obs["E_ratio_2"][1] == pytest.approx(1.0, **r)
    assert obs["f_2"][1] == pytest.approx(1.0, **r)
    assert obs["shower_depth"][1] == pytest.approx(2.0, **r)
    assert obs["depth_width"][1] == pytest.approx(0.0, abs=1e-3)
    assert obs["lateral_depth"][1] == pytest.approx(16.0, **r)
    # one cell: zero width up to the eps term, sqrt(x^2 eps / E) = 0.078 mm at x = 220 mm, E = 8 MeV
    assert obs["sigma_2"][1] == pytest.approx(width_with_eps([8], [220]), rel=1e-6)
    assert obs["sigma_2"][1] < 0.1
    assert obs["sparsity_2"][1] == pytest.approx(1 / 72)


def test_empty_shower_gives_finite_zeros():
    layers = [np.zeros((1, 3, 96)), np.zeros((1, 12, 12)), np.zeros((1, 12, 6))]
    obs = calogan_observables(layers)
    for name, v in obs.items():
        assert np.isfinite(v).all() and v[0] == 0, name


def test_generic_observables_agree_with_calogan_ones():
    layers = hand_made()
    showers = Showers(layers, np.array([0.2, 0.01], np.float32), calogan_geometry())
    gen = shower_observables(showers)
    cg = calogan_observables(layers)
    for i in range(3):
        np.testing.assert_allclose(gen[f"width_x_{i}"], cg[f"sigma_{i}"], rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(gen[f"E_{i}"], cg[f"E_{i}"])
        np.testing.assert_allclose(gen[f"sparsity_{i}"], cg[f"sparsity_{i}"])
    np.testing.assert_allclose(gen["max_depth"], cg["max_depth"])
    np.testing.assert_allclose(gen["shower_depth"], cg["shower_depth"], rtol=1e-6)
    np.testing.assert_allclose(gen["depth_width"], cg["depth_width"], atol=1e-3)
    np.testing.assert_allclose(gen["response"], [115 / 200, 8 / 10], rtol=1e-6)
    # layer_0 column centres: -240 + 5 (j + 1/2) mm; 10 MeV at col 5 and 30 at col 7
    ys = (-237.5 + 5 * 5, -237.5 + 5 * 7)
    mean = (10 * ys[0] + 30 * ys[1]) / 40
    assert gen["centroid_y_0"][0] == pytest.approx(mean, rel=1e-6)
    assert gen["width_y_0"][0] == pytest.approx(width_with_eps([10, 30], ys), rel=1e-9)
    assert gen["width_y_0"][0] == pytest.approx(math.sqrt((10 * ys[0]**2 + 30 * ys[1]**2) / 40 - mean**2), abs=1e-3)
    full = default_observables(showers)
    assert set(CALOGAN_OBSERVABLES) < set(full) and "response" in full


def test_polar_layer_positions():
    geometry = Geometry("polar", (LayerGeometry("layer_0", (4, 2), (math.pi / 2, 10.0), (0.0, 10.0, 20.0)),
                                  LayerGeometry("layer_1", (1, 1), (2 * math.pi, 5.0), (0.0, 5.0))))
    l0 = np.zeros((1, 4, 2))
    l0[0, 0, 1] = 3.0  # alpha bin 0: centre pi/4; r bin 1: centre 15 mm
    l1 = np.full((1, 1, 1), 1.0)
    obs = shower_observables(Showers([l0, l1], np.array([0.004]), geometry))
    assert obs["centroid_x_0"][0] == pytest.approx(15 * math.cos(math.pi / 4), rel=1e-6)
    assert obs["centroid_y_0"][0] == pytest.approx(15 * math.sin(math.pi / 4), rel=1e-6)
    assert obs["width_x_0"][0] == pytest.approx(width_with_eps([3.0], [15 * math.cos(math.pi / 4)]), rel=1e-6)
    assert obs["max_depth"][0] == 1
    assert obs["shower_depth"][0] == pytest.approx(0.25, rel=1e-6)
    assert obs["depth_width"][0] == pytest.approx(math.sqrt(0.25 - 0.0625), rel=1e-5)
    assert obs["response"][0] == pytest.approx(1.0)


def test_a_single_layer_has_no_longitudinal_observables():
    from calosim.geometry import single_layer_geometry

    geometry = single_layer_geometry(5, 5, name="image", cell_size=(10.0, 10.0))
    image = np.zeros((2, 5, 5))
    image[:, 2, 2], image[1, 0, 0] = 4.0, 1.0
    obs = shower_observables(Showers([image], np.array([0.01, 0.01]), geometry))
    assert not {"f_0", "max_depth", "shower_depth", "depth_width"} & set(obs)
    np.testing.assert_allclose(obs["E_0"], [4.0, 5.0])
    np.testing.assert_allclose(obs["response"], [0.4, 0.5])
    assert {"sparsity_0", "centroid_x_0", "width_y_0", "E_tot"} <= set(obs)
