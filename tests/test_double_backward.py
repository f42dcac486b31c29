"""The hand-written double backward (the WGAN-GP penalty's weight gradient) against float64 central differences
of the hand-written input gradient, on each CPU backend; the check catches a wrong rule."""

from __future__ import annotations

import numpy as np
import pytest

from calosim import layers as L
from calosim.backends import get_backend
from calosim.layers import double_backward as db
from calosim.selftest import DOUBLE_BACKWARD_CASES, GRADIENT_TOLERANCE, double_backward_check


@pytest.mark.parametrize("case", DOUBLE_BACKWARD_CASES, ids=[c.name for c in DOUBLE_BACKWARD_CASES])
def test_double_backward(case, backend_name):
    result = double_backward_check(case, backend_name, seed=1)
    assert result.passed(GRADIENT_TOLERANCE), result.describe()


def test_check_catches_a_missing_second_order_term(monkeypatch):
    rule = db.layer_double_backward

    def without_second_order(layer, dy, ggx):
        ggy, gx, grads = rule(layer, dy, ggx)
        return ggy, None, grads

    monkeypatch.setattr(db, "layer_double_backward", without_second_order)
    case = next(c for c in DOUBLE_BACKWARD_CASES if c.name == "mlp_tanh_sigmoid")
    result = double_backward_check(case, "numpy", seed=1)
    assert not result.passed(GRADIENT_TOLERANCE), result.describe()


def test_input_gradient_is_the_backward_of_the_sum():
    be = get_backend("numpy", "float64")
    rng = np.random.default_rng(0)
    net = L.Sequential([L.Dense(4), L.ReLU(), L.Dense(1)])
    net.build((3,), be, rng)
    x = rng.standard_normal((5, 3))
    y, g, _ = db.input_gradient(net, x)
    h = 1e-6
    for j in range(3):
        step = np.zeros(3)
        step[j] = h
        numeric = (net.forward(x + step)[:, 0] - net.forward(x - step)[:, 0]) / (2 * h)
        np.testing.assert_allclose(g[:, j], numeric, rtol=1e-6, atol=1e-9)


def test_penalty_only_on_the_voxels_and_unsupported_layers_fail():
    xp = np
    g = np.array([[3.0, 4.0, 100.0], [0.6, 0.8, -5.0]])
    penalty, gg, norm = db.gradient_penalty(g, 2, 10.0, xp)
    np.testing.assert_allclose(norm, [5.0, 1.0], rtol=1e-9)
    assert penalty == pytest.approx(10.0 * (16.0 + 0.0) / 2)
    assert np.all(gg[:, 2] == 0.0)
    net = L.Sequential([L.Dense(2), L.BatchNorm(), L.Dense(1)])
    net.build((3,), get_backend("numpy"), np.random.default_rng(0))
    with pytest.raises(TypeError, match="no double backward for BatchNorm"):
        db.input_gradient(net, np.ones((4, 3), np.float32))
