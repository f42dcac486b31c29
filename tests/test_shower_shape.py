"""The discriminator's shower-shape features: values against the evaluation's CaloGAN observables (the
oracle), and the hand-written backward against float64 central differences, on each CPU backend."""

from __future__ import annotations

import numpy as np
import pytest

from calosim.backends import get_backend
from calosim.evaluate.observables import energy_ratio, lateral_width
from calosim.gradcheck import check_layer
from calosim.layers import ShowerShapeFeatures
from calosim.selftest import GRADIENT_TOLERANCE


def _images(rng, n, shape):
    x = rng.uniform(0.1, 2.0, (n, *shape, 1))
    x[rng.random(x.shape) < 0.3] = 0.0
    return x


@pytest.mark.parametrize("shape", [(3, 96), (12, 12), (12, 6), (2, 3)])
def test_values_equal_the_calogan_observables(shape, backend_name):
    rng = np.random.default_rng(0)
    x = _images(rng, 7, shape)
    layer = ShowerShapeFeatures()
    be = get_backend(backend_name, "float64")
    layer.build((*shape, 1), be, rng)
    got = be.to_numpy(layer.forward(be.asarray(x)))
    np.testing.assert_allclose(got[:, 0], energy_ratio(x[..., 0]), rtol=1e-9, atol=1e-12)
    # the observable's row centres are 240 mm times the feature's [-1, 1] ones
    np.testing.assert_allclose(240.0 * got[:, 1], lateral_width(x[..., 0]), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("shape", [(3, 8), (4, 4)])
def test_gradient(shape, backend_name):
    rng = np.random.default_rng(1)
    be = get_backend(backend_name, "float64")
    layer = ShowerShapeFeatures()
    layer.build((*shape, 1), be, rng)
    x = _images(rng, 5, shape)
    x[x == 0] = 0.05  # no cell sits where a step would cross another: the ranking stays put
    result = check_layer(layer, x, be, rng)
    assert result.passed(GRADIENT_TOLERANCE), result.describe()


def test_gradient_reaches_only_the_two_hottest_cells_for_the_ratio():
    be = get_backend("numpy", "float64")
    layer = ShowerShapeFeatures()
    layer.build((2, 3, 1), be, np.random.default_rng(0))
    x = np.array([[1.0, 5.0, 2.0], [0.5, 4.0, 0.0]]).reshape(1, 2, 3, 1)
    layer.forward(x)
    dx = layer.backward(np.array([[1.0, 0.0]])).reshape(-1)
    a, b = 5.0, 4.0
    expected = np.zeros(6)
    expected[1], expected[4] = 2 * b / (a + b) ** 2, -2 * a / (a + b) ** 2
    np.testing.assert_allclose(dx, expected, rtol=1e-5)
