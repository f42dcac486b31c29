"""Every layer on every CPU backend gives the NumPy specification's results in float32."""

from __future__ import annotations

import pytest

from calosim.selftest import LAYER_CASES, parity_error


@pytest.mark.parametrize("case", LAYER_CASES, ids=[c.name for c in LAYER_CASES])
@pytest.mark.parametrize("backend_name", ["numba"])
def test_layer_parity(case, backend_name):
    assert parity_error(case, backend_name, seed=4) < case.parity_tolerance
