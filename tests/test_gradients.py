"""Every layer's and loss's hand-written backward against float64 central differences, on each CPU backend."""

from __future__ import annotations

import numpy as np
import pytest

from calosim import layers as L
from calosim.backends import get_backend
from calosim.gradcheck import check_function, check_layer
from calosim.selftest import GRADIENT_TOLERANCE, LAYER_CASES, LOSS_CASES, gradient_check


@pytest.mark.parametrize("case", LAYER_CASES, ids=[c.name for c in LAYER_CASES])
def test_layer_gradient(case, backend_name):
    result = gradient_check(case, backend_name, seed=1)
    assert result.passed(GRADIENT_TOLERANCE), result.describe()


@pytest.mark.parametrize("name,fn", LOSS_CASES, ids=[n for n, _ in LOSS_CASES])
def test_loss_gradient(name, fn):
    rng = np.random.default_rng(2)
    result = check_function(fn, rng.standard_normal(10), rng, name=name)
    assert result.passed(GRADIENT_TOLERANCE), result.describe()


class _WrongDense(L.Dense):
    """A Dense layer whose input gradient is 1% too large: the check must catch it."""

    def backward(self, dy):
        return super().backward(dy) * 1.01


def test_gradient_check_catches_a_wrong_backward():
    backend = get_backend("numpy", "float64")
    rng = np.random.default_rng(3)
    layer = _WrongDense(3)
    layer.build((4,), backend, rng)
    result = check_layer(layer, rng.standard_normal((2, 4)), backend, rng)
    assert not result.passed(GRADIENT_TOLERANCE), result.describe()
