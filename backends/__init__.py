"""Compute backends chosen by name: ``get_backend("numpy" | "numba" | "cupy")``.

Every layer of calosim calls these primitives; the NumPy backend is the readable specification
and the others must agree with it (see tests/test_backend_parity.py).
"""

from calosim.backends.base import BACKEND_NAMES, Backend, BackendUnavailable, backend_status, get_backend

__all__ = ["Backend", "BackendUnavailable", "backend_status", "get_backend", "BACKEND_NAMES"]
