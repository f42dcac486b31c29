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


def test_only_batch1_style_products_wake_openblas_threads(monkeypatch):
    """A product of a few rows against a wide weight matrix (batch-1 sampling) runs on OpenBLAS's threads; a
    weight gradient of a few rows summed over a long inner axis (a one-channel convolution in training) must
    not: OpenBLAS's woken threads spin after the call and slow every kernel that follows."""
    import numpy as np

    import calosim.backends.numba_backend as nb

    be = get_backend("numba")
    if not be._split_products:
        pytest.skip("OPENBLAS_NUM_THREADS is set: the numba backend leaves OpenBLAS's threading alone")
    calls = []
    monkeypatch.setattr(nb, "set_openblas_threads", lambda n: calls.append(n) or True)
    monkeypatch.setattr(be.__class__, "num_threads", property(lambda self: 2))
    rng = np.random.default_rng(0)
    gradient = be.matmul(rng.standard_normal((4, 36864)).astype(np.float32),
                         rng.standard_normal((36864, 64)).astype(np.float32))
    assert calls == [] and gradient.shape == (4, 64)
    be.matmul(rng.standard_normal((1, 1024)).astype(np.float32), rng.standard_normal((1024, 2048)).astype(np.float32))
    assert calls == [2, 1]


def test_machine_info_first_still_gives_the_backends_threading_layer():
    """Asking for numba's thread count starts its pool: done before the numba backend existed (the benchmark
    suite's machine fixture), numba chose OpenMP, and batch-1 sampling ran 4x slower."""
    import subprocess
    import sys

    if "NUMBA_THREADING_LAYER" in os.environ:
        pytest.skip("NUMBA_THREADING_LAYER is set: the user's choice is kept")
    code = ("import numpy as np, numba\n"
            "from calosim.info import machine_info\n"
            "machine_info()\n"
            "from calosim.backends import get_backend\n"
            "get_backend('numba').leaky_relu(np.ones(1 << 21, np.float32), 0.2)\n"
            "print(numba.threading_layer())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "workqueue"
