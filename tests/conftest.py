"""Shared fixtures: the backends every parity and gradient test runs on."""

from __future__ import annotations

import pathlib

import pytest

from calosim.backends import backend_status

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
CPU_BACKENDS = ("numpy", "numba")


@pytest.fixture(params=CPU_BACKENDS)
def backend_name(request):
    status = backend_status()[request.param]
    if status != "available":
        pytest.fail(f"backend {request.param} should be available on every machine: {status}")
    return request.param


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared Geant4 data is not at {SHARED_DATA}")
    return SHARED_DATA
