"""OpenBLAS's thread count is read and set at run time; the numba backend pins it to one thread."""

from __future__ import annotations

import os

import pytest

from calosim.backends import get_backend
from calosim.backends.blas_threads import openblas_threads, set_openblas_threads


def test_numba_backend_runs_openblas_on_one_thread():
    if openblas_threads() is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS found in this process")
    if "OPENBLAS_NUM_THREADS" in os.environ:
        pytest.skip("OPENBLAS_NUM_THREADS is set: the numba backend leaves OpenBLAS's threading alone")
    get_backend("numba")
    assert openblas_threads() == 1
    assert set_openblas_threads(1)  # setting works (and keeps the backend's choice)
    assert openblas_threads() == 1
